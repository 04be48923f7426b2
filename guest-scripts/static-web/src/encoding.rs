//! Content codings and `Accept-Encoding` negotiation over the precompressed
//! variants a file has.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

impl Encoding {
    /// The precompressed file's suffix next to the original.
    pub fn file_suffix(self) -> &'static str {
        match self {
            Encoding::Identity => "",
            Encoding::Gzip => ".gz",
            Encoding::Brotli => ".br",
        }
    }

    /// The `Content-Encoding` token (`None` for identity).
    pub fn token(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
            Encoding::Brotli => Some("br"),
        }
    }

    /// The suffix that makes each representation's strong ETag distinct.
    pub fn etag_suffix(self) -> &'static str {
        match self {
            Encoding::Identity => "",
            Encoding::Gzip => "-gz",
            Encoding::Brotli => "-br",
        }
    }
}

/// The quality `Accept-Encoding` gives `coding` (0.0 = not acceptable),
/// `None` when the header does not mention it (nor `*`).
fn quality(header: &str, coding: &str) -> Option<f32> {
    let mut star = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or_default().trim();
        if name.is_empty() {
            continue;
        }
        let mut q = 1.0;
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    q = v
                        .trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))
                        .unwrap_or(0.0);
                }
            }
        }
        if name.eq_ignore_ascii_case(coding)
            || (coding == "gzip" && name.eq_ignore_ascii_case("x-gzip"))
        {
            return Some(q);
        }
        if name == "*" {
            star = Some(q);
        }
    }
    star
}

/// Picks the representation to send: the acceptable precompressed variant
/// with the highest q-value (brotli wins a tie: it is smaller), else
/// identity. No header means identity (RFC 9110 allows any coding then, but
/// clients that decode send the header).
pub fn negotiate(accept_encoding: Option<&str>, has_gzip: bool, has_brotli: bool) -> Encoding {
    let Some(header) = accept_encoding else {
        return Encoding::Identity;
    };
    let mut best = (Encoding::Identity, 0.0f32);
    for (enc, available) in [(Encoding::Brotli, has_brotli), (Encoding::Gzip, has_gzip)] {
        if !available {
            continue;
        }
        let q = quality(header, enc.token().unwrap_or_default()).unwrap_or(0.0);
        if q > best.1 {
            best = (enc, q);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use Encoding::*;

    #[test]
    fn negotiation_follows_q_values() {
        assert_eq!(negotiate(None, true, true), Identity);
        assert_eq!(negotiate(Some(""), true, true), Identity);
        assert_eq!(negotiate(Some("gzip"), true, true), Gzip);
        assert_eq!(negotiate(Some("gzip, deflate, br"), true, true), Brotli);
        assert_eq!(negotiate(Some("gzip, deflate, br"), true, false), Gzip);
        assert_eq!(negotiate(Some("br;q=0.5, gzip;q=0.9"), true, true), Gzip);
        assert_eq!(negotiate(Some("br;q=0, gzip"), true, true), Gzip);
        assert_eq!(negotiate(Some("gzip;q=0"), true, true), Identity);
        assert_eq!(negotiate(Some("*"), true, true), Brotli);
        assert_eq!(negotiate(Some("*;q=0.1, br;q=0"), true, true), Gzip);
        assert_eq!(negotiate(Some("GZIP ; Q=0.8"), true, false), Gzip);
        assert_eq!(negotiate(Some("x-gzip"), true, false), Gzip);
        assert_eq!(negotiate(Some("gzip;q=nonsense"), true, false), Identity);
        assert_eq!(negotiate(Some("gzip;q=2"), true, false), Identity);
        assert_eq!(negotiate(Some("identity, deflate"), true, true), Identity);
        assert_eq!(negotiate(Some("br"), false, false), Identity);
    }
}
