//! The static-web builder: the S2I equivalent of the httpd builder, with
//! WebAssembly hooks.
//!
//! - [`site`]: what `assemble` does — copy the site into [`layout::WEB_ROOT`],
//!   render Markdown, precompress text assets (reusing a previous build's
//!   outputs keyed by content hash), write per-file metadata records and a
//!   manifest;
//! - [`serve`]: what the `run` component does for one request — a pure
//!   function from a request and a [`serve::Site`] to a [`serve::Response`],
//!   so that every rule (path escapes, ETags, ranges, negotiation) is tested
//!   natively; the wasi:http adapter only moves bytes;
//! - [`path`], [`mime`], [`meta`], [`range`], [`encoding`]: the pieces.
//!
//! Layout in the image (s2i's httpd builder in spirit):
//! - `/opt/app-root/web`: the web root (files, `x.gz` / `x.br` next to `x`);
//! - `/opt/app-root/etc/static-web/meta/<path>`: one small record per
//!   served file ([`meta::FileMeta`]), so a request costs one small read, not
//!   a parse of the whole manifest; only files with a record are served;
//! - `/opt/app-root/etc/static-web/manifest.tsv`: every file, its content
//!   type, ETag and variants (read by `save-artifacts`);
//! - `/opt/app-root/etc/static-web/config`: `WEB_INDEX`, `WEB_SPA_FALLBACK`
//!   as assemble saw them (the run hook's environment overrides them).

pub mod encoding;
pub mod layout;
pub mod markdown;
pub mod meta;
pub mod mime;
pub mod path;
pub mod range;
pub mod serve;
pub mod site;

/// The fuzz target over what a client sends (docs/fuzzing.md, `fuzz/` target
/// `static_web_request`): line 1 a request target, line 2 a `Range` header,
/// line 3 an `Accept-Encoding` header, the rest metadata and manifest lines.
/// Each piece may be refused; none may panic. The unit test below replays the
/// corpus in `fuzz/corpus/static_web_request/`.
#[doc(hidden)]
pub fn fuzz_request(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines();
    let target = lines.next().unwrap_or("/");
    if let Ok(p) = path::WebPath::parse(target) {
        let _ = (p.rel(), p.extension(), p.to_url_path(true), mime::content_type(&p.rel()));
    }
    let _ = path::percent_decode(target);
    let range = lines.next().unwrap_or("");
    for size in [0, 1, 1000, u64::MAX] {
        let _ = range::decide(range, size);
    }
    let _ = encoding::negotiate(lines.next(), true, true);
    for line in lines {
        let _ = meta::FileMeta::decode(line);
        let _ = meta::parse_manifest_line(line);
    }
}

#[cfg(test)]
mod fuzz_corpus {
    /// Every input the fuzzer kept still parses or is refused without a panic.
    #[test]
    fn the_request_corpus_replays_without_a_panic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/static_web_request");
        let inputs: Vec<_> = std::fs::read_dir(&dir).expect("the static_web_request corpus").flatten().collect();
        assert!(!inputs.is_empty());
        for e in inputs {
            // A fuzzer running beside the test replaces inputs with smaller ones.
            let Ok(data) = std::fs::read(e.path()) else { continue };
            super::fuzz_request(&data);
        }
    }
}
