//! Stage "Saving artifacts of the previous image" (`--incremental`): the previous image's
//! `save-artifacts` runs read-only on its cached rootfs (or on a private copy when its script
//! comes from outside it), its tar stream is unpacked and placed at `<destination>/artifacts`.
//! Any reason to do a clean build instead is a warning, as upstream.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::contract::ScriptName;
use crate::image::{LocalRef, NameTag, Platform, ResolvedImage};
use crate::layer::{self, Compression};
use crate::s2i::builder::{pull_remote, Pull};
use crate::s2i::platforms;
use crate::s2i::rootfs::{inject_source, Rootfs};
use crate::s2i::scripts::{self, ImageDir, ImageUrl, ScriptLocation, ScriptSources};
use crate::s2i::{BuildCtx, BuildError};
use crate::sandbox::{Hook, Stdout};
use crate::source::FetchedSource;

/// Restores the previous image's artifacts into `rootfs`; `Err(why)` inside means a clean build.
pub(crate) fn restore(
    ctx: &BuildCtx,
    source: &FetchedSource,
    rootfs: &Rootfs,
    destination: &str,
) -> Result<Result<(), String>, BuildError> {
    let inc = Incremental {
        ctx,
        env: &rootfs.env,
        destination,
        fetched: source,
    };
    match inc.save_artifacts()? {
        Ok(dir) => {
            inject_source(&rootfs.dir, destination, &dir, "artifacts")?;
            Ok(Ok(()))
        }
        Err(why) => Ok(Err(why)),
    }
}

/// What an incremental build needs to run the previous image's `save-artifacts`.
struct Incremental<'a> {
    ctx: &'a BuildCtx<'a>,
    env: &'a [(String, String)],
    destination: &'a str,
    fetched: &'a FetchedSource,
}

impl Incremental<'_> {
    /// The image TAG names now: with `--push` it is the registry image, pulled per
    /// `--incremental-pull-policy` (a failed pull is a clean build, as upstream); a local TAG
    /// has nothing to pull from, so only the store is looked at whatever the policy.
    /// With `--platform`, the previous image of the same platform: its entry of an index, and
    /// a clean build when it is for another one.
    fn previous_image(&self, tag: &NameTag) -> Result<ResolvedImage, String> {
        let platform = self.ctx.platform();
        let prev = match &self.ctx.req.push {
            Some(p) => {
                let pull = Pull {
                    policy: self.ctx.req.incremental_pull_policy,
                    flag: "--incremental-pull-policy",
                    registry: &self.ctx.req.registry,
                    progress: self.ctx.req.progress,
                    platform,
                };
                pull_remote(&self.ctx.store, &p.dest, &pull)
                    .map_err(|e| format!("previous image docker://{}: {e}", p.dest))
            }
            None => {
                let host = Platform::host_default();
                self.ctx
                    .store
                    .resolve_for(&LocalRef::Tagged(tag.clone()), platform.unwrap_or(&host))
                    .map_err(|e| match platform {
                        Some(p) => format!("no previous image {tag} for {p} in the local store ({e:#})"),
                        None => format!("no previous image {tag} in the local store"),
                    })
            }
        }?;
        if let Some(p) = platform {
            platforms::check_image(&prev, p).map_err(|why| format!("the previous image {tag}: {why}"))?;
        }
        Ok(prev)
    }

    /// `Ok(Ok(dir))`: the artifacts unpacked in `dir`. `Ok(Err(why))`: a clean build is done
    /// instead (no previous image, no save-artifacts, or it failed), as upstream.
    fn save_artifacts(&self) -> Result<Result<PathBuf, String>, BuildError> {
        let Some(tag) = &self.ctx.req.tag else {
            return Ok(Err(
                "--incremental needs a TAG naming the previous image".into()
            ));
        };
        let prev = match self.previous_image(tag) {
            Ok(p) => p,
            Err(why) => return Ok(Err(why)),
        };
        let base = self.ctx.cache.base(&self.ctx.store.image_layers(&prev)?)?;
        let labels: HashMap<String, String> = prev.config.labels().into_iter().collect();
        let env: Vec<(String, String)> = prev.config.env_pairs();
        let label = scripts::image_scripts_url(&labels, &env);
        let image_url = ImageUrl::choose(self.ctx.req.image_scripts_url.as_deref(), label.as_deref());
        let fs = ImageDir::open(base.path()).context("opening the previous image")?;
        let src = ScriptSources {
            scripts_url: self.ctx.req.scripts_url.as_deref(),
            source_scripts: &self.fetched.scripts,
            image_url,
            image: &fs,
            download_dir: &self.ctx.staging.path().join("downloads-previous"),
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
                let root = self.ctx.cache.checkout(&base)?;
                let dir = Dir::open_ambient_dir(root.path(), ambient_authority())
                    .context("opening the previous rootfs")?;
                let placed = scripts::install(&dir, self.destination, &resolved)?;
                let program = placed
                    .get(&ScriptName::SaveArtifacts)
                    .cloned()
                    .ok_or_else(|| anyhow!("save-artifacts vanished"))?;
                (PrevRoot::Private(root), program)
            }
        };
        let tar_path = self.ctx.staging.path().join("artifacts.tar");
        let tar = std::fs::File::create(&tar_path)
            .with_context(|| format!("creating {}", tar_path.display()))?;
        let limit = self.ctx.req.budget.disk.bytes();
        let mut hook = Hook::new(prev_root.path(), program);
        hook.read_only_rootfs = matches!(prev_root, PrevRoot::Shared(_));
        hook.env = self.env.to_vec();
        hook.budget = self.ctx.req.budget.clone();
        hook.reproducible = self.ctx.req.source_date_epoch;
        hook.stdout = Stdout::Capture(Box::new(LimitedWriter {
            inner: tar,
            left: limit,
        }));
        let outcome = self
            .ctx
            .sandbox
            .run(hook, self.ctx.log)
            .map_err(|e| anyhow!(e))
            .context("running save-artifacts")?;
        if outcome.exit_code != 0 {
            return Ok(Err(format!(
                "save-artifacts exited with code {}",
                outcome.exit_code
            )));
        }
        let out = self.ctx.staging.path().join("artifacts");
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        let tar = std::fs::File::open(&tar_path)
            .with_context(|| format!("opening {}", tar_path.display()))?;
        // The previous image is as hostile as any input: an entry that breaks a rule (absolute,
        // `..`, a link out, a device) is skipped with a warning, and a stream that cannot be
        // unpacked at all (malformed, over a cap) means a clean build, never a failed one, or
        // one bad image would break every later incremental build.
        let warn = |w: &str| self.ctx.log.warning(&format!("artifacts: {w}"));
        let opts = layer::UnpackOptions { skip_unsafe: true, ..Default::default() };
        if let Err(e) = layer::unpack_with(tar, Compression::None, &out, &opts, &warn) {
            return Ok(Err(format!("the output of save-artifacts cannot be unpacked: {e}")));
        }
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
