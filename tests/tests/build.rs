//! `ws2i build` end to end: the real binary, the test-builder hooks (guest-scripts/test-builder) in
//! a builder image made with the library, real skopeo and umoci on the result.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ws2i::image::store::Store;
use ws2i_tests::builders::{digest_line, make_builder, make_builder_with, shared_cache};
use ws2i_tests::git::git;
use ws2i_tests::{describe, guests, run, run_fail, run_ok, stderr, stdout, ws2i};

const BUILDER: &str = "ws2i-test/test-builder:latest";

/// A store with the test builder in it, and a source dir.
struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let w = World {
            dir: tempfile::tempdir().unwrap(),
        };
        make_builder(
            &w.home(),
            BUILDER,
            &["assemble", "run", "save-artifacts", "usage"],
        );
        fs::create_dir_all(w.src()).unwrap();
        fs::write(w.src().join("index.html"), "<h1>hello</h1>\n").unwrap();
        fs::create_dir_all(w.src().join("lib")).unwrap();
        fs::write(w.src().join("lib/app.txt"), "app\n").unwrap();
        w
    }
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn src(&self) -> PathBuf {
        self.dir.path().join("src")
    }
    fn write_src(&self, rel: &str, content: impl AsRef<[u8]>) {
        let p = self.src().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    /// `ws2i build` with this world's store and a cache shared by the tests of this file.
    fn build(&self, args: &[&str]) -> Command {
        let mut c = ws2i();
        c.env("WS2I_HOME", self.home())
            .env("WS2I_CACHE", shared_cache("build"))
            .arg("build")
            .args(args);
        c
    }
    fn store(&self) -> Store {
        Store::open(self.home()).unwrap()
    }
    fn has_image(&self, name: &str) -> bool {
        self.store().resolve(&name.parse().unwrap()).is_ok()
    }
    /// `ws2i build ARGS` must fail with `expect` in its stderr.
    fn build_fails(&self, args: &[&str], expect: &str) -> std::process::Output {
        let out = run_fail(&mut self.build(args));
        assert!(stderr(&out).contains(expect), "{}", describe(&out));
        out
    }
}

fn skopeo_inspect_config(home: &Path, name: &str) -> serde_json::Value {
    let out = run(Command::new("skopeo")
        .args(["inspect", "--config"])
        .arg(format!("oci:{}:{name}", home.display())));
    assert!(out.status.success(), "skopeo inspect: {}", describe(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn local_dir_build_has_labels_cmd_and_files() {
    let w = World::new();
    let out = run_ok(&mut w.build(&[
        w.src().to_str().unwrap(),
        BUILDER,
        "app:v1",
        "-n",
        "My App",
        "--label",
        "team=web",
    ]));
    let err = stderr(&out);
    assert!(
        err.contains("Installing application source"),
        "hook log streamed: {}",
        describe(&out)
    );
    assert!(err.contains("ws2i: ==> Running assemble"), "{err}");
    assert!(
        stdout(&out).starts_with("Build completed: app:v1 sha256:"),
        "{}",
        describe(&out)
    );
    assert!(w.has_image("app:v1"));

    let cfg = skopeo_inspect_config(&w.home(), "app:v1");
    let c = &cfg["config"];
    // The run hook is a core module: a wasip1/wasm image whose Entrypoint is the hook.
    assert_eq!(c["Entrypoint"], serde_json::json!(["/usr/libexec/s2i/run"]));
    assert_eq!(
        (cfg["os"].as_str(), cfg["architecture"].as_str()),
        (Some("wasip1"), Some("wasm"))
    );
    let labels = &c["Labels"];
    assert_eq!(labels["io.openshift.s2i.build.image"], BUILDER);
    assert_eq!(
        labels["io.openshift.s2i.build.source-location"],
        w.src().to_str().unwrap()
    );
    assert_eq!(labels["io.k8s.display-name"], "My App");
    assert_eq!(
        labels["io.k8s.description"], "the ws2i test builder",
        "builder labels carried over"
    );
    assert_eq!(
        labels["io.openshift.s2i.scripts-url"],
        "image:///usr/libexec/s2i"
    );
    assert_eq!(labels["team"], "web");
    assert!(
        labels.get("io.openshift.s2i.build.commit.id").is_none(),
        "a plain dir has no commit"
    );
    // The build env does not leak into the image.
    let env: Vec<String> = serde_json::from_value(c["Env"].clone()).unwrap();
    assert_eq!(env, ["PATH=/usr/bin", "FROM_IMAGE=image"]);

    let t = tempfile::tempdir().unwrap();
    let bundle = t.path().join("bundle");
    let out = run(Command::new("umoci")
        .args(["raw", "unpack", "--rootless", "--image"])
        .arg(format!("{}:app:v1", w.home().display()))
        .arg(made(&bundle).join("rootfs")));
    assert!(out.status.success(), "umoci: {}", describe(&out));
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        fs::read_to_string(rootfs.join("opt/app-root/src/index.html")).unwrap(),
        "<h1>hello</h1>\n"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("opt/app-root/src/lib/app.txt")).unwrap(),
        "app\n"
    );
    assert!(rootfs.join("usr/libexec/s2i/run").is_file());
    assert!(
        !rootfs.join("tmp/src").exists(),
        "the injected source is not in the image"
    );
}

#[test]
fn env_precedence_and_json_output() {
    let w = World::new();
    w.write_src(
        ".s2i/environment",
        "TEST_PRINT_ENV=FROM_IMAGE A B C\nA=file\nB=file\n",
    );
    let envf = w.dir.path().join("build.env");
    fs::write(&envf, "// upstream's comment style\nB=envfile\nC=envfile\n").unwrap();
    let out = run_ok(&mut w.build(&[
        w.src().to_str().unwrap(),
        BUILDER,
        "app:env",
        "-E",
        envf.to_str().unwrap(),
        "-e",
        "C=cli",
        "--output",
        "json",
    ]));
    let err = stderr(&out);
    for want in [
        "env FROM_IMAGE=image",
        "env A=file",
        "env B=envfile",
        "env C=cli",
    ] {
        assert!(err.contains(want), "{want}: {}", describe(&out));
    }
    let j: serde_json::Value =
        serde_json::from_str(stdout(&out).trim()).expect("stdout is only the JSON summary");
    assert_eq!(j["image"], "app:env");
    assert_eq!(j["command"], serde_json::json!(["/usr/libexec/s2i/run"]));
    assert!(j["digest"].as_str().unwrap().starts_with("sha256:"));
}

#[test]
fn source_s2i_bin_overrides_the_image_script() {
    let w = World::new();
    // The usage hook as assemble: it prints its text and installs nothing.
    w.write_src(
        ".s2i/bin/assemble",
        fs::read(guests::wasm("test-builder/usage")).unwrap(),
    );
    let out = run_ok(&mut w.build(&[w.src().to_str().unwrap(), BUILDER, "app:override"]));
    assert!(
        stdout(&out).contains("app:override")
            && stderr(&out).contains("This is the ws2i test builder"),
        "{}",
        describe(&out)
    );
    let t = tempfile::tempdir().unwrap();
    let bundle = t.path().join("b");
    run_ok(
        Command::new("umoci")
            .args(["raw", "unpack", "--rootless", "--image"])
            .arg(format!("{}:app:override", w.home().display()))
            .arg(made(&bundle).join("rootfs")),
    );
    assert!(!bundle.join("rootfs/opt/app-root/src").exists());
    assert!(
        !bundle.join("rootfs/tmp/scripts").exists(),
        "injected scripts are not in the image"
    );
}

#[test]
fn failing_assemble_gives_its_exit_code_and_no_image() {
    let w = World::new();
    w.write_src("FAIL", "");
    let out = run_fail(&mut w.build(&[w.src().to_str().unwrap(), BUILDER, "app:fail"]));
    let err = stderr(&out);
    assert!(err.contains("failing on purpose"), "{err}");
    assert!(
        err.contains("assemble failed with exit code 1; no image was written"),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(!w.has_image("app:fail"));
}

#[test]
fn bad_inputs_are_clear_errors_without_an_image() {
    let w = World::new();
    let missing = w.dir.path().join("nope");
    w.build_fails(
        &[missing.to_str().unwrap(), BUILDER, "app:x"],
        "does not exist",
    );

    w.build_fails(
        &[w.src().to_str().unwrap(), "no/such-builder", "app:x"],
        "builder image no/such-builder not found",
    );

    w.write_src(".s2i/environment", "A=1\nthis line is wrong\n");
    w.build_fails(
        &[w.src().to_str().unwrap(), BUILDER, "app:x"],
        ".s2i/environment:2: malformed line",
    );

    w.write_src(".s2i/environment", "A=1\n");
    make_builder(&w.home(), "no-assemble:latest", &["run"]);
    w.build_fails(
        &[w.src().to_str().unwrap(), "no-assemble", "app:x"],
        "no assemble script found",
    );

    w.write_src(".s2i/bin/assemble", "#!/bin/sh\necho native\n");
    let out = run_fail(&mut w.build(&[w.src().to_str().unwrap(), BUILDER, "app:x"]));
    let err = stderr(&out);
    assert!(
        err.contains("/tmp/scripts/assemble") && err.contains("a shell script"),
        "{}",
        describe(&out)
    );
    fs::remove_file(w.src().join(".s2i/bin/assemble")).unwrap();

    w.build_fails(
        &[
            w.src().to_str().unwrap(),
            BUILDER,
            "app:x",
            "--as-dockerfile",
            "Dockerfile",
        ],
        "--as-dockerfile is not supported",
    );

    w.build_fails(
        &[
            w.src().to_str().unwrap(),
            BUILDER,
            "app:x",
            "--pull-policy",
            "sometimes",
        ],
        "sometimes",
    );
    assert!(!w.has_image("app:x"));
}

#[test]
fn reproducible_builds_give_the_same_digest() {
    let w = World::new();
    let a = run_ok(&mut w.build(&[
        w.src().to_str().unwrap(),
        BUILDER,
        "app:r1",
        "--reproducible",
    ]));
    // Touch the source: mtimes must not matter.
    fs::write(w.src().join("index.html"), "<h1>hello</h1>\n").unwrap();
    let b = run_ok(&mut w.build(&[
        w.src().to_str().unwrap(),
        BUILDER,
        "app:r2",
        "--reproducible",
        "-n",
        "app:r1",
    ]));
    assert_eq!(
        digest_line(&a),
        digest_line(&b),
        "{}\n{}",
        describe(&a),
        describe(&b)
    );
    // Without a tag only the digest is stored and printed.
    let c = run_ok(&mut w.build(&[
        w.src().to_str().unwrap(),
        BUILDER,
        "--reproducible",
        "-q",
        "-n",
        "app:r1",
    ]));
    assert_eq!(stdout(&c).trim(), digest_line(&a));
}

#[test]
fn incremental_build_restores_the_previous_artifacts() {
    let w = World::new();
    // No previous image: a clean build with a notice.
    let a = run_ok(&mut w.build(&[
        w.src().to_str().unwrap(),
        BUILDER,
        "app:inc",
        "--incremental",
    ]));
    assert!(
        stderr(&a).contains("clean build: no previous image app:inc"),
        "{}",
        describe(&a)
    );
    assert!(
        stderr(&a).contains("no artifacts to restore"),
        "{}",
        describe(&a)
    );
    let b = run_ok(&mut w.build(&[
        w.src().to_str().unwrap(),
        BUILDER,
        "app:inc",
        "--incremental",
    ]));
    let err = stderr(&b);
    assert!(
        err.contains("ws2i: ==> Saving artifacts of the previous image"),
        "{}",
        describe(&b)
    );
    assert!(
        err.contains("Restoring build artifacts") && err.contains("restored 1 artifact files"),
        "{}",
        describe(&b)
    );
    assert!(!err.contains("clean build"), "{}", describe(&b));
    // A plain build does not look at the previous image.
    let c = run_ok(&mut w.build(&[w.src().to_str().unwrap(), BUILDER, "app:inc"]));
    assert!(
        stderr(&c).contains("no artifacts to restore"),
        "{}",
        describe(&c)
    );
}


#[test]
fn git_source_with_ref_and_context_dir_gets_commit_labels() {
    let w = World::new();
    let work = w.dir.path().join("work");
    fs::create_dir_all(work.join("app")).unwrap();
    git(&work, &["init", "-q"]);
    fs::write(work.join("app/version.txt"), "one\n").unwrap();
    fs::write(work.join("README"), "not in the context dir\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "first version"]);
    git(&work, &["tag", "v1"]);
    let v1 = git(&work, &["rev-parse", "HEAD"]);
    let v1_date = git(&work, &["show", "-s", "--format=%ad", "HEAD"]);
    fs::write(work.join("app/version.txt"), "two\n").unwrap();
    git(&work, &["commit", "-q", "-am", "second version"]);
    let bare = w.dir.path().join("repo.git");
    run_ok(
        Command::new("git")
            .args(["clone", "-q", "--bare"])
            .arg(&work)
            .arg(&bare),
    );
    let url = format!("file://{}", bare.display());

    let out = run_ok(&mut w.build(&[
        &url,
        BUILDER,
        "app:git",
        "--ref",
        "v1",
        "--context-dir",
        "app",
    ]));
    let cfg = skopeo_inspect_config(&w.home(), "app:git");
    let l = &cfg["config"]["Labels"];
    assert_eq!(
        l["io.openshift.s2i.build.commit.id"],
        v1.as_str(),
        "{}",
        describe(&out)
    );
    assert_eq!(
        l["io.openshift.s2i.build.commit.ref"], "HEAD",
        "a tag checkout is detached, as upstream"
    );
    assert_eq!(
        l["io.openshift.s2i.build.commit.author"],
        "Ada Builder <ada@example.com>"
    );
    assert_eq!(l["io.openshift.s2i.build.commit.message"], "first version");
    assert_eq!(l["io.openshift.s2i.build.commit.date"], v1_date.as_str());
    assert_eq!(l["io.openshift.s2i.build.source-location"], url.as_str());
    assert_eq!(l["io.openshift.s2i.build.source-context-dir"], "app");

    let t = tempfile::tempdir().unwrap();
    let bundle = t.path().join("b");
    run_ok(
        Command::new("umoci")
            .args(["raw", "unpack", "--rootless", "--image"])
            .arg(format!("{}:app:git", w.home().display()))
            .arg(made(&bundle).join("rootfs")),
    );
    let app = bundle.join("rootfs/opt/app-root/src");
    assert_eq!(
        fs::read_to_string(app.join("version.txt")).unwrap(),
        "one\n"
    );
    assert!(!app.join("README").exists() && !app.join(".git").exists());

    // A commit (abbreviated) as --ref, with no git program on PATH: git runs in process.
    let out = run_ok(
        w.build(&[&url, BUILDER, "app:git2", "--ref", &v1[..12]])
            .env("PATH", "/nonexistent"),
    );
    let cfg = skopeo_inspect_config(&w.home(), "app:git2");
    assert_eq!(
        cfg["config"]["Labels"]["io.openshift.s2i.build.commit.id"],
        v1.as_str(),
        "{}",
        describe(&out)
    );
    w.build_fails(
        &[&url, BUILDER, "app:bad", "--ref", "nope"],
        "no branch, tag or commit named \"nope\"",
    );
    let missing = format!("file://{}/missing.git", w.dir.path().display());
    let out = run_fail(&mut w.build(&[&missing, BUILDER, "app:bad"]));
    let err = stderr(&out);
    assert!(
        err.contains("git clone") && err.contains("missing.git"),
        "{}",
        describe(&out)
    );
    assert!(!w.has_image("app:bad"));
}

#[test]
fn docker_builder_is_pulled_and_the_result_pushed() {
    let reg = ws2i_tests::registry::Registry::start().unwrap();
    let w = World::new();
    let remote_builder = format!("docker://{}/s2i/test-builder:1", reg.host());
    let push = |src: &str, dst: &str, home: &Path| {
        let mut c = ws2i();
        c.env("WS2I_HOME", home).args(["push", src, dst]);
        run_ok(&mut c);
    };
    push(BUILDER, &remote_builder, &w.home());

    // A second store without the builder.
    let other = World {
        dir: tempfile::tempdir().unwrap(),
    };
    fs::create_dir_all(other.src()).unwrap();
    fs::write(other.src().join("index.html"), "remote\n").unwrap();
    let src = other.src();
    let out = run_fail(&mut other.build(&[
        src.to_str().unwrap(),
        &remote_builder,
        "app:reg",
        "--pull-policy",
        "never",
    ]));
    assert!(
        stderr(&out).contains("--pull-policy is never"),
        "{}",
        describe(&out)
    );
    let out = run_ok(&mut other.build(&[src.to_str().unwrap(), &remote_builder, "app:reg"]));
    assert!(stdout(&out).contains("app:reg"), "{}", describe(&out));
    assert!(
        other.has_image(&format!("{}/s2i/test-builder:1", reg.host())),
        "the builder is kept in the store"
    );

    let remote_app = format!("docker://{}/apps/app:reg", reg.host());
    push("app:reg", &remote_app, &other.home());
    let out = run(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--config",
        &remote_app,
    ]));
    assert!(out.status.success(), "{}", describe(&out));
    let cfg: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        cfg["config"]["Entrypoint"],
        serde_json::json!(["/usr/libexec/s2i/run"])
    );
    assert_eq!(
        cfg["config"]["Labels"]["io.openshift.s2i.build.image"],
        format!("{}/s2i/test-builder:1", reg.host()).as_str()
    );
    assert_eq!(cfg["config"]["Labels"]["io.k8s.display-name"], "app:reg");
}

#[test]
fn runtime_image_gets_only_the_artifacts() {
    let w = World::new();
    make_builder(&w.home(), "runtime:latest", &["run"]);
    let src = w.src();
    let out = run_ok(&mut w.build(&[
        src.to_str().unwrap(),
        BUILDER,
        "app:slim",
        "--runtime-image",
        "runtime",
        "-a",
        "/opt/app-root/src/lib:app",
        "--runtime-artifact",
        "/opt/app-root/src/index.html",
    ]));
    assert!(
        stderr(&out).contains("ws2i: ==> Assembling the runtime image"),
        "{}",
        describe(&out)
    );
    let cfg = skopeo_inspect_config(&w.home(), "app:slim");
    assert_eq!(
        cfg["config"]["Entrypoint"],
        serde_json::json!(["/usr/libexec/s2i/run"])
    );
    let t = tempfile::tempdir().unwrap();
    let bundle = t.path().join("b");
    run_ok(
        Command::new("umoci")
            .args(["raw", "unpack", "--rootless", "--image"])
            .arg(format!("{}:app:slim", w.home().display()))
            .arg(made(&bundle).join("rootfs")),
    );
    let r = bundle.join("rootfs");
    assert_eq!(
        fs::read_to_string(r.join("app/lib/app.txt")).unwrap(),
        "app\n"
    );
    assert_eq!(
        fs::read_to_string(r.join("index.html")).unwrap(),
        "<h1>hello</h1>\n"
    );
    assert!(
        !r.join("opt/app-root/src").exists(),
        "only the artifacts, not the builder's output"
    );
    assert!(
        !r.join("usr/libexec/s2i/assemble").exists(),
        "the runtime image, not the builder"
    );

    w.build_fails(
        &[
            src.to_str().unwrap(),
            BUILDER,
            "app:slim2",
            "--runtime-image",
            "runtime",
            "-a",
            "/opt/app-root/src/missing.bin",
        ],
        "runtime artifact /opt/app-root/src/missing.bin does not exist",
    );
    w.build_fails(
        &[
            src.to_str().unwrap(),
            BUILDER,
            "app:slim2",
            "--runtime-image",
            "runtime",
            "-a",
            "rel:x",
        ],
        "must be an absolute path",
    );
    w.build_fails(
        &[
            src.to_str().unwrap(),
            BUILDER,
            "app:slim2",
            "--runtime-image",
            "runtime",
        ],
        "--runtime-image needs artifacts",
    );
    assert!(!w.has_image("app:slim2"));
}

#[test]
fn builder_symlinks_cannot_redirect_the_injection_to_the_host() {
    let w = World::new();
    let outside = w.dir.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    let target = outside.clone();
    make_builder_with(
        &w.home(),
        "evil:latest",
        &["assemble", "run"],
        &move |root| {
            // /tmp (the destination) is a link to a host directory.
            fs::remove_dir(root.join("tmp")).unwrap();
            std::os::unix::fs::symlink(&target, root.join("tmp")).unwrap();
        },
    );
    let out = run(&mut w.build(&[w.src().to_str().unwrap(), "evil", "app:evil"]));
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing written outside the build root\n{}",
        describe(&out)
    );
    if out.status.success() {
        // The link was resolved inside the build root: the app is still assembled.
        assert!(w.has_image("app:evil"));
    } else {
        assert!(stderr(&out).contains("ws2i: error:"), "{}", describe(&out));
    }
}

#[test]
fn incremental_without_save_artifacts_is_a_clean_build() {
    let w = World::new();
    make_builder(&w.home(), "no-save:latest", &["assemble", "run"]);
    let src = w.src();
    run_ok(&mut w.build(&[src.to_str().unwrap(), "no-save", "app:ns"]));
    let out = run_ok(&mut w.build(&[src.to_str().unwrap(), "no-save", "app:ns", "--incremental"]));
    let err = stderr(&out);
    assert!(
        err.contains("clean build: the previous image app:ns has no save-artifacts script"),
        "{}",
        describe(&out)
    );
    assert!(
        err.contains("no artifacts to restore"),
        "{}",
        describe(&out)
    );
}

#[test]
fn local_git_tree_copy_and_exclude() {
    let w = World::new();
    let repo = w.src();
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "committed"]);
    let head = git(&repo, &["rev-parse", "HEAD"]);
    fs::write(repo.join("index.html"), "dirty\n").unwrap();
    fs::write(repo.join("NOTES.md"), "untracked\n").unwrap();
    let unpack = |tag: &str| {
        let t = tempfile::tempdir().unwrap();
        run_ok(
            Command::new("umoci")
                .args(["raw", "unpack", "--rootless", "--image"])
                .arg(format!("{}:{tag}", w.home().display()))
                .arg(made(t.path().join("b")).join("rootfs")),
        );
        t
    };

    // Default: the committed HEAD only, with its commit labels.
    run_ok(&mut w.build(&[repo.to_str().unwrap(), BUILDER, "app:head"]));
    let l = &skopeo_inspect_config(&w.home(), "app:head")["config"]["Labels"];
    assert_eq!(l["io.openshift.s2i.build.commit.id"], head.as_str());
    let t = unpack("app:head");
    let app = t.path().join("b/rootfs/opt/app-root/src");
    assert_eq!(
        fs::read_to_string(app.join("index.html")).unwrap(),
        "<h1>hello</h1>\n"
    );
    assert!(!app.join("NOTES.md").exists() && !app.join(".git").exists());

    // --copy: the working tree as is, no commit labels; --exclude drops the .md files.
    run_ok(&mut w.build(&[
        repo.to_str().unwrap(),
        BUILDER,
        "app:copy",
        "--copy",
        "--exclude",
        r"(^|/)\.git(/|$)|\.md$",
    ]));
    let l = &skopeo_inspect_config(&w.home(), "app:copy")["config"]["Labels"];
    assert!(l.get("io.openshift.s2i.build.commit.id").is_none());
    let t = unpack("app:copy");
    let app = t.path().join("b/rootfs/opt/app-root/src");
    assert_eq!(
        fs::read_to_string(app.join("index.html")).unwrap(),
        "dirty\n"
    );
    assert!(!app.join("NOTES.md").exists() && !app.join(".git").exists());
    assert!(app.join("lib/app.txt").exists());
}

/// `dir`, created. (`umoci raw unpack` wants the rootfs's parent to exist; the full `unpack`
/// would also write a runtime config.json, which umoci refuses for os wasip1.)
fn made(dir: impl AsRef<Path>) -> PathBuf {
    fs::create_dir_all(&dir).unwrap();
    dir.as_ref().to_path_buf()
}

/// The image's rootfs, unpacked by umoci.
fn unpack(home: &Path, name: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let out = run(Command::new("umoci")
        .args(["raw", "unpack", "--rootless", "--image"])
        .arg(format!("{}:{name}", home.display()))
        .arg(made(t.path().join("bundle")).join("rootfs")));
    assert!(out.status.success(), "umoci: {}", describe(&out));
    t
}

#[test]
fn inject_and_volume_reach_assemble_and_stay_out_of_the_image() {
    let w = World::new();
    let host = w.dir.path().join("host");
    fs::create_dir_all(host.join("secrets-dir")).unwrap();
    fs::write(host.join("token"), "s3cret-file\n").unwrap();
    fs::write(host.join("secrets-dir/key"), "s3cret-dir\n").unwrap();
    let cache = host.join("cache");
    w.write_src(
        ".s2i/environment",
        "TEST_COPY=/run/secrets/token:/cache/token-seen /etc/app-secrets/key:/cache/key-seen\n",
    );
    let inject_file = format!("{}:/run/secrets/token", host.join("token").display());
    let inject_dir = format!("{}:/etc/app-secrets", host.join("secrets-dir").display());
    let volume = format!("{}:/cache", cache.display());
    let out = run_ok(&mut w.build(&[
        w.src().to_str().unwrap(),
        BUILDER,
        "app:secret",
        "-i",
        &inject_file,
        "--inject",
        &inject_dir,
        "-v",
        &volume,
    ]));
    assert!(
        stderr(&out).contains("copied /run/secrets/token"),
        "{}",
        describe(&out)
    );
    // assemble read both injections; what it wrote to the volume is on the host.
    assert_eq!(
        fs::read_to_string(cache.join("token-seen")).unwrap(),
        "s3cret-file\n"
    );
    assert_eq!(
        fs::read_to_string(cache.join("key-seen")).unwrap(),
        "s3cret-dir\n"
    );
    // The injected dir was read-only, and the host files are untouched.
    assert_eq!(
        fs::read_to_string(host.join("token")).unwrap(),
        "s3cret-file\n"
    );

    let t = unpack(&w.home(), "app:secret");
    let rootfs = t.path().join("bundle/rootfs");
    assert!(rootfs.join("opt/app-root/src/index.html").is_file());
    for gone in ["run", "etc/app-secrets", "cache"] {
        assert!(!rootfs.join(gone).exists(), "{gone} leaked into the image");
    }
    let out = run(Command::new("grep").args(["-r", "s3cret"]).arg(&rootfs));
    assert!(
        !out.status.success(),
        "a secret is in the image: {}",
        describe(&out)
    );

    // A write into an injected dir fails the build.
    w.write_src(
        ".s2i/environment",
        "TEST_COPY=/etc/app-secrets/key:/etc/app-secrets/x\n",
    );
    let out = run_fail(&mut w.build(&[
        w.src().to_str().unwrap(),
        BUILDER,
        "app:rw",
        "-i",
        &inject_dir,
    ]));
    assert!(!w.has_image("app:rw"), "{}", describe(&out));
    assert!(!host.join("secrets-dir/x").exists());

    for bad in ["nocolon", ":/x", "/tmp:rel", "/tmp:/", "/tmp:/a/../b"] {
        let out = run_fail(&mut w.build(&[w.src().to_str().unwrap(), BUILDER, "-i", bad]));
        assert!(
            stderr(&out).contains("--inject"),
            "{bad}: {}",
            describe(&out)
        );
    }
}

#[test]
fn image_metadata_labels_win_and_bad_metadata_is_an_error() {
    let w = World::new();
    let meta = r#"TEST_METADATA={"labels":[{"team":"from-assemble"},{"io.k8s.description":"meta","extra":"x"}]}"#;
    let out = run_ok(&mut w.build(&[
        w.src().to_str().unwrap(),
        BUILDER,
        "app:meta",
        "--label",
        "team=cli",
        "-e",
        meta,
    ]));
    let cfg = skopeo_inspect_config(&w.home(), "app:meta");
    let labels = &cfg["config"]["Labels"];
    assert_eq!(labels["team"], "from-assemble", "{}", describe(&out));
    assert_eq!(labels["io.k8s.description"], "meta");
    assert_eq!(labels["extra"], "x");
    let t = unpack(&w.home(), "app:meta");
    assert!(!t.path().join("bundle/rootfs/tmp/.s2i").exists());

    for bad in [
        r#"{"labels":{"a":"b"}}"#,
        r#"{"labels":[{"a":1}]}"#,
        "not json",
    ] {
        let out = run_fail(&mut w.build(&[
            w.src().to_str().unwrap(),
            BUILDER,
            "app:badmeta",
            "-e",
            &format!("TEST_METADATA={bad}"),
        ]));
        let err = stderr(&out);
        assert!(
            err.contains("image_metadata.json") && !err.contains("panicked"),
            "{bad}: {}",
            describe(&out)
        );
        assert!(!w.has_image("app:badmeta"));
    }
}

#[test]
fn push_sends_the_result_to_the_registry_mounting_the_builder_blobs() {
    let reg = ws2i_tests::registry::Registry::start().unwrap();
    let w = World::new();
    let remote_builder = format!("docker://{}/s2i/test-builder:1", reg.host());
    run_ok(
        ws2i()
            .env("WS2I_HOME", w.home())
            .args(["push", BUILDER, &remote_builder]),
    );
    let dest = format!("docker://{}/apps/pushed:v1", reg.host());
    let out = run_ok(&mut w.build(&[
        w.src().to_str().unwrap(),
        &remote_builder,
        &dest,
        "--push",
        "--label",
        "team=web",
        "--output",
        "json",
    ]));
    let res: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pushed = &res["pushed"];
    assert_eq!(pushed["reference"], dest.as_str(), "{}", describe(&out));
    assert!(
        pushed["mounted"].as_u64().unwrap() >= 1,
        "the builder layer is mounted, not uploaded: {pushed}"
    );
    assert!(
        w.has_image(&format!("{}/apps/pushed:v1", reg.host())),
        "kept locally"
    );
    let inspect = |args: &[&str]| -> serde_json::Value {
        let out = run(Command::new("skopeo")
            .args(["inspect", "--tls-verify=false"])
            .args(args)
            .arg(&dest));
        assert!(out.status.success(), "{}", describe(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let cfg = inspect(&["--config"]);
    assert_eq!(
        cfg["config"]["Entrypoint"],
        serde_json::json!(["/usr/libexec/s2i/run"])
    );
    assert_eq!(cfg["config"]["Labels"]["team"], "web");
    assert_eq!(
        cfg["config"]["Labels"]["io.openshift.s2i.build.image"],
        format!("{}/s2i/test-builder:1", reg.host()).as_str()
    );
    let raw = inspect(&["--raw"]);
    assert_eq!(
        raw["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );

    run_ok(&mut w.build(&[
        w.src().to_str().unwrap(),
        BUILDER,
        &dest,
        "--push",
        "--format",
        "docker",
    ]));
    let raw = inspect(&["--raw"]);
    assert_eq!(
        raw["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );

    // TAG and --push must agree; nothing is built otherwise.
    let src = w.src();
    for (args, msg) in [
        (vec!["app:local", "--push"], "--push needs TAG docker://"),
        (vec![dest.as_str()], "add --push"),
        (
            vec!["app:local", "--format", "docker"],
            "--format applies to --push",
        ),
    ] {
        let mut a = vec![src.to_str().unwrap(), BUILDER];
        a.extend(args);
        let out = run_fail(&mut w.build(&a));
        assert!(stderr(&out).contains(msg), "{a:?}: {}", describe(&out));
        assert!(!stderr(&out).contains("Running assemble"));
    }
}

/// A loopback HTTP receiver for one request: returns its URL and the body it got (or `None`
/// when nothing came within 60 s, so the test ends by itself).
fn one_shot_http() -> (String, std::sync::mpsc::Receiver<Option<String>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        l.set_nonblocking(true).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let stream = loop {
            match l.accept() {
                Ok((s, _)) => break Some(s),
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Err(_) => break None,
            }
        };
        let Some(mut s) = stream else {
            let _ = tx.send(None);
            return;
        };
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut len = 0usize;
        let mut request_line = String::new();
        r.read_line(&mut request_line).unwrap();
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            if h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        assert!(request_line.starts_with("POST /hook "), "{request_line}");
        let _ = tx.send(Some(String::from_utf8(body).unwrap()));
    });
    (url, rx)
}

#[test]
fn callback_url_gets_the_outcome_of_success_and_failure() {
    let w = World::new();
    let (url, rx) = one_shot_http();
    run_ok(&mut w.build(&[
        w.src().to_str().unwrap(),
        BUILDER,
        "app:cb",
        "--label",
        "team=web",
        "--callback-url",
        &url,
    ]));
    let body: serde_json::Value =
        serde_json::from_str(&rx.recv().unwrap().expect("callback received")).unwrap();
    assert_eq!(body["success"], true);
    assert_eq!(body["labels"]["team"], "web");
    assert_eq!(body["labels"]["io.openshift.s2i.build.image"], BUILDER);

    w.write_src("FAIL", "");
    let (url, rx) = one_shot_http();
    run_fail(&mut w.build(&[
        w.src().to_str().unwrap(),
        BUILDER,
        "app:cbfail",
        "--callback-url",
        &url,
    ]));
    let body: serde_json::Value =
        serde_json::from_str(&rx.recv().unwrap().expect("callback received")).unwrap();
    assert_eq!(body, serde_json::json!({"success": false, "labels": {}}));

    // A receiver that is not there is a warning; the build's result stands.
    fs::remove_file(w.src().join("FAIL")).unwrap();
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/", gone.local_addr().unwrap());
    drop(gone);
    let out = run_ok(&mut w.build(&[
        w.src().to_str().unwrap(),
        BUILDER,
        "app:cbdead",
        "--callback-url",
        &dead,
    ]));
    assert!(
        stderr(&out).contains("warning: callback to"),
        "{}",
        describe(&out)
    );

    w.build_fails(
        &[
            w.src().to_str().unwrap(),
            BUILDER,
            "--callback-url",
            "ftp://example/x",
        ],
        "--callback-url",
    );
}

#[test]
fn runtime_and_previous_images_have_their_own_pull_policies() {
    let reg = ws2i_tests::registry::Registry::start().unwrap();
    let w = World::new();
    make_builder(&w.home(), "runtime:latest", &["run"]);
    let remote_runtime = format!("docker://{}/s2i/runtime:1", reg.host());
    run_ok(
        ws2i()
            .env("WS2I_HOME", w.home())
            .args(["push", "runtime:latest", &remote_runtime]),
    );

    // A store with the builder but without the runtime image.
    let other = World::new();
    let src = other.src();
    let src = src.to_str().unwrap();
    let extended = |tag: &str, extra: &[&str]| {
        let mut args = vec![src, BUILDER, tag, "--runtime-image", &remote_runtime];
        args.extend_from_slice(&["-a", "/opt/app-root/src/index.html"]);
        args.extend_from_slice(extra);
        other.build(&args)
    };
    let out = run_fail(&mut extended("app:rt", &["--runtime-pull-policy", "never"]));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("runtime image {remote_runtime} not found"))
            && err.contains("--runtime-pull-policy is never"),
        "{}",
        describe(&out)
    );
    assert!(!other.has_image("app:rt"));
    // --pull-policy is the builder's only: never there does not stop the runtime pull.
    run_ok(&mut extended("app:rt", &["--pull-policy", "never"]));
    assert!(other.has_image("app:rt"));
    let out = run_fail(&mut extended(
        "app:rt2",
        &["--runtime-pull-policy", "sometimes"],
    ));
    assert!(stderr(&out).contains("sometimes"), "{}", describe(&out));

    // The previous image of an incremental build pushed to the registry.
    let tag = format!("docker://{}/apps/inc:1", reg.host());
    let out = run_ok(&mut other.build(&[src, BUILDER, &tag, "--push", "--incremental"]));
    assert!(
        stderr(&out).contains("clean build: previous image"),
        "{}",
        describe(&out)
    );
    // A third store that has never seen it: never → a clean build saying why (upstream: the
    // previous image is optional), the default pulls it and restores its artifacts.
    let third = World::new();
    let out = run_ok(&mut third.build(&[
        src,
        BUILDER,
        &tag,
        "--push",
        "--incremental",
        "--incremental-pull-policy",
        "never",
    ]));
    let err = stderr(&out);
    assert!(
        err.contains("clean build") && err.contains("--incremental-pull-policy is never"),
        "{}",
        describe(&out)
    );
    let out = run_ok(&mut World::new().build(&[src, BUILDER, &tag, "--push", "--incremental"]));
    let err = stderr(&out);
    assert!(
        !err.contains("clean build") && err.contains("restored 1 artifact files"),
        "{}",
        describe(&out)
    );
}

#[test]
fn labels_over_the_size_limit_are_refused_without_an_image() {
    let w = World::new();
    let src = w.src();
    let big = format!("big={}", "x".repeat(10_200));
    let out = run_fail(&mut w.build(&[src.to_str().unwrap(), BUILDER, "app:big", "--label", &big]));
    let err = stderr(&out);
    assert!(
        err.contains("over the limit of 10240 bytes")
            && err.contains("largest: big (10203 bytes)")
            && err.contains("no image was written"),
        "{}",
        describe(&out)
    );
    assert!(!w.has_image("app:big"));
    // Just under the limit with the generated labels is fine.
    let ok = format!("big={}", "x".repeat(9_000));
    run_ok(&mut w.build(&[src.to_str().unwrap(), BUILDER, "app:big", "--label", &ok]));
}

/// The owners of the layer `ws2i build --output json` reports, by path.
fn layer_owners(w: &World, out: &std::process::Output) -> Vec<(String, u64, u64)> {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hex = v["layer_digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let blob = fs::File::open(w.home().join("blobs/sha256").join(hex)).unwrap();
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(blob));
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                h.uid().unwrap(),
                h.gid().unwrap(),
            )
        })
        .collect()
}

#[test]
fn assemble_user_owns_the_new_layer_and_the_image_user_stays() {
    let w = World::new();
    // A builder with users, an assemble-user label and a User, made without a daemon.
    let ctx = w.dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("passwd"),
        "root:x:0:0::/root:/bin/sh\napp:x:1001:1002::/opt/app-root:/bin/false\n",
    )
    .unwrap();
    fs::write(ctx.join("group"), "root:x:0:\nweb:x:2000:app\n").unwrap();
    fs::write(
        ctx.join("Containerfile"),
        format!("FROM {BUILDER}\nCOPY passwd group /etc/\nLABEL io.openshift.s2i.assemble-user=app\nUSER 4242\n"),
    )
    .unwrap();
    run_ok(
        ws2i()
            .env("WS2I_HOME", w.home())
            .args(["bud", "-t", "users:1"])
            .arg(&ctx),
    );
    let src = w.src();
    let src = src.to_str().unwrap();
    let build_from = |builder: &str, tag: &str, extra: &[&str]| {
        let mut c = ws2i();
        c.env("WS2I_HOME", w.home())
            .env("WS2I_CACHE", shared_cache("build"))
            .args(["--output", "json", "build", src, builder, tag])
            .args(extra);
        c
    };
    let build = |tag: &str, extra: &[&str]| build_from("users:1", tag, extra);
    let owners_of = |out: &std::process::Output| {
        let o = layer_owners(&w, out);
        assert!(o.iter().any(|(p, _, _)| p.ends_with("index.html")), "{o:?}");
        let mut ids: Vec<(u64, u64)> = o.iter().map(|(_, u, g)| (*u, *g)).collect();
        ids.dedup();
        ids
    };
    // The label wins over User; a name gets its primary group.
    let out = run_ok(&mut build("app:owned", &[]));
    assert_eq!(owners_of(&out), vec![(1001, 1002)], "{}", describe(&out));
    let out = run_ok(&mut build("app:owned", &["--assemble-user", "app:web"]));
    assert_eq!(owners_of(&out), vec![(1001, 2000)]);
    let out = run_ok(&mut build(
        "app:owned",
        &["--assemble-user", "77:78", "--reproducible"],
    ));
    assert_eq!(owners_of(&out), vec![(77, 78)]);
    // s2i: the image's User is the builder's, not the assemble user.
    let cfg = skopeo_inspect_config(&w.home(), "app:owned");
    assert_eq!(cfg["config"]["User"], "4242");

    let out = run_fail(&mut build("app:nouser", &["--assemble-user", "nobody"]));
    assert!(
        stderr(&out)
            .contains("assemble user \"nobody\": no such user in the builder's /etc/passwd"),
        "{}",
        describe(&out)
    );
    let out = run_fail(&mut build("app:nouser", &["--assemble-user", "a:b:c"]));
    assert!(
        stderr(&out).contains("expected USER[:GROUP]"),
        "{}",
        describe(&out)
    );
    assert!(!w.has_image("app:nouser"));

    // Without the label, the builder's User (not in /etc/passwd: group 0); without either, 0:0.
    fs::write(
        ctx.join("Containerfile"),
        "FROM users:1\nLABEL io.openshift.s2i.assemble-user=\"\"\n",
    )
    .unwrap();
    run_ok(
        ws2i()
            .env("WS2I_HOME", w.home())
            .args(["bud", "-t", "users:2"])
            .arg(&ctx),
    );
    let out = run_ok(&mut build_from("users:2", "app:u2", &[]));
    assert_eq!(owners_of(&out), vec![(4242, 0)], "{}", describe(&out));
    let out = run_ok(&mut build_from(BUILDER, "app:root", &[]));
    assert_eq!(owners_of(&out), vec![(0, 0)]);
}

#[test]
fn use_config_saves_restores_and_yields_to_the_command_line() {
    let w = World::new();
    // A config named with --use-config=FILE outside the source is trusted; tests/tests/untrusted.rs
    // has the found one and the one inside the source.
    let cwd = w.dir.path().join("work");
    fs::create_dir_all(&cwd).unwrap();
    let src = w.src();
    let src = src.to_str().unwrap();
    let build = |args: &[&str]| {
        let mut c = w.build(args);
        c.current_dir(&cwd);
        c
    };
    let saved = || -> serde_json::Value {
        serde_json::from_slice(&fs::read(cwd.join(".s2ifile")).unwrap()).unwrap()
    };
    let label = |name: &str, key: &str| {
        skopeo_inspect_config(&w.home(), name)["config"]["Labels"][key].clone()
    };

    run_ok(&mut build(&[
        "--use-config=.s2ifile",
        src,
        BUILDER,
        "app:cfg",
        "-e",
        "A=1",
        "--label",
        "team=x",
        "-n",
        "Saved",
    ]));
    let f = saved();
    assert_eq!(f["source"], src);
    assert_eq!(f["builderImage"], BUILDER);
    assert_eq!(f["tag"], "app:cfg");
    assert_eq!(f["flags"]["env-0"], "A=1");
    assert_eq!(f["flags"]["label-0"], "team=x");
    assert_eq!(f["flags"]["application-name"], "Saved");
    assert!(f["flags"].get("use-config").is_none());

    // Everything restored: a second image from the saved arguments alone.
    run_ok(&mut build(&["--use-config=.s2ifile"]));
    assert_eq!(label("app:cfg", "team"), "x");
    assert_eq!(label("app:cfg", "io.k8s.display-name"), "Saved");

    // An explicit flag wins (all values of a repeatable one) and is saved back.
    run_ok(&mut build(&[
        "--use-config=.s2ifile",
        "--label",
        "team=y",
        "--label",
        "tier=web",
    ]));
    assert_eq!(label("app:cfg", "team"), "y");
    assert_eq!(label("app:cfg", "tier"), "web");
    assert_eq!(label("app:cfg", "io.k8s.display-name"), "Saved");
    let f = saved();
    assert_eq!(
        (
            f["flags"]["label-0"].as_str(),
            f["flags"]["label-1"].as_str()
        ),
        (Some("team=y"), Some("tier=web"))
    );
    assert_eq!(f["flags"]["env-0"], "A=1");

    // Positional arguments replace the saved ones.
    run_ok(&mut build(&["--use-config=.s2ifile", src, BUILDER, "app:other"]));
    assert_eq!(label("app:other", "team"), "y");
    assert_eq!(saved()["tag"], "app:other");

    // A malformed file, or a bad saved value, is an error before anything runs.
    fs::write(cwd.join(".s2ifile"), "{\"flags\": [1]}").unwrap();
    let out = run_fail(&mut build(&["--use-config=.s2ifile", src, BUILDER, "app:bad"]));
    assert!(
        stderr(&out).contains(".s2ifile: not a valid s2i config file"),
        "{}",
        describe(&out)
    );
    fs::write(
        cwd.join(".s2ifile"),
        r#"{"flags":{"pull-policy":"sometimes"}}"#,
    )
    .unwrap();
    let out = run_fail(&mut build(&["--use-config=.s2ifile", src, BUILDER, "app:bad"]));
    let err = stderr(&out);
    assert!(
        err.contains("restored from .s2ifile are invalid") && err.contains("sometimes"),
        "{}",
        describe(&out)
    );
    assert!(!w.has_image("app:bad"));
    // Without --use-config the file is not read.
    run_ok(&mut build(&[src, BUILDER, "app:plain"]));
}

#[test]
fn scripts_url_image_scripts_url_and_destination() {
    let w = World::new();
    let src = w.src();
    let src = src.to_str().unwrap();
    let usage_wasm = guests::wasm("test-builder/usage");
    // --scripts-url wins over the source's .s2i/bin (which holds the real assemble).
    let scripts = w.dir.path().join("scripts");
    fs::create_dir_all(&scripts).unwrap();
    fs::copy(&usage_wasm, scripts.join("assemble")).unwrap();
    w.write_src(
        ".s2i/bin/assemble",
        fs::read(guests::wasm("test-builder/assemble")).unwrap(),
    );
    let url = format!("file://{}", scripts.display());
    let out = run_ok(&mut w.build(&[src, BUILDER, "app:s", "-s", &url]));
    let err = stderr(&out);
    assert!(
        err.contains("This is the ws2i test builder")
            && !err.contains("Installing application source"),
        "{}",
        describe(&out)
    );
    fs::remove_dir_all(w.src().join(".s2i")).unwrap();

    // --image-scripts-url replaces the builder's scripts-url label; run there is the Cmd.
    let (usage_c, run_c) = (usage_wasm.clone(), guests::wasm("test-builder/run"));
    make_builder_with(&w.home(), "alt:latest", &[], &move |root| {
        let alt = root.join("opt/alt");
        fs::create_dir_all(&alt).unwrap();
        fs::copy(&usage_c, alt.join("assemble")).unwrap();
        fs::copy(&run_c, alt.join("run")).unwrap();
    });
    w.build_fails(&[src, "alt", "app:alt"], "no assemble script found");
    let out = run_ok(&mut w.build(&[
        src,
        "alt",
        "app:alt",
        "--image-scripts-url",
        "image:///opt/alt",
    ]));
    assert!(
        stderr(&out).contains("This is the ws2i test builder"),
        "{}",
        describe(&out)
    );
    let cfg = skopeo_inspect_config(&w.home(), "app:alt");
    assert_eq!(
        cfg["config"]["Entrypoint"],
        serde_json::json!(["/opt/alt/run"])
    );

    // --destination: the source is injected there (and left out of the image).
    let out = run_ok(&mut w.build(&[src, BUILDER, "app:d", "-d", "/work"]));
    assert!(
        stderr(&out).contains("copied 2 files"),
        "{}",
        describe(&out)
    );
    let t = unpack(&w.home(), "app:d");
    let root = t.path().join("bundle/rootfs");
    assert!(root.join("opt/app-root/src/index.html").is_file());
    assert!(!root.join("work/src").exists() && !root.join("tmp/src").exists());
}

#[test]
fn save_temp_dir_compression_and_refused_combinations() {
    let w = World::new();
    let src = w.src();
    let src = src.to_str().unwrap();
    let out = run_ok(&mut w.build(&[
        src,
        BUILDER,
        "app:z",
        "--compression",
        "zstd",
        "--save-temp-dir",
    ]));
    let err = stderr(&out);
    let kept = err
        .lines()
        .find_map(|l| {
            l.split_once("build rootfs kept at ")
                .map(|(_, p)| PathBuf::from(p.trim()))
        })
        .unwrap_or_else(|| panic!("no kept path: {}", describe(&out)));
    assert!(
        kept.join("opt/app-root/src/index.html").is_file(),
        "{}",
        kept.display()
    );
    fs::remove_dir_all(&kept).unwrap();
    let raw = run_ok(
        Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:app:z", w.home().display())),
    );
    let m: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    let last = m["layers"].as_array().unwrap().last().unwrap().clone();
    assert!(
        last["mediaType"].as_str().unwrap().ends_with("+zstd"),
        "{m}"
    );

    make_builder(&w.home(), "runtime:latest", &["run"]);
    let refused: [(&[&str], &str); 6] = [
        (
            &[
                "--incremental",
                "--runtime-image",
                "runtime",
                "-a",
                "/opt/app-root/src/index.html",
            ],
            "--incremental cannot be combined with --runtime-image",
        ),
        (&["--compression", "lz4"], "lz4"),
        (&["--incremental-pull-policy", "maybe"], "maybe"),
        (&["--format", "oci2"], "oci2"),
        (&["--format", "oci"], "--format applies to --push only"),
        (&["--no-such-flag"], "--no-such-flag"),
    ];
    for (extra, want) in refused {
        let mut args = vec![src, BUILDER, "app:refused"];
        args.extend_from_slice(extra);
        let out = run_fail(&mut w.build(&args));
        assert!(stderr(&out).contains(want), "{extra:?}: {}", describe(&out));
    }
    assert!(!w.has_image("app:refused"));
}
