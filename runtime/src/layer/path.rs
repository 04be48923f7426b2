//! Entry-name hygiene shared by unpack and diff.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Normalises a tar entry name to a relative path of plain components, or says
/// which rule it breaks. `./` prefixes and empty components are tolerated (real
/// layers have them); `..`, absolute names and NUL bytes are not.
pub(crate) fn clean_entry_path(raw: &[u8]) -> Result<PathBuf, &'static str> {
    if raw.contains(&0) {
        return Err("name contains a NUL byte");
    }
    let p = Path::new(OsStr::from_bytes(raw));
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err("name contains a `..` component"),
            Component::RootDir | Component::Prefix(_) => return Err("name is absolute"),
        }
    }
    Ok(out)
}

/// The relative form of an absolute symlink target, as seen from a link living at
/// `link` (relative to the rootfs). `..` in the target is resolved lexically
/// against the root, as the kernel does at `/`.
pub(crate) fn relativize_symlink(link: &Path, target: &Path) -> PathBuf {
    let mut parts: Vec<&OsStr> = Vec::new();
    for c in target.components() {
        match c {
            Component::Normal(n) => parts.push(n),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    let depth = link.parent().map(|p| p.components().count()).unwrap_or(0);
    let mut out = PathBuf::new();
    for _ in 0..depth {
        out.push("..");
    }
    for p in parts {
        out.push(p);
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_and_rejects() {
        assert_eq!(clean_entry_path(b"./a//b/").unwrap(), PathBuf::from("a/b"));
        assert!(clean_entry_path(b"../x").is_err());
        assert!(clean_entry_path(b"a/../../x").is_err());
        assert!(clean_entry_path(b"/etc/x").is_err());
    }

    #[test]
    fn relativizes() {
        let r = |l: &str, t: &str| relativize_symlink(Path::new(l), Path::new(t));
        assert_eq!(r("etc/localtime", "/usr/share/zoneinfo/UTC"), PathBuf::from("../usr/share/zoneinfo/UTC"));
        assert_eq!(r("bin", "/usr/bin"), PathBuf::from("usr/bin"));
        assert_eq!(r("a/b/c", "/../../etc"), PathBuf::from("../../etc"));
        assert_eq!(r("x", "/"), PathBuf::from("."));
    }
}
