//! Comparing a build's rootfs against the base it was checked out from.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::cache::{BaseRootfs, BuildRoot, FileStamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// Added or changed (content, mode, type or symlink target).
    Upsert,
    /// Present in the base, gone from the build: packed as a whiteout.
    Delete,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Relative to the rootfs, plain components only.
    pub path: PathBuf,
    pub kind: ChangeKind,
}

/// The entries a layer must carry, sorted by path (parents before children),
/// and the tree holding the upserted content.
#[derive(Clone, Debug)]
pub struct Changes {
    root: PathBuf,
    changes: Vec<Change>,
}

impl Changes {
    /// Every entry below `dir` as an upsert: a whole tree as one layer.
    pub fn whole_tree(dir: &Path) -> Result<Changes> {
        let mut changes = Vec::new();
        let mut w = Walker { base: None, build: dir, stamps: None, exclude: Vec::new(), out: &mut changes, links: HashMap::new() };
        w.walk(Path::new(""), false)?;
        Ok(Changes { root: dir.to_path_buf(), changes })
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn as_slice(&self) -> &[Change] {
        &self.changes
    }
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// What the build added, changed and deleted relative to its base. `exclude`
/// lists guest paths ("/tmp/src") left out together with everything below them.
///
/// Content changes are detected without trusting size/mtime: a file whose inode
/// and ctime are those recorded at checkout is untouched (ctime cannot be set
/// from user space); any other file of equal size is compared byte for byte.
///
/// An excluded path is left out both as written and as it resolves inside the build root
/// (its parents' symlinks followed, and its own): on a Debian-shaped builder `/var/run` is a link
/// to `../run`, so what was placed at `/var/run/secrets` lives at `run/secrets`.
pub fn diff(base: &BaseRootfs, build: &BuildRoot, exclude: &[&str]) -> Result<Changes> {
    let mut resolved = Vec::new();
    for e in exclude {
        let rel = super::path::clean_entry_path(e.trim_start_matches('/').as_bytes())
            .map_err(|r| anyhow::anyhow!("exclude path {e:?}: {r}"))?;
        let parent = super::path::resolve_in_root(build.path(), rel.parent().unwrap_or(Path::new("")));
        let mut forms = vec![super::path::resolve_in_root(build.path(), &rel)];
        forms.extend(rel.file_name().map(|f| parent.join(f)));
        forms.push(rel);
        for f in forms {
            if !f.as_os_str().is_empty() && !resolved.contains(&f) {
                resolved.push(f);
            }
        }
    }
    let exclude = resolved;
    let mut changes = Vec::new();
    let mut w = Walker {
        base: Some(base.path()),
        build: build.path(),
        stamps: Some(build.stamps()),
        exclude,
        out: &mut changes,
        links: HashMap::new(),
    };
    w.walk(Path::new(""), true)?;
    // A hardlink group is packed whole when any member changed, so the layer
    // recreates the link even when one name was already in the base.
    let links = std::mem::take(&mut w.links);
    let upserted: BTreeSet<PathBuf> =
        changes.iter().filter(|c| c.kind == ChangeKind::Upsert).map(|c| c.path.clone()).collect();
    let mut extra = Vec::new();
    for group in links.values() {
        if group.iter().any(|p| upserted.contains(p)) {
            extra.extend(group.iter().filter(|p| !upserted.contains(*p)).cloned());
        }
    }
    if !extra.is_empty() {
        changes.extend(extra.into_iter().map(|path| Change { path, kind: ChangeKind::Upsert }));
        changes.sort_by(|a, b| a.path.cmp(&b.path));
    }
    Ok(Changes { root: build.path().to_path_buf(), changes })
}

struct Walker<'a> {
    base: Option<&'a Path>,
    build: &'a Path,
    stamps: Option<&'a std::collections::HashMap<PathBuf, FileStamp>>,
    exclude: Vec<PathBuf>,
    out: &'a mut Vec<Change>,
    /// Build paths of multiply-linked regular files, by inode.
    links: HashMap<u64, Vec<PathBuf>>,
}

fn sorted_names(dir: &Path) -> Result<BTreeSet<OsString>> {
    let mut names = BTreeSet::new();
    for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        names.insert(e.with_context(|| format!("reading {}", dir.display()))?.file_name());
    }
    Ok(names)
}

impl Walker<'_> {
    fn excluded(&self, p: &Path) -> bool {
        self.exclude.iter().any(|e| p.starts_with(e))
    }

    /// `rel` is a directory in the build; `base_dir` says whether it is one in the base too.
    fn walk(&mut self, rel: &Path, base_dir: bool) -> Result<()> {
        let build_names = sorted_names(&self.build.join(rel))?;
        let base_names = match (self.base, base_dir) {
            (Some(b), true) => sorted_names(&b.join(rel))?,
            _ => BTreeSet::new(),
        };
        let all: BTreeSet<&OsString> = build_names.iter().chain(base_names.iter()).collect();
        for name in all {
            let p = rel.join(name);
            if self.excluded(&p) {
                continue;
            }
            if !build_names.contains(name) {
                self.out.push(Change { path: p, kind: ChangeKind::Delete });
                continue;
            }
            let bm = fs::symlink_metadata(self.build.join(&p)).with_context(|| format!("stat {}", p.display()))?;
            let am = if base_names.contains(name) {
                Some(fs::symlink_metadata(self.base.expect("has base").join(&p)).with_context(|| format!("stat base {}", p.display()))?)
            } else {
                None
            };
            if bm.is_file() && bm.nlink() > 1 {
                self.links.entry(bm.ino()).or_default().push(p.clone());
            }
            let changed = match &am {
                None => true,
                Some(am) => self.changed(&p, am, &bm)?,
            };
            if changed {
                self.out.push(Change { path: p.clone(), kind: ChangeKind::Upsert });
            }
            if bm.is_dir() {
                self.walk(&p, am.as_ref().is_some_and(|m| m.is_dir()))?;
            }
        }
        Ok(())
    }

    fn changed(&self, p: &Path, am: &fs::Metadata, bm: &fs::Metadata) -> Result<bool> {
        let (at, bt) = (am.file_type(), bm.file_type());
        if at.is_dir() != bt.is_dir() || at.is_symlink() != bt.is_symlink() || at.is_file() != bt.is_file() {
            return Ok(true);
        }
        if !bt.is_symlink() && am.mode() & 0o7777 != bm.mode() & 0o7777 {
            return Ok(true);
        }
        if bt.is_symlink() {
            let base = self.base.expect("has base");
            return Ok(fs::read_link(base.join(p))? != fs::read_link(self.build.join(p))?);
        }
        if !bt.is_file() {
            return Ok(false);
        }
        if am.len() != bm.len() {
            return Ok(true);
        }
        let stamp = FileStamp::of(bm);
        if self.stamps.and_then(|s| s.get(p)) == Some(&stamp) {
            return Ok(false);
        }
        Ok(!same_content(&self.base.expect("has base").join(p), &self.build.join(p))?)
    }
}

fn same_content(a: &Path, b: &Path) -> Result<bool> {
    let open = |p: &Path| fs::File::open(p).with_context(|| format!("opening {}", p.display()));
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut fs::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
