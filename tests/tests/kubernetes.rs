//! examples/kubernetes against the Kubernetes JSON schemas vendored in tests/fixtures/kubernetes
//! (strict: unknown fields are errors, see ws2i_tests::schemas), and consistent with each other.

use std::path::PathBuf;

use serde_json::Value;
use ws2i_tests::schemas::{errors, yaml_dir};
use ws2i_tests::workspace_root;

fn examples() -> PathBuf {
    workspace_root().join("examples/kubernetes")
}

/// Every YAML document of every file in examples/kubernetes.
fn manifests() -> Vec<(String, Value)> {
    yaml_dir(&examples())
}

fn find<'a>(docs: &'a [(String, Value)], kind: &str) -> &'a Value {
    &docs.iter().find(|(_, d)| d["kind"] == kind).unwrap_or_else(|| panic!("no {kind} in examples/kubernetes")).1
}

#[test]
fn example_manifests_match_the_kubernetes_schemas() {
    let docs = manifests();
    assert_eq!(docs.len(), 4, "RuntimeClass, Deployment, Service, the build Job");
    for (file, doc) in &docs {
        let errs = errors(doc);
        assert!(errs.is_empty(), "{file}: {errs:#?}");
    }
}

#[test]
fn the_schemas_reject_typos_and_wrong_types() {
    let docs = manifests();
    let deployment = find(&docs, "Deployment");
    let mut typo = deployment.clone();
    typo["spec"]["template"]["spec"]["containers"][0]["containerPorts"] = serde_json::json!([{"containerPort": 8080}]);
    assert!(errors(&typo).iter().any(|e| e.contains("containerPorts")), "{:?}", errors(&typo));
    let mut typo = deployment.clone();
    typo["spec"]["template"]["spec"]["runtimeClass"] = serde_json::json!("wasmtime");
    assert!(!errors(&typo).is_empty());
    let mut wrong = deployment.clone();
    wrong["spec"]["replicas"] = serde_json::json!("two");
    assert!(!errors(&wrong).is_empty());
    let mut missing = find(&docs, "RuntimeClass").clone();
    missing.as_object_mut().unwrap().remove("handler");
    assert!(!errors(&missing).is_empty(), "handler is required");
}

#[test]
fn the_manifests_fit_together() {
    let docs = manifests();
    let rc = find(&docs, "RuntimeClass");
    let dep = find(&docs, "Deployment");
    let svc = find(&docs, "Service");
    let pod = &dep["spec"]["template"];
    assert_eq!(pod["spec"]["runtimeClassName"], rc["metadata"]["name"]);
    assert_eq!(pod["metadata"]["annotations"]["module.wasm.image/variant"], "compat-smart");
    for (k, v) in svc["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&pod["metadata"]["labels"][k], v, "the Service selects the pods");
        assert_eq!(&dep["spec"]["selector"]["matchLabels"][k], v);
    }
    let port = &pod["spec"]["containers"][0]["ports"][0];
    // runwasi's wasmtime shim serves wasi:http on 8080 (WASMTIME_HTTP_PROXY_SOCKET_ADDR's default).
    assert_eq!(port["containerPort"], 8080);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], port["name"]);
}
