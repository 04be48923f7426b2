//! Copying a hostile source tree into the staging dir.
//!
//! Every access goes through cap-std `Dir`s rooted at the source root and the destination, so no
//! path or symlink in the tree can reach outside either. Rules:
//! - regular files are copied by content into new files (mode bits kept, setuid/setgid/sticky
//!   dropped); a file is opened with `O_NOFOLLOW|O_NONBLOCK` and re-checked with `fstat`, so a
//!   file swapped for a FIFO or a link after listing is refused, not followed or blocked on;
//! - a regular file with more than one hard link is skipped with a warning: its other name may be
//!   a host file outside the source, and content cannot tell which name is "the" file;
//! - FIFOs, sockets and devices are skipped with a warning;
//! - symlinks: with `keep_symlinks` every link is copied as a link, verbatim (it is content
//!   meant for the image; nothing on the host follows it afterwards). Otherwise a link whose
//!   target resolves inside the source root is dereferenced (file content or directory copied);
//!   a broken link inside the root is copied as a link (as upstream); a link that leaves the root
//!   (absolute, or `..` past the root), or loops, is never dereferenced: it is skipped with a
//!   warning;
//! - a directory reached twice through links (a cycle) is skipped with a warning;
//! - exclusions hold through links: a link whose target (resolved inside the root) is left out,
//!   or lies below a directory that is, is left out too, kept or followed alike, and what is
//!   copied through a followed directory link is filtered by its real path as well.

use std::io;
use std::path::{Path, PathBuf};

use cap_std::fs::{Dir, MetadataExt, OpenOptions, OpenOptionsExt, PermissionsExt};

/// Decides whether a path (relative to the copy root, `/`-separated) is left out.
pub type Filter<'a> = &'a dyn Fn(&str) -> bool;

pub struct CopyOptions<'a> {
    pub keep_symlinks: bool,
    pub skip: Filter<'a>,
}

const MAX_DEPTH: usize = 256;

/// Copies the content of `src` into `dst` (an empty dir). Returns warnings for what was skipped.
pub fn copy_tree(src: &Dir, dst: &Dir, opts: &CopyOptions<'_>) -> io::Result<Vec<String>> {
    let root = src.dir_metadata()?;
    let mut ctx = Walk { src, dst, opts, warnings: Vec::new(), ancestors: vec![(root.dev(), root.ino())] };
    ctx.dir(Path::new(""), Path::new(""), 0)?;
    Ok(ctx.warnings)
}

struct Walk<'a, 'o> {
    src: &'a Dir,
    dst: &'a Dir,
    opts: &'a CopyOptions<'o>,
    warnings: Vec<String>,
    ancestors: Vec<(u64, u64)>,
}

fn rel_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

impl Walk<'_, '_> {
    /// Copies the directory `rel`, whose real path in the tree (its links resolved) is `real`.
    fn dir(&mut self, rel: &Path, real: &Path, depth: usize) -> io::Result<()> {
        if depth > MAX_DEPTH {
            self.warnings.push(format!("{}: directory nesting too deep, not copied", rel_str(rel)));
            return Ok(());
        }
        let listing = if rel.as_os_str().is_empty() { self.src.entries()? } else { self.src.read_dir(rel)? };
        let mut names: Vec<_> = listing.map(|e| e.map(|e| e.file_name())).collect::<io::Result<_>>()?;
        names.sort();
        for name in names {
            let child: PathBuf = rel.join(&name);
            let real_child = real.join(&name);
            if (self.opts.skip)(&rel_str(&child)) || (real != rel && (self.opts.skip)(&rel_str(&real_child))) {
                continue;
            }
            let meta = self.src.symlink_metadata(&child)?;
            let ft = meta.file_type();
            if ft.is_dir() {
                self.enter_dir(&child, &real_child, &meta, depth)?;
            } else if ft.is_file() {
                self.file(&child, false)?;
            } else if ft.is_symlink() {
                self.symlink(&child, depth)?;
            } else {
                self.warnings.push(format!("{}: special file (FIFO, socket or device), not copied", rel_str(&child)));
            }
        }
        Ok(())
    }

    fn enter_dir(&mut self, rel: &Path, real: &Path, meta: &cap_std::fs::Metadata, depth: usize) -> io::Result<()> {
        let id = (meta.dev(), meta.ino());
        if self.ancestors.contains(&id) {
            self.warnings.push(format!("{}: directory cycle through symlinks, not copied", rel_str(rel)));
            return Ok(());
        }
        self.dst.create_dir(rel)?;
        self.ancestors.push(id);
        let r = self.dir(rel, real, depth + 1);
        self.ancestors.pop();
        r?;
        // Owner keeps write access so the staged tree can be cleaned up and modified by later steps.
        self.dst.set_permissions(rel, cap_std::fs::Permissions::from_mode((meta.mode() & 0o777) | 0o700))
    }

    fn file(&mut self, rel: &Path, follow: bool) -> io::Result<()> {
        let mut oo = OpenOptions::new();
        oo.read(true);
        let flags = if follow { libc::O_NONBLOCK } else { libc::O_NONBLOCK | libc::O_NOFOLLOW };
        oo.custom_flags(flags);
        let mut f = match self.src.open_with(rel, &oo) {
            Ok(f) => f,
            Err(e) => {
                self.warnings.push(format!("{}: cannot open ({e}), not copied", rel_str(rel)));
                return Ok(());
            }
        };
        let meta = f.metadata()?;
        if !meta.is_file() {
            self.warnings.push(format!("{}: not a regular file when opened, not copied", rel_str(rel)));
            return Ok(());
        }
        if meta.nlink() > 1 {
            self.warnings.push(format!("{}: has {} hard links, not copied", rel_str(rel), meta.nlink()));
            return Ok(());
        }
        let mut wo = OpenOptions::new();
        wo.write(true).create_new(true);
        let mut out = self.dst.open_with(rel, &wo)?;
        io::copy(&mut f, &mut out)?;
        out.set_permissions(cap_std::fs::Permissions::from_mode(meta.mode() & 0o777))?;
        Ok(())
    }

    fn symlink(&mut self, rel: &Path, depth: usize) -> io::Result<()> {
        let target = self.src.read_link_contents(rel)?;
        // Where the link leads inside the root (an error: broken, a loop, or it leaves the root).
        let real = self.src.canonicalize(rel).ok().map(|r| r.components().filter(|c| matches!(c, std::path::Component::Normal(_))).collect::<PathBuf>());
        if let Some(real) = real.as_ref().filter(|r| self.excluded_with_parents(r)) {
            self.warnings.push(format!(
                "{}: symlink to {}, which is excluded, not copied",
                rel_str(rel),
                rel_str(real)
            ));
            return Ok(());
        }
        if self.opts.keep_symlinks {
            return self.dst.symlink_contents(&target, rel);
        }
        // `metadata` follows links but cap-std refuses any resolution that leaves the root.
        match self.src.metadata(rel) {
            Ok(m) if m.is_dir() => {
                let real = real.unwrap_or_else(|| rel.to_path_buf());
                self.enter_dir(rel, &real, &m, depth)
            }
            Ok(m) if m.is_file() => self.file(rel, true),
            Ok(_) => {
                self.warnings.push(format!("{}: symlink to a special file, not copied", rel_str(rel)));
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && crate::layer::link_stays_inside(rel, &target) => {
                self.dst.symlink_contents(&target, rel)
            }
            Err(_) => {
                self.warnings.push(format!(
                    "{}: symlink to {} leaves the source root, not copied (use --keep-symlinks to keep it as a link)",
                    rel_str(rel),
                    target.display()
                ));
                Ok(())
            }
        }
    }
}

impl Walk<'_, '_> {
    /// Whether `real` or one of its parent directories is left out.
    fn excluded_with_parents(&self, real: &Path) -> bool {
        let mut p = PathBuf::new();
        real.iter().any(|c| {
            p.push(c);
            (self.opts.skip)(&rel_str(&p))
        })
    }
}

