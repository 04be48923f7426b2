//! Sources and destinations of images, one per transport, and the single
//! `copy` that moves an image between any two of them (containers/image style:
//! N transports, not N² copy paths).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::image::{self, Descriptor, ManifestFormat, Platform};
use crate::image::reference::{ImageRef, LocalRef};
use crate::image::endpoint::{ImageDestination, ImageSource};
use crate::image::registry::{RegistryDestination, RegistryOptions, RegistrySource};
use crate::image::store::{open_regular, read_capped, Layout, SizedReader, Store, MAX_CONFIG, MAX_MANIFEST};
use crate::Digest;

#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Convert the manifest to this format; `None` keeps the source format.
    pub format: Option<ManifestFormat>,
    pub platform: Platform,
    pub registry: RegistryOptions,
    /// Store root for local references.
    pub store_root: Option<PathBuf>,
    /// Draw a progress bar per blob (see [`crate::progress::enabled`]).
    pub progress: bool,
    /// Repositories (`REGISTRY/REPOSITORY[:TAG]`, e.g. the builder image's)
    /// whose blobs a registry destination may mount instead of uploading;
    /// entries on another registry than the destination's are ignored.
    /// `copy` adds a registry source's own repository in front.
    pub mount_from: Vec<String>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            format: None,
            platform: Platform::host_default(),
            registry: RegistryOptions::default(),
            store_root: None,
            progress: false,
            mount_from: Vec::new(),
        }
    }
}

impl CopyOptions {
    fn store(&self) -> Result<Store> {
        match &self.store_root {
            Some(r) => Store::open(r),
            None => Store::open(Store::default_root()?),
        }
    }
}

/// Reads from an OCI layout (local store or `oci:` dir).
pub struct LayoutSource {
    layout: Layout,
    top: Descriptor,
    _keep: Option<tempfile::TempDir>,
}

impl ImageSource for LayoutSource {
    fn manifest(&mut self, digest: Option<&Digest>) -> Result<(Vec<u8>, String)> {
        let d = digest.unwrap_or(&self.top.digest);
        let bytes = self.layout.read_blob_capped(d, MAX_MANIFEST)?;
        let mt = match digest {
            None if !self.top.media_type.is_empty() => self.top.media_type.clone(),
            _ => image::sniff_media_type(&bytes)?,
        };
        Ok((bytes, mt))
    }

    fn blob(&mut self, desc: &Descriptor) -> Result<Box<dyn Read + Send>> {
        Ok(Box::new(self.layout.open_sized(desc)?))
    }
}

/// Writes into an OCI layout, tagging the manifest with `ref_name`; for
/// `oci-archive:` the layout is a temp dir tarred up at `commit`.
pub struct LayoutDestination {
    layout: Layout,
    ref_name: Option<String>,
    archive: Option<(PathBuf, tempfile::TempDir)>,
}

impl ImageDestination for LayoutDestination {
    fn has_blob(&mut self, desc: &Descriptor) -> Result<bool> {
        Ok(self.layout.has_blob(&desc.digest))
    }

    fn put_blob(&mut self, desc: &Descriptor, reader: &mut dyn Read) -> Result<()> {
        self.layout
            .put_blob(reader, Some(&desc.digest))
            .with_context(|| format!("storing blob {}", desc.digest))?;
        Ok(())
    }

    fn put_manifest(&mut self, bytes: &[u8], media_type: &str) -> Result<()> {
        let d = self.layout.put_bytes(bytes)?;
        let desc = Descriptor::new(media_type, d, bytes.len() as u64);
        match &self.ref_name {
            Some(r) => self.layout.tag_descriptor(r, desc),
            // An untagged `oci:DIR` destination: the image is the index's only entry.
            None => self.layout.update_index(|idx| {
                idx.manifests
                    .retain(|m| m.annotations.contains_key(image::ANNOTATION_REF_NAME));
                idx.manifests.push(desc);
                Ok(())
            }),
        }
    }

    fn put_child_manifest(&mut self, bytes: &[u8], _media_type: &str, digest: &Digest) -> Result<()> {
        self.layout.put_blob(&mut &bytes[..], Some(digest))?;
        Ok(())
    }

    /// skopeo/containers-image ignore non-OCI manifests in an OCI layout's
    /// index.json, so layouts (the store included) hold OCI manifests only.
    fn supported_formats(&self) -> &'static [ManifestFormat] {
        &[ManifestFormat::Oci]
    }

    fn commit(self: Box<Self>) -> Result<()> {
        if let Some((path, _dir)) = &self.archive {
            write_tar_of_dir(self.layout.root(), path)?;
        }
        Ok(())
    }
}

/// One entry of a `docker save` manifest.json.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SaveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Writes `docker save` format (manifest.json + config + layer blobs as-is;
/// docker/podman load decompress gzip layers themselves).
pub struct DockerArchiveDestination {
    layout: Layout,
    _dir: tempfile::TempDir,
    path: PathBuf,
    name: Option<crate::image::reference::NameTag>,
    manifest: Option<image::Manifest>,
}

impl ImageDestination for DockerArchiveDestination {
    fn has_blob(&mut self, desc: &Descriptor) -> Result<bool> {
        Ok(self.layout.has_blob(&desc.digest))
    }

    fn put_blob(&mut self, desc: &Descriptor, reader: &mut dyn Read) -> Result<()> {
        self.layout.put_blob(reader, Some(&desc.digest))?;
        Ok(())
    }

    fn put_manifest(&mut self, bytes: &[u8], _media_type: &str) -> Result<()> {
        self.manifest = Some(image::Manifest::parse(bytes)?);
        Ok(())
    }

    fn supported_formats(&self) -> &'static [ManifestFormat] {
        &[ManifestFormat::Docker]
    }

    fn commit(self: Box<Self>) -> Result<()> {
        let m = self.manifest.as_ref().context("no manifest was written")?;
        let entry = SaveEntry {
            config: format!("{}.json", m.config.digest.hex()),
            repo_tags: Some(self.name.iter().map(|n| n.to_string()).collect()),
            layers: m
                .layers
                .iter()
                .map(|l| format!("{}.tar", l.digest.hex()))
                .collect(),
        };
        let parent = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = tempfile::NamedTempFile::with_prefix_in(".tmp-", parent)
            .with_context(|| format!("creating archive next to {}", self.path.display()))?;
        let mut b = tar::Builder::new(io::BufWriter::new(tmp));
        b.mode(tar::HeaderMode::Deterministic);
        let json = serde_json::to_vec(&[entry])?;
        let mut h = tar::Header::new_gnu();
        h.set_size(json.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, "manifest.json", &json[..])?;
        b.append_path_with_name(
            self.layout.blob_path(&m.config.digest),
            format!("{}.json", m.config.digest.hex()),
        )?;
        let mut seen = std::collections::BTreeSet::new();
        for l in &m.layers {
            if seen.insert(&l.digest) {
                b.append_path_with_name(
                    self.layout.blob_path(&l.digest),
                    format!("{}.tar", l.digest.hex()),
                )?;
            }
        }
        let tmp = b.into_inner()?.into_inner().map_err(|e| e.into_error())?;
        tmp.persist(&self.path)
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(())
    }
}

/// Reads `docker save` archives; the manifest is synthesised (Docker v2s2)
/// from manifest.json, with layer digests computed from the files.
pub struct DockerArchiveSource {
    dir: tempfile::TempDir,
    manifest: Vec<u8>,
    files: std::collections::BTreeMap<Digest, PathBuf>,
}

/// A path from manifest.json, confined to the unpacked archive.
fn confined(dir: &Path, rel: &str) -> Result<PathBuf> {
    let p = Path::new(rel);
    if rel.is_empty()
        || !p
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
    {
        bail!("docker-archive manifest.json names an unsafe path {rel:?}");
    }
    Ok(dir.join(p))
}

impl DockerArchiveSource {
    fn open(path: &Path, name: Option<&crate::image::reference::NameTag>) -> Result<Self> {
        let dir = unpack_archive(path)?;
        let mj_path = dir.path().join("manifest.json");
        if std::fs::symlink_metadata(&mj_path).is_err() {
            bail!("{} has no manifest.json (not a docker-archive?)", path.display());
        }
        let mj = read_capped(open_regular(&mj_path)?, MAX_MANIFEST, &"the docker-archive's manifest.json")?;
        let entries: Vec<SaveEntry> =
            serde_json::from_slice(&mj).context("malformed docker-archive manifest.json")?;
        let entry = match name {
            Some(n) => {
                let want = n.to_string();
                entries
                    .into_iter()
                    .find(|e| e.repo_tags.iter().flatten().any(|t| *t == want))
                    .with_context(|| format!("{} has no image tagged {want}", path.display()))?
            }
            None => {
                let mut it = entries.into_iter();
                match (it.next(), it.next()) {
                    (Some(e), None) => e,
                    (None, _) => bail!("{} contains no image", path.display()),
                    _ => bail!(
                        "{} contains several images; name one (docker-archive:FILE:NAME:TAG)",
                        path.display()
                    ),
                }
            }
        };
        let mut files = std::collections::BTreeMap::new();
        let mut describe = |rel: &str, media_type: &str| -> Result<Descriptor> {
            let p = confined(dir.path(), rel)?;
            let mut w = crate::digest::HashingWriter::new(io::sink());
            io::copy(
                &mut open_regular(&p).with_context(|| format!("docker-archive entry {rel}"))?,
                &mut w,
            )?;
            let (d, size, _) = w.finish();
            files.insert(d.clone(), p);
            Ok(Descriptor::new(media_type, d, size))
        };
        let config = describe(&entry.config, image::media::DOCKER_CONFIG)?;
        let mut layers = Vec::new();
        for l in &entry.layers {
            let mut magic = [0u8; 2];
            let is_gz = open_regular(&confined(dir.path(), l)?)
                .and_then(|mut f| Ok(f.read_exact(&mut magic)?))
                .is_ok()
                && magic == [0x1f, 0x8b];
            let mt = if is_gz {
                image::media::DOCKER_LAYER_GZIP
            } else {
                image::media::DOCKER_LAYER_TAR
            };
            layers.push(describe(l, mt)?);
        }
        let m = image::Manifest {
            schema_version: 2,
            media_type: Some(image::media::DOCKER_MANIFEST.into()),
            config,
            layers,
            annotations: Default::default(),
            extra: Default::default(),
        };
        Ok(DockerArchiveSource {
            dir,
            manifest: m.to_bytes(),
            files,
        })
    }
}

impl ImageSource for DockerArchiveSource {
    fn manifest(&mut self, digest: Option<&Digest>) -> Result<(Vec<u8>, String)> {
        if digest.is_some_and(|d| *d != Digest::of(&self.manifest)) {
            bail!("docker-archive holds a single manifest");
        }
        Ok((self.manifest.clone(), image::media::DOCKER_MANIFEST.into()))
    }

    fn blob(&mut self, desc: &Descriptor) -> Result<Box<dyn Read + Send>> {
        let p = self.files.get(&desc.digest).with_context(|| {
            format!("blob {} not in {}", desc.digest, self.dir.path().display())
        })?;
        let what = format!("blob {}", desc.digest);
        Ok(Box::new(SizedReader::new(open_regular(p)?, desc.size, what)))
    }
}

/// Tars `dir` (no lock file) to a temp name next to `dest`, then renames.
fn write_tar_of_dir(dir: &Path, dest: &Path) -> Result<()> {
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::with_prefix_in(".tmp-", parent)
        .with_context(|| format!("creating archive next to {}", dest.display()))?;
    let mut b = tar::Builder::new(io::BufWriter::new(tmp));
    b.mode(tar::HeaderMode::Deterministic);
    b.follow_symlinks(false);
    for name in ["oci-layout", "index.json"] {
        b.append_path_with_name(dir.join(name), name)?;
    }
    let mut blobs: Vec<_> = std::fs::read_dir(dir.join("blobs/sha256"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    blobs.sort();
    for n in blobs {
        b.append_path_with_name(
            dir.join("blobs/sha256").join(&n),
            format!("blobs/sha256/{n}"),
        )?;
    }
    let tmp = b.into_inner()?.into_inner().map_err(|e| e.into_error())?;
    tmp.persist(dest)
        .with_context(|| format!("writing {}", dest.display()))?;
    Ok(())
}

/// Unpacks an `oci-archive:` into a temp dir. `tar::Archive::unpack` refuses
/// `..` and absolute paths, so a hostile archive stays inside the temp dir.
fn unpack_archive(path: &Path) -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir().context("creating temp dir for archive")?;
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut a = tar::Archive::new(io::BufReader::new(f));
    a.set_preserve_permissions(false);
    a.set_unpack_xattrs(false);
    for entry in a
        .entries()
        .with_context(|| format!("reading {}", path.display()))?
    {
        let mut e = entry?;
        if !matches!(
            e.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Directory
        ) {
            bail!(
                "{}: unexpected non-regular entry {:?} in an OCI archive",
                path.display(),
                e.path()?
            );
        }
        if !e.unpack_in(dir.path())? {
            bail!(
                "{}: entry {:?} escapes the archive",
                path.display(),
                e.path()?
            );
        }
    }
    Ok(dir)
}

pub fn open_source(r: &ImageRef, opts: &CopyOptions) -> Result<Box<dyn ImageSource>> {
    Ok(match r {
        ImageRef::Local(l) => {
            let store = opts.store()?;
            let top = match l {
                LocalRef::Tagged(nt) => store.layout().find(Some(&nt.to_string()))?,
                LocalRef::Digest { digest, .. } => {
                    if !store.has_blob(digest) {
                        bail!("image {digest} not found in {}", store.root().display());
                    }
                    let bytes = store.layout().read_blob_capped(digest, MAX_MANIFEST)?;
                    Descriptor::new(
                        &image::sniff_media_type(&bytes)?,
                        digest.clone(),
                        bytes.len() as u64,
                    )
                }
            };
            Box::new(LayoutSource {
                layout: store.layout().clone(),
                top,
                _keep: None,
            })
        }
        ImageRef::OciDir { path, tag } => {
            let layout = Layout::open_existing(path)?;
            let top = layout.find(tag.as_deref())?;
            Box::new(LayoutSource {
                layout,
                top,
                _keep: None,
            })
        }
        ImageRef::OciArchive { path, tag } => {
            let dir = unpack_archive(path)?;
            let layout = Layout::open_existing(dir.path())?;
            let top = layout.find(tag.as_deref())?;
            Box::new(LayoutSource {
                layout,
                top,
                _keep: Some(dir),
            })
        }
        ImageRef::Docker(d) => Box::new(RegistrySource::new(d, &opts.registry)?),
        ImageRef::DockerArchive { path, name } => {
            Box::new(DockerArchiveSource::open(path, name.as_ref())?)
        }
    })
}

pub fn open_destination(r: &ImageRef, opts: &CopyOptions) -> Result<Box<dyn ImageDestination>> {
    Ok(match r {
        ImageRef::Local(LocalRef::Tagged(nt)) => {
            let store = opts.store()?;
            Box::new(LayoutDestination {
                layout: store.layout().clone(),
                ref_name: Some(nt.to_string()),
                archive: None,
            })
        }
        ImageRef::Local(LocalRef::Digest { .. }) => {
            bail!("cannot write to a digest reference {r}; give NAME:TAG")
        }
        ImageRef::OciDir { path, tag } => Box::new(LayoutDestination {
            layout: Layout::open(path)?,
            ref_name: tag.clone(),
            archive: None,
        }),
        ImageRef::OciArchive { path, tag } => {
            let dir = tempfile::tempdir()?;
            let layout = Layout::open(dir.path())?;
            Box::new(LayoutDestination {
                layout,
                ref_name: tag.clone(),
                archive: Some((path.clone(), dir)),
            })
        }
        ImageRef::Docker(d) => Box::new(RegistryDestination::new(d, &opts.registry)?),
        ImageRef::DockerArchive { path, name } => {
            let dir = tempfile::tempdir()?;
            Box::new(DockerArchiveDestination {
                layout: Layout::open(dir.path())?,
                _dir: dir,
                path: path.clone(),
                name: name.clone(),
                manifest: None,
            })
        }
    })
}

/// What a copy did with each blob the destination lacked.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyReport {
    /// The manifest digest written.
    pub digest: Digest,
    /// Blobs linked from another repository on the same registry, not uploaded.
    pub mounted: Vec<MountedBlob>,
    /// Blobs whose content was transferred.
    pub copied: Vec<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MountedBlob {
    pub digest: Digest,
    /// `REGISTRY/REPOSITORY` it was mounted from.
    pub from: String,
}

/// Copies one image (platform picked from an index) from `src` to `dst`;
/// returns the manifest digest written.
pub fn copy(src: &ImageRef, dst: &ImageRef, opts: &CopyOptions) -> Result<Digest> {
    copy_report(src, dst, opts).map(|r| r.digest)
}

/// [`copy`], telling which blobs were mounted and which copied.
pub fn copy_report(src: &ImageRef, dst: &ImageRef, opts: &CopyOptions) -> Result<CopyReport> {
    copy_report_with(src, dst, opts, Scope::OnePlatform)
}

/// Copies the whole image index `src` names (skopeo's `--all`): every manifest it lists and
/// their blobs, then the index; an image that is no index is copied as [`copy_report`] does.
pub fn copy_all_report(src: &ImageRef, dst: &ImageRef, opts: &CopyOptions) -> Result<CopyReport> {
    copy_report_with(src, dst, opts, Scope::All)
}

/// What of an image index a copy takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The manifest for [`CopyOptions::platform`].
    OnePlatform,
    /// The index and everything it lists.
    All,
}

fn copy_report_with(src: &ImageRef, dst: &ImageRef, opts: &CopyOptions, scope: Scope) -> Result<CopyReport> {
    let mut source = open_source(src, opts).with_context(|| format!("opening source {src}"))?;
    let dest = open_destination(dst, opts).with_context(|| format!("opening destination {dst}"))?;
    // The source repository certainly holds every blob, so it is the best
    // mount candidate; the destination ignores it if on another registry.
    let mut with_source;
    let opts = match src {
        ImageRef::Docker(s) => {
            with_source = opts.clone();
            with_source
                .mount_from
                .insert(0, format!("{}/{}", s.registry, s.repository));
            &with_source
        }
        _ => opts,
    };
    copy_scoped(source.as_mut(), dest, opts, scope).with_context(|| format!("copying {src} to {dst}"))
}

pub fn copy_between(
    source: &mut dyn ImageSource,
    dest: Box<dyn ImageDestination>,
    opts: &CopyOptions,
) -> Result<Digest> {
    copy_between_report(source, dest, opts).map(|r| r.digest)
}

pub fn copy_between_report(
    source: &mut dyn ImageSource,
    dest: Box<dyn ImageDestination>,
    opts: &CopyOptions,
) -> Result<CopyReport> {
    copy_scoped(source, dest, opts, Scope::OnePlatform)
}

fn copy_scoped(
    source: &mut dyn ImageSource,
    mut dest: Box<dyn ImageDestination>,
    opts: &CopyOptions,
    scope: Scope,
) -> Result<CopyReport> {
    let (mut bytes, mut mt) = source.manifest(None)?;
    if scope == Scope::All && image::is_index(&mt) {
        return copy_index(source, dest, opts, bytes, mt);
    }
    for _ in 0..4 {
        if !image::is_index(&mt) {
            break;
        }
        let idx: image::Index = serde_json::from_slice(&bytes).context("malformed image index")?;
        let d = idx.select(&opts.platform)?.digest.clone();
        (bytes, mt) = source.manifest(Some(&d))?;
        if Digest::of(&bytes) != d {
            bail!("manifest {d} does not match its digest");
        }
    }
    if !image::is_manifest(&mt) {
        bail!("unsupported manifest media type {mt:?}");
    }
    let manifest = image::Manifest::parse(&bytes)?;
    let supported = dest.supported_formats();
    let want = match opts.format {
        Some(f) if !supported.contains(&f) => bail!(
            "the destination cannot hold {f:?} manifests (OCI layouts hold OCI manifests only)"
        ),
        Some(f) => f,
        None if supported.contains(&manifest.format()) => manifest.format(),
        None => supported[0],
    };
    let (bytes, mt) = if want != manifest.format() {
        let m = manifest.convert(want)?;
        (m.to_bytes(), m.media_type_or_default().to_string())
    } else {
        (bytes, mt)
    };
    let mut report = CopyReport { digest: Digest::of(&bytes), mounted: Vec::new(), copied: Vec::new() };
    copy_blobs(source, dest.as_mut(), opts, &[&manifest], &mut report)?;
    dest.put_manifest(&bytes, &mt)?;
    dest.commit()?;
    Ok(report)
}

/// `--all`: the blobs of every manifest the index lists, then those manifests, then the index,
/// so that a registry never holds a manifest whose blobs are missing. Manifests are copied as
/// they are (a conversion would change the digests the index names).
fn copy_index(
    source: &mut dyn ImageSource,
    mut dest: Box<dyn ImageDestination>,
    opts: &CopyOptions,
    bytes: Vec<u8>,
    mt: String,
) -> Result<CopyReport> {
    let idx: image::Index = serde_json::from_slice(&bytes).context("malformed image index")?;
    let supported = dest.supported_formats();
    let is_oci = mt == image::media::OCI_INDEX;
    match opts.format {
        Some(f) if (f == ManifestFormat::Oci) != is_oci => {
            bail!("--format {f:?} cannot convert an image index copied with --all; copy it as it is")
        }
        _ if !is_oci && !supported.contains(&ManifestFormat::Docker) => {
            bail!("the destination holds OCI manifests only and this is a Docker manifest list; copy one platform (--platform) instead of --all")
        }
        _ => {}
    }
    let mut children = Vec::new();
    for d in &idx.manifests {
        let (b, cmt) = source.manifest(Some(&d.digest))?;
        if Digest::of(&b) != d.digest {
            bail!("manifest {} does not match its digest", d.digest);
        }
        if !image::is_manifest(&cmt) {
            bail!("the index lists {} of media type {cmt:?}: nested indexes are not copied with --all", d.digest);
        }
        children.push((image::Manifest::parse(&b)?, b, cmt, d.digest.clone()));
    }
    let mut report = CopyReport { digest: Digest::of(&bytes), mounted: Vec::new(), copied: Vec::new() };
    let manifests: Vec<&image::Manifest> = children.iter().map(|(m, ..)| m).collect();
    copy_blobs(source, dest.as_mut(), opts, &manifests, &mut report)?;
    for (_, b, cmt, d) in &children {
        dest.put_child_manifest(b, cmt, d).with_context(|| format!("writing manifest {d}"))?;
    }
    dest.put_manifest(&bytes, &mt)?;
    dest.commit()?;
    Ok(report)
}

/// The config and layers of `manifests` the destination lacks, mounted where it can, else
/// copied; recorded in `report`.
fn copy_blobs(
    source: &mut dyn ImageSource,
    dest: &mut dyn ImageDestination,
    opts: &CopyOptions,
    manifests: &[&image::Manifest],
    report: &mut CopyReport,
) -> Result<()> {
    let mut todo: Vec<(Descriptor, Box<dyn Read + Send>)> = Vec::new();
    let mounted = &mut report.mounted;
    let mut bars = Vec::new();
    let blobs = manifests.iter().flat_map(|m| std::iter::once(&m.config).chain(&m.layers));
    for desc in blobs {
        let seen = todo.iter().any(|(d, _)| d.digest == desc.digest)
            || mounted.iter().any(|m| m.digest == desc.digest);
        if seen || dest.has_blob(desc)? {
            continue;
        }
        // Mount before reading the source: a registry source would otherwise
        // download the blob for nothing.
        if let Some(from) = dest.mount_blob(desc, &opts.mount_from) {
            mounted.push(MountedBlob {
                digest: desc.digest.clone(),
                from,
            });
            continue;
        }
        let inner = source
            .blob(desc)
            .with_context(|| format!("reading blob {}", desc.digest))?;
        let bar = crate::progress::blob_bar(opts.progress, &desc.digest.short(), desc.size);
        bars.push(bar.clone());
        todo.push((
            desc.clone(),
            Box::new(crate::progress::ProgressReader { inner, bar }),
        ));
    }
    report.copied = todo.iter().map(|(d, _)| d.digest.clone()).collect();
    let put = dest.put_blobs(todo);
    bars.iter().for_each(|b| b.finish_and_clear());
    put
}

/// What `ws2i inspect` shows.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageInfo {
    pub reference: String,
    pub digest: Digest,
    pub media_type: String,
    pub config_digest: Digest,
    pub created: Option<String>,
    pub os: String,
    pub architecture: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub config: Option<image::ContainerConfig>,
    pub layers: Vec<Descriptor>,
    pub diff_ids: Vec<Digest>,
    /// When the reference names an image index: its digest and entries (the fields above
    /// describe the entry picked for the platform).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<IndexInfo>,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexInfo {
    pub digest: Digest,
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
}

/// The top-level manifest or index of `r` exactly as stored, with its media type
/// (`ws2i inspect --raw`, as `skopeo inspect --raw`).
pub fn raw_manifest(r: &ImageRef, opts: &CopyOptions) -> Result<(Vec<u8>, String)> {
    let mut src = open_source(r, opts).with_context(|| format!("opening {r}"))?;
    src.manifest(None)
}

/// Reads manifest and config of `r` from any transport.
pub fn inspect(r: &ImageRef, opts: &CopyOptions) -> Result<ImageInfo> {
    let mut src = open_source(r, opts).with_context(|| format!("opening {r}"))?;
    let (mut bytes, mut mt) = src.manifest(None)?;
    let mut index = None;
    for _ in 0..4 {
        if !image::is_index(&mt) {
            break;
        }
        let idx: image::Index = serde_json::from_slice(&bytes).context("malformed image index")?;
        let d = idx.select(&opts.platform)?.digest.clone();
        index.get_or_insert(IndexInfo { digest: Digest::of(&bytes), media_type: mt.clone(), manifests: idx.manifests.clone() });
        (bytes, mt) = src.manifest(Some(&d))?;
        if Digest::of(&bytes) != d {
            bail!("manifest {d} does not match its digest");
        }
    }
    let m = image::Manifest::parse(&bytes)?;
    let what = format!("config blob {}", m.config.digest);
    if m.config.size > MAX_CONFIG {
        bail!("{what} is {} by its descriptor, larger than {} (refused)", crate::Size(m.config.size), crate::Size(MAX_CONFIG));
    }
    let cfg = read_capped(src.blob(&m.config)?, MAX_CONFIG, &what)?;
    if Digest::of(&cfg) != m.config.digest {
        bail!("config blob {} does not match its digest", m.config.digest);
    }
    let c = image::ImageConfig::parse(&cfg)?;
    Ok(ImageInfo {
        reference: r.to_string(),
        digest: Digest::of(&bytes),
        media_type: mt,
        config_digest: m.config.digest.clone(),
        labels: c.labels(),
        created: c.created,
        os: c.os,
        architecture: c.architecture,
        config: c.config,
        layers: m.layers,
        diff_ids: c.rootfs.diff_ids,
        index,
    })
}
