//! Locating and building guest hooks (see guest-scripts/build), and
//! rootfs directories to run them in.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::workspace_root;

pub fn guest_scripts_dir() -> PathBuf {
    workspace_root().join("guest-scripts")
}

/// Runs `guest-scripts/build --hooks-only` once per process. It is a
/// different cargo workspace with its own target dir, so there is no lock to
/// contend with the `cargo test` running us, and it is quick when nothing
/// changed — cheaper and surer than a staleness check of our own.
fn ensure_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let script = guest_scripts_dir().join("build");
        let mut cmd = Command::new(&script);
        cmd.arg("--hooks-only");
        // What cargo sets for a running test (CARGO_PKG_*, CARGO_MANIFEST_DIR,
        // ...) is not the guests' business and could change build-script
        // fingerprints; a target dir or flags for the host build neither.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if (k.starts_with("CARGO_") && k != "CARGO_HOME") || k.contains("RUSTFLAGS") {
                cmd.env_remove(&*k);
            }
        }
        if let Some(cargo) = std::env::var_os("CARGO") {
            // Make the script use the same toolchain's cargo.
            let bin_dir = Path::new(&cargo)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut dirs = vec![bin_dir];
            dirs.extend(std::env::split_paths(&path));
            cmd.env("PATH", std::env::join_paths(dirs).expect("PATH"));
        }
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "guest-scripts/build failed\n{}",
            crate::describe(&out)
        );
    });
}

/// The path of a guest module, building the guests first (once per process).
/// `name` is either `<builder>/<hook>` (a staged hook: `test-builder/assemble`,
/// `c-hook/assemble`) or a cargo bin name (`hostile`, `foo-p2`), looked up
/// as a core module first, then as a component.
pub fn wasm(name: &str) -> PathBuf {
    ensure_built();
    let target = guest_scripts_dir().join("target");
    let candidates = if name.contains('/') {
        vec![target.join("hooks").join(format!("{name}.wasm"))]
    } else {
        vec![
            target
                .join("wasm32-wasip1/release")
                .join(format!("{name}.wasm")),
            target
                .join("wasm32-wasip2/release")
                .join(format!("{name}.wasm")),
        ]
    };
    candidates.iter().find(|p| p.is_file()).cloned().unwrap_or_else(|| {
        panic!("guest module {name:?} not found (looked at {candidates:?}); is it in guest-scripts/ and built by guest-scripts/build?")
    })
}

/// A temporary root filesystem for a hook, removed on drop.
pub struct Rootfs {
    dir: tempfile::TempDir,
}

impl Rootfs {
    /// An empty rootfs with `/tmp` (S2I's default destination).
    pub fn new() -> Rootfs {
        let dir = tempfile::Builder::new()
            .prefix("ws2i-rootfs-")
            .tempdir()
            .expect("tempdir");
        fs::create_dir(dir.path().join("tmp")).expect("mkdir tmp");
        Rootfs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The host path of a guest path (`/usr/libexec/s2i/assemble`).
    pub fn host(&self, guest: &str) -> PathBuf {
        self.dir.path().join(guest.trim_start_matches('/'))
    }

    /// Copies the guest module `name` (see [`wasm`]) to `guest_path`, mode 0755.
    pub fn install_hook(&self, name: &str, guest_path: &str) -> PathBuf {
        let dst = self.host(guest_path);
        fs::create_dir_all(dst.parent().expect("guest path has a parent")).expect("mkdir");
        fs::copy(wasm(name), &dst)
            .unwrap_or_else(|e| panic!("install {name} at {}: {e}", dst.display()));
        fs::set_permissions(&dst, fs::Permissions::from_mode(0o755)).expect("chmod");
        dst
    }

    /// Writes a file at a guest path with a mode, creating parent dirs.
    pub fn write(&self, guest_path: &str, contents: impl AsRef<[u8]>, mode: u32) -> PathBuf {
        let dst = self.host(guest_path);
        fs::create_dir_all(dst.parent().expect("guest path has a parent")).expect("mkdir");
        fs::write(&dst, contents).expect("write");
        fs::set_permissions(&dst, fs::Permissions::from_mode(mode)).expect("chmod");
        dst
    }

    /// Creates a symlink at a guest path with the given content.
    pub fn symlink(&self, target: &str, guest_path: &str) -> PathBuf {
        let dst = self.host(guest_path);
        fs::create_dir_all(dst.parent().expect("guest path has a parent")).expect("mkdir");
        std::os::unix::fs::symlink(target, &dst).expect("symlink");
        dst
    }
}

impl Default for Rootfs {
    fn default() -> Self {
        Rootfs::new()
    }
}
