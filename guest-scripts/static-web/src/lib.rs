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
