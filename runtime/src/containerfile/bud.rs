//! `ws2i bud`: a [`BudBackend`] over the real store, layer code and sandbox,
//! and [`build`], which plans a Containerfile and writes the resulting image.
//!
//! Each stage starts from a private checkout of its base's unpacked rootfs
//! ([`RootfsCache`]); at `commit` the stage's changes against that base are
//! packed as ONE layer on top of the base's layers. Layers and configs are
//! reproducible (fixed mtimes, owners and `created` from SOURCE_DATE_EPOCH), so
//! the same inputs give the same digest. Blobs go into the store as they are
//! made, but the image is only tagged once everything exists: a failed build
//! leaves no image behind (its stray blobs go at `ws2i prune`).

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use serde_json::{Map, Value};

use crate::containerfile::{
    self, from_paths, rel_dest, write_entry, Base, BudBackend, BuildOptions, Containerfile,
    CopySource, CopyStep, RunStep, Warning,
};
use crate::image::{
    self, media, Descriptor, ImageBuilder, Manifest, ManifestFormat, NewLayer, Platform,
};
use crate::layer::{
    self, BaseRootfs, BuildRoot, Compression, MediaTypeFlavor, PackOptions,
    RootfsCache,
};
use crate::image::reference::{ImageRef, LocalRef};
use crate::image::registry::RegistryOptions;
use crate::sandbox::{self, Budget, Hook, LogSink, Sandbox, SandboxConfig};
use crate::image::store::Store;
use crate::image::transport::{self, CopyOptions};
use crate::image::ImageDestination;
use crate::Digest;

/// Everything `ws2i bud` takes besides the Containerfile and the context.
#[derive(Debug, Clone)]
pub struct BudOptions {
    pub build: BuildOptions,
    /// Where the image goes: a local `NAME[:TAG]` (the store) or any transport reference.
    pub destination: ImageRef,
    pub format: ManifestFormat,
    /// `created`, history and layer mtimes; the same inputs give the same digest.
    pub source_date_epoch: u64,
    /// Platform of `FROM scratch` images and the one picked from multi-platform bases.
    pub platform: Platform,
    pub registry: RegistryOptions,
    pub compression: Compression,
    /// Budgets of each `RUN`.
    pub budget: Budget,
    /// Progress bars while pulling bases and writing to a transport.
    pub progress: bool,
}

impl BudOptions {
    pub fn new(destination: ImageRef) -> Self {
        BudOptions {
            build: BuildOptions::default(),
            destination,
            format: ManifestFormat::Oci,
            source_date_epoch: 0,
            platform: Platform::host_default(),
            registry: RegistryOptions::default(),
            compression: Compression::Gzip,
            budget: Budget::default(),
            progress: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct BudResult {
    /// The destination as given (`ws2i/app:latest`, `oci:/dir:tag`, ...).
    pub image: String,
    /// Digest of the manifest written.
    pub digest: Digest,
    pub warnings: Vec<Warning>,
}

/// Plans `containerfile` against `context` and writes the image of its output
/// stage. Progress notices (warnings, RUN output) go to `log`.
pub fn build(
    store: &Store,
    containerfile: &str,
    context: &Path,
    opts: &BudOptions,
    log: &dyn LogSink,
) -> Result<BudResult> {
    if matches!(opts.destination, ImageRef::Local(_)) && opts.format == ManifestFormat::Docker {
        bail!("the local store holds OCI manifests only; use --format docker with a docker:// or other destination");
    }
    if matches!(opts.destination, ImageRef::Local(LocalRef::Digest { .. })) {
        bail!(
            "cannot tag a digest reference {}; give NAME[:TAG]",
            opts.destination
        );
    }
    let cf = Containerfile::parse(containerfile)?;
    let mut backend = StoreBackend::new(store, opts, log)?;
    let plan = containerfile::plan(&cf, context, &opts.build, &mut backend)?;
    for w in &plan.warnings {
        log.notice(&format!(
            "warning: Containerfile line {}: {}",
            w.line, w.message
        ));
    }
    containerfile::execute(&plan, context, &mut backend)?;
    let (manifest_digest, _) = backend
        .stages
        .get(plan.output)
        .and_then(|s| s.image.clone())
        .ok_or_else(|| anyhow!("the output stage was not committed"))?;
    let digest = match &opts.destination {
        ImageRef::Local(LocalRef::Tagged(nt)) => {
            store.tag(nt, &manifest_digest)?;
            manifest_digest
        }
        dest => {
            let copy = CopyOptions {
                format: Some(opts.format),
                platform: opts.platform.clone(),
                registry: opts.registry.clone(),
                store_root: Some(store.root().to_path_buf()),
                progress: opts.progress,
                mount_from: Vec::new(),
            };
            let src = ImageRef::Local(LocalRef::Digest {
                name: None,
                digest: manifest_digest,
            });
            transport::copy(&src, dest, &copy)?
        }
    };
    Ok(BudResult {
        image: opts.destination.to_string(),
        digest,
        warnings: plan.warnings,
    })
}

/// A base image known to the store: its (OCI) manifest and raw config.
#[derive(Clone)]
struct StoredImage {
    manifest: Manifest,
    config: Vec<u8>,
}

struct StageState {
    base: Option<StoredImage>,
    base_rootfs: BaseRootfs,
    root: BuildRoot,
    /// `COPY --chown` owners, by path relative to the rootfs.
    owners: BTreeMap<PathBuf, (u32, u32)>,
    /// Set by `commit`: manifest digest and the image itself.
    image: Option<(Digest, StoredImage)>,
}

/// The production [`BudBackend`].
pub struct StoreBackend<'a> {
    store: &'a Store,
    opts: &'a BudOptions,
    log: &'a dyn LogSink,
    cache: RootfsCache,
    images: HashMap<String, StoredImage>,
    stages: Vec<StageState>,
    sandbox: Option<Sandbox>,
}

impl<'a> StoreBackend<'a> {
    pub fn new(store: &'a Store, opts: &'a BudOptions, log: &'a dyn LogSink) -> Result<Self> {
        // The same unpacked-base cache `ws2i build` uses: a builder made by bud
        // and then used by build is unpacked once.
        let cache = RootfsCache::new(&sandbox::default_cache_dir().join("layers"))?;
        Ok(StoreBackend {
            store,
            opts,
            log,
            cache,
            images: HashMap::new(),
            stages: Vec::new(),
            sandbox: None,
        })
    }

    /// Local store first; a name with a registry host that is not stored is
    /// pulled (blobs only, untagged); other transports are read directly.
    fn resolve(&mut self, reference: &str) -> Result<StoredImage> {
        if let Some(i) = self.images.get(reference) {
            return Ok(i.clone());
        }
        let r: ImageRef = reference.parse()?;
        let img = match &r {
            ImageRef::Local(l) => match self.store.resolve(l) {
                Ok(ri) => {
                    let config = self.store.layout().read_blob(&ri.config_digest)?;
                    StoredImage { manifest: ri.manifest.convert(ManifestFormat::Oci)?, config }
                }
                Err(e) => match registry_form(l) {
                    Some(remote) => self.pull(&remote)?,
                    None => {
                        return Err(e.context(format!(
                            "image {reference} is not in the local store {} (pull it first, or name a registry: docker://HOST/NAME:TAG)",
                            self.store.root().display()
                        )))
                    }
                },
            },
            other => self.pull(other)?,
        };
        self.images.insert(reference.to_string(), img.clone());
        Ok(img)
    }

    fn pull(&self, r: &ImageRef) -> Result<StoredImage> {
        let copy = CopyOptions {
            format: Some(ManifestFormat::Oci),
            platform: self.opts.platform.clone(),
            registry: self.opts.registry.clone(),
            store_root: Some(self.store.root().to_path_buf()),
            progress: self.opts.progress,
            mount_from: Vec::new(),
        };
        let mut src = transport::open_source(r, &copy).with_context(|| format!("opening {r}"))?;
        let dest = Box::new(BlobsOnly {
            store: self.store.clone(),
        });
        let digest = transport::copy_between(src.as_mut(), dest, &copy)
            .with_context(|| format!("pulling {r}"))?;
        let manifest = Manifest::parse(&self.store.layout().read_blob(&digest)?)?;
        let config = self.store.layout().read_blob(&manifest.config.digest)?;
        Ok(StoredImage { manifest, config })
    }

    /// The unpacked (cached) rootfs of an image's layer stack.
    fn unpacked(&self, img: &StoredImage) -> Result<BaseRootfs> {
        let cfg = image::ImageConfig::parse(&img.config)?;
        let sources = self.store.layer_sources(&img.manifest, &cfg.rootfs.diff_ids)?;
        self.cache.base(&sources)
    }

    fn stage(&self, stage: usize) -> Result<&StageState> {
        self.stages
            .get(stage)
            .ok_or_else(|| anyhow!("stage {stage} not started"))
    }

    fn open(path: &Path) -> Result<Dir> {
        Dir::open_ambient_dir(path, ambient_authority())
            .with_context(|| format!("opening {}", path.display()))
    }

    fn sandbox(&mut self) -> Result<&Sandbox> {
        if self.sandbox.is_none() {
            self.sandbox = Some(Sandbox::new(SandboxConfig {
                cache_dir: sandbox::default_cache_dir(),
            })?);
        }
        Ok(self.sandbox.as_ref().expect("just set"))
    }
}

/// `--chown=user[:group]` as numeric ids: numbers as given, names from the
/// stage's own /etc/passwd and /etc/group (read through cap-std, inside the
/// rootfs). Without a group, a name gives its primary group and a number
/// itself, as in Docker.
fn resolve_owner(root: &Dir, c: &containerfile::Chown) -> Result<(u32, u32)> {
    let lookup = |file: &str, name: &str| -> Result<(u32, Option<u32>)> {
        if let Ok(n) = name.parse::<u32>() {
            return Ok((n, None));
        }
        let text = root
            .read_to_string(file)
            .with_context(|| format!("--chown {name}: cannot read /{file} of the stage"))?;
        text.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 3 && f[0] == name)
            .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok())))
            .ok_or_else(|| anyhow!("--chown: no {name:?} in /{file} of the stage"))
    };
    let (uid, primary) = lookup("etc/passwd", &c.user)?;
    let gid = match &c.group {
        Some(g) => lookup("etc/group", g)?.0,
        None => primary.unwrap_or(uid),
    };
    Ok((uid, gid))
}

/// `127.0.0.1:5000/app:1` or `registry.example/app` not stored locally means that registry.
fn registry_form(l: &LocalRef) -> Option<ImageRef> {
    let LocalRef::Tagged(nt) = l else { return None };
    let (host, _) = nt.name.split_once('/')?;
    if host.contains('.') || host.contains(':') || host == "localhost" {
        format!("docker://{}:{}", nt.name, nt.tag).parse().ok()
    } else {
        None
    }
}

/// A pull destination that stores blobs (and the manifest as a blob) without tagging.
struct BlobsOnly {
    store: Store,
}

impl ImageDestination for BlobsOnly {
    fn has_blob(&mut self, desc: &Descriptor) -> Result<bool> {
        Ok(self.store.has_blob(&desc.digest))
    }
    fn put_blob(&mut self, desc: &Descriptor, reader: &mut dyn Read) -> Result<()> {
        self.store.put_blob(reader, Some(&desc.digest))?;
        Ok(())
    }
    fn put_manifest(&mut self, bytes: &[u8], media_type: &str) -> Result<()> {
        self.store.put_manifest(bytes, media_type)?;
        Ok(())
    }
    fn supported_formats(&self) -> &'static [ManifestFormat] {
        &[ManifestFormat::Oci]
    }
    fn commit(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

impl BudBackend for StoreBackend<'_> {
    fn base_image(&mut self, reference: &str) -> Result<containerfile::ImageConfig> {
        let img = self.resolve(reference)?;
        Ok(from_oci(&image::ImageConfig::parse(&img.config)?))
    }

    fn start_stage(&mut self, stage: usize, base: &Base) -> Result<()> {
        if stage != self.stages.len() {
            bail!("stage {stage} started out of order");
        }
        let base = match base {
            Base::Scratch => None,
            Base::Image(r) => Some(self.resolve(r)?),
            Base::Stage(s) => Some(
                self.stage(*s)?
                    .image
                    .clone()
                    .map(|(_, i)| i)
                    .ok_or_else(|| anyhow!("stage {s} is not committed"))?,
            ),
        };
        let base_rootfs = match &base {
            Some(img) => self.unpacked(img)?,
            None => self.cache.base(&[])?,
        };
        let root = self.cache.checkout(&base_rootfs)?;
        self.stages.push(StageState {
            base,
            base_rootfs,
            root,
            owners: BTreeMap::new(),
            image: None,
        });
        Ok(())
    }

    fn copy_into(&mut self, stage: usize, context: &Dir, copy: &CopyStep) -> Result<()> {
        let dst = Self::open(self.stage(stage)?.root.path())?;
        let owner = copy
            .chown
            .as_ref()
            .map(|c| resolve_owner(&dst, c))
            .transpose()?;
        let (src, entries) = match &copy.source {
            CopySource::Context(entries) => (context.try_clone()?, entries.clone()),
            CopySource::Stage { stage: s, paths } => {
                from_paths(Self::open(self.stage(*s)?.root.path())?, paths, copy)?
            }
            CopySource::Image { reference, paths } => {
                let img = self.resolve(reference)?;
                let rootfs = self.unpacked(&img)?;
                from_paths(Self::open(rootfs.path())?, paths, copy)?
            }
        };
        for e in &entries {
            write_entry(&src, &dst, e, copy.chmod)
                .with_context(|| format!("copying to {}", e.dest))?;
            let rel = PathBuf::from(rel_dest(&e.dest));
            let owners = &mut self.stages[stage].owners;
            match owner {
                Some(o) => owners.insert(rel, o),
                None => owners.remove(&rel),
            };
        }
        Ok(())
    }

    fn make_dir(&mut self, stage: usize, path: &str) -> Result<()> {
        let dst = Self::open(self.stage(stage)?.root.path())?;
        dst.create_dir_all(rel_dest(path))
            .with_context(|| format!("WORKDIR {path}"))
    }

    fn run_wasm(&mut self, stage: usize, run: &RunStep) -> Result<()> {
        let prog = &run.argv[0];
        let program = if prog.starts_with('/') {
            prog.clone()
        } else {
            format!("{}/{prog}", run.workdir.trim_end_matches('/'))
        };
        let rootfs = self.stage(stage)?.root.path().to_path_buf();
        let mut hook = Hook::new(rootfs, program.clone());
        hook.args = run.argv[1..].to_vec();
        hook.env = run.env.clone();
        hook.cwd = run.workdir.clone();
        hook.budget = self.opts.budget.clone();
        hook.reproducible = Some(self.opts.source_date_epoch);
        let log = self.log;
        let outcome = self
            .sandbox()?
            .run(hook, log)
            .with_context(|| format!("RUN {program}"))?;
        if outcome.exit_code != 0 {
            bail!("RUN {program} exited with status {}", outcome.exit_code);
        }
        Ok(())
    }

    fn commit(&mut self, stage: usize, config: &containerfile::ImageConfig) -> Result<()> {
        let st = self
            .stages
            .get(stage)
            .ok_or_else(|| anyhow!("stage {stage} not started"))?;
        let (mut base_config, base_layers) = match &st.base {
            Some(img) => (
                serde_json::from_slice::<Value>(&img.config)
                    .context("malformed base image config")?,
                img.manifest.layers.clone(),
            ),
            None => (
                serde_json::json!({
                    "architecture": self.opts.platform.architecture,
                    "os": self.opts.platform.os,
                    "rootfs": {"type": "layers", "diff_ids": []},
                }),
                Vec::new(),
            ),
        };
        apply_config(&mut base_config, config)?;
        let bytes = serde_json::to_vec(&base_config)?;
        let base_manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            config: Descriptor::new(media::OCI_CONFIG, Digest::of(&bytes), bytes.len() as u64),
            layers: base_layers,
            annotations: Default::default(),
            extra: Map::new(),
        };
        let mut b = ImageBuilder::from_base(&base_manifest, &bytes)?;
        b.created_at(self.opts.source_date_epoch as i64);

        let changes = layer::diff(&st.base_rootfs, &st.root, &[])?;
        if !changes.is_empty() {
            let pack = PackOptions {
                compression: self.opts.compression,
                source_date_epoch: self.opts.source_date_epoch,
                owners: st.owners.clone(),
                ..Default::default()
            };
            let mut tmp = tempfile::tempfile_in(self.store.root())
                .context("creating a temporary layer file")?;
            let packed = layer::pack(&changes, &pack, io::BufWriter::new(&mut tmp))?;
            io::Seek::rewind(&mut tmp)?;
            self.store
                .put_blob(&mut tmp, Some(&packed.digest))
                .context("storing the layer")?;
            b.add_layer(NewLayer {
                diff_id: packed.diff_id,
                digest: packed.digest,
                size: packed.size,
                media_type: packed
                    .compression
                    .media_type(MediaTypeFlavor::Oci)
                    .to_string(),
                created_by: format!("ws2i bud (stage {stage})"),
            })?;
        }
        let (config_bytes, manifest) = b.finish()?;
        self.store.layout().put_bytes(&config_bytes)?;
        let digest = self
            .store
            .put_manifest(&manifest.to_bytes(), media::OCI_MANIFEST)?;
        self.stages[stage].image = Some((
            digest,
            StoredImage {
                manifest,
                config: config_bytes,
            },
        ));
        Ok(())
    }
}

/// The plan's view of an OCI config.
fn from_oci(c: &image::ImageConfig) -> containerfile::ImageConfig {
    let mut out = containerfile::ImageConfig::default();
    let keys = |v: Option<&Value>| -> std::collections::BTreeSet<String> {
        v.and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    if let Some(cc) = &c.config {
        for e in cc.env.iter().flatten() {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            out.set_env(k, v.to_string());
        }
        out.labels = cc.labels.clone().unwrap_or_default();
        out.workdir = cc.working_dir.clone().filter(|w| !w.is_empty());
        out.user = cc.user.clone().filter(|u| !u.is_empty());
        out.exposed_ports = cc
            .exposed_ports
            .as_ref()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        out.cmd = cc.cmd.clone();
        out.entrypoint = cc.entrypoint.clone();
        out.volumes = keys(cc.extra.get("Volumes"));
        out.stop_signal = cc
            .extra
            .get("StopSignal")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    out.author = c
        .extra
        .get("author")
        .and_then(Value::as_str)
        .map(str::to_string);
    out
}

/// Writes the plan's config into an OCI config JSON, keeping fields ws2i does not know.
fn apply_config(oci: &mut Value, c: &containerfile::ImageConfig) -> Result<()> {
    let obj = oci
        .as_object_mut()
        .context("image config is not a JSON object")?;
    match &c.author {
        Some(a) => obj.insert("author".into(), Value::String(a.clone())),
        None => obj.remove("author"),
    };
    let cc = obj
        .entry("config")
        .or_insert_with(|| Value::Object(Map::new()));
    if !cc.is_object() {
        *cc = Value::Object(Map::new());
    }
    let cc = cc.as_object_mut().expect("object");
    let set = |cc: &mut Map<String, Value>, key: &str, v: Option<Value>| match v {
        Some(v) => cc.insert(key.into(), v),
        None => cc.remove(key),
    };
    let set_of = |s: &std::collections::BTreeSet<String>| {
        (!s.is_empty()).then(|| {
            Value::Object(
                s.iter()
                    .map(|k| (k.clone(), serde_json::json!({})))
                    .collect(),
            )
        })
    };
    let env: Vec<Value> = c
        .env
        .iter()
        .map(|(k, v)| Value::String(format!("{k}={v}")))
        .collect();
    set(cc, "Env", (!env.is_empty()).then_some(Value::Array(env)));
    set(
        cc,
        "Labels",
        (!c.labels.is_empty()).then(|| serde_json::to_value(&c.labels).expect("string map")),
    );
    set(cc, "WorkingDir", c.workdir.clone().map(Value::String));
    set(cc, "User", c.user.clone().map(Value::String));
    set(cc, "ExposedPorts", set_of(&c.exposed_ports));
    set(cc, "Cmd", c.cmd.as_ref().map(|v| serde_json::json!(v)));
    set(
        cc,
        "Entrypoint",
        c.entrypoint.as_ref().map(|v| serde_json::json!(v)),
    );
    set(cc, "Volumes", set_of(&c.volumes));
    set(cc, "StopSignal", c.stop_signal.clone().map(Value::String));
    Ok(())
}

/// The default context-relative Containerfile: `Containerfile`, else `Dockerfile`.
pub fn default_containerfile(context: &Path) -> PathBuf {
    let cf = context.join("Containerfile");
    if cf.exists() {
        cf
    } else {
        context.join("Dockerfile")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn config_round_trip_removes_reset_fields() {
        let mut oci =
            serde_json::json!({"config": {"Cmd": ["/a"], "Hostname": "x"}, "author": "me"});
        let mut c =
            from_oci(&image::ImageConfig::parse(&serde_json::to_vec(&oci).unwrap()).unwrap());
        assert_eq!(c.cmd.as_deref(), Some(&["/a".to_string()][..]));
        c.cmd = None;
        c.author = None;
        c.set_env("A", "1".into());
        c.exposed_ports.insert("8080/tcp".into());
        apply_config(&mut oci, &c).unwrap();
        assert_eq!(
            oci,
            serde_json::json!({"config": {"Hostname": "x", "Env": ["A=1"], "ExposedPorts": {"8080/tcp": {}}}})
        );
    }

    #[test]
    fn chown_names_resolve_inside_the_stage() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("etc")).unwrap();
        fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0::/:/x\napp:x:1001:5::/:/x\n",
        )
        .unwrap();
        fs::write(t.path().join("etc/group"), "root:x:0:\nstaff:x:50:app\n").unwrap();
        let root = Dir::open_ambient_dir(t.path(), ambient_authority()).unwrap();
        let c = |u: &str, g: Option<&str>| containerfile::Chown {
            user: u.into(),
            group: g.map(Into::into),
        };
        assert_eq!(resolve_owner(&root, &c("app", None)).unwrap(), (1001, 5));
        assert_eq!(
            resolve_owner(&root, &c("app", Some("staff"))).unwrap(),
            (1001, 50)
        );
        assert_eq!(resolve_owner(&root, &c("7", None)).unwrap(), (7, 7));
        assert_eq!(resolve_owner(&root, &c("7", Some("0"))).unwrap(), (7, 0));
        let e = resolve_owner(&root, &c("nobody", None))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nobody"), "{e}");
    }

    #[test]
    fn registry_names_map_to_docker_refs() {
        let r = |s: &str| registry_form(&s.parse().unwrap()).map(|r| r.to_string());
        assert_eq!(
            r("127.0.0.1:5000/a/b:1").as_deref(),
            Some("docker://127.0.0.1:5000/a/b:1")
        );
        assert_eq!(r("ws2i/base"), None);
        assert_eq!(r("base"), None);
    }
}
