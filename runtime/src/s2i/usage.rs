//! `ws2i usage BUILDER`: runs the builder's `usage` hook, as `s2i usage` does.
//!
//! The builder is resolved as `ws2i build` does ([`crate::s2i::resolve_image`]): a local store
//! reference, or `docker://…` pulled into the store per `--pull-policy`; its scripts are resolved like a build's, minus the source: `--scripts-url`, then the
//! builder's scripts-url label, then `image:///usr/libexec/s2i`. The hook runs in the sandbox on a
//! private checkout of the builder's rootfs, so whatever it writes is thrown away.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::layer::RootfsCache;
use crate::s2i::{resolve_image, Pull, PullPolicy};
use crate::image::registry::RegistryOptions;
use crate::sandbox::{Budget, Hook, LogSink, Sandbox, SandboxConfig};
use crate::s2i::scripts::{self, ImageDir, ScriptLocation, ScriptName, ScriptSources};
use crate::image::store::Store;

/// One `ws2i usage` run.
#[derive(Debug, Clone)]
pub struct UsageRequest {
    /// A local store reference (`NAME[:TAG]`, `NAME@DIGEST`) or `docker://…`.
    pub builder: String,
    /// When to fetch a `docker://` builder.
    pub pull_policy: PullPolicy,
    pub registry: RegistryOptions,
    /// Draw progress bars while pulling.
    pub progress: bool,
    /// `--scripts-url`: where to find `usage` instead of the builder's label.
    pub scripts_url: Option<String>,
    pub store_root: PathBuf,
    pub cache_dir: PathBuf,
    pub budget: Budget,
}

/// Why `usage` could not run, where callers branch on it.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("builder image {builder} not found: {reason}")]
    BuilderNotFound { builder: String, reason: String },
    #[error("builder image {builder} has no usage script ({reason})")]
    NoUsage { builder: String, reason: String },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Runs the usage hook; its output goes to `log` (stdout lines as [`crate::sandbox::Stream::Stdout`]).
/// Returns the hook's exit code.
pub fn usage(req: &UsageRequest, log: &dyn LogSink) -> Result<i32, UsageError> {
    let not_found = |reason: String| UsageError::BuilderNotFound {
        builder: req.builder.clone(),
        reason,
    };
    let store = Store::open(&req.store_root).context("opening the local image store")?;
    let pull = Pull {
        policy: req.pull_policy,
        flag: "--pull-policy",
        registry: &req.registry,
        progress: req.progress,
        platform: None,
    };
    let img = resolve_image(&store, &req.builder, &pull).map_err(|e| not_found(e.to_string()))?;

    std::fs::create_dir_all(&req.cache_dir)
        .with_context(|| format!("creating {}", req.cache_dir.display()))?;
    let cache =
        RootfsCache::new(&req.cache_dir.join("layers")).context("opening the rootfs cache")?;
    let base = cache
        .base(&store.image_layers(&img)?)
        .context("unpacking the builder's layers")?;

    let labels: HashMap<String, String> = img.config.labels().into_iter().collect();
    let env = img.config.env_pairs();
    let image_url = scripts::image_scripts_url(&labels, &env);
    let downloads = tempfile::Builder::new()
        .prefix("ws2i-usage-")
        .tempdir()
        .context("creating a download dir")?;
    let fs = ImageDir::open(base.path()).context("opening the builder rootfs")?;
    let no_source = Default::default();
    let src = ScriptSources {
        scripts_url: req.scripts_url.as_deref(),
        source_scripts: &no_source,
        image_url: image_url.as_deref().map(scripts::ImageUrl::Label),
        image: &fs,
        download_dir: downloads.path(),
        limits: scripts::DownloadLimits::default(),
    };
    let resolved = scripts::resolve_blocking(&src, &[ScriptName::Usage])
        .map_err(|e| UsageError::NoUsage {
            builder: req.builder.clone(),
            reason: e.to_string(),
        })?;
    let script = resolved
        .get(ScriptName::Usage)
        .ok_or_else(|| anyhow!("usage resolved to nothing"))?;

    let root = cache
        .checkout(&base)
        .context("checking out the builder rootfs")?;
    let program = match &script.location {
        ScriptLocation::InImage(p) => p.clone(),
        ScriptLocation::Downloaded(host) | ScriptLocation::FromSource(host) => {
            // A downloaded script is placed where build puts scripts, inside the private root.
            let dir = Dir::open_ambient_dir(root.path(), ambient_authority())
                .context("opening the usage root")?;
            dir.create_dir_all("tmp/scripts")
                .context("creating /tmp/scripts")?;
            let bytes =
                std::fs::read(host).with_context(|| format!("reading {}", host.display()))?;
            dir.write("tmp/scripts/usage", bytes)
                .context("installing the usage script")?;
            "/tmp/scripts/usage".to_string()
        }
    };
    let sandbox = Sandbox::new(SandboxConfig {
        cache_dir: req.cache_dir.clone(),
    })
    .context("starting the sandbox")?;
    let mut hook = Hook::new(root.path(), program);
    hook.env = env;
    hook.budget = req.budget.clone();
    let outcome = sandbox
        .run(hook, log)
        .map_err(|e| anyhow!(e))
        .context("running usage")?;
    Ok(outcome.exit_code)
}


