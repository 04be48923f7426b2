//! `shipwright.io/v1beta1`: a ClusterBuildStrategy of one unprivileged ws2i step (upstream's
//! `source-to-image` strategy has two, the second kaniko as root with seven capabilities), the
//! Build of this build, and a BuildRun of it. The step pushes itself and reports the digest in
//! `shp-image-digest` ("strategy-managed push"). Shipwright clones the source, so `--ref` and
//! `--context-dir` become the Build's `revision` and `contextDir`.

use serde_json::{json, Value};

use super::{pod, BuildStep, StepSource};

/// The strategy is the same for every build (only the ws2i image is baked in).
pub(super) const STRATEGY: &str = "ws2i";

pub(super) fn strategy(step: &BuildStep) -> Value {
    let extra = [
        "--digest-file=$(results.shp-image-digest.path)".to_string(),
        "$(params.build-flags[*])".to_string(),
    ];
    let volumes: Vec<Value> = pod::volumes()
        .into_iter()
        .map(|mut v| {
            v["overridable"] = json!(false);
            v
        })
        .collect();
    json!({
        "apiVersion": "shipwright.io/v1beta1",
        "kind": "ClusterBuildStrategy",
        "metadata": {"name": STRATEGY, "labels": pod::labels(STRATEGY)},
        "spec": {
            "parameters": [
                {"name": "builder-image", "type": "string", "description": "The builder image, HOST/REPO[:TAG]"},
                {"name": "build-flags", "type": "array", "defaults": [],
                 "description": "More flags of ws2i build, e.g. --env=NAME=VALUE"},
            ],
            // Shipwright's clone step runs as this user too, so the build can read the clone.
            "securityContext": {"runAsUser": pod::UID, "runAsGroup": pod::UID},
            "volumes": volumes,
            "steps": [{
                "name": "build",
                "image": step.image,
                // shp-source-context may not exist yet when the step starts: not the workingDir.
                "workingDir": "$(params.shp-source-root)",
                "command": [pod::WS2I],
                "args": pod::build_args("$(params.shp-source-context)", "$(params.builder-image)", "$(params.shp-output-image)", extra),
                "env": pod::env(),
                "securityContext": pod::container_security(),
                "volumeMounts": pod::volume_mounts(),
            }],
        }
    })
}

pub(super) fn build(step: &BuildStep) -> Value {
    let mut source = match &step.source {
        StepSource::Git(url) => {
            let mut git = json!({"url": url});
            if let Some(r) = &step.git_ref {
                git["revision"] = json!(r);
            }
            json!({"type": "Git", "git": git})
        }
        // `shp build upload NAME DIR` streams the directory into the build's pod.
        StepSource::Local(_) => {
            json!({"type": "Local", "local": {"name": "local-source", "timeout": "10m"}})
        }
    };
    if let Some(c) = &step.context_dir {
        source["contextDir"] = json!(c);
    }
    let flags: Vec<Value> = step.flags.iter().map(|f| json!({"value": f})).collect();
    json!({
        "apiVersion": "shipwright.io/v1beta1",
        "kind": "Build",
        "metadata": {"name": step.name, "labels": pod::labels(&step.name)},
        "spec": {
            "source": source,
            "strategy": {"name": STRATEGY, "kind": "ClusterBuildStrategy"},
            "paramValues": [
                {"name": "builder-image", "value": step.builder.to_string()},
                {"name": "build-flags", "values": flags},
            ],
            "output": {"image": step.output.to_string()},
        }
    })
}

pub(super) fn build_run(step: &BuildStep) -> Value {
    json!({
        "apiVersion": "shipwright.io/v1beta1",
        "kind": "BuildRun",
        "metadata": {"name": format!("{}-1", step.name), "labels": pod::labels(&step.name)},
        "spec": {"build": {"name": step.name}},
    })
}
