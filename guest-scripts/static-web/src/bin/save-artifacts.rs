//! save-artifacts: the compressed variants of the previous image's site as a
//! tar on stdout, keyed by compression policy and content hash (`v2-gz6-brsize/gz/<sha256>`),
//! so that the next assemble compresses only what changed.
use std::io::{self, BufWriter};

use static_web::site::{write_artifacts, Layout};
use ws2i_sdk::{info, step};

fn main() {
    ws2i_sdk::run(|| -> io::Result<()> {
        step!("Saving compressed assets for the next build...");
        let (n, _) = write_artifacts(&Layout::image(), BufWriter::new(io::stdout()))?;
        info!("saved {n} compressed asset(s)");
        Ok(())
    })
}
