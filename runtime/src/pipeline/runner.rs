//! Runs one frozen Build, as OKD's build pod does, in named stages:
//!
//! 1. **fetch inputs**: the git source (at `spec.revision` if set), or the `--from-dir` directory,
//!    into a private context dir (`contextDir` applied);
//! 2. **extract image content**: each `images[].paths` entry copied out of the pinned image's
//!    unpacked rootfs into the context (`cp -r` semantics, `/.` copies a directory's contents),
//!    through cap-std so no path or link in the image reaches outside it;
//! 3. **manage dockerfile** (Docker strategy): the inline `dockerfile` written as
//!    `<context>/Dockerfile`, else `dockerfilePath` (default `Dockerfile`, then `Containerfile`);
//!    `dockerStrategy.from` replaces the last `FROM`; strategy `env` becomes `ENV` after each
//!    `FROM`;
//! 4. **build**: `sourceStrategy` is an S2I build ([`crate::s2i::build`]) with the pinned builder,
//!    `dockerStrategy` a [`crate::containerfile::bud`] build.
//!
//! The image is written to a private store tag, never to the output tag: the controller makes it
//! the stream's current image in the same transaction as the build's completion.
//!
//! Reproducible by default: fixed timestamps (`SOURCE_DATE_EPOCH=0`) and no build name baked in,
//! so a rebuild of the same inputs gives the same digest and the cascade stops. The BuildConfig
//! annotation `ws2i.io/build-metadata: okd` adds OKD's `io.openshift.build.*` labels (and, for
//! Docker builds, `OPENSHIFT_BUILD_*` env), which makes every digest new, as on a cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use cap_std::ambient_authority;
use cap_std::fs::Dir;

use super::controller::{Outcome, FROM_DIR};
use super::logs::BuildLogFile;
use super::objects::*;
use crate::containerfile::{bud, Args, BuildOptions, Containerfile, Keyword};
use crate::contract::envfile::EnvVar as S2iEnvVar;
use crate::image::{ImageRef, LocalRef, NameTag, Store};
use crate::s2i::{self, BuildError, BuildRequest, PullPolicy};
use crate::sandbox::CancelToken;
use crate::source::{self, SourceLocation, SourceSpec};
use crate::Digest;

/// Annotation of a BuildConfig: `okd` bakes OKD's build metadata into every image.
pub const BUILD_METADATA: &str = "ws2i.io/build-metadata";

pub struct RunEnv<'a> {
    pub store: &'a Store,
    pub cache_dir: &'a Path,
    /// Bake OKD's build name and labels into the image (see the module doc).
    pub okd_metadata: bool,
    /// Tripped when the build is cancelled: checked between stages, and by the sandbox, so a
    /// running hook stops at its next epoch check.
    pub cancel: CancelToken,
    /// `source.secrets` then `source.configMaps`.
    pub inputs: &'a [BuildInput],
}

/// The files of one `source.secrets[]` or `source.configMaps[]` entry, read from the database
/// when the build starts.
#[derive(Debug, Clone)]
pub struct BuildInput {
    /// `spec.source.secrets[0]`, for messages.
    pub field: String,
    /// `secret NAME` or `configmap NAME`.
    pub what: String,
    pub destination_dir: String,
    /// Where a Source build's assemble finds the files: OKD's mount path for the object,
    /// `/var/run/secrets/openshift.io/build/NAME` or `/var/run/configs/openshift.io/build/NAME`.
    pub mount: String,
    /// File name and bytes; `None` when the object is gone since the build was pinned.
    pub files: Option<Vec<(String, Vec<u8>)>>,
}

/// What the run produced besides the outcome.
pub struct RunResult {
    pub outcome: Outcome,
    /// The commit built, when the source was git (OKD's builder reports it as `spec.revision`).
    pub commit: Option<String>,
}

/// The private store tag a build writes before it becomes the output's current image.
pub fn scratch_tag(b: &Build) -> NameTag {
    NameTag {
        name: format!(
            "ws2i-pipeline-tmp/{}/{}",
            b.metadata.namespace(),
            b.metadata.name
        ),
        tag: "build".into(),
    }
}

struct Fail(&'static str, String);

impl<E: Into<anyhow::Error>> From<(&'static str, E)> for Fail {
    fn from((r, e): (&'static str, E)) -> Self {
        let e: anyhow::Error = e.into();
        Fail(r, format!("{e:#}"))
    }
}

pub fn run(b: &Build, env: &RunEnv<'_>, log: &BuildLogFile<'_>) -> RunResult {
    let mut commit = None;
    let outcome = match run_stages(b, env, log, &mut commit).map_err(|f| cancelled_or(env, f)) {
        Ok(d) => Outcome::Built(d),
        Err(Fail(reason, message)) => {
            log.write_line(&format!("error: {message}"));
            Outcome::Failed { reason, message }
        }
    };
    RunResult { outcome, commit }
}

/// A stage that failed because the cancel token stopped its hook is a cancelled build, whatever
/// error the stage reported.
fn cancelled_or(env: &RunEnv<'_>, f: Fail) -> Fail {
    match check_cancel(env) {
        Err(c) => c,
        Ok(()) => f,
    }
}

fn check_cancel(env: &RunEnv<'_>) -> Result<(), Fail> {
    if env.cancel.is_cancelled() {
        return Err(Fail(
            "CancelledBuild",
            "The build was cancelled by the user.".into(),
        ));
    }
    Ok(())
}

fn run_stages(
    b: &Build,
    env: &RunEnv<'_>,
    log: &BuildLogFile<'_>,
    commit: &mut Option<String>,
) -> Result<Digest, Fail> {
    let c = &b.spec.common;
    let tmp = tempfile::Builder::new()
        .prefix("ws2i-pipeline-")
        .tempdir()
        .map_err(|e| Fail("FetchSourceFailed", e.to_string()))?;
    let kind = c
        .strategy_kind()
        .ok_or_else(|| Fail("GenericBuildFailed", "the build has no strategy".into()))?;
    let needs_context = matches!(kind, StrategyKind::Docker(_))
        || c.source.images.iter().any(|i| !i.paths.is_empty());
    let spec = source_spec(b).map_err(|e| ("FetchSourceFailed", e))?;
    let out = scratch_tag(b);

    if !needs_context {
        // A Source build fetches its own source (s2i's order), so the commit labels are its own.
        let StrategyKind::Source(ss) = kind else {
            unreachable!()
        };
        log.write_line(&format!(
            "ws2i: S2I build of {} with builder {}",
            spec.as_ref()
                .map(|s| s.location.display())
                .unwrap_or_default(),
            ss.from.name
        ));
        let spec = spec.ok_or_else(|| {
            Fail(
                "FetchSourceFailed",
                "a Source build needs source.git or --from-dir".into(),
            )
        })?;
        return s2i_build(b, ss, spec, env, log, &out, commit, tmp.path());
    }

    log.write_line("ws2i: ==> fetch inputs");
    let context = match &spec {
        Some(spec) => {
            let fetched = source::fetch(spec, &tmp.path().join("staging"))
                .map_err(|e| ("FetchSourceFailed", e))?;
            for w in &fetched.warnings {
                log.write_line(&format!("ws2i: warning: {w}"));
            }
            *commit = fetched.info.commit.as_ref().map(|c| c.id.clone());
            if let Some(c) = &fetched.info.commit {
                log.write_line(&format!("ws2i: commit {} ({})", c.id, c.message));
            }
            restore_scripts(&fetched).map_err(|e| ("FetchSourceFailed", e))?;
            fetched.dir
        }
        None => {
            let d = tmp.path().join("context");
            std::fs::create_dir_all(&d).map_err(|e| ("FetchSourceFailed", e))?;
            d
        }
    };
    check_cancel(env)?;
    extract_image_content(b, env, log, &context)?;
    check_cancel(env)?;
    if matches!(kind, StrategyKind::Docker(_)) {
        write_inputs(env, log, &context)?;
    }
    match kind {
        StrategyKind::Docker(ds) => {
            log.write_line("ws2i: ==> manage dockerfile");
            let text = manage_dockerfile(b, ds, env, &context)
                .map_err(|e| ("ManageDockerfileFailed", e))?;
            log.write_line("ws2i: ==> build (ws2i bud)");
            let mut opts = bud::BudOptions::new(ImageRef::Local(LocalRef::Tagged(out)));
            opts.build = BuildOptions {
                build_args: ds
                    .build_args
                    .iter()
                    .map(|a| (a.name.clone(), a.value.clone()))
                    .collect::<BTreeMap<_, _>>(),
                target: None,
            };
            opts.source_date_epoch = 0;
            opts.budget.cancel = env.cancel.clone();
            if let Some(d) = c.completion_deadline_seconds {
                opts.budget.timeout = opts
                    .budget
                    .timeout
                    .min(std::time::Duration::from_secs(d as u64));
            }
            let r = bud::build(env.store, &text, &context, &opts, log)
                .map_err(|e| ("DockerBuildFailed", e))?;
            Ok(r.digest)
        }
        StrategyKind::Source(ss) => {
            let mut spec = SourceSpec::new(SourceLocation::Local(context.clone()));
            spec.copy = true;
            s2i_build(b, ss, spec, env, log, &out, &mut None, tmp.path())
        }
    }
}

/// `source::fetch` stages an S2I source: it moves the scripts of `.s2i/bin` (or `.sti/bin`) out
/// of the tree. A build context is the whole tree (OKD's rule for Docker builds; an S2I build
/// that copies image content into the context stages the context itself), so they go back.
/// Both dirs survive the move, so a script goes back to `.s2i/bin` unless only `.sti/bin` exists.
fn restore_scripts(fetched: &source::FetchedSource) -> Result<()> {
    for (name, moved) in &fetched.scripts {
        let bin = [".s2i/bin", ".sti/bin"]
            .into_iter()
            .map(|b| fetched.dir.join(b))
            .find(|d| d.is_dir() && !d.join(name).exists())
            .with_context(|| format!("no .s2i/bin to put {name} back into"))?;
        std::fs::rename(moved, bin.join(name))
            .with_context(|| format!("restoring .s2i/bin/{name} in the build context"))?;
    }
    Ok(())
}

/// The source of a build: git (at the pinned commit if any) or the `--from-dir` directory.
fn source_spec(b: &Build) -> Result<Option<SourceSpec>> {
    let c = &b.spec.common;
    let context_dir = match &c.source.context_dir {
        Some(d) => SourceSpec::parse_context_dir(d)?,
        None => None,
    };
    if let Some(dir) = b.metadata.annotations.get(FROM_DIR) {
        let mut s = SourceSpec::new(SourceLocation::Local(PathBuf::from(dir)));
        s.copy = true;
        s.context_dir = context_dir;
        return Ok(Some(s));
    }
    let Some(g) = &c.source.git else {
        return Ok(None);
    };
    let location = SourceLocation::parse(&g.uri)
        .with_context(|| format!("spec.source.git.uri {:?}", g.uri))?;
    if !matches!(location, SourceLocation::Git(_)) {
        return Err(anyhow!(
            "spec.source.git.uri {:?} is not a git URL (file://, https://, ssh://, git://)",
            g.uri
        ));
    }
    let mut s = SourceSpec::new(location);
    let pinned = c
        .revision
        .as_ref()
        .and_then(|r| r.git.as_ref())
        .map(|g| g.commit.clone())
        .filter(|c| !c.is_empty());
    s.git_ref = pinned.or_else(|| g.git_ref.clone().filter(|r| !r.is_empty()));
    s.context_dir = context_dir;
    Ok(Some(s))
}

#[allow(clippy::too_many_arguments)]
fn s2i_build(
    b: &Build,
    ss: &SourceBuildStrategy,
    spec: SourceSpec,
    env: &RunEnv<'_>,
    log: &BuildLogFile<'_>,
    out: &NameTag,
    commit: &mut Option<String>,
    tmp: &Path,
) -> Result<Digest, Fail> {
    let c = &b.spec.common;
    let mut req = BuildRequest::new(
        spec,
        ss.from.name.clone(),
        env.store.root().to_path_buf(),
        env.cache_dir.to_path_buf(),
    );
    req.tag = Some(out.clone());
    req.pull_policy = if ss.force_pull {
        PullPolicy::Always
    } else {
        PullPolicy::IfNotPresent
    };
    req.scripts_url = ss.scripts.clone();
    req.env = ss
        .env
        .iter()
        .map(|e| S2iEnvVar::new(e.name.clone(), e.value.clone()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            Fail(
                "GenericBuildFailed",
                format!("spec.strategy.sourceStrategy.env: {e}"),
            )
        })?;
    req.labels = c
        .output
        .image_labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect();
    if env.okd_metadata {
        req.labels.extend(okd_labels(b));
    }
    req.source_date_epoch = Some(0);
    req.budget.cancel = env.cancel.clone();
    if !env.inputs.is_empty() {
        req.injections = inject_inputs(env, log, &tmp.join("inputs"))?;
    }
    if let Some(d) = c.completion_deadline_seconds {
        req.budget.timeout = req
            .budget
            .timeout
            .min(std::time::Duration::from_secs(d as u64));
    }
    if ss.incremental == Some(true) {
        // The previous image's artifacts: the output tag's current image, under the private tag.
        if let Some(prev) = output_current(b, env.store) {
            if env.store.tag(out, &prev).is_ok() {
                req.incremental = true;
            }
        }
    }
    match s2i::build(&req, log) {
        Ok(r) => {
            *commit = r.labels.get("io.openshift.s2i.build.commit.id").cloned();
            Ok(r.digest)
        }
        Err(e) => {
            let reason = match &e {
                BuildError::BuilderNotFound { .. } => "PullBuilderImageFailed",
                BuildError::Other(inner)
                    if inner.downcast_ref::<source::SourceError>().is_some() =>
                {
                    "FetchSourceFailed"
                }
                _ => "GenericBuildFailed",
            };
            Err(Fail(reason, e.to_string()))
        }
    }
}

fn input_files(i: &BuildInput) -> Result<&[(String, Vec<u8>)], Fail> {
    i.files.as_deref().ok_or_else(|| {
        Fail(
            "GenericBuildFailed",
            format!(
                "{}: {} was deleted after the build was queued",
                i.field, i.what
            ),
        )
    })
}

/// Source strategy: each key becomes a read-only file assemble sees at the path OKD's build pod
/// mounts it at ([`BuildInput::mount`]), injected as `ws2i build --inject` does: never in the
/// image. Not copied into the source dir (OKD's builder does, then truncates them), because an
/// assemble that installs the source would carry them into the image. The host copies are
/// private to the build (0600, removed with its temp dir).
fn inject_inputs(
    env: &RunEnv<'_>,
    log: &BuildLogFile<'_>,
    dir: &Path,
) -> Result<Vec<s2i::HostMount>, Fail> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let io = |e: std::io::Error| Fail("GenericBuildFailed", format!("staging build inputs: {e}"));
    let mut mounts: Vec<s2i::HostMount> = Vec::new();
    for (n, i) in env.inputs.iter().enumerate() {
        if mounts
            .iter()
            .any(|m| m.guest.starts_with(&format!("{}/", i.mount)))
        {
            continue; // the same object twice (two destinationDirs): one mount
        }
        let host_dir = dir.join(n.to_string());
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&host_dir)
            .map_err(io)?;
        for (key, bytes) in input_files(i)? {
            let host = host_dir.join(key);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&host)
                .map_err(io)?;
            std::io::Write::write_all(&mut f, bytes).map_err(io)?;
            mounts.push(s2i::HostMount {
                host,
                guest: format!("{}/{key}", i.mount),
            });
        }
        log.write_line(&format!(
            "ws2i: {} ({}) injected read-only at {}",
            i.field, i.what, i.mount
        ));
    }
    Ok(mounts)
}

/// Docker strategy (OKD's rule): the files are written into the build context under
/// `destinationDir` and stay there, for the Dockerfile to COPY.
fn write_inputs(env: &RunEnv<'_>, log: &BuildLogFile<'_>, context: &Path) -> Result<(), Fail> {
    let ctx = Dir::open_ambient_dir(context, ambient_authority())
        .map_err(|e| Fail("GenericBuildFailed", e.to_string()))?;
    for i in env.inputs {
        let fail = |e: std::io::Error| {
            Fail(
                "GenericBuildFailed",
                format!("{}: writing {} into the context: {e}", i.field, i.what),
            )
        };
        let d = if i.destination_dir.is_empty() {
            "."
        } else {
            i.destination_dir.as_str()
        };
        ctx.create_dir_all(d).map_err(fail)?;
        let sub = ctx.open_dir(d).map_err(fail)?;
        for (key, bytes) in input_files(i)? {
            sub.write(key, bytes).map_err(fail)?;
        }
        log.write_line(&format!("ws2i: {} ({}) written to {d}", i.field, i.what));
    }
    Ok(())
}

fn output_current(b: &Build, store: &Store) -> Option<Digest> {
    let reference = b.status.output_docker_image_reference.as_deref()?;
    let nt: NameTag = reference.parse().ok()?;
    store
        .resolve(&LocalRef::Tagged(nt))
        .ok()
        .map(|r| r.manifest_digest)
}

fn okd_labels(b: &Build) -> Vec<(String, String)> {
    let c = &b.spec.common;
    let mut v = vec![
        (
            "io.openshift.build.name".to_string(),
            b.metadata.name.clone(),
        ),
        (
            "io.openshift.build.namespace".to_string(),
            b.metadata.namespace().to_string(),
        ),
    ];
    if let Some(g) = &c.source.git {
        v.push(("io.openshift.build.source-location".into(), g.uri.clone()));
    }
    v
}

fn extract_image_content(
    b: &Build,
    env: &RunEnv<'_>,
    log: &BuildLogFile<'_>,
    context: &Path,
) -> Result<(), Fail> {
    let fail = |m: String| Fail("FetchImageContentFailed", m);
    for (i, img) in b.spec.common.source.images.iter().enumerate() {
        if img.paths.is_empty() {
            continue;
        }
        log.write_line(&format!(
            "ws2i: ==> extract image content from {}",
            img.from.name
        ));
        let r: LocalRef = img.from.name.parse().map_err(|e| {
            fail(format!(
                "spec.source.images[{i}].from {:?}: {e}",
                img.from.name
            ))
        })?;
        let resolved = env.store.resolve(&r).map_err(|e| {
            fail(format!(
                "spec.source.images[{i}].from {}: {e:#}",
                img.from.name
            ))
        })?;
        let sources = env
            .store
            .layer_sources(&resolved.manifest, &resolved.config.rootfs.diff_ids)
            .map_err(|e| fail(format!("{e:#}")))?;
        let base = crate::layer::RootfsCache::new(env.cache_dir)
            .and_then(|c| c.base(&sources))
            .map_err(|e| fail(format!("unpacking {}: {e:#}", img.from.name)))?;
        let root = Dir::open_ambient_dir(base.path(), ambient_authority())
            .map_err(|e| fail(e.to_string()))?;
        let ctx =
            Dir::open_ambient_dir(context, ambient_authority()).map_err(|e| fail(e.to_string()))?;
        for (j, p) in img.paths.iter().enumerate() {
            let field = format!("spec.source.images[{i}].paths[{j}]");
            copy_path(&root, &ctx, &p.source_path, &p.destination_dir).map_err(|e| {
                fail(format!(
                    "{field}: sourcePath {} in image {}: {e:#}",
                    p.source_path, img.from.name
                ))
            })?;
            log.write_line(&format!(
                "ws2i: copied {} to {}",
                p.source_path,
                if p.destination_dir.is_empty() {
                    "."
                } else {
                    &p.destination_dir
                }
            ));
        }
    }
    Ok(())
}

/// `cp -r -p ROOT/SRC CONTEXT/DEST/`: a file or directory lands in DEST under its own name;
/// `SRC/.` copies a directory's contents into DEST.
fn copy_path(root: &Dir, ctx: &Dir, source_path: &str, dest_dir: &str) -> Result<()> {
    let contents = source_path.ends_with("/.");
    let rel = source_path.trim_end_matches("/.").trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let dest = if dest_dir.is_empty() { "." } else { dest_dir };
    ctx.create_dir_all(dest)
        .with_context(|| format!("creating destinationDir {dest}"))?;
    let dest_dir = ctx.open_dir(dest)?;
    let meta = root
        .metadata(rel)
        .map_err(|e| anyhow!("does not exist in the image ({e})"))?;
    let name = Path::new(rel).file_name().map(|n| n.to_os_string());
    let opts = source::copy::CopyOptions {
        keep_symlinks: true,
        skip: &|_: &str| false,
    };
    if meta.is_dir() {
        let src = root.open_dir(rel)?;
        let target = if contents || name.is_none() {
            dest_dir
        } else {
            let n = name.expect("checked");
            dest_dir.create_dir_all(&n)?;
            dest_dir.open_dir(&n)?
        };
        source::copy::copy_tree(&src, &target, &opts)?;
    } else if contents {
        anyhow::bail!("ends in /. but is not a directory");
    } else {
        let n = name.context("no file name")?;
        root.copy(rel, &dest_dir, &n)?;
        // cap-std's copy keeps the bytes; keep the mode too (cp -p), the binary must stay executable.
        dest_dir.set_permissions(&n, meta.permissions())?;
    }
    Ok(())
}

fn manage_dockerfile(
    b: &Build,
    ds: &DockerBuildStrategy,
    env: &RunEnv<'_>,
    context: &Path,
) -> Result<String> {
    let ctx = Dir::open_ambient_dir(context, ambient_authority())?;
    let mut text = match &b.spec.common.source.dockerfile {
        Some(inline) => {
            // OKD writes it to <contextDir>/Dockerfile, over any file from git.
            ctx.write("Dockerfile", inline)?;
            inline.clone()
        }
        None => {
            let candidates: Vec<String> = match &ds.dockerfile_path {
                Some(p) => vec![p.clone()],
                None => vec!["Dockerfile".into(), "Containerfile".into()],
            };
            let found = candidates.iter().find(|c| ctx.is_file(c.as_str()));
            let path = found
                .with_context(|| format!("no {} in the build context", candidates.join(" or ")))?;
            ctx.read_to_string(path.as_str())
                .with_context(|| format!("reading {path}"))?
        }
    };
    let mut extra_env: Vec<(String, String)> = ds
        .env
        .iter()
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect();
    if env.okd_metadata {
        extra_env.push(("OPENSHIFT_BUILD_NAME".into(), b.metadata.name.clone()));
        extra_env.push((
            "OPENSHIFT_BUILD_NAMESPACE".into(),
            b.metadata.namespace().to_string(),
        ));
    }
    let as_names: BTreeMap<String, String> = b
        .spec
        .common
        .source
        .images
        .iter()
        .filter(|i| i.from.kind == RefKind::DockerImage)
        .flat_map(|i| i.as_names.iter().map(|n| (n.clone(), i.from.name.clone())))
        .collect();
    text = rewrite_dockerfile(
        &text,
        ds.from.as_ref().map(|f| f.name.as_str()),
        &as_names,
        &extra_env,
    )?;
    if env.okd_metadata {
        for (k, v) in okd_labels(b) {
            text.push_str(&format!("\nLABEL {k}={}", serde_json::to_string(&v)?));
        }
        text.push('\n');
    }
    Ok(text)
}

/// Replaces the image of the last `FROM` (when `from` is set), the `images[].as` names in `FROM`
/// and `COPY --from` (`as_names`: name → pinned image; a `COPY --from` naming an earlier stage
/// keeps it), and inserts `ENV` lines after each `FROM` (OKD's `replaceLastFrom`,
/// `replaceImagesFromSource` and `insertEnvAfterFrom`).
pub fn rewrite_dockerfile(
    text: &str,
    from: Option<&str>,
    as_names: &BTreeMap<String, String>,
    env: &[(String, String)],
) -> Result<String> {
    let cf = Containerfile::parse(text).map_err(|e| anyhow!("{e}"))?;
    let froms: Vec<usize> = cf
        .instructions
        .iter()
        .filter(|i| i.keyword == Keyword::From)
        .map(|i| i.line)
        .collect();
    let last = *froms.last().context("the Dockerfile has no FROM")?;
    // Line of each COPY whose --from names a replaced image rather than an earlier stage.
    let mut stages = Vec::new();
    let mut copy_from = BTreeMap::new();
    for ins in &cf.instructions {
        match ins.keyword {
            Keyword::From => {
                if let Args::Shell(a) = &ins.args {
                    let words: Vec<&str> = a.split_whitespace().collect();
                    if let [_, kw, name, ..] = words.as_slice() {
                        if kw.eq_ignore_ascii_case("as") {
                            stages.push(name.to_string());
                        }
                    }
                }
            }
            Keyword::Copy => {
                let f = ins.flags.iter().find(|f| f.name == "from");
                if let Some(r) = f.and_then(|f| f.value.as_deref()) {
                    if !stages.iter().any(|s| s == r) {
                        if let Some(pinned) = as_names.get(r) {
                            copy_from.insert(ins.line, (r.to_string(), pinned.clone()));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let mut line = line.to_string();
        if froms.contains(&n) {
            let mut words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            if let Some(w) = words.iter_mut().skip(1).find(|w| !w.starts_with("--")) {
                match (n == last, from) {
                    (true, Some(img)) => *w = img.to_string(),
                    _ => {
                        if let Some(pinned) = as_names.get(w.as_str()) {
                            *w = pinned.clone();
                        }
                    }
                }
            }
            line = words.join(" ");
        }
        if let Some((name, pinned)) = copy_from.get(&n) {
            line = line.replacen(&format!("--from={name}"), &format!("--from={pinned}"), 1);
        }
        out.push(line);
        if froms.contains(&n) && !env.is_empty() {
            let pairs: Vec<String> = env
                .iter()
                .map(|(k, v)| format!("{k}={}", serde_json::to_string(v).unwrap_or_default()))
                .collect();
            out.push(format!("ENV {}", pairs.join(" ")));
        }
    }
    Ok(out.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_from_is_replaced_and_env_follows_each_from() {
        let t = "FROM golang:1.12 AS build\nCOPY . /src\nFROM --platform=linux/amd64 scratch\nCOPY --from=build /app /app\n";
        let r = rewrite_dockerfile(
            t,
            Some("base@sha256:abc"),
            &BTreeMap::new(),
            &[("A".into(), "x y".into())],
        )
        .unwrap();
        assert_eq!(
            r,
            "FROM golang:1.12 AS build\nENV A=\"x y\"\nCOPY . /src\nFROM --platform=linux/amd64 base@sha256:abc\nENV A=\"x y\"\nCOPY --from=build /app /app\n"
        );
    }

    #[test]
    fn as_names_replace_from_and_copy_from_but_not_a_stage_of_that_name() {
        let t = "FROM golang:1.12 AS build\nCOPY --from=tools /bin/x /x\nFROM build AS again\nCOPY --from=build /a /a\nFROM scratch\nCOPY --from=golang:1.12 /go /go\n";
        let names: BTreeMap<String, String> = [
            ("golang:1.12".to_string(), "go@sha256:1".to_string()),
            ("tools".to_string(), "tools@sha256:2".to_string()),
            ("build".to_string(), "never@sha256:3".to_string()),
        ]
        .into();
        let r = rewrite_dockerfile(t, None, &names, &[]).unwrap();
        assert_eq!(
            r,
            "FROM go@sha256:1 AS build\nCOPY --from=tools@sha256:2 /bin/x /x\nFROM never@sha256:3 AS again\nCOPY --from=build /a /a\nFROM scratch\nCOPY --from=go@sha256:1 /go /go\n"
        );
    }

    #[test]
    fn paths_are_copied_like_cp_r_and_cannot_leave_the_image() {
        let t = tempfile::tempdir().unwrap();
        let img = t.path().join("img");
        std::fs::create_dir_all(img.join("opt/app-root/sub")).unwrap();
        std::fs::write(img.join("opt/app-root/app"), "bin").unwrap();
        std::fs::write(img.join("opt/app-root/sub/f"), "f").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", img.join("opt/escape")).unwrap();
        let ctx = t.path().join("ctx");
        std::fs::create_dir_all(&ctx).unwrap();
        let root = Dir::open_ambient_dir(&img, ambient_authority()).unwrap();
        let c = Dir::open_ambient_dir(&ctx, ambient_authority()).unwrap();
        copy_path(&root, &c, "/opt/app-root/app", ".").unwrap();
        assert_eq!(std::fs::read_to_string(ctx.join("app")).unwrap(), "bin");
        copy_path(&root, &c, "/opt/app-root/sub", "out").unwrap();
        assert!(ctx.join("out/sub/f").is_file());
        copy_path(&root, &c, "/opt/app-root/sub/.", "flat").unwrap();
        assert!(ctx.join("flat/f").is_file());
        let e = copy_path(&root, &c, "/opt/missing", ".").unwrap_err();
        assert!(
            format!("{e:#}").contains("does not exist in the image"),
            "{e:#}"
        );
        assert!(
            copy_path(&root, &c, "/opt/escape", ".").is_err(),
            "an absolute link is not followed out"
        );
        assert!(copy_path(&root, &c, "/../../etc/passwd", ".").is_err());
    }
}
