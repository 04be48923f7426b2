//! `ws2i build`: one Source-to-Image build, in upstream s2i's order (docs/build.md), and the
//! other s2i commands (`usage`, `rebuild`, `create`).
//!
//! [`build`] is the list of stages; each lives in its own file and takes what the one before
//! produced. Each is a `==>` step of the log:
//!
//! | stage | file | produces |
//! |---|---|---|
//! | Fetching source | [`crate::source`] | the staged source, its `.s2i/bin` and `.s2i/environment` |
//! | Resolving builder image, Unpacking builder layers | `builder.rs` | the builder, its cached rootfs, destination, layer owner |
//! | Resolving scripts | `scripts.rs` | where each script comes from |
//! | Preparing build rootfs | `rootfs.rs` | a private rootfs with source and scripts, the hook environment |
//! | Saving artifacts of the previous image | `incremental.rs` | `<destination>/artifacts` (`--incremental`) |
//! | Running assemble | `assemble.rs` | assemble's labels (`image_metadata.json`) |
//! | Resolving/Assembling the runtime image | `runtime.rs` | the runtime tree (`--runtime-image`) |
//! | Committing the layer | `commit.rs` | the new layer, stored |
//! | Writing image, Pushing image | `write.rs` | the tagged image, and where `--push` sent it |
//!
//! With several `--platform`s, `platforms.rs` runs these stages once per platform (in parallel
//! where cores allow), each untagged, then writes and pushes the image index of them all.
//!
//! Nothing is written to the store before assemble succeeded, so a failed build leaves no image.
//! `--callback-url` gets the outcome either way (`callback.rs`).
//!
//! Sits above [`crate::sandbox`], [`crate::layer`], [`crate::image`], [`crate::source`] and
//! [`crate::contract`]; nothing below imports it.
//!
//! ```no_run
//! use ws2i::image::Store;
//! use ws2i::s2i::{self, BuildRequest, StderrLog};
//! use ws2i::source::{SourceLocation, SourceSpec};
//!
//! # fn main() -> anyhow::Result<()> {
//! let source = SourceSpec::new(SourceLocation::parse("./my-app")?);
//! let (store, cache) = (Store::default_root()?, ws2i::sandbox::default_cache_dir());
//! let mut req = BuildRequest::new(source, "ws2i/test-builder:latest", store, cache);
//! req.tag = Some("my-app:latest".parse()?);
//! let result = s2i::build(&req, &StderrLog::default())?;
//! println!("{} {}", result.image.unwrap_or_default(), result.digest);
//! # Ok(())
//! # }
//! ```

pub mod assemble_user;
pub mod create;
pub mod rebuild;
pub mod s2ifile;
pub mod scripts;
pub mod usage;

mod assemble;
mod builder;
mod callback;
mod commit;
mod incremental;
mod labels;
mod platforms;
mod request;
mod rootfs;
mod runtime;
mod stages;
mod write;

use anyhow::Context;

use crate::image::Store;
use crate::layer::RootfsCache;
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::scratch::ScratchDir;
use crate::source::{self, FetchedSource};

pub use builder::{resolve_image, Pull, ResolveError};
pub use callback::parse_callback_url;
pub use labels::MAX_LABELS_SIZE;
/// For the fuzz targets (fuzz.rs at the crate root).
pub(crate) use labels::read_image_metadata;
pub use request::{
    parse_tag, read_env_file, BuildError, BuildRequest, BuildResult, HostMount, PullPolicy, PushTarget, Pushed,
    PlatformImage, RuntimeArtifact, StepTime,
};
pub use platforms::parse_platforms;
pub use stages::{BuildLog, StderrLog};

use builder::Builder;
use callback::Callback;
use platforms::Target;
use stages::Steps;

/// Runs one build, then, with `--callback-url`, reports the outcome there whether it succeeded
/// or not.
pub fn build(req: &BuildRequest, log: &dyn BuildLog) -> Result<BuildResult, BuildError> {
    let callback = Callback::parse(req.callback_url.as_deref())?;
    let result = run_stages(req, log);
    callback.report(&result, log);
    result
}

fn run_stages(req: &BuildRequest, log: &dyn BuildLog) -> Result<BuildResult, BuildError> {
    req.check()?;
    match req.platforms.as_slice() {
        [] => run_platform(req, log, None),
        [one] => run_platform(req, log, Some(Target::alone(one))),
        many => platforms::build(req, log, many),
    }
}

/// The stages for one platform (`None`: no `--platform`); a [`Target`] that is part of an index
/// leaves its image untagged and unpushed, for [`platforms::build`] to do.
fn run_platform(req: &BuildRequest, log: &dyn BuildLog, target: Option<Target>) -> Result<BuildResult, BuildError> {
    let ctx = BuildCtx::open(req, log, target)?;
    let mut steps = Steps::new(log);
    let source = steps.run("Fetching source", || fetch_source(&ctx))?;
    source.warnings.iter().for_each(|w| steps.warn(w.clone()));
    let builder = steps.run("Resolving builder image", || Builder::resolve(&ctx))?;
    let base = steps.run("Unpacking builder layers", || builder.unpack(&ctx))?;
    let scripts = steps.run("Resolving scripts", || scripts::for_build(&ctx, &builder, &base, &source))?;
    let rootfs = steps.run("Preparing build rootfs", || rootfs::prepare(&ctx, &builder, &base, &source, &scripts))?;
    if req.incremental {
        let restored = steps.run("Saving artifacts of the previous image", || {
            incremental::restore(&ctx, &source, &rootfs, &base.destination)
        })?;
        if let Err(why) = restored {
            steps.warn(format!("clean build: {why}"));
        }
    }
    let assembled = steps.run("Running assemble", || assemble::run(&ctx, &base, &rootfs))?;
    let mut tree = match &req.runtime_image {
        Some(reference) => {
            let image = steps.run("Resolving runtime image", || runtime::resolve(&ctx, reference, &assembled))?;
            steps.run("Assembling the runtime image", || runtime::assemble(&ctx, image, &builder, &rootfs))?
        }
        None => commit::builder_tree(&builder.image, &base, rootfs, &scripts, &assembled)?,
    };
    let labels = labels::for_result(req, &source.info, &tree.from, &assembled.metadata)?;
    let layer = steps.run("Committing the layer", || commit::commit(&ctx, &tree, base.owner))?;
    if req.keep_temp {
        let kept = tree.root.keep().context("keeping the build rootfs (--save-temp-dir)")?;
        steps.warn(format!("build rootfs kept at {}", kept.display()));
    }
    let image = steps.run("Writing image", || write::write(&ctx, &source.info, &tree, &layer, &labels, &assembled.program))?;
    let pushed = match &req.push {
        Some(target) if !ctx.in_index() => Some(steps.run("Pushing image", || write::push(&ctx, target))?),
        _ => None,
    };
    let (steps, warnings) = steps.finish();
    Ok(BuildResult {
        image: req.tag.as_ref().map(ToString::to_string),
        digest: image.digest,
        config_digest: image.config_digest,
        builder: req.builder.clone(),
        builder_digest: builder.image.manifest_digest.clone(),
        layer_digest: layer.packed.digest,
        layer_size: layer.packed.size,
        changes: layer.changes,
        command: tree.launch.argv(),
        labels: image.labels,
        steps,
        warnings,
        pushed,
        platforms: Vec::new(),
    })
}

/// What every stage shares: the request, the log, and what the build opened on the host.
pub(crate) struct BuildCtx<'a> {
    pub req: &'a BuildRequest,
    pub log: &'a dyn BuildLog,
    pub store: Store,
    pub cache: RootfsCache,
    pub sandbox: Sandbox,
    /// Private staging dir (source, downloads, artifacts), removed when the build ends.
    pub staging: ScratchDir,
    /// The `--platform` this run builds for.
    pub target: Option<Target>,
}

/// Staging dirs live in the system temp dir (not the cache, which may be inside a source
/// tree); [`sweep_staging`] removes those that killed builds left.
const STAGING_PREFIX: &str = "ws2i-source-";

/// Removes the staging dirs of builds that were killed (held ones stay; see [`crate::scratch`]).
pub fn sweep_staging() -> anyhow::Result<usize> {
    let tmp = std::env::temp_dir();
    crate::scratch::sweep(&tmp, |n| n.starts_with(STAGING_PREFIX)).with_context(|| format!("cleaning up {}", tmp.display()))
}

impl<'a> BuildCtx<'a> {
    fn open(req: &'a BuildRequest, log: &'a dyn BuildLog, target: Option<Target>) -> Result<Self, BuildError> {
        let store = Store::open(&req.store_root).context("opening the local image store")?;
        std::fs::create_dir_all(&req.cache_dir).with_context(|| format!("creating {}", req.cache_dir.display()))?;
        let cache = RootfsCache::new(&req.cache_dir.join("layers")).context("opening the rootfs cache")?;
        let sandbox = Sandbox::new(SandboxConfig { cache_dir: req.cache_dir.clone() }).context("starting the sandbox")?;
        let staging = ScratchDir::new_in(&std::env::temp_dir(), STAGING_PREFIX).context("creating a staging dir")?;
        Ok(BuildCtx { req, log, store, cache, sandbox, staging, target })
    }

    /// This run's image is one entry of a multi-platform index: not tagged, not pushed alone.
    pub(crate) fn in_index(&self) -> bool {
        self.target.as_ref().is_some_and(|t| t.in_index)
    }

    /// The platform to pick from an index (runtime image, previous image): the target's, else
    /// the host's.
    pub(crate) fn platform(&self) -> Option<&crate::image::Platform> {
        self.target.as_ref().map(|t| &t.platform)
    }
}

/// Stage "Fetching source": into the staging dir, through [`source::fetch`].
fn fetch_source(ctx: &BuildCtx) -> Result<FetchedSource, BuildError> {
    source::fetch(&ctx.req.source, &ctx.staging.path().join("in"))
        .with_context(|| format!("fetching source {}", ctx.req.source.location.display()))
        .map_err(BuildError::from)
}
