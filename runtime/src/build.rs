//! `ws2i build`: one Source-to-Image build, in upstream s2i's order (docs/build.md).
//!
//! 1. fetch the source into a private staging dir ([`crate::source::fetch`]);
//! 2. resolve the builder in the local store, pulling it per [`PullPolicy`];
//! 3. unpack its layers once ([`RootfsCache::base`]) and resolve the scripts against that rootfs;
//! 4. check out a private writable copy, inject the source at `<destination>/src` and any
//!    non-image scripts at `<destination>/scripts`;
//! 5. with `--incremental`, run the previous image's `save-artifacts` (on a private copy of its
//!    rootfs, stdout captured) and unpack its tar at `<destination>/artifacts`; then run
//!    `assemble` in the sandbox with the merged environment;
//! 6. with `--runtime-image`, copy the artifacts into a private copy of the runtime image and run
//!    its `assemble-runtime` ([`RuntimeArtifact`]); that copy is then the tree committed;
//! 7. diff against the base (the injected inputs left out), pack one layer, write the image on top
//!    of the builder (or runtime image) with `Cmd` = the run script and the S2I labels, and tag it.
//!
//! Nothing is written to the store before assemble succeeded, so a failed build leaves no image.
//! `--inject` and `--volume` reach assemble as mounts (an injected file as a read-only copy)
//! and are left out of the diff.
//! Labels assemble writes to `/tmp/.s2i/image_metadata.json` win over all others.
//! `--push` sends the tagged result to its `docker://` TAG ([`parse_tag`]).
//! `--callback-url` gets the outcome, success or failure ([`build`]).
//! Each image has its own pull policy (s2i's): `--pull-policy` for the builder,
//! `--incremental-pull-policy` for the previous image, `--runtime-pull-policy` for the runtime image.

use std::collections::{BTreeMap, HashMap};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::assemble_user::AssembleUser;
use crate::envfile::{BuildEnv, EnvFileKind, EnvVar};
use crate::image::{media, Descriptor, ImageBuilder, NewLayer, Platform};
use crate::layer::{self, Compression, LayerSource, MediaTypeFlavor, PackOptions, RootfsCache};
use crate::reference::{ImageRef, LocalRef, NameTag, RemoteTarget};
use crate::registry::RegistryOptions;
use crate::sandbox::{Budget, Hook, LogSink, Mount, Sandbox, SandboxConfig, SandboxError, Stdout};
use crate::scripts::{self, ImageFs, ResolvedScripts, ScriptLocation, ScriptName, ScriptSources};
use crate::source::{self, SourceSpec};
use crate::store::{ResolvedImage, Store};
use crate::transport::{self, CopyOptions};
use crate::Digest;

/// S2I's label namespace for the build labels.
const NS: &str = "io.openshift.s2i.";
const DEFAULT_DESTINATION: &str = "/tmp";

/// When to fetch the builder from its registry (s2i's `--pull-policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    Always,
    #[default]
    IfNotPresent,
    Never,
}

/// Everything one build needs. [`BuildRequest::new`] gives s2i's defaults.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub source: SourceSpec,
    /// The builder: a local store reference (`NAME[:TAG]`, `NAME@DIGEST`) or `docker://…`.
    pub builder: String,
    /// Where the result is tagged in the local store; `None` stores it untagged.
    pub tag: Option<NameTag>,
    /// `--pull-policy`: for the builder.
    pub pull_policy: PullPolicy,
    /// `--incremental-pull-policy`: for the previous image of an incremental build (it can only
    /// be pulled when TAG is `docker://…`, i.e. with `--push`).
    pub incremental_pull_policy: PullPolicy,
    /// `--runtime-pull-policy`: for `--runtime-image`.
    pub runtime_pull_policy: PullPolicy,
    /// `--scripts-url`.
    pub scripts_url: Option<String>,
    /// `--image-scripts-url`: overrides the builder's scripts-url label.
    pub image_scripts_url: Option<String>,
    /// `--destination`; else the builder's label, else `/tmp`.
    pub destination: Option<String>,
    /// `--environment-file`, parsed.
    pub env_file: Vec<EnvVar>,
    /// `--env`, in order.
    pub env: Vec<EnvVar>,
    /// `--label K=V`, applied last.
    pub labels: Vec<(String, String)>,
    /// `--application-name`: `io.k8s.display-name` (default: the tag).
    pub application_name: Option<String>,
    /// `--description`: `io.k8s.description`.
    pub description: Option<String>,
    pub budget: Budget,
    pub compression: Compression,
    /// `Some(epoch)`: fixed clocks in the hook, fixed mtimes and `created` in the image.
    pub source_date_epoch: Option<u64>,
    pub store_root: PathBuf,
    /// ws2i's cache root (compiled modules, unpacked rootfs).
    pub cache_dir: PathBuf,
    pub registry: RegistryOptions,
    /// `--runtime-image`: the result is this image plus the artifacts copied out of the
    /// assembled builder (an extended build).
    pub runtime_image: Option<String>,
    /// `--runtime-artifact`; empty means the builder's `io.openshift.s2i.assemble-input-files`.
    pub runtime_artifacts: Vec<RuntimeArtifact>,
    /// Draw progress bars while pulling (the caller decides: TTY and not `--quiet`).
    pub progress: bool,
    /// `--incremental`: restore the artifacts of the image currently tagged [`Self::tag`].
    pub incremental: bool,
    /// Keep the build root and staging dir on disk (`--save-temp-dir`); their paths are logged.
    pub keep_temp: bool,
    /// `--inject SRC:DEST`: host files or dirs (secrets) assemble reads, never in the image.
    pub injections: Vec<HostMount>,
    /// `--volume HOSTDIR:DIR`: host dirs assemble reads and writes (caches), never in the image.
    pub volumes: Vec<HostMount>,
    /// `--push` with TAG `docker://…`: after tagging [`Self::tag`] locally, push it there.
    pub push: Option<PushTarget>,
    /// `--callback-url`: POST `{"success":bool,"labels":{…}}` there when the build ends.
    pub callback_url: Option<String>,
    /// `--assemble-user`: owner of the new layer's entries; else the builder's
    /// `io.openshift.s2i.assemble-user` label, else its `User`, else 0:0 ([`crate::assemble_user`]).
    pub assemble_user: Option<AssembleUser>,
}

/// Where `--push` sends the result. Made by [`parse_tag`], which also gives the local tag the
/// result is kept under, so the two cannot disagree.
#[derive(Debug, Clone)]
pub struct PushTarget {
    pub dest: crate::reference::DockerRef,
    /// `--format`; `None` pushes the OCI manifest as built.
    pub format: Option<crate::image::ManifestFormat>,
}

/// TAG of `ws2i build`: `NAME[:TAG]` in the local store, or with `push`, `docker://HOST/REPO:TAG`,
/// kept locally as `HOST/REPO:TAG` (like a pulled builder) and pushed after the build.
pub fn parse_tag(
    tag: &str,
    push: bool,
    format: Option<crate::image::ManifestFormat>,
) -> Result<(NameTag, Option<PushTarget>)> {
    if let Some(rest) = tag.strip_prefix("docker://") {
        if !push {
            anyhow::bail!("TAG {tag:?} names a registry: add --push to push the result there");
        }
        let d = match tag.parse::<ImageRef>() {
            Ok(ImageRef::Docker(d)) => d,
            Ok(_) => anyhow::bail!("invalid TAG {tag:?}"),
            Err(e) => return Err(anyhow!(e).context(format!("invalid TAG {rest:?}"))),
        };
        if matches!(d.target, RemoteTarget::Digest(_)) {
            anyhow::bail!("TAG {tag:?}: a pushed result needs a tag, not a digest");
        }
        return Ok((local_name(&d)?, Some(PushTarget { dest: d, format })));
    }
    if push {
        anyhow::bail!("--push needs TAG docker://HOST/REPO[:TAG], got {tag:?}");
    }
    if format.is_some() {
        anyhow::bail!("--format applies to --push only");
    }
    let t = tag
        .parse::<NameTag>()
        .with_context(|| format!("invalid TAG {tag:?}"))?;
    Ok((t, None))
}

impl BuildRequest {
    pub fn new(
        source: SourceSpec,
        builder: impl Into<String>,
        store_root: PathBuf,
        cache_dir: PathBuf,
    ) -> Self {
        BuildRequest {
            source,
            builder: builder.into(),
            tag: None,
            pull_policy: PullPolicy::default(),
            incremental_pull_policy: PullPolicy::default(),
            runtime_pull_policy: PullPolicy::default(),
            scripts_url: None,
            image_scripts_url: None,
            destination: None,
            env_file: Vec::new(),
            env: Vec::new(),
            labels: Vec::new(),
            application_name: None,
            description: None,
            budget: Budget::default(),
            compression: Compression::Gzip,
            source_date_epoch: None,
            store_root,
            cache_dir,
            registry: RegistryOptions::default(),
            runtime_image: None,
            runtime_artifacts: Vec::new(),
            progress: false,
            incremental: false,
            keep_temp: false,
            injections: Vec::new(),
            volumes: Vec::new(),
            push: None,
            callback_url: None,
            assemble_user: None,
        }
    }
}

/// What a successful build produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildResult {
    /// `NAME:TAG` in the local store, if a tag was given.
    pub image: Option<String>,
    /// Manifest digest of the result.
    pub digest: Digest,
    pub config_digest: Digest,
    /// The builder as given, and the manifest digest it resolved to.
    pub builder: String,
    pub builder_digest: Digest,
    pub layer_digest: Digest,
    pub layer_size: u64,
    /// Entries in the new layer.
    pub changes: usize,
    /// What the image runs: the run script's guest path, or a scratch runtime image's declared
    /// entrypoint (`io.ws2i.runtime.entrypoint`).
    pub command: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// ws2i's steps with their wall time, in order.
    pub steps: Vec<StepTime>,
    pub warnings: Vec<String>,
    /// With `--push`: where the result went and what the registry holds.
    pub pushed: Option<Pushed>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Pushed {
    /// `docker://HOST/REPO:TAG`.
    pub reference: String,
    /// Manifest digest in the registry (differs from [`BuildResult::digest`] with `--format docker`).
    pub digest: Digest,
    /// Blobs mounted from the builder's repository instead of uploaded.
    pub mounted: usize,
    pub uploaded: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StepTime {
    pub step: String,
    pub millis: u64,
}

/// Why a build failed, where callers branch on it.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// assemble ran and exited non-zero; no image was written.
    #[error("assemble failed with exit code {exit_code}; no image was written")]
    AssembleFailed { exit_code: i32 },
    /// The runtime image's assemble-runtime exited non-zero; no image was written.
    #[error("assemble-runtime failed with exit code {exit_code}; no image was written")]
    AssembleRuntimeFailed { exit_code: i32 },
    #[error("builder image {builder} not found: {reason}")]
    BuilderNotFound { builder: String, reason: String },
    /// `--runtime-image` could not be found or pulled; no image was written.
    #[error("runtime image {image} not found: {reason}")]
    RuntimeImageNotFound { image: String, reason: String },
    #[error("{0}")]
    Unsupported(String),
    /// The result's labels are over s2i's size limit ([`MAX_LABELS_SIZE`]); no image was written.
    #[error(
        "the labels of the result take {total} bytes (keys plus values), over the limit of {MAX_LABELS_SIZE} bytes; largest: {}; no image was written",
        largest.iter().map(|(k, n)| format!("{k} ({n} bytes)")).collect::<Vec<_>>().join(", ")
    )]
    LabelsTooLarge {
        total: usize,
        /// The largest labels, by key with their key+value size, largest first (at most 3).
        largest: Vec<(String, usize)>,
    },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Upstream s2i's limit on the sum of `len(key) + len(value)` over the result's labels
/// (`postexecutorstep.go`); registries and runtimes choke on larger configs.
pub const MAX_LABELS_SIZE: usize = 10240;

/// Refuses a label set over [`MAX_LABELS_SIZE`], naming the largest labels so the user sees
/// which `--label` or image_metadata.json entry to shorten.
fn check_label_size(labels: &BTreeMap<String, String>) -> Result<(), BuildError> {
    let total: usize = labels.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total <= MAX_LABELS_SIZE {
        return Ok(());
    }
    let mut by_size: Vec<(String, usize)> = labels
        .iter()
        .map(|(k, v)| (k.clone(), k.len() + v.len()))
        .collect();
    by_size.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    by_size.truncate(3);
    Err(BuildError::LabelsTooLarge {
        total,
        largest: by_size,
    })
}

/// Receives the build's log: hook lines (via [`LogSink`]) and ws2i's own steps.
pub trait BuildLog: LogSink {
    /// A ws2i step begins.
    fn step(&self, what: &str);
    /// The step that began last finished after `took`.
    fn step_done(&self, what: &str, took: Duration);
    /// Something the user should know that does not stop the build.
    fn warning(&self, msg: &str);
}

struct Steps<'a> {
    log: &'a dyn BuildLog,
    done: Vec<StepTime>,
}

impl Steps<'_> {
    fn run<T>(
        &mut self,
        what: &str,
        f: impl FnOnce() -> Result<T, BuildError>,
    ) -> Result<T, BuildError> {
        self.log.step(what);
        let t = Instant::now();
        let r = f()?;
        let took = t.elapsed();
        self.log.step_done(what, took);
        self.done.push(StepTime {
            step: what.to_string(),
            millis: took.as_millis() as u64,
        });
        Ok(r)
    }
}

/// How long `--callback-url` may take, connection included; a slow receiver cannot hold the build.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs one build (see the module doc for the order of operations), then, with
/// `--callback-url`, reports the outcome there whether it succeeded or not.
pub fn build(req: &BuildRequest, log: &dyn BuildLog) -> Result<BuildResult, BuildError> {
    let url = match &req.callback_url {
        Some(u) => Some(parse_callback_url(u)?),
        None => None,
    };
    let result = build_image(req, log);
    if let Some(url) = url {
        let labels = match &result {
            Ok(r) => r.labels.clone(),
            Err(_) => BTreeMap::new(),
        };
        let body = serde_json::json!({ "success": result.is_ok(), "labels": labels });
        // The build's outcome stands either way; a receiver that is down is only reported.
        if let Err(e) = post_callback(&url, &body) {
            log.warning(&format!("callback to {url} failed: {e:#}"));
        }
    }
    result
}

/// `--callback-url`: http or https only, checked before the build starts.
pub fn parse_callback_url(u: &str) -> Result<reqwest::Url> {
    let url = reqwest::Url::parse(u).with_context(|| format!("--callback-url {u:?}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        anyhow::bail!("--callback-url {u:?}: expected an http:// or https:// URL");
    }
    Ok(url)
}

fn post_callback(url: &reqwest::Url, body: &serde_json::Value) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the I/O runtime")?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(CALLBACK_TIMEOUT)
            .connect_timeout(CALLBACK_TIMEOUT)
            .build()?;
        let resp = client
            .post(url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body)?)
            .send()
            .await?;
        if !resp.status().is_success() {
            anyhow::bail!("HTTP {}", resp.status());
        }
        Ok(())
    })
}

fn build_image(req: &BuildRequest, log: &dyn BuildLog) -> Result<BuildResult, BuildError> {
    if req.incremental && req.runtime_image.is_some() {
        // The previous image of an extended build is the runtime image plus artifacts: it has
        // no builder toolchain to run save-artifacts against (upstream refuses it too).
        return Err(BuildError::Unsupported(
            "--incremental cannot be combined with --runtime-image".into(),
        ));
    }
    let mut steps = Steps {
        log,
        done: Vec::new(),
    };
    let mut warnings = Vec::new();
    let store = Store::open(&req.store_root).context("opening the local image store")?;
    std::fs::create_dir_all(&req.cache_dir)
        .with_context(|| format!("creating {}", req.cache_dir.display()))?;

    let staging = tempfile::Builder::new()
        .prefix("ws2i-source-")
        .tempdir()
        .context("creating a staging dir")?;
    let fetched = steps.run("Fetching source", || {
        source::fetch(&req.source, &staging.path().join("in"))
            .with_context(|| format!("fetching source {}", req.source.location.display()))
            .map_err(BuildError::from)
    })?;
    for w in &fetched.warnings {
        log.warning(w);
        warnings.push(w.clone());
    }

    let builder = steps.run("Resolving builder image", || resolve_builder(req, &store))?;
    let builder_labels: HashMap<String, String> = builder.config.labels().into_iter().collect();
    let builder_env: Vec<(String, String)> = builder.config.env_pairs();

    let rootfs_cache =
        RootfsCache::new(&req.cache_dir.join("layers")).context("opening the rootfs cache")?;
    let base = steps.run("Unpacking builder layers", || {
        let layers = layer_sources(&store, &builder)?;
        rootfs_cache.base(&layers).map_err(BuildError::from)
    })?;

    let owner = layer_owner(req, &builder, &base)?;
    let destination = guest_dir(
        req.destination
            .clone()
            .or_else(|| {
                label_value(
                    &builder_labels,
                    &["io.openshift.s2i.destination", "io.s2i.destination"],
                )
            })
            .or_else(|| {
                builder_env
                    .iter()
                    .find(|(k, v)| k == "STI_LOCATION" && !v.is_empty())
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_else(|| DEFAULT_DESTINATION.into()),
    )?;

    // An extended build's builder needs no run: the runtime image's is the Cmd.
    let required: &[ScriptName] = if req.runtime_image.is_some() {
        &[ScriptName::Assemble]
    } else {
        &scripts::UPSTREAM_REQUIRED
    };
    let resolved = steps.run("Resolving scripts", || {
        let image_url = req
            .image_scripts_url
            .clone()
            .or_else(|| scripts::image_scripts_url(&builder_labels, &builder_env));
        let fs = BaseFs(
            Dir::open_ambient_dir(base.path(), ambient_authority())
                .context("opening the builder rootfs")?,
        );
        let src = ScriptSources {
            scripts_url: req.scripts_url.as_deref(),
            source_scripts: &fetched.scripts,
            image_url: image_url.as_deref(),
            image: &fs,
            download_dir: &staging.path().join("downloads"),
            limits: scripts::DownloadLimits::default(),
        };
        scripts::resolve_blocking(&src, required)
            .context("resolving S2I scripts")
            .map_err(BuildError::from)
    })?;

    let root = steps.run("Preparing build rootfs", || {
        rootfs_cache.checkout(&base).map_err(BuildError::from)
    })?;
    let root_dir = Dir::open_ambient_dir(root.path(), ambient_authority())
        .context("opening the build root")?;
    inject_source(&root_dir, &destination, &fetched.dir, "src")?;
    let placed = install_scripts(&root_dir, &destination, &resolved)?;

    let env = BuildEnv {
        image: builder_env
            .iter()
            .filter_map(|(k, v)| EnvVar::new(k.clone(), v.clone()).ok())
            .collect(),
        source_file: fetched.environment.clone(),
        cli_file: req.env_file.clone(),
        cli_args: req.env.clone(),
    }
    .resolve();

    let mut hook_env: Vec<(String, String)> = env
        .iter()
        .map(|e| (e.key().to_string(), e.value().to_string()))
        .collect();
    if !hook_env.iter().any(|(k, _)| k == "DESTINATION") {
        hook_env.push(("DESTINATION".into(), destination.clone()));
    }
    let sandbox = Sandbox::new(SandboxConfig {
        cache_dir: req.cache_dir.clone(),
    })
    .context("starting the sandbox")?;

    if req.incremental {
        let ctx = Incremental {
            req,
            store: &store,
            cache: &rootfs_cache,
            sandbox: &sandbox,
            log,
            env: &hook_env,
            destination: &destination,
            fetched: &fetched,
            staging: staging.path(),
        };
        let restored = steps.run("Saving artifacts of the previous image", || {
            ctx.save_artifacts()
        })?;
        match restored {
            Ok(dir) => inject_source(&root_dir, &destination, &dir, "artifacts")?,
            Err(why) => {
                log.warning(&format!("clean build: {why}"));
                warnings.push(format!("clean build: {why}"));
            }
        }
    }

    let host_inputs = attach_host_inputs(req, &root_dir)?;

    let assemble = placed
        .get(&ScriptName::Assemble)
        .cloned()
        .ok_or_else(|| anyhow!("no assemble script"))?;
    steps.run("Running assemble", || {
        let mut hook = Hook::new(root.path(), assemble.clone());
        hook.env = hook_env.clone();
        hook.cwd = format!("{destination}/src");
        hook.mounts = host_inputs.mounts.clone();
        hook.budget = req.budget.clone();
        hook.reproducible = req.source_date_epoch;
        let outcome = sandbox
            .run(hook, log)
            .map_err(|e: SandboxError| anyhow!(e))
            .context("running assemble")?;
        if outcome.exit_code != 0 {
            return Err(BuildError::AssembleFailed {
                exit_code: outcome.exit_code,
            });
        }
        Ok(())
    })?;
    let metadata_labels = read_image_metadata(&root_dir)?;

    let (from, commit_base, mut commit_root, launch, exclude) = match &req.runtime_image {
        Some(runtime_ref) => {
            let runtime = steps.run("Resolving runtime image", || {
                if runtime_ref == slim::SCRATCH {
                    slim::scratch_image(&store, &metadata_labels)
                } else {
                    resolve_runtime(req, &store, runtime_ref)
                }
            })?;
            let stage = RuntimeStage {
                req,
                store: &store,
                cache: &rootfs_cache,
                sandbox: &sandbox,
                log,
                env: &hook_env,
                builder_labels: &builder_labels,
                assembled: &root_dir,
            };
            let (rt_base, rt_root, launch) =
                steps.run("Assembling the runtime image", || stage.run(&runtime))?;
            (runtime, rt_base, rt_root, launch, Vec::new())
        }
        None => {
            let run_path = placed
                .get(&ScriptName::Run)
                .cloned()
                .ok_or_else(|| anyhow!("no run script"))?;
            // The inputs are not part of the result; a run script injected from outside the
            // image must stay (it is the image's Cmd), every other injected script goes.
            let mut exclude = vec![
                format!("{destination}/src"),
                format!("{destination}/artifacts"),
            ];
            exclude.extend(host_inputs.exclude.iter().cloned());
            // assemble's message to ws2i, not part of the application.
            let base_has_dir = Dir::open_ambient_dir(base.path(), ambient_authority())
                .map(|d| d.exists(IMAGE_METADATA_DIR.trim_start_matches('/')))
                .unwrap_or(false);
            exclude.push(if base_has_dir {
                IMAGE_METADATA.to_string()
            } else {
                IMAGE_METADATA_DIR.to_string()
            });
            if is_in_image(&resolved, &run_path) {
                exclude.push(format!("{destination}/scripts"));
            } else {
                for p in placed.values() {
                    if *p != run_path && !is_in_image(&resolved, p) {
                        exclude.push(p.clone());
                    }
                }
            }
            (builder.clone(), base.clone(), root, Launch::RunHook(run_path), exclude)
        }
    };
    // Checked before anything is stored: the result's labels as ImageBuilder will merge them
    // (base image's, then ours, then image_metadata.json's; later wins).
    let mut merged = from.config.labels();
    merged.extend(output_labels(req, &fetched.info).into_iter().chain(metadata_labels.iter().cloned()));
    check_label_size(&merged)?;
    let exclude_refs: Vec<&str> = exclude.iter().map(String::as_str).collect();

    let (packed, changes) = steps.run("Committing the layer", || {
        let changes = layer::diff(&commit_base, &commit_root, &exclude_refs)
            .context("comparing the build with the builder")?;
        let opts = PackOptions {
            compression: req.compression,
            source_date_epoch: req.source_date_epoch.unwrap_or(0),
            preserve_mtimes: req.source_date_epoch.is_none(),
            uid: owner.0,
            gid: owner.1,
            ..PackOptions::default()
        };
        let mut tmp =
            tempfile::tempfile_in(store.root()).context("creating a temporary layer file")?;
        let packed = layer::pack(&changes, &opts, &mut tmp).context("packing the layer")?;
        tmp.seek(SeekFrom::Start(0))
            .context("rereading the layer")?;
        store
            .put_blob(&mut tmp, Some(&packed.digest))
            .context("storing the layer")?;
        Ok((packed, changes.as_slice().len()))
    })?;
    if req.keep_temp {
        let p = commit_root.keep();
        log.warning(&format!("build rootfs kept at {}", p.display()));
    }

    let (digest, config_digest, labels) = steps.run("Writing image", || {
        let config_bytes = store.layout().read_blob(&from.config_digest)?;
        let mut b = ImageBuilder::from_base(&from.manifest, &config_bytes)?;
        b.add_layer(NewLayer {
            diff_id: packed.diff_id.clone(),
            digest: packed.digest.clone(),
            size: packed.size,
            media_type: packed.compression.media_type(MediaTypeFlavor::Oci).into(),
            created_by: format!("ws2i build: {assemble}"),
        })?;
        match &launch {
            Launch::Entrypoint(argv) => b.set("Entrypoint", serde_json::json!(argv)),
            // A wasm run hook makes a wasm image (platform, Entrypoint, variant): docs/images.md.
            Launch::RunHook(p) => b.command(p, crate::image::entry_kind(commit_root.path(), p)),
        };
        let labels = output_labels(req, &fetched.info);
        for (k, v) in labels.iter().chain(&metadata_labels) {
            b.label(k, v);
        }
        b.annotation("org.opencontainers.image.source", &fetched.info.location);
        if let Some(c) = &fetched.info.commit {
            b.annotation("org.opencontainers.image.revision", &c.id);
        }
        if req.runtime_image.as_deref() != Some(slim::SCRATCH) {
            b.annotation(
                "org.opencontainers.image.base.digest",
                &from.manifest_digest.to_string(),
            );
        }
        let (config_bytes, manifest) = b.finish()?;
        let (config_bytes, manifest) = match req.source_date_epoch {
            Some(sde) => fix_created(config_bytes, manifest, sde)?,
            None => (config_bytes, manifest),
        };
        let digest = match &req.tag {
            Some(tag) => store.commit_image(&config_bytes, &manifest, tag)?,
            None => {
                store.layout().put_bytes(&config_bytes)?;
                store.put_manifest(&manifest.to_bytes(), manifest.media_type_or_default())?
            }
        };
        let all = crate::image::ImageConfig::parse(&config_bytes)?.labels();
        Ok((digest, manifest.config.digest.clone(), all))
    })?;

    let pushed = match (&req.push, &req.tag) {
        (Some(p), Some(tag)) => {
            Some(steps.run("Pushing image", || push_result(req, &store, tag, p))?)
        }
        (Some(_), None) => {
            return Err(anyhow!("--push needs a TAG; the image was stored untagged").into())
        }
        (None, _) => None,
    };

    Ok(BuildResult {
        image: req.tag.as_ref().map(NameTag::to_string),
        digest,
        config_digest,
        builder: req.builder.clone(),
        builder_digest: builder.manifest_digest.clone(),
        layer_digest: packed.digest,
        layer_size: packed.size,
        changes,
        command: launch.argv(),
        labels,
        steps: steps.done,
        warnings,
        pushed,
    })
}

/// Pushes the stored result, letting the registry mount the builder's blobs when the builder
/// came from the same registry (the transport ignores a candidate on another one).
fn push_result(
    req: &BuildRequest,
    store: &Store,
    tag: &NameTag,
    p: &PushTarget,
) -> Result<Pushed, BuildError> {
    let mut mount_from = Vec::new();
    if let Ok(ImageRef::Docker(b)) = req.builder.parse::<ImageRef>() {
        mount_from.push(format!("{}/{}", b.registry, b.repository));
    }
    let opts = CopyOptions {
        format: p.format,
        platform: Platform::host_default(),
        registry: req.registry.clone(),
        store_root: Some(store.root().to_path_buf()),
        progress: req.progress,
        mount_from,
    };
    let dest = ImageRef::Docker(p.dest.clone());
    let report = transport::copy_report(
        &ImageRef::Local(LocalRef::Tagged(tag.clone())),
        &dest,
        &opts,
    )
    .with_context(|| format!("pushing {tag} to {dest} (it is kept in the local store)"))?;
    Ok(Pushed {
        reference: dest.to_string(),
        digest: report.digest,
        mounted: report.mounted.len(),
        uploaded: report.copied.len(),
    })
}

/// Who owns what assemble wrote: `--assemble-user`, else the builder's assemble-user label,
/// else its `User` (s2i's order), resolved in the builder rootfs; 0:0 when none is set.
fn layer_owner(
    req: &BuildRequest,
    builder: &ResolvedImage,
    base: &crate::layer::BaseRootfs,
) -> Result<(u32, u32), BuildError> {
    let labels = builder.config.labels();
    let from_image = |what: &str, v: &str| {
        v.parse::<AssembleUser>()
            .with_context(|| format!("the builder's {what}"))
    };
    let user = match &req.assemble_user {
        Some(u) => u.clone(),
        None => match label_value(&labels.into_iter().collect(), &[ASSEMBLE_USER_LABEL]) {
            Some(v) => from_image(&format!("{ASSEMBLE_USER_LABEL} label"), &v)?,
            None => match builder.config.config.as_ref().and_then(|c| c.user.clone()) {
                Some(u) if !u.trim().is_empty() => from_image("User", u.trim())?,
                _ => return Ok((0, 0)),
            },
        },
    };
    let root = Dir::open_ambient_dir(base.path(), ambient_authority())
        .context("opening the builder rootfs")?;
    Ok(user.resolve(&root).map_err(anyhow::Error::from)?)
}

const ASSEMBLE_USER_LABEL: &str = "io.openshift.s2i.assemble-user";

fn label_value(labels: &HashMap<String, String>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| {
        labels
            .get(*k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    })
}

/// A guest directory: absolute, plain components only, no trailing slash.
fn guest_dir(d: String) -> Result<String, BuildError> {
    let ok = d.starts_with('/')
        && d.split('/')
            .skip(1)
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if !ok && d != "/" {
        return Err(BuildError::Other(anyhow!(
            "invalid destination {d:?}: expected an absolute path without '.' or '..'"
        )));
    }
    Ok(if d == "/" { String::new() } else { d })
}

/// The local name a remote builder is stored under: `HOST/REPO:TAG` (s2i's normalised name).
fn local_name(d: &crate::reference::DockerRef) -> Result<NameTag> {
    let tag = match &d.target {
        RemoteTarget::Tag(t) => t.clone(),
        RemoteTarget::Digest(dg) => format!("sha256-{}", dg.hex()),
    };
    format!("{}/{}:{tag}", d.registry, d.repository)
        .parse::<NameTag>()
        .map_err(|e| anyhow!(e))
}

fn resolve_builder(req: &BuildRequest, store: &Store) -> Result<ResolvedImage, BuildError> {
    let pull = Pull {
        policy: req.pull_policy,
        flag: "--pull-policy",
        registry: &req.registry,
        progress: req.progress,
    };
    resolve_image(store, &req.builder, &pull).map_err(|e| match e {
        ResolveError::NotFound(reason) => BuildError::BuilderNotFound {
            builder: req.builder.clone(),
            reason,
        },
        ResolveError::Unsupported(m) => BuildError::Unsupported(format!("builder {m}")),
    })
}

fn resolve_runtime(
    req: &BuildRequest,
    store: &Store,
    reference: &str,
) -> Result<ResolvedImage, BuildError> {
    let pull = Pull {
        policy: req.runtime_pull_policy,
        flag: "--runtime-pull-policy",
        registry: &req.registry,
        progress: req.progress,
    };
    resolve_image(store, reference, &pull).map_err(|e| match e {
        ResolveError::NotFound(reason) => BuildError::RuntimeImageNotFound {
            image: reference.to_string(),
            reason,
        },
        ResolveError::Unsupported(m) => BuildError::Unsupported(format!("runtime image {m}")),
    })
}

/// How an image that may live in a registry is brought into the local store.
#[derive(Debug, Clone)]
pub struct Pull<'a> {
    pub policy: PullPolicy,
    /// The flag that set `policy`, named in errors (`--pull-policy`, `--runtime-pull-policy`, …).
    pub flag: &'a str,
    pub registry: &'a RegistryOptions,
    /// Draw progress bars while pulling.
    pub progress: bool,
}

/// Why [`resolve_image`] found no image.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Not in the store and not pulled (policy `never`, registry error, bad reference).
    #[error("{0}")]
    NotFound(String),
    /// A transport other than the local store and `docker://`.
    #[error("{0}")]
    Unsupported(String),
}

/// An image named on the command line: `NAME[:TAG]`/`NAME@DIGEST` in the local store, or
/// `docker://…` kept in the store as `HOST/REPO:TAG` and pulled per `pull.policy`. Shared by
/// build (builder, runtime image) and usage.
pub fn resolve_image(
    store: &Store,
    reference: &str,
    pull: &Pull<'_>,
) -> Result<ResolvedImage, ResolveError> {
    let r: ImageRef = reference
        .parse()
        .map_err(|e: crate::reference::RefError| ResolveError::NotFound(e.to_string()))?;
    match r {
        ImageRef::Local(l) => store.resolve(&l).map_err(|e| {
            let hint = match pull.policy {
                PullPolicy::Never => "",
                _ => "; to fetch it from a registry, name it docker://HOST/REPO[:TAG]",
            };
            ResolveError::NotFound(format!("{e:#}{hint}"))
        }),
        ImageRef::Docker(d) => pull_remote(store, &d, pull).map_err(ResolveError::NotFound),
        other => Err(ResolveError::Unsupported(format!(
            "{other}: only local store references and docker:// are supported; copy it into the store first (`ws2i copy {other} NAME:TAG`)"
        ))),
    }
}

/// A registry image in the local store (under [`local_name`]), pulled per `pull.policy`.
/// `Err`: why it is not there, for the caller to word.
fn pull_remote(
    store: &Store,
    d: &crate::reference::DockerRef,
    pull: &Pull<'_>,
) -> Result<ResolvedImage, String> {
    let name = local_name(d).map_err(|e| format!("{e:#}"))?;
    let local = LocalRef::Tagged(name.clone());
    let have = store.resolve(&local).ok();
    match (pull.policy, have) {
        (PullPolicy::Never, None) => Err(format!(
            "{name} is not in the local store {} and {} is never",
            store.root().display(),
            pull.flag
        )),
        (PullPolicy::Never | PullPolicy::IfNotPresent, Some(img)) => Ok(img),
        (PullPolicy::Always | PullPolicy::IfNotPresent, _) => {
            let opts = CopyOptions {
                format: None,
                platform: Platform::host_default(),
                registry: pull.registry.clone(),
                store_root: Some(store.root().to_path_buf()),
                progress: pull.progress,
                mount_from: Vec::new(),
            };
            transport::copy(&ImageRef::Docker(d.clone()), &ImageRef::Local(local.clone()), &opts)
                .map_err(|e| format!("{e:#}"))?;
            store.resolve(&local).map_err(|e| format!("{e:#}"))
        }
    }
}

fn layer_sources(store: &Store, img: &ResolvedImage) -> Result<Vec<LayerSource>, BuildError> {
    Ok(store.layer_sources(&img.manifest, &img.config.rootfs.diff_ids)?)
}

/// The builder rootfs, read through cap-std so an image symlink cannot point the check outside it.
struct BaseFs(Dir);

impl ImageFs for BaseFs {
    fn exists(&self, guest_path: &str) -> bool {
        let rel = guest_path.trim_start_matches('/');
        !rel.is_empty() && self.0.metadata(rel).is_ok_and(|m| m.is_file())
    }
}

fn is_in_image(resolved: &ResolvedScripts, guest: &str) -> bool {
    resolved
        .scripts
        .values()
        .any(|s| matches!(&s.location, ScriptLocation::InImage(p) if p == guest))
}

/// Puts the source at `<destination>/src` in the build root, through cap-std (the builder's own
/// symlinks, e.g. `/tmp -> /somewhere`, stay inside the root).
fn inject_source(
    root: &Dir,
    destination: &str,
    source_dir: &Path,
    sub: &str,
) -> Result<(), BuildError> {
    let rel = join_rel(destination, sub);
    root.create_dir_all(&rel)
        .with_context(|| format!("creating {destination}/{sub} in the build root"))?;
    let into = root
        .open_dir(&rel)
        .with_context(|| format!("opening {destination}/{sub}"))?;
    let staged = Dir::open_ambient_dir(source_dir, ambient_authority())
        .context("opening the staged input")?;
    let never = |_: &str| false;
    let opts = source::copy::CopyOptions {
        keep_symlinks: true,
        skip: &never,
    };
    source::copy::copy_tree(&staged, &into, &opts)
        .with_context(|| format!("copying into {destination}/{sub}"))?;
    Ok(())
}

/// `destination` (a guest dir, "" for `/`) joined with `sub`, relative to the root.
fn join_rel(destination: &str, sub: &str) -> String {
    let d = destination.trim_start_matches('/');
    if d.is_empty() {
        sub.to_string()
    } else {
        format!("{d}/{sub}")
    }
}

/// Installs every non-image script at `<destination>/scripts/<name>` (temp name, then rename)
/// and returns each script's guest path.
fn install_scripts(
    root: &Dir,
    destination: &str,
    resolved: &ResolvedScripts,
) -> Result<BTreeMap<ScriptName, String>, BuildError> {
    let mut placed = BTreeMap::new();
    for (name, script) in &resolved.scripts {
        let host = match &script.location {
            ScriptLocation::InImage(p) => {
                placed.insert(*name, p.clone());
                continue;
            }
            ScriptLocation::Downloaded(p) | ScriptLocation::FromSource(p) => p,
        };
        let scripts_rel = join_rel(destination, "scripts");
        root.create_dir_all(&scripts_rel)
            .with_context(|| format!("creating {destination}/scripts"))?;
        let file = format!("{scripts_rel}/{}", name.as_str());
        let bytes =
            std::fs::read(host).with_context(|| format!("reading script {}", host.display()))?;
        let tmp = format!("{file}.ws2i-tmp");
        root.write(&tmp, &bytes)
            .with_context(|| format!("writing {destination}/scripts/{name}"))?;
        root.set_permissions(
            &tmp,
            cap_std::fs::Permissions::from_std(std::os::unix::fs::PermissionsExt::from_mode(0o755)),
        )
        .context("setting script permissions")?;
        root.rename(&tmp, root, &file)
            .context("installing a script")?;
        placed.insert(*name, format!("/{file}"));
    }
    Ok(placed)
}

/// One `--inject SRC:DEST` or `--volume HOSTDIR:DIR`: a host path and the absolute guest path
/// assemble sees it at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostMount {
    pub host: PathBuf,
    /// A [`guest_dir`]-clean absolute path, never `/`.
    pub guest: String,
}

impl HostMount {
    /// `HOST:GUEST`; `flag` names the option in errors. The host path is split at the last
    /// ':' so that the guest path (which has no ':') is unambiguous.
    pub fn parse(flag: &str, spec: &str) -> Result<Self> {
        let Some((host, guest)) = spec.rsplit_once(':') else {
            anyhow::bail!("{flag} {spec:?}: expected HOSTPATH:GUESTPATH");
        };
        if host.is_empty() {
            anyhow::bail!("{flag} {spec:?}: the host path is empty");
        }
        let guest = guest_dir(guest.to_string()).map_err(|e| anyhow!("{flag} {spec:?}: {e}"))?;
        if guest.is_empty() {
            anyhow::bail!("{flag} {spec:?}: the guest path cannot be /");
        }
        Ok(HostMount {
            host: PathBuf::from(host),
            guest,
        })
    }
}

/// How the `--inject`/`--volume` inputs reach assemble, and what the diff must leave out.
struct HostInputs {
    mounts: Vec<Mount>,
    exclude: Vec<String>,
}

/// Directories are mounted (injections read-only); an injected file is copied into the build
/// root read-only, and it and any directory created to hold it are left out of the layer.
fn attach_host_inputs(req: &BuildRequest, root: &Dir) -> Result<HostInputs, BuildError> {
    let mut out = HostInputs {
        mounts: Vec::new(),
        exclude: Vec::new(),
    };
    for i in &req.injections {
        let meta = std::fs::metadata(&i.host)
            .with_context(|| format!("--inject {}: cannot read it", i.host.display()))?;
        if meta.is_dir() {
            out.mounts.push(Mount {
                host: i.host.clone(),
                guest: i.guest.clone(),
                read_only: true,
            });
        } else if meta.is_file() {
            let rel = i.guest.trim_start_matches('/');
            let mut first_created = None;
            let mut parent = String::new();
            for c in Path::new(rel).parent().into_iter().flat_map(|p| p.iter()) {
                if !parent.is_empty() {
                    parent.push('/');
                }
                parent.push_str(&c.to_string_lossy());
                if first_created.is_none() && !root.exists(&parent) {
                    first_created = Some(format!("/{parent}"));
                }
            }
            if !parent.is_empty() {
                root.create_dir_all(&parent)
                    .with_context(|| format!("--inject: creating /{parent} in the build root"))?;
            }
            let mut r = std::fs::File::open(&i.host)
                .with_context(|| format!("--inject: opening {}", i.host.display()))?;
            // Temp name then rename: an existing DEST (a symlink, or hardlinked to another
            // file of the image) is replaced, never written through.
            let tmp = format!("{rel}.ws2i-inject");
            let mut w = root
                .create(&tmp)
                .with_context(|| format!("--inject: creating {} in the build root", i.guest))?;
            std::io::copy(&mut r, &mut w)
                .with_context(|| format!("--inject: copying {}", i.host.display()))?;
            use cap_std::fs::PermissionsExt as _;
            w.set_permissions(cap_std::fs::Permissions::from_mode(0o444))
                .context("--inject: making the copy read-only")?;
            drop(w);
            root.rename(&tmp, root, rel)
                .with_context(|| format!("--inject: placing {} in the build root", i.guest))?;
            out.exclude
                .push(first_created.unwrap_or_else(|| i.guest.clone()));
        } else {
            return Err(anyhow!(
                "--inject {}: neither a file nor a directory",
                i.host.display()
            )
            .into());
        }
        out.exclude.push(i.guest.clone());
    }
    for v in &req.volumes {
        std::fs::create_dir_all(&v.host)
            .with_context(|| format!("--volume: creating {}", v.host.display()))?;
        out.mounts.push(Mount {
            host: v.host.clone(),
            guest: v.guest.clone(),
            read_only: false,
        });
        out.exclude.push(v.guest.clone());
    }
    Ok(out)
}

/// One `--runtime-artifact SRC[:DEST]`: an absolute path in the assembled builder, copied to
/// the relative dir DEST (default `.`) under the runtime image's working dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeArtifact {
    pub source: String,
    pub dest: String,
}

impl RuntimeArtifact {
    /// Upstream's rules: SRC absolute, DEST relative and not climbing out with `..`.
    pub fn parse(spec: &str) -> Result<Self> {
        let (src, dest) = match spec.split_once(':') {
            Some((s, d)) => (s.trim(), d.trim()),
            None => (spec.trim(), "."),
        };
        let bad = |c: &str| c == "..";
        if !src.starts_with('/') || src.split('/').any(bad) || src.trim_matches('/').is_empty() {
            anyhow::bail!(
                "runtime artifact {spec:?}: the source must be an absolute path without '..'"
            );
        }
        if dest.starts_with('/') || dest.split('/').any(bad) {
            anyhow::bail!(
                "runtime artifact {spec:?}: the destination must be a relative path without '..'"
            );
        }
        Ok(RuntimeArtifact {
            source: src.trim_end_matches('/').to_string(),
            dest: dest.to_string(),
        })
    }
}

/// The second stage of an extended build: artifacts out of the assembled builder into a
/// private copy of the runtime image, then its `assemble-runtime` if it has one.
struct RuntimeStage<'a> {
    req: &'a BuildRequest,
    store: &'a Store,
    cache: &'a RootfsCache,
    sandbox: &'a Sandbox,
    log: &'a dyn BuildLog,
    env: &'a [(String, String)],
    builder_labels: &'a HashMap<String, String>,
    assembled: &'a Dir,
}

impl RuntimeStage<'_> {
    fn artifacts(&self) -> Result<Vec<RuntimeArtifact>, BuildError> {
        if !self.req.runtime_artifacts.is_empty() {
            return Ok(self.req.runtime_artifacts.clone());
        }
        let label = label_value(
            self.builder_labels,
            &["io.openshift.s2i.assemble-input-files"],
        )
        .unwrap_or_default();
        let list = label
            .split(';')
            .filter(|s| !s.trim().is_empty())
            .map(RuntimeArtifact::parse)
            .collect::<Result<Vec<_>>>()?;
        if list.is_empty() {
            return Err(anyhow!(
                "--runtime-image needs artifacts: give --runtime-artifact SRC[:DEST] or use a builder with the io.openshift.s2i.assemble-input-files label"
            )
            .into());
        }
        Ok(list)
    }

    fn run(
        &self,
        runtime: &ResolvedImage,
    ) -> Result<(crate::layer::BaseRootfs, crate::layer::BuildRoot, Launch), BuildError> {
        let artifacts = self.artifacts()?;
        let base = self.cache.base(&layer_sources(self.store, runtime)?)?;
        let root = self.cache.checkout(&base)?;
        let dir = Dir::open_ambient_dir(root.path(), ambient_authority())
            .context("opening the runtime rootfs")?;
        let workdir = runtime
            .config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .unwrap_or_default();
        let workdir = guest_dir(if workdir.is_empty() {
            "/".into()
        } else {
            workdir
        })?;
        for a in &artifacts {
            copy_artifact(self.assembled, a, &dir, &workdir)?;
        }
        if self.req.runtime_image.as_deref() == Some(slim::SCRATCH) {
            let argv = slim::entrypoint(self.builder_labels)?;
            return Ok((base, root, Launch::Entrypoint(argv)));
        }
        let labels: HashMap<String, String> = runtime.config.labels().into_iter().collect();
        let env: Vec<(String, String)> = runtime.config.env_pairs();
        let image_url = scripts::image_scripts_url(&labels, &env);
        let fs = BaseFs(
            Dir::open_ambient_dir(base.path(), ambient_authority())
                .context("opening the runtime image")?,
        );
        let none = BTreeMap::new();
        let tmp = tempfile::tempdir().context("creating a download dir")?;
        let src = ScriptSources {
            scripts_url: None,
            source_scripts: &none,
            image_url: image_url.as_deref(),
            image: &fs,
            download_dir: tmp.path(),
            limits: scripts::DownloadLimits::default(),
        };
        let resolved = scripts::resolve_blocking(&src, &[ScriptName::Run])
            .context("resolving the runtime image's scripts")?;
        let placed = install_scripts(&dir, "/tmp", &resolved)?;
        if let Some(program) = placed.get(&ScriptName::AssembleRuntime) {
            let mut hook = Hook::new(root.path(), program.clone());
            hook.env = self.env.to_vec();
            hook.budget = self.req.budget.clone();
            hook.reproducible = self.req.source_date_epoch;
            hook.cwd = if workdir.is_empty() {
                "/".into()
            } else {
                workdir.clone()
            };
            let outcome = self
                .sandbox
                .run(hook, self.log)
                .map_err(|e| anyhow!(e))
                .context("running assemble-runtime")?;
            if outcome.exit_code != 0 {
                return Err(BuildError::AssembleRuntimeFailed {
                    exit_code: outcome.exit_code,
                });
            }
        }
        let run = placed
            .get(&ScriptName::Run)
            .cloned()
            .ok_or_else(|| anyhow!("no run script in the runtime image"))?;
        Ok((base, root, Launch::RunHook(run)))
    }
}

/// What the result runs.
enum Launch {
    /// The S2I run script (guest path); a wasm one makes a wasm image.
    RunHook(String),
    /// A native entrypoint declared by the builder, for a scratch runtime image.
    Entrypoint(Vec<String>),
}

impl Launch {
    fn argv(&self) -> Vec<String> {
        match self {
            Launch::RunHook(p) => vec![p.clone()],
            Launch::Entrypoint(argv) => argv.clone(),
        }
    }
}

/// `--runtime-image scratch`: an empty runtime image made on the spot (nothing pulled), for a
/// builder whose artifact is a native executable (the Go builder). Its platform is the one
/// assemble reports with the `io.ws2i.platform` label, its `Entrypoint` the builder's
/// `io.ws2i.runtime.entrypoint` label (a JSON array).
mod slim {
    use super::*;

    pub const SCRATCH: &str = "scratch";
    pub const PLATFORM_LABEL: &str = "io.ws2i.platform";
    pub const ENTRYPOINT_LABEL: &str = "io.ws2i.runtime.entrypoint";

    pub fn scratch_image(
        store: &Store,
        metadata_labels: &[(String, String)],
    ) -> Result<ResolvedImage, BuildError> {
        let platform = match metadata_labels
            .iter()
            .rev()
            .find(|(k, _)| k == PLATFORM_LABEL)
        {
            Some((_, v)) => Platform::parse(v)
                .with_context(|| format!("assemble's {PLATFORM_LABEL} label {v:?}"))?,
            None => Platform::host_default(),
        };
        let (config_bytes, manifest) = ImageBuilder::scratch(&platform).finish()?;
        let config_digest = store.layout().put_bytes(&config_bytes)?;
        Ok(ResolvedImage {
            manifest_digest: Digest::of(&manifest.to_bytes()),
            manifest,
            config: crate::image::ImageConfig::parse(&config_bytes)?,
            config_digest,
        })
    }

    pub fn entrypoint(builder_labels: &HashMap<String, String>) -> Result<Vec<String>, BuildError> {
        let v = label_value(builder_labels, &[ENTRYPOINT_LABEL]).ok_or_else(|| {
            anyhow!("--runtime-image scratch needs the builder's {ENTRYPOINT_LABEL} label (a JSON array, e.g. [\"/app\"])")
        })?;
        let argv: Vec<String> = serde_json::from_str(&v)
            .ok()
            .filter(|a: &Vec<String>| !a.is_empty())
            .ok_or_else(|| anyhow!("the builder's {ENTRYPOINT_LABEL} label {v:?} is not a non-empty JSON array of strings"))?;
        Ok(argv)
    }

    #[cfg(test)]
    #[test]
    fn entrypoint_label_rules() {
        let labels = |v: &str| HashMap::from([(ENTRYPOINT_LABEL.to_string(), v.to_string())]);
        assert_eq!(entrypoint(&labels(r#"["/app", "--flag"]"#)).unwrap(), ["/app", "--flag"]);
        for bad in ["", "/app", "[]", "[1]", r#"{"a":1}"#] {
            assert!(entrypoint(&labels(bad)).is_err(), "{bad:?}");
        }
        assert!(entrypoint(&HashMap::new()).is_err());
    }
}

/// Copies one artifact (file or dir, by its base name) from the assembled rootfs into
/// `<workdir>/<dest>/` of the runtime rootfs, both through cap-std.
fn copy_artifact(
    from: &Dir,
    a: &RuntimeArtifact,
    to: &Dir,
    workdir: &str,
) -> Result<(), BuildError> {
    let src_rel = a.source.trim_start_matches('/');
    let meta = from.metadata(src_rel).map_err(|_| {
        anyhow!(
            "runtime artifact {} does not exist in the assembled builder",
            a.source
        )
    })?;
    let name = Path::new(src_rel)
        .file_name()
        .ok_or_else(|| anyhow!("runtime artifact {} has no name", a.source))?;
    let dest_dir = join_rel(workdir, &a.dest);
    let dest_dir = if dest_dir.is_empty() {
        ".".to_string()
    } else {
        dest_dir
    };
    to.create_dir_all(&dest_dir)
        .with_context(|| format!("creating {dest_dir} in the runtime image"))?;
    let target = Path::new(&dest_dir).join(name);
    if meta.is_dir() {
        to.create_dir_all(&target)
            .with_context(|| format!("creating {}", target.display()))?;
        let s = from
            .open_dir(src_rel)
            .with_context(|| format!("opening {}", a.source))?;
        let d = to
            .open_dir(&target)
            .with_context(|| format!("opening {}", target.display()))?;
        let never = |_: &str| false;
        let opts = source::copy::CopyOptions {
            keep_symlinks: true,
            skip: &never,
        };
        source::copy::copy_tree(&s, &d, &opts).with_context(|| format!("copying {}", a.source))?;
    } else if meta.is_file() {
        let mut r = from
            .open(src_rel)
            .with_context(|| format!("opening {}", a.source))?;
        let mut w = to
            .create(&target)
            .with_context(|| format!("creating {}", target.display()))?;
        std::io::copy(&mut r, &mut w).with_context(|| format!("copying {}", a.source))?;
        use cap_std::fs::PermissionsExt as _;
        let mode = cap_std::fs::MetadataExt::mode(&meta) & 0o777;
        w.set_permissions(cap_std::fs::Permissions::from_mode(mode))
            .context("setting the artifact's mode")?;
    } else {
        return Err(anyhow!(
            "runtime artifact {} is neither a file nor a directory",
            a.source
        )
        .into());
    }
    Ok(())
}

/// What an incremental build needs to run the previous image's `save-artifacts`.
struct Incremental<'a> {
    req: &'a BuildRequest,
    store: &'a Store,
    cache: &'a RootfsCache,
    sandbox: &'a Sandbox,
    log: &'a dyn BuildLog,
    env: &'a [(String, String)],
    destination: &'a str,
    fetched: &'a source::FetchedSource,
    staging: &'a Path,
}

impl Incremental<'_> {
    /// The image TAG names now: with `--push` it is the registry image, pulled per
    /// `--incremental-pull-policy` (a failed pull is a clean build, as upstream); a local TAG
    /// has nothing to pull from, so only the store is looked at whatever the policy.
    fn previous_image(&self, tag: &NameTag) -> Result<ResolvedImage, String> {
        match &self.req.push {
            Some(p) => {
                let pull = Pull {
                    policy: self.req.incremental_pull_policy,
                    flag: "--incremental-pull-policy",
                    registry: &self.req.registry,
                    progress: self.req.progress,
                };
                pull_remote(self.store, &p.dest, &pull)
                    .map_err(|e| format!("previous image docker://{}: {e}", p.dest))
            }
            None => self
                .store
                .resolve(&LocalRef::Tagged(tag.clone()))
                .map_err(|_| format!("no previous image {tag} in the local store")),
        }
    }

    /// `Ok(Ok(dir))`: the artifacts unpacked in `dir`. `Ok(Err(why))`: a clean build is done
    /// instead (no previous image, no save-artifacts, or it failed), as upstream.
    fn save_artifacts(&self) -> Result<Result<PathBuf, String>, BuildError> {
        let Some(tag) = &self.req.tag else {
            return Ok(Err(
                "--incremental needs a TAG naming the previous image".into()
            ));
        };
        let prev = match self.previous_image(tag) {
            Ok(p) => p,
            Err(why) => return Ok(Err(why)),
        };
        let base = self.cache.base(&layer_sources(self.store, &prev)?)?;
        let labels: HashMap<String, String> = prev.config.labels().into_iter().collect();
        let env: Vec<(String, String)> = prev.config.env_pairs();
        let image_url = self
            .req
            .image_scripts_url
            .clone()
            .or_else(|| scripts::image_scripts_url(&labels, &env));
        let fs = BaseFs(
            Dir::open_ambient_dir(base.path(), ambient_authority())
                .context("opening the previous image")?,
        );
        let src = ScriptSources {
            scripts_url: self.req.scripts_url.as_deref(),
            source_scripts: &self.fetched.scripts,
            image_url: image_url.as_deref(),
            image: &fs,
            download_dir: &self.staging.join("downloads-previous"),
            limits: scripts::DownloadLimits::default(),
        };
        let resolved = match scripts::resolve_blocking(&src, &[]) {
            Ok(r) => r,
            Err(e) => return Ok(Err(format!("scripts of the previous image: {e}"))),
        };
        if resolved.get(ScriptName::SaveArtifacts).is_none() {
            return Ok(Err(format!(
                "the previous image {tag} has no save-artifacts script"
            )));
        }
        // save-artifacts only reads the previous image: when its script is part of that image it
        // runs on the cached rootfs itself, read-only, instead of on a private copy of it (the
        // copy was most of an incremental build's overhead). A script from elsewhere must first
        // be installed into the rootfs, which needs the copy.
        let in_image = resolved
            .get(ScriptName::SaveArtifacts)
            .and_then(|s| match &s.location {
                ScriptLocation::InImage(p) => Some(p.clone()),
                _ => None,
            });
        let (prev_root, program) = match in_image {
            Some(program) => (PrevRoot::Shared(base.path().to_path_buf()), program),
            None => {
                let root = self.cache.checkout(&base)?;
                let dir = Dir::open_ambient_dir(root.path(), ambient_authority())
                    .context("opening the previous rootfs")?;
                let placed = install_scripts(&dir, self.destination, &resolved)?;
                let program = placed
                    .get(&ScriptName::SaveArtifacts)
                    .cloned()
                    .ok_or_else(|| anyhow!("save-artifacts vanished"))?;
                (PrevRoot::Private(root), program)
            }
        };
        let tar_path = self.staging.join("artifacts.tar");
        let tar = std::fs::File::create(&tar_path)
            .with_context(|| format!("creating {}", tar_path.display()))?;
        let limit = self.req.budget.disk.bytes();
        let mut hook = Hook::new(prev_root.path(), program);
        hook.read_only_rootfs = matches!(prev_root, PrevRoot::Shared(_));
        hook.env = self.env.to_vec();
        hook.budget = self.req.budget.clone();
        hook.reproducible = self.req.source_date_epoch;
        hook.stdout = Stdout::Capture(Box::new(LimitedWriter {
            inner: tar,
            left: limit,
        }));
        let outcome = self
            .sandbox
            .run(hook, self.log)
            .map_err(|e| anyhow!(e))
            .context("running save-artifacts")?;
        if outcome.exit_code != 0 {
            return Ok(Err(format!(
                "save-artifacts exited with code {}",
                outcome.exit_code
            )));
        }
        let out = self.staging.join("artifacts");
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        let tar = std::fs::File::open(&tar_path)
            .with_context(|| format!("opening {}", tar_path.display()))?;
        let warn = |w: &str| self.log.warning(&format!("artifacts: {w}"));
        layer::unpack(
            tar,
            Compression::None,
            &out,
            &layer::UnpackLimits::default(),
            &warn,
        )
        .context("unpacking the artifacts of save-artifacts")?;
        Ok(Ok(out))
    }
}

/// The previous image's rootfs as save-artifacts sees it.
enum PrevRoot {
    /// The cached base itself, mounted read-only.
    Shared(PathBuf),
    /// A private copy (removed when dropped), with scripts installed into it.
    Private(layer::BuildRoot),
}

impl PrevRoot {
    fn path(&self) -> &Path {
        match self {
            PrevRoot::Shared(p) => p,
            PrevRoot::Private(r) => r.path(),
        }
    }
}

/// Stops a hook's captured stdout at the disk budget instead of filling the host disk.
struct LimitedWriter<W> {
    inner: W,
    left: u64,
}

impl<W: std::io::Write> std::io::Write for LimitedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(std::io::Error::other(
                "save-artifacts output exceeds the disk budget",
            ));
        }
        let n = self.inner.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The builder as s2i records it: `NAME:TAG` for the local store (tag made explicit),
/// `HOST/REPO:TAG` for a registry (the name it is kept under locally, so the label resolves).
fn normalized_name(reference: &str) -> String {
    match reference.parse::<ImageRef>() {
        Ok(ImageRef::Local(l)) => l.to_string(),
        Ok(ImageRef::Docker(d)) => d.to_string(),
        _ => reference.to_string(),
    }
}

/// Where assemble may leave labels for the result (s2i's contract; fixed, whatever the destination).
const IMAGE_METADATA_DIR: &str = "/tmp/.s2i";
const IMAGE_METADATA: &str = "/tmp/.s2i/image_metadata.json";
/// A metadata file larger than this is refused rather than read into memory.
const IMAGE_METADATA_LIMIT: u64 = 1 << 20;

/// `{"labels":[{"k":"v"}, …]}`: every entry an object of string values. Unknown top-level keys
/// are refused so that a typo does not silently drop labels.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageMetadata {
    #[serde(default)]
    labels: Vec<BTreeMap<String, String>>,
}

/// The labels assemble wrote to [`IMAGE_METADATA`] (none when it wrote no file), in file
/// order; read through cap-std on the build root so that a symlink cannot point outside it.
fn read_image_metadata(root: &Dir) -> Result<Vec<(String, String)>, BuildError> {
    use std::io::Read as _;
    let rel = IMAGE_METADATA.trim_start_matches('/');
    let file = match root.open(rel) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(anyhow!("{IMAGE_METADATA} written by assemble: {e}").into()),
    };
    let mut bytes = Vec::new();
    file.take(IMAGE_METADATA_LIMIT + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {IMAGE_METADATA} written by assemble"))?;
    if bytes.len() as u64 > IMAGE_METADATA_LIMIT {
        return Err(anyhow!(
            "{IMAGE_METADATA} written by assemble is larger than {IMAGE_METADATA_LIMIT} bytes"
        )
        .into());
    }
    parse_image_metadata(&bytes)
        .with_context(|| format!("{IMAGE_METADATA} written by assemble is invalid"))
        .map_err(BuildError::from)
}

fn parse_image_metadata(bytes: &[u8]) -> Result<Vec<(String, String)>> {
    let m: ImageMetadata =
        serde_json::from_slice(bytes).context("expected {\"labels\":[{\"KEY\":\"VALUE\"}, …]}")?;
    let mut out = Vec::new();
    for entry in m.labels {
        for (k, v) in entry {
            if k.trim().is_empty() {
                anyhow::bail!("a label has an empty key");
            }
            out.push((k, v));
        }
    }
    Ok(out)
}

/// The labels ws2i writes, in s2i's merge order: generated, then `--label`.
fn output_labels(req: &BuildRequest, info: &source::SourceInfo) -> Vec<(String, String)> {
    let mut l: Vec<(String, String)> = Vec::new();
    let mut add = |k: String, v: &str| {
        if !v.is_empty() {
            l.push((k, v.to_string()));
        }
    };
    add(format!("{NS}build.image"), &normalized_name(&req.builder));
    if let Some(c) = &info.commit {
        if !c.author_name.is_empty() {
            add(
                format!("{NS}build.commit.author"),
                &format!("{} <{}>", c.author_name, c.author_email),
            );
        }
        add(format!("{NS}build.commit.date"), &c.date);
        add(format!("{NS}build.commit.id"), &c.id);
        add(format!("{NS}build.commit.ref"), &c.ref_name);
        add(format!("{NS}build.commit.message"), &c.message);
    }
    add(format!("{NS}build.source-location"), &info.location);
    if let Some(cd) = &info.context_dir {
        add(
            format!("{NS}build.source-context-dir"),
            &cd.to_string_lossy(),
        );
    }
    let display = req
        .application_name
        .clone()
        .or_else(|| req.tag.as_ref().map(NameTag::to_string))
        .unwrap_or_default();
    add("io.k8s.display-name".into(), &display);
    add(
        "io.k8s.description".into(),
        req.description.as_deref().unwrap_or(""),
    );
    for (k, v) in &req.labels {
        l.push((k.clone(), v.clone()));
    }
    l
}

/// `created` of the image and of the new history entry from SOURCE_DATE_EPOCH, so that the
/// same inputs give the same config (and manifest) digest.
fn fix_created(
    config_bytes: Vec<u8>,
    mut manifest: crate::image::Manifest,
    sde: u64,
) -> Result<(Vec<u8>, crate::image::Manifest)> {
    let ts = crate::image::rfc3339(sde as i64);
    let mut v: serde_json::Value = serde_json::from_slice(&config_bytes)?;
    v["created"] = serde_json::Value::String(ts.clone());
    if let Some(last) = v
        .get_mut("history")
        .and_then(|h| h.as_array_mut())
        .and_then(|h| h.last_mut())
    {
        if last.is_object() {
            last["created"] = serde_json::Value::String(ts);
        }
    }
    let bytes = serde_json::to_vec(&v)?;
    manifest.config = Descriptor::new(media::OCI_CONFIG, Digest::of(&bytes), bytes.len() as u64);
    Ok((bytes, manifest))
}

/// Reads an `--environment-file` for [`BuildRequest::env_file`].
pub fn read_env_file(path: &Path) -> Result<Vec<EnvVar>> {
    Ok(crate::envfile::read_env_file(path, EnvFileKind::Cli)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_artifact_rules() {
        let a = RuntimeArtifact::parse("/opt/app/bin/").unwrap();
        assert_eq!((a.source.as_str(), a.dest.as_str()), ("/opt/app/bin", "."));
        let a = RuntimeArtifact::parse("/opt/app.jar:deploy/x").unwrap();
        assert_eq!(
            (a.source.as_str(), a.dest.as_str()),
            ("/opt/app.jar", "deploy/x")
        );
        for bad in ["src:dst", "/src:/dst", "/src:../dst", "/a/../b", "/", ""] {
            assert!(RuntimeArtifact::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn image_metadata_schema() {
        let l = parse_image_metadata(br#"{"labels":[{"a":"1"},{"b":"2","c":""}]}"#).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[0], ("a".into(), "1".into()));
        assert!(parse_image_metadata(b"{}").unwrap().is_empty());
        for bad in [
            &br#"{"labels":{"a":"b"}}"#[..],
            br#"{"labels":[{"a":1}]}"#,
            br#"{"labels":[["a","b"]]}"#,
            br#"{"label":[]}"#,
            br#"{"labels":[{" ":"x"}]}"#,
            b"not json",
            b"",
        ] {
            assert!(
                parse_image_metadata(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn label_size_limit() {
        let mut l = BTreeMap::new();
        l.insert("k".to_string(), "v".repeat(MAX_LABELS_SIZE - 1));
        assert!(check_label_size(&l).is_ok(), "exactly the limit is allowed");
        l.insert("small".to_string(), "x".into());
        l.insert("b".to_string(), "y".repeat(100));
        let e = check_label_size(&l).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(&e, BuildError::LabelsTooLarge { total, largest }
                if *total == MAX_LABELS_SIZE + 6 + 101 && largest[0].0 == "k" && largest[1].0 == "b"),
            "{msg}"
        );
        assert!(msg.contains("limit of 10240 bytes") && msg.contains("k (10240 bytes)"), "{msg}");
    }

    #[test]
    fn guest_dir_rules() {
        assert_eq!(guest_dir("/tmp".into()).unwrap(), "/tmp");
        assert_eq!(guest_dir("/".into()).unwrap(), "");
        for bad in ["tmp", "/a/../b", "/a//b", "/a/", "/./a"] {
            assert!(guest_dir(bad.into()).is_err(), "{bad}");
        }
    }
}
