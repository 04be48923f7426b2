//! assemble: restores the previous build's artifacts (incremental builds), then installs the
//! application source at /opt/app-root/src. Replace the middle with your build steps.
use std::io;
use ws2i_sdk::{copy_tree, info, step};

const APP: &str = "/opt/app-root/src";
const CACHE: &str = "/opt/app-root/cache";

fn assemble() -> io::Result<()> {
    if let Some(dir) = ws2i_sdk::artifacts() {
        step!("Restoring build artifacts...");
        let stats = copy_tree(&dir, CACHE)?;
        info!("restored {} files", stats.files);
    }
    step!("Installing application source...");
    let stats = copy_tree(ws2i_sdk::source_dir(), APP)?;
    info!("installed {} files into {APP}", stats.files);
    std::fs::create_dir_all(CACHE)?;
    Ok(())
}

fn main() {
    ws2i_sdk::run(assemble)
}
