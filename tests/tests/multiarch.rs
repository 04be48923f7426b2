//! Multi-arch from one build, without emulation (`ws2i build --platform A,B`): assemble runs once
//! per platform with BuildKit's TARGET* environment, the result is an OCI image index stored
//! locally, pushed whole to a real registry (tests/src/registry.rs) and read back by skopeo, and
//! selected by platform on pull, copy, inspect and run. The mechanics run with the small test
//! builder; the real thing with the Go builder, whose arm64 binary is an aarch64 ELF.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use ws2i_tests::builders::{make_builder, shared_cache};
use ws2i_tests::go_builder::{self, unpack_layout};
use ws2i_tests::registry::Registry;
use ws2i_tests::{describe, run, run_fail, run_ok, skopeo, stderr, stdout, workspace_root, ws2i};

const BUILDER: &str = "ws2i-test/test-builder:latest";
const TWO: &str = "linux/amd64,linux/arm64";

/// A store with the test builder, a source whose run script prints index.txt.
struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let w = World { dir: tempfile::tempdir().unwrap() };
        make_builder(&w.home(), BUILDER, &["assemble", "run", "save-artifacts", "usage"]);
        fs::create_dir_all(w.src()).unwrap();
        fs::write(w.src().join("index.txt"), "hello from every platform\n").unwrap();
        w
    }
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn src(&self) -> PathBuf {
        self.dir.path().join("src")
    }
    fn ws2i(&self) -> Command {
        let mut c = ws2i();
        c.env("WS2I_HOME", self.home()).env("WS2I_CACHE", shared_cache("multiarch"));
        c
    }
    /// `ws2i build --platform PLATFORMS SRC BUILDER TAG`, assemble writing its TARGET* env to
    /// `env_out` in the image.
    fn build(&self, platforms: &str, tag: &str, env_out: &str, extra: &[&str]) -> Output {
        run(self
            .ws2i()
            .args(["build", "--platform", platforms])
            .args(["-e", "TEST_PRINT_ENV=TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT"])
            .args(["-e", &format!("TEST_ENV_OUT={env_out}")])
            .args(extra)
            .arg(self.src())
            .args([BUILDER, tag]))
    }
    /// The top-level descriptor of `tag` in the store's index.json, and the blob it names.
    fn stored(&self, tag: &str) -> (Value, Value) {
        let index = read_json(&self.home().join("index.json"));
        let d = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap_or_else(|| panic!("{tag} is not in the store: {index}"))
            .clone();
        let blob = self.blob(&d);
        (d, blob)
    }
    fn blob(&self, d: &Value) -> Value {
        read_json(&blob_path(&self.home(), d))
    }
    /// The image of `platform` out of `tag`, unpacked by umoci.
    fn unpack(&self, tag: &str, platform: &str, dir: &Path) -> go_builder::Unpacked {
        let layout = dir.join(format!("layout-{}", platform.replace('/', "-")));
        run_ok(self.ws2i().args(["--quiet", "copy", "--platform", platform, tag]).arg(format!("oci:{}:img", layout.display())));
        unpack_layout(&layout, "img", &dir.join(format!("bundle-{}", platform.replace('/', "-"))))
    }
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

fn blob_path(layout: &Path, d: &Value) -> PathBuf {
    layout.join("blobs/sha256").join(d["digest"].as_str().unwrap().trim_start_matches("sha256:"))
}

/// `os/arch` of each entry of an index, in order.
fn platforms_of(index: &Value) -> Vec<String> {
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{}/{}", m["platform"]["os"].as_str().unwrap(), m["platform"]["architecture"].as_str().unwrap()))
        .collect()
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", describe(&out));
    out
}

#[test]
fn two_platforms_make_an_index_pushed_pulled_and_selected_by_platform() {
    let w = World::new();
    let out = ok(w.build(TWO, "multi:1", "/opt/app-root/target.env", &[]));
    let log = stderr(&out);
    for arch in ["amd64", "arm64"] {
        assert!(log.contains(&format!("[linux/{arch}] env TARGETARCH={arch}\n")), "{log}");
        assert!(log.contains(&format!("==> Running assemble [linux/{arch}]")), "{log}");
    }
    assert!(log.contains("==> Writing image index"), "{log}");
    let text = stdout(&out);
    assert!(text.contains("linux/amd64 sha256:") && text.contains("linux/arm64 sha256:"), "{text}");

    // The store holds an OCI index of two platforms, each child's config of its architecture,
    // each assemble having seen its own target.
    let (desc, index) = w.stored("multi:1");
    assert_eq!(desc["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(platforms_of(&index), ["linux/amd64", "linux/arm64"]);
    let t = tempfile::tempdir().unwrap();
    for (i, arch) in ["amd64", "arm64"].into_iter().enumerate() {
        let child = &index["manifests"][i];
        assert_eq!(child["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        let config = w.blob(&w.blob(child)["config"]);
        assert_eq!((config["os"].as_str(), config["architecture"].as_str()), (Some("linux"), Some(arch)), "{config}");
        let img = w.unpack("multi:1", &format!("linux/{arch}"), t.path());
        assert_eq!(img.config["architecture"], arch);
        let env = fs::read_to_string(img.rootfs.join("opt/app-root/target.env")).unwrap();
        assert_eq!(env, format!("TARGETPLATFORM=linux/{arch}\nTARGETOS=linux\nTARGETARCH={arch}\nTARGETVARIANT=\n"), "set, and empty without a variant");
    }

    // skopeo reads the store (an OCI layout) as an index too; ws2i inspect lists the platforms
    // and --raw prints the index as stored.
    let raw: Value = serde_json::from_str(&skopeo(&["inspect", "--raw", &format!("oci:{}:multi:1", w.home().display())])).unwrap();
    assert_eq!(platforms_of(&raw), ["linux/amd64", "linux/arm64"]);
    let raw_ws2i = stdout(&run_ok(w.ws2i().args(["inspect", "--raw", "multi:1"])));
    assert_eq!(serde_json::from_str::<Value>(&raw_ws2i).unwrap(), index);
    let shown = stdout(&run_ok(w.ws2i().args(["inspect", "multi:1"])));
    assert!(shown.contains("Platforms:") && shown.contains("linux/arm64") && shown.contains("(shown below)"), "{shown}");
    let shown = stdout(&run_ok(w.ws2i().args(["inspect", "--platform", "linux/arm64", "multi:1"])));
    assert!(shown.contains("Platform:     linux/arm64"), "{shown}");

    // `ws2i run` picks the host's entry; the other one is refused as not native, an absent one
    // as absent.
    let ran = run_ok(w.ws2i().args(["run", "multi:1"]));
    assert_eq!(stdout(&ran), "hello from every platform\n");
    let ran = run_ok(w.ws2i().args(["run", "--platform", "linux/amd64", "multi:1"]));
    assert_eq!(stdout(&ran), "hello from every platform\n");
    let e = stderr(&run_fail(w.ws2i().args(["run", "--platform", "linux/arm64", "multi:1"])));
    assert!(e.contains("for linux/arm64 cannot run on this linux/amd64 host") && e.contains("does not emulate"), "{e}");
    let e = stderr(&run_fail(w.ws2i().args(["run", "--platform", "linux/s390x", "multi:1"])));
    assert!(e.contains("no manifest for platform linux/s390x") && e.contains("linux/amd64, linux/arm64"), "{e}");

    // prune walks into the index: both children survive though only the index is tagged.
    run_ok(w.ws2i().args(["prune"]));
    run_ok(w.ws2i().args(["inspect", "--platform", "linux/arm64", "multi:1"]));

    // push --all: the real registry holds the index and both manifests, as skopeo sees them.
    let reg = Registry::start().unwrap();
    let remote = format!("docker://{}/multi:1", reg.host());
    let pushed = stdout(&run_ok(w.ws2i().args(["push", "--all", "multi:1", &remote])));
    assert_eq!(pushed.trim(), desc["digest"].as_str().unwrap(), "the index is pushed byte for byte");
    let raw: Value = serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", "--raw", &remote])).unwrap();
    assert_eq!(raw, index);
    let arm = skopeo(&["inspect", "--tls-verify=false", "--override-arch", "arm64", &remote]);
    assert!(arm.contains("\"Architecture\": \"arm64\""), "{arm}");
    for m in index["manifests"].as_array().unwrap() {
        let by_digest = format!("docker://{}/multi@{}", reg.host(), m["digest"].as_str().unwrap());
        skopeo(&["inspect", "--tls-verify=false", "--raw", &by_digest]);
    }

    // Without --all a push picks one platform, as skopeo does: a plain manifest.
    let single = format!("docker://{}/single:1", reg.host());
    run_ok(w.ws2i().args(["--quiet", "push", "--platform", "linux/arm64", "multi:1", &single]));
    let raw: Value = serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", "--raw", &single])).unwrap();
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.manifest.v1+json", "{raw}");

    // pull --platform picks that platform's image; pull --all keeps the index.
    let other = World::new();
    run_ok(other.ws2i().args(["--quiet", "pull", "--platform", "linux/arm64", &remote]));
    let local = format!("{}/multi:1", reg.host());
    let (_, m) = other.stored(&local);
    assert_eq!(other.blob(&m["config"])["architecture"], "arm64");
    let e = stderr(&run_fail(other.ws2i().args(["pull", "--platform", "linux/s390x", &remote])));
    assert!(e.contains("no manifest for platform linux/s390x"), "{e}");
    run_ok(other.ws2i().args(["--quiet", "pull", "--all", &remote]));
    let (d, idx) = other.stored(&local);
    assert_eq!(d["digest"], desc["digest"]);
    assert_eq!(platforms_of(&idx), ["linux/amd64", "linux/arm64"]);

    // copy --all into an oci: layout keeps the index; a docker-archive holds one image only.
    let layout = t.path().join("all-layout");
    run_ok(w.ws2i().args(["--quiet", "copy", "--all", "multi:1"]).arg(format!("oci:{}:x", layout.display())));
    let raw: Value = serde_json::from_str(&skopeo(&["inspect", "--raw", &format!("oci:{}:x", layout.display())])).unwrap();
    assert_eq!(raw, index);
    let archive = t.path().join("x.tar");
    let e = stderr(&run_fail(w.ws2i().args(["copy", "--all", "multi:1"]).arg(format!("docker-archive:{}", archive.display()))));
    assert!(e.contains("holds a single image") && e.contains("--platform"), "{e}");
    assert!(!archive.exists(), "nothing half-written");
}

#[test]
fn one_platform_is_a_plain_manifest_of_that_platform() {
    let w = World::new();
    let out = ok(w.build("linux/arm64", "one:1", "/opt/app-root/target.env", &[]));
    assert!(stderr(&out).contains("env TARGETARCH=arm64"), "{}", stderr(&out));
    let (desc, manifest) = w.stored("one:1");
    assert_eq!(desc["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    let config = w.blob(&manifest["config"]);
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["os"], "linux");
}

#[test]
fn bad_platform_lists_are_refused_before_any_work() {
    let w = World::new();
    for (list, why) in [
        ("linux", "malformed platform \"linux\""),
        ("linux/amd64,", "an empty entry"),
        ("linux/amd64,linux/amd64", "names linux/amd64 twice"),
        ("linux/arm/", "malformed platform"),
        ("linux/am d64", "not OS/ARCH"),
    ] {
        let out = w.build(list, "bad:1", "/x", &[]);
        assert!(!out.status.success(), "{list}: {}", describe(&out));
        let e = stderr(&out);
        assert!(e.contains(why), "{list}: {e}");
        assert!(!e.contains("==> "), "{list}: refused before any stage\n{e}");
    }
    assert!(run(w.ws2i().args(["inspect", "bad:1"])).status.code() != Some(0));
}

#[test]
fn a_failing_platform_leaves_no_index_and_names_itself() {
    let w = World::new();
    fs::write(w.src().join("FAIL"), "").unwrap();
    let out = w.build(TWO, "failed:1", "/x", &[]);
    assert!(!out.status.success(), "{}", describe(&out));
    let e = stderr(&out);
    assert!(e.contains("the build for linux/amd64 failed"), "{e}");
    run_fail(w.ws2i().args(["inspect", "failed:1"]));
}

#[test]
fn build_push_sends_the_whole_index_and_incremental_restores_the_matching_platform() {
    let w = World::new();
    let reg = Registry::start().unwrap();
    let remote = format!("docker://{}/app:1", reg.host());
    // The env file sits in the artifacts, so that the incremental build below restores it.
    let env_out = "/opt/app-root/artifacts-cache/target.env";
    let out = ok(w.build(TWO, &remote, env_out, &["--push"]));
    let log = stderr(&out);
    assert!(log.contains("==> Pushing image index"), "{log}");
    assert!(!log.contains("==> Pushing image ["), "children are not pushed alone:\n{log}");
    let raw: Value = serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", "--raw", &remote])).unwrap();
    assert_eq!(platforms_of(&raw), ["linux/amd64", "linux/arm64"]);
    let result = stdout(&out);
    assert!(result.contains(&format!("Pushed: {remote} sha256:")), "{result}");

    // Incremental: each platform's save-artifacts runs on the same platform's previous image
    // (its artifacts hold the target.env that platform wrote).
    let out = ok(w.build(TWO, &remote, "/opt/app-root/other.env", &["--push", "--incremental"]));
    let log = stderr(&out);
    for arch in ["amd64", "arm64"] {
        assert!(log.contains(&format!("==> Saving artifacts of the previous image [linux/{arch}]")), "{log}");
        assert!(!log.contains("clean build"), "{log}");
    }
    let t = tempfile::tempdir().unwrap();
    let local = format!("{}/app:1", reg.host());
    for arch in ["amd64", "arm64"] {
        let img = w.unpack(&local, &format!("linux/{arch}"), t.path());
        let restored = fs::read_to_string(img.rootfs.join("opt/app-root/artifacts-cache/target.env")).unwrap();
        assert!(restored.contains(&format!("TARGETARCH={arch}\n")), "linux/{arch} restored {restored:?}");
    }
}

/// The Go builder for real: one `ws2i build --platform linux/amd64,linux/arm64` of the hello
/// world example; the registry holds both platforms, the amd64 binary runs here, the arm64 one
/// is an aarch64 ELF. Slow on a cold cache (the Go builder's modules compile once).
#[test]
fn go_builder_builds_amd64_and_arm64_in_one_build() {
    let b = go_builder::builder();
    let src = workspace_root().join("examples/go-hello-world");
    let out = b.build(&src, "go-multi:latest", &["--runtime-image", "scratch", "--platform", TWO]);
    assert!(out.status.success(), "{}", describe(&out));
    let log = stderr(&out);
    assert!(log.contains("for linux/arm64") && log.contains("for linux/amd64"), "{log}");

    let reg = Registry::start().unwrap();
    let remote = format!("docker://{}/go-multi:latest", reg.host());
    run_ok(b.ws2i().args(["--quiet", "push", "--all", "go-multi:latest", &remote]));
    let raw: Value = serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", "--raw", &remote])).unwrap();
    assert_eq!(platforms_of(&raw), ["linux/amd64", "linux/arm64"]);

    let t = tempfile::tempdir().unwrap();
    let amd = b.unpack_with("go-multi:latest", &["--platform", "linux/amd64"], &t.path().join("amd64"));
    assert_eq!(amd.config["architecture"], "amd64");
    let ran = run_ok(&mut Command::new(amd.rootfs.join("app")));
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "Hello World!\n");

    let arm = b.unpack_with("go-multi:latest", &["--platform", "linux/arm64"], &t.path().join("arm64"));
    assert_eq!(arm.config["architecture"], "arm64");
    let elf = fs::read(arm.rootfs.join("app")).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 183, "e_machine EM_AARCH64");
}
