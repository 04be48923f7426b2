//! assemble: installs the source at /opt/app-root/src (modes and symlinks
//! intact), restores artifacts into /opt/app-root/artifacts-cache, prints the
//! variables named in TEST_PRINT_ENV (for precedence tests), and fails when
//! the source contains a file named FAIL. With TEST_SPAWN=/path/module.wasm
//! it also runs that module over ws2i.spawn, its stdout to /tmp/spawn-out.txt.
//! TEST_COPY="FROM:TO ..." copies each file FROM to TO (for --inject/--volume tests).
//! TEST_METADATA=TEXT is written to /tmp/.s2i/image_metadata.json (labels for the image).
//! TEST_ENV_OUT=PATH writes the TEST_PRINT_ENV variables there too, as NAME=VALUE lines (a
//! multi-platform build's TARGETARCH, say), before artifacts are restored.
use std::io;
use std::path::Path;
use ws2i_sdk::{copy_tree, info, step, Command};

const APP: &str = "/opt/app-root/src";
const CACHE: &str = "/opt/app-root/artifacts-cache";

fn assemble() -> io::Result<()> {
    let src = ws2i_sdk::source_dir();
    if src.join("FAIL").exists() {
        return Err(io::Error::other(
            "the source contains FAIL: failing on purpose",
        ));
    }
    let mut printed = String::new();
    for name in ws2i_sdk::env::list("TEST_PRINT_ENV") {
        match ws2i_sdk::env::var(&name) {
            Some(v) => {
                info!("env {name}={v}");
                printed.push_str(&format!("{name}={v}\n"));
            }
            None => info!("env {name} is unset"),
        }
    }
    if let Some(out) = ws2i_sdk::env::var("TEST_ENV_OUT").filter(|p| !p.is_empty()) {
        if let Some(dir) = Path::new(&out).parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&out, printed)?;
    }
    if let Some(module) = ws2i_sdk::env::var("TEST_SPAWN").filter(|m| !m.is_empty()) {
        let status = Command::new(&module)
            .arg("from-assemble")
            .stdout_file("/tmp/spawn-out.txt")
            .status()?;
        info!("spawned {module}: {status}");
    }
    for pair in ws2i_sdk::env::list("TEST_COPY") {
        let (from, to) = pair
            .split_once(':')
            .ok_or_else(|| io::Error::other(format!("TEST_COPY entry {pair:?} is not FROM:TO")))?;
        std::fs::copy(from, to)?;
        info!("copied {from} to {to}");
    }
    if let Some(text) = ws2i_sdk::env::var("TEST_METADATA") {
        std::fs::create_dir_all("/tmp/.s2i")?;
        std::fs::write("/tmp/.s2i/image_metadata.json", text)?;
    }
    match ws2i_sdk::artifacts() {
        Some(dir) => {
            step!("Restoring build artifacts...");
            let stats = copy_tree(&dir, CACHE)?;
            info!("restored {} artifact files", stats.files);
        }
        None => info!("no artifacts to restore"),
    }
    step!("Installing application source...");
    let stats = copy_tree(&src, APP)?;
    info!(
        "copied {} files, {} dirs, {} symlinks",
        stats.files, stats.dirs, stats.symlinks
    );
    // Something for the next incremental build's save-artifacts.
    std::fs::create_dir_all(CACHE)?;
    std::fs::write(
        Path::new(CACHE).join("built-from.txt"),
        src.display().to_string(),
    )?;
    Ok(())
}

fn main() {
    ws2i_sdk::run(assemble)
}
