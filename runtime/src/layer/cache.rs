//! Unpacked base root filesystems cached by layer chain, and private writable
//! checkouts of them for builds.
//!
//! A checkout is a full copy (copy_file_range; ext4 has no reflink), not a tree
//! of hardlinks: as root, file mode bits do not protect a shared inode, so a hook
//! could rewrite cache content through a hardlink. See docs/layers.md for the
//! measurements behind this.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use super::unpack::{unpack_with, UnpackLimits, UnpackOptions};
use super::Compression;
use crate::scratch::{self, ScratchDir};
use crate::Digest;

/// One layer of a base image: its diff-level identity and a way to open the blob.
pub struct LayerSource {
    /// Uncompressed digest (the config's diff_id): the cache key is the chain of these.
    pub diff_id: Digest,
    pub compression: Compression,
    pub open: Box<dyn Fn() -> io::Result<Box<dyn Read>> + Send + Sync>,
}

impl LayerSource {
    pub fn new(
        diff_id: Digest,
        compression: Compression,
        open: impl Fn() -> io::Result<Box<dyn Read>> + Send + Sync + 'static,
    ) -> Self {
        LayerSource { diff_id, compression, open: Box::new(open) }
    }
}

pub struct RootfsCache {
    dir: PathBuf,
    limits: UnpackLimits,
}

/// A cached, never-modified unpacked rootfs.
#[derive(Clone, Debug)]
pub struct BaseRootfs {
    path: PathBuf,
    chain_id: Digest,
}

impl BaseRootfs {
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// OCI ChainID of the layer stack.
    pub fn chain_id(&self) -> &Digest {
        &self.chain_id
    }
}

/// Identity of a file's inode state at checkout: unchanged stamp ⇒ unchanged
/// content and mode (any write, chmod or rename bumps ctime, which user space
/// cannot set back).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    ino: u64,
    ctime: i64,
    ctime_nsec: i64,
}

impl FileStamp {
    pub(crate) fn of(m: &fs::Metadata) -> Self {
        FileStamp { ino: m.ino(), ctime: m.ctime(), ctime_nsec: m.ctime_nsec() }
    }
}

/// A build's private writable rootfs; removed when dropped unless kept.
pub struct BuildRoot {
    dir: ScratchDir,
    stamps: Arc<HashMap<PathBuf, FileStamp>>,
}

impl BuildRoot {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    /// Keep the tree on disk after drop (for `--keep` / debugging); returns its path.
    pub fn keep(&mut self) -> io::Result<PathBuf> {
        self.dir.keep()
    }
    pub(crate) fn stamps(&self) -> &HashMap<PathBuf, FileStamp> {
        &self.stamps
    }
}

/// Scratch names in the cache: build roots in `builds/`, rootfs being unpacked in `rootfs/`.
const BUILD_PREFIX: &str = "build-";
const UNPACK_PREFIX: &str = ".tmp-";

impl RootfsCache {
    pub fn new(cache_dir: &Path) -> Result<Self> {
        for sub in ["rootfs", "builds"] {
            fs::create_dir_all(cache_dir.join(sub)).with_context(|| format!("creating {}", cache_dir.join(sub).display()))?;
        }
        Self::sweep(cache_dir)?;
        Ok(RootfsCache { dir: cache_dir.to_path_buf(), limits: UnpackLimits::default() })
    }

    /// Removes what killed processes left in the cache at `cache_dir` (build roots, half
    /// unpacked rootfs); what live ones hold stays (see [`scratch`]). Returns the count.
    pub fn sweep(cache_dir: &Path) -> Result<usize> {
        let builds = scratch::sweep(&cache_dir.join("builds"), |n| n.starts_with(BUILD_PREFIX));
        let rootfs = scratch::sweep(&cache_dir.join("rootfs"), |n| n.starts_with(UNPACK_PREFIX));
        Ok(builds.and_then(|b| Ok(b + rootfs?)).with_context(|| format!("cleaning up {}", cache_dir.display()))?)
    }

    pub fn with_limits(mut self, limits: UnpackLimits) -> Self {
        self.limits = limits;
        self
    }

    /// OCI ChainID: chain(L1) = diff_id(L1), chain(Ln) = sha256(chain(Ln-1) + " " + diff_id(Ln)).
    pub fn chain_id(layers: &[LayerSource]) -> Digest {
        let mut chain: Option<Digest> = None;
        for l in layers {
            chain = Some(match chain {
                None => l.diff_id.clone(),
                Some(c) => Digest::of(format!("{c} {}", l.diff_id).as_bytes()),
            });
        }
        chain.unwrap_or_else(|| Digest::of(b""))
    }

    /// The unpacked base for a stack of layers, built once (into a temp dir, then
    /// renamed into place) and reused afterwards.
    pub fn base(&self, layers: &[LayerSource]) -> Result<BaseRootfs> {
        let chain_id = Self::chain_id(layers);
        let path = self.dir.join("rootfs").join(chain_id.hex());
        if path.is_dir() {
            return Ok(BaseRootfs { path, chain_id });
        }
        let tmp = ScratchDir::new_in(&self.dir.join("rootfs"), UNPACK_PREFIX).context("creating a temporary rootfs")?;
        // Start from the longest prefix of the stack already unpacked, its files hardlinked:
        // cheaper in time and disk than decompressing, verifying and unpacking its layers again.
        // The typical case is an incremental build, whose previous image is the builder plus one
        // layer. Sharing inodes between bases is safe because a base is never written: hooks get
        // a copy (`checkout`) or a read-only view, and unpacking replaces a file (unlink, then
        // create) rather than writing into it.
        let mut start = 0;
        for k in (1..layers.len()).rev() {
            let prefix = self.dir.join("rootfs").join(Self::chain_id(&layers[..k]).hex());
            if prefix.is_dir() {
                replicate(&prefix, tmp.path(), Path::new(""), &mut Files::Link)
                    .with_context(|| format!("linking the cached rootfs {}", prefix.display()))?;
                start = k;
                break;
            }
        }
        for l in &layers[start..] {
            let opts = UnpackOptions {
                limits: self.limits.clone(),
                rewrite_absolute_symlinks: true,
                expected_diff_id: Some(l.diff_id.clone()),
                skip_unsafe: false,
            };
            let r = (l.open)().with_context(|| format!("opening layer {}", l.diff_id))?;
            // Warnings (skipped devices) are expected in OS images; they are counted in the stats.
            unpack_with(r, l.compression, tmp.path(), &opts, &|_| {})
                .with_context(|| format!("unpacking layer {}", l.diff_id))?;
        }
        // Renamed while still held, so no sweep takes it between unpacking and installing;
        // dropping `tmp` then removes whatever is left under the temporary name.
        match fs::rename(tmp.path(), &path) {
            Ok(()) => {}
            // Another process built the same chain first: use theirs.
            Err(_) if path.is_dir() => {}
            Err(e) => return Err(e).with_context(|| format!("installing rootfs {}", path.display())),
        }
        Ok(BaseRootfs { path, chain_id })
    }

    /// A private writable copy of `base`. Hardlinks inside the base stay
    /// hardlinks; modes and mtimes are kept.
    pub fn checkout(&self, base: &BaseRootfs) -> Result<BuildRoot> {
        let dir = ScratchDir::new_in(&self.dir.join("builds"), BUILD_PREFIX).context("creating a build root")?;
        let path = dir.path().to_path_buf();
        let mut stamps = HashMap::new();
        let mut inodes = HashMap::new();
        let mut files = Files::Copy { stamps: &mut stamps, inodes: &mut inodes };
        replicate(base.path(), &path, Path::new(""), &mut files)
            .with_context(|| format!("checking out {}", base.path().display()))?;
        let m = fs::metadata(base.path())?;
        fs::set_permissions(&path, fs::Permissions::from_mode(m.mode() & 0o7777))?;
        Ok(BuildRoot { dir, stamps: Arc::new(stamps) })
    }
}

/// How [`replicate`] places a regular file.
enum Files<'a> {
    /// A private copy (checkouts): hardlinks inside the tree stay hardlinks, and each copy's
    /// stamp is recorded for `diff`.
    Copy { stamps: &'a mut HashMap<PathBuf, FileStamp>, inodes: &'a mut HashMap<u64, PathBuf> },
    /// A hardlink to the source: only for trees nobody writes into (see [`RootfsCache::base`]).
    Link,
}

/// `src_root/rel` recreated under `dst_root`: new directories (modes kept) and symlinks,
/// regular files as `files` says.
fn replicate(src_root: &Path, dst_root: &Path, rel: &Path, files: &mut Files) -> io::Result<()> {
    let mut dirs = Vec::new();
    for e in fs::read_dir(src_root.join(rel))? {
        let e = e?;
        let p = rel.join(e.file_name());
        let (src, dst) = (src_root.join(&p), dst_root.join(&p));
        let m = fs::symlink_metadata(&src)?;
        let ft = m.file_type();
        if ft.is_dir() {
            fs::create_dir(&dst)?;
            dirs.push((p, m));
        } else if ft.is_symlink() {
            symlink(fs::read_link(&src)?, &dst)?;
        } else if ft.is_file() {
            match files {
                Files::Link => fs::hard_link(&src, &dst)?,
                Files::Copy { stamps, inodes } => {
                    if m.nlink() > 1 {
                        if let Some(first) = inodes.get(&m.ino()) {
                            fs::hard_link(dst_root.join(first), &dst)?;
                            stamps.insert(p, FileStamp::of(&fs::symlink_metadata(&dst)?));
                            continue;
                        }
                        inodes.insert(m.ino(), p.clone());
                    }
                    let mut from = fs::File::open(&src)?;
                    let to = fs::File::create_new(&dst)?;
                    // std's copy uses copy_file_range on Linux: no user-space round trip.
                    io::copy(&mut from, &mut &to)?;
                    to.set_permissions(fs::Permissions::from_mode(m.mode() & 0o7777))?;
                    to.set_modified(m.modified()?)?;
                    stamps.insert(p, FileStamp::of(&to.metadata()?));
                }
            }
        }
    }
    for (p, m) in dirs {
        replicate(src_root, dst_root, &p, files)?;
        fs::set_permissions(dst_root.join(&p), fs::Permissions::from_mode(m.mode() & 0o7777))?;
    }
    Ok(())
}
