//! A `batch/v1` Job: OKD's build pod without the build controller. The result's JSON
//! (`ws2i build -o json`) is the last line of the pod's log.

use serde_json::{json, Value};

use super::{pod, BuildStep, StepSource};

/// Where the source is, in the pod.
const SOURCE_DIR: &str = "/workspace/source";

pub(super) fn job(step: &BuildStep) -> Value {
    let mut volumes = pod::volumes();
    let mut mounts = pod::volume_mounts();
    let source = match &step.source {
        StepSource::Git(url) => url.clone(),
        StepSource::Local(dir) => {
            // The only way a pod sees a directory of this machine; read-only, as ws2i copies it.
            volumes.push(json!({"name": "source", "hostPath": {"path": dir, "type": "Directory"}}));
            mounts.push(json!({"name": "source", "mountPath": SOURCE_DIR, "readOnly": true}));
            SOURCE_DIR.to_string()
        }
    };
    let extra = ["--output=json".to_string()]
        .into_iter()
        .chain(step.source_flags())
        .chain(step.flags.iter().cloned());
    let args: Vec<String> = pod::build_args(
        &source,
        &step.builder.to_string(),
        &step.output.to_string(),
        extra,
    )
    .iter()
    .map(|a| escape(a))
    .collect();
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": step.name, "labels": pod::labels(&step.name)},
        "spec": {
            // A failed build is a new build, never a retry (as in OKD).
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": pod::labels(&step.name)},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": false,
                    "securityContext": pod::pod_security(),
                    "containers": [{
                        "name": "build",
                        "image": step.image,
                        "command": [pod::WS2I],
                        "args": args,
                        "env": pod::env(),
                        "securityContext": pod::container_security(),
                        "volumeMounts": mounts,
                    }],
                    "volumes": volumes,
                }
            }
        }
    })
}

/// Kubernetes expands `$(NAME)` in args from the container's env; `$$(` keeps it literal.
fn escape(arg: &str) -> String {
    arg.replace("$(", "$$(")
}

#[cfg(test)]
mod tests {
    #[test]
    fn variable_references_stay_literal() {
        assert_eq!(super::escape("-e=A=$(HOME)x"), "-e=A=$$(HOME)x");
        assert_eq!(super::escape("plain $HOME"), "plain $HOME");
    }
}
