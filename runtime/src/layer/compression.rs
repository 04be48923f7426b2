use std::io::{self, Read, Write};

use super::LayerError;

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    None,
    #[default]
    Gzip,
    Zstd,
}

/// Which family of media type names to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaTypeFlavor {
    Oci,
    Docker,
}

/// zstd level used when packing: fixed so the compressed digest is reproducible.
pub(crate) const ZSTD_LEVEL: i32 = 3;
/// gzip level used when packing (flate2's default), fixed for the same reason.
pub(crate) const GZIP_LEVEL: u32 = 6;

impl Compression {
    pub fn from_media_type(media_type: &str) -> Result<Self, LayerError> {
        Ok(match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Compression::Zstd,
            other => return Err(LayerError::MediaType(other.to_string())),
        })
    }

    pub fn media_type(self, flavor: MediaTypeFlavor) -> &'static str {
        match (flavor, self) {
            (MediaTypeFlavor::Oci, Compression::None) => "application/vnd.oci.image.layer.v1.tar",
            (MediaTypeFlavor::Oci, Compression::Gzip) => "application/vnd.oci.image.layer.v1.tar+gzip",
            (MediaTypeFlavor::Oci, Compression::Zstd) => "application/vnd.oci.image.layer.v1.tar+zstd",
            (MediaTypeFlavor::Docker, Compression::None) => "application/vnd.docker.image.rootfs.diff.tar",
            (MediaTypeFlavor::Docker, Compression::Gzip) => "application/vnd.docker.image.rootfs.diff.tar.gzip",
            // Docker has no registered zstd name; containerd uses this one.
            (MediaTypeFlavor::Docker, Compression::Zstd) => "application/vnd.docker.image.rootfs.diff.tar.zstd",
        }
    }

    /// A reader yielding the uncompressed tar stream. gzip layers may consist of
    /// several members (pigz-style); all are read.
    pub fn decoder<'a>(self, reader: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::None => Box::new(reader),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(reader))),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(reader)?),
        })
    }

    /// A writer compressing into `out` with fixed, reproducible settings: the gzip
    /// header carries no name and mtime 0 and OS "unknown"; zstd uses a fixed level
    /// and writes the content size nowhere (it is unknown while streaming).
    pub(crate) fn encoder<'a, W: Write + 'a>(self, out: W) -> io::Result<Encoder<'a, W>> {
        Ok(match self {
            Compression::None => Encoder::None(out),
            Compression::Gzip => Encoder::Gzip(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .operating_system(255)
                    .write(out, flate2::Compression::new(GZIP_LEVEL)),
            ),
            Compression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
                e.include_checksum(true)?;
                Encoder::Zstd(e)
            }
        })
    }
}

pub(crate) enum Encoder<'a, W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'a, W>),
}

impl<W: Write> Encoder<'_, W> {
    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(w) => Ok(w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}
