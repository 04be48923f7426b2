//! Unpacking a layer as hostile input. Every create/open goes through a cap-std
//! `Dir` (openat-based, confined to the target) and, on top of that, we never
//! resolve a symlink ourselves: a parent component that is a symlink is refused,
//! and existing entries are replaced without following them.

use std::collections::BTreeSet;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt as _;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use tar::EntryType;

use super::path::{clean_entry_path, relativize_symlink};
use super::whiteout::{self, remove_nofollow, Whiteout};
use super::{Compression, LayerError};
use crate::Digest;

/// Hashes what passes through, so the uncompressed stream can be checked
/// against its diff_id without a second pass.
struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }
}

/// Caps that make a hostile layer fail fast instead of filling the disk.
#[derive(Clone, Debug)]
pub struct UnpackLimits {
    /// Total uncompressed bytes of file content (sparse holes count).
    pub max_bytes: u64,
    pub max_entries: u64,
    /// Keep setuid/setgid bits (off: they are dropped).
    pub keep_setuid: bool,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        UnpackLimits { max_bytes: 16 << 30, max_entries: 1_000_000, keep_setuid: false }
    }
}

#[derive(Clone, Debug, Default)]
pub struct UnpackOptions {
    pub limits: UnpackLimits,
    /// Rewrite absolute symlink targets to relative ones (for base root
    /// filesystems: wasmtime-wasi guests cannot follow absolute symlinks).
    pub rewrite_absolute_symlinks: bool,
    /// When set, the uncompressed stream must hash to this (the config's
    /// diff_id); the rootfs cache is keyed by diff_ids, so it checks them.
    pub expected_diff_id: Option<Digest>,
    /// Skip an entry that breaks a safety rule (absolute or `..` name, a link leaving the
    /// target, a write through a symlink) with a warning instead of failing: for archives
    /// whose producer is not trusted to be well-formed, such as save-artifacts output.
    /// Symlinks that lead outside the target are skipped too.
    pub skip_unsafe: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnpackStats {
    pub entries: u64,
    /// Uncompressed file content written (sparse holes included).
    pub bytes: u64,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub whiteouts: u64,
    /// Device nodes, fifos and unknown entry types.
    pub skipped: u64,
}

/// Unpacks one layer onto `target` (which may already hold lower layers),
/// applying its whiteouts. `warn` receives one line per skipped entry.
pub fn unpack(
    reader: impl Read,
    compression: Compression,
    target: &Path,
    limits: &UnpackLimits,
    warn: &dyn Fn(&str),
) -> Result<UnpackStats, LayerError> {
    let opts = UnpackOptions { limits: limits.clone(), ..Default::default() };
    unpack_with(reader, compression, target, &opts, warn)
}

pub fn unpack_with(
    reader: impl Read,
    compression: Compression,
    target: &Path,
    opts: &UnpackOptions,
    warn: &dyn Fn(&str),
) -> Result<UnpackStats, LayerError> {
    let root = Dir::open_ambient_dir(target, ambient_authority())
        .map_err(|e| LayerError::io(target.display(), e))?;
    let decoder = TarGuard::new(compression.decoder(reader).map_err(LayerError::Format)?);
    let mut u = Unpacker {
        root,
        opts,
        stats: UnpackStats::default(),
        created: BTreeSet::new(),
        dir_modes: Vec::new(),
        is_root: unsafe { libc::geteuid() } == 0,
    };
    let mut archive = tar::Archive::new(HashingReader { inner: decoder, hasher: Default::default() });
    for entry in archive.entries().map_err(LayerError::Format)? {
        let entry = entry.map_err(LayerError::Format)?;
        u.stats.entries += 1;
        if u.stats.entries > opts.limits.max_entries {
            return Err(LayerError::TooManyEntries { cap: opts.limits.max_entries });
        }
        match u.entry(entry, warn) {
            Err(LayerError::Unsafe { entry, rule }) if opts.skip_unsafe => {
                warn(&format!("skipping {entry:?}: {rule}"));
                u.stats.skipped += 1;
            }
            r => r?,
        }
    }
    u.finish()?;
    if let Some(expected) = &opts.expected_diff_id {
        let mut rest = archive.into_inner();
        // Padding after the end-of-archive blocks is part of the hashed stream;
        // bounded so trailing garbage cannot make this read forever.
        io::copy(&mut (&mut rest).take(opts.limits.max_bytes), &mut io::sink()).map_err(LayerError::Format)?;
        let actual = Digest::from_sha256(sha2::Digest::finalize(rest.hasher).into());
        if &actual != expected {
            return Err(LayerError::DiffIdMismatch { expected: expected.clone(), actual });
        }
    }
    Ok(u.stats)
}

struct Unpacker<'o> {
    root: Dir,
    opts: &'o UnpackOptions,
    stats: UnpackStats,
    /// Paths written by this layer, which its own whiteouts must not hide.
    created: BTreeSet<PathBuf>,
    /// Directory modes are applied last so a read-only directory does not block
    /// its own children.
    dir_modes: Vec<(PathBuf, u32)>,
    is_root: bool,
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>, warn: &dyn Fn(&str)) -> Result<(), LayerError> {
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let etype = entry.header().entry_type();
        if matches!(etype, EntryType::XGlobalHeader) {
            return Ok(());
        }
        let rel = clean_entry_path(&raw).map_err(|rule| LayerError::unsafe_entry(&name, rule))?;
        let Some(file_name) = rel.file_name().map(|f| f.to_owned()) else {
            // The root itself ("./"): nothing to create.
            return if etype.is_dir() { Ok(()) } else { Err(LayerError::unsafe_entry(&name, "entry names the root")) };
        };
        let parent_rel = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        let fname = Path::new(&file_name);

        if let Some(w) = whiteout::parse(&file_name) {
            self.stats.whiteouts += 1;
            let Some(pdir) = self.open_parent(&parent_rel, &name, false)? else { return Ok(()) };
            let res = match w {
                Whiteout::Meta => Ok(()),
                Whiteout::Opaque => whiteout::apply_opaque(&pdir, &parent_rel, &self.created),
                Whiteout::Remove(victim) => {
                    if self.created.contains(&parent_rel.join(victim)) {
                        Ok(())
                    } else {
                        remove_nofollow(&pdir, Path::new(victim))
                    }
                }
            };
            return res.map_err(|e| LayerError::io(&name, e));
        }

        let mut mode = entry.header().mode().map_err(|e| LayerError::io(&name, e))? & 0o7777;
        if !self.opts.limits.keep_setuid {
            mode &= !0o6000;
        }
        let pdir = self.open_parent(&parent_rel, &name, true)?.expect("created");
        let io = |e| LayerError::io(&name, e);
        match etype {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let declared = entry.size();
                let cap = self.opts.limits.max_bytes;
                if self.stats.bytes.saturating_add(declared) > cap {
                    return Err(LayerError::TooLarge { entry: super::shown_name(name), cap });
                }
                remove_nofollow(&pdir, fname).map_err(io)?;
                let mut oo = OpenOptions::new();
                oo.write(true).create_new(true).mode(0o600);
                let file = pdir.open_with(fname, &oo).map_err(io)?.into_std();
                let mtime = entry.header().mtime().unwrap_or(0);
                self.copy_sparse(&mut entry, &file, &name)?;
                file.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(io)?;
                set_mtime(&file, mtime);
                self.stats.files += 1;
            }
            EntryType::Directory => {
                match pdir.symlink_metadata(fname) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        pdir.remove_file(fname).map_err(io)?;
                        pdir.create_dir(fname).map_err(io)?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => pdir.create_dir(fname).map_err(io)?,
                    Err(e) => return Err(io(e)),
                }
                self.dir_modes.push((rel.clone(), mode));
                self.stats.dirs += 1;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| LayerError::unsafe_entry(&name, "symlink without a target"))?
                    .into_owned();
                let mut target = PathBuf::from(std::ffi::OsStr::from_bytes(&target));
                if self.opts.skip_unsafe && !super::path::link_stays_inside(&rel, &target) {
                    return Err(LayerError::unsafe_entry(&name, "symlink leads outside the archive's root"));
                }
                if self.opts.rewrite_absolute_symlinks && target.is_absolute() {
                    target = relativize_symlink(&rel, &target);
                }
                remove_nofollow(&pdir, fname).map_err(io)?;
                // Never resolved here, so any target is harmless to create.
                pdir.symlink_contents(&target, fname).map_err(io)?;
                self.stats.symlinks += 1;
            }
            EntryType::Link => {
                let raw_target = entry
                    .link_name_bytes()
                    .ok_or_else(|| LayerError::unsafe_entry(&name, "hardlink without a target"))?
                    .into_owned();
                let trel = clean_entry_path(&raw_target)
                    .map_err(|_| LayerError::unsafe_entry(&name, "hardlink target escapes the root (absolute or `..`)"))?;
                let (Some(tname), Some(tparent)) = (trel.file_name(), trel.parent()) else {
                    return Err(LayerError::unsafe_entry(&name, "hardlink to the root"));
                };
                let tdir = self
                    .open_parent(tparent, &name, false)?
                    .ok_or_else(|| LayerError::unsafe_entry(&name, "hardlink target does not exist"))?;
                match tdir.symlink_metadata(tname) {
                    Ok(m) if m.is_dir() => return Err(LayerError::unsafe_entry(&name, "hardlink to a directory")),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Err(LayerError::unsafe_entry(&name, "hardlink target does not exist"))
                    }
                    Err(e) => return Err(io(e)),
                }
                if trel != rel {
                    remove_nofollow(&pdir, fname).map_err(io)?;
                    tdir.hard_link(tname, &pdir, fname).map_err(io)?;
                }
                self.stats.hardlinks += 1;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                warn(&format!("skipping {:?}: device nodes and fifos are not unpacked", super::shown_name(&name)));
                self.stats.skipped += 1;
                return Ok(());
            }
            other => {
                warn(&format!("skipping {:?}: unsupported entry type {other:?}", super::shown_name(&name)));
                self.stats.skipped += 1;
                return Ok(());
            }
        }
        self.created.insert(rel);
        Ok(())
    }

    /// Opens the directory `parent` (relative to the root) one component at a
    /// time, refusing symlinks and non-directories on the way. Missing
    /// components are created when `create`, else `None` is returned.
    fn open_parent(&self, parent: &Path, entry: &str, create: bool) -> Result<Option<Dir>, LayerError> {
        let io = |e| LayerError::io(entry, e);
        let mut dir = self.root.try_clone().map_err(io)?;
        for comp in parent.components() {
            match dir.symlink_metadata(comp) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(LayerError::unsafe_entry(entry, "a parent directory is a symlink (writing through symlinks is refused)"))
                }
                Ok(_) => return Err(LayerError::unsafe_entry(entry, "a parent path component is not a directory")),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if !create {
                        return Ok(None);
                    }
                    dir.create_dir(comp).map_err(io)?;
                }
                Err(e) => return Err(io(e)),
            }
            // Checked just above and we are the only writer of the target, so
            // this does not follow a symlink; cap-std would confine it anyway.
            dir = dir.open_dir(comp).map_err(io)?;
        }
        Ok(Some(dir))
    }

    /// Copies file content, counting it against the cap as it goes (the declared
    /// size of a sparse entry may lie) and seeking over zero blocks so a zero
    /// bomb neither takes disk space nor time to write.
    fn copy_sparse(&mut self, src: &mut impl Read, file: &std::fs::File, name: &str) -> Result<(), LayerError> {
        let cap = self.opts.limits.max_bytes;
        let mut buf = vec![0u8; 128 * 1024];
        let mut w = file;
        let mut len = 0u64;
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LayerError::Format(e)),
            };
            self.stats.bytes += n as u64;
            if self.stats.bytes > cap {
                return Err(LayerError::TooLarge { entry: super::shown_name(name), cap });
            }
            let chunk = &buf[..n];
            if chunk.iter().all(|&b| b == 0) {
                w.seek(SeekFrom::Current(n as i64)).map_err(|e| LayerError::io(name, e))?;
            } else {
                w.write_all(chunk).map_err(|e| LayerError::io(name, e))?;
            }
            len += n as u64;
        }
        file.set_len(len).map_err(|e| LayerError::io(name, e))
    }

    fn finish(&mut self) -> Result<(), LayerError> {
        for (rel, mode) in self.dir_modes.drain(..).rev() {
            // Unprivileged, keep our own write/search bit or later layers (and
            // cache removal) could not touch the tree.
            let mode = if self.is_root { mode } else { mode | 0o700 };
            if let Ok(m) = self.root.symlink_metadata(&rel) {
                if m.is_dir() {
                    self.root
                        .set_permissions(&rel, cap_std::fs::Permissions::from_std(std::fs::Permissions::from_mode(mode)))
                        .map_err(|e| LayerError::io(rel.display(), e))?;
                }
            }
        }
        Ok(())
    }
}

/// The largest data of an extension entry (PAX `x` header, GNU long name or long link) let
/// through. The tar crate reads such data whole into memory before the entry it describes;
/// real ones are a few hundred bytes (a long path, a few xattrs).
pub(crate) const MAX_EXTENSION: u64 = 1 << 20;

/// Follows the block structure of the tar stream passing through, to refuse an oversized
/// extension entry from its header alone, before the tar crate buffers it. It tracks what the
/// tar crate does: each header's size (a PAX `size` record overriding the next one's), GNU
/// sparse extension blocks, and stops at the end-of-archive block.
struct TarGuard<R> {
    inner: R,
    block: [u8; 512],
    filled: usize,
    /// Bytes of data and padding to pass before the next header.
    skip: u64,
    /// The PAX `x` data being read (it is small: checked against the cap), to see its `size`.
    pax: Option<(Vec<u8>, u64)>,
    pax_size: Option<u64>,
    /// More GNU sparse extension blocks follow.
    sparse_ext: bool,
    done: bool,
}

impl<R> TarGuard<R> {
    fn new(inner: R) -> Self {
        TarGuard { inner, block: [0; 512], filled: 0, skip: 0, pax: None, pax_size: None, sparse_ext: false, done: false }
    }

    fn header(&mut self) -> io::Result<()> {
        let h = self.block;
        if self.sparse_ext {
            self.sparse_ext = h[504] != 0;
            return Ok(());
        }
        if h.iter().all(|&b| b == 0) {
            self.done = true;
            return Ok(());
        }
        let declared = octal_or_binary(&h[124..136]).ok_or_else(|| io::Error::other("tar header with a malformed size field"))?;
        let kind = h[156];
        let extension = matches!(kind, b'x' | b'g' | b'L' | b'K');
        if matches!(kind, b'x' | b'L' | b'K') && declared > MAX_EXTENSION {
            let what = if kind == b'x' { "PAX extended header" } else { "GNU long name" };
            return Err(io::Error::other(format!(
                "a {what} entry of {declared} bytes exceeds the cap of {MAX_EXTENSION} bytes: refused"
            )));
        }
        // As the tar crate: only a ustar or GNU header is an extension it buffers, and a PAX
        // `size` waits over long-name entries for the entry it describes.
        let recognized = &h[257..265] == b"ustar\x0000" || &h[257..265] == b"ustar  \x00";
        let pending = self.pax_size.take();
        let size = match pending {
            Some(s) if !extension => s,
            _ => declared,
        };
        if recognized && matches!(kind, b'L' | b'K') {
            self.pax_size = pending;
        }
        if recognized && kind == b'x' {
            self.pax = Some((Vec::with_capacity(size as usize), size));
        }
        self.sparse_ext = kind == b'S' && &h[257..265] == b"ustar  \x00" && h[482] != 0;
        self.skip = size.div_ceil(512).saturating_mul(512);
        Ok(())
    }

    /// Looks at `data`, just read from the stream.
    fn watch(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() && !self.done {
            if self.skip > 0 {
                let n = (self.skip.min(data.len() as u64)) as usize;
                if let Some((buf, left)) = &mut self.pax {
                    let take = (*left).min(n as u64) as usize;
                    buf.extend_from_slice(&data[..take]);
                    *left -= take as u64;
                }
                self.skip -= n as u64;
                data = &data[n..];
                if self.skip == 0 {
                    if let Some((buf, _)) = self.pax.take() {
                        self.pax_size = pax_size(&buf);
                    }
                }
                continue;
            }
            let n = (512 - self.filled).min(data.len());
            self.block[self.filled..self.filled + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
            if self.filled == 512 {
                self.filled = 0;
                self.header()?;
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.watch(&buf[..n])?;
        Ok(n)
    }
}

/// A tar numeric field: octal ASCII, or base-256 when the high bit of the first byte is set.
fn octal_or_binary(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    // As the tar crate reads it: up to the first NUL, spaces trimmed.
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let s = std::str::from_utf8(&field[..end]).ok()?.trim();
    u64::from_str_radix(s, 8).ok()
}

/// The `size` record of PAX extended header data (`LEN KEY=VALUE\n` records).
fn pax_size(mut data: &[u8]) -> Option<u64> {
    let mut size = None;
    while !data.is_empty() {
        let sp = data.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&data[..sp]).ok()?.parse().ok()?;
        if len <= sp || len > data.len() {
            return size;
        }
        let rec = &data[sp + 1..len];
        if let Some(v) = rec.strip_prefix(b"size=") {
            size = std::str::from_utf8(v).ok()?.trim_end_matches('\n').parse().ok();
        }
        data = &data[len..];
    }
    size
}

fn set_mtime(file: &std::fs::File, mtime: u64) {
    let t = libc::timespec { tv_sec: mtime.min(i64::MAX as u64) as libc::time_t, tv_nsec: 0 };
    let times = [libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT }, t];
    // Best effort: a wrong mtime never makes the tree unsafe.
    unsafe { libc::futimens(file.as_raw_fd(), times.as_ptr()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: u8, size: u64) -> Vec<u8> {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(EntryType::new(kind));
        h.set_size(size);
        h.set_path("x").unwrap();
        h.set_cksum();
        h.as_bytes().to_vec()
    }

    /// Everything read through the guard, in `chunk`-byte reads.
    fn through(stream: &[u8], chunk: usize) -> io::Result<usize> {
        let mut g = TarGuard::new(stream);
        let mut buf = vec![0u8; chunk];
        let mut total = 0;
        loop {
            match g.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n,
            }
        }
    }

    #[test]
    fn oversized_extension_headers_are_refused_from_the_header() {
        for kind in [b'x', b'L', b'K'] {
            let e = through(&header(kind, MAX_EXTENSION + 1), 7).unwrap_err().to_string();
            assert!(e.contains("exceeds the cap"), "{e}");
        }
        // A `g` header is not buffered by the tar crate; a regular file of any size is fine.
        assert!(through(&header(b'g', MAX_EXTENSION + 1), 512).is_ok());
        assert!(through(&header(b'0', 1 << 40), 512).is_ok());
    }

    #[test]
    fn a_pax_size_is_followed_so_a_later_header_is_still_seen() {
        // x (size=1024) then a file whose ustar size says 0 but PAX says 1024, then a huge x.
        let rec = b"13 size=1024\n";
        let mut s = header(b'x', rec.len() as u64);
        s.extend_from_slice(rec);
        s.resize(1024, 0);
        s.extend(header(b'0', 0));
        s.extend(vec![b'a'; 1024]);
        s.extend(header(b'x', 1 << 30));
        let e = through(&s, 100).unwrap_err().to_string();
        assert!(e.contains("1073741824 bytes exceeds"), "{e}");
        assert_eq!(pax_size(b"13 size=1024\n11 path=ab\n"), Some(1024));
        assert_eq!(octal_or_binary(b"0000001750\0 "), Some(1000));
    }
}
