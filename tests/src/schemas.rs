//! The vendored schemas every manifest of examples/ and of `ws2i generate` is checked against:
//! Kubernetes 1.37 (tests/fixtures/kubernetes), Tekton and Shipwright CRDs (tests/fixtures/crds).
//! All strict: an unknown field is an error, as with the API server's `fieldValidation=Strict`.

use std::path::Path;

use serde_json::Value;

use crate::workspace_root;

/// The vendored schema file for a manifest's apiVersion and kind.
fn schema_file(doc: &Value) -> &'static str {
    match (doc["apiVersion"].as_str(), doc["kind"].as_str()) {
        (Some("node.k8s.io/v1"), Some("RuntimeClass")) => "kubernetes/runtimeclass-node-v1.json",
        (Some("apps/v1"), Some("Deployment")) => "kubernetes/deployment-apps-v1.json",
        (Some("v1"), Some("Service")) => "kubernetes/service-v1.json",
        (Some("batch/v1"), Some("Job")) => "kubernetes/job-batch-v1.json",
        (Some("v1"), Some("ConfigMap")) => "kubernetes/configmap-v1.json",
        (Some("tekton.dev/v1"), Some("Task")) => "crds/tekton/task-v1.json",
        (Some("tekton.dev/v1"), Some("TaskRun")) => "crds/tekton/taskrun-v1.json",
        (Some("tekton.dev/v1"), Some("Pipeline")) => "crds/tekton/pipeline-v1.json",
        (Some("tekton.dev/v1"), Some("PipelineRun")) => "crds/tekton/pipelinerun-v1.json",
        (Some("shipwright.io/v1beta1"), Some("ClusterBuildStrategy")) => {
            "crds/shipwright/clusterbuildstrategy-v1beta1.json"
        }
        (Some("shipwright.io/v1beta1"), Some("Build")) => "crds/shipwright/build-v1beta1.json",
        (Some("shipwright.io/v1beta1"), Some("BuildRun")) => {
            "crds/shipwright/buildrun-v1beta1.json"
        }
        other => panic!("no vendored schema for {other:?}"),
    }
}

/// Every violation of its schema in `doc`, as `PATH: message`.
pub fn errors(doc: &Value) -> Vec<String> {
    let path = workspace_root()
        .join("tests/fixtures")
        .join(schema_file(doc));
    let schema: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let v =
        jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    v.iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Every YAML document of a text (a `---` stream).
pub fn yaml_docs(text: &str, what: &Path) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", what.display())))
        .filter(|v| !v.is_null())
        .collect()
}

/// Every YAML document of every `*.yaml` file of `dir`, with its file name, files sorted.
pub fn yaml_dir(dir: &Path) -> Vec<(String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "yaml" || e == "yml"))
    {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        out.extend(
            yaml_docs(&std::fs::read_to_string(f).unwrap(), f)
                .into_iter()
                .map(|d| (name.clone(), d)),
        );
    }
    out
}
