//! OCI whiteouts: `.wh.NAME` deletes NAME from lower layers, `.wh..wh..opq`
//! empties its directory of lower-layer content. Entries of the same layer are
//! never hidden by its own whiteouts (image-spec "Whiteouts").

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;

pub(crate) const PREFIX: &str = ".wh.";
pub(crate) const OPAQUE: &str = ".wh..wh..opq";

pub(crate) enum Whiteout<'a> {
    /// Empty the directory holding the marker.
    Opaque,
    /// Delete this sibling.
    Remove(&'a OsStr),
    /// aufs bookkeeping (`.wh..wh.plnk` …) or a malformed name: ignore.
    Meta,
}

pub(crate) fn parse(name: &OsStr) -> Option<Whiteout<'_>> {
    let b = name.as_bytes();
    if b == OPAQUE.as_bytes() {
        return Some(Whiteout::Opaque);
    }
    let rest = b.strip_prefix(PREFIX.as_bytes())?;
    if rest.starts_with(PREFIX.as_bytes()) || rest.is_empty() || rest == b"." || rest == b".." {
        return Some(Whiteout::Meta);
    }
    Some(Whiteout::Remove(OsStr::from_bytes(rest)))
}

/// Removes whatever sits at `name` in `dir` without following a symlink there.
pub(crate) fn remove_nofollow(dir: &Dir, name: &Path) -> io::Result<()> {
    match dir.symlink_metadata(name) {
        Ok(m) if m.is_dir() => dir.remove_dir_all(name),
        Ok(_) => dir.remove_file(name),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// True when `p` or anything below it was written by the current layer.
pub(crate) fn touched_by_layer(created: &BTreeSet<PathBuf>, p: &Path) -> bool {
    created.range(p.to_path_buf()..).next().is_some_and(|q| q.starts_with(p))
}

/// Empties `dir` (at rootfs path `rel`) of everything not written by this layer.
pub(crate) fn apply_opaque(dir: &Dir, rel: &Path, created: &BTreeSet<PathBuf>) -> io::Result<()> {
    for e in dir.entries()? {
        let name = e?.file_name();
        if !touched_by_layer(created, &rel.join(&name)) {
            remove_nofollow(dir, Path::new(&name))?;
        }
    }
    Ok(())
}
