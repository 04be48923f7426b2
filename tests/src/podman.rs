//! A real podman for the tests that run what ws2i makes (tests/tests/podman.rs): its own
//! config, registries file and storage under a temp dir, so nothing of the host's podman setup
//! is read or changed. The settings are what runs containers on this VM kind
//! (../shared/notes/python-and-scaleout.md B1): runc (crun fails on its hybrid cgroups),
//! cgroupfs, no event log, explicit ulimits (podman's default nofile is above the VM's hard
//! limit), vfs storage. scripts/setup installs podman with `WS2I_SETUP_PODMAN=1`.
//!
//! [`Podman::new`] fails the test, with podman's own words, when podman is missing, and the probes
//! when it cannot run a container here: a host where the tests cannot run must not look like a pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::{describe, run, stdout};

pub struct Podman {
    dir: tempfile::TempDir,
}

const CONTAINERS_CONF: &str = r#"[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "none"
runtime = "runc"
"#;

const REGISTRIES_CONF: &str =
    "unqualified-search-registries = []\nshort-name-mode = \"disabled\"\n";

impl Podman {
    /// A podman with fresh config and storage. It is not yet known to run containers here:
    /// [`Podman::probe_static`] or [`Podman::probe_image`] checks that first.
    pub fn new() -> Podman {
        let version = Command::new("podman").arg("--version").output();
        match version {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!("podman does not work here:\n{}", describe(&o)),
            Err(e) => {
                panic!("podman is not installed ({e}): run `WS2I_SETUP_PODMAN=1 scripts/setup`")
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("ws2i-podman-")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("containers.conf"), CONTAINERS_CONF).unwrap();
        std::fs::write(dir.path().join("registries.conf"), REGISTRIES_CONF).unwrap();
        Podman { dir }
    }

    /// Checks that podman runs a container here: the static `probe` binary (any static
    /// executable whose `--version` exits 0), imported as an image of its own.
    pub fn probe_static(&self, probe: &Path) {
        let rootfs = self.dir.path().join("probe");
        std::fs::create_dir_all(&rootfs).unwrap();
        std::fs::copy(probe, rootfs.join("probe")).unwrap();
        let tar = self.dir.path().join("probe.tar");
        crate::run_ok(
            Command::new("tar")
                .arg("-C")
                .arg(&rootfs)
                .args(["-cf"])
                .arg(&tar)
                .arg("."),
        );
        self.ok(self
            .cmd()
            .arg("import")
            .arg(&tar)
            .arg("localhost/ws2i-test/probe:1"));
        self.probe_image("localhost/ws2i-test/probe:1", &["/probe", "--version"]);
    }

    /// Checks that podman runs `image` (already loaded) with `args` as uid 1000, with a
    /// read-only root, no capabilities and no network; fails the test, saying that this host
    /// cannot run the podman tests, when it does not.
    pub fn probe_image(&self, image: &str, args: &[&str]) {
        let out = run(self
            .cmd()
            .args([
                "run",
                "--rm",
                "--network",
                "none",
                "--user",
                "1000:1000",
                "--read-only",
                "--cap-drop",
                "all",
                image,
            ])
            .args(args));
        assert!(
            out.status.success(),
            "podman cannot run containers on this host, so these tests cannot run (not a pass):\n{}",
            describe(&out)
        );
    }

    /// `podman` with this instance's config and storage.
    pub fn cmd(&self) -> Command {
        let d = self.dir.path();
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf"))
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("run"))
            .args(["--storage-driver", "vfs"]);
        c
    }

    /// Runs `cmd` (from [`Podman::cmd`]) and fails the test with its output if it fails.
    pub fn ok(&self, cmd: &mut Command) -> Output {
        let out = run(cmd);
        assert!(out.status.success(), "{cmd:?} failed:\n{}", describe(&out));
        out
    }

    /// stdout of a podman command that must succeed.
    pub fn text(&self, args: &[&str]) -> String {
        stdout(&self.ok(self.cmd().args(args)))
    }

    /// A scratch dir next to the storage, removed with it.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join("scratch").join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Stop what is left (a failed test), then the vfs layers go with the temp dir.
        let _ = self.cmd().args(["pod", "rm", "--all", "--force"]).output();
        let _ = self.cmd().args(["rm", "--all", "--force"]).output();
    }
}

/// The store that holds ws2i's own image, `ws2i/ws2i:VERSION`, for the tests that run it.
///
/// `WS2I_IMAGE_STORE` names the store where scripts/ws2i-image put the static (musl) image:
/// scripts/test-podman sets it. Otherwise the image is made here, once per test process, from
/// the binary under test with runtime/Containerfile, the Containerfile of the real image: that
/// binary is dynamically linked, so its libraries (as `ldd` lists them) go in too. Everything
/// else (the user, the read-only root, the volumes, the entrypoint) is the real image's, and
/// no second compile is needed, so the README's test command runs the pods on every CI run.
pub fn ws2i_image_store() -> PathBuf {
    static STORE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    STORE
        .get_or_init(|| match std::env::var_os("WS2I_IMAGE_STORE") {
            Some(s) => PathBuf::from(s),
            None => dev_image(),
        })
        .clone()
}

fn dev_image() -> PathBuf {
    let dir = crate::workspace_root().join("target/test-cache/ws2i-image-dev");
    let _ = std::fs::remove_dir_all(&dir);
    let ctx = dir.join("context");
    let rootfs = ctx.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let bin = crate::ws2i_bin();
    std::fs::copy(&bin, ctx.join("ws2i")).unwrap();
    // The test profile keeps line tables; the image does not need them (as scripts/ws2i-image).
    crate::run_ok(Command::new("strip").arg(ctx.join("ws2i")));
    let ldd = stdout(&crate::run_ok(Command::new("ldd").arg(&bin)));
    for lib in ldd_paths(&ldd) {
        let to = rootfs.join(lib.strip_prefix("/").unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        // fs::copy follows links: /lib64/ld-linux-x86-64.so.2 arrives as the file it names.
        std::fs::copy(&lib, &to).unwrap_or_else(|e| panic!("copy {}: {e}", lib.display()));
    }
    let certs = Path::new("/etc/ssl/certs/ca-certificates.crt");
    if certs.exists() {
        std::fs::copy(certs, ctx.join("ca-certificates.crt")).unwrap();
    } else {
        std::fs::write(ctx.join("ca-certificates.crt"), "").unwrap();
    }
    let real = std::fs::read_to_string(crate::workspace_root().join("runtime/Containerfile")).unwrap();
    assert!(real.contains("FROM scratch\n"), "runtime/Containerfile starts FROM scratch");
    let containerfile = real.replacen(
        "FROM scratch\n",
        "FROM scratch\n# The binary under test is dynamically linked: its libraries, as ldd lists them.\nCOPY rootfs/ /\n",
        1,
    );
    std::fs::write(ctx.join("Containerfile"), containerfile).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    crate::run_ok(
        crate::ws2i()
            .env("WS2I_HOME", dir.join("store"))
            .env("WS2I_CACHE", dir.join("cache"))
            .args(["--quiet", "bud", "--build-arg"])
            .arg(format!("VERSION={version}"))
            .args(["-t", &format!("ws2i/ws2i:{version}"), "-f"])
            .arg(ctx.join("Containerfile"))
            .arg(&ctx),
    );
    dir.join("store")
}

/// The absolute paths of the libraries in `ldd`'s output (`libx.so => /path (0x…)` and the
/// loader's `/path (0x…)`; the vDSO has no file).
fn ldd_paths(ldd: &str) -> Vec<PathBuf> {
    ldd.lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = l.split_once("=>").map_or(l, |(_, p)| p.trim());
            let path = path.split(" (").next()?.trim();
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ldd_lines_give_the_library_files() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        let got: Vec<String> = super::ldd_paths(out).iter().map(|p| p.display().to_string()).collect();
        assert_eq!(got, ["/lib/x86_64-linux-gnu/libssl.so.3", "/lib64/ld-linux-x86-64.so.2"]);
    }
}
