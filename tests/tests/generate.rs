//! `ws2i generate job|tekton-task|shipwright-strategy`: what it prints validates against the
//! vendored Kubernetes 1.37, Tekton and Shipwright schemas (ws2i_tests::schemas), runs the step
//! unprivileged, passes the build's flags on, refuses what a pod cannot do; the checked-in
//! examples are exactly what it prints. The pods themselves run in tests/tests/podman.rs.

use std::path::Path;

use serde_json::{json, Value};
use ws2i_tests::schemas::{errors, yaml_dir, yaml_docs};
use ws2i_tests::{run_fail, run_ok, stderr, stdout, workspace_root, ws2i};

const BUILDER: &str = "docker://registry.example.com/ws2i/test-builder:latest";
const TAG: &str = "docker://registry.example.com/team/hello-app:1.0";
const GIT: &str = "https://git.example.com/team/hello-app.git";

/// The arguments the checked-in examples were generated with (docs/scale-out.md says so too).
fn example_args(engine: &str) -> Vec<String> {
    [
        "generate",
        engine,
        GIT,
        BUILDER,
        TAG,
        "--push",
        "--ref=main",
        "--context-dir=app",
        "-e",
        "GREETING=hello",
        "--reproducible",
    ]
    .map(String::from)
    .to_vec()
}

fn generate(args: &[String]) -> Vec<Value> {
    let out = run_ok(ws2i().args(args));
    yaml_docs(&stdout(&out), Path::new("ws2i generate"))
}

fn assert_valid(what: &str, docs: &[Value]) {
    for d in docs {
        let errs = errors(d);
        assert!(
            errs.is_empty(),
            "{what}: {} {}: {errs:#?}",
            d["kind"],
            d["metadata"]["name"]
        );
    }
}

/// The containers that run ws2i, wherever the engine keeps them.
fn steps(doc: &Value) -> Vec<&Value> {
    let list = match doc["kind"].as_str().unwrap() {
        "Job" => &doc["spec"]["template"]["spec"]["containers"],
        "Task" | "ClusterBuildStrategy" => &doc["spec"]["steps"],
        _ => return Vec::new(),
    };
    list.as_array().unwrap().iter().collect()
}

fn assert_unprivileged(doc: &Value) {
    let steps = steps(doc);
    assert_eq!(steps.len(), 1, "one step: {doc:#}");
    assert_step_unprivileged(steps[0]);
}

/// One ws2i container: no privilege of any kind, the store on a volume.
fn assert_step_unprivileged(step: &Value) {
    let steps = [step];
    let sc = &steps[0]["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_ne!(sc["runAsUser"], 0);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(
        sc["capabilities"],
        json!({"drop": ["ALL"]}),
        "nothing added, everything dropped"
    );
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(steps[0]["command"], json!(["/ws2i"]));
    let mounts: Vec<&str> = steps[0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert!(mounts.contains(&"/tmp"), "{mounts:?}");
    let env = &steps[0]["env"];
    let home = env
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "WS2I_HOME")
        .expect("WS2I_HOME");
    assert!(
        mounts
            .iter()
            .any(|m| home["value"].as_str().unwrap().starts_with(m)),
        "the store is on a volume"
    );
}

#[test]
fn every_engine_prints_manifests_that_validate_and_run_unprivileged() {
    for (engine, kinds) in [
        ("job", vec!["Job"]),
        ("tekton-task", vec!["Task", "TaskRun"]),
        (
            "shipwright-strategy",
            vec!["ClusterBuildStrategy", "Build", "BuildRun"],
        ),
    ] {
        let docs = generate(&example_args(engine));
        let got: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(got, kinds, "{engine}");
        assert_valid(engine, &docs);
        let runner = &docs[0];
        assert_unprivileged(runner);

        // -o json: the same objects, as a v1 List.
        let mut args = example_args(engine);
        args.extend(["--output".into(), "json".into()]);
        let list: Value = serde_json::from_slice(&run_ok(ws2i().args(&args)).stdout).unwrap();
        assert_eq!(list["kind"], "List");
        assert_eq!(
            list["items"],
            json!(docs),
            "{engine}: -o json and YAML agree"
        );
    }
}

#[test]
fn the_build_flags_reach_the_step_as_typed_and_the_source_as_the_engine_wants() {
    let job = &generate(&example_args("job"))[0];
    let args = &steps(job)[0]["args"];
    assert_eq!(
        args,
        &json!([
            "build",
            GIT,
            BUILDER,
            TAG,
            "--push",
            "--output=json",
            "--ref=main",
            "--context-dir=app",
            "--env=GREETING=hello",
            "--reproducible"
        ])
    );
    let tekton = generate(&example_args("tekton-task"));
    let (task, run) = (&tekton[0], &tekton[1]);
    assert_eq!(task["spec"]["results"][0]["name"], "IMAGE_DIGEST");
    assert_eq!(task["spec"]["workspaces"][0]["name"], "source");
    let step_args = steps(task)[0]["args"].as_array().unwrap().clone();
    assert!(
        step_args.contains(&json!("--digest-file=$(results.IMAGE_DIGEST.path)")),
        "{step_args:?}"
    );
    assert!(step_args.contains(&json!("$(params.BUILD_FLAGS[*])")));
    assert_eq!(run["spec"]["taskRef"]["name"], task["metadata"]["name"]);
    let params = run["spec"]["params"].as_array().unwrap();
    let param = |n: &str| &params.iter().find(|p| p["name"] == n).unwrap()["value"];
    assert_eq!(param("SOURCE"), GIT);
    assert_eq!(param("IMAGE"), "registry.example.com/team/hello-app:1.0");
    assert_eq!(
        param("BUILD_FLAGS"),
        &json!([
            "--ref=main",
            "--context-dir=app",
            "--env=GREETING=hello",
            "--reproducible"
        ])
    );

    let shp = generate(&example_args("shipwright-strategy"));
    let (strategy, build, buildrun) = (&shp[0], &shp[1], &shp[2]);
    let step_args = steps(strategy)[0]["args"].as_array().unwrap().clone();
    assert_eq!(step_args[1], "$(params.shp-source-context)");
    assert_eq!(step_args[3], "docker://$(params.shp-output-image)");
    assert!(step_args.contains(&json!("--digest-file=$(results.shp-image-digest.path)")));
    assert_eq!(
        strategy["spec"]["securityContext"],
        json!({"runAsUser": 1000, "runAsGroup": 1000})
    );
    // Shipwright clones: the ref and context dir are the Build's, not flags.
    assert_eq!(
        build["spec"]["source"],
        json!({"type": "Git", "git": {"url": GIT, "revision": "main"}, "contextDir": "app"})
    );
    assert_eq!(
        build["spec"]["strategy"],
        json!({"name": strategy["metadata"]["name"], "kind": "ClusterBuildStrategy"})
    );
    assert_eq!(
        build["spec"]["output"]["image"],
        "registry.example.com/team/hello-app:1.0"
    );
    assert_eq!(
        build["spec"]["paramValues"][1]["values"],
        json!([{"value": "--env=GREETING=hello"}, {"value": "--reproducible"}])
    );
    assert_eq!(buildrun["spec"]["build"]["name"], build["metadata"]["name"]);
}

#[test]
fn a_local_source_becomes_the_engines_source_volume() {
    let app = workspace_root().join("examples/hello-app");
    let args = |engine: &str| -> Vec<String> {
        vec![
            "generate".into(),
            engine.into(),
            app.display().to_string(),
            BUILDER.into(),
            TAG.into(),
            "--push".into(),
        ]
    };
    let job = &generate(&args("job"))[0];
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["args"][1], "/workspace/source");
    let source = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "source")
        .unwrap();
    assert_eq!(source["hostPath"]["path"], app.display().to_string());
    assert_valid("job", std::slice::from_ref(job));
    let tekton = generate(&args("tekton-task"));
    assert_eq!(
        tekton[1]["spec"]["workspaces"][0]["persistentVolumeClaim"]["claimName"],
        "hello-app-source"
    );
    assert_valid("tekton", &tekton);
    let shp = generate(&args("shipwright-strategy"));
    assert_eq!(shp[1]["spec"]["source"]["type"], "Local");
    assert_valid("shipwright", &shp);
}

#[test]
fn what_a_pod_cannot_do_is_refused_with_the_reason() {
    let app = workspace_root()
        .join("examples/hello-app")
        .display()
        .to_string();
    for (args, says) in [
        (
            vec![&app, "ws2i/test-builder", TAG, "--push"],
            "the step's store starts empty",
        ),
        (vec![&app, BUILDER, "hello-app"], "TAG must be docker://"),
        (
            vec![&app, BUILDER, TAG, "--push", "--creds=u:p"],
            "a password does not belong in a manifest",
        ),
        (
            vec![&app, BUILDER, TAG, "--push", "-v", "/tmp:/cache"],
            "--volume names host paths",
        ),
        (
            vec![&app, BUILDER, TAG, "--push", "--run"],
            "--run is not for a build step",
        ),
        (
            vec![&app, BUILDER, TAG, "--push", "--context-dir=../x"],
            "context",
        ),
        (
            vec![&app, BUILDER, TAG, "--push", "--name=Not_A_Label"],
            "not a DNS label",
        ),
    ] {
        for engine in ["job", "tekton-task", "shipwright-strategy"] {
            let out = run_fail(ws2i().args(["generate", engine]).args(&args));
            assert!(
                stderr(&out).contains(says),
                "{engine} {args:?}: {}",
                stderr(&out)
            );
            assert!(stdout(&out).is_empty(), "nothing printed on error");
        }
    }
}

/// examples/kubernetes/job.yaml, examples/tekton/, examples/shipwright/: what
/// `ws2i generate … ` prints today for [`example_args`] (so they never go stale), each valid.
#[test]
fn the_checked_in_examples_are_what_generate_prints() {
    let root = workspace_root().join("examples");
    for (engine, file) in [
        ("job", "kubernetes/job.yaml"),
        ("tekton-task", "tekton/ws2i-build.yaml"),
        ("shipwright-strategy", "shipwright/ws2i.yaml"),
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let checked_in = yaml_docs(&text, Path::new(file));
        assert_eq!(
            checked_in,
            generate(&example_args(engine)),
            "{file} is stale: regenerate it (docs/scale-out.md)"
        );
    }
    for dir in ["tekton", "shipwright"] {
        let docs = yaml_dir(&root.join(dir));
        assert!(!docs.is_empty());
        for (file, d) in &docs {
            assert_valid(file, std::slice::from_ref(d));
        }
    }
}

/// Each schema rejects a manifest broken in a way an engine would reject: a typo'd field, a
/// wrong type, a missing required field, a privileged step where a string belongs.
#[test]
fn the_schemas_reject_broken_manifests() {
    let mut all = generate(&example_args("job"));
    all.extend(generate(&example_args("tekton-task")));
    all.extend(generate(&example_args("shipwright-strategy")));
    all.extend(generate(&pipeline_args()));
    let by_kind = |k: &str| all.iter().find(|d| d["kind"] == k).unwrap().clone();
    let broken: Vec<(&str, Value)> = vec![
        ("Job typo", {
            let mut d = by_kind("Job");
            d["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = json!({});
            d
        }),
        ("Job wrong type", {
            let mut d = by_kind("Job");
            d["spec"]["backoffLimit"] = json!("none");
            d
        }),
        ("Task typo in a step", {
            let mut d = by_kind("Task");
            d["spec"]["steps"][0]["imag"] = json!("x");
            d
        }),
        ("Task result without a name", {
            let mut d = by_kind("Task");
            d["spec"]["results"][0]
                .as_object_mut()
                .unwrap()
                .remove("name");
            d
        }),
        ("TaskRun wrong type", {
            let mut d = by_kind("TaskRun");
            d["spec"]["taskRef"] = json!("ws2i-build");
            d
        }),
        ("ClusterBuildStrategy without runAsUser", {
            let mut d = by_kind("ClusterBuildStrategy");
            d["spec"]["securityContext"]
                .as_object_mut()
                .unwrap()
                .remove("runAsUser");
            d
        }),
        ("ClusterBuildStrategy privileged is a bool", {
            let mut d = by_kind("ClusterBuildStrategy");
            d["spec"]["steps"][0]["securityContext"]["privileged"] = json!("yes");
            d
        }),
        ("Build without a source type", {
            let mut d = by_kind("Build");
            d["spec"]["source"].as_object_mut().unwrap().remove("type");
            d
        }),
        ("BuildRun typo", {
            let mut d = by_kind("BuildRun");
            d["spec"]["biuld"] = d["spec"]["build"].clone();
            d
        }),
        ("Pipeline task typo", {
            let mut d = by_kind("Pipeline");
            d["spec"]["tasks"][0]["runAftr"] = json!(["x"]);
            d
        }),
        ("Pipeline task's embedded Task with a step image that is no string", {
            let mut d = embedded_tasks(&by_kind("Pipeline")).remove(0);
            d["spec"]["steps"][0]["image"] = json!(7);
            d
        }),
        ("PipelineRun pipelineRef is an object", {
            let mut d = by_kind("PipelineRun");
            d["spec"]["pipelineRef"] = json!("ws2i-pipeline");
            d
        }),
        ("ConfigMap data holds strings", {
            let mut d = by_kind("ConfigMap");
            d["data"]["x.json"] = json!({"not": "a string"});
            d
        }),
        ("wrong apiVersion", {
            let mut d = by_kind("BuildRun");
            d["apiVersion"] = json!("shipwright.io/v1beta1");
            d["kind"] = json!("Build");
            d
        }),
    ];
    for (what, d) in &broken {
        assert!(!errors(d).is_empty(), "{what} was accepted");
    }
}

/// Each `taskSpec` of a Pipeline as the Task it embeds, for the Task schema (the Pipeline
/// schema preserves a `taskSpec`'s fields unchecked, as Tekton's CRD does).
fn embedded_tasks(pipeline: &Value) -> Vec<Value> {
    pipeline["spec"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| json!({"apiVersion": "tekton.dev/v1", "kind": "Task", "metadata": {"name": t["name"]}, "spec": t["taskSpec"]}))
        .collect()
}

/// The arguments examples/tekton/okd-pipeline.yaml was generated with.
fn pipeline_args() -> Vec<String> {
    let dir = workspace_root().join("examples/okd-pipeline");
    [
        "generate",
        "tekton-pipeline",
        "-f",
        dir.to_str().unwrap(),
        "--registry",
        "registry.example.com/okd",
        "--name",
        "go-hello-world",
    ]
    .map(String::from)
    .to_vec()
}

/// The seed article's chain (examples/okd-pipeline) as a Tekton Pipeline: the tasks in the
/// order the images flow, each input pinned to the digest its producer pushed, every step
/// unprivileged, the BuildConfigs the pods apply without triggers; valid against the schemas,
/// and the checked-in examples/tekton/okd-pipeline.yaml is what it prints.
#[test]
fn buildconfigs_become_a_tekton_pipeline_in_chain_order() {
    let out = run_ok(ws2i().args(pipeline_args()));
    let docs = yaml_docs(&stdout(&out), Path::new("ws2i generate tekton-pipeline"));
    assert_valid("tekton-pipeline", &docs);
    // Tekton's Pipeline schema leaves `taskSpec` open; each is checked as the Task it embeds.
    assert_valid("tekton-pipeline tasks", &embedded_tasks(&docs[1]));
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ConfigMap", "Pipeline", "PipelineRun"]);
    let warnings = stderr(&out);
    assert!(warnings.contains("file:///tmp/ws2i-okd-pipeline/go-hello-world"), "{warnings}");
    assert!(warnings.contains("dockerStrategy.from is not set"), "{warnings}");
    let tasks = docs[1]["spec"]["tasks"].as_array().unwrap();
    let names: Vec<&str> = tasks.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["golang-builder", "go-hello-world-appimage", "go-hello-world"]);
    assert_eq!(tasks[1]["runAfter"], json!(["golang-builder"]));
    assert_eq!(tasks[2]["runAfter"], json!(["go-hello-world-appimage"]));
    let param = |t: &Value, n: &str| t["params"].as_array().unwrap().iter().find(|p| p["name"] == n).unwrap()["value"].clone();
    assert_eq!(
        param(&tasks[1], "INPUT_0"),
        "docker://registry.example.com/okd/default/golang-builder@$(tasks.golang-builder.results.IMAGE_DIGEST)"
    );
    assert_eq!(param(&tasks[2], "IMAGE"), "registry.example.com/okd/default/go-hello-world:1.0");
    for t in tasks {
        let steps = t["taskSpec"]["steps"].as_array().unwrap();
        for s in steps {
            assert_step_unprivileged(s);
        }
        let last = &steps[steps.len() - 1];
        assert!(last["args"].as_array().unwrap().contains(&json!("--digest-file=$(results.IMAGE_DIGEST.path)")));
    }
    assert_eq!(docs[2]["spec"]["taskRunTemplate"]["podTemplate"]["securityContext"]["runAsNonRoot"], true);
    // What a pod applies reads back as a BuildConfig that `ws2i apply` takes, triggers gone.
    let applied = docs[0]["data"]["go-hello-world.json"].as_str().unwrap();
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("bc.json");
    std::fs::write(&f, applied).unwrap();
    let home = t.path().join("home");
    let get = run_ok(ws2i().env("WS2I_HOME", &home).args(["apply", "-f"]).arg(&f));
    assert!(stderr(&get).contains("buildconfig.build.openshift.io/go-hello-world created"), "{}", stderr(&get));
    let bc: Value = serde_json::from_slice(
        &run_ok(ws2i().env("WS2I_HOME", &home).args(["get", "bc", "go-hello-world", "-o", "json"])).stdout,
    )
    .unwrap();
    assert!(bc["spec"]["triggers"].as_array().is_none_or(|a| a.is_empty()), "{bc:#}");
    assert_eq!(bc["spec"]["source"]["images"][0]["from"]["name"], "ws2i-input/go-hello-world:0");
    let file = "tekton/okd-pipeline.yaml";
    let text = std::fs::read_to_string(workspace_root().join("examples").join(file)).unwrap();
    assert_eq!(yaml_docs(&text, Path::new(file)), docs, "examples/{file} is stale: regenerate it (docs/scale-out.md)");
}

#[test]
fn buildconfigs_a_pipeline_cannot_run_are_refused_naming_the_field() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("bc.yaml");
    std::fs::write(
        &f,
        "apiVersion: build.openshift.io/v1\nkind: BuildConfig\nmetadata: {name: app}\nspec:\n  source: {git: {uri: https://g.example/a.git}}\n  strategy: {type: Source, sourceStrategy: {from: {kind: ImageStreamTag, name: missing:latest}}}\n  output: {to: {kind: ImageStreamTag, name: app:latest}}\n",
    )
    .unwrap();
    let out = run_fail(ws2i().args(["generate", "tekton-pipeline", "--registry", "r.example", "-f"]).arg(&f));
    let err = stderr(&out);
    assert!(err.contains("buildconfig/app: spec.strategy.from") && err.contains("default/missing:latest"), "{err}");
    assert!(stdout(&out).is_empty(), "nothing printed: {}", stdout(&out));
    let out = run_fail(ws2i().args(["generate", "tekton-pipeline", "--registry", "https://r.example", "-f"]).arg(&f));
    assert!(stderr(&out).contains("--registry"), "{}", stderr(&out));
}
