//! `ws2i exec ROOTFS_DIR HOOK [ARGS…]`: run one hook against a directory with the build sandbox.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::sandbox::{self, Hook, Mount, Sandbox, SandboxConfig};

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// Directory the hook sees as `/`.
    pub rootfs: PathBuf,
    /// The hook's path inside ROOTFS_DIR, e.g. /usr/libexec/s2i/assemble.
    pub hook: String,
    /// Arguments passed to the hook.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Environment variable for the hook (repeatable); nothing else is passed.
    #[arg(long = "env", short = 'e', value_name = "K=V", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    #[command(flatten)]
    pub budget: super::budget::BudgetArgs,
    /// Fixed clocks and seeded randomness (SOURCE_DATE_EPOCH, default 0).
    #[arg(long)]
    pub reproducible: bool,
    /// The fixed wall-clock time of --reproducible (implies it).
    #[arg(long = "source-date-epoch", value_name = "N", env = "SOURCE_DATE_EPOCH")]
    pub source_date_epoch: Option<u64>,
    /// Extra directory: HOST:GUEST[:ro] (repeatable).
    #[arg(long = "mount", value_name = "HOST:GUEST[:ro]", value_parser = parse_mount)]
    pub mounts: Vec<Mount>,
    /// Working directory inside the rootfs.
    #[arg(long, default_value = "/")]
    pub workdir: String,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.into(), v.into())),
        _ => Err(format!("expected K=V, got {s:?}")),
    }
}

fn parse_mount(s: &str) -> Result<Mount, String> {
    let (spec, read_only) = match s.strip_suffix(":ro") {
        Some(rest) => (rest, true),
        None => (s.strip_suffix(":rw").unwrap_or(s), false),
    };
    match spec.rsplit_once(':') {
        Some((host, guest)) if !host.is_empty() && guest.starts_with('/') => {
            Ok(Mount { host: host.into(), guest: guest.into(), read_only })
        }
        _ => Err(format!("expected HOST:GUEST[:ro] with an absolute GUEST, got {s:?}")),
    }
}

pub fn run(g: &super::Global, a: ExecArgs) -> anyhow::Result<ExitCode> {
    let sandbox = Sandbox::new(SandboxConfig { cache_dir: sandbox::default_cache_dir() })?;
    let rootfs = a.rootfs.canonicalize().with_context(|| format!("rootfs {}", a.rootfs.display()))?;
    let mut hook = Hook::new(rootfs, a.hook.clone());
    hook.args = a.args;
    hook.env = a.env;
    hook.cwd = a.workdir;
    hook.mounts = a.mounts;
    hook.budget = a.budget.budget();
    hook.reproducible = a.source_date_epoch.or(a.reproducible.then_some(0));
    let outcome = sandbox.run(hook, &super::Passthrough { quiet: g.quiet }).with_context(|| format!("exec {}", a.hook))?;
    let s = &outcome.stats;
    if g.loglevel >= 1 {
        eprintln!(
            "ws2i: module cache: {} hit(s), {} compiled; {:.3}s; {} bytes written; {} log bytes; {} spawn(s)",
            s.cache_hits,
            s.cache_misses,
            s.wall_time.as_secs_f64(),
            s.bytes_written,
            s.log_bytes,
            s.spawns
        );
    }
    if g.output == super::OutputFormat::Json {
        let j = serde_json::json!({
            "exit_code": outcome.exit_code,
            "cache_hits": s.cache_hits,
            "cache_misses": s.cache_misses,
            "wall_time_ms": s.wall_time.as_millis() as u64,
            "bytes_written": s.bytes_written,
            "log_bytes": s.log_bytes,
            "log_truncated": s.log_truncated,
            "spawns": s.spawns,
        });
        println!("{j}");
    }
    Ok(ExitCode::from((outcome.exit_code & 0xff) as u8))
}
