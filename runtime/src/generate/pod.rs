//! What every engine's step container shares: the ws2i command, an unprivileged security
//! context, and the store, cache and temporary directory on emptyDir volumes (the root
//! filesystem is read-only).

use serde_json::{json, Value};

/// The user the step runs as: the `USER` of ws2i's image (scripts/ws2i-image), and the uid
/// Shipwright recommends so that its clone step and the build step share files.
pub(super) const UID: i64 = 1000;

/// ws2i's path in its image.
pub(super) const WS2I: &str = "/ws2i";

/// Where the emptyDir of the store and cache is mounted.
const WORK: &str = "/ws2i-work";

/// No privilege of any kind: no root, no capabilities, no escalation, the runtime's default
/// seccomp profile, nothing written outside the volumes. What kaniko and buildah cannot do.
pub(super) fn container_security() -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": UID,
        "runAsGroup": UID,
        "allowPrivilegeEscalation": false,
        "privileged": false,
        "readOnlyRootFilesystem": true,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

/// The pod-level half of [`container_security`] (what a PodSecurityContext can say).
pub(super) fn pod_security() -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": UID,
        "runAsGroup": UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

/// The store and cache (one volume, so the cache's hardlinks never cross a mount) and /tmp.
pub(super) fn volumes() -> Vec<Value> {
    vec![
        json!({"name": "ws2i-work", "emptyDir": {}}),
        json!({"name": "tmp", "emptyDir": {}}),
    ]
}

pub(super) fn volume_mounts() -> Vec<Value> {
    vec![
        json!({"name": "ws2i-work", "mountPath": WORK}),
        json!({"name": "tmp", "mountPath": "/tmp"}),
    ]
}

/// ws2i finds its store and cache here instead of under a `$HOME` the pod does not have.
pub(super) fn env() -> Vec<Value> {
    vec![
        json!({"name": "WS2I_HOME", "value": format!("{WORK}/store")}),
        json!({"name": "WS2I_CACHE", "value": format!("{WORK}/cache")}),
        json!({"name": "TMPDIR", "value": "/tmp"}),
    ]
}

/// `ws2i build SOURCE docker://BUILDER docker://OUTPUT --push EXTRA…`.
pub(super) fn build_args(
    source: &str,
    builder: &str,
    output: &str,
    extra: impl IntoIterator<Item = String>,
) -> Vec<String> {
    let mut args = vec![
        "build".to_string(),
        source.to_string(),
        format!("docker://{builder}"),
        format!("docker://{output}"),
        "--push".to_string(),
    ];
    args.extend(extra);
    args
}

/// The standard labels of everything generated.
pub(super) fn labels(name: &str) -> Value {
    json!({
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/managed-by": "ws2i",
    })
}
