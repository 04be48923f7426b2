//! `ws2i generate tekton-pipeline -f FILE`: OKD BuildConfigs and ImageStreams as one Tekton
//! Pipeline, so that a chain built locally by `ws2i apply` builds the same way on a cluster.
//!
//! Each BuildConfig becomes a pipeline task whose pod runs the *same* code as a local build: it
//! applies that BuildConfig to the pod's own (empty) pipeline database and runs
//! `ws2i start-build BC --wait`, so the strategy, the git source, `images[].paths`, the inline
//! Dockerfile, env and labels mean exactly what they mean locally. What changes is only where
//! images live:
//! - a stream tag another BuildConfig of the file builds is that task's pushed image, pinned by
//!   the digest it reports (`$(tasks.T.results.IMAGE_DIGEST)`): OKD freezes a Build's inputs
//!   the same way, and the ImageChange trigger becomes the task's `runAfter`;
//! - a stream tag the ImageStream imports (`spec.tags[].from` a `DockerImage`) is that image;
//! - every input is pulled into the pod's store first (a `pull-N` step), and the BuildConfig
//!   the pod applies names it there;
//! - the result is pushed to `REGISTRY/NAMESPACE/STREAM:TAG` (OKD's integrated registry layout),
//!   and its digest is the task's and the Pipeline's result.
//!
//! The BuildConfigs travel in a ConfigMap (one key per BuildConfig) mounted into the pods.
//! Triggers are dropped from the copies the pods apply: on the cluster the Pipeline's order
//! replaces them, and re-running on a new commit is Tekton Triggers' job.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::pod;
use crate::pipeline::load::{Loaded, Object};
use crate::pipeline::objects::{
    BuildConfig, ImageStream, ObjectReference, RefKind, DEFAULT_NAMESPACE,
};

/// Where the ConfigMap of BuildConfigs is mounted in each pod.
const CONFIG_DIR: &str = "/ws2i-config";

/// What `ws2i generate tekton-pipeline` was asked for.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Name of the Pipeline (and the prefix of the ConfigMap and PipelineRun).
    pub name: String,
    /// `HOST[:PORT][/PREFIX]`: where the streams' images are pushed and pulled.
    pub registry: String,
    /// The ws2i image every step runs.
    pub image: String,
}

/// Why the objects cannot become a Pipeline; every message names the object and field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PipelineError {
    #[error("no BuildConfig in the files: a Pipeline needs at least one")]
    Empty,
    #[error("--name {0:?} is not a DNS label (lowercase letters, digits and '-', at most 52)")]
    BadName(String),
    #[error("--registry {0:?} must be HOST[:PORT][/PREFIX], without a scheme")]
    BadRegistry(String),
    #[error("buildconfig/{bc}: {field}: {message}")]
    Field {
        bc: String,
        field: String,
        message: String,
    },
    #[error("the BuildConfigs {0} build each other's inputs in a cycle: a Pipeline has an order")]
    Cycle(String),
    #[error("buildconfig/{0} and buildconfig/{1} both become pipeline task {2:?}: rename one")]
    NameClash(String, String, String),
}

/// One BuildConfig as a pipeline task.
struct TaskPlan {
    task: String,
    bc: BuildConfig,
    /// The images the pod pulls first: (pull reference, local name the BuildConfig uses).
    inputs: Vec<(String, String)>,
    /// Tasks whose images this one reads.
    after: BTreeSet<String>,
    /// The store name of the result in the pod, and where it is pushed (without `docker://`).
    local_output: String,
    pushed: String,
}

/// The ConfigMap, the Pipeline and a PipelineRun of it, in the order they are applied, plus
/// warnings (images the registry must already hold).
pub fn manifests(
    loaded: &Loaded,
    opts: &PipelineOptions,
) -> Result<(Vec<Value>, Vec<String>), PipelineError> {
    if !super::is_dns_label(&opts.name) {
        return Err(PipelineError::BadName(opts.name.clone()));
    }
    let registry = opts.registry.trim_end_matches('/');
    if registry.is_empty() || registry.contains("://") || registry.contains(char::is_whitespace) {
        return Err(PipelineError::BadRegistry(opts.registry.clone()));
    }
    let streams: Vec<&ImageStream> = loaded
        .objects
        .iter()
        .filter_map(|o| match o {
            Object::ImageStream(s) => Some(s),
            _ => None,
        })
        .collect();
    let bcs: Vec<&BuildConfig> = loaded
        .objects
        .iter()
        .filter_map(|o| match o {
            Object::BuildConfig(b) => Some(b),
            _ => None,
        })
        .collect();
    if bcs.is_empty() {
        return Err(PipelineError::Empty);
    }
    let mut plans = Vec::new();
    let mut warnings = Vec::new();
    let producers = producers(&bcs)?;
    for bc in &bcs {
        plans.push(plan(bc, &streams, &producers, registry, &mut warnings)?);
    }
    let order = order(&plans)?;
    let plans: Vec<&TaskPlan> = order.iter().map(|&i| &plans[i]).collect();
    let config = format!("{}-buildconfigs", opts.name);
    let docs = vec![
        config_map(&config, &plans),
        pipeline(opts, &config, &plans),
        pipeline_run(opts),
    ];
    Ok((docs, warnings))
}

/// Stream tags (`NS/IS:TAG`) the BuildConfigs build, to the pipeline task that builds each.
fn producers(bcs: &[&BuildConfig]) -> Result<BTreeMap<String, String>, PipelineError> {
    let mut tasks: BTreeMap<String, String> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for bc in bcs {
        let task = task_name(&bc.metadata.name);
        if !super::is_dns_label(&task) {
            return Err(PipelineError::Field {
                bc: bc.metadata.name.clone(),
                field: "metadata.name".into(),
                message: "too long for a pipeline task name (a DNS label of at most 52)".into(),
            });
        }
        if let Some(other) = tasks.insert(task.clone(), bc.metadata.name.clone()) {
            return Err(PipelineError::NameClash(other, bc.metadata.name.clone(), task));
        }
        if let Some(to) = &bc.spec.common.output.to {
            if to.kind == RefKind::ImageStreamTag {
                let ns = to.namespace.as_deref().unwrap_or(bc.metadata.namespace());
                out.insert(format!("{ns}/{}", to.name), task);
            }
        }
    }
    Ok(out)
}

/// A BuildConfig name as a pipeline task name (a DNS label: OKD's names may hold dots).
fn task_name(bc: &str) -> String {
    bc.replace('.', "-")
}

fn plan(
    bc: &BuildConfig,
    streams: &[&ImageStream],
    producers: &BTreeMap<String, String>,
    registry: &str,
    warnings: &mut Vec<String>,
) -> Result<TaskPlan, PipelineError> {
    let name = bc.metadata.name.clone();
    let ns = bc.metadata.namespace().to_string();
    let task = task_name(&name);
    let err = |field: &str, message: String| PipelineError::Field {
        bc: name.clone(),
        field: field.to_string(),
        message,
    };
    let src = &bc.spec.common.source;
    if src.binary.is_some() {
        return Err(err("spec.source.binary", "a binary build's source is uploaded by `start-build --from-dir`, which a Pipeline cannot do: give a git source".into()));
    }
    if !src.secrets.is_empty() || !src.config_maps.is_empty() || src.source_secret.is_some() {
        return Err(err("spec.source.secrets", "secrets and config maps are not carried into the pods; mount them into the Task yourself".into()));
    }
    if let Some(git) = src.git.as_ref().filter(|g| g.uri.starts_with("file://")) {
        warnings.push(format!(
            "buildconfig/{name}: spec.source.git.uri {:?} is a path of this machine, which a pod cannot clone: give a URL the cluster reaches",
            git.uri
        ));
    }
    let docker_without_from = bc.spec.common.strategy.docker_strategy.as_ref().is_some_and(|d| d.from.is_none());
    let from_lines_pullable = src.dockerfile.as_deref().is_some_and(|text| {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("FROM ").or_else(|| l.trim().strip_prefix("from ")))
            .filter_map(|rest| rest.split_whitespace().next())
            .all(|image| image == "scratch" || image.contains("://"))
    });
    if docker_without_from && !from_lines_pullable {
        warnings.push(format!(
            "buildconfig/{name}: spec.strategy.dockerStrategy.from is not set, so the Dockerfile's FROM images are used as written: in a pod they must be docker://… references the pod can pull"
        ));
    }
    let mut out = bc.clone();
    out.spec.triggers.clear();
    out.status = Default::default();
    let mut inputs = Vec::new();
    let mut after = BTreeSet::new();
    let mut take = |field: &str, r: &mut ObjectReference| -> Result<(), PipelineError> {
        let (pull, from) = resolve(r, &ns, streams, producers, registry)
            .map_err(|m| err(field, m))?;
        if let Some(t) = from {
            if t != task {
                after.insert(t);
            }
        }
        if let Some(w) = pull.warning {
            warnings.push(format!("buildconfig/{name}: {field}: {w}"));
        }
        let local = format!("ws2i-input/{}:{}", task, inputs.len());
        inputs.push((pull.reference, local.clone()));
        *r = ObjectReference::docker(&local);
        Ok(())
    };
    if let Some(from) = out.spec.common.strategy_from_mut() {
        take("spec.strategy.from", from)?;
    }
    for (i, img) in out.spec.common.source.images.iter_mut().enumerate() {
        take(&format!("spec.source.images[{i}].from"), &mut img.from)?;
    }
    let to = out
        .spec
        .common
        .output
        .to
        .clone()
        .ok_or_else(|| err("spec.output.to", "a task without an output has nothing to push".into()))?;
    let (local_output, pushed) = match to.kind {
        RefKind::ImageStreamTag => {
            let ns = to.namespace.as_deref().unwrap_or(&ns);
            (
                ImageStream::repository(ns, &to.name),
                format!("{registry}/{ns}/{}", to.name),
            )
        }
        RefKind::DockerImage if !to.name.contains("://") => {
            (to.name.clone(), format!("{registry}/{}", to.name))
        }
        _ => {
            return Err(err(
                "spec.output.to",
                format!("{to} cannot be pushed from a pod: give an ImageStreamTag"),
            ))
        }
    };
    Ok(TaskPlan {
        task,
        bc: out,
        inputs,
        after,
        local_output,
        pushed,
    })
}

/// Where a pod pulls an input from.
struct Pull {
    reference: String,
    warning: Option<String>,
}

/// An input reference as a pull reference, and the task that builds it if one does.
fn resolve(
    r: &ObjectReference,
    ns: &str,
    streams: &[&ImageStream],
    producers: &BTreeMap<String, String>,
    registry: &str,
) -> Result<(Pull, Option<String>), String> {
    let ns = r.namespace.as_deref().unwrap_or(ns);
    let pull = |reference: String| Pull {
        reference,
        warning: None,
    };
    match r.kind {
        RefKind::DockerImage => Ok((docker(&r.name, registry), None)),
        RefKind::ImageStreamImage => {
            let (is, digest) = r.name.split_once('@').ok_or("expected STREAM@sha256:…")?;
            Ok((pull(format!("docker://{registry}/{ns}/{is}@{digest}")), None))
        }
        RefKind::ImageStreamTag => {
            let key = format!("{ns}/{}", r.name);
            if let Some(task) = producers.get(&key) {
                let (is, _) = r.name.split_once(':').unwrap_or((&r.name, "latest"));
                let reference =
                    format!("docker://{registry}/{ns}/{is}@$(tasks.{task}.results.IMAGE_DIGEST)");
                return Ok((pull(reference), Some(task.clone())));
            }
            let (is, tag) = r.name.split_once(':').unwrap_or((&r.name, "latest"));
            let spec = streams
                .iter()
                .find(|s| s.metadata.name == is && s.metadata.namespace() == ns)
                .and_then(|s| s.spec_tag(tag))
                .and_then(|t| t.from.clone());
            match spec {
                Some(f) if f.kind == RefKind::DockerImage => Ok((docker(&f.name, registry), None)),
                // An alias (`from` another tag): follow it, boundedly (OKD allows no loops either).
                Some(f) if f.kind == RefKind::ImageStreamTag && f.name != r.name => {
                    let mut next = f;
                    next.namespace.get_or_insert_with(|| ns.to_string());
                    if streams.len() > 64 {
                        return Err("too many streams to follow tag aliases".into());
                    }
                    resolve(&next, ns, streams, producers, registry)
                }
                _ => Err(format!(
                    "stream tag {ns}/{}: no BuildConfig here builds it and its ImageStream does not import it (spec.tags[].from a DockerImage), so a pod, whose store starts empty, has nothing to pull",
                    r.name
                )),
            }
        }
    }
}

/// A `DockerImage` name as a pull reference: `docker://…` as it is; a local store name (what it
/// means in a local `ws2i apply`) is looked for in the registry, with a warning to push it there.
fn docker(name: &str, registry: &str) -> Pull {
    if name.contains("://") {
        return Pull {
            reference: name.to_string(),
            warning: None,
        };
    }
    let reference = format!("docker://{registry}/{name}");
    Pull {
        warning: Some(format!(
            "{name:?} is a local store image; the pods pull {reference}: push it there first (`ws2i push {name} {reference}`)"
        )),
        reference,
    }
}

/// The plans in an order where each comes after the ones it reads (Kahn; stable by file order).
fn order(plans: &[TaskPlan]) -> Result<Vec<usize>, PipelineError> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    while out.len() < plans.len() {
        let ready: Vec<usize> = (0..plans.len())
            .filter(|i| !out.contains(i))
            .filter(|&i| plans[i].after.iter().all(|a| done.contains(a.as_str())))
            .collect();
        if ready.is_empty() {
            let stuck: Vec<String> = (0..plans.len())
                .filter(|i| !out.contains(i))
                .map(|i| format!("buildconfig/{}", plans[i].bc.metadata.name))
                .collect();
            return Err(PipelineError::Cycle(stuck.join(", ")));
        }
        for i in ready {
            done.insert(&plans[i].task);
            out.push(i);
        }
    }
    Ok(out)
}

/// The ConfigMap key of a task's BuildConfig.
fn config_key(task: &str) -> String {
    format!("{task}.json")
}

fn config_map(name: &str, plans: &[&TaskPlan]) -> Value {
    let data: BTreeMap<String, String> = plans
        .iter()
        .map(|p| {
            // The output stream must exist for the pod's `ws2i apply`; nothing else is needed.
            let stream = p.bc.spec.common.output.to.as_ref().and_then(|to| {
                (to.kind == RefKind::ImageStreamTag).then(|| {
                    let is = to.name.split(':').next().unwrap_or_default();
                    let ns = to.namespace.as_deref().or(p.bc.metadata.namespace.as_deref());
                    let mut meta = json!({"name": is});
                    if let Some(ns) = ns.filter(|n| *n != DEFAULT_NAMESPACE) {
                        meta["namespace"] = json!(ns);
                    }
                    json!({"apiVersion": "image.openshift.io/v1", "kind": "ImageStream", "metadata": meta})
                })
            });
            let mut items: Vec<Value> = stream.into_iter().collect();
            items.push(serde_json::to_value(&p.bc).expect("a BuildConfig serialises"));
            let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
            (config_key(&p.task), serde_json::to_string_pretty(&list).expect("JSON") + "\n")
        })
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": pod::labels(name)},
        "data": data,
    })
}

/// One ws2i step of a task: unprivileged, the store on the pod's volume.
fn step(name: &str, image: &str, args: Vec<String>, config: bool) -> Value {
    let mut mounts = pod::volume_mounts();
    if config {
        mounts.push(json!({"name": "buildconfigs", "mountPath": CONFIG_DIR, "readOnly": true}));
    }
    json!({
        "name": name,
        "image": image,
        "command": [pod::WS2I],
        "args": args,
        "env": pod::env(),
        "securityContext": pod::container_security(),
        "volumeMounts": mounts,
    })
}

fn pipeline_task(opts: &PipelineOptions, config: &str, p: &TaskPlan) -> Value {
    let s = |v: &str| v.to_string();
    let mut params = vec![json!({"name": "IMAGE", "value": p.pushed})];
    let mut param_specs = vec![
        json!({"name": "IMAGE", "type": "string", "description": "Where the result is pushed, HOST/REPO:TAG"}),
    ];
    let mut steps = Vec::new();
    for (i, (reference, local)) in p.inputs.iter().enumerate() {
        let param = format!("INPUT_{i}");
        params.push(json!({"name": param, "value": reference}));
        param_specs.push(json!({"name": param, "type": "string", "description": format!("Pulled into the pod's store as {local}")}));
        steps.push(step(
            &format!("pull-{i}"),
            &opts.image,
            vec![s("--quiet"), s("copy"), format!("$(params.{param})"), local.clone()],
            false,
        ));
    }
    let ns = p.bc.metadata.namespace().to_string();
    steps.push(step(
        "apply",
        &opts.image,
        vec![s("apply"), s("-f"), format!("{CONFIG_DIR}/{}", config_key(&p.task))],
        true,
    ));
    steps.push(step(
        "build",
        &opts.image,
        vec![s("start-build"), p.bc.metadata.name.clone(), s("--wait"), format!("--namespace={ns}")],
        false,
    ));
    steps.push(step(
        "push",
        &opts.image,
        vec![
            s("push"),
            p.local_output.clone(),
            s("docker://$(params.IMAGE)"),
            s("--digest-file=$(results.IMAGE_DIGEST.path)"),
        ],
        false,
    ));
    let mut volumes = pod::volumes();
    volumes.push(json!({"name": "buildconfigs", "configMap": {"name": config}}));
    let mut task = json!({
        "name": p.task,
        "params": params,
        "taskSpec": {
            "description": format!("buildconfig/{}: ws2i start-build in the pod, then a push", p.bc.metadata.name),
            "params": param_specs,
            "results": [{"name": "IMAGE_DIGEST", "type": "string", "description": "Digest of the pushed image"}],
            "volumes": volumes,
            "steps": steps,
        },
    });
    if !p.after.is_empty() {
        task["runAfter"] = json!(p.after);
    }
    task
}

fn pipeline(opts: &PipelineOptions, config: &str, plans: &[&TaskPlan]) -> Value {
    let tasks: Vec<Value> = plans
        .iter()
        .map(|p| pipeline_task(opts, config, p))
        .collect();
    let results: Vec<Value> = plans
        .iter()
        .map(|p| {
            json!({
                "name": format!("{}-IMAGE_DIGEST", p.task),
                "type": "string",
                "description": format!("Digest of {}", p.pushed),
                "value": format!("$(tasks.{}.results.IMAGE_DIGEST)", p.task),
            })
        })
        .collect();
    json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "Pipeline",
        "metadata": {"name": opts.name, "labels": pod::labels(&opts.name)},
        "spec": {
            "description": "OKD BuildConfigs run by ws2i, one unprivileged task each, in the order their images chain (ws2i generate tekton-pipeline)",
            "tasks": tasks,
            "results": results,
        }
    })
}

fn pipeline_run(opts: &PipelineOptions) -> Value {
    json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"generateName": format!("{}-", opts.name), "labels": pod::labels(&opts.name)},
        "spec": {
            "pipelineRef": {"name": opts.name},
            "taskRunTemplate": {
                "podTemplate": {
                    "securityContext": pod::pod_security(),
                    "automountServiceAccountToken": false,
                },
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::load::load_str;

    const CHAIN: &str = r#"
apiVersion: image.openshift.io/v1
kind: ImageStream
metadata: {name: go}
spec:
  tags:
  - name: latest
    from: {kind: DockerImage, name: "docker://quay.example/ws2i/go:1"}
---
apiVersion: image.openshift.io/v1
kind: ImageStream
metadata: {name: app}
---
apiVersion: image.openshift.io/v1
kind: ImageStream
metadata: {name: runtime}
---
apiVersion: build.openshift.io/v1
kind: BuildConfig
metadata: {name: runtime}
spec:
  source:
    dockerfile: "FROM scratch\nCOPY app /app\n"
    images:
    - from: {kind: ImageStreamTag, name: "app:latest"}
      paths: [{sourcePath: /opt/app-root/app, destinationDir: "."}]
  strategy: {type: Docker, dockerStrategy: {}}
  output: {to: {kind: ImageStreamTag, name: "runtime:latest"}}
  triggers: [{type: ImageChange, imageChange: {from: {kind: ImageStreamTag, name: "app:latest"}}}]
---
apiVersion: build.openshift.io/v1
kind: BuildConfig
metadata: {name: app}
spec:
  source: {git: {uri: "https://git.example/app.git"}}
  strategy: {type: Source, sourceStrategy: {from: {kind: ImageStreamTag, name: "go:latest"}}}
  output: {to: {kind: ImageStreamTag, name: "app:latest"}}
  triggers: [{type: ConfigChange}]
"#;

    fn opts() -> PipelineOptions {
        PipelineOptions {
            name: "chain".into(),
            registry: "reg.example:5000".into(),
            image: "ws2i/ws2i:1".into(),
        }
    }

    #[test]
    fn a_chain_runs_in_the_order_its_images_flow_with_inputs_pinned_by_digest() {
        let loaded = load_str(CHAIN, "chain.yaml").unwrap();
        let (docs, warnings) = manifests(&loaded, &opts()).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["ConfigMap", "Pipeline", "PipelineRun"]);
        let tasks = docs[1]["spec"]["tasks"].as_array().unwrap();
        let names: Vec<&str> = tasks.iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["app", "runtime"], "the app first, though the file lists it last");
        assert_eq!(tasks[1]["runAfter"], json!(["app"]));
        let input = &tasks[1]["params"][1]["value"];
        assert_eq!(input, "docker://reg.example:5000/default/app@$(tasks.app.results.IMAGE_DIGEST)");
        assert_eq!(tasks[0]["params"][1]["value"], "docker://quay.example/ws2i/go:1");
        assert_eq!(tasks[0]["params"][0]["value"], "reg.example:5000/default/app:latest");
        // The pod applies a trigger-less copy whose inputs are the pulled local images.
        let applied: Value =
            serde_json::from_str(docs[0]["data"]["runtime.json"].as_str().unwrap()).unwrap();
        let bc = &applied["items"][1];
        assert!(bc["spec"]["triggers"].as_array().is_none_or(|t| t.is_empty()), "{bc:#}");
        assert_eq!(bc["spec"]["source"]["images"][0]["from"]["name"], "ws2i-input/runtime:0");
        assert_eq!(applied["items"][0]["metadata"]["name"], "runtime");
        let steps: Vec<&str> = tasks[1]["taskSpec"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(steps, ["pull-0", "apply", "build", "push"]);
    }

    #[test]
    fn what_a_pod_cannot_reach_is_refused_naming_the_field() {
        let unbuilt = CHAIN.replace("from: {kind: DockerImage, name: \"docker://quay.example/ws2i/go:1\"}", "reference: true");
        let e = manifests(&load_str(&unbuilt, "x.yaml").unwrap(), &opts()).unwrap_err();
        assert!(
            matches!(&e, PipelineError::Field { bc, field, .. } if bc == "app" && field == "spec.strategy.from"),
            "{e}"
        );
        let local = CHAIN.replace("docker://quay.example/ws2i/go:1", "ws2i/go:latest");
        let (_, warnings) = manifests(&load_str(&local, "x.yaml").unwrap(), &opts()).unwrap();
        assert!(warnings[0].contains("ws2i push ws2i/go:latest docker://reg.example:5000/ws2i/go:latest"), "{warnings:?}");
        let mut bad = opts();
        bad.registry = "https://reg".into();
        assert!(matches!(manifests(&load_str(CHAIN, "x").unwrap(), &bad), Err(PipelineError::BadRegistry(_))));
        let streams_only = "apiVersion: image.openshift.io/v1\nkind: ImageStream\nmetadata: {name: a}\n";
        assert_eq!(manifests(&load_str(streams_only, "x").unwrap(), &opts()).unwrap_err(), PipelineError::Empty);
    }

    #[test]
    fn a_cycle_is_named() {
        let cyc = CHAIN.replace("name: \"go:latest\"", "name: \"runtime:latest\"");
        let e = manifests(&load_str(&cyc, "x").unwrap(), &opts()).unwrap_err();
        assert!(matches!(&e, PipelineError::Cycle(s) if s.contains("buildconfig/app") && s.contains("buildconfig/runtime")), "{e}");
    }
}
