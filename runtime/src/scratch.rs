//! Scratch files and directories that say whether their writer is still alive.
//!
//! ws2i writes through temporary names (a blob before its rename, a rootfs before it is
//! installed, a build root for the length of a build). A process killed with SIGKILL cannot
//! remove them, and a name alone cannot tell a dead writer's leftover from a live writer's work
//! in progress: `ws2i prune` removing a concurrent build's half-written blob would break it.
//! So each writer holds an exclusive `flock` on its scratch entry for as long as it works;
//! the kernel drops the lock when the process dies, however it dies. [`sweep`] removes only
//! entries whose lock it can take, and that are older than a short grace period (which covers
//! the moment between creating an entry and locking it).

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Entries younger than this are never swept: a writer creates, then locks.
pub const GRACE: Duration = Duration::from_secs(2);

/// The lock a live writer holds on its scratch entry; dropping it releases the lock.
#[derive(Debug)]
pub struct Held(#[allow(dead_code)] File);

/// A temporary directory held by this process and removed when dropped: what
/// `tempfile::TempDir` is, plus the lock that tells [`sweep`] its owner is alive.
#[derive(Debug)]
pub struct ScratchDir {
    // Declared first, so dropped first: the tree goes while the lock is still held.
    dir: Option<tempfile::TempDir>,
    path: std::path::PathBuf,
    _held: Held,
}

impl ScratchDir {
    /// A new directory `<parent>/<prefix>XXXXXX`; sweep `parent` with `prefix`.
    pub fn new_in(parent: &Path, prefix: &str) -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir_in(parent)?;
        let held = hold(dir.path())?;
        Ok(ScratchDir { path: dir.path().to_path_buf(), dir: Some(dir), _held: held })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the tree after this process (`--save-temp-dir`): renamed to `kept-<name>`, a
    /// name no sweep matches. Returns where it is now.
    pub fn keep(&mut self) -> io::Result<std::path::PathBuf> {
        if let Some(d) = self.dir.take() {
            let from = d.keep();
            let name = from.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let to = from.with_file_name(format!("kept-{}", name.trim_start_matches('.')));
            fs::rename(&from, &to)?;
            self.path = to;
        }
        Ok(self.path.clone())
    }
}

/// Locks the scratch directory or file at `path` for this process.
pub fn hold(path: &Path) -> io::Result<Held> {
    let f = open_nofollow(path)?;
    lock(&f, false)?;
    Ok(Held(f))
}

/// Locks an open scratch file (a temp blob) for as long as `file`'s descriptor stays open.
pub fn hold_file(file: &File) -> io::Result<()> {
    lock(file, false)
}

/// Removes the entries of `dir` whose name `is_scratch` accepts, that no live process holds
/// and that are older than [`GRACE`]. Returns how many were removed. A missing `dir` is empty.
pub fn sweep(dir: &Path, is_scratch: impl Fn(&str) -> bool) -> io::Result<usize> {
    sweep_aged(dir, GRACE, is_scratch)
}

fn sweep_aged(dir: &Path, grace: Duration, is_scratch: impl Fn(&str) -> bool) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for e in entries {
        let e = e?;
        if !e.file_name().to_str().is_some_and(&is_scratch) {
            continue;
        }
        let path = e.path();
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        let young = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .is_none_or(|age| age < grace);
        if young {
            continue;
        }
        if meta.file_type().is_symlink() {
            // ws2i never makes a scratch link; whatever made it, it is not to be followed.
            fs::remove_file(&path)?;
            removed += 1;
            continue;
        }
        // Holding the lock while removing keeps a second sweeper from racing this one.
        let Ok(f) = open_nofollow(&path) else { continue };
        if lock(&f, true).is_err() {
            continue; // a live writer holds it
        }
        if meta.is_dir() {
            fs::remove_dir_all(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
        removed += 1;
    }
    Ok(removed)
}

fn open_nofollow(path: &Path) -> io::Result<File> {
    // O_RDONLY opens directories as well as files; O_NONBLOCK keeps a FIFO planted under a
    // scratch name from blocking the open.
    File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

fn lock(f: &File, nonblocking: bool) -> io::Result<()> {
    let op = libc::LOCK_EX | if nonblocking { libc::LOCK_NB } else { 0 };
    // SAFETY: flock on a valid, owned descriptor.
    if unsafe { libc::flock(f.as_raw_fd(), op) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_only_old_unheld_scratch() {
        let t = tempfile::tempdir().unwrap();
        let (dead, live, young, other) =
            (t.path().join(".tmp-dead"), t.path().join(".tmp-live"), t.path().join(".tmp-young"), t.path().join("keep"));
        // `young` is unheld: only its age protects it until the grace period is over.
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join("f"), b"x").unwrap();
        fs::write(&live, b"x").unwrap();
        fs::write(&young, b"x").unwrap();
        fs::write(&other, b"x").unwrap();
        let _held = hold(&live).unwrap();
        assert_eq!(sweep(t.path(), |n| n.starts_with(".tmp-")).unwrap(), 0, "all are younger than GRACE");
        let n = sweep_aged(t.path(), Duration::ZERO, |n| n.starts_with(".tmp-")).unwrap();
        assert_eq!(n, 2);
        assert!(!dead.exists() && !young.exists());
        assert!(live.exists() && other.exists());
    }

    #[test]
    fn a_planted_link_is_removed_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("precious"), b"x").unwrap();
        let link = t.path().join(".tmp-link");
        std::os::unix::fs::symlink(outside.path(), &link).unwrap();
        sweep_aged(t.path(), Duration::ZERO, |n| n.starts_with(".tmp-")).unwrap();
        assert!(fs::symlink_metadata(&link).is_err());
        assert!(outside.path().join("precious").exists());
    }
}
