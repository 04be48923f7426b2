//! save-artifacts: streams /opt/app-root/cache to stdout as a tar, for the next incremental
//! build's assemble. Nothing else may be written to stdout.
use std::io;

fn main() {
    ws2i_sdk::run(|| -> io::Result<()> {
        let mut tar = ws2i_sdk::ArtifactsTar::stdout();
        let cache = std::path::Path::new("/opt/app-root/cache");
        if cache.is_dir() {
            tar.append_tree(cache, "")?;
        }
        tar.finish()?;
        Ok(())
    })
}
