//! `ws2i generate`: the manifests that run one `ws2i build` as an unprivileged step of an
//! existing engine: a Kubernetes Job, a Tekton Task (+ TaskRun), a Shipwright
//! ClusterBuildStrategy (+ Build + BuildRun). docs/scale-out.md is the contract.
//!
//! The input is a validated [`BuildRequest`] (so every flag was checked exactly as `ws2i build`
//! checks it) plus the build flags as typed, which the step passes on verbatim. A build in a pod
//! starts from an empty store on an emptyDir, so what it reads and writes must be reachable from
//! there: the builder and the result are registry references, and nothing names a host path
//! except a local SOURCE (mounted as the engine's source volume).
//!
//! [`tekton_pipeline`] turns OKD BuildConfigs into a Tekton Pipeline whose pods run
//! `ws2i start-build` on them.
//!
//! This module sits above the S2I request types and the pipeline model, and below the CLI;
//! nothing lower imports it.

mod job;
mod pod;
mod shipwright;
mod tekton;
pub mod tekton_pipeline;

use std::path::PathBuf;

use serde_json::Value;

use crate::s2i::BuildRequest;
use crate::image::DockerRef;
use crate::source::SourceLocation;

/// The engine a manifest is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// `batch/v1` Job.
    Job,
    /// `tekton.dev/v1` Task and the TaskRun that runs it.
    TektonTask,
    /// `shipwright.io/v1beta1` ClusterBuildStrategy, Build and BuildRun.
    ShipwrightStrategy,
}

/// Where the step reads the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepSource {
    /// A git URL the step clones itself (Job, Tekton) or the engine clones (Shipwright).
    Git(String),
    /// A directory on the machine running `ws2i generate`: the Job mounts it (hostPath), Tekton
    /// expects it in the `source` workspace, Shipwright as a `Local` source (`shp build upload`).
    Local(PathBuf),
}

/// One `ws2i build` as a step: everything a manifest needs, already validated.
#[derive(Debug, Clone)]
pub struct BuildStep {
    /// Name of the generated objects (a DNS label).
    pub name: String,
    /// The ws2i image the step runs (`ws2i/ws2i:VERSION` by default).
    pub image: String,
    pub source: StepSource,
    /// `--ref`, kept apart because Shipwright resolves it (`spec.source.git.revision`).
    pub git_ref: Option<String>,
    /// `--context-dir`, kept apart because Shipwright resolves it (`spec.source.contextDir`).
    pub context_dir: Option<String>,
    /// The builder, a registry reference (without `docker://`).
    pub builder: DockerRef,
    /// Where the result is pushed (without `docker://`).
    pub output: DockerRef,
    /// The other flags of `ws2i build`, as typed (`--name=value` or `--switch`).
    pub flags: Vec<String>,
}

/// Why a build cannot become a step.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GenerateError {
    #[error("BUILDER {0:?} must be a registry reference docker://HOST/REPO[:TAG]: the step's store starts empty")]
    LocalBuilder(String),
    #[error("TAG must be docker://HOST/REPO[:TAG] with --push: the step's store is gone when its pod ends")]
    NotPushed,
    #[error("--runtime-image {0:?} must be scratch or docker://HOST/REPO[:TAG]: the step's store starts empty")]
    LocalRuntimeImage(String),
    #[error("{flag} names host paths, which a pod does not have; {instead}")]
    HostPaths {
        flag: &'static str,
        instead: &'static str,
    },
    #[error("SOURCE {0:?} is a file:// URL, a path of this machine: give the directory itself")]
    FileUrl(String),
    #[error("--name {0:?} is not a DNS label (lowercase letters, digits and '-', at most 52)")]
    BadName(String),
}

/// Longest generated name: leaves room for the suffixes Kubernetes and the engines add
/// (a Job's pods `-xxxxx`, Tekton's `-pod`, Shipwright's `-buildrun-xxxxx`) under 63.
const MAX_NAME: usize = 52;

impl BuildStep {
    /// The step for a validated request. `flags` are the build's flags as typed, without SOURCE,
    /// BUILDER, TAG, `--push`, `--ref` and `--context-dir` (which the request carries).
    pub fn from_request(
        req: &BuildRequest,
        flags: Vec<String>,
        name: Option<&str>,
        image: &str,
    ) -> Result<BuildStep, GenerateError> {
        let builder = docker_ref(&req.builder)
            .ok_or_else(|| GenerateError::LocalBuilder(req.builder.clone()))?;
        let output = req
            .push
            .as_ref()
            .ok_or(GenerateError::NotPushed)?
            .dest
            .clone();
        if let Some(r) = &req.runtime_image {
            if r != "scratch" && docker_ref(r).is_none() {
                return Err(GenerateError::LocalRuntimeImage(r.clone()));
            }
        }
        let paths = |flag, instead| GenerateError::HostPaths { flag, instead };
        if !req.injections.is_empty() {
            return Err(paths(
                "--inject",
                "mount a Secret and read it from the source instead",
            ));
        }
        if !req.volumes.is_empty() {
            return Err(paths("--volume", "the step's cache is its emptyDir"));
        }
        if !req.env_file.is_empty() {
            return Err(paths(
                "--environment-file",
                "give the variables with -e NAME=VALUE",
            ));
        }
        if req.keep_temp {
            return Err(paths(
                "--save-temp-dir",
                "a pod's temporary files go with it",
            ));
        }
        let source = match &req.source.location {
            SourceLocation::Git(u) if u.starts_with("file://") => {
                return Err(GenerateError::FileUrl(u.clone()))
            }
            SourceLocation::Git(u) => StepSource::Git(u.clone()),
            SourceLocation::Local(p) => {
                StepSource::Local(std::path::absolute(p).unwrap_or_else(|_| p.clone()))
            }
        };
        let name = match name {
            Some(n) if is_dns_label(n) => n.to_string(),
            Some(n) => return Err(GenerateError::BadName(n.to_string())),
            None => default_name(&output),
        };
        Ok(BuildStep {
            name,
            image: image.to_string(),
            source,
            git_ref: req.source.git_ref.clone(),
            context_dir: req
                .source
                .context_dir
                .as_ref()
                .map(|p| p.display().to_string()),
            builder,
            output,
            flags,
        })
    }

    /// `--ref` and `--context-dir` as flags, for the engines where ws2i resolves them.
    fn source_flags(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(r) = &self.git_ref {
            out.push(format!("--ref={r}"));
        }
        if let Some(c) = &self.context_dir {
            out.push(format!("--context-dir={c}"));
        }
        out
    }

    /// The engine's objects, in the order they are applied.
    pub fn manifests(&self, engine: Engine) -> Vec<Value> {
        match engine {
            Engine::Job => vec![job::job(self)],
            Engine::TektonTask => vec![tekton::task(self), tekton::task_run(self)],
            Engine::ShipwrightStrategy => vec![
                shipwright::strategy(self),
                shipwright::build(self),
                shipwright::build_run(self),
            ],
        }
    }
}

/// `docker://HOST/REPO[:TAG|@DIGEST]` without its scheme, else `None`.
fn docker_ref(s: &str) -> Option<DockerRef> {
    match s.parse::<crate::image::ImageRef>() {
        Ok(crate::image::ImageRef::Docker(d)) if s.starts_with("docker://") => Some(d),
        _ => None,
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The last path component of the pushed repository, made a DNS label (`ws2i-build` if
/// nothing of it is left).
fn default_name(output: &DockerRef) -> String {
    let last = output.repository.rsplit('/').next().unwrap_or_default();
    let mut name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(MAX_NAME);
    let name = name.trim_matches('-').to_string();
    if name.is_empty() {
        "ws2i-build".into()
    } else {
        name
    }
}

/// Several manifests as one YAML stream (`---` between documents).
pub fn to_yaml(docs: &[Value]) -> anyhow::Result<String> {
    let mut out = String::new();
    for d in docs {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(d)?);
    }
    Ok(out)
}

/// Several manifests as one JSON document: a `v1` `List`, as `kubectl get -o json` prints.
pub fn to_json(docs: &[Value]) -> anyhow::Result<String> {
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": docs});
    Ok(serde_json::to_string_pretty(&list)? + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceSpec;

    fn request(source: &str, builder: &str, tag: &str) -> BuildRequest {
        let spec = SourceSpec::new(SourceLocation::parse(source).unwrap());
        let mut req = BuildRequest::new(spec, builder, "/s".into(), "/c".into());
        let (t, push) = crate::s2i::parse_tag(tag, tag.starts_with("docker://"), None).unwrap();
        req.tag = Some(t);
        req.push = push;
        req
    }

    #[test]
    fn names_come_from_the_pushed_repository() {
        let req = request(
            "https://example.com/a.git",
            "docker://r:5000/b:1",
            "docker://r:5000/team/my_app.v2:2",
        );
        let step = BuildStep::from_request(&req, vec![], None, "i").unwrap();
        assert_eq!(step.name, "my-app-v2");
        assert_eq!(step.builder.to_string(), "r:5000/b:1");
        assert_eq!(step.output.to_string(), "r:5000/team/my_app.v2:2");
        assert!(BuildStep::from_request(&req, vec![], Some("Bad"), "i").is_err());
        assert_eq!(
            BuildStep::from_request(&req, vec![], Some("ok-1"), "i")
                .unwrap()
                .name,
            "ok-1"
        );
    }

    #[test]
    fn what_a_pod_cannot_reach_is_refused() {
        let local_builder = request(
            "https://example.com/a.git",
            "ws2i/test-builder",
            "docker://r/a",
        );
        assert!(matches!(
            BuildStep::from_request(&local_builder, vec![], None, "i"),
            Err(GenerateError::LocalBuilder(_))
        ));
        let not_pushed = request("https://example.com/a.git", "docker://r/b", "app");
        assert_eq!(
            BuildStep::from_request(&not_pushed, vec![], None, "i").unwrap_err(),
            GenerateError::NotPushed
        );
        let file_url = request("file:///src/app", "docker://r/b", "docker://r/a");
        assert!(matches!(
            BuildStep::from_request(&file_url, vec![], None, "i"),
            Err(GenerateError::FileUrl(_))
        ));
        let mut runtime = request("./app", "docker://r/b", "docker://r/a");
        runtime.runtime_image = Some("ws2i/base".into());
        assert!(BuildStep::from_request(&runtime, vec![], None, "i").is_err());
        runtime.runtime_image = Some("scratch".into());
        let step = BuildStep::from_request(&runtime, vec![], None, "i").unwrap();
        assert!(matches!(step.source, StepSource::Local(ref p) if p.is_absolute()));
    }
}
