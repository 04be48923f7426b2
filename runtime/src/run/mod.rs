//! `ws2i run IMAGE [-- ARGS…]`: run an image's WebAssembly command, or serve it when it is a
//! `wasi:http` proxy component and a port is published.
//!
//! The image comes from the local store; its rootfs is the cached unpacked layers, checked out
//! into a private writable copy that is removed afterwards (also on SIGINT/SIGTERM), so a run
//! never changes the cache. The command is `Entrypoint` + `Cmd` (`-- ARGS` replace `Cmd`),
//! resolved inside the rootfs; the environment is the image's `Env` with `--env` overrides, the
//! working directory its `WorkingDir`. Anything that is not WebAssembly is refused with the
//! podman command that would run it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::image::{is_wasm_platform, ImageConfig, Platform};
use crate::layer::RootfsCache;
use crate::image::reference::LocalRef;
use crate::sandbox::{Budget, Hook, HttpServe, LogSink, ProgramKind, Sandbox, SandboxConfig, SandboxError, ServeLimits};
use crate::image::store::Store;

/// `-p [HOST_IP:]HOST_PORT:PORT`: where a served image listens. `HOST_PORT` 0 picks a free port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish {
    pub host_ip: IpAddr,
    pub host_port: u16,
    /// The port the image expects (kept for the podman hint; a wasm server listens on the host port).
    pub port: u16,
}

impl Publish {
    pub fn host_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host_ip, self.host_port)
    }
}

impl FromStr for Publish {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid --publish {s:?}: {why} (expected [HOST_IP:]HOST_PORT:PORT)");
        let (rest, port) = s.rsplit_once(':').ok_or_else(|| bad("no ':'"))?;
        let port: u16 = port.parse().map_err(|_| bad("PORT is not a port number"))?;
        if port == 0 {
            return Err(bad("PORT must not be 0"));
        }
        let (ip, host_port) = match rest.rsplit_once(':') {
            Some((ip, hp)) => {
                let ip = ip.strip_prefix('[').and_then(|i| i.strip_suffix(']')).unwrap_or(ip);
                (ip.parse::<IpAddr>().map_err(|_| bad("HOST_IP is not an IP address"))?, hp)
            }
            None => (IpAddr::V4(Ipv4Addr::LOCALHOST), rest),
        };
        let host_port: u16 = host_port.parse().map_err(|_| bad("HOST_PORT is not a port number"))?;
        Ok(Publish { host_ip: ip, host_port, port })
    }
}

impl fmt::Display for Publish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            IpAddr::V4(Ipv4Addr::LOCALHOST) => write!(f, "{}:{}", self.host_port, self.port),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}:{}", self.host_port, self.port),
            ip => write!(f, "{ip}:{}:{}", self.host_port, self.port),
        }
    }
}

/// One `ws2i run`.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// A local store reference (`NAME[:TAG]`, `NAME@DIGEST`).
    pub image: String,
    /// `-- ARGS`: replace the image's `Cmd`.
    pub args: Option<Vec<String>>,
    /// `--env K=V`, applied over the image's `Env`.
    pub env: Vec<(String, String)>,
    pub publish: Option<Publish>,
    pub store_root: PathBuf,
    pub cache_dir: PathBuf,
    /// The build's budgets; when serving, `memory` and `timeout` apply to each request.
    pub budget: Budget,
    /// When serving: timeouts, the connection cap and the memory bound of the whole server.
    pub serve_limits: ServeLimits,
    /// `--platform`: the entry of a multi-platform image to run (default: the host's).
    pub platform: Option<Platform>,
}

/// Why an image could not be run, where callers branch on it.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("image {image} not found in the local store ({reason}); bring it in with `ws2i pull` or `ws2i copy`")]
    ImageNotFound { image: String, reason: String },
    #[error("image {image} has no command (neither Entrypoint nor Cmd); pass one after `--`")]
    NoCommand { image: String },
    #[error("image {image} runs {program}, {found}, not WebAssembly; ws2i runs only WebAssembly. Run it with: {podman}")]
    NotWebAssembly { image: String, program: String, found: String, podman: String },
    #[error("image {image} serves HTTP ({program} exports wasi:http/incoming-handler): publish a port, e.g. `ws2i run -p 8080:8080 {image}`")]
    NeedsPublish { image: String, program: String },
    #[error("image {image} cannot be served: {program} is {what}, not a wasi:http proxy component; run it without --publish")]
    NotServable { image: String, program: String, what: &'static str },
    #[error("image {image} for {platform} cannot run on this {host} host: ws2i does not emulate another architecture; run it on a {platform} machine, or pick --platform {host}")]
    NotNative { image: String, platform: String, host: String },
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Where a run reports to: the module's output, and the moment a server is reachable.
pub trait RunLog: LogSink {
    fn serving(&self, image: &str, addr: SocketAddr);
}

/// What the image says to run, after `-- ARGS` and `--env` were applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Absolute guest path of the program.
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
}

/// `Entrypoint` + `Cmd` (or `args`), `Env` with `overrides`, `WorkingDir`. Relative programs
/// are found in the rootfs: with a `/` against the working directory, else along `PATH`.
pub fn command(
    config: &ImageConfig,
    args: Option<&[String]>,
    overrides: &[(String, String)],
    rootfs: &Path,
) -> Option<Command> {
    let cc = config.config.clone().unwrap_or_default();
    let mut argv: Vec<String> = cc.entrypoint.unwrap_or_default();
    match args {
        Some(a) => argv.extend(a.iter().cloned()),
        None => argv.extend(cc.cmd.unwrap_or_default()),
    }
    let mut env = config.env_pairs();
    for (k, v) in overrides {
        match env.iter_mut().find(|(ek, _)| ek == k) {
            Some(e) => e.1 = v.clone(),
            None => env.push((k.clone(), v.clone())),
        }
    }
    let cwd = cc.working_dir.filter(|w| w.starts_with('/')).unwrap_or_else(|| "/".into());
    let mut argv = argv.into_iter();
    let first = argv.next().filter(|p| !p.is_empty())?;
    let program = if first.starts_with('/') {
        first
    } else if first.contains('/') {
        format!("{}/{first}", cwd.trim_end_matches('/'))
    } else {
        let path = env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_str()).unwrap_or("/usr/local/bin:/usr/bin:/bin");
        let root = Dir::open_ambient_dir(rootfs, ambient_authority()).ok();
        path.split(':')
            .filter(|d| d.starts_with('/'))
            .map(|d| format!("{}/{first}", d.trim_end_matches('/')))
            .find(|p| root.as_ref().is_some_and(|r| r.metadata(p.trim_start_matches('/')).is_ok_and(|m| m.is_file())))
            .unwrap_or_else(|| format!("/{first}"))
    };
    Some(Command { program, args: argv.collect(), env, cwd })
}

/// The podman command that runs `image` (the local store's name, as podman would know it).
pub fn podman_hint(image: &str, publish: Option<&Publish>, args: Option<&[String]>) -> String {
    let name = match image.split_once('/') {
        Some((host, _)) if host.contains('.') || host.contains(':') || host == "localhost" => image.to_string(),
        _ => format!("localhost/{image}"),
    };
    let mut cmd = String::from("podman run --rm");
    if let Some(p) = publish {
        cmd.push_str(&format!(" -p {p}"));
    }
    cmd.push(' ');
    cmd.push_str(&name);
    for a in args.unwrap_or_default() {
        cmd.push(' ');
        cmd.push_str(a);
    }
    cmd
}

/// Run (or serve) `req.image`; returns the module's exit code (0 after a server shut down).
pub fn run_image(req: &RunRequest, log: &dyn RunLog) -> Result<i32, RunError> {
    let not_found = |reason: String| RunError::ImageNotFound { image: req.image.clone(), reason };
    let store = Store::open(&req.store_root).context("opening the local image store")?;
    let r: LocalRef = req.image.parse().map_err(|e: crate::image::reference::RefError| not_found(e.to_string()))?;
    let img = match &req.platform {
        Some(p) => store.resolve_for(&r, p),
        None => store.resolve(&r),
    }
    .map_err(|e| not_found(format!("{e:#}")))?;
    let image = r.to_string();
    if let Some(p) = &req.platform {
        let host = Platform::native();
        if !is_wasm_platform(p) && !host.matches(p) {
            return Err(RunError::NotNative { image, platform: p.to_string(), host: host.to_string() });
        }
    }

    std::fs::create_dir_all(&req.cache_dir).with_context(|| format!("creating {}", req.cache_dir.display()))?;
    let cache = RootfsCache::new(&req.cache_dir.join("layers")).context("opening the rootfs cache")?;
    let base = cache.base(&store.image_layers(&img)?).context("unpacking the image's layers")?;
    let cmd = command(&img.config, req.args.as_deref(), &req.env, base.path())
        .ok_or_else(|| RunError::NoCommand { image: image.clone() })?;

    let sandbox = Sandbox::new(SandboxConfig { cache_dir: req.cache_dir.clone() }).context("starting the sandbox")?;
    // Classify against the read-only base: a program that is not WebAssembly needs no checkout.
    let kind = match sandbox.classify(base.path(), &cmd.program) {
        Ok(k) => k,
        Err(SandboxError::NotWasm { found, .. }) => {
            return Err(RunError::NotWebAssembly {
                image: image.clone(),
                program: cmd.program,
                podman: podman_hint(&image, req.publish.as_ref(), req.args.as_deref()),
                found,
            })
        }
        Err(e) => return Err(e.into()),
    };
    match (kind, &req.publish) {
        (ProgramKind::HttpProxy, None) => return Err(RunError::NeedsPublish { image, program: cmd.program }),
        (ProgramKind::CoreModule | ProgramKind::Command | ProgramKind::OtherComponent, Some(_)) => {
            let what = match kind {
                ProgramKind::CoreModule => "a WASI command module",
                ProgramKind::Command => "a WASI command component",
                _ => "a component without wasi:http/incoming-handler",
            };
            return Err(RunError::NotServable { image, program: cmd.program, what });
        }
        _ => {}
    }

    // Served requests see the shared cached rootfs read-only: no request can change what a
    // later one sees, none takes disk, and no private copy is made.
    if let Some(p) = &req.publish {
        return serve(&sandbox, req, log, &image, cmd, *p, base.path());
    }
    let root = cache.checkout(&base).context("checking out the image's rootfs")?;
    let _cleanup = CleanupOnSignal::install(root.path())?;
    let mut hook = Hook::new(root.path(), cmd.program);
    hook.args = cmd.args;
    hook.env = cmd.env;
    hook.cwd = cmd.cwd;
    hook.budget = req.budget.clone();
    let outcome = sandbox.run(hook, log)?;
    Ok(outcome.exit_code)
}

/// The image label (`"true"`) that said `ws2i run -p` may serve the rootfs read-only. Every
/// served rootfs is read-only now; builders still set it (static-web does) for older ws2i.
pub const READ_ONLY_ROOTFS_LABEL: &str = "io.ws2i.run.read-only-rootfs";

/// Serves `cmd` from `rootfs` until SIGINT/SIGTERM.
#[allow(clippy::too_many_arguments)]
fn serve(
    sandbox: &Sandbox,
    req: &RunRequest,
    log: &dyn RunLog,
    image: &str,
    cmd: Command,
    p: Publish,
    rootfs: &Path,
) -> Result<i32, RunError> {
    let serve = HttpServe {
        rootfs: rootfs.to_path_buf(),
        program: cmd.program,
        args: cmd.args,
        env: cmd.env,
        cwd: cmd.cwd,
        budget: req.budget.clone(),
        listen: p.host_addr(),
        max_concurrent: 16,
        drain: Duration::from_secs(10).min(req.budget.timeout + Duration::from_secs(1)),
        limits: req.serve_limits.clone(),
    };
    sandbox.serve_http(serve, |addr| log.serving(image, addr), async {
        termination().await;
    })?;
    Ok(0)
}

/// Resolves to the signal number on SIGINT or SIGTERM (the handlers are installed at its first poll).
async fn termination() -> i32 {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        // Without handlers the default action (ending the process) still applies.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => libc::SIGINT,
        _ = term.recv() => libc::SIGTERM,
    }
}

/// While a module runs, SIGINT/SIGTERM remove the private checkout before ending the process
/// (the module's thread cannot be interrupted from outside, so it is left to die with it).
struct CleanupOnSignal {
    done: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CleanupOnSignal {
    fn install(root: &Path) -> anyhow::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the signal watcher")?;
        let (done, done_rx) = tokio::sync::oneshot::channel::<()>();
        let (armed_tx, armed_rx) = std::sync::mpsc::channel::<()>();
        let root = root.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("ws2i-signals".into())
            .spawn(move || {
                rt.block_on(async move {
                    let sig = termination();
                    tokio::pin!(sig);
                    // Poll once so the handlers exist before the module starts.
                    if let Some(signo) = futures_util::FutureExt::now_or_never(&mut sig) {
                        let _ = std::fs::remove_dir_all(&root);
                        std::process::exit(128 + signo);
                    }
                    let _ = armed_tx.send(());
                    tokio::select! {
                        signo = sig => {
                            let _ = std::fs::remove_dir_all(&root);
                            eprintln!("ws2i: interrupted; removed the run's rootfs");
                            // The shell's convention for a process ended by a signal.
                            std::process::exit(128 + signo);
                        }
                        _ = done_rx => {}
                    }
                })
            })
            .context("starting the signal watcher")?;
        let _ = armed_rx.recv_timeout(Duration::from_secs(5));
        Ok(CleanupOnSignal { done: Some(done), thread: Some(thread) })
    }
}

impl Drop for CleanupOnSignal {
    fn drop(&mut self) {
        if let Some(d) = self.done.take() {
            let _ = d.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_parses() {
        let p: Publish = "8080:80".parse().unwrap();
        assert_eq!(p, Publish { host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST), host_port: 8080, port: 80 });
        let p: Publish = "127.0.0.1:0:8080".parse().unwrap();
        assert_eq!((p.host_port, p.port), (0, 8080));
        let p: Publish = "[::1]:9000:8080".parse().unwrap();
        assert_eq!(p.host_ip, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(p.to_string(), "[::1]:9000:8080");
        assert_eq!("0.0.0.0:80:8080".parse::<Publish>().unwrap().to_string(), "0.0.0.0:80:8080");
        for bad in ["8080", "x:80", "80:x", "1.2.3:80:80", "80:0", ":80", "70000:80"] {
            assert!(bad.parse::<Publish>().is_err(), "{bad}");
        }
    }

    #[test]
    fn command_from_config() {
        let cfg = ImageConfig::parse(
            br#"{"config":{"Env":["PATH=/bin","A=1"],"Entrypoint":["/e"],"Cmd":["c1"],"WorkingDir":"/w"},"rootfs":{"type":"layers","diff_ids":[]}}"#,
        )
        .unwrap();
        let d = tempfile::tempdir().unwrap();
        let c = command(&cfg, None, &[("A".into(), "2".into()), ("B".into(), "3".into())], d.path()).unwrap();
        assert_eq!(c.program, "/e");
        assert_eq!(c.args, ["c1"]);
        assert_eq!(c.env, [("PATH".into(), "/bin".into()), ("A".into(), "2".into()), ("B".into(), "3".into())]);
        assert_eq!(c.cwd, "/w");
        let c = command(&cfg, Some(&["x".into()]), &[], d.path()).unwrap();
        assert_eq!(c.args, ["x"]);

        std::fs::create_dir(d.path().join("bin")).unwrap();
        std::fs::write(d.path().join("bin/tool"), b"").unwrap();
        let cfg = ImageConfig::parse(br#"{"config":{"Env":["PATH=/nope:/bin"],"Cmd":["tool","-v"]},"rootfs":{"type":"layers","diff_ids":[]}}"#).unwrap();
        assert_eq!(command(&cfg, None, &[], d.path()).unwrap().program, "/bin/tool");
        let cfg = ImageConfig::parse(br#"{"config":{"Cmd":["./app"],"WorkingDir":"/srv"},"rootfs":{"type":"layers","diff_ids":[]}}"#).unwrap();
        assert_eq!(command(&cfg, None, &[], d.path()).unwrap().program, "/srv/./app");
        let cfg = ImageConfig::parse(br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#).unwrap();
        assert!(command(&cfg, None, &[], d.path()).is_none());
    }

    #[test]
    fn podman_hint_names_the_local_image() {
        let p: Publish = "8080:8080".parse().unwrap();
        assert_eq!(podman_hint("hello-go:latest", Some(&p), None), "podman run --rm -p 8080:8080 localhost/hello-go:latest");
        assert_eq!(podman_hint("quay.io/x/y:1", None, Some(&["a".into()])), "podman run --rm quay.io/x/y:1 a");
    }
}
