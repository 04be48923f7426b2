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
            Compression::Gzip => Encoder::Gzip(ParallelGz::new(out, default_threads())),
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
    Gzip(ParallelGz<W>),
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

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(8)
}

/// Uncompressed bytes per gzip member. Fixed, so the output does not depend on
/// the number of threads (or the machine): only on the input.
pub(crate) const GZIP_MEMBER: usize = 4 << 20;

/// pigz-style gzip: the stream is cut every [`GZIP_MEMBER`] bytes and each piece
/// becomes an independent gzip member (fixed header: mtime 0, no name, OS 255),
/// compressed in parallel and written in order. A concatenation of members is
/// one valid gzip file (RFC 1952 §2.2); Go's gzip reader (containerd, podman,
/// skopeo, umoci), GNU gzip and Python read all members; ws2i uses `MultiGzDecoder`.
pub(crate) struct ParallelGz<W: Write> {
    out: W,
    buf: Vec<u8>,
    pending: Vec<Vec<u8>>,
    threads: usize,
    wrote_member: bool,
}

impl<W: Write> ParallelGz<W> {
    pub(crate) fn new(out: W, threads: usize) -> Self {
        ParallelGz { out, buf: Vec::with_capacity(GZIP_MEMBER), pending: Vec::new(), threads: threads.max(1), wrote_member: false }
    }

    fn member(chunk: &[u8]) -> io::Result<Vec<u8>> {
        let mut e = flate2::GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(Vec::with_capacity(chunk.len() / 2 + 64), flate2::Compression::new(GZIP_LEVEL));
        e.write_all(chunk)?;
        e.finish()
    }

    fn drain(&mut self) -> io::Result<()> {
        let pending = std::mem::take(&mut self.pending);
        let members: Vec<io::Result<Vec<u8>>> = if pending.len() == 1 {
            vec![Self::member(&pending[0])]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = pending.iter().map(|c| s.spawn(move || Self::member(c))).collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| Err(io::Error::other("gzip worker panicked"))))
                    .collect()
            })
        };
        for m in members {
            self.out.write_all(&m?)?;
            self.wrote_member = true;
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<W> {
        if !self.buf.is_empty() || !self.wrote_member && self.pending.is_empty() {
            self.pending.push(std::mem::take(&mut self.buf));
        }
        if !self.pending.is_empty() {
            self.drain()?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ParallelGz<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(GZIP_MEMBER - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == GZIP_MEMBER {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(GZIP_MEMBER));
            self.pending.push(full);
            if self.pending.len() >= self.threads {
                self.drain()?;
            }
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        // Members are cut at fixed offsets only; flushing must not change the output.
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_gzip_is_thread_independent_and_readable() {
        let data: Vec<u8> = (0..(GZIP_MEMBER * 3 + 12345)).map(|i| (i % 251) as u8 ^ (i / 7919) as u8).collect();
        let enc = |threads| {
            let mut g = ParallelGz::new(Vec::new(), threads);
            for piece in data.chunks(100_000) {
                g.write_all(piece).unwrap();
            }
            g.finish().unwrap()
        };
        let (one, four) = (enc(1), enc(4));
        assert_eq!(one, four);
        let mut back = Vec::new();
        Compression::Gzip.decoder(one.as_slice()).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        let empty = ParallelGz::new(Vec::new(), 2).finish().unwrap();
        let mut back = Vec::new();
        Compression::Gzip.decoder(empty.as_slice()).unwrap().read_to_end(&mut back).unwrap();
        assert!(back.is_empty());
    }
}
