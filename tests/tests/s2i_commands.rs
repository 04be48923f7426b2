//! `ws2i usage`, `ws2i rebuild` and `ws2i create` end to end: the real binary, the test-builder
//! hooks (guest-scripts/test-builder) in a builder image made with the library, real git.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ws2i::image::store::Store;
use ws2i_tests::builders::{digest_line, make_builder, shared_cache};
use ws2i_tests::git::git;
use ws2i_tests::{describe, guests, run, run_fail, run_ok, stderr, stdout, workspace_root, ws2i};

const BUILDER: &str = "ws2i-test/cmd-builder:latest";

struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new(hooks: &[&str]) -> World {
        let w = World {
            dir: tempfile::tempdir().unwrap(),
        };
        make_builder(&w.home(), BUILDER, hooks);
        w
    }
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn ws2i(&self, args: &[&str]) -> Command {
        let mut c = ws2i();
        c.env("WS2I_HOME", self.home())
            .env("WS2I_CACHE", shared_cache("s2i-commands"))
            .args(args);
        c
    }
    fn labels(&self, image: &str) -> serde_json::Value {
        let store = Store::open(self.home()).unwrap();
        let img = store.resolve(&image.parse().unwrap()).unwrap();
        serde_json::to_value(img.config.labels()).unwrap()
    }
}




#[test]
fn usage_prints_the_builders_usage_text() {
    let w = World::new(&["assemble", "run", "usage"]);
    let out = run_ok(&mut w.ws2i(&["usage", BUILDER]));
    assert!(
        stdout(&out).contains("This is the ws2i test builder"),
        "usage text on stdout: {}",
        describe(&out)
    );
}

/// The real ws2i/test-builder, made by `ws2i bud` from its Containerfile as guest-scripts/build
/// makes it.
#[test]
fn usage_of_the_test_builder_made_by_bud() {
    let w = World::new(&[]);
    guests::wasm("test-builder/usage"); // stages guest-scripts/target/hooks/test-builder/
    let gs = guests::guest_scripts_dir();
    let containerfile = gs.join("test-builder/Containerfile");
    run_ok(&mut w.ws2i(&[
        "--quiet",
        "bud",
        "-t",
        "ws2i/test-builder:latest",
        "-f",
        containerfile.to_str().unwrap(),
        gs.to_str().unwrap(),
    ]));
    let out = run_ok(&mut w.ws2i(&["usage", "ws2i/test-builder:latest"]));
    assert!(
        stdout(&out).contains("Sample invocation"),
        "{}",
        describe(&out)
    );
}

#[test]
fn usage_without_a_usage_script_or_builder_is_a_clear_error() {
    let w = World::new(&["assemble", "run"]);
    let out = run_fail(&mut w.ws2i(&["usage", BUILDER]));
    let err = stderr(&out);
    assert!(
        err.contains("ws2i: error:") && err.contains("has no usage script"),
        "{}",
        describe(&out)
    );
    let out = run_fail(&mut w.ws2i(&["usage", "no/such-builder:1"]));
    assert!(stderr(&out).contains("not found"), "{}", describe(&out));
}

#[test]
fn usage_pulls_a_registry_builder_per_pull_policy() {
    let reg = ws2i_tests::registry::Registry::start().unwrap();
    let w = World::new(&["assemble", "run", "usage"]);
    let remote = format!("docker://{}/s2i/cmd-builder:1", reg.host());
    run_ok(&mut w.ws2i(&["push", BUILDER, &remote]));
    let other = World::new(&[]);
    let out = run_fail(&mut other.ws2i(&["usage", &remote, "--pull-policy", "never"]));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("builder image {remote} not found")) && err.contains("--pull-policy is never"),
        "{}",
        describe(&out)
    );
    let out = run_ok(&mut other.ws2i(&["usage", &remote]));
    assert!(stdout(&out).contains("This is the ws2i test builder"), "{}", describe(&out));
    // Kept in the store, so never now finds it.
    run_ok(&mut other.ws2i(&["usage", &remote, "-p", "never"]));
    let out = run_fail(&mut other.ws2i(&["usage", &remote, "--pull-policy", "sometimes"]));
    assert!(stderr(&out).contains("sometimes"), "{}", describe(&out));
}


#[test]
fn rebuild_uses_the_recorded_commit_and_gives_the_same_image() {
    let w = World::new(&["assemble", "run", "usage"]);
    let work = w.dir.path().join("work");
    fs::create_dir_all(work.join("app")).unwrap();
    git(&work, &["init", "-q"]);
    fs::write(work.join("app/version.txt"), "one\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "first version"]);
    let v1 = git(&work, &["rev-parse", "HEAD"]);
    let bare = w.dir.path().join("repo.git");
    run_ok(
        Command::new("git")
            .args(["clone", "-q", "--bare"])
            .arg(&work)
            .arg(&bare),
    );
    let url = format!("file://{}", bare.display());

    let first = run_ok(&mut w.ws2i(&[
        "build",
        &url,
        BUILDER,
        "app:v1",
        "--context-dir",
        "app",
        "--reproducible",
    ]));
    // The branch moves on: a rebuild must still build the commit recorded in the labels.
    fs::write(work.join("app/version.txt"), "two\n").unwrap();
    git(&work, &["commit", "-q", "-am", "second version"]);
    run_ok(
        Command::new("git")
            .arg("-C")
            .arg(&work)
            .args(["push", "-q"])
            .arg(&bare)
            .arg("main"),
    );

    // The recorded source is on this machine: a label alone does not make ws2i build a host path.
    let refused = run_fail(&mut w.ws2i(&["rebuild", "app:v1", "app:again", "--reproducible"]));
    assert!(
        stderr(&refused).contains(&format!("--source {url}")),
        "{}",
        describe(&refused)
    );
    let again = run_ok(&mut w.ws2i(&["rebuild", "app:v1", "app:again", "--reproducible", "--source", &url]));
    let l1 = w.labels("app:v1");
    let l2 = w.labels("app:again");
    assert_eq!(l1["io.openshift.s2i.build.commit.id"], v1.as_str());
    assert_eq!(l1, l2, "{}", describe(&again));
    assert_eq!(
        digest_line(&first),
        digest_line(&again),
        "{}",
        describe(&again)
    );
}

#[test]
fn rebuild_of_an_image_without_s2i_labels_is_a_clear_error() {
    let w = World::new(&["assemble", "run"]);
    let out = run_fail(&mut w.ws2i(&["rebuild", BUILDER, "x:1"]));
    assert!(
        stderr(&out).contains("label io.openshift.s2i.build.image is missing"),
        "{}",
        describe(&out)
    );
    let out = run(&mut w.ws2i(&["images"]));
    assert!(
        !stdout(&out).contains("x:1") && !stdout(&out).contains("x "),
        "no image written: {}",
        describe(&out)
    );
}

/// The scaffold builds and passes its own check out of the box: hooks compiled by cargo (in
/// guest-scripts' target dir, where ws2i-sdk's dependencies are usually built already), the
/// builder made by `ws2i bud`, the test app by `ws2i build`.
#[test]
fn create_scaffolds_a_builder_whose_own_build_script_passes() {
    let w = World::new(&[]);
    let proj = w.dir.path().join("my-builder");
    let out = run_ok(&mut w.ws2i(&["create", "my-builder", proj.to_str().unwrap()]));
    assert!(
        stdout(&out).contains("Created builder my-builder"),
        "{}",
        describe(&out)
    );
    for f in [
        "Cargo.toml",
        "Containerfile",
        "build",
        "README.md",
        "test/test-app/index.html",
        "src/bin/usage.rs",
    ] {
        assert!(proj.join(f).is_file(), "{f} missing");
    }

    // A clean environment: the test harness's CARGO_* variables would change the inner build's
    // fingerprints and make the two builds rebuild each other.
    let bin_dir = ws2i_tests::ws2i_bin().parent().unwrap().to_path_buf();
    // cargo's own bin dir too, as the harness does for guest-scripts/build.
    let mut dirs = vec![bin_dir];
    dirs.extend(
        std::env::var_os("CARGO").and_then(|c| Path::new(&c).parent().map(Path::to_path_buf)),
    );
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let path = std::env::join_paths(dirs).unwrap();
    let mut c = Command::new(proj.join("build"));
    c.env_clear()
        .env("PATH", path)
        .env("WS2I_HOME", w.home())
        .env("WS2I_CACHE", shared_cache("s2i-commands"))
        .env(
            "CARGO_TARGET_DIR",
            workspace_root().join("guest-scripts/target"),
        );
    for keep in [
        "HOME",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
        "TMPDIR",
    ] {
        if let Some(v) = std::env::var_os(keep) {
            c.env(keep, v);
        }
    }
    let out = run_ok(&mut c);
    assert!(
        stdout(&out).contains("ok: my-builder:latest builds my-builder-test-app:latest"),
        "{}",
        describe(&out)
    );
    let labels = w.labels("my-builder-test-app:latest");
    assert_eq!(labels["io.openshift.s2i.build.image"], "my-builder:latest");
}

#[test]
fn create_keeps_existing_files_and_refuses_bad_names() {
    let w = World::new(&[]);
    let proj = w.dir.path().join("p");
    fs::create_dir_all(&proj).unwrap();
    fs::write(proj.join("README.md"), "mine\n").unwrap();
    let out = run_ok(&mut w.ws2i(&["create", "keep", proj.to_str().unwrap()]));
    assert_eq!(
        fs::read_to_string(proj.join("README.md")).unwrap(),
        "mine\n"
    );
    assert!(
        stderr(&out).contains("kept existing README.md"),
        "{}",
        describe(&out)
    );
    assert!(proj.join("Containerfile").is_file());

    for bad in ["Upper", "9lives", "trailing-", "has space", "../escape"] {
        let out = run_fail(&mut w.ws2i(&["create", bad, proj.to_str().unwrap()]));
        assert!(
            stderr(&out).contains("invalid builder name"),
            "{bad}: {}",
            describe(&out)
        );
    }
}
