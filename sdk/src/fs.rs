//! File helpers: modes (over the `ws2i.chmod` / `ws2i.mode` imports) and a
//! tree copy with `cp -Rf SRC/. DST` semantics that keeps modes and symlinks.
//!
//! WASI preview 1 can neither read nor set permission bits, so inside ws2i
//! both go through host imports. Built natively on Unix (to test a hook's
//! logic without ws2i) they use the OS directly.

use std::fs;
use std::io;
use std::path::Path;
#[cfg(all(target_os = "wasi", target_env = "p1"))]
use std::path::PathBuf;

/// The permission bits (`mode & 0o7777`) of a file, directory or symlink
/// (not followed), as the image layer will record them.
pub fn mode(path: impl AsRef<Path>) -> io::Result<u32> {
    let path = path.as_ref();
    #[cfg(all(target_os = "wasi", target_env = "p1"))]
    {
        crate::abi::mode(guest_path(path)?.as_bytes())
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Ok(fs::symlink_metadata(path)?.permissions().mode() & 0o7777)
    }
    #[cfg(not(any(unix, all(target_os = "wasi", target_env = "p1"))))]
    {
        Err(unsupported("reading a file mode", path))
    }
}

/// Sets the permission bits of a file or directory (a symlink is not
/// followed). Inside ws2i, setuid/setgid are dropped (`mode & 0o1777`).
pub fn set_mode(path: impl AsRef<Path>, mode: u32) -> io::Result<()> {
    let path = path.as_ref();
    #[cfg(all(target_os = "wasi", target_env = "p1"))]
    {
        crate::abi::chmod(guest_path(path)?.as_bytes(), mode)
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| with_path(e, "chmod", path))
    }
    #[cfg(not(any(unix, all(target_os = "wasi", target_env = "p1"))))]
    {
        let _ = mode;
        Err(unsupported("setting a file mode", path))
    }
}

/// Adds the execute bits wherever the read bits are set (`chmod +x` as
/// `install -m` would do it): `0o644` becomes `0o755`, `0o600` becomes `0o700`.
pub fn make_executable(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    let m = mode(path)?;
    set_mode(path, m | ((m & 0o444) >> 2))
}

/// Creates a symlink `link` whose content is `target`, as given (not resolved).
pub fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let (target, link) = (target.as_ref(), link.as_ref());
    #[cfg(target_os = "wasi")]
    let r = wasi_symlink(target, link);
    #[cfg(unix)]
    let r = std::os::unix::fs::symlink(target, link);
    #[cfg(not(any(unix, target_os = "wasi")))]
    let r: io::Result<()> = Err(unsupported("creating a symlink", link));
    r.map_err(|e| with_path(e, &format!("symlink -> {}", target.display()), link))
}

/// `std::os::wasi::fs::symlink_path` is unstable; wasi-libc, which std
/// links on every WASI target, has a plain `symlink` that resolves the link
/// against the preopens and the working directory.
#[cfg(target_os = "wasi")]
fn wasi_symlink(target: &Path, link: &Path) -> io::Result<()> {
    use std::ffi::CString;
    extern "C" {
        fn symlink(
            target: *const std::ffi::c_char,
            link: *const std::ffi::c_char,
        ) -> std::ffi::c_int;
    }
    let c = |p: &Path| {
        p.to_str()
            .and_then(|s| CString::new(s).ok())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: not a UTF-8 path without NUL", p.display()),
                )
            })
    };
    let (t, l) = (c(target)?, c(link)?);
    // SAFETY: both are valid NUL-terminated strings that outlive the call.
    if unsafe { symlink(t.as_ptr(), l.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What [`copy_tree`] copied.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CopyStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
}

/// Copies the *contents* of `from` into `to` like `cp -Rf from/. to`: `to`
/// is created if missing, existing files are replaced, directories merged;
/// symlinks are copied as symlinks (never followed), and every file's and
/// directory's permission bits are kept. Entries are visited in name order so
/// that logs and layers come out the same every time.
pub fn copy_tree(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<CopyStats> {
    let (from, to) = (from.as_ref(), to.as_ref());
    let meta = fs::metadata(from).map_err(|e| with_path(e, "copy from", from))?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("copy from {}: not a directory", from.display()),
        ));
    }
    let mut stats = CopyStats::default();
    copy_dir(from, to, &mut stats)?;
    Ok(stats)
}

fn copy_dir(from: &Path, to: &Path, stats: &mut CopyStats) -> io::Result<()> {
    match fs::symlink_metadata(to) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            fs::remove_file(to).map_err(|e| with_path(e, "replace", to))?;
            fs::create_dir(to).map_err(|e| with_path(e, "mkdir", to))?;
        }
        Err(_) => fs::create_dir_all(to).map_err(|e| with_path(e, "mkdir", to))?,
    }
    for (name, kind) in sorted_entries(from)? {
        let (src, dst) = (from.join(&name), to.join(&name));
        if kind.is_symlink() {
            let target = fs::read_link(&src).map_err(|e| with_path(e, "readlink", &src))?;
            remove_non_dir(&dst)?;
            symlink(&target, &dst)?;
            stats.symlinks += 1;
        } else if kind.is_dir() {
            copy_dir(&src, &dst, stats)?;
        } else if kind.is_file() {
            remove_non_dir(&dst)?;
            stats.bytes += fs::copy(&src, &dst)
                .map_err(|e| with_path(e, &format!("copy to {}", dst.display()), &src))?;
            set_mode(&dst, mode(&src)?)?;
            stats.files += 1;
        }
        // Sockets, fifos and devices have no place in an image built from source.
    }
    // Last, so that a read-only directory does not stop its own contents.
    set_mode(to, mode(from)?)?;
    stats.dirs += 1;
    Ok(())
}

/// A directory's entries, name-sorted, with their type (symlinks not followed).
pub(crate) fn sorted_entries(dir: &Path) -> io::Result<Vec<(std::ffi::OsString, fs::FileType)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| with_path(e, "read dir", dir))? {
        let entry = entry.map_err(|e| with_path(e, "read dir", dir))?;
        let kind = entry
            .file_type()
            .map_err(|e| with_path(e, "stat", &entry.path()))?;
        out.push((entry.file_name(), kind));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn remove_non_dir(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{}: is a directory, cannot replace it with a file",
                path.display()
            ),
        )),
        Ok(_) => fs::remove_file(path).map_err(|e| with_path(e, "replace", path)),
        Err(_) => Ok(()),
    }
}

/// The absolute guest path the ABI wants (relative paths are taken from the
/// hook's working directory, as WASI itself does).
#[cfg(all(target_os = "wasi", target_env = "p1"))]
fn guest_path(path: &Path) -> io::Result<String> {
    let abs: PathBuf = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    abs.into_os_string().into_string().map_err(|p| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: path is not UTF-8", Path::new(&p).display()),
        )
    })
}

pub(crate) fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

#[cfg(not(any(unix, all(target_os = "wasi", target_env = "p1"))))]
fn unsupported(what: &str, path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "{what} ({}) needs ws2i's host imports (wasm32-wasip1) or a Unix host",
            path.display()
        ),
    )
}
