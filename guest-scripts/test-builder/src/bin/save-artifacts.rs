//! save-artifacts: streams /opt/app-root/artifacts-cache to stdout as a tar
//! (entries at the top level), nothing else on stdout.
use std::io;

fn main() {
    ws2i_sdk::run(|| -> io::Result<()> {
        let mut tar = ws2i_sdk::ArtifactsTar::stdout();
        let cache = std::path::Path::new("/opt/app-root/artifacts-cache");
        if cache.is_dir() {
            tar.append_tree(cache, "")?;
        }
        tar.finish()?;
        Ok(())
    })
}
