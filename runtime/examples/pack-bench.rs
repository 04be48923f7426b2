//! benches/compare.sh's layer row: pack a directory as one layer the way a commit does
//! (`layer::pack_dir`: reproducible tar, sha256 of tar and blob, compression), into nothing.
//!
//!   pack-bench gzip|zstd|none DIR     prints the blob digest and size
use std::io;

use ws2i::layer::{pack_dir, Compression, PackOptions};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(c), Some(dir)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: pack-bench gzip|zstd|none DIR");
    };
    let compression = match c.as_str() {
        "gzip" => Compression::Gzip,
        "zstd" => Compression::Zstd,
        "none" => Compression::None,
        other => anyhow::bail!("unknown compression {other}"),
    };
    let p = pack_dir(dir.as_ref(), &PackOptions { compression, ..Default::default() }, io::sink())?;
    println!("{} {}", p.digest, p.size);
    Ok(())
}
