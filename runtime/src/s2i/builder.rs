//! Stage "Resolving builder image" and "Unpacking builder layers": the builder in the local store
//! (pulled per `--pull-policy`), its layers unpacked once into the rootfs cache, and what the
//! builder decides for the build: the destination of the source and the owner of the new layer.
//! [`resolve_image`] is shared with `usage`, the runtime image and the previous image.

use std::collections::HashMap;

use anyhow::{Context, Result};
use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::image::registry::RegistryOptions;
use crate::image::transport::{self, CopyOptions};
use crate::image::{DockerRef, ImageRef, LocalRef, Platform, ResolvedImage, Store};
use crate::layer::BaseRootfs;
use crate::s2i::assemble_user::AssembleUser;
use crate::s2i::request::guest_dir;
use crate::s2i::{BuildCtx, BuildError, BuildRequest, PullPolicy};

const DEFAULT_DESTINATION: &str = "/tmp";
const ASSEMBLE_USER_LABEL: &str = "io.openshift.s2i.assemble-user";

/// The resolved builder image, with its labels and environment at hand.
pub(crate) struct Builder {
    pub image: ResolvedImage,
    pub labels: HashMap<String, String>,
    pub env: Vec<(String, String)>,
}

/// The builder's rootfs, unpacked, and what it decides for the build.
pub(crate) struct Base {
    pub rootfs: BaseRootfs,
    /// Where the source goes (a guest dir, `""` for `/`): `--destination`, the builder's label,
    /// its `STI_LOCATION`, else `/tmp`.
    pub destination: String,
    /// uid:gid of the new layer's entries.
    pub owner: (u32, u32),
}

impl Builder {
    pub(crate) fn resolve(ctx: &BuildCtx) -> Result<Self, BuildError> {
        let image = resolve_builder(ctx.req, &ctx.store)?;
        Ok(Builder {
            labels: image.config.labels().into_iter().collect(),
            env: image.config.env_pairs(),
            image,
        })
    }

    pub(crate) fn unpack(&self, ctx: &BuildCtx) -> Result<Base, BuildError> {
        let rootfs = ctx.cache.base(&ctx.store.image_layers(&self.image)?)?;
        let owner = layer_owner(ctx.req, &self.image, &rootfs)?;
        let destination = guest_dir(
            ctx.req
                .destination
                .clone()
                .or_else(|| {
                    label_value(
                        &self.labels,
                        &["io.openshift.s2i.destination", "io.s2i.destination"],
                    )
                })
                .or_else(|| {
                    self.env
                        .iter()
                        .find(|(k, v)| k == "STI_LOCATION" && !v.is_empty())
                        .map(|(_, v)| v.clone())
                })
                .unwrap_or_else(|| DEFAULT_DESTINATION.into()),
        )?;
        Ok(Base {
            rootfs,
            destination,
            owner,
        })
    }
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

pub(crate) fn label_value(labels: &HashMap<String, String>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| {
        labels
            .get(*k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    })
}

fn resolve_builder(req: &BuildRequest, store: &Store) -> Result<ResolvedImage, BuildError> {
    let pull = Pull {
        policy: req.pull_policy,
        flag: "--pull-policy",
        registry: &req.registry,
        progress: req.progress,
        platform: None,
    };
    resolve_image(store, &req.builder, &pull).map_err(|e| match e {
        ResolveError::NotFound(reason) => BuildError::BuilderNotFound {
            builder: req.builder.clone(),
            reason,
        },
        ResolveError::Unsupported(m) => BuildError::Unsupported(format!("builder {m}")),
    })
}

/// The runtime image; with `--platform`, the entry for `platform` of an index, and refused when
/// it is for another platform.
pub(crate) fn resolve_runtime(
    req: &BuildRequest,
    store: &Store,
    reference: &str,
    platform: Option<&Platform>,
) -> Result<ResolvedImage, BuildError> {
    let pull = Pull {
        policy: req.runtime_pull_policy,
        flag: "--runtime-pull-policy",
        registry: &req.registry,
        progress: req.progress,
        platform,
    };
    let not_found = |reason: String| BuildError::RuntimeImageNotFound { image: reference.to_string(), reason };
    let img = resolve_image(store, reference, &pull).map_err(|e| match e {
        ResolveError::NotFound(reason) => not_found(reason),
        ResolveError::Unsupported(m) => BuildError::Unsupported(format!("runtime image {m}")),
    })?;
    if let Some(p) = platform {
        crate::s2i::platforms::check_image(&img, p).map_err(not_found)?;
    }
    Ok(img)
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
    /// `Some`: a multi-platform build's target. A registry image is pulled whole (every
    /// platform of an index) and the entry for this platform is the one resolved.
    pub platform: Option<&'a Platform>,
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
        .map_err(|e: crate::image::RefError| ResolveError::NotFound(e.to_string()))?;
    let host = Platform::host_default();
    let platform = pull.platform.unwrap_or(&host);
    match r {
        ImageRef::Local(l) => store.resolve_for(&l, platform).map_err(|e| {
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

/// A registry image in the local store (under [`DockerRef::local_name`]), pulled per `pull.policy`.
/// `Err`: why it is not there, for the caller to word.
pub(crate) fn pull_remote(
    store: &Store,
    d: &DockerRef,
    pull: &Pull<'_>,
) -> Result<ResolvedImage, String> {
    let name = d.local_name();
    let local = LocalRef::Tagged(name.clone());
    let host = Platform::host_default();
    let platform = pull.platform.unwrap_or(&host);
    let have = store.resolve_for(&local, platform).ok();
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
            // The targets of one multi-platform build share the local name: each keeps every
            // platform, so that none overwrites another's.
            let copy = if pull.platform.is_some() { transport::copy_all_report } else { transport::copy_report };
            copy(&ImageRef::Docker(d.clone()), &ImageRef::Local(local.clone()), &opts).map_err(|e| format!("{e:#}"))?;
            store.resolve_for(&local, platform).map_err(|e| format!("{e:#}"))
        }
    }
}
