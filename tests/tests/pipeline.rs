//! Pipelines (issue 11): OKD's ImageStreams, BuildConfigs and triggers run by the real `ws2i`
//! binary on its embedded store and database, with local `file://` git repositories.
//!
//! The chain tests build with the real Go builder (guest-scripts/go): it is staged and budded once
//! per test binary into a template store, which each test hardlink-copies (`cp -al`: blobs are
//! immutable, index.json is replaced by rename), and they share wasmtime's compiled modules with
//! tests/tests/go_builder.rs (`target/test-cache/go_builder`), so compile.wasm is compiled once.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use ws2i_tests::builders::shared_cache;
use ws2i_tests::git::{copy_tree, git, repo_from};
use ws2i_tests::{
    describe, guests::guest_scripts_dir, run, run_fail, run_ok, stderr, stdout, workspace_root,
    ws2i,
};

/// The template store holding `ws2i/go:latest`, and the shared cache.
struct GoTemplate {
    store: PathBuf,
    cache: PathBuf,
}

fn go_template() -> &'static GoTemplate {
    static T: OnceLock<GoTemplate> = OnceLock::new();
    T.get_or_init(|| {
        let gs = guest_scripts_dir();
        run_ok(Command::new(gs.join("go/build")).arg(gs.join("target/hooks/go")));
        let cache = shared_cache("go_builder");
        let store = shared_cache("pipeline").join("go-template");
        let _ = fs::remove_dir_all(&store);
        run_ok(
            ws2i()
                .env("WS2I_HOME", &store)
                .env("WS2I_CACHE", &cache)
                .args(["--quiet", "bud", "-t", "ws2i/go:latest", "-f"])
                .arg(gs.join("go/Containerfile"))
                .arg(&gs),
        );
        GoTemplate { store, cache }
    })
}

struct World {
    dir: tempfile::TempDir,
    cache: PathBuf,
}

impl World {
    /// An empty store (for tests that need no Go builder).
    fn new() -> World {
        let base = shared_cache("pipeline");
        fs::create_dir_all(&base).unwrap();
        let dir = tempfile::Builder::new()
            .prefix("world-")
            .tempdir_in(&base)
            .unwrap();
        let cache = dir.path().join("cache");
        World { dir, cache }
    }

    /// A store that holds `ws2i/go:latest`.
    fn with_go() -> World {
        let t = go_template();
        let mut w = World::new();
        run_ok(Command::new("cp").arg("-al").arg(&t.store).arg(w.home()));
        w.cache = t.cache.clone();
        w
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn ws2i(&self) -> Command {
        let mut c = ws2i();
        c.env("WS2I_HOME", self.home())
            .env("WS2I_CACHE", &self.cache)
            .env_remove("SOURCE_DATE_EPOCH");
        c
    }

    fn cmd(&self, args: &[&str]) -> Output {
        run(self.ws2i().args(args))
    }

    fn ok(&self, args: &[&str]) -> Output {
        run_ok(self.ws2i().args(args))
    }

    fn apply(&self, path: &Path) -> Output {
        run(self.ws2i().arg("apply").arg("-f").arg(path))
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(&[args, &["-o", "json"]].concat());
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(&out)))
    }

    fn build(&self, name: &str) -> Value {
        self.json(&["get", "build", name])
    }

    fn builds(&self) -> Vec<Value> {
        self.json(&["get", "builds"])["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    fn phase(&self, name: &str) -> String {
        self.build(name)["status"]["phase"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The history of `stream:tag`, newest first (image digests).
    fn history(&self, stream: &str, tag: &str) -> Vec<String> {
        let is = self.json(&["get", "is", stream]);
        let tags = is["status"]["tags"].as_array().cloned().unwrap_or_default();
        tags.iter()
            .find(|t| t["tag"] == tag)
            .map(|t| {
                t["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["image"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A git work tree at `name` holding a copy of `from`, committed.
    fn repo(&self, name: &str, from: &Path) -> PathBuf {
        let r = self.path(&format!("repos/{name}"));
        repo_from(from, &r);
        r
    }

    /// examples/okd-pipeline with its repositories made under this world: the YAML dir.
    fn example(&self) -> PathBuf {
        let ex = workspace_root().join("examples/okd-pipeline");
        self.repo("golang-builder", &ex.join("builder"));
        self.repo("go-hello-world", &ex.join("app"));
        let yaml = self.path("yaml");
        fs::create_dir_all(&yaml).unwrap();
        for f in ["imagestreams.yaml", "buildconfigs.yaml"] {
            let text = fs::read_to_string(ex.join(f)).unwrap();
            let repos = self.path("repos");
            fs::write(
                yaml.join(f),
                text.replace("/tmp/ws2i-okd-pipeline", repos.to_str().unwrap()),
            )
            .unwrap();
        }
        yaml
    }

    /// Runs the image's /app natively: the image unpacked by umoci from a copy in an OCI dir.
    fn unpack(&self, image: &str, into: &str) -> (PathBuf, Value) {
        let layout = self.path(&format!("{into}/layout"));
        run_ok(
            self.ws2i()
                .args(["--quiet", "copy", image])
                .arg(format!("oci:{}:img", layout.display())),
        );
        let bundle = self.path(&format!("{into}/bundle"));
        run_ok(
            Command::new("umoci")
                .args(["unpack", "--rootless", "--image"])
                .arg(format!("{}:img", layout.display()))
                .arg(&bundle),
        );
        let index: Value =
            serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
        let blob = |d: &Value| {
            layout
                .join("blobs/sha256")
                .join(d["digest"].as_str().unwrap().trim_start_matches("sha256:"))
        };
        let manifest: Value =
            serde_json::from_slice(&fs::read(blob(&index["manifests"][0])).unwrap()).unwrap();
        (bundle.join("rootfs"), manifest)
    }

    fn run_app(&self, image: &str, into: &str) -> String {
        let (rootfs, _) = self.unpack(image, into);
        stdout(&run_ok(&mut Command::new(rootfs.join("app"))))
    }
}

fn commit_main_go(repo: &Path, body: &str, msg: &str) {
    fs::write(
        repo.join("main.go"),
        format!("package main\n\nimport \"fmt\"\n\nfunc main() {{\n\t{body}\n}}\n"),
    )
    .unwrap();
    git(repo, &["commit", "-q", "-am", msg]);
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

#[test]
fn example_chain_builds_in_order_then_a_commit_cascades_and_a_rollback_runs_the_old_code() {
    let w = World::with_go();
    let yaml = w.example();

    // 1. Applied on an empty store: all three build, in order.
    let out = w.apply(&yaml);
    assert!(out.status.success(), "{}", describe(&out));
    let log = stderr(&out);
    assert!(
        log.contains("buildconfig.build.openshift.io/golang-builder created"),
        "{log}"
    );
    assert!(
        log.contains("go-hello-world-appimage-1: ws2i: ==> "),
        "build logs stream prefixed by the build name:\n{log}"
    );
    let b = w.builds();
    let names: Vec<&str> = b.iter().map(|b| s(&b["metadata"]["name"])).collect();
    assert_eq!(
        names,
        [
            "golang-builder-1",
            "go-hello-world-appimage-1",
            "go-hello-world-1"
        ],
        "{log}"
    );
    for x in &b {
        assert_eq!(x["status"]["phase"], "Complete", "{x:#}");
    }
    for pair in b.windows(2) {
        assert!(
            s(&pair[0]["status"]["completionTimestamp"]) <= s(&pair[1]["status"]["startTimestamp"]),
            "in order: {pair:#?}"
        );
    }
    let app1 = &b[1];
    assert_eq!(
        (s(&app1["apiVersion"]), s(&app1["kind"])),
        ("build.openshift.io/v1", "Build"),
        "OKD's shape"
    );
    assert_eq!(
        app1["spec"]["strategy"]["sourceStrategy"]["from"]["kind"], "DockerImage",
        "frozen: {app1:#}"
    );
    assert!(
        s(&app1["spec"]["strategy"]["sourceStrategy"]["from"]["name"])
            .starts_with("golang-builder@sha256:"),
        "{app1:#}"
    );
    assert_eq!(
        b[2]["spec"]["triggeredBy"][0]["message"],
        "Build configuration change"
    );

    let (rootfs, manifest) = w.unpack("go-hello-world:1.0", "v1");
    let entries: Vec<_> = fs::read_dir(&rootfs)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["app"], "the runtime image holds only /app");
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    assert_eq!(
        stdout(&run_ok(&mut Command::new(rootfs.join("app")))),
        "Hello World!\n"
    );
    let runtime1 = w.history("go-hello-world", "1.0");
    assert_eq!(runtime1.len(), 1);

    // 2. A new commit and start-build --wait: the app, then through ImageChange the runtime.
    let repo = w.path("repos/go-hello-world");
    commit_main_go(
        &repo,
        "fmt.Println(\"Hello again, from commit two!\")",
        "second",
    );
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let out = w.cmd(&["start-build", "go-hello-world-appimage", "--wait"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        stdout(&out).trim(),
        "build.build.openshift.io/go-hello-world-appimage-2"
    );
    assert_eq!(w.phase("go-hello-world-appimage-2"), "Complete");
    assert_eq!(
        s(&w.build("go-hello-world-appimage-2")["spec"]["revision"]["git"]["commit"]),
        head
    );
    let rt2 = w.build("go-hello-world-2");
    assert_eq!(rt2["status"]["phase"], "Complete", "{rt2:#}");
    assert_eq!(rt2["spec"]["triggeredBy"][0]["message"], "Image change");
    assert!(
        w.cmd(&["get", "build", "golang-builder-2"]).status.code() != Some(0),
        "the builder is not rebuilt"
    );
    let d = stdout(&w.ok(&["describe", "is", "go-hello-world-appimage"]));
    assert_eq!(
        d.matches("go-hello-world-appimage@sha256:").count(),
        2,
        "two history items:\n{d}"
    );
    assert_eq!(
        w.run_app("go-hello-world:1.0", "v2"),
        "Hello again, from commit two!\n"
    );

    // 3. Rollback: tag the first app image again; the runtime rebuilds and runs the old code.
    let app_hist = w.history("go-hello-world-appimage", "1.0");
    assert_eq!(app_hist.len(), 2);
    let first = &app_hist[1];
    let out = w.cmd(&[
        "tag",
        &format!("go-hello-world-appimage@{first}"),
        "go-hello-world-appimage:1.0",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stdout(&out)
            .contains("Tag go-hello-world-appimage:1.0 set to go-hello-world-appimage@sha256:"),
        "{}",
        describe(&out)
    );
    assert_eq!(w.phase("go-hello-world-3"), "Complete");
    assert_eq!(w.run_app("go-hello-world:1.0", "v3"), "Hello World!\n");
    let rt = w.history("go-hello-world", "1.0");
    assert_eq!(rt.len(), 3);
    assert_eq!(
        rt[0], runtime1[0],
        "reproducible: the old code gives the old runtime digest"
    );
    // The store image IS:TAG is the stream tag's current image.
    let inspect: Value = serde_json::from_slice(
        &w.ok(&["--output", "json", "inspect", "go-hello-world:1.0"])
            .stdout,
    )
    .unwrap();
    assert_eq!(s(&inspect["digest"]), rt[0]);
}

#[test]
fn broken_commit_fails_with_the_compilers_message_and_changes_no_stream() {
    let w = World::with_go();
    let yaml = w.example();
    run_ok(w.ws2i().args(["--quiet", "apply", "-f"]).arg(&yaml));
    let before = (
        w.history("go-hello-world-appimage", "1.0"),
        w.history("go-hello-world", "1.0"),
    );
    let repo = w.path("repos/go-hello-world");
    commit_main_go(&repo, "fmt.Println(undefinedThing)", "broken");
    let out = w.cmd(&["start-build", "go-hello-world-appimage", "--wait"]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        stderr(&out).contains("go-hello-world-appimage-2"),
        "{}",
        describe(&out)
    );
    let b = w.build("go-hello-world-appimage-2");
    assert_eq!(b["status"]["phase"], "Failed", "{b:#}");
    let logs = stdout(&w.ok(&["logs", "build/go-hello-world-appimage-2"]));
    assert!(
        logs.contains("main.go:6:14: undefined: undefinedThing"),
        "the compiler's message is in the log:\n{logs}"
    );
    let logs_bc = stdout(&w.ok(&["logs", "bc/go-hello-world-appimage"]));
    assert_eq!(logs, logs_bc);
    assert_eq!(
        (
            w.history("go-hello-world-appimage", "1.0"),
            w.history("go-hello-world", "1.0")
        ),
        before,
        "no stream changed"
    );
    assert!(
        !w.cmd(&["get", "build", "go-hello-world-2"])
            .status
            .success(),
        "no downstream build"
    );
}

/// A Source build of the example app straight from ws2i/go:latest (a few seconds of real Go
/// compiling), with the given run policy and no triggers.
fn slow_bc(w: &World, policy: &str) -> PathBuf {
    let repo = w.repo("app", &workspace_root().join("examples/okd-pipeline/app"));
    let f = w.path("slow.yaml");
    fs::write(
        &f,
        format!(
            "apiVersion: image.openshift.io/v1\nkind: ImageStream\nmetadata: {{name: app}}\n---\n\
             apiVersion: build.openshift.io/v1\nkind: BuildConfig\nmetadata: {{name: slow}}\nspec:\n  runPolicy: {policy}\n\
             \x20 source: {{git: {{uri: 'file://{}'}}}}\n  strategy: {{sourceStrategy: {{from: {{kind: DockerImage, name: 'ws2i/go:latest'}}}}}}\n\
             \x20 output: {{to: {{kind: ImageStreamTag, name: 'app:1.0'}}}}\n",
            repo.display()
        ),
    )
    .unwrap();
    let out = w.apply(&f);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(w.builds().is_empty(), "no trigger, no build");
    f
}

fn start(w: &World, bc: &str) -> Child {
    w.ws2i()
        .args(["--quiet", "start-build", bc])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn span(b: &Value) -> (String, String) {
    (
        s(&b["status"]["startTimestamp"]).to_string(),
        s(&b["status"]["completionTimestamp"]).to_string(),
    )
}

/// Two `start-build slow` processes started at once, both succeeding: the builds' spans.
fn two_at_once(policy: &str) -> ((String, String), (String, String)) {
    let w = World::with_go();
    slow_bc(&w, policy);
    let (a, b) = (start(&w, "slow"), start(&w, "slow"));
    for c in [a, b] {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", describe(&o));
    }
    (span(&w.build("slow-1")), span(&w.build("slow-2")))
}

#[test]
fn run_policy_serial_runs_two_processes_one_after_the_other() {
    let ((s1, e1), (s2, e2)) = two_at_once("Serial");
    assert!(
        e1 <= s2 || e2 <= s1,
        "Serial builds overlapped: slow-1 {s1}..{e1}, slow-2 {s2}..{e2}"
    );
}

#[test]
fn run_policy_parallel_runs_both_at_once() {
    let ((s1, e1), (s2, e2)) = two_at_once("Parallel");
    assert!(
        s1 < e2 && s2 < e1,
        "Parallel builds did not overlap: slow-1 {s1}..{e1}, slow-2 {s2}..{e2}"
    );
}

#[test]
fn run_policy_serial_latest_only_cancels_the_queued_older_build() {
    let w = World::with_go();
    slow_bc(&w, "SerialLatestOnly");
    let a = start(&w, "slow");
    wait_until("slow-1 to run", || {
        w.cmd(&["get", "build", "slow-1", "-o", "json"])
            .status
            .success()
            && w.phase("slow-1") == "Running"
    });
    let b = start(&w, "slow");
    wait_until("slow-2 to be queued", || {
        w.cmd(&["get", "build", "slow-2", "-o", "json"])
            .status
            .success()
    });
    assert_eq!(w.phase("slow-2"), "New");
    let c = start(&w, "slow");
    let (oa, ob, oc) = (
        a.wait_with_output().unwrap(),
        b.wait_with_output().unwrap(),
        c.wait_with_output().unwrap(),
    );
    assert!(
        oa.status.success() && oc.status.success(),
        "{}\n{}",
        describe(&oa),
        describe(&oc)
    );
    assert!(
        !ob.status.success(),
        "the cancelled build's start-build fails: {}",
        describe(&ob)
    );
    let b2 = w.build("slow-2");
    assert_eq!(
        (s(&b2["status"]["phase"]), s(&b2["status"]["reason"])),
        ("Cancelled", "CancelledBuild"),
        "{b2:#}"
    );
    assert_eq!(w.phase("slow-1"), "Complete");
    assert_eq!(w.phase("slow-3"), "Complete");
}

#[test]
fn a_build_killed_mid_run_is_error_on_the_next_command_and_the_database_is_intact() {
    let w = World::with_go();
    slow_bc(&w, "Serial");
    let mut a = start(&w, "slow");
    wait_until("slow-1 to run", || {
        w.cmd(&["get", "build", "slow-1", "-o", "json"])
            .status
            .success()
            && w.phase("slow-1") == "Running"
    });
    a.kill().unwrap(); // SIGKILL
    a.wait().unwrap();
    let out = w.ok(&["get", "builds"]);
    assert!(
        stderr(&out).contains(
            "build default/slow-1 was Running in a ws2i process that is gone; it is now Error"
        ),
        "{}",
        describe(&out)
    );
    assert!(
        stdout(&out).contains("Error (BuildPodDeleted)"),
        "{}",
        describe(&out)
    );
    let b = w.build("slow-1");
    assert_eq!(b["status"]["phase"], "Error");
    assert!(w.history("app", "1.0").is_empty(), "nothing was tagged");
    let conn = rusqlite::Connection::open(w.home().join("pipeline.db")).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    // The BuildConfig builds again.
    let out = w.cmd(&["--quiet", "start-build", "slow", "--wait"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(w.history("app", "1.0").len(), 1);
}

/// A BuildConfig whose inline Dockerfile builds in milliseconds (no Go): FROM scratch and a label.
fn quick_bc(name: &str, extra_spec: &str, dockerfile: &str, triggers: &str) -> String {
    format!(
        "apiVersion: image.openshift.io/v1\nkind: ImageStream\nmetadata: {{name: {name}}}\n---\n\
         apiVersion: build.openshift.io/v1\nkind: BuildConfig\nmetadata: {{name: {name}}}\nspec:\n{extra_spec}\
         \x20 source: {{dockerfile: {}}}\n  strategy: {{dockerStrategy: {{}}}}\n\
         \x20 output: {{to: {{kind: ImageStreamTag, name: '{name}:latest'}}}}\n  triggers: {triggers}\n",
        serde_json::to_string(dockerfile).unwrap()
    )
}

#[test]
fn history_limits_keep_the_configured_numbers_and_a_same_digest_rebuild_adds_no_history() {
    let w = World::new();
    let f = w.path("lim.yaml");
    let ok = quick_bc(
        "lim",
        "  successfulBuildsHistoryLimit: 2\n  failedBuildsHistoryLimit: 1\n",
        "FROM scratch\nLABEL purpose=limits\n",
        "[]",
    );
    let bad = quick_bc(
        "bad",
        "  failedBuildsHistoryLimit: 1\n",
        "FROM scratch\nCOPY missing.txt /x\n",
        "[]",
    );
    fs::write(&f, format!("{ok}---\n{bad}")).unwrap();
    w.ok(&["apply", "-f", f.to_str().unwrap()]);
    for _ in 0..4 {
        let out = w.ok(&["start-build", "lim", "--wait"]);
        let _ = out;
    }
    for _ in 0..3 {
        let out = w.cmd(&["start-build", "bad", "--wait"]);
        assert!(!out.status.success(), "{}", describe(&out));
    }
    let names: Vec<String> = w
        .builds()
        .iter()
        .map(|b| s(&b["metadata"]["name"]).to_string())
        .collect();
    assert_eq!(names, ["lim-3", "lim-4", "bad-3"]);
    assert_eq!(
        w.history("lim", "latest").len(),
        1,
        "four identical images are one history item"
    );
    let last = w.build("lim-4");
    assert!(
        s(&last["status"]["message"]).contains("no new history item"),
        "{last:#}"
    );
    // prune by hand: keep 1 of each.
    let out = w.ok(&["prune", "builds", "--keep", "1"]);
    assert!(
        stdout(&out).contains("build.build.openshift.io/lim-3 deleted"),
        "{}",
        describe(&out)
    );
    let names: Vec<String> = w
        .builds()
        .iter()
        .map(|b| s(&b["metadata"]["name"]).to_string())
        .collect();
    assert_eq!(names, ["lim-4", "bad-3"]);
}

#[test]
fn two_processes_applying_and_starting_builds_at_once_lose_nothing() {
    let w = World::new();
    let shared = w.path("shared.yaml");
    fs::write(
        &shared,
        quick_bc(
            "shared",
            "  runPolicy: Parallel\n",
            "FROM scratch\nLABEL shared=yes\n",
            "[]",
        ),
    )
    .unwrap();
    w.ok(&["apply", "-f", shared.to_str().unwrap()]);
    let mut children = Vec::new();
    for i in 0..4 {
        let f = w.path(&format!("own-{i}.yaml"));
        fs::write(
            &f,
            quick_bc(
                &format!("own-{i}"),
                "",
                &format!("FROM scratch\nLABEL own={i}\n"),
                "[{type: ConfigChange}]",
            ),
        )
        .unwrap();
        children.push(
            w.ws2i()
                .args(["--quiet", "apply", "-f"])
                .arg(&f)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        children.push(start(&w, "shared"));
    }
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", describe(&o));
    }
    let mut names: Vec<String> = w
        .builds()
        .iter()
        .map(|b| s(&b["metadata"]["name"]).to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "own-0-1", "own-1-1", "own-2-1", "own-3-1", "shared-1", "shared-2", "shared-3",
            "shared-4"
        ]
    );
    for b in w.builds() {
        assert_eq!(b["status"]["phase"], "Complete", "{b:#}");
    }
    assert_eq!(w.json(&["get", "bc", "shared"])["status"]["lastVersion"], 4);
    assert_eq!(w.json(&["get", "is"])["items"].as_array().unwrap().len(), 5);
}

#[test]
fn bad_input_is_refused_naming_the_problem_and_nothing_is_written() {
    let w = World::new();
    let good_is =
        "apiVersion: image.openshift.io/v1\nkind: ImageStream\nmetadata: {name: first}\n---\n";
    let cases = [
        (
            "kind",
            format!("{good_is}apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\n"),
            "unknown kind \"Deployment\"",
        ),
        (
            "yaml",
            format!("{good_is}kind: ImageStream\nmetadata:\n  name: [unclosed\n"),
            "column",
        ),
        (
            "run",
            format!(
                "{good_is}{}",
                quick_bc(
                    "runner",
                    "",
                    "FROM scratch\nRUN mkdir -p /go/src/app\n",
                    "[]"
                )
            ),
            "spec.source.dockerfile: Containerfile line 2: shell-form RUN is refused",
        ),
    ];
    for (name, text, want) in cases {
        let f = w.path(&format!("{name}.yaml"));
        fs::write(&f, text).unwrap();
        let out = w.apply(&f);
        assert!(!out.status.success(), "{name}: {}", describe(&out));
        assert!(
            stderr(&out).contains(want),
            "{name}: want {want:?}\n{}",
            describe(&out)
        );
        assert!(
            stderr(&out).contains(&format!("{name}.yaml")),
            "the error names the file: {}",
            describe(&out)
        );
        assert!(
            w.json(&["get", "is"])["items"]
                .as_array()
                .unwrap()
                .is_empty(),
            "{name}: nothing written"
        );
    }

    // A `from` naming a stream that does not exist: accepted, the build waits as New and says so.
    let f = w.path("waits.yaml");
    fs::write(
        &f,
        "apiVersion: build.openshift.io/v1\nkind: BuildConfig\nmetadata: {name: waits}\nspec:\n  source: {dockerfile: 'FROM scratch'}\n  \
         strategy: {dockerStrategy: {from: {kind: ImageStreamTag, name: 'nowhere:1'}}}\n  triggers: [{type: ConfigChange}]\n",
    )
    .unwrap();
    let out = w.apply(&f);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stderr(&out).contains("waits-1: waiting as New: image stream nowhere does not exist"),
        "{}",
        describe(&out)
    );
    let b = w.build("waits-1");
    assert_eq!(
        (s(&b["status"]["phase"]), s(&b["status"]["reason"])),
        ("New", "InvalidImageReference"),
        "{b:#}"
    );

    // A `paths` source that is not in the image: the build fails naming it; no stream changes.
    let ctx = w.path("base-ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Containerfile"),
        "FROM scratch\nCOPY hello.txt /hello.txt\n",
    )
    .unwrap();
    fs::write(ctx.join("hello.txt"), "hi\n").unwrap();
    run_ok(w.ws2i().args(["--quiet", "bud", "-t", "base:1"]).arg(&ctx));
    let f = w.path("paths.yaml");
    fs::write(
        &f,
        "apiVersion: image.openshift.io/v1\nkind: ImageStream\nmetadata: {name: out}\n---\n\
         apiVersion: build.openshift.io/v1\nkind: BuildConfig\nmetadata: {name: paths}\nspec:\n  source:\n    dockerfile: \"FROM scratch\\nCOPY app /app\\n\"\n    \
         images: [{from: {kind: DockerImage, name: 'base:1'}, paths: [{sourcePath: /opt/app-root/app, destinationDir: '.'}]}]\n  \
         strategy: {dockerStrategy: {}}\n  output: {to: {kind: ImageStreamTag, name: 'out:1'}}\n  triggers: [{type: ConfigChange}]\n",
    )
    .unwrap();
    let out = w.apply(&f);
    assert!(!out.status.success(), "{}", describe(&out));
    let b = w.build("paths-1");
    assert_eq!(
        (s(&b["status"]["phase"]), s(&b["status"]["reason"])),
        ("Failed", "FetchImageContentFailed"),
        "{b:#}"
    );
    let msg = s(&b["status"]["message"]);
    assert!(
        msg.contains("spec.source.images[0].paths[0]")
            && msg.contains("/opt/app-root/app")
            && msg.contains("does not exist in the image"),
        "{msg}"
    );
    assert!(w.history("out", "1").is_empty());
    run_fail(w.ws2i().args(["inspect", "out:1"]));
}

#[test]
fn the_seed_articles_yaml_is_accepted_its_dropped_triggers_are_named_and_the_errors_say_why() {
    let w = World::new();
    // A local stand-in for docker.io's golang:1.12 (tests have no network).
    let base = w.path("golang-ctx");
    fs::create_dir_all(&base).unwrap();
    fs::write(
        base.join("Containerfile"),
        "FROM scratch\nENV GOPATH=/go\nCOPY README /go/README\n",
    )
    .unwrap();
    fs::write(base.join("README"), "stand-in\n").unwrap();
    run_ok(
        w.ws2i()
            .args(["--quiet", "bud", "-t", "golang:1.12"])
            .arg(&base),
    );
    // The builder repository: a Dockerfile in the article's shape, with its native RUN.
    let src = w.path("builder-src");
    fs::create_dir_all(src.join("s2i/bin")).unwrap();
    fs::write(src.join("s2i/bin/assemble"), "#!/bin/bash\ngo build\n").unwrap();
    fs::write(
        src.join("Dockerfile"),
        "# golang-builder\nFROM golang:1.12\nENV STI_SCRIPTS_PATH=/usr/libexec/s2i \\\n    SOURCE_DIR=/go/src/app\n\
         LABEL io.openshift.s2i.scripts-url=image://${STI_SCRIPTS_PATH}\nCOPY ./s2i/bin/ ${STI_SCRIPTS_PATH}\n\
         RUN mkdir -p $SOURCE_DIR \\\n      && chmod 0777 $SOURCE_DIR\nWORKDIR $SOURCE_DIR\nUSER 1001\nCMD [\"/usr/libexec/s2i/usage\"]\n",
    )
    .unwrap();
    let repo = w.repo("golang-s2i", &src);
    git(&repo, &["branch", "-m", "master"]);
    let yaml = w.path("okd");
    copy_tree(&workspace_root().join("tests/fixtures/okd-seed"), &yaml);
    let bc = yaml.join("buildConfig-golang-builder.yaml");
    let text = fs::read_to_string(&bc).unwrap().replace(
        "file:///SEED-BUILDER-REPO",
        &format!("file://{}", repo.display()),
    );
    fs::write(&bc, text).unwrap();

    let out = w.apply(&yaml);
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "the builder fails: {}",
        describe(&out)
    );
    for bc in [
        "golang-builder",
        "go-hello-world-appimage",
        "go-hello-world",
    ] {
        assert!(err.contains(&format!("warning: buildconfig/{bc}: spec.triggers[1] has no type (found imageChange.type: ImageChange); dropped")), "{bc}:\n{err}");
        assert!(
            err.contains(&format!("buildconfig.build.openshift.io/{bc} created")),
            "{err}"
        );
    }
    assert!(
        err.contains("Did you mean \\\"- type: ImageChange\\n  imageChange: {}\\\"?")
            || err.contains("Did you mean \"- type: ImageChange\\n  imageChange: {}\"?"),
        "{err}"
    );
    assert!(
        !err.contains("unknown field"),
        "the seed's YAML has only the dropped-trigger warnings: {err}"
    );
    assert_eq!(err.matches("warning: ").count(), 3, "{err}");
    let b = w.build("golang-builder-1");
    assert_eq!(
        (s(&b["status"]["phase"]), s(&b["status"]["reason"])),
        ("Failed", "DockerBuildFailed"),
        "{b:#}"
    );
    assert!(
        s(&b["status"]["message"]).contains("line 7")
            && s(&b["status"]["message"]).contains("shell-form RUN is refused"),
        "{b:#}"
    );
    for (name, waits_for) in [
        ("go-hello-world-appimage-1", "golang-builder:1.12"),
        ("go-hello-world-1", "go-hello-world-appimage:1.0"),
    ] {
        let b = w.build(name);
        assert_eq!(b["status"]["phase"], "New", "{b:#}");
        assert!(
            s(&b["status"]["message"])
                .contains(&format!("image stream tag {waits_for} has no image yet")),
            "{b:#}"
        );
    }
    let bcs = w.json(&["get", "bc"]);
    for bc in bcs["items"].as_array().unwrap() {
        assert_eq!(
            bc["spec"]["triggers"].as_array().unwrap().len(),
            1,
            "only ConfigChange survives: {bc:#}"
        );
    }
    let table = stdout(&w.ok(&["get", "builds"]));
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.contains("golang-builder-1")
            && table.contains("Docker")
            && table.contains("Failed (DockerBuildFailed)"),
        "{table}"
    );
}

/// A store image `name` built FROM scratch in milliseconds: `files` (path, content) copied in.
fn tiny_image(w: &World, name: &str, files: &[(&str, &str)]) {
    let ctx = w.path(&format!("ctx-{}", name.replace(['/', ':'], "-")));
    fs::create_dir_all(&ctx).unwrap();
    let mut cf = String::from("FROM scratch\n");
    for (p, text) in files {
        fs::write(ctx.join(p), text).unwrap();
        cf.push_str(&format!("COPY {p} /{p}\n"));
    }
    fs::write(ctx.join("Containerfile"), cf).unwrap();
    run_ok(w.ws2i().args(["--quiet", "bud", "-t", name]).arg(&ctx));
}

fn write(w: &World, name: &str, text: &str) -> PathBuf {
    let f = w.path(name);
    fs::write(&f, text).unwrap();
    f
}

#[test]
fn import_image_pins_a_pushed_image_by_digest_and_a_new_digest_cascades() {
    let reg = ws2i_tests::registry::Registry::start().unwrap();
    let host = reg.host();
    let remote = format!("{host}/base:1");
    let w = World::new();
    let push = |files: &[(&str, &str)]| {
        tiny_image(&w, "local/base:x", files);
        run_ok(w.ws2i().args([
            "--quiet",
            "push",
            "local/base:x",
            &format!("docker://{remote}"),
        ]));
    };
    push(&[("v.txt", "one\n")]);

    // A missing stream needs --confirm.
    let out = w.cmd(&["import-image", "base:1", &format!("--from={remote}")]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        stderr(&out).contains("imagestream base not found: add --confirm"),
        "{}",
        describe(&out)
    );

    // Downstream: a Docker build FROM base:1, rebuilt when the tag changes.
    let down = write(
        &w,
        "down.yaml",
        "apiVersion: image.openshift.io/v1\nkind: ImageStream\nmetadata: {name: down}\n---\n\
         apiVersion: build.openshift.io/v1\nkind: BuildConfig\nmetadata: {name: down}\nspec:\n  \
         source: {dockerfile: \"FROM scratch\\nLABEL down=yes\\n\"}\n  \
         strategy: {dockerStrategy: {from: {kind: ImageStreamTag, name: 'base:1'}}}\n  \
         output: {to: {kind: ImageStreamTag, name: 'down:latest'}}\n  triggers: [{type: ImageChange}]\n",
    );
    w.ok(&["apply", "-f", down.to_str().unwrap()]);
    assert!(w.builds().is_empty());

    let out = w.ok(&[
        "import-image",
        "base:1",
        &format!("--from={remote}"),
        "--confirm",
    ]);
    assert!(
        stdout(&out).contains(&format!("Tag base:1 imported from {remote}: sha256:")),
        "{}",
        describe(&out)
    );
    let h1 = w.history("base", "1");
    assert_eq!(h1.len(), 1);
    let is = w.json(&["get", "is", "base"]);
    assert_eq!(
        is["spec"]["tags"][0]["from"]["kind"], "DockerImage",
        "{is:#}"
    );
    assert_eq!(is["spec"]["tags"][0]["from"]["name"], remote.as_str());
    assert_eq!(w.phase("down-1"), "Complete");
    let b1 = w.build("down-1");
    assert!(
        s(&b1["spec"]["strategy"]["dockerStrategy"]["from"]["name"]).ends_with(&h1[0]),
        "pinned by digest: {b1:#}"
    );

    // The registry's tag moves: import-image (the spec's from) appends it and cascades.
    push(&[("v.txt", "two\n")]);
    let out = w.ok(&["import-image", "base:1"]);
    assert!(stdout(&out).contains("imported from"), "{}", describe(&out));
    let h2 = w.history("base", "1");
    assert_eq!(h2.len(), 2, "{h2:?}");
    assert_eq!(h2[1], h1[0]);
    assert_eq!(w.phase("down-2"), "Complete");

    // Same digest again: no history item, nothing fires.
    let out = w.ok(&["import-image", "base:1"]);
    assert!(
        stdout(&out).contains("no new history item"),
        "{}",
        describe(&out)
    );
    assert_eq!(w.history("base", "1").len(), 2);
    assert_eq!(w.builds().len(), 2);

    // Changing the source needs --confirm.
    let out = w.cmd(&["import-image", "base:1", "--from=elsewhere.example/x:1"]);
    assert!(
        !out.status.success() && stderr(&out).contains("add --confirm to import"),
        "{}",
        describe(&out)
    );

    // Applying a stream whose spec tag is a registry DockerImage imports it (OKD's import at
    // creation); an unreachable one warns, its tag stays empty and the build waiting on it New.
    let apply = write(
        &w,
        "imports.yaml",
        &format!(
            "apiVersion: image.openshift.io/v1\nkind: ImageStream\nmetadata: {{name: golang}}\nspec:\n  tags:\n  \
             - name: '1.12'\n    from: {{kind: DockerImage, name: '{remote}'}}\n---\n\
             apiVersion: image.openshift.io/v1\nkind: ImageStream\nmetadata: {{name: gone}}\nspec:\n  tags:\n  \
             - name: '1'\n    from: {{kind: DockerImage, name: '127.0.0.1:1/nothing:1'}}\n---\n\
             apiVersion: build.openshift.io/v1\nkind: BuildConfig\nmetadata: {{name: waits}}\nspec:\n  \
             source: {{dockerfile: 'FROM scratch'}}\n  strategy: {{dockerStrategy: {{from: {{kind: ImageStreamTag, name: 'gone:1'}}}}}}\n  \
             triggers: [{{type: ConfigChange}}]\n"
        ),
    );
    let out = w.apply(&apply);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(w.history("golang", "1.12"), vec![h2[0].clone()]);
    assert!(
        stderr(&out).contains(
            "warning: imagestream/gone: spec.tags[0] (1): cannot import 127.0.0.1:1/nothing:1"
        ) && stderr(&out).contains("the tag has no image"),
        "{}",
        describe(&out)
    );
    assert!(w.history("gone", "1").is_empty());
    let b = w.build("waits-1");
    assert_eq!(b["status"]["phase"], "New", "{b:#}");
    assert!(
        s(&b["status"]["message"]).contains("image stream tag gone:1 has no image yet"),
        "{b:#}"
    );
}

#[test]
fn secrets_and_config_maps_reach_the_build_and_a_missing_one_keeps_it_new() {
    let w = World::new();
    let bc = write(
        &w,
        "bc.yaml",
        "apiVersion: image.openshift.io/v1\nkind: ImageStream\nmetadata: {name: withsec}\n---\n\
         apiVersion: build.openshift.io/v1\nkind: BuildConfig\nmetadata: {name: withsec}\nspec:\n  source:\n    \
         dockerfile: \"FROM scratch\\nCOPY creds/ /creds/\\nCOPY conf/ /conf/\\n\"\n    \
         secrets: [{secret: {name: token}, destinationDir: creds}]\n    \
         configMaps: [{configMap: {name: settings}, destinationDir: conf}]\n    \
         sourceSecret: {name: git-creds}\n  \
         strategy: {dockerStrategy: {}}\n  output: {to: {kind: ImageStreamTag, name: 'withsec:latest'}}\n  \
         triggers: [{type: ConfigChange}]\n",
    );
    let out = w.apply(&bc);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stderr(&out).contains(
            "spec.source.sourceSecret is not used: ws2i clones with the host's git credentials"
        ),
        "{}",
        describe(&out)
    );
    let b = w.build("withsec-1");
    assert_eq!(
        (s(&b["status"]["phase"]), s(&b["status"]["reason"])),
        ("New", "MissingSecret"),
        "{b:#}"
    );
    assert!(
        s(&b["status"]["message"]).contains("secret token does not exist"),
        "{b:#}"
    );

    // Bad base64 is refused naming the key; nothing is written.
    let bad = write(
        &w,
        "bad.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: token}\ndata: {token: 'not*base64'}\n",
    );
    let out = w.apply(&bad);
    assert!(
        !out.status.success() && stderr(&out).contains("data[\"token\"]: not base64"),
        "{}",
        describe(&out)
    );

    let sec = write(
        &w,
        "secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: token}\ntype: Opaque\n\
         data: {token: czNjcmV0LXZhbHVl}\nstringData: {user: builder}\n",
    );
    let out = w.apply(&sec);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stderr(&out).contains("secret/token created"),
        "{}",
        describe(&out)
    );
    let b = w.build("withsec-1");
    assert_eq!(s(&b["status"]["reason"]), "MissingConfigMap", "{b:#}");
    assert!(
        s(&b["status"]["message"]).contains("configmap settings does not exist"),
        "{b:#}"
    );

    // get shows keys, never values.
    let table = stdout(&w.ok(&["get", "secret"]));
    assert!(
        table.contains("token") && table.contains("Opaque") && table.contains(" 2 "),
        "{table}"
    );
    let j = stdout(&w.ok(&["get", "secret", "token", "-o", "json"]));
    assert!(
        !j.contains("czNjcmV0") && !j.contains("s3cret") && !j.contains("YnVpbGRlcg"),
        "{j}"
    );
    assert!(j.contains("redacted: 12 bytes"), "{j}");

    let cm = write(
        &w,
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n\
         data: {app.conf: \"level=debug\\n\"}\nbinaryData: {blob.bin: AAEC}\n",
    );
    let out = w.apply(&cm);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(w.phase("withsec-1"), "Complete", "{}", describe(&out));
    let table = stdout(&w.ok(&["get", "configmap"]));
    assert!(table.contains("settings"), "{table}");

    let (rootfs, _) = w.unpack("withsec:latest", "withsec");
    assert_eq!(
        fs::read_to_string(rootfs.join("creds/token")).unwrap(),
        "s3cret-value"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("creds/user")).unwrap(),
        "builder"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("conf/app.conf")).unwrap(),
        "level=debug\n"
    );
    assert_eq!(fs::read(rootfs.join("conf/blob.bin")).unwrap(), [0u8, 1, 2]);
}

#[test]
fn a_source_build_sees_its_secret_read_only_and_the_image_does_not_hold_it() {
    let w = World::new();
    ws2i_tests::builders::make_builder(
        &w.home(),
        "ws2i-test/test-builder:latest",
        &["assemble", "run", "save-artifacts", "usage"],
    );
    let src = w.path("src");
    fs::create_dir_all(src.join(".s2i")).unwrap();
    fs::write(src.join("index.html"), "hello\n").unwrap();
    fs::write(
        src.join(".s2i/environment"),
        "TEST_COPY=/var/run/secrets/openshift.io/build/token/token:/opt/app-root/seen-token\n",
    )
    .unwrap();
    let repo = w.repo("site", &src);
    let f = write(
        &w,
        "src.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: token}}\nstringData: {{token: s3cret-value}}\n---\n\
             apiVersion: image.openshift.io/v1\nkind: ImageStream\nmetadata: {{name: site}}\n---\n\
             apiVersion: build.openshift.io/v1\nkind: BuildConfig\nmetadata: {{name: site}}\nspec:\n  \
             source: {{git: {{uri: 'file://{}'}}, secrets: [{{secret: {{name: token}}, destinationDir: creds}}]}}\n  \
             strategy: {{sourceStrategy: {{from: {{kind: DockerImage, name: 'ws2i-test/test-builder:latest'}}}}}}\n  \
             output: {{to: {{kind: ImageStreamTag, name: 'site:latest'}}}}\n  triggers: [{{type: ConfigChange}}]\n",
            repo.display()
        ),
    );
    let out = w.apply(&f);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stderr(&out).contains("injected read-only at /var/run/secrets/openshift.io/build/token"),
        "{}",
        describe(&out)
    );
    // A wasip1 image: umoci's raw unpack (no runtime config).
    let layout = w.path("site/layout");
    run_ok(
        w.ws2i()
            .args(["--quiet", "copy", "site:latest"])
            .arg(format!("oci:{}:img", layout.display())),
    );
    let rootfs = w.path("site/rootfs");
    run_ok(
        Command::new("umoci")
            .args(["raw", "unpack", "--rootless", "--image"])
            .arg(format!("{}:img", layout.display()))
            .arg(&rootfs),
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("opt/app-root/seen-token")).unwrap(),
        "s3cret-value",
        "assemble read the secret"
    );
    assert!(rootfs.join("opt/app-root/src/index.html").is_file());
    assert!(
        !rootfs.join("var/run/secrets").exists(),
        "the injected secret is not in the image"
    );
}

#[test]
fn image_source_as_names_docker_context_and_unknown_fields() {
    let w = World::new();
    tiny_image(&w, "tools:1", &[("tool.txt", "a tool\n")]);
    // The Docker context is the whole tree: .s2i/bin stays in it.
    let ctx = w.path("ctx-src");
    fs::create_dir_all(ctx.join(".s2i/bin")).unwrap();
    fs::write(ctx.join(".s2i/bin/assemble"), "not a hook here\n").unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM mybase\nCOPY --from=mybase /tool.txt /copied.txt\nCOPY .s2i/bin/assemble /assemble.txt\n",
    )
    .unwrap();
    let repo = w.repo("ctx", &ctx);
    let f = write(
        &w,
        "as.yaml",
        &format!(
            "apiVersion: image.openshift.io/v1\nkind: ImageStream\nmetadata: {{name: multi, uid: abc}}\n---\n\
             apiVersion: build.openshift.io/v1\nkind: BuildConfig\nmetadata: {{name: multi, uid: abc, managedFields: [{{x: 1}}]}}\nspec:\n  \
             source:\n    git: {{uri: 'file://{}', fooRef: main}}\n    \
             images: [{{from: {{kind: DockerImage, name: 'tools:1'}}, as: [mybase]}}]\n  \
             strategy: {{dockerStrategy: {{fooBar: 1, noCache: false}}}}\n  \
             output: {{to: {{kind: ImageStreamTag, name: 'multi:latest'}}}}\n  \
             triggers: [{{type: ConfigChange}}, {{imageChange: {{type: ImageChange}}}}]\nstatus: {{lastVersion: 7}}\n",
            repo.display()
        ),
    );
    let out = w.apply(&f);
    assert!(out.status.success(), "{}", describe(&out));
    let err = stderr(&out);
    for field in [
        "spec.strategy.dockerStrategy.fooBar",
        "spec.source.git.fooRef",
    ] {
        assert!(
            err.contains(&format!(
                "warning: BuildConfig/multi: unknown field \"{field}\" (ignored)"
            )),
            "{field}: {err}"
        );
    }
    assert_eq!(
        err.matches("unknown field").count(),
        2,
        "metadata, status and the dropped trigger's fields are not reported: {err}"
    );
    assert!(err.contains("spec.triggers[1] has no type"), "{err}");
    assert_eq!(w.phase("multi-1"), "Complete", "{err}");
    let (rootfs, _) = w.unpack("multi:latest", "multi");
    for (p, want) in [
        ("tool.txt", "a tool\n"),
        ("copied.txt", "a tool\n"),
        ("assemble.txt", "not a hook here\n"),
    ] {
        assert_eq!(fs::read_to_string(rootfs.join(p)).unwrap(), want, "{p}");
    }
}

#[test]
fn cancel_build_stops_a_running_hook_within_a_second() {
    let w = World::with_go();
    slow_bc(&w, "Serial");
    // Enough Go that the compile hook runs for several seconds.
    let repo = w.path("repos/app");
    let mut big = String::from("package main\n\n");
    for i in 0..1500 {
        big.push_str(&format!(
            "func f{i}(x int) int {{ if x > {i} {{ return x * {} % 7919 }}; return x + {i} }}\n",
            i + 1
        ));
    }
    fs::write(repo.join("big.go"), big).unwrap();
    git(&repo, &["add", "big.go"]);
    git(&repo, &["commit", "-q", "-m", "big"]);
    let child = start(&w, "slow");
    // Wait for the compile hook itself, not just the Running phase.
    wait_until("the compile to start", || {
        let out = w.cmd(&["logs", "slow-1"]);
        out.status.success() && stdout(&out).contains("---> Compiling")
    });
    std::thread::sleep(Duration::from_secs(1));
    let t0 = Instant::now();
    w.ok(&["cancel-build", "slow-1"]);
    let out = child.wait_with_output().unwrap();
    let took = t0.elapsed();
    assert!(!out.status.success(), "{}", describe(&out));
    let b = w.build("slow-1");
    assert_eq!(
        (s(&b["status"]["phase"]), s(&b["status"]["reason"])),
        ("Cancelled", "CancelledBuild"),
        "{b:#}"
    );
    assert!(
        took < Duration::from_millis(2500),
        "the hook ran on for {took:?} after cancel-build"
    );
    assert!(w.history("app", "1.0").is_empty(), "no stream changed");
    eprintln!("cancel-build took effect in {took:?}");
}
