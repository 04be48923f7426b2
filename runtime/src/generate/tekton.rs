//! A `tekton.dev/v1` Task with one ws2i step, shaped like the catalog's `s2i` Task (a `source`
//! workspace, `IMAGE`, `BUILDER_IMAGE`, the `IMAGE_DIGEST` result) but one unprivileged step
//! where the catalog's has a second, privileged buildah one; and the TaskRun of this build.

use serde_json::{json, Value};

use super::{pod, BuildStep, StepSource};

/// The Task is the same for every build (only the ws2i image is baked in): one per cluster.
pub(super) const TASK: &str = "ws2i-build";

pub(super) fn task(step: &BuildStep) -> Value {
    let extra = [
        "--digest-file=$(results.IMAGE_DIGEST.path)".to_string(),
        "$(params.BUILD_FLAGS[*])".to_string(),
    ];
    json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "Task",
        "metadata": {"name": TASK, "labels": pod::labels(TASK)},
        "spec": {
            "description": "Builds SOURCE with an S2I builder whose hooks run as WebAssembly (ws2i build) and pushes the result to IMAGE. Unprivileged: no root, no capabilities.",
            "params": [
                {"name": "SOURCE", "type": "string", "default": ".",
                 "description": "A git URL, or a directory of the source workspace ('.' is its root)"},
                {"name": "BUILDER_IMAGE", "type": "string", "description": "The builder image, HOST/REPO[:TAG]"},
                {"name": "IMAGE", "type": "string", "description": "Where the result is pushed, HOST/REPO[:TAG]"},
                {"name": "BUILD_FLAGS", "type": "array", "default": [],
                 "description": "More flags of ws2i build, e.g. --env=NAME=VALUE"},
            ],
            "workspaces": [
                {"name": "source", "readOnly": true, "description": "The source (ignored when SOURCE is a git URL)"},
            ],
            "results": [
                {"name": "IMAGE_DIGEST", "type": "string", "description": "Digest of the pushed image"},
            ],
            "volumes": pod::volumes(),
            "steps": [{
                "name": "build",
                "image": step.image,
                "workingDir": "$(workspaces.source.path)",
                // Explicit: otherwise Tekton must look the entrypoint up in the registry.
                "command": [pod::WS2I],
                "args": pod::build_args("$(params.SOURCE)", "$(params.BUILDER_IMAGE)", "$(params.IMAGE)", extra),
                "env": pod::env(),
                "securityContext": pod::container_security(),
                "volumeMounts": pod::volume_mounts(),
            }],
        }
    })
}

pub(super) fn task_run(step: &BuildStep) -> Value {
    let (source, workspace) = match &step.source {
        StepSource::Git(url) => (url.clone(), json!({"name": "source", "emptyDir": {}})),
        // Tekton binds no host paths: the directory's content goes into a claim first.
        StepSource::Local(_) => (
            ".".to_string(),
            json!({"name": "source", "persistentVolumeClaim": {"claimName": format!("{}-source", step.name)}}),
        ),
    };
    let flags: Vec<String> = step
        .source_flags()
        .into_iter()
        .chain(step.flags.iter().cloned())
        .collect();
    json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "TaskRun",
        "metadata": {"name": step.name, "labels": pod::labels(&step.name)},
        "spec": {
            "taskRef": {"name": TASK, "kind": "Task"},
            "params": [
                {"name": "SOURCE", "value": source},
                {"name": "BUILDER_IMAGE", "value": step.builder.to_string()},
                {"name": "IMAGE", "value": step.output.to_string()},
                {"name": "BUILD_FLAGS", "value": flags},
            ],
            "workspaces": [workspace],
            "podTemplate": {
                "securityContext": pod::pod_security(),
                "automountServiceAccountToken": false,
            },
        }
    })
}
