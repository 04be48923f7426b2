//! A tar writer for `save-artifacts`, whose stdout must be a pure tar stream
//! (anything else printed there corrupts it; log to stderr, see [`crate::step!`]).

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::fs::{mode, sorted_entries, with_path};

/// Writes directory trees as a tar stream, keeping modes and symlinks
/// (never followed), in name order.
///
/// ```no_run
/// // save-artifacts: hand the dependency cache to the next build, which
/// // finds it at $DESTINATION/artifacts/cache.
/// let mut tar = ws2i_sdk::ArtifactsTar::stdout();
/// tar.append_tree("/opt/app-root/cache", "cache")?;
/// tar.finish()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ArtifactsTar<W: Write> {
    builder: tar::Builder<W>,
}

impl ArtifactsTar<BufWriter<io::Stdout>> {
    /// The stream on stdout, as `save-artifacts` must produce it.
    pub fn stdout() -> Self {
        ArtifactsTar::new(BufWriter::new(io::stdout()))
    }
}

impl<W: Write> ArtifactsTar<W> {
    pub fn new(out: W) -> Self {
        let mut builder = tar::Builder::new(out);
        builder.follow_symlinks(false);
        ArtifactsTar { builder }
    }

    /// Adds `dir` and everything under it as `name/...`; an empty `name` (or
    /// `.`) puts the directory's contents at the top of the archive.
    pub fn append_tree(&mut self, dir: impl AsRef<Path>, name: impl AsRef<Path>) -> io::Result<()> {
        let (dir, name) = (dir.as_ref(), name.as_ref());
        let name = name.strip_prefix(".").unwrap_or(name);
        if !name.as_os_str().is_empty() {
            self.append_entry(
                dir,
                name,
                fs::symlink_metadata(dir)
                    .map_err(|e| with_path(e, "stat", dir))?
                    .file_type(),
            )?;
        } else if !dir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a directory", dir.display()),
            ));
        }
        if fs::symlink_metadata(dir)
            .map(|m| m.is_dir())
            .unwrap_or(false)
        {
            self.append_children(dir, name)?;
        }
        Ok(())
    }

    fn append_children(&mut self, dir: &Path, name: &Path) -> io::Result<()> {
        for (child, kind) in sorted_entries(dir)? {
            let (src, entry_name) = (dir.join(&child), name.join(&child));
            self.append_entry(&src, &entry_name, kind)?;
            if kind.is_dir() {
                self.append_children(&src, &entry_name)?;
            }
        }
        Ok(())
    }

    fn append_entry(&mut self, src: &Path, name: &Path, kind: fs::FileType) -> io::Result<()> {
        let meta = fs::symlink_metadata(src).map_err(|e| with_path(e, "stat", src))?;
        let mut h = tar::Header::new_gnu();
        let default_mode = if kind.is_dir() {
            0o755
        } else if kind.is_symlink() {
            0o777
        } else {
            0o644
        };
        h.set_mode(match mode(src) {
            Ok(m) => m,
            // A preview 2 hook has no way to learn modes: use the usual ones.
            Err(e) if e.kind() == io::ErrorKind::Unsupported => default_mode,
            Err(e) => return Err(e),
        });
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        h.set_mtime(mtime);
        h.set_uid(0);
        h.set_gid(0);
        if kind.is_symlink() {
            let target = fs::read_link(src).map_err(|e| with_path(e, "readlink", src))?;
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            self.builder.append_link(&mut h, name, &target)
        } else if kind.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            self.builder.append_data(&mut h, name, io::empty())
        } else if kind.is_file() {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(meta.len());
            let f = fs::File::open(src).map_err(|e| with_path(e, "open", src))?;
            self.builder.append_data(&mut h, name, f)
        } else {
            Ok(()) // sockets, fifos, devices: not artifacts
        }
        .map_err(|e| with_path(e, "tar", src))
    }

    /// Writes the end-of-archive marker and flushes; returns the writer.
    pub fn finish(self) -> io::Result<W> {
        let mut out = self.builder.into_inner()?;
        out.flush()?;
        Ok(out)
    }
}
