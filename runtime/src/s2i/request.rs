//! What a build is asked to do ([`BuildRequest`], with s2i's defaults) and what it answers
//! ([`BuildResult`] or a [`BuildError`]). Plain data: the stages read it, none writes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};

use crate::contract::envfile::{EnvFileKind, EnvVar};
use crate::image::registry::RegistryOptions;
use crate::image::{ImageRef, NameTag, RemoteTarget};
use crate::layer::Compression;
use crate::s2i::assemble_user::AssembleUser;
use crate::s2i::labels::MAX_LABELS_SIZE;
use crate::sandbox::Budget;
use crate::source::SourceSpec;
use crate::Digest;

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
    /// `io.openshift.s2i.assemble-user` label, else its `User`, else 0:0 ([`crate::s2i::assemble_user`]).
    pub assemble_user: Option<AssembleUser>,
    /// `--platform`: the platforms to build for (assemble runs once for each, with
    /// `TARGETPLATFORM`…); several make an image index. Empty: one build, no `TARGET*` env.
    pub platforms: Vec<crate::image::Platform>,
}

/// Where `--push` sends the result. Made by [`parse_tag`], which also gives the local tag the
/// result is kept under, so the two cannot disagree.
#[derive(Debug, Clone)]
pub struct PushTarget {
    pub dest: crate::image::reference::DockerRef,
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
        return Ok((d.local_name(), Some(PushTarget { dest: d, format })));
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
    /// Combinations refused before any work is done.
    pub fn check(&self) -> Result<(), BuildError> {
        if self.incremental && self.runtime_image.is_some() {
            // The previous image of an extended build is the runtime image plus artifacts: it
            // has no builder toolchain to run save-artifacts against (upstream refuses it too).
            return Err(BuildError::Unsupported(
                "--incremental cannot be combined with --runtime-image".into(),
            ));
        }
        if self.push.is_some() && self.tag.is_none() {
            return Err(anyhow!("--push needs a TAG").into());
        }
        Ok(())
    }

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
            platforms: Vec::new(),
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
    /// With several `--platform`s: each platform's image ([`Self::digest`] is then the index's,
    /// and the other image fields are the first platform's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformImage>,
}

/// One platform's image of a multi-platform build.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlatformImage {
    /// `os/arch[/variant]`.
    pub platform: String,
    pub digest: Digest,
    pub config_digest: Digest,
    pub layer_digest: Digest,
    pub layer_size: u64,
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

/// A guest directory: absolute, plain components only, no trailing slash.
pub(crate) fn guest_dir(d: String) -> Result<String, BuildError> {
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

/// Reads an `--environment-file` for [`BuildRequest::env_file`].
pub fn read_env_file(path: &Path) -> Result<Vec<EnvVar>> {
    Ok(crate::contract::envfile::read_env_file(
        path,
        EnvFileKind::Cli,
    )?)
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
    fn guest_dir_rules() {
        assert_eq!(guest_dir("/tmp".into()).unwrap(), "/tmp");
        assert_eq!(guest_dir("/".into()).unwrap(), "");
        for bad in ["tmp", "/a/../b", "/a//b", "/a/", "/./a"] {
            assert!(guest_dir(bad.into()).is_err(), "{bad}");
        }
    }
}
