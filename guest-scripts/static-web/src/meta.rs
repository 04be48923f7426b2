//! The per-file metadata record assemble writes and the run hook reads (one
//! tab-separated line, so that a request costs one small read), and the
//! manifest line that is the same record prefixed with the path.

use crate::encoding::Encoding;

/// Whether a precompressed variant exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Not attempted (not a compressible type, too small, or disabled).
    NotTried,
    /// Compressed, but not smaller enough to be worth serving.
    Rejected,
    /// Stored next to the original, this many bytes.
    Stored(u64),
}

impl Variant {
    fn encode(self) -> String {
        match self {
            Variant::NotTried => "-".into(),
            Variant::Rejected => "x".into(),
            Variant::Stored(n) => n.to_string(),
        }
    }

    fn decode(s: &str) -> Option<Variant> {
        match s {
            "-" => Some(Variant::NotTried),
            "x" => Some(Variant::Rejected),
            n => n.parse().ok().map(Variant::Stored),
        }
    }

    pub fn stored(self) -> Option<u64> {
        match self {
            Variant::Stored(n) => Some(n),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub size: u64,
    /// Seconds since the Unix epoch (the source file's mtime).
    pub mtime: u64,
    /// SHA-256 of the content, lowercase hex (64 characters).
    pub sha256: String,
    pub gzip: Variant,
    pub brotli: Variant,
    pub content_type: String,
}

const VERSION: &str = "1";

impl FileMeta {
    /// One line: `1 size mtime sha256 gzip brotli content-type` (tabs).
    pub fn encode(&self) -> String {
        format!(
            "{VERSION}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            self.size,
            self.mtime,
            self.sha256,
            self.gzip.encode(),
            self.brotli.encode(),
            self.content_type
        )
    }

    /// `None` for anything that is not a well-formed record of this version.
    pub fn decode(line: &str) -> Option<FileMeta> {
        let mut f = line.trim_end_matches('\n').split('\t');
        if f.next()? != VERSION {
            return None;
        }
        let size = f.next()?.parse().ok()?;
        let mtime = f.next()?.parse().ok()?;
        let sha256 = f.next()?.to_string();
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let gzip = Variant::decode(f.next()?)?;
        let brotli = Variant::decode(f.next()?)?;
        let content_type = f.next()?.to_string();
        if content_type.is_empty()
            || content_type.chars().any(char::is_control)
            || f.next().is_some()
        {
            return None;
        }
        Some(FileMeta {
            size,
            mtime,
            sha256,
            gzip,
            brotli,
            content_type,
        })
    }

    pub fn has(&self, enc: Encoding) -> bool {
        match enc {
            Encoding::Identity => true,
            Encoding::Gzip => self.gzip.stored().is_some(),
            Encoding::Brotli => self.brotli.stored().is_some(),
        }
    }

    /// The byte length of a representation.
    pub fn len(&self, enc: Encoding) -> u64 {
        match enc {
            Encoding::Identity => self.size,
            Encoding::Gzip => self.gzip.stored().unwrap_or(self.size),
            Encoding::Brotli => self.brotli.stored().unwrap_or(self.size),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// A strong ETag: the content hash (128 bits of it), distinct per coding
    /// because the bytes on the wire differ.
    pub fn etag(&self, enc: Encoding) -> String {
        format!("\"{}{}\"", &self.sha256[..32], enc.etag_suffix())
    }
}

/// The manifest's header line.
pub const MANIFEST_HEADER: &str =
    "#path\tetag\tversion\tsize\tmtime\tsha256\tgzip\tbrotli\tcontent-type\n";

/// A manifest line: the path, the identity ETag (for people and tools; the
/// record determines it), the record.
pub fn manifest_line(path: &str, meta: &FileMeta) -> String {
    format!(
        "{path}\t{}\t{}",
        meta.etag(Encoding::Identity),
        meta.encode()
    )
}

/// Parses a manifest line back (`None` for the header, blank or bad lines).
pub fn parse_manifest_line(line: &str) -> Option<(String, FileMeta)> {
    let (path, rest) = line.split_once('\t')?;
    if path.starts_with('#') {
        return None;
    }
    let (_etag, record) = rest.split_once('\t')?;
    Some((path.to_string(), FileMeta::decode(record)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FileMeta {
        FileMeta {
            size: 1234,
            mtime: 1_700_000_000,
            sha256: "ab".repeat(32),
            gzip: Variant::Stored(400),
            brotli: Variant::Rejected,
            content_type: "text/html; charset=utf-8".into(),
        }
    }

    #[test]
    fn records_round_trip() {
        let m = sample();
        assert_eq!(FileMeta::decode(&m.encode()), Some(m.clone()));
        let line = manifest_line("a b/c.html", &m);
        assert!(
            line.starts_with(&format!("a b/c.html\t\"{}\"\t1\t", "ab".repeat(16))),
            "{line}"
        );
        assert_eq!(parse_manifest_line(&line), Some(("a b/c.html".into(), m)));
        assert_eq!(parse_manifest_line(MANIFEST_HEADER), None);
    }

    #[test]
    fn bad_records_are_refused() {
        let good = sample().encode();
        for bad in [
            String::new(),
            good.replacen('1', "2", 1),
            good.replace("1234", "-3"),
            good.replace(&"ab".repeat(32), "zz"),
            good.replace("400", "four"),
            format!("{}\textra", good.trim_end()),
            good.replace("text/html; charset=utf-8", ""),
        ] {
            assert_eq!(FileMeta::decode(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn etags_are_strong_and_per_coding() {
        let m = sample();
        assert_eq!(
            m.etag(Encoding::Identity),
            format!("\"{}\"", "ab".repeat(16))
        );
        assert_eq!(
            m.etag(Encoding::Gzip),
            format!("\"{}-gz\"", "ab".repeat(16))
        );
        assert!(m.has(Encoding::Gzip) && !m.has(Encoding::Brotli));
        assert_eq!(m.len(Encoding::Gzip), 400);
    }
}
