//! One request → one response, with no I/O but [`Site::lookup`]: the whole
//! behaviour of the `run` hook, tested natively. The adapter sends
//! [`Response::headers`] and then the bytes [`Body`] names.

use crate::encoding::{self, Encoding};
use crate::meta::FileMeta;
use crate::path::{PathError, WebPath};
use crate::range::{self, RangeDecision};

/// What the site holds at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File(FileMeta),
    Dir,
    Missing,
}

/// The served site: the metadata records (only paths with one are served).
pub trait Site {
    fn lookup(&self, path: &WebPath) -> Entry;
}

/// Settings of the run hook: from assemble's config file, overridden by the
/// run-time environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file served for a directory (`WEB_INDEX`, default `index.html`).
    pub index: WebPath,
    /// Served (200) for unknown paths that look like page navigations
    /// (`WEB_SPA_FALLBACK`, e.g. `index.html`), for single-page apps.
    pub spa_fallback: Option<WebPath>,
    /// `Content-Security-Policy` (`WEB_CSP`).
    pub csp: String,
    /// `Cache-Control` for every file (`WEB_CACHE_CONTROL`).
    pub cache_control: String,
}

pub const DEFAULT_CSP: &str =
    "default-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'self'";
pub const DEFAULT_CACHE_CONTROL: &str = "no-cache";

impl Default for Config {
    fn default() -> Self {
        Config {
            index: WebPath::relative("index.html").expect("a valid literal"),
            spa_fallback: None,
            csp: DEFAULT_CSP.into(),
            cache_control: DEFAULT_CACHE_CONTROL.into(),
        }
    }
}

impl Config {
    /// Applies `KEY=VALUE` settings (unknown keys and invalid values are
    /// ignored: the server must start with what it can use). Returns the
    /// keys it rejected, for a warning.
    pub fn apply<'a>(&mut self, vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
        let mut rejected = Vec::new();
        for (k, v) in vars {
            let v = v.trim();
            let ok = match k {
                "WEB_INDEX" => match WebPath::relative(v) {
                    Ok(p) if p.segments().len() == 1 => {
                        self.index = p;
                        true
                    }
                    _ => false,
                },
                "WEB_SPA_FALLBACK" if v.is_empty() => {
                    self.spa_fallback = None;
                    true
                }
                "WEB_SPA_FALLBACK" => match WebPath::relative(v) {
                    Ok(p) if !p.is_root() => {
                        self.spa_fallback = Some(p);
                        true
                    }
                    _ => false,
                },
                "WEB_CSP" if header_safe(v) => {
                    self.csp = v.to_string();
                    true
                }
                "WEB_CACHE_CONTROL" if header_safe(v) && !v.is_empty() => {
                    self.cache_control = v.to_string();
                    true
                }
                "WEB_CSP" | "WEB_CACHE_CONTROL" => false,
                _ => true,
            };
            if !ok {
                rejected.push(k.to_string());
            }
        }
        rejected
    }

    /// Parses the config file's `KEY=VALUE` lines.
    pub fn parse_lines(text: &str) -> Vec<(&str, &str)> {
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim(), v))
            .collect()
    }

    /// The config file assemble writes.
    pub fn to_file(&self) -> String {
        format!(
            "# static-web settings recorded by assemble; the run hook's environment overrides them\n\
             WEB_INDEX={}\nWEB_SPA_FALLBACK={}\nWEB_CSP={}\nWEB_CACHE_CONTROL={}\n",
            self.index.rel(),
            self.spa_fallback.as_ref().map(WebPath::rel).unwrap_or_default(),
            self.csp,
            self.cache_control
        )
    }
}

fn header_safe(v: &str) -> bool {
    !v.chars().any(|c| c.is_control())
}

/// The request, as far as a static server cares.
pub struct Request<'a> {
    pub method: &'a str,
    /// The request target as received (`/path?query`), not normalised.
    pub target: &'a str,
    /// Header lookup by lowercase name (several values joined by `, `).
    pub headers: &'a dyn Fn(&str) -> Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Empty,
    /// Bytes of a file under the web root: `rel` plus the coding's suffix.
    File {
        rel: String,
        encoding: Encoding,
        start: u64,
        len: u64,
    },
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body's length (also for HEAD, where [`Body`] is empty but
    /// `Content-Length` says what GET would send).
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").and_then(|v| v.parse().ok())
    }

    fn new(status: u16, cfg: &Config) -> Response {
        Response {
            status,
            headers: vec![
                ("x-content-type-options", "nosniff".into()),
                ("referrer-policy", "strict-origin-when-cross-origin".into()),
                ("x-frame-options", "SAMEORIGIN".into()),
                ("content-security-policy", cfg.csp.clone()),
                ("cross-origin-opener-policy", "same-origin".into()),
            ],
            body: Body::Empty,
        }
    }

    fn text(mut self, content_type: &str, text: String, head: bool) -> Response {
        self.headers.push(("content-type", content_type.into()));
        self.headers
            .push(("content-length", text.len().to_string()));
        if !head {
            self.body = Body::Text(text);
        }
        self
    }
}

const NOT_FOUND_HTML: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>404 Not Found</title></head><body><h1>404 Not Found</h1>\
<p>The requested page does not exist.</p></body></html>\n";

/// Answers one request.
pub fn respond(req: &Request<'_>, site: &dyn Site, cfg: &Config) -> Response {
    let head = match req.method {
        "GET" => false,
        "HEAD" => true,
        _ => {
            let mut r = Response::new(405, cfg);
            r.headers.push(("allow", "GET, HEAD".into()));
            return r.text(
                "text/plain; charset=utf-8",
                "405 Method Not Allowed\n".into(),
                false,
            );
        }
    };
    let path = match WebPath::parse(req.target) {
        Ok(p) => p,
        Err(PathError::Malformed) => {
            return Response::new(400, cfg).text(
                "text/plain; charset=utf-8",
                "400 Bad Request\n".into(),
                head,
            )
        }
        Err(PathError::Escape) => return not_found(site, cfg, head),
    };
    match site.lookup(&path) {
        Entry::File(meta) if !path.trailing_slash() => {
            serve_file(req, cfg, &path, &meta, 200, head)
        }
        Entry::File(_) => not_found(site, cfg, head),
        Entry::Dir if !path.trailing_slash() => {
            let mut location = path.to_url_path(true);
            if let Some((_, q)) = req.target.split_once('?') {
                location.push('?');
                location.push_str(q);
            }
            let mut r = Response::new(301, cfg);
            r.headers.push(("location", location));
            r.text(
                "text/plain; charset=utf-8",
                "301 Moved Permanently\n".into(),
                head,
            )
        }
        Entry::Dir => {
            let index = path.join(&cfg.index);
            match site.lookup(&index) {
                Entry::File(meta) => serve_file(req, cfg, &index, &meta, 200, head),
                _ => not_found(site, cfg, head),
            }
        }
        Entry::Missing => match &cfg.spa_fallback {
            Some(fallback) if looks_like_navigation(req, &path) => match site.lookup(fallback) {
                Entry::File(meta) => serve_file(req, cfg, fallback, &meta, 200, head),
                _ => not_found(site, cfg, head),
            },
            _ => not_found(site, cfg, head),
        },
    }
}

/// A single-page app's route (`/users/42`) rather than a missing asset
/// (`/app.js`): no extension, or the client wants HTML.
fn looks_like_navigation(req: &Request<'_>, path: &WebPath) -> bool {
    path.extension().is_none() || (req.headers)("accept").is_some_and(|a| a.contains("text/html"))
}

fn not_found(site: &dyn Site, cfg: &Config, head: bool) -> Response {
    let page = WebPath::relative("404.html").expect("a valid literal");
    match site.lookup(&page) {
        Entry::File(meta) => {
            // The site's own page, without conditionals or ranges: a 404 is
            // not a cacheable representation of the requested resource.
            let mut r = Response::new(404, cfg);
            r.headers.push(("content-type", meta.content_type.clone()));
            r.headers.push(("content-length", meta.size.to_string()));
            r.headers.push(("cache-control", "no-store".into()));
            if !head {
                r.body = Body::File {
                    rel: page.rel(),
                    encoding: Encoding::Identity,
                    start: 0,
                    len: meta.size,
                };
            }
            r
        }
        _ => {
            let mut r = Response::new(404, cfg);
            r.headers.push(("cache-control", "no-store".into()));
            r.text("text/html; charset=utf-8", NOT_FOUND_HTML.into(), head)
        }
    }
}

fn serve_file(
    req: &Request<'_>,
    cfg: &Config,
    path: &WebPath,
    meta: &FileMeta,
    status: u16,
    head: bool,
) -> Response {
    let hdr = |n: &str| (req.headers)(n);
    let range_header = hdr("range").filter(|_| if_range_holds(hdr("if-range").as_deref(), meta));
    // Ranges are served from the identity bytes: offsets into a compressed
    // variant would surprise every client that resumes a download.
    let enc = if range_header.is_some() {
        Encoding::Identity
    } else {
        encoding::negotiate(
            hdr("accept-encoding").as_deref(),
            meta.has(Encoding::Gzip),
            meta.has(Encoding::Brotli),
        )
    };
    let etag = meta.etag(enc);
    let vary = meta.has(Encoding::Gzip) || meta.has(Encoding::Brotli);

    let mut r = Response::new(status, cfg);
    let validators = |r: &mut Response| {
        r.headers.push(("etag", etag.clone()));
        r.headers.push(("last-modified", http_date(meta.mtime)));
        r.headers.push(("cache-control", cfg.cache_control.clone()));
        if vary {
            r.headers.push(("vary", "Accept-Encoding".into()));
        }
    };

    let not_modified = match hdr("if-none-match") {
        Some(inm) => etag_matches(&inm, &etag),
        None => hdr("if-modified-since")
            .and_then(|d| httpdate::parse_http_date(&d).ok())
            .and_then(|d| d.duration_since(std::time::UNIX_EPOCH).ok())
            .is_some_and(|since| meta.mtime <= since.as_secs()),
    };
    if not_modified {
        let mut r = Response::new(304, cfg);
        validators(&mut r);
        return r;
    }

    validators(&mut r);
    r.headers.push(("accept-ranges", "bytes".into()));
    let full = meta.len(enc);
    let (start, len) = match range_header.map(|h| range::decide(&h, full)) {
        None | Some(RangeDecision::Full) => (0, full),
        Some(RangeDecision::Partial { start, end }) => {
            r.status = 206;
            r.headers
                .push(("content-range", format!("bytes {start}-{end}/{full}")));
            (start, end - start + 1)
        }
        Some(RangeDecision::Unsatisfiable) => {
            let mut r = Response::new(416, cfg);
            r.headers.push(("content-range", format!("bytes */{full}")));
            return r.text(
                "text/plain; charset=utf-8",
                "416 Range Not Satisfiable\n".into(),
                head,
            );
        }
    };
    r.headers.push(("content-type", meta.content_type.clone()));
    if let Some(token) = enc.token() {
        r.headers.push(("content-encoding", token.into()));
    }
    r.headers.push(("content-length", len.to_string()));
    if !head && len > 0 {
        r.body = Body::File {
            rel: path.rel(),
            encoding: enc,
            start,
            len,
        };
    }
    r
}

/// `If-Range`: apply the range only if the client's copy is current (a
/// strong ETag match or an exact-or-later date).
fn if_range_holds(if_range: Option<&str>, meta: &FileMeta) -> bool {
    match if_range.map(str::trim) {
        None => true,
        Some(v) if v.starts_with('"') => v == meta.etag(Encoding::Identity),
        Some(v) if v.starts_with("W/") => false,
        Some(v) => httpdate::parse_http_date(v)
            .ok()
            .and_then(|d| d.duration_since(std::time::UNIX_EPOCH).ok())
            .is_some_and(|d| meta.mtime <= d.as_secs()),
    }
}

/// `If-None-Match` uses the weak comparison: `W/"x"` matches `"x"`.
fn etag_matches(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// An IMF-fixdate; times past the year 9999 (which httpdate refuses, and a
/// damaged record could hold) are clamped to its last second.
pub fn http_date(secs: u64) -> String {
    const MAX: u64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.min(MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::Variant;
    use std::collections::HashMap;

    struct MapSite(HashMap<String, Entry>);

    impl Site for MapSite {
        fn lookup(&self, path: &WebPath) -> Entry {
            self.0.get(&path.rel()).cloned().unwrap_or(Entry::Missing)
        }
    }

    fn file(size: u64, gz: Option<u64>, br: Option<u64>, ct: &str, seed: u8) -> Entry {
        let v = |o: Option<u64>| o.map_or(Variant::NotTried, Variant::Stored);
        Entry::File(FileMeta {
            size,
            mtime: 1_700_000_000,
            sha256: format!("{seed:02x}").repeat(32),
            gzip: v(gz),
            brotli: v(br),
            content_type: ct.into(),
        })
    }

    fn site(with_404: bool) -> MapSite {
        let mut m = HashMap::new();
        m.insert("".into(), Entry::Dir);
        m.insert(
            "index.html".into(),
            file(1000, Some(300), Some(250), "text/html; charset=utf-8", 1),
        );
        m.insert(
            "style.css".into(),
            file(500, Some(200), None, "text/css; charset=utf-8", 2),
        );
        m.insert("logo.png".into(), file(100, None, None, "image/png", 3));
        m.insert("docs".into(), Entry::Dir);
        m.insert(
            "docs/index.html".into(),
            file(10, None, None, "text/html; charset=utf-8", 4),
        );
        m.insert("empty".into(), Entry::Dir);
        if with_404 {
            m.insert(
                "404.html".into(),
                file(42, None, None, "text/html; charset=utf-8", 5),
            );
        }
        MapSite(m)
    }

    fn get(
        site: &MapSite,
        cfg: &Config,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
    ) -> Response {
        let map: HashMap<String, String> = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        let lookup = move |n: &str| map.get(n).cloned();
        respond(
            &Request {
                method,
                target,
                headers: &lookup,
            },
            site,
            cfg,
        )
    }

    fn body_file(r: &Response) -> Option<(&str, Encoding, u64, u64)> {
        match &r.body {
            Body::File {
                rel,
                encoding,
                start,
                len,
            } => Some((rel.as_str(), *encoding, *start, *len)),
            _ => None,
        }
    }

    #[test]
    fn files_get_type_length_validators_and_security_headers() {
        let (s, c) = (site(false), Config::default());
        let r = get(&s, &c, "GET", "/style.css", &[]);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("text/css; charset=utf-8"));
        assert_eq!(r.content_length(), Some(500));
        assert_eq!(
            r.header("etag"),
            Some(format!("\"{}\"", "02".repeat(16)).as_str())
        );
        assert_eq!(
            r.header("last-modified"),
            Some("Tue, 14 Nov 2023 22:13:20 GMT")
        );
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert_eq!(r.header("accept-ranges"), Some("bytes"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert!(r.header("content-security-policy").is_some());
        assert_eq!(
            body_file(&r),
            Some(("style.css", Encoding::Identity, 0, 500))
        );
        let png = get(&s, &c, "GET", "/logo.png", &[("accept-encoding", "gzip")]);
        assert_eq!(png.header("vary"), None);
        assert_eq!(png.header("content-encoding"), None);
    }

    #[test]
    fn head_has_the_headers_of_get_and_no_body() {
        let (s, c) = (site(false), Config::default());
        let g = get(&s, &c, "GET", "/index.html", &[("accept-encoding", "gzip")]);
        let h = get(
            &s,
            &c,
            "HEAD",
            "/index.html",
            &[("accept-encoding", "gzip")],
        );
        assert_eq!(h.status, 200);
        assert_eq!(h.headers, g.headers);
        assert_eq!(h.body, Body::Empty);
        assert_eq!(h.content_length(), Some(300));
    }

    #[test]
    fn precompressed_variants_are_negotiated() {
        let (s, c) = (site(false), Config::default());
        let r = get(&s, &c, "GET", "/", &[("accept-encoding", "gzip, br")]);
        assert_eq!(r.header("content-encoding"), Some("br"));
        assert_eq!(r.content_length(), Some(250));
        assert_eq!(
            r.header("etag"),
            Some(format!("\"{}-br\"", "01".repeat(16)).as_str())
        );
        assert_eq!(
            body_file(&r),
            Some(("index.html", Encoding::Brotli, 0, 250))
        );
        let r = get(
            &s,
            &c,
            "GET",
            "/style.css",
            &[("accept-encoding", "br, gzip;q=0.5")],
        );
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(body_file(&r), Some(("style.css", Encoding::Gzip, 0, 200)));
    }

    #[test]
    fn conditional_requests_give_304() {
        let (s, c) = (site(false), Config::default());
        let etag = get(&s, &c, "GET", "/style.css", &[])
            .header("etag")
            .unwrap()
            .to_string();
        for inm in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"x\", {etag}"),
            "*".into(),
        ] {
            let r = get(&s, &c, "GET", "/style.css", &[("if-none-match", &inm)]);
            assert_eq!(r.status, 304, "{inm}");
            assert_eq!(r.body, Body::Empty);
            assert_eq!(r.header("etag"), Some(etag.as_str()));
        }
        // The gzip representation has another tag: the identity one does not match it.
        let r = get(
            &s,
            &c,
            "GET",
            "/style.css",
            &[("if-none-match", &etag), ("accept-encoding", "gzip")],
        );
        assert_eq!(r.status, 200);
        let r = get(
            &s,
            &c,
            "GET",
            "/style.css",
            &[("if-none-match", "\"other\"")],
        );
        assert_eq!(r.status, 200);
        let lm = "Tue, 14 Nov 2023 22:13:20 GMT";
        assert_eq!(
            get(&s, &c, "GET", "/style.css", &[("if-modified-since", lm)]).status,
            304
        );
        let earlier = "Tue, 14 Nov 2023 22:13:19 GMT";
        assert_eq!(
            get(
                &s,
                &c,
                "GET",
                "/style.css",
                &[("if-modified-since", earlier)]
            )
            .status,
            200
        );
        assert_eq!(
            get(
                &s,
                &c,
                "GET",
                "/style.css",
                &[("if-modified-since", "garbage")]
            )
            .status,
            200
        );
        // If-None-Match wins over If-Modified-Since.
        let r = get(
            &s,
            &c,
            "GET",
            "/style.css",
            &[("if-none-match", "\"other\""), ("if-modified-since", lm)],
        );
        assert_eq!(r.status, 200);
    }

    #[test]
    fn ranges_are_served_from_the_identity_bytes() {
        let (s, c) = (site(false), Config::default());
        let r = get(
            &s,
            &c,
            "GET",
            "/index.html",
            &[("range", "bytes=10-19"), ("accept-encoding", "br")],
        );
        assert_eq!(r.status, 206);
        assert_eq!(r.header("content-range"), Some("bytes 10-19/1000"));
        assert_eq!(r.header("content-encoding"), None);
        assert_eq!(r.content_length(), Some(10));
        assert_eq!(
            body_file(&r),
            Some(("index.html", Encoding::Identity, 10, 10))
        );
        let r = get(&s, &c, "GET", "/index.html", &[("range", "bytes=-100")]);
        assert_eq!(
            body_file(&r),
            Some(("index.html", Encoding::Identity, 900, 100))
        );
        for bad in ["bytes=1000-", "bytes=9-3", "bytes=x"] {
            let r = get(&s, &c, "GET", "/index.html", &[("range", bad)]);
            assert_eq!(r.status, 416, "{bad}");
            assert_eq!(r.header("content-range"), Some("bytes */1000"));
        }
        assert_eq!(
            get(&s, &c, "GET", "/index.html", &[("range", "lines=1-2")]).status,
            200
        );
        let etag = format!("\"{}\"", "01".repeat(16));
        let r = get(
            &s,
            &c,
            "GET",
            "/index.html",
            &[("range", "bytes=0-0"), ("if-range", &etag)],
        );
        assert_eq!(r.status, 206);
        let r = get(
            &s,
            &c,
            "GET",
            "/index.html",
            &[("range", "bytes=0-0"), ("if-range", "\"stale\"")],
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.content_length(), Some(1000));
    }

    #[test]
    fn directories_use_the_index_and_are_never_listed() {
        let (s, c) = (site(false), Config::default());
        let r = get(&s, &c, "GET", "/docs/", &[]);
        assert_eq!(
            body_file(&r),
            Some(("docs/index.html", Encoding::Identity, 0, 10))
        );
        let r = get(&s, &c, "GET", "/docs?x=1", &[]);
        assert_eq!(r.status, 301);
        assert_eq!(r.header("location"), Some("/docs/?x=1"));
        assert_eq!(get(&s, &c, "GET", "/empty/", &[]).status, 404);
        assert_eq!(get(&s, &c, "GET", "/style.css/", &[]).status, 404);
        let mut c2 = Config::default();
        c2.apply([("WEB_INDEX", "style.css")]);
        assert_eq!(
            body_file(&get(&s, &c2, "GET", "/", &[])).unwrap().0,
            "style.css"
        );
    }

    #[test]
    fn misses_and_escapes_are_404_with_the_sites_page_if_any() {
        let c = Config::default();
        for s in [site(false), site(true)] {
            for t in [
                "/nope.html",
                "/../etc/passwd",
                "/%2e%2e/etc/passwd",
                "/..%2f..%2fetc/passwd",
                "/a\\..\\b",
            ] {
                let r = get(&s, &c, "GET", t, &[]);
                assert_eq!(r.status, 404, "{t}");
                assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
                assert_eq!(r.header("etag"), None);
            }
        }
        let r = get(&site(true), &c, "GET", "/nope", &[]);
        assert_eq!(body_file(&r), Some(("404.html", Encoding::Identity, 0, 42)));
        let r = get(&site(false), &c, "GET", "/nope", &[]);
        assert!(matches!(&r.body, Body::Text(t) if t.contains("404 Not Found")));
        assert_eq!(
            get(&site(false), &c, "HEAD", "/nope", &[]).body,
            Body::Empty
        );
        assert_eq!(get(&site(false), &c, "GET", "/%zz", &[]).status, 400);
    }

    #[test]
    fn random_targets_and_headers_never_panic_or_escape() {
        let (s, mut c) = (site(true), Config::default());
        c.apply([("WEB_SPA_FALLBACK", "index.html")]);
        let path_chars: Vec<char> = "/.%2eEf5c\\a0?#x".chars().collect();
        let range_chars: Vec<char> = "bytes=-,09 ".chars().collect();
        let mut x = 0x2545_f491u32;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as usize % n
        };
        for _ in 0..5000 {
            let len = next(16);
            let target: String = (0..len)
                .map(|_| path_chars[next(path_chars.len())])
                .collect();
            let rlen = next(12);
            let range: String = (0..rlen)
                .map(|_| range_chars[next(range_chars.len())])
                .collect();
            let r = get(
                &s,
                &c,
                "GET",
                &target,
                &[("range", &range), ("accept-encoding", "br;q=0.5, gzip")],
            );
            assert!(
                [200, 206, 301, 400, 404, 416].contains(&r.status),
                "{target:?} {range:?}: {}",
                r.status
            );
            if let Body::File { rel, .. } = &r.body {
                assert!(
                    !rel.split('/').any(|seg| seg == ".." || seg.contains('\\')),
                    "{target:?} -> {rel}"
                );
            }
        }
    }

    #[test]
    fn dates_never_panic() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(u64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn other_methods_are_405() {
        let (s, c) = (site(false), Config::default());
        for m in ["POST", "PUT", "DELETE", "OPTIONS", "get"] {
            let r = get(&s, &c, m, "/index.html", &[]);
            assert_eq!(r.status, 405, "{m}");
            assert_eq!(r.header("allow"), Some("GET, HEAD"));
        }
    }

    #[test]
    fn spa_fallback_serves_routes_not_missing_assets() {
        let s = site(true);
        let mut c = Config::default();
        assert!(c.apply([("WEB_SPA_FALLBACK", "index.html")]).is_empty());
        let r = get(&s, &c, "GET", "/users/42", &[]);
        assert_eq!(r.status, 200);
        assert_eq!(body_file(&r).unwrap().0, "index.html");
        assert_eq!(get(&s, &c, "GET", "/missing.js", &[]).status, 404);
        let r = get(&s, &c, "GET", "/page.php", &[("accept", "text/html,*/*")]);
        assert_eq!(r.status, 200);
        // Escapes never fall back.
        assert_eq!(get(&s, &c, "GET", "/../x", &[]).status, 404);
    }

    #[test]
    fn config_rejects_unsafe_values_and_round_trips() {
        let mut c = Config::default();
        let bad = c.apply([
            ("WEB_INDEX", "../secret"),
            ("WEB_INDEX", "a/b.html"),
            ("WEB_SPA_FALLBACK", "/"),
            ("WEB_CSP", "a\r\nSet-Cookie: x"),
            ("OTHER", "whatever"),
        ]);
        assert_eq!(
            bad,
            ["WEB_INDEX", "WEB_INDEX", "WEB_SPA_FALLBACK", "WEB_CSP"]
        );
        assert_eq!(c, Config::default());
        c.apply([
            ("WEB_INDEX", "home.htm"),
            ("WEB_SPA_FALLBACK", "app/index.html"),
            ("WEB_CSP", "default-src *"),
        ]);
        let text = c.to_file();
        let mut d = Config::default();
        assert!(d.apply(Config::parse_lines(&text)).is_empty());
        assert_eq!(c, d);
    }
}
