//! Request paths: percent-decoding and the rules that keep a request inside
//! the web root.

use std::fmt;

/// A request path reduced to safe segments: no `..`, `.`, empty segment,
/// backslash, NUL or control character in any of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebPath {
    segments: Vec<String>,
    trailing_slash: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Not origin-form, a malformed `%XX`, or not UTF-8: 400.
    Malformed,
    /// `..`, a backslash, NUL or a control character (raw or encoded): the
    /// request tries to leave the web root or to confuse a file system; 404.
    Escape,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::Malformed => "malformed request path",
            PathError::Escape => "request path leaves the web root",
        })
    }
}

impl WebPath {
    /// Parses a request target (`/a/b?q`): the query is dropped, the path
    /// percent-decoded, then split; `.` and empty segments vanish, `..` is
    /// refused rather than resolved (a client has no reason to send one).
    pub fn parse(target: &str) -> Result<WebPath, PathError> {
        let path = target.split(['?', '#']).next().unwrap_or_default();
        if !path.starts_with('/') {
            return Err(PathError::Malformed);
        }
        let decoded = percent_decode(path)?;
        Self::from_decoded(&decoded)
    }

    /// A path relative to the web root as configuration spells it
    /// (`index.html`, `app/index.html`), with the same rules.
    pub fn relative(rel: &str) -> Result<WebPath, PathError> {
        let mut p = Self::from_decoded(rel)?;
        p.trailing_slash = false;
        Ok(p)
    }

    fn from_decoded(decoded: &str) -> Result<WebPath, PathError> {
        if decoded.chars().any(|c| c == '\\' || c.is_control()) {
            return Err(PathError::Escape);
        }
        let mut segments = Vec::new();
        for seg in decoded.split('/') {
            match seg {
                "" | "." => {}
                ".." => return Err(PathError::Escape),
                s => segments.push(s.to_string()),
            }
        }
        let trailing_slash = decoded.ends_with('/');
        Ok(WebPath {
            segments,
            trailing_slash,
        })
    }

    /// The path relative to the web root, segments joined by `/` (empty for
    /// the root).
    pub fn rel(&self) -> String {
        self.segments.join("/")
    }

    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    pub fn trailing_slash(&self) -> bool {
        self.trailing_slash || self.segments.is_empty()
    }

    /// This path with `name` appended (for a directory's index file).
    pub fn join(&self, name: &WebPath) -> WebPath {
        let mut segments = self.segments.clone();
        segments.extend(name.segments.iter().cloned());
        WebPath {
            segments,
            trailing_slash: false,
        }
    }

    /// The last segment's extension, if it has one.
    pub fn extension(&self) -> Option<&str> {
        let last = self.segments.last()?;
        let (stem, ext) = last.rsplit_once('.')?;
        (!stem.is_empty()).then_some(ext)
    }

    /// `/a/b/` — what a redirect to the directory form points at, encoded.
    pub fn to_url_path(&self, trailing_slash: bool) -> String {
        let mut out = String::from("/");
        for (i, s) in self.segments.iter().enumerate() {
            if i > 0 {
                out.push('/');
            }
            percent_encode_segment(s, &mut out);
        }
        if trailing_slash && !self.segments.is_empty() {
            out.push('/');
        }
        out
    }
}

/// `%XX` decoding of a whole path; malformed escapes and non-UTF-8 results
/// are errors. `+` stays `+` (it only means a space in query strings).
pub fn percent_decode(s: &str) -> Result<String, PathError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(PathError::Malformed)?;
            let hi = hex_val(hex[0]).ok_or(PathError::Malformed)?;
            let lo = hex_val(hex[1]).ok_or(PathError::Malformed)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PathError::Malformed)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn percent_encode_segment(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(t: &str) -> Result<String, PathError> {
        WebPath::parse(t).map(|p| p.rel())
    }

    #[test]
    fn plain_paths_split_into_segments() {
        assert_eq!(rel("/").unwrap(), "");
        assert_eq!(rel("/a/b.html").unwrap(), "a/b.html");
        assert_eq!(rel("//a/./b//c?x=1#f").unwrap(), "a/b/c");
        assert!(WebPath::parse("/docs/").unwrap().trailing_slash());
        assert!(!WebPath::parse("/docs").unwrap().trailing_slash());
        assert!(WebPath::parse("/").unwrap().trailing_slash());
        assert_eq!(rel("/caf%C3%A9%20menu.html").unwrap(), "café menu.html");
        assert_eq!(rel("/a+b").unwrap(), "a+b");
    }

    #[test]
    fn escapes_are_refused_raw_and_encoded() {
        for t in [
            "/../etc/passwd",
            "/a/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2E%2E%2Fetc%2Fpasswd",
            "/.%2e/etc/passwd",
            "/a/..",
            "/..\\etc\\passwd",
            "/a%5c..%5cb",
            "/a%00.html",
            "/a%0a",
            "/a\\b",
        ] {
            assert_eq!(rel(t), Err(PathError::Escape), "{t}");
        }
    }

    #[test]
    fn malformed_targets_are_bad_requests() {
        for t in ["a/b", "", "*", "http://x/y", "/%", "/%4", "/%zz", "/%ff%fe"] {
            assert_eq!(rel(t), Err(PathError::Malformed), "{t}");
        }
    }

    #[test]
    fn relative_config_paths_and_helpers() {
        let idx = WebPath::relative("index.html").unwrap();
        let dir = WebPath::parse("/docs/").unwrap();
        assert_eq!(dir.join(&idx).rel(), "docs/index.html");
        assert!(WebPath::relative("../x").is_err());
        assert_eq!(
            WebPath::parse("/a/b.tar.gz").unwrap().extension(),
            Some("gz")
        );
        assert_eq!(WebPath::parse("/a/.hidden").unwrap().extension(), None);
        assert_eq!(WebPath::parse("/a/b").unwrap().extension(), None);
        assert_eq!(
            WebPath::parse("/caf%C3%A9/a%20b")
                .unwrap()
                .to_url_path(true),
            "/caf%C3%A9/a%20b/"
        );
        assert_eq!(WebPath::parse("/").unwrap().to_url_path(true), "/");
    }
}
