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

/// Whether a symlink at `link` (relative to a root) with `target` stays below that root:
/// relative, and its `..` never climbing above it (checked lexically, from the link's dir, so a
/// broken link cannot start pointing at host files when the missing part appears later).
pub(crate) fn link_stays_inside(link: &Path, target: &Path) -> bool {
    let mut depth = link.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Symlinks followed by [`resolve_in_root`] before it gives up (the kernel's limit).
const MAX_HOPS: usize = 40;

/// `rel` (plain components) resolved inside `root` as the image itself would resolve it: each
/// symlink on the way followed, an absolute target taken from `root`, `..` stopping at `root`.
/// Nothing outside `root` is ever looked at. A missing component (and anything after a loop of
/// links) is kept as it is, so the result always names where a write to `rel` would land.
pub(crate) fn resolve_in_root(root: &Path, rel: &Path) -> PathBuf {
    let mut todo: Vec<std::ffi::OsString> = rel.iter().rev().map(|c| c.to_owned()).collect();
    let mut out = PathBuf::new();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match Path::new(&c).components().next() {
            Some(Component::Normal(_)) => {}
            Some(Component::ParentDir) => {
                out.pop();
                continue;
            }
            _ => continue,
        }
        let candidate = out.join(&c);
        let full = root.join(&candidate);
        let is_link = std::fs::symlink_metadata(&full).is_ok_and(|m| m.file_type().is_symlink());
        match std::fs::read_link(&full) {
            Ok(target) if is_link && hops < MAX_HOPS => {
                hops += 1;
                if target.has_root() {
                    out = PathBuf::new();
                }
                todo.extend(target.iter().rev().map(|c| c.to_owned()));
            }
            _ => out = candidate,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_inside_the_root_like_the_image() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("run")).unwrap();
        std::fs::create_dir_all(r.join("var/tmp")).unwrap();
        std::os::unix::fs::symlink("../run", r.join("var/run")).unwrap();
        std::os::unix::fs::symlink("var/tmp", r.join("tmp")).unwrap();
        std::os::unix::fs::symlink("/../../etc", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        let res = |p: &str| resolve_in_root(r, Path::new(p));
        assert_eq!(res("var/run/secrets/x"), PathBuf::from("run/secrets/x"));
        assert_eq!(res("tmp/src"), PathBuf::from("var/tmp/src"));
        assert_eq!(res("tmp"), PathBuf::from("var/tmp"));
        assert_eq!(res("abs/passwd"), PathBuf::from("etc/passwd"));
        assert_eq!(res("loop/x"), PathBuf::from("loop/x"));
        assert_eq!(res("plain/dir"), PathBuf::from("plain/dir"));
        let inside = |l: &str, t: &str| link_stays_inside(Path::new(l), Path::new(t));
        assert!(inside("a/b", "../c") && inside("a", "b/c") && inside("a/b", "./x"));
        assert!(!inside("a", "../x") && !inside("a/b", "../../x") && !inside("a", "/etc"));
    }

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
