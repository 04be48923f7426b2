//! Stages "Resolving runtime image" and "Assembling the runtime image" (`--runtime-image`, an
//! extended build): the artifacts copied out of the assembled builder into a private copy of the
//! runtime image, then its `assemble-runtime`; that copy is the tree committed. `scratch` is an
//! empty image made on the spot for a builder whose artifact is a native executable.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{anyhow, Context};
use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::contract::ScriptName;
use crate::image::{ImageBuilder, Platform, ResolvedImage, Store};
use crate::layer::RootfsCache;
use crate::layer::{BaseRootfs, BuildRoot};
use crate::s2i::assemble::Assembled;
use crate::s2i::builder::{label_value, resolve_runtime, Builder};
use crate::s2i::commit::{Launch, Tree};
use crate::s2i::request::guest_dir;
use crate::s2i::rootfs::{join_rel, Rootfs};
use crate::s2i::scripts::{self, ImageDir, ScriptSources};
use crate::s2i::{BuildCtx, BuildError, BuildLog, BuildRequest, RuntimeArtifact};
use crate::sandbox::{Hook, Sandbox};
use crate::source;
use crate::Digest;

pub(crate) use slim::SCRATCH;

pub(crate) fn resolve(
    ctx: &BuildCtx,
    reference: &str,
    assembled: &Assembled,
) -> Result<ResolvedImage, BuildError> {
    if reference == slim::SCRATCH {
        slim::scratch_image(&ctx.store, &assembled.metadata, ctx.platform())
    } else {
        resolve_runtime(ctx.req, &ctx.store, reference, ctx.platform())
    }
}

pub(crate) fn assemble(
    ctx: &BuildCtx,
    runtime: ResolvedImage,
    builder: &Builder,
    rootfs: &Rootfs,
) -> Result<Tree, BuildError> {
    let stage = RuntimeStage {
        req: ctx.req,
        store: &ctx.store,
        cache: &ctx.cache,
        sandbox: &ctx.sandbox,
        log: ctx.log,
        env: &rootfs.env,
        builder_labels: &builder.labels,
        assembled: &rootfs.dir,
    };
    let (base, root, launch) = stage.run(&runtime)?;
    Ok(Tree {
        from: runtime,
        base,
        root,
        launch,
        exclude: Vec::new(),
    })
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
            .collect::<anyhow::Result<Vec<_>>>()?;
        if list.is_empty() {
            return Err(anyhow!(
                "--runtime-image needs artifacts: give --runtime-artifact SRC[:DEST] or use a builder with the io.openshift.s2i.assemble-input-files label"
            )
            .into());
        }
        Ok(list)
    }

    fn run(&self, runtime: &ResolvedImage) -> Result<(BaseRootfs, BuildRoot, Launch), BuildError> {
        let artifacts = self.artifacts()?;
        let base = self.cache.base(&self.store.image_layers(runtime)?)?;
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
        let fs = ImageDir::open(base.path()).context("opening the runtime image")?;
        let none = BTreeMap::new();
        let tmp = tempfile::tempdir().context("creating a download dir")?;
        let src = ScriptSources {
            scripts_url: None,
            source_scripts: &none,
            image_url: image_url.as_deref().map(scripts::ImageUrl::Label),
            image: &fs,
            download_dir: tmp.path(),
            limits: scripts::DownloadLimits::default(),
        };
        let resolved = scripts::resolve_blocking(&src, &[ScriptName::Run])
            .context("resolving the runtime image's scripts")?;
        let placed = scripts::install(&dir, "/tmp", &resolved)?;
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

/// `--runtime-image scratch`: an empty runtime image made on the spot (nothing pulled), for a
/// builder whose artifact is a native executable (the Go builder). Its platform is the one
/// assemble reports with the `io.ws2i.platform` label, its `Entrypoint` the builder's
/// `io.ws2i.runtime.entrypoint` label (a JSON array).
mod slim {
    use super::*;

    pub const SCRATCH: &str = "scratch";
    pub const PLATFORM_LABEL: &str = "io.ws2i.platform";
    pub const ENTRYPOINT_LABEL: &str = "io.ws2i.runtime.entrypoint";

    /// `target`: the `--platform`, which the image says in the end whatever the label.
    pub fn scratch_image(
        store: &Store,
        metadata_labels: &[(String, String)],
        target: Option<&Platform>,
    ) -> Result<ResolvedImage, BuildError> {
        let platform = match metadata_labels
            .iter()
            .rev()
            .find(|(k, _)| k == PLATFORM_LABEL)
        {
            Some((_, v)) => Platform::parse(v)
                .with_context(|| format!("assemble's {PLATFORM_LABEL} label {v:?}"))?,
            None => target.cloned().unwrap_or_else(Platform::host_default),
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
        assert_eq!(
            entrypoint(&labels(r#"["/app", "--flag"]"#)).unwrap(),
            ["/app", "--flag"]
        );
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
