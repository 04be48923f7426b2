//! `--platform P1,P2,…`: one build for several platforms without emulation. The builder is
//! WebAssembly and runs the same on any host; only what assemble makes differs, and it learns
//! the target from the environment BuildKit's convention names (`TARGETPLATFORM`, `TARGETOS`,
//! `TARGETARCH`, `TARGETVARIANT`), as the Go builder does to set `GOARCH`.
//!
//! With one platform the build is an ordinary one whose image says that platform. With several,
//! the stages of [`super::run_platform`] run once per platform, in parallel up to the cores
//! available, each leaving an untagged image in the store; then the stages here write the OCI
//! image index of them all under TAG and, with `--push`, push it whole (every blob, then every
//! manifest, then the index).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::image::{self, is_wasm_platform, media, Descriptor, Index, Platform, ResolvedImage};
use crate::s2i::stages::{BuildLog, Steps};
use crate::s2i::{write, BuildError, BuildRequest, BuildResult, PlatformImage, StepTime};
use crate::sandbox::{LogSink, Stream};

/// The platform one run of the stages builds for.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub platform: Platform,
    /// Its image is one entry of an index: [`build`] tags and pushes the index instead.
    pub in_index: bool,
}

impl Target {
    /// The only `--platform`: a plain image for it, tagged and pushed as usual.
    pub(crate) fn alone(p: &Platform) -> Self {
        Target { platform: p.clone(), in_index: false }
    }
}

/// `--platform linux/amd64,linux/arm64[,…]`: each `OS/ARCH[/VARIANT]`, no duplicates.
pub fn parse_platforms(list: &str) -> Result<Vec<Platform>> {
    let mut out: Vec<Platform> = Vec::new();
    for item in list.split(',').map(str::trim) {
        if item.is_empty() {
            bail!("--platform {list:?}: an empty entry (expected OS/ARCH[/VARIANT],…)");
        }
        let p = Platform::parse(item).with_context(|| format!("--platform {list:?}"))?;
        let valid = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
        if ![&p.os, &p.architecture].into_iter().chain(p.variant.as_ref()).all(|s| valid(s)) {
            bail!("--platform {list:?}: {item:?} is not OS/ARCH[/VARIANT] of letters, digits, '.', '_' and '-'");
        }
        if out.contains(&p) {
            bail!("--platform {list:?} names {p} twice");
        }
        out.push(p);
    }
    Ok(out)
}

/// The hook environment of a target, as BuildKit sets it for a Dockerfile's `ARG`s:
/// `TARGETVARIANT` is empty without a variant.
pub(crate) fn target_env(p: &Platform) -> [(String, String); 4] {
    [
        ("TARGETPLATFORM".into(), p.to_string()),
        ("TARGETOS".into(), p.os.clone()),
        ("TARGETARCH".into(), p.architecture.clone()),
        ("TARGETVARIANT".into(), p.variant.clone().unwrap_or_default()),
    ]
}

/// `Err(why)` when `img` (a runtime or previous image) is for another platform than the target;
/// a WebAssembly image suits every target.
pub(crate) fn check_image(img: &ResolvedImage, target: &Platform) -> Result<(), String> {
    let have = Platform {
        os: img.config.os.clone(),
        architecture: img.config.architecture.clone(),
        variant: img.config.extra.get("variant").and_then(|v| v.as_str()).map(String::from),
        extra: Default::default(),
    };
    if is_wasm_platform(&have) || target.matches(&have) {
        Ok(())
    } else {
        Err(format!("it is for {have}, not {target}"))
    }
}

/// Builds each platform, then writes (and pushes) the index of their images.
pub(crate) fn build(req: &BuildRequest, log: &dyn BuildLog, platforms: &[Platform]) -> Result<BuildResult, BuildError> {
    if req.push.as_ref().is_some_and(|p| p.format == Some(image::ManifestFormat::Docker)) {
        return Err(BuildError::Unsupported(
            "--format docker with several --platform values: the result is an OCI image index, pushed as it is".into(),
        ));
    }
    let results = build_each(req, log, platforms);
    let mut built = Vec::new();
    for (p, r) in platforms.iter().zip(results) {
        match r {
            Ok(r) => built.push((p, r)),
            Err(BuildError::Other(e)) => return Err(BuildError::Other(e.context(format!("building for {p}")))),
            Err(e) => {
                log.warning(&format!("the build for {p} failed; no image was written"));
                return Err(e);
            }
        }
    }
    let store = crate::image::Store::open(&req.store_root).context("opening the local image store")?;
    let mut steps = Steps::new(log);
    let digest = steps.run("Writing image index", || {
        let mut index = Index::empty();
        for (p, r) in &built {
            let bytes = store.layout().read_blob_capped(&r.digest, image::store::MAX_MANIFEST)?;
            let mut d = Descriptor::new(media::OCI_MANIFEST, r.digest.clone(), bytes.len() as u64);
            d.platform = Some((*p).clone());
            index.manifests.push(d);
        }
        Ok(match &req.tag {
            Some(tag) => store.commit_index(&index, tag)?,
            None => store.put_manifest(&serde_json::to_vec(&index).map_err(anyhow::Error::from)?, media::OCI_INDEX)?,
        })
    })?;
    let pushed = match (&req.push, &req.tag) {
        (Some(target), Some(tag)) => {
            Some(steps.run("Pushing image index", || write::push_result(req, &store, tag, target, true))?)
        }
        (Some(_), None) => return Err(anyhow!("--push needs a TAG").into()),
        _ => None,
    };
    let (index_steps, index_warnings) = steps.finish();
    let mut result = merge(built, index_steps, index_warnings);
    result.digest = digest;
    result.pushed = pushed;
    Ok(result)
}

/// Runs the stages for every platform, up to the available parallelism at once; the results
/// in the order of `platforms`.
fn build_each(req: &BuildRequest, log: &dyn BuildLog, platforms: &[Platform]) -> Vec<Result<BuildResult, BuildError>> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, platforms.len());
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<BuildResult, BuildError>>>> = platforms.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = platforms.get(i) else { break };
                let prefixed = PlatformLog { inner: log, prefix: format!("[{p}] ") };
                let target = Target { platform: p.clone(), in_index: true };
                let r = super::run_platform(req, &prefixed, Some(target));
                *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            });
        }
    });
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_else(|| Err(anyhow!("a platform build did not run").into()))
        })
        .collect()
}

/// One result for the whole build: the first platform's image fields, every platform's stages
/// and warnings named after it, then the index's.
fn merge(built: Vec<(&Platform, BuildResult)>, index_steps: Vec<StepTime>, index_warnings: Vec<String>) -> BuildResult {
    let platforms = built
        .iter()
        .map(|(p, r)| PlatformImage {
            platform: p.to_string(),
            digest: r.digest.clone(),
            config_digest: r.config_digest.clone(),
            layer_digest: r.layer_digest.clone(),
            layer_size: r.layer_size,
        })
        .collect();
    let mut steps = Vec::new();
    let mut warnings = Vec::new();
    for (p, r) in &built {
        steps.extend(r.steps.iter().map(|s| StepTime { step: format!("{} [{p}]", s.step), millis: s.millis }));
        warnings.extend(r.warnings.iter().map(|w| format!("[{p}] {w}")));
    }
    steps.extend(index_steps);
    warnings.extend(index_warnings);
    let mut first = built.into_iter().next().map(|(_, r)| r).expect("at least two platforms");
    first.steps = steps;
    first.warnings = warnings;
    first.platforms = platforms;
    first
}

/// The build log of one platform's run: its hook lines prefixed `[os/arch] `, its stages
/// named `STAGE [os/arch]`, so that interleaved parallel runs stay readable.
struct PlatformLog<'a> {
    inner: &'a dyn BuildLog,
    prefix: String,
}

impl PlatformLog<'_> {
    fn stage(&self, what: &str) -> String {
        format!("{what} [{}]", self.prefix.trim_matches(|c| c == '[' || c == ']' || c == ' '))
    }
}

impl LogSink for PlatformLog<'_> {
    fn line(&self, stream: Stream, line: &str) {
        self.inner.line(stream, &format!("{}{line}", self.prefix));
    }
    fn notice(&self, msg: &str) {
        self.inner.notice(&format!("{}{msg}", self.prefix));
    }
}

impl BuildLog for PlatformLog<'_> {
    fn step(&self, what: &str) {
        self.inner.step(&self.stage(what));
    }
    fn step_done(&self, what: &str, took: Duration) {
        self.inner.step_done(&self.stage(what), took);
    }
    fn warning(&self, msg: &str) {
        self.inner.warning(&format!("{}{msg}", self.prefix));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_lists() {
        let ps = parse_platforms("linux/amd64, linux/arm64,linux/arm/v7").unwrap();
        assert_eq!(ps.iter().map(ToString::to_string).collect::<Vec<_>>(), ["linux/amd64", "linux/arm64", "linux/arm/v7"]);
        for bad in ["", "linux/amd64,", "linux", "linux/amd64,linux/amd64", "linux/amd 64", "linux/arm/", "a/b/c/d", "linux/$x"] {
            assert!(parse_platforms(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn target_env_follows_buildkit() {
        let env = target_env(&Platform::parse("linux/arm/v7").unwrap());
        assert_eq!(env[0], ("TARGETPLATFORM".into(), "linux/arm/v7".into()));
        assert_eq!(env[2], ("TARGETARCH".into(), "arm".into()));
        assert_eq!(env[3], ("TARGETVARIANT".into(), "v7".into()));
        assert_eq!(target_env(&Platform::parse("linux/amd64").unwrap())[3].1, "");
    }
}
