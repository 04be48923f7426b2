//! `ws2i bud` end to end: the real binary writing into a temp store, read back
//! by real skopeo and umoci.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use ws2i_tests::{run_fail, run_ok, stderr, stdout, workspace_root, ws2i};

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }
    fn ws2i(&self) -> Command {
        let mut c = ws2i();
        c.env("WS2I_HOME", self.store())
            .env_remove("SOURCE_DATE_EPOCH");
        c
    }
    /// `ws2i bud --quiet -t TAG [extra] CONTEXT` → digest.
    fn bud(&self, tag: &str, context: &Path, extra: &[&str]) -> String {
        let out = run_ok(
            self.ws2i()
                .args(["--quiet", "bud", "-t", tag])
                .args(extra)
                .arg(context),
        );
        stdout(&out).trim().to_string()
    }
    fn skopeo_inspect(&self, name: &str, config: bool) -> Value {
        let mut c = Command::new("skopeo");
        c.arg("inspect");
        if config {
            c.arg("--config");
        }
        let out = run_ok(c.arg(format!("oci:{}:{name}", self.store().display())));
        serde_json::from_slice(&out.stdout).unwrap()
    }
    /// The image's rootfs as umoci unpacks it (from a copy in a plain OCI dir:
    /// umoci's `--image` cannot name a tag holding ':').
    fn unpack(&self, name: &str) -> PathBuf {
        let layout = self.dir.path().join("unpack-layout");
        run_ok(Command::new("skopeo").args([
            "copy",
            "-q",
            &format!("oci:{}:{name}", self.store().display()),
            &format!("oci:{}:img", layout.display()),
        ]));
        let bundle = self.dir.path().join("bundle");
        let _ = fs::remove_dir_all(&bundle);
        run_ok(
            Command::new("umoci")
                .args(["unpack", "--rootless", "--image"])
                .arg(format!("{}:img", layout.display()))
                .arg(&bundle),
        );
        bundle.join("rootfs")
    }
    fn index_entries(&self) -> usize {
        match fs::read(self.store().join("index.json")) {
            Ok(b) => serde_json::from_slice::<Value>(&b).unwrap()["manifests"]
                .as_array()
                .map_or(0, Vec::len),
            Err(_) => 0,
        }
    }
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// `ws2i/base:latest`: FROM scratch with an /etc/passwd (what the golang example expects).
fn build_base(home: &Home) -> String {
    let ctx = home.dir.path().join("base-ctx");
    fs::create_dir_all(ctx.join("etc")).unwrap();
    fs::write(
        ctx.join("etc/passwd"),
        "root:x:0:0:root:/root:/sbin/nologin\ndefault:x:1001:0::/opt/app-root/src:/sbin/nologin\n",
    )
    .unwrap();
    fs::write(
        ctx.join("Containerfile"),
        "FROM scratch\nCOPY etc/ /etc/\nENV PATH=/usr/libexec/s2i\n",
    )
    .unwrap();
    home.bud("ws2i/base:latest", &ctx, &[])
}

fn golang_example() -> PathBuf {
    workspace_root().join("examples/containerfiles/golang-builder")
}

#[test]
fn golang_builder_builds_stacks_on_its_base_and_is_readable_by_skopeo_and_umoci() {
    let home = Home::new();
    build_base(&home);
    let out = run_ok(
        home.ws2i()
            .args(["bud", "-t", "ws2i/golang:1.22"])
            .arg(golang_example()),
    );
    let line = stdout(&out);
    assert!(line.starts_with("ws2i/golang:1.22 sha256:"), "{line}");
    // Harmless differences are reported, not hidden.
    assert!(stderr(&out).contains("line 41"), "{}", stderr(&out));

    let m = home.skopeo_inspect("ws2i/golang:1.22", false);
    assert_eq!(
        m["Layers"].as_array().unwrap().len(),
        2,
        "base layer + one layer for the stage: {m}"
    );
    assert_eq!(
        m["Labels"]["io.openshift.s2i.scripts-url"],
        "image:///usr/libexec/s2i"
    );
    assert_eq!(m["Labels"]["io.k8s.display-name"], "Go 1.22.3");
    assert_eq!(m["Created"], "1970-01-01T00:00:00Z");
    let env: Vec<&str> = m["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"PATH=/usr/libexec/s2i"),
        "base ENV kept: {env:?}"
    );
    assert!(env.contains(&"VERSION=1.22.3"), "{env:?}");
    let c = home.skopeo_inspect("ws2i/golang:1.22", true);
    assert_eq!(
        c["config"]["Cmd"],
        serde_json::json!(["/bin/sh", "-c", "$STI_SCRIPTS_PATH/usage"])
    );
    assert_eq!(c["config"]["WorkingDir"], "/opt/app-root/src");
    assert_eq!(c["config"]["User"], "1001");
    assert_eq!(
        c["config"]["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}})
    );

    let rootfs = home.unpack("ws2i/golang:1.22");
    for hook in ["assemble", "run", "usage"] {
        let p = rootfs.join("usr/libexec/s2i").join(hook);
        assert_eq!(mode(&p), 0o755, "{}", p.display());
        assert_eq!(
            fs::read(&p).unwrap(),
            fs::read(golang_example().join("s2i/bin").join(hook)).unwrap()
        );
    }
    assert_eq!(mode(&rootfs.join("usr/libexec/s2i")), 0o755);
    assert!(rootfs.join("opt/app-root/etc/go.env").is_file());
    assert!(
        rootfs.join("opt/app-root/src").is_dir(),
        "WORKDIR is created"
    );
    assert!(rootfs.join("etc/passwd").is_file(), "base layer below");
    assert!(
        !rootfs.join("README.md").exists(),
        ".containerignore applies"
    );
}

#[test]
fn same_inputs_give_the_same_digest_and_output_formats() {
    let (a, b) = (Home::new(), Home::new());
    let (ba, bb) = (build_base(&a), build_base(&b));
    assert_eq!(ba, bb);
    let da = a.bud("ws2i/golang:latest", &golang_example(), &[]);
    let again = a.bud("ws2i/golang:latest", &golang_example(), &[]);
    let db = b.bud("ws2i/golang:latest", &golang_example(), &[]);
    assert!(da.starts_with("sha256:") && da.len() == 71, "{da}");
    assert_eq!(da, again);
    assert_eq!(da, db);

    let out = run_ok(
        a.ws2i()
            .args(["--output", "json", "bud", "-t", "ws2i/golang:latest"])
            .arg(golang_example()),
    );
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        j,
        serde_json::json!({"image": "ws2i/golang:latest", "digest": da})
    );

    // Another time stamp is another image.
    let other = a.bud(
        "ws2i/golang:later",
        &golang_example(),
        &["--source-date-epoch", "1700000000"],
    );
    assert_ne!(other, da);
    assert_eq!(
        a.skopeo_inspect("ws2i/golang:later", false)["Created"],
        "2023-11-14T22:13:20Z"
    );
}

#[test]
fn shell_form_run_fails_naming_the_line_and_writes_nothing() {
    let home = Home::new();
    let ctx = home.dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("f"), "x").unwrap();
    fs::write(
        ctx.join("Containerfile"),
        "FROM scratch\nCOPY f /f\nRUN echo hi > /g\n",
    )
    .unwrap();
    let out = run_fail(home.ws2i().args(["bud", "-t", "bad:1"]).arg(&ctx));
    let err = stderr(&out);
    assert!(
        err.contains("ws2i: error:") && err.contains("line 3"),
        "{err}"
    );
    assert_eq!(home.index_entries(), 0, "no image tagged");
    let blobs = fs::read_dir(home.store().join("blobs/sha256"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(blobs, 0, "no blob written");

    // A missing base is an error too, and names the image.
    fs::write(
        ctx.join("Containerfile"),
        "FROM nothere/base:1\nCOPY f /f\n",
    )
    .unwrap();
    let err = stderr(&run_fail(
        home.ws2i().args(["bud", "-t", "bad:1"]).arg(&ctx),
    ));
    assert!(err.contains("nothere/base:1"), "{err}");
    assert_eq!(home.index_entries(), 0);
}

#[test]
fn multi_stage_copy_from_and_exec_form_run_in_the_sandbox() {
    let home = Home::new();
    let ctx = home.dir.path().join("ctx");
    fs::create_dir_all(ctx.join("tools")).unwrap();
    fs::copy(
        ws2i_tests::guests::wasm("chmodder"),
        ctx.join("tools/chmodder.wasm"),
    )
    .unwrap();
    fs::write(ctx.join("data"), "payload\n").unwrap();
    fs::set_permissions(ctx.join("data"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(
        ctx.join("Containerfile"),
        "FROM scratch AS tools\n\
         COPY tools/ /tools/\n\
         COPY data /work/data\n\
         RUN [\"/tools/chmodder.wasm\", \"/work/data\", \"600\"]\n\
         FROM scratch\n\
         COPY --from=tools /work/data /out/data\n\
         ENTRYPOINT [\"/out/none\"]\n",
    )
    .unwrap();
    home.bud("multi:1", &ctx, &[]);
    let m = home.skopeo_inspect("multi:1", false);
    assert_eq!(
        m["Layers"].as_array().unwrap().len(),
        1,
        "only the output stage's layer: {m}"
    );
    let rootfs = home.unpack("multi:1");
    assert_eq!(
        fs::read_to_string(rootfs.join("out/data")).unwrap(),
        "payload\n"
    );
    assert_eq!(
        mode(&rootfs.join("out/data")),
        0o600,
        "the RUN's chmod is in the copied file"
    );
    assert!(
        !rootfs.join("tools").exists(),
        "the first stage's files stay there"
    );

    // --target builds the first stage instead.
    home.bud("multi:tools", &ctx, &["--target", "tools"]);
    let rootfs = home.unpack("multi:tools");
    assert!(rootfs.join("tools/chmodder.wasm").is_file());
}

#[test]
fn test_builder_image_from_guest_scripts_build() {
    let home = Home::new();
    let script = workspace_root().join("guest-scripts/build");
    let mut cmd = Command::new(&script);
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    // Only the image this test looks at (the others, the Go builder's above all, are large).
    cmd.arg("test-builder")
        .env("WS2I_HOME", home.store())
        .env("WS2I_BIN", ws2i_tests::ws2i_bin());
    let out = run_ok(&mut cmd);
    assert!(
        stdout(&out).contains("ws2i/test-builder:latest sha256:"),
        "{}",
        stdout(&out)
    );
    // Nothing changed: the second run skips the build.
    let out = run_ok(&mut cmd);
    assert!(
        !stdout(&out).contains("ws2i/test-builder:latest"),
        "{}",
        stdout(&out)
    );

    let m = home.skopeo_inspect("ws2i/test-builder:latest", false);
    assert_eq!(
        m["Labels"]["io.openshift.s2i.scripts-url"],
        "image:///usr/libexec/s2i"
    );
    assert_eq!(m["Labels"]["io.openshift.s2i.destination"], "/tmp");
    let c = home.skopeo_inspect("ws2i/test-builder:latest", true);
    assert_eq!(
        c["config"]["Cmd"],
        serde_json::json!(["/usr/libexec/s2i/run"])
    );
    assert_eq!(c["config"]["WorkingDir"], "/opt/app-root/src");
    let rootfs = home.unpack("ws2i/test-builder:latest");
    for hook in ["assemble", "run", "save-artifacts", "usage"] {
        let p = rootfs.join("usr/libexec/s2i").join(hook);
        assert_eq!(mode(&p), 0o755, "{}", p.display());
        assert_eq!(&fs::read(&p).unwrap()[..4], b"\0asm");
    }
}

#[test]
fn bases_come_from_a_registry_and_results_go_to_one() {
    let reg = ws2i_tests::registry::Registry::start().unwrap();
    let (a, b) = (Home::new(), Home::new());
    build_base(&a);
    let host = reg.host();
    run_ok(a.ws2i().args([
        "--quiet",
        "push",
        "ws2i/base:latest",
        &format!("docker://{host}/ws2i/base:1"),
    ]));

    // A store that has never seen the base: `FROM HOST/NAME:TAG` pulls it.
    let ctx = b.dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("hello"), "hi\n").unwrap();
    fs::write(
        ctx.join("Containerfile"),
        "ARG REG\nFROM ${REG}/ws2i/base:1\nCOPY hello /srv/hello\n",
    )
    .unwrap();
    let dest = format!("docker://{host}/app:v1");
    let out = run_ok(
        b.ws2i()
            .args([
                "--output",
                "json",
                "bud",
                "--build-arg",
                &format!("REG={host}"),
                "-t",
                &dest,
            ])
            .arg(&ctx),
    );
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["image"], dest.as_str());
    // The registry's copy is the image; two layers (base + this stage).
    let remote = run_ok(Command::new("skopeo").args(["inspect", "--tls-verify=false", &dest]));
    let m: Value = serde_json::from_slice(&remote.stdout).unwrap();
    assert_eq!(m["Digest"], j["digest"]);
    assert_eq!(m["Layers"].as_array().unwrap().len(), 2, "{m}");
    // Only a docker destination can hold a Docker manifest; the store refuses it clearly.
    let err = stderr(&run_fail(
        b.ws2i()
            .args(["bud", "--format", "docker", "-t", "app:d"])
            .arg(&ctx),
    ));
    assert!(err.contains("OCI manifests only"), "{err}");
    run_ok(
        b.ws2i()
            .args([
                "bud",
                "--format",
                "docker",
                "--build-arg",
                &format!("REG={host}"),
                "-t",
                &format!("docker://{host}/app:docker"),
            ])
            .arg(&ctx),
    );
    let raw = run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{host}/app:docker"),
    ]));
    let raw: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(
        raw["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
}
