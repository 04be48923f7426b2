//! Layers and root filesystems: unpack hostile tar layers safely, cache unpacked
//! base root filesystems by layer chain, hand each build a private writable copy,
//! diff that copy against its base and pack the result reproducibly.
//!
//! Everything here takes plain readers, paths and [`Digest`]s; it knows nothing
//! about the image store. See docs/layers.md for the decisions and measurements.

mod cache;
mod compression;
mod diff;
mod pack;
mod path;
mod unpack;
mod whiteout;

pub use cache::{BaseRootfs, BuildRoot, LayerSource, RootfsCache};
pub use compression::{Compression, MediaTypeFlavor};
pub use diff::{diff, Change, ChangeKind, Changes};
pub use pack::{pack, pack_dir, PackOptions, PackedLayer};
/// Also the check for a source tree's broken links (source/copy.rs).
pub(crate) use path::link_stays_inside;
pub use unpack::{unpack, unpack_with, UnpackLimits, UnpackOptions, UnpackStats};

use crate::Digest;

/// Why a layer could not be unpacked, diffed or packed. Callers branch on the
/// kind (a hostile layer is not retried; an I/O error might be).
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The layer tries something a well-formed layer never needs; `rule` names it.
    #[error("layer entry {entry:?} rejected: {rule}")]
    Unsafe { entry: String, rule: &'static str },
    #[error("layer exceeds the uncompressed size cap of {cap} bytes (at entry {entry:?})")]
    TooLarge { entry: String, cap: u64 },
    #[error("layer exceeds the entry-count cap of {cap} entries")]
    TooManyEntries { cap: u64 },
    #[error("layer content does not match its diff_id: expected {expected}, got {actual}")]
    DiffIdMismatch { expected: Digest, actual: Digest },
    #[error("unsupported layer media type {0:?}")]
    MediaType(String),
    #[error("layer entry {entry:?}: {source}")]
    Io { entry: String, #[source] source: std::io::Error },
    #[error("malformed layer stream: {0}")]
    Format(#[source] std::io::Error),
}

impl LayerError {
    pub(crate) fn io(entry: impl std::fmt::Display, source: std::io::Error) -> Self {
        LayerError::Io { entry: shown_name(entry), source }
    }
    pub(crate) fn unsafe_entry(entry: impl std::fmt::Display, rule: &'static str) -> Self {
        LayerError::Unsafe { entry: shown_name(entry), rule }
    }
}

/// An entry name as messages show it: a hostile name (up to the 1 MiB an extension header
/// may carry) is cut, never echoed whole.
pub(crate) fn shown_name(entry: impl std::fmt::Display) -> String {
    const MAX: usize = 256;
    let s = entry.to_string();
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}… ({} bytes)", &s[..i], s.len()),
        None => s,
    }
}
