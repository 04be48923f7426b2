//! OCI image layouts: the local store (whose root IS an OCI layout, so
//! `skopeo inspect oci:$ROOT:NAME:TAG` and umoci read it) and `oci:` dirs.
//!
//! Blobs are written to a temp file, verified against their digest and
//! renamed into place; index.json is updated under an exclusive `flock` on
//! `index.lock`, via a temp file and rename, so concurrent ws2i processes
//! never lose or tear an update.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::digest::HashingWriter;
use crate::image::{self, Descriptor, ImageConfig, Index, Manifest, Platform, ANNOTATION_REF_NAME};
use crate::layer::{Compression, LayerSource};
use crate::image::reference::{LocalRef, NameTag};
use crate::scratch;
use crate::Digest;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("image {0} not found in {1}")]
    NotFound(String, PathBuf),
}

/// Caps on what ws2i reads whole into memory. Manifests and indexes: containerd's 4 MiB.
pub const MAX_MANIFEST: u64 = 4 << 20;
/// Any other blob read whole (image configs).
pub const MAX_CONFIG: u64 = 16 << 20;
/// A layout's own `index.json` lists every tag of a store: larger than one image's index.
pub const MAX_LAYOUT_INDEX: u64 = 64 << 20;
/// The `oci-layout` marker file.
const MAX_LAYOUT_MARKER: u64 = 64 << 10;

/// What a path is, for the error that refuses it.
fn file_kind(ft: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_symlink() {
        "a symlink"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading only if it is a regular file. A layout or an unpacked archive is
/// untrusted: a symlink (to `/dev/zero`, say), a FIFO or a device there is refused, never
/// followed or read, and the open itself cannot block (`O_NONBLOCK`, which regular files ignore).
pub fn open_regular(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let f = match f {
        Ok(f) => f,
        // O_NOFOLLOW refuses a symlink with ELOOP; name what it is instead.
        Err(e) => {
            if let Ok(md) = fs::symlink_metadata(path) {
                if !md.is_file() {
                    bail!("{} is {}; only regular files are read", path.display(), file_kind(md.file_type()));
                }
            }
            return Err(e).with_context(|| format!("opening {}", path.display()));
        }
    };
    let md = f.metadata().with_context(|| format!("reading {}", path.display()))?;
    if !md.is_file() {
        bail!("{} is {}; only regular files are read", path.display(), file_kind(md.file_type()));
    }
    Ok(f)
}

/// All of `r`, if it has at most `max` bytes: one byte more is read to tell, so an endless or
/// huge source costs at most `max` of memory. `what` names it in the error.
pub fn read_capped(r: impl Read, max: u64, what: &dyn std::fmt::Display) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    r.take(max.saturating_add(1))
        .read_to_end(&mut v)
        .with_context(|| format!("reading {what}"))?;
    if v.len() as u64 > max {
        bail!("{what} is larger than {} (refused)", crate::Size(max));
    }
    Ok(v)
}

/// A reader of exactly the `size` bytes a descriptor promises: reading past them (one byte is
/// tried) or ending before them is an error, so a blob that never ends is stopped at `size + 1`.
pub struct SizedReader<R> {
    inner: R,
    size: u64,
    left: u64,
    what: String,
}

impl<R: Read> SizedReader<R> {
    pub fn new(inner: R, size: u64, what: impl Into<String>) -> Self {
        SizedReader { inner, size, left: size, what: what.into() }
    }
}

impl<R: Read> Read for SizedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut one = [0u8; 1];
            return match self.inner.read(&mut one)? {
                0 => Ok(0),
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is larger than the {} bytes its descriptor gives", self.what, self.size),
                )),
            };
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} ends after {} of the {} bytes its descriptor gives", self.what, self.size - self.left, self.size),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

/// Exclusive lock over index.json; released on drop (the fd closes).
struct IndexLock(#[allow(dead_code)] File);

impl Layout {
    /// Opens (creating if needed) an OCI layout at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(root.join("blobs/sha256"))
            .with_context(|| format!("creating OCI layout {}", root.display()))?;
        let layout = root.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let l = Layout { root };
        let _g = l.lock()?;
        if !l.index_path().exists() {
            l.write_index(&Index::empty())?;
        }
        l.sweep()?;
        Ok(l)
    }

    /// Opens an existing layout without creating anything.
    pub fn open_existing(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let marker = root.join("oci-layout");
        if !marker.exists() && fs::symlink_metadata(&marker).is_err() {
            bail!("{} is not an OCI layout (no oci-layout file)", root.display());
        }
        let v = read_capped(open_regular(&marker)?, MAX_LAYOUT_MARKER, &marker.display())?;
        let v: serde_json::Value =
            serde_json::from_slice(&v).context("malformed oci-layout file")?;
        if v["imageLayoutVersion"] != "1.0.0" {
            bail!(
                "unsupported OCI layout version {} in {}",
                v["imageLayoutVersion"],
                root.display()
            );
        }
        Ok(Layout { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    fn lock(&self) -> Result<IndexLock> {
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join("index.lock"))
            .with_context(|| format!("opening lock file in {}", self.root.display()))?;
        // SAFETY: flock on a valid, owned fd.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io::Error::last_os_error()).context("locking index.json");
        }
        Ok(IndexLock(f))
    }

    pub fn read_index(&self) -> Result<Index> {
        let path = self.index_path();
        let bytes = read_capped(open_regular(&path)?, MAX_LAYOUT_INDEX, &path.display())?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("malformed {}/index.json", self.root.display()))
    }

    fn write_index(&self, index: &Index) -> Result<()> {
        write_atomic(&self.index_path(), &serde_json::to_vec(index)?)
    }

    /// Read-modify-write of index.json under the lock.
    pub fn update_index<T>(&self, f: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        let _g = self.lock()?;
        let mut index = self.read_index()?;
        let out = f(&mut index)?;
        self.write_index(&index)?;
        Ok(out)
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        // Digest guarantees 64 hex chars, so this cannot escape blobs/.
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// The blob's file, if it is a regular file (see [`open_regular`]).
    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        let path = self.blob_path(d);
        if fs::symlink_metadata(&path).is_err() {
            bail!("blob {d} missing from {}", self.root.display());
        }
        open_regular(&path).with_context(|| format!("blob {d} in {}", self.root.display()))
    }

    /// The blob as a reader of exactly `desc.size` bytes (see [`SizedReader`]).
    pub fn open_sized(&self, desc: &Descriptor) -> Result<SizedReader<File>> {
        Ok(SizedReader::new(self.open_blob(&desc.digest)?, desc.size, format!("blob {}", desc.digest)))
    }

    /// A blob read whole (a manifest or a config), at most [`MAX_CONFIG`] bytes.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        self.read_blob_capped(d, MAX_CONFIG)
    }

    /// A blob read whole, refused if it has more than `max` bytes, verified against its digest.
    pub fn read_blob_capped(&self, d: &Digest, max: u64) -> Result<Vec<u8>> {
        let v = read_capped(self.open_blob(d)?, max, &format_args!("blob {d} in {}", self.root.display()))?;
        if Digest::of(&v) != *d {
            bail!(
                "blob {d} in {} is corrupt (content does not match its digest)",
                self.root.display()
            );
        }
        Ok(v)
    }

    /// Streams `reader` into the layout; with `expected`, a mismatch leaves nothing behind.
    pub fn put_blob(
        &self,
        reader: &mut dyn Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64)> {
        let dir = self.root.join("blobs/sha256");
        let tmp = scratch_file(&dir).context("creating temp blob")?;
        let mut w = HashingWriter::new(io::BufWriter::new(tmp));
        io::copy(reader, &mut w).context("writing blob")?;
        let (digest, size, buf) = w.finish();
        let tmp = buf.into_inner().map_err(|e| e.into_error())?;
        if let Some(exp) = expected {
            if *exp != digest {
                return Err(StoreError::DigestMismatch {
                    expected: exp.clone(),
                    actual: digest,
                }
                .into());
            }
        }
        tmp.as_file().sync_all().ok();
        tmp.persist(self.blob_path(&digest))
            .context("renaming blob into place")?;
        Ok((digest, size))
    }

    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        Ok(self.put_blob(&mut &bytes[..], None)?.0)
    }

    /// Points `ref_name` (the `org.opencontainers.image.ref.name` annotation) at a manifest.
    pub fn tag_descriptor(&self, ref_name: &str, mut desc: Descriptor) -> Result<()> {
        desc.annotations
            .insert(ANNOTATION_REF_NAME.into(), ref_name.into());
        self.update_index(|idx| {
            idx.manifests.retain(|d| {
                d.annotations.get(ANNOTATION_REF_NAME).map(String::as_str) != Some(ref_name)
            });
            idx.manifests.push(desc);
            Ok(())
        })
    }

    pub fn untag(&self, ref_name: &str) -> Result<bool> {
        self.update_index(|idx| {
            let n = idx.manifests.len();
            idx.manifests.retain(|d| {
                d.annotations.get(ANNOTATION_REF_NAME).map(String::as_str) != Some(ref_name)
            });
            Ok(idx.manifests.len() != n)
        })
    }

    /// The descriptor tagged `ref_name`, or the only one when `None`.
    pub fn find(&self, ref_name: Option<&str>) -> Result<Descriptor> {
        let idx = self.read_index()?;
        match ref_name {
            Some(r) => idx
                .manifests
                .into_iter()
                .find(|d| d.annotations.get(ANNOTATION_REF_NAME).map(String::as_str) == Some(r))
                .ok_or_else(|| StoreError::NotFound(r.to_string(), self.root.clone()).into()),
            None => match idx.manifests.len() {
                1 => Ok(idx.manifests.into_iter().next().expect("len 1")),
                0 => bail!("OCI layout {} contains no image", self.root.display()),
                n => bail!(
                    "OCI layout {} contains {n} images; name one (oci:DIR:NAME)",
                    self.root.display()
                ),
            },
        }
    }

    /// Reads a manifest descriptor to an image manifest, resolving an index by platform.
    pub fn load_image(&self, desc: &Descriptor, platform: &Platform) -> Result<(Digest, Manifest)> {
        let mut desc = desc.clone();
        for _ in 0..4 {
            let bytes = self.read_blob_capped(&desc.digest, MAX_MANIFEST)?;
            let mt = if desc.media_type.is_empty() {
                image::sniff_media_type(&bytes)?
            } else {
                desc.media_type.clone()
            };
            if image::is_index(&mt) {
                let idx: Index = serde_json::from_slice(&bytes).context("malformed image index")?;
                desc = idx.select(platform)?.clone();
                continue;
            }
            return Ok((desc.digest.clone(), Manifest::parse(&bytes)?));
        }
        bail!("image index nesting too deep")
    }

    /// Every blob reachable from index.json.
    fn reachable(&self) -> Result<BTreeSet<Digest>> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<Descriptor> = self.read_index()?.manifests;
        while let Some(d) = todo.pop() {
            if !seen.insert(d.digest.clone()) {
                continue;
            }
            let is_manifest_like =
                image::is_index(&d.media_type) || image::is_manifest(&d.media_type);
            if !is_manifest_like || !self.has_blob(&d.digest) {
                continue;
            }
            let bytes = self.read_blob_capped(&d.digest, MAX_MANIFEST)?;
            if image::is_index(&d.media_type) {
                todo.extend(serde_json::from_slice::<Index>(&bytes)?.manifests);
            } else {
                let m = Manifest::parse(&bytes)?;
                todo.push(m.config);
                todo.extend(m.layers);
            }
        }
        Ok(seen)
    }

    /// Removes the temp files of writers that were killed (a live writer's stay: see
    /// [`crate::scratch`]). Returns how many.
    pub fn sweep(&self) -> Result<usize> {
        let mut n = 0;
        for dir in [self.root.clone(), self.root.join("blobs/sha256")] {
            n += scratch::sweep(&dir, |name| name.starts_with(SCRATCH_PREFIX))
                .with_context(|| format!("cleaning up {}", dir.display()))?;
        }
        Ok(n)
    }

    /// Deletes unreachable blobs and stale temp files; returns (count, bytes).
    pub fn prune(&self) -> Result<(usize, u64)> {
        let _g = self.lock()?;
        let mut n = self.sweep()?;
        let keep = self.reachable()?;
        let mut bytes = 0;
        for e in fs::read_dir(self.root.join("blobs/sha256"))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            // Temp files are the sweep's: a live writer's must stay.
            let stale = format!("sha256:{name}").parse::<Digest>().is_ok_and(|d| !keep.contains(&d));
            if stale {
                bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(e.path())?;
                n += 1;
            }
        }
        Ok((n, bytes))
    }
}

/// The prefix of a layout's temp files, in its root and in `blobs/sha256`.
const SCRATCH_PREFIX: &str = ".tmp-";

/// A temp file in `dir`, held (see [`crate::scratch`]) until it is persisted or dropped.
fn scratch_file(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    let tmp = tempfile::NamedTempFile::with_prefix_in(SCRATCH_PREFIX, dir)?;
    scratch::hold_file(tmp.as_file())?;
    Ok(tmp)
}

/// Writes via a temp file in the same directory and renames over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = scratch_file(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all().ok();
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// An image resolved in the local store.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    pub manifest_digest: Digest,
    pub manifest: Manifest,
    pub config: ImageConfig,
    pub config_digest: Digest,
}

/// One row of `ws2i images`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageSummary {
    pub name: String,
    pub tag: String,
    pub digest: Digest,
    pub size: u64,
    pub created: Option<String>,
}

/// The embedded local store.
#[derive(Debug, Clone)]
pub struct Store {
    layout: Layout,
}

impl Store {
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        Ok(Store {
            layout: Layout::open(root)?,
        })
    }

    /// `$WS2I_HOME`, else `${XDG_DATA_HOME:-~/.local/share}/ws2i`.
    pub fn default_root() -> Result<PathBuf> {
        if let Some(h) = std::env::var_os("WS2I_HOME").filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(h));
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(x).join("ws2i"));
        }
        let home = std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .context("neither WS2I_HOME nor HOME is set")?;
        Ok(PathBuf::from(home).join(".local/share/ws2i"))
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    pub fn put_blob(
        &self,
        reader: &mut dyn Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64)> {
        self.layout.put_blob(reader, expected)
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.layout.blob_path(d)
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        self.layout.open_blob(d)
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.layout.has_blob(d)
    }

    /// Stores a manifest blob (not yet tagged).
    pub fn put_manifest(&self, bytes: &[u8], media_type: &str) -> Result<Digest> {
        if !image::is_manifest(media_type) && !image::is_index(media_type) {
            bail!("{media_type:?} is not a manifest media type");
        }
        self.layout.put_bytes(bytes)
    }

    pub fn tag(&self, name_tag: &NameTag, manifest: &Digest) -> Result<()> {
        let bytes = self.layout.read_blob_capped(manifest, MAX_MANIFEST)?;
        let mt = image::sniff_media_type(&bytes)?;
        self.layout.tag_descriptor(
            &name_tag.to_string(),
            Descriptor::new(&mt, manifest.clone(), bytes.len() as u64),
        )
    }

    /// The layers of a stored image, bottom first, as the rootfs cache reads them.
    /// The layers of a stored image, for [`crate::layer::RootfsCache::base`].
    pub fn image_layers(&self, img: &ResolvedImage) -> Result<Vec<LayerSource>> {
        self.layer_sources(&img.manifest, &img.config.rootfs.diff_ids)
    }

    pub fn layer_sources(&self, manifest: &Manifest, diff_ids: &[Digest]) -> Result<Vec<LayerSource>> {
        if diff_ids.len() != manifest.layers.len() {
            bail!("image is inconsistent: {} layers but {} diff_ids", manifest.layers.len(), diff_ids.len());
        }
        manifest
            .layers
            .iter()
            .zip(diff_ids)
            .map(|(l, diff_id)| {
                let compression = Compression::from_media_type(&l.media_type)?;
                let path = self.blob_path(&l.digest);
                Ok(LayerSource::new(diff_id.clone(), compression, move || {
                    let f = open_regular(&path).map_err(|e| io::Error::other(format!("{e:#}")))?;
                    Ok(Box::new(f) as Box<dyn Read>)
                }))
            })
            .collect()
    }

    /// The image `r` names; from an index, the host's ([`Platform::host_default`]).
    pub fn resolve(&self, r: &LocalRef) -> Result<ResolvedImage> {
        self.resolve_for(r, &Platform::host_default())
    }

    /// The image `r` names; from an index, the entry for `platform`. A plain manifest is
    /// returned whatever its platform: callers that care compare its config.
    pub fn resolve_for(&self, r: &LocalRef, platform: &Platform) -> Result<ResolvedImage> {
        let desc = match r {
            LocalRef::Tagged(nt) => self.layout.find(Some(&nt.to_string()))?,
            LocalRef::Digest { digest, .. } => {
                let idx = self.layout.read_index()?;
                match idx.manifests.into_iter().find(|d| d.digest == *digest) {
                    Some(d) => d,
                    None if self.has_blob(digest) => Descriptor::new("", digest.clone(), 0),
                    None => {
                        return Err(
                            StoreError::NotFound(r.to_string(), self.root().to_path_buf()).into(),
                        )
                    }
                }
            }
        };
        let (manifest_digest, manifest) = self.layout.load_image(&desc, platform)?;
        let config_bytes = self.layout.read_blob(&manifest.config.digest)?;
        Ok(ResolvedImage {
            manifest_digest,
            config: ImageConfig::parse(&config_bytes)?,
            config_digest: manifest.config.digest.clone(),
            manifest,
        })
    }

    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        let mut out = Vec::new();
        for d in self.layout.read_index()?.manifests {
            let Some(rn) = d.annotations.get(ANNOTATION_REF_NAME) else {
                continue;
            };
            let Ok(nt) = rn.parse::<NameTag>() else {
                continue;
            };
            let (size, created) = match self.resolve(&LocalRef::Tagged(nt.clone())) {
                Ok(r) => (
                    r.manifest.layers.iter().map(|l| l.size).sum::<u64>() + r.manifest.config.size,
                    r.config.created,
                ),
                Err(_) => (0, None),
            };
            out.push(ImageSummary {
                name: nt.name,
                tag: nt.tag,
                digest: d.digest,
                size,
                created,
            });
        }
        out.sort_by(|a, b| (&a.name, &a.tag).cmp(&(&b.name, &b.tag)));
        Ok(out)
    }

    /// Removes a tag (or every tag pointing at a digest). Blobs go at `prune`.
    pub fn remove(&self, r: &LocalRef) -> Result<()> {
        let removed = match r {
            LocalRef::Tagged(nt) => self.layout.untag(&nt.to_string())?,
            LocalRef::Digest { digest, .. } => self.layout.update_index(|idx| {
                let n = idx.manifests.len();
                idx.manifests.retain(|d| d.digest != *digest);
                Ok(idx.manifests.len() != n)
            })?,
        };
        if !removed {
            return Err(StoreError::NotFound(r.to_string(), self.root().to_path_buf()).into());
        }
        Ok(())
    }

    pub fn prune(&self) -> Result<(usize, u64)> {
        self.layout.prune()
    }

    /// Used by image builders: writes config and manifest, tags, returns the manifest digest.
    pub fn commit_image(
        &self,
        config_bytes: &[u8],
        manifest: &Manifest,
        name: &NameTag,
    ) -> Result<Digest> {
        for l in &manifest.layers {
            if !self.has_blob(&l.digest) {
                bail!("layer {} is not in the store", l.digest);
            }
        }
        let cd = self.layout.put_bytes(config_bytes)?;
        if cd != manifest.config.digest {
            bail!(
                "config digest {} does not match manifest's {}",
                cd,
                manifest.config.digest
            );
        }
        let d = self.put_manifest(&manifest.to_bytes(), manifest.media_type_or_default())?;
        self.tag(name, &d)?;
        Ok(d)
    }
}

impl Store {
    /// Writes an image index whose entries are manifests already in the store (a multi-platform
    /// build's) and tags it; returns its digest. An entry missing from the store is refused
    /// before anything is written.
    pub fn commit_index(&self, index: &Index, name: &NameTag) -> Result<Digest> {
        for d in &index.manifests {
            if !image::is_manifest(&d.media_type) {
                bail!("index entry {} has media type {:?}, not an image manifest", d.digest, d.media_type);
            }
            let bytes = self
                .layout
                .read_blob_capped(&d.digest, MAX_MANIFEST)
                .with_context(|| format!("index entry {}", d.digest))?;
            if bytes.len() as u64 != d.size {
                bail!("index entry {} has {} bytes, its descriptor says {}", d.digest, bytes.len(), d.size);
            }
        }
        let bytes = serde_json::to_vec(index)?;
        let d = self.put_manifest(&bytes, image::media::OCI_INDEX)?;
        self.tag(name, &d)?;
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{media, ImageBuilder, NewLayer};

    pub(crate) fn sample(store: &Store, name: &str) -> Digest {
        let layer = b"not really a tar.gz";
        let (ld, ls) = store.put_blob(&mut &layer[..], None).unwrap();
        let mut b = ImageBuilder::scratch(&Platform::host_default());
        b.add_layer(NewLayer {
            diff_id: ld.clone(),
            digest: ld,
            size: ls,
            media_type: media::OCI_LAYER_GZIP.into(),
            created_by: "t".into(),
        })
        .unwrap();
        let (cfg, m) = b.finish().unwrap();
        store
            .commit_image(&cfg, &m, &name.parse().unwrap())
            .unwrap()
    }

    #[test]
    fn put_blob_verifies_and_leaves_nothing_on_mismatch() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let wrong = Digest::of(b"other");
        let e = s.put_blob(&mut &b"data"[..], Some(&wrong)).unwrap_err();
        assert!(e.downcast_ref::<StoreError>().is_some());
        assert_eq!(
            fs::read_dir(t.path().join("blobs/sha256")).unwrap().count(),
            0
        );
        let (d, n) = s
            .put_blob(&mut &b"data"[..], Some(&Digest::of(b"data")))
            .unwrap();
        assert_eq!((d.clone(), n), (Digest::of(b"data"), 4));
        assert!(s.has_blob(&d));
    }

    #[test]
    fn tag_resolve_list_remove_prune() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let d = sample(&s, "app");
        let r = s.resolve(&"app".parse().unwrap()).unwrap();
        assert_eq!(r.manifest_digest, d);
        assert_eq!(
            s.resolve(&format!("app@{d}").parse().unwrap())
                .unwrap()
                .manifest_digest,
            d
        );
        s.tag(&"other/app:v2".parse().unwrap(), &d).unwrap();
        let l = s.list().unwrap();
        assert_eq!(
            l.iter()
                .map(|i| format!("{}:{}", i.name, i.tag))
                .collect::<Vec<_>>(),
            ["app:latest", "other/app:v2"]
        );
        s.remove(&"app".parse().unwrap()).unwrap();
        assert!(s.remove(&"app".parse().unwrap()).is_err());
        assert_eq!(s.prune().unwrap().0, 0);
        s.remove(&"other/app:v2".parse().unwrap()).unwrap();
        assert_eq!(s.prune().unwrap().0, 3);
        assert!(s.resolve(&"app".parse().unwrap()).is_err());
    }

    #[test]
    fn an_index_is_stored_selected_by_platform_and_keeps_its_children_from_prune() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let mut idx = Index::empty();
        let mut digests = Vec::new();
        for p in ["linux/amd64", "linux/arm64"] {
            let d = sample(&s, &format!("child-{}", p.replace('/', "-")));
            let bytes = s.layout().read_blob_capped(&d, MAX_MANIFEST).unwrap();
            let mut desc = Descriptor::new(media::OCI_MANIFEST, d.clone(), bytes.len() as u64);
            desc.platform = Some(Platform::parse(p).unwrap());
            idx.manifests.push(desc);
            digests.push(d);
        }
        let multi: NameTag = "multi:1".parse().unwrap();
        let top = s.commit_index(&idx, &multi).unwrap();
        for name in ["child-linux-amd64", "child-linux-arm64"] {
            s.remove(&name.parse().unwrap()).unwrap();
        }
        // Only the index is tagged now: prune must walk into it.
        assert_eq!(s.prune().unwrap().0, 0);
        let arm = s.resolve_for(&LocalRef::Tagged(multi.clone()), &Platform::parse("linux/arm64").unwrap()).unwrap();
        assert_eq!(arm.manifest_digest, digests[1]);
        assert!(s.resolve_for(&LocalRef::Tagged(multi.clone()), &Platform::parse("linux/s390x").unwrap()).is_err());
        assert_eq!(s.list().unwrap()[0].digest, top);

        let mut bad = idx.clone();
        bad.manifests[0].digest = Digest::of(b"absent");
        assert!(s.commit_index(&bad, &"bad:1".parse().unwrap()).is_err());
        assert!(s.resolve(&"bad:1".parse().unwrap()).is_err());
        s.remove(&LocalRef::Tagged(multi)).unwrap();
        assert!(s.prune().unwrap().0 >= 3);
    }

    #[test]
    fn concurrent_tagging_loses_nothing() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let d = sample(&s, "base");
        std::thread::scope(|sc| {
            for i in 0..8 {
                let (s, d) = (s.clone(), d.clone());
                sc.spawn(move || s.tag(&format!("t{i}").parse().unwrap(), &d).unwrap());
            }
        });
        assert_eq!(s.list().unwrap().len(), 9);
    }
}
