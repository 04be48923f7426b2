//! What ws2i makes, run by a real podman (tests/src/podman.rs): the pod of `ws2i generate job`
//! and the steps of `ws2i generate tekton-task` played with `podman kube play`, where ws2i's own
//! image (scripts/ws2i-image) builds examples/hello-app from a mounted source, unprivileged,
//! and pushes it to a registry on the host's loopback; ws2i's images loaded into podman.
//!
//! ws2i's image is the real one of scripts/ws2i-image (static, musl) when `WS2I_IMAGE_STORE` names
//! its store (scripts/test-podman), else the same Containerfile around the binary under test
//! (tests/src/podman.rs says how), so the README's test command runs these on every CI run. A
//! host where podman cannot run containers fails them (it never passes them silently).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use ws2i_tests::builders::{make_builder, shared_cache};
use ws2i_tests::podman::Podman;
use ws2i_tests::registry::Registry;
use ws2i_tests::schemas::yaml_docs;
use ws2i_tests::{run_ok, skopeo, stdout, workspace_root, ws2i};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// ws2i's image as podman knows it once loaded.
fn image() -> String {
    format!("localhost/ws2i/ws2i:{VERSION}")
}

/// A podman with ws2i's image loaded, a registry holding the test builder, a host-side store.
struct Env {
    podman: Podman,
    registry: Registry,
    work: tempfile::TempDir,
    /// One at a time: each test has its own podman storage, but pods on the host network and
    /// vfs copies of the image in parallel only add load (scripts/test-podman ran them so too).
    /// Last, so it is released after the pods and storage are gone.
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Env {
    fn new() -> Env {
        static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let image_store = ws2i_tests::podman::ws2i_image_store();
        let podman = Podman::new();
        let e = Env {
            podman,
            registry: Registry::start().unwrap(),
            work: tempfile::tempdir().unwrap(),
            _serial: serial,
        };
        // ws2i's own image reaches podman as a docker-archive written by `ws2i copy`.
        let archive = e.work.path().join("ws2i.tar");
        run_ok(
            ws2i()
                .env("WS2I_HOME", &image_store)
                .args(["--quiet", "copy", &format!("ws2i/ws2i:{VERSION}")])
                .arg(format!("docker-archive:{}:{}", archive.display(), image())),
        );
        e.podman
            .ok(e.podman.cmd().arg("load").arg("-i").arg(&archive));
        // Its entrypoint is ws2i: the image itself is the probe that podman runs containers here.
        e.podman.probe_image(&image(), &["--version"]);
        make_builder(
            &e.home(),
            "ws2i/test-builder:latest",
            &["assemble", "run", "save-artifacts", "usage"],
        );
        run_ok(
            e.ws2i()
                .args(["--quiet", "push", "ws2i/test-builder:latest", &e.builder()]),
        );
        e
    }

    fn home(&self) -> PathBuf {
        self.work.path().join("home")
    }

    /// The host's ws2i on this test's store.
    fn ws2i(&self) -> Command {
        let mut c = ws2i();
        c.env("WS2I_HOME", self.home())
            .env("WS2I_CACHE", shared_cache("podman"));
        c
    }

    fn builder(&self) -> String {
        format!("docker://{}/ws2i/test-builder:latest", self.registry.host())
    }

    /// `ws2i generate ENGINE examples/hello-app BUILDER TAG --push --ws2i-image IMAGE`.
    fn generate(&self, engine: &str, tag: &str) -> Vec<Value> {
        let app = workspace_root().join("examples/hello-app");
        let out = run_ok(self.ws2i().args(["generate", engine]).arg(&app).args([
            &self.builder(),
            tag,
            "--push",
            "--ws2i-image",
            &image(),
        ]));
        yaml_docs(&stdout(&out), Path::new("ws2i generate"))
    }

    /// Plays a Pod with the host's network (the registry is on its loopback) and waits, bounded,
    /// for `container` to exit. Returns its exit code, its log and `podman inspect` of it (with
    /// the OCI runtime config under `OCIConfig`).
    fn play(&self, pod: &Value, container: &str) -> (i64, String, Value) {
        let name = pod["metadata"]["name"].as_str().unwrap();
        let file = self.work.path().join(format!("{name}.yaml"));
        std::fs::write(&file, serde_yaml::to_string(pod).unwrap()).unwrap();
        self.podman.ok(self
            .podman
            .cmd()
            .args(["kube", "play", "--network", "host"])
            .arg(&file));
        let ctr = format!("{name}-{container}");
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let state = self
                .podman
                .text(&["inspect", "--format", "{{.State.Status}}", &ctr]);
            if state.trim() == "exited" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{ctr} still {state} after 10 min"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        let inspect: Value = serde_json::from_str(&self.podman.text(&["inspect", &ctr])).unwrap();
        let mut inspect = inspect[0].clone();
        // The OCI runtime config podman gave runc goes with the pod: keep it for the checks.
        let oci_path = inspect["OCIConfigPath"]
            .as_str()
            .expect("OCIConfigPath")
            .to_string();
        inspect["OCIConfig"] = serde_json::from_slice(&std::fs::read(oci_path).unwrap()).unwrap();
        let logs = self.podman.ok(self.podman.cmd().args(["logs", &ctr]));
        let logs = format!("{}{}", stdout(&logs), String::from_utf8_lossy(&logs.stderr));
        self.podman
            .ok(self.podman.cmd().args(["pod", "rm", "--force", name]));
        (
            inspect["State"]["ExitCode"].as_i64().unwrap(),
            logs,
            inspect,
        )
    }

    /// The manifest digest the registry holds for `tag` (docker://HOST/REPO:TAG), as skopeo sees it.
    fn registry_digest(&self, tag: &str) -> String {
        let v: Value =
            serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", tag])).unwrap();
        v["Digest"].as_str().unwrap().to_string()
    }
}

/// A Job's pod: what the Job controller would create from `.spec.template`.
fn pod_of_job(job: &Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": job["metadata"]["name"], "labels": job["spec"]["template"]["metadata"]["labels"]},
        "spec": job["spec"]["template"]["spec"],
    })
}

/// What Tekton's controller makes of a TaskRun, as far as a pod goes: params (TaskRun values
/// over Task defaults; `$(params.X[*])` expands to the array's items), the `source` workspace at
/// /workspace/source (here a host dir), results in /tekton/results (here a host dir the test
/// reads), the Task's volumes; the steps in order, as init containers then the last one.
fn pod_of_task_run(task: &Value, run: &Value, source: &Path, results: &Path) -> Value {
    let mut params: Vec<(String, Value)> = Vec::new();
    for p in task["spec"]["params"].as_array().unwrap() {
        let given = run["spec"]["params"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == p["name"]);
        let value = given
            .map(|g| g["value"].clone())
            .or_else(|| p.get("default").cloned())
            .expect("a value");
        params.push((p["name"].as_str().unwrap().to_string(), value));
    }
    let steps = Steps {
        spec: &task["spec"],
        params,
        vars: vec![("$(workspaces.source.path)".into(), "/workspace/source".into())],
    };
    steps.pod(
        run["metadata"]["name"].as_str().unwrap(),
        &run["spec"]["podTemplate"]["securityContext"],
        source,
        results,
    )
}

/// What Shipwright's controller makes of a BuildRun of a Build on a ClusterBuildStrategy (a
/// TaskRun, then a pod): the strategy's parameters (the Build's `paramValues` over the
/// strategy's defaults), Shipwright's own `shp-*` parameters, the source at
/// /workspace/source (here a host dir: what Shipwright's clone step or `shp build upload`
/// would put there), the strategy's security context for the pod.
fn pod_of_build_run(strategy: &Value, build: &Value, run: &Value, source: &Path, results: &Path) -> Value {
    let mut params: Vec<(String, Value)> = Vec::new();
    for p in strategy["spec"]["parameters"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        let given = build["spec"]["paramValues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .map(|v| match v.get("values") {
                Some(items) => json!(items.as_array().unwrap().iter().map(|i| i["value"].clone()).collect::<Vec<_>>()),
                None => v["value"].clone(),
            });
        let value = given
            .or_else(|| p.get("defaults").or(p.get("default")).cloned())
            .expect("a value");
        params.push((name.to_string(), value));
    }
    let context = match build["spec"]["source"]["contextDir"].as_str() {
        Some(c) => format!("/workspace/source/{c}"),
        None => "/workspace/source".into(),
    };
    for (name, value) in [
        ("shp-source-root", "/workspace/source".to_string()),
        ("shp-source-context", context),
        ("shp-output-image", build["spec"]["output"]["image"].as_str().unwrap().to_string()),
        ("shp-output-directory", "/workspace/output-image".to_string()),
    ] {
        params.push((name.into(), json!(value)));
    }
    let steps = Steps {
        spec: &strategy["spec"],
        params,
        vars: Vec::new(),
    };
    let mut sc = strategy["spec"]["securityContext"].clone();
    sc["runAsNonRoot"] = json!(true);
    steps.pod(run["metadata"]["name"].as_str().unwrap(), &sc, source, results)
}

/// The steps of a Task or build strategy and what `$(…)` in them stands for.
struct Steps<'a> {
    spec: &'a Value,
    params: Vec<(String, Value)>,
    /// Other variables, verbatim (`$(workspaces.source.path)`).
    vars: Vec<(String, String)>,
}

impl Steps<'_> {
    /// One argument with every variable replaced; `$(params.X[*])` of an array param is its items.
    fn subst(&self, s: &str) -> Vec<String> {
        for (name, value) in &self.params {
            if let Some(items) = value.as_array() {
                if s == format!("$(params.{name}[*])") {
                    return items
                        .iter()
                        .map(|i| i.as_str().unwrap().to_string())
                        .collect();
                }
            }
        }
        let mut out = s.to_string();
        for (var, value) in &self.vars {
            out = out.replace(var, value);
        }
        for r in self.spec["results"].as_array().into_iter().flatten() {
            let n = r["name"].as_str().unwrap();
            out = out.replace(&format!("$(results.{n}.path)"), &format!("/tekton/results/{n}"));
        }
        // Shipwright declares no results in the strategy: its own are fixed.
        out = out.replace("$(results.shp-image-digest.path)", "/tekton/results/shp-image-digest");
        for (name, value) in &self.params {
            if let Some(v) = value.as_str() {
                out = out.replace(&format!("$(params.{name})"), v);
            }
        }
        vec![out]
    }

    /// The pod: the steps in order as init containers then the last one, the source read-only
    /// at /workspace/source, results in `results`, the spec's volumes.
    fn pod(&self, name: &str, security: &Value, source: &Path, results: &Path) -> Value {
        let mut containers: Vec<Value> = Vec::new();
        for step in self.spec["steps"].as_array().unwrap() {
            let mut c = step.clone();
            for key in ["command", "args"] {
                let items: Vec<String> = c[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|a| self.subst(a.as_str().unwrap()))
                    .collect();
                c[key] = json!(items);
            }
            c["workingDir"] = json!(self.subst(c["workingDir"].as_str().unwrap())[0]);
            let mounts = c["volumeMounts"].as_array_mut().unwrap();
            mounts.push(
                json!({"name": "ws-source", "mountPath": "/workspace/source", "readOnly": true}),
            );
            mounts.push(json!({"name": "tekton-results", "mountPath": "/tekton/results"}));
            containers.push(c);
        }
        let last = containers.pop().unwrap();
        let mut volumes: Vec<Value> = self.spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                let mut v = v.clone();
                // Shipwright's own marker, not a Kubernetes volume field.
                v.as_object_mut().unwrap().remove("overridable");
                v
            })
            .collect();
        volumes.push(
            json!({"name": "ws-source", "hostPath": {"path": source, "type": "Directory"}}),
        );
        volumes.push(
            json!({"name": "tekton-results", "hostPath": {"path": results, "type": "Directory"}}),
        );
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "restartPolicy": "Never",
                "securityContext": security,
                "initContainers": containers,
                "containers": [last],
                "volumes": volumes,
            }
        })
    }
}

/// The container ran as uid/gid 1000, with no capability in any set, no privilege escalation, a
/// seccomp filter and a read-only root filesystem: read from the OCI runtime config that podman
/// handed to runc (what the kernel was asked to apply), not only from podman's summary.
fn assert_unprivileged(inspect: &Value) {
    assert_eq!(
        inspect["Config"]["User"], "1000:1000",
        "{:#}",
        inspect["Config"]
    );
    assert_eq!(inspect["HostConfig"]["Privileged"], false);
    let oci = &inspect["OCIConfig"];
    let process = &oci["process"];
    assert_eq!(
        (&process["user"]["uid"], &process["user"]["gid"]),
        (&json!(1000), &json!(1000)),
        "{process:#}"
    );
    let caps = process["capabilities"].as_object().map(|m| {
        m.values()
            .all(|v| v.as_array().is_none_or(|a| a.is_empty()))
    });
    assert!(
        caps.unwrap_or(true),
        "no capabilities: {}",
        process["capabilities"]
    );
    assert_eq!(process["noNewPrivileges"], true);
    assert_eq!(oci["root"]["readonly"], true);
    assert_eq!(
        oci["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO",
        "a seccomp filter"
    );
}

/// The repositories of a registry's filesystem storage (dirs holding `_manifests`).
fn walk_repos(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        if d.join("_manifests").is_dir() {
            out.push(d.strip_prefix(root).unwrap().display().to_string());
            continue;
        }
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out
}

/// A directory a uid-1000 container may write (the results dir Tekton would give it).
fn writable_dir(p: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(p).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
    p.to_path_buf()
}

#[test]
fn the_job_pod_builds_and_pushes_as_a_non_root_user_without_capabilities() {
    let e = Env::new();
    let tag = format!("docker://{}/hello-app:job", e.registry.host());
    let job = &e.generate("job", &tag)[0];
    let (code, logs, inspect) = e.play(&pod_of_job(job), "build");
    assert_eq!(code, 0, "the build failed:\n{logs}");
    assert_unprivileged(&inspect);
    let result: Value = logs
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON result in the log:\n{logs}"));
    let pushed = result["pushed"]["digest"].as_str().unwrap();
    assert_eq!(
        e.registry_digest(&tag),
        pushed,
        "the registry holds what ws2i reported"
    );
    assert!(result["command"].to_string().contains("run"), "{result:#}");
}

#[test]
fn the_tekton_steps_build_push_and_write_the_digest_result() {
    let e = Env::new();
    let tag = format!("docker://{}/hello-app:tekton", e.registry.host());
    let docs = e.generate("tekton-task", &tag);
    let results = writable_dir(&e.work.path().join("results"));
    let pod = pod_of_task_run(
        &docs[0],
        &docs[1],
        &workspace_root().join("examples/hello-app"),
        &results,
    );
    let (code, logs, inspect) = e.play(&pod, "build");
    assert_eq!(code, 0, "the step failed:\n{logs}");
    assert_unprivileged(&inspect);
    let digest =
        std::fs::read_to_string(results.join("IMAGE_DIGEST")).expect("the IMAGE_DIGEST result");
    assert_eq!(
        e.registry_digest(&tag),
        digest,
        "the result is the digest the registry holds"
    );
}

#[test]
fn the_shipwright_strategy_step_builds_pushes_and_writes_the_digest_result() {
    let e = Env::new();
    let tag = format!("docker://{}/hello-app:shipwright", e.registry.host());
    let docs = e.generate("shipwright-strategy", &tag);
    let results = writable_dir(&e.work.path().join("results"));
    let pod = pod_of_build_run(
        &docs[0],
        &docs[1],
        &docs[2],
        &workspace_root().join("examples/hello-app"),
        &results,
    );
    let (code, logs, inspect) = e.play(&pod, "build");
    assert_eq!(code, 0, "the step failed:\n{logs}");
    assert_unprivileged(&inspect);
    let digest = std::fs::read_to_string(results.join("shp-image-digest"))
        .expect("the shp-image-digest result");
    assert_eq!(e.registry_digest(&tag), digest, "the result is the digest the registry holds");
}

#[test]
fn an_unreachable_registry_fails_the_step_clearly_and_writes_no_result() {
    let e = Env::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let tag = format!("docker://{closed}/hello-app:nowhere");
    let docs = e.generate("tekton-task", &tag);
    let results = writable_dir(&e.work.path().join("results"));
    let pod = pod_of_task_run(
        &docs[0],
        &docs[1],
        &workspace_root().join("examples/hello-app"),
        &results,
    );
    let (code, logs, _) = e.play(&pod, "build");
    assert_ne!(code, 0, "the step succeeded:\n{logs}");
    assert!(
        logs.contains(&closed.to_string()),
        "the error names the registry:\n{logs}"
    );
    assert!(
        !results.join("IMAGE_DIGEST").exists(),
        "no digest result for a push that did not happen"
    );
    // Nothing went anywhere else: the reachable registry holds only the builder's repository.
    let repos = e
        .registry
        .storage_dir()
        .join("docker/registry/v2/repositories");
    let mut names: Vec<String> = walk_repos(&repos);
    names.sort();
    assert_eq!(names, ["ws2i/test-builder"], "nothing half-pushed anywhere");
}

#[test]
fn a_wasm_image_from_ws2i_copy_loads_into_podman_and_inspects_as_wasm() {
    let e = Env::new();
    let app = workspace_root().join("examples/hello-app");
    run_ok(
        e.ws2i()
            .args(["--quiet", "build"])
            .arg(&app)
            .args(["ws2i/test-builder:latest", "hello-app:wasm"]),
    );
    let archive = e.work.path().join("hello.tar");
    run_ok(
        e.ws2i()
            .args(["--quiet", "copy", "hello-app:wasm"])
            .arg(format!(
                "docker-archive:{}:localhost/hello-app:wasm",
                archive.display()
            )),
    );
    let loaded = e.podman.text(&["load", "-i", archive.to_str().unwrap()]);
    assert!(loaded.contains("localhost/hello-app:wasm"), "{loaded}");
    let inspect: Value =
        serde_json::from_str(
            &e.podman
                .text(&["image", "inspect", "localhost/hello-app:wasm"]),
        )
        .unwrap();
    let ours: Value = serde_json::from_slice(
        &run_ok(
            e.ws2i()
                .args(["--output", "json", "inspect", "hello-app:wasm"]),
        )
        .stdout,
    )
    .unwrap();
    let i = &inspect[0];
    assert_eq!(i["Architecture"], "wasm");
    assert!(i["Os"] == "wasip1" || i["Os"] == "wasip2", "{}", i["Os"]);
    let entrypoint = &i["Config"]["Entrypoint"];
    assert!(
        entrypoint.as_array().is_some_and(|a| !a.is_empty()),
        "an entrypoint: {:#}",
        i["Config"]
    );
    assert!(
        ours.to_string().contains(entrypoint[0].as_str().unwrap()),
        "podman sees ws2i's entrypoint"
    );
}
