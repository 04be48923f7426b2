//! The harness shared by the end-to-end tests: the real `ws2i` binary, the
//! real guest hooks, a real registry.

pub mod builders;
pub mod git;
pub mod go_builder;
pub mod guests;
pub mod podman;
pub mod registry;
pub mod schemas;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The repository root (the workspace that holds runtime/, sdk/, tests/).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `target/<profile>/` of the running test executable
/// (`target/<profile>/deps/<test>-<hash>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(|deps| {
            if deps.file_name() == Some(OsStr::new("deps")) {
                deps.parent()
            } else {
                Some(deps)
            }
        })
        .expect("test executable lives in target/<profile>/deps")
        .to_path_buf()
}

/// The real `ws2i` binary of this build profile (`target/<profile>/ws2i`).
///
/// The harness does not build it: a `cargo build` started from inside
/// `cargo test` does not deadlock, but it sees the test process's
/// environment (cargo's `CARGO_*`, `LD_LIBRARY_PATH`), which invalidates
/// build-script fingerprints (ring, rustls, ...) so that the outer and inner
/// builds rebuild each other every run (measured: 1–3 min each time).
/// scripts/test builds it first; by hand: `cargo build -p ws2i --bin ws2i`.
/// A binary older than the runtime's sources is refused rather than tested.
pub fn ws2i_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = profile_dir().join(format!("ws2i{}", std::env::consts::EXE_SUFFIX));
        let how = "build it with `cargo build -p ws2i --bin ws2i` (scripts/test does)";
        let built = std::fs::metadata(&bin)
            .and_then(|m| m.modified())
            .unwrap_or_else(|_| panic!("ws2i binary not found at {}: {how}", bin.display()));
        let runtime = workspace_root().join("runtime");
        if let Some(newest) = newest_mtime(&runtime) {
            assert!(
                newest <= built,
                "ws2i binary at {} is older than the sources in {}: {how}",
                bin.display(),
                runtime.display()
            );
        }
        bin
    })
    .clone()
}

/// The newest modification time of the files under `dir` (sources only:
/// the walk skips `target`).
fn newest_mtime(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).ok()?.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                if entry.file_name() != "target" {
                    stack.push(entry.path());
                }
            } else if let Ok(t) = meta.modified() {
                newest = newest.max(Some(t));
            }
        }
    }
    newest
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
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs a command and asserts that it succeeded, printing its output if not.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\n{}",
        out.status,
        describe(&out)
    );
    out
}

/// Runs a command and asserts that it failed, printing its output if not.
pub fn run_fail(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        !out.status.success(),
        "{cmd:?} unexpectedly succeeded\n{}",
        describe(&out)
    );
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

/// Runs skopeo (Debian's, a real independent OCI client) and returns its
/// stdout, failing the test with its stderr if it fails.
pub fn skopeo(args: &[&str]) -> String {
    stdout(&run_ok(Command::new("skopeo").args(args)))
}
