//! Reproducible layer tarballs: entries in path order, fixed mtimes and owners,
//! no atime/ctime, PAX records for long names, fixed compressor settings.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tar::{EntryType, Header};

use super::diff::{ChangeKind, Changes};
use super::whiteout;
use super::Compression;
use crate::digest::HashingWriter;
use crate::Digest;

#[derive(Clone, Debug)]
pub struct PackOptions {
    pub compression: Compression,
    /// mtime of every entry unless `preserve_mtimes` (SOURCE_DATE_EPOCH; default 0).
    pub source_date_epoch: u64,
    pub preserve_mtimes: bool,
    /// Owner written for every entry.
    pub uid: u32,
    pub gid: u32,
    /// Entries owned by someone else (`COPY --chown`), by path relative to the root.
    pub owners: BTreeMap<PathBuf, (u32, u32)>,
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions { compression: Compression::Gzip, source_date_epoch: 0, preserve_mtimes: false, uid: 0, gid: 0, owners: BTreeMap::new() }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedLayer {
    /// sha256 of the uncompressed tar (goes into the config's `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// sha256 of the blob as written to `out`.
    pub digest: Digest,
    pub size: u64,
    pub compression: Compression,
}

/// Packs `changes` (from [`super::diff`]) as one layer into `out`.
pub fn pack(changes: &Changes, opts: &PackOptions, out: impl Write) -> Result<PackedLayer> {
    let outer = HashingWriter::new(out);
    let enc = opts.compression.encoder(outer).context("starting the compressor")?;
    let mut tw = TarWriter { b: tar::Builder::new(HashingWriter::new(enc)), opts, links: HashMap::new() };
    for c in changes.as_slice() {
        match c.kind {
            ChangeKind::Upsert => tw.upsert(changes.root(), &c.path)?,
            ChangeKind::Delete => tw.whiteout(&c.path)?,
        }
    }
    let inner = tw.b.into_inner().context("finishing the tar stream")?;
    let (diff_id, _, enc) = inner.finish();
    let outer = enc.finish().context("finishing the compressed stream")?;
    let (digest, size, _) = outer.finish();
    Ok(PackedLayer { diff_id, digest, size, compression: opts.compression })
}

/// Packs the whole tree below `dir` as one layer.
pub fn pack_dir(dir: &Path, opts: &PackOptions, out: impl Write) -> Result<PackedLayer> {
    pack(&Changes::whole_tree(dir)?, opts, out)
}

struct TarWriter<'o, W: Write> {
    b: tar::Builder<W>,
    opts: &'o PackOptions,
    /// First packed path of each multiply-linked inode: later ones become tar hardlinks.
    links: HashMap<(u64, u64), Vec<u8>>,
}

impl<W: Write> TarWriter<'_, W> {
    fn header(&self, rel: &Path, etype: EntryType, mode: u32, mtime: i64) -> Header {
        let mut h = Header::new_ustar();
        h.set_entry_type(etype);
        h.set_mode(mode & 0o7777);
        let (uid, gid) = self.opts.owners.get(rel).copied().unwrap_or((self.opts.uid, self.opts.gid));
        h.set_uid(uid as u64);
        h.set_gid(gid as u64);
        h.set_mtime(if self.opts.preserve_mtimes { mtime.max(0) as u64 } else { self.opts.source_date_epoch });
        h.set_size(0);
        h
    }

    fn upsert(&mut self, root: &Path, rel: &Path) -> Result<()> {
        let full = root.join(rel);
        let ctx = || format!("packing {}", rel.display());
        // A layer cannot carry such a name: every consumer (ws2i, containerd, podman) reads it
        // as a whiteout and deletes a file of a lower layer instead.
        if rel.file_name().is_some_and(|f| f.as_bytes().starts_with(whiteout::PREFIX.as_bytes())) {
            anyhow::bail!(
                "{}: a file whose name starts with {:?} would be read as a whiteout (a deletion) by every consumer of the layer; rename or remove it",
                rel.display(),
                whiteout::PREFIX
            );
        }
        let m = fs::symlink_metadata(&full).with_context(ctx)?;
        let mut name = rel.as_os_str().as_bytes().to_vec();
        let ft = m.file_type();
        if ft.is_dir() {
            name.push(b'/');
            let h = self.header(rel, EntryType::Directory, m.mode(), m.mtime());
            self.append(h, &name, None, io::empty()).with_context(ctx)
        } else if ft.is_symlink() {
            let target = fs::read_link(&full).with_context(ctx)?;
            let h = self.header(rel, EntryType::Symlink, 0o777, m.mtime());
            self.append(h, &name, Some(target.as_os_str().as_bytes()), io::empty()).with_context(ctx)
        } else if ft.is_file() {
            if m.nlink() > 1 {
                if let Some(first) = self.links.get(&(m.dev(), m.ino())) {
                    let first = first.clone();
                    let h = self.header(rel, EntryType::Link, m.mode(), m.mtime());
                    return self.append(h, &name, Some(&first), io::empty()).with_context(ctx);
                }
                self.links.insert((m.dev(), m.ino()), name.clone());
            }
            let f = fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&full).with_context(ctx)?;
            let mut h = self.header(rel, EntryType::Regular, m.mode(), m.mtime());
            h.set_size(m.len());
            // The size is fixed in the header: a file that changed since stat fails
            // here instead of producing a corrupt stream.
            self.append(h, &name, None, f.take(m.len())).with_context(ctx)
        } else {
            // Sockets, fifos, devices: never part of an image layer we build.
            Ok(())
        }
    }

    fn whiteout(&mut self, rel: &Path) -> Result<()> {
        let file = rel.file_name().context("whiteout of the root")?;
        let mut wh = whiteout::PREFIX.as_bytes().to_vec();
        wh.extend_from_slice(file.as_bytes());
        let name = match rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(p) => [p.as_os_str().as_bytes(), b"/", &wh].concat(),
            None => wh,
        };
        let h = self.header(rel, EntryType::Regular, 0o644, 0);
        self.append(h, &name, None, io::empty()).with_context(|| format!("whiteout for {}", rel.display()))
    }

    /// Writes one entry; names or link targets beyond the 100-byte ustar fields
    /// get a PAX extended header (never GNU long-name records).
    fn append(&mut self, mut h: Header, name: &[u8], link: Option<&[u8]>, data: impl Read) -> io::Result<()> {
        let mut pax = Vec::new();
        if name.len() > 100 {
            pax_record(&mut pax, "path", name);
        }
        if let Some(l) = link {
            if l.len() > 100 {
                pax_record(&mut pax, "linkpath", l);
            }
        }
        if !pax.is_empty() {
            let mut ph = Header::new_ustar();
            ph.set_entry_type(EntryType::XHeader);
            set_field(&mut ph.as_ustar_mut().expect("ustar").name, b"PaxHeader");
            ph.set_mode(0o644);
            ph.set_mtime(0);
            ph.set_size(pax.len() as u64);
            ph.set_cksum();
            self.b.append(&ph, pax.as_slice())?;
        }
        let u = h.as_ustar_mut().expect("ustar");
        set_field(&mut u.name, name);
        if let Some(l) = link {
            set_field(&mut u.linkname, l);
        }
        h.set_cksum();
        self.b.append(&h, data)
    }
}

/// Copies as much of `value` as fits; the PAX record carries the full value.
fn set_field(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field.fill(0);
    field[..n].copy_from_slice(&value[..n]);
}

/// One "LEN key=value\n" record, LEN counting its own digits.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    #[test]
    fn pax_length_counts_itself() {
        let mut v = Vec::new();
        super::pax_record(&mut v, "path", &[b'a'; 95]);
        let s = String::from_utf8(v.clone()).unwrap();
        let n: usize = s.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(n, v.len());
    }
}
