//! A real podman for the tests that run what ws2i makes (tests/tests/podman.rs): its own
//! config, registries file and storage under a temp dir, so nothing of the host's podman setup
//! is read or changed. The settings are what runs containers on this VM kind
//! (../shared/notes/python-and-scaleout.md B1): runc (crun fails on its hybrid cgroups),
//! cgroupfs, no event log, explicit ulimits (podman's default nofile is above the VM's hard
//! limit), vfs storage. scripts/setup installs podman with `WS2I_SETUP_PODMAN=1`.
//!
//! [`Podman::new`] fails the test, with podman's own words, when podman is missing or cannot
//! run a container here: a host where the tests cannot run must not look like a pass.

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
    /// A podman with fresh storage, checked to run a container: the static `probe` binary
    /// (any static executable; its `--version` must exit 0) as uid 1000 with a read-only root.
    pub fn new(probe: &Path) -> Podman {
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
        let p = Podman { dir };
        let rootfs = p.dir.path().join("probe");
        std::fs::create_dir_all(&rootfs).unwrap();
        std::fs::copy(probe, rootfs.join("probe")).unwrap();
        let tar = p.dir.path().join("probe.tar");
        crate::run_ok(
            Command::new("tar")
                .arg("-C")
                .arg(&rootfs)
                .args(["-cf"])
                .arg(&tar)
                .arg("."),
        );
        p.ok(p
            .cmd()
            .arg("import")
            .arg(&tar)
            .arg("localhost/ws2i-test/probe:1"));
        let out = run(p.cmd().args([
            "run",
            "--rm",
            "--network",
            "none",
            "--user",
            "1000:1000",
            "--read-only",
            "--cap-drop",
            "all",
            "localhost/ws2i-test/probe:1",
            "/probe",
            "--version",
        ]));
        assert!(
            out.status.success(),
            "podman cannot run containers on this host, so these tests cannot run (not a pass):\n{}",
            describe(&out)
        );
        p
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
