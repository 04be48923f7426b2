//! The harness shared by the end-to-end tests: the real `ws2i` binary, the
//! real guest hooks, a real registry.

pub mod guests;
pub mod registry;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The repository root (the workspace that holds runtime/, sdk/, tests/).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The cargo that runs us (cargo sets `$CARGO` for tests), else `cargo`.
pub(crate) fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// `target/<profile>/` of the running test executable
/// (`target/<profile>/deps/<test>-<hash>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(|deps| if deps.file_name() == Some(OsStr::new("deps")) { deps.parent() } else { Some(deps) })
        .expect("test executable lives in target/<profile>/deps")
        .to_path_buf()
}

/// The real `ws2i` binary of this build profile. The first call in a process
/// runs `cargo build -p ws2i --bin ws2i` (a no-op when it is fresh): a test
/// never runs a stale binary. This is safe inside `cargo test` because cargo
/// releases the target-dir lock once the test executables are built.
/// Set `WS2I_TEST_NO_BUILD=1` to only locate it (e.g. when the binary was
/// built by other means).
pub fn ws2i_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = profile_dir();
        let bin = dir.join(format!("ws2i{}", std::env::consts::EXE_SUFFIX));
        if std::env::var_os("WS2I_TEST_NO_BUILD").is_none() {
            let profile = match dir.file_name().and_then(OsStr::to_str) {
                Some("debug") | None => "dev".to_string(),
                Some(p) => p.to_string(),
            };
            let mut cmd = cargo();
            cmd.current_dir(workspace_root()).args(["build", "--quiet", "-p", "ws2i", "--bin", "ws2i", "--profile", &profile]);
            let out = cmd.output().unwrap_or_else(|e| panic!("cannot run cargo to build ws2i: {e}"));
            assert!(out.status.success(), "building ws2i failed ({:?}):\n{}", cmd, String::from_utf8_lossy(&out.stderr));
        }
        assert!(
            bin.is_file(),
            "ws2i binary not found at {}: build it with `cargo build -p ws2i --bin ws2i` (scripts/test does)",
            bin.display()
        );
        bin
    })
    .clone()
}

/// A `Command` for the real `ws2i` binary with a clean, predictable
/// environment (no host `WS2I_*` settings leak in).
pub fn ws2i() -> Command {
    let mut cmd = Command::new(ws2i_bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("WS2I_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Runs a command to completion; panics (with the command) only if it could
/// not be started.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs a command and asserts that it succeeded, printing its output if not.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(out.status.success(), "{cmd:?} failed with {}\n{}", out.status, describe(&out));
    out
}

/// Runs a command and asserts that it failed, printing its output if not.
pub fn run_fail(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(!out.status.success(), "{cmd:?} unexpectedly succeeded\n{}", describe(&out));
    out
}

/// stdout and stderr of a finished command, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// stdout as UTF-8 (lossy).
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr as UTF-8 (lossy).
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
