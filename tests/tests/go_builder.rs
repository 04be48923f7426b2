//! The Go builder (guest-scripts/go) end to end: Go's own compiler and linker running as
//! WebAssembly in the sandbox build examples/go-* into slim `--runtime-image scratch` images,
//! whose binaries are then run natively.
//!
//! The builder image is staged and made once per test run (tests/src/go_builder.rs).

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ws2i_tests::go_builder::{builder, GoBuilder, Unpacked, BUILDER};
use ws2i_tests::{describe, run_fail, run_ok, stderr, workspace_root};

fn example(name: &str) -> PathBuf {
    workspace_root().join("examples").join(name)
}

fn build_ok(b: &GoBuilder, src: &Path, tag: &str, extra: &[&str]) -> Output {
    let out = b.build(src, tag, extra);
    assert!(out.status.success(), "build of {} failed\n{}", src.display(), describe(&out));
    out
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// What `go build -trimpath -ldflags="-s -w -buildid="` makes natively, with CGO_ENABLED=0, from
/// a copy of `src` elsewhere (so no path of the sandbox can leak into a match).
fn native_go_build(b: &GoBuilder, src: &Path, goarch: &str, dir: &Path) -> Vec<u8> {
    let copy = dir.join("native-src");
    copy_tree(src, &copy);
    let out = dir.join("native-app");
    let read = |f: &str| PathBuf::from(fs::read_to_string(b.staged.join(f)).unwrap().trim());
    let goroot = read("GOROOT");
    run_ok(
        Command::new(goroot.join("bin/go"))
            .current_dir(&copy)
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", goroot.join("bin").display()))
            .env("HOME", dir)
            .env("GOROOT", &goroot)
            .env("GOCACHE", read("GOCACHE"))
            .envs([("GOTOOLCHAIN", "local"), ("GOPROXY", "off"), ("CGO_ENABLED", "0"), ("GOOS", "linux"), ("GOARCH", goarch)])
            .args(["build", "-trimpath", "-ldflags=-s -w -buildid=", "-o"])
            .arg(&out)
            .arg("."),
    );
    fs::read(out).unwrap()
}

/// The sandbox's binary is byte for byte what native `go build` makes.
fn assert_same_as_native(b: &GoBuilder, src: &Path, img: &Unpacked, goarch: &str, dir: &Path) {
    let native = native_go_build(b, src, goarch, dir);
    let sandboxed = fs::read(img.rootfs.join("app")).unwrap();
    assert!(
        native == sandboxed,
        "the sandbox's binary ({} bytes) differs from `go build`'s ({} bytes) for {}",
        sandboxed.len(),
        native.len(),
        src.display()
    );
}

#[test]
fn hello_world_runtime_image_runs_natively_and_matches_native_go() {
    let b = builder();
    let out = build_ok(b, &example("go-hello-world"), "go-hello:latest", &["--runtime-image", "scratch"]);
    let log = stderr(&out);
    assert!(log.contains("---> Compiling example.com/hello"), "{log}");

    let t = tempfile::tempdir().unwrap();
    let img = b.unpack("go-hello:latest", t.path());
    let names: Vec<_> = fs::read_dir(&img.rootfs).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["app"], "the image holds only /app");
    assert_eq!(img.manifest["layers"].as_array().unwrap().len(), 1);
    assert_eq!(img.config["config"]["Entrypoint"], serde_json::json!(["/app"]));
    assert_eq!(img.config["os"], "linux");
    assert_eq!(img.config["architecture"], "amd64");
    assert!(img.size < 3 << 20, "image is {} bytes", img.size);

    let ran = run_ok(&mut Command::new(img.rootfs.join("app")));
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "Hello World!\n");

    assert_same_as_native(b, &example("go-hello-world"), &img, "amd64", t.path());
}

#[test]
fn web_server_answers_over_loopback() {
    let b = builder();
    build_ok(b, &example("go-web-server"), "go-web:latest", &["--runtime-image", "scratch"]);
    let t = tempfile::tempdir().unwrap();
    let img = b.unpack("go-web:latest", t.path());
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Command::new(img.rootfs.join("app"))
        .env_clear()
        .env("ADDR", "127.0.0.1")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
                let mut body = String::new();
                let _ = s.read_to_string(&mut body);
                break body;
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => {
                let _ = server.kill();
                panic!("the server never listened on {port}: {e}");
            }
        }
    };
    let _ = server.kill();
    let _ = server.wait();
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert!(answer.ends_with("Test S2I process!"), "{answer}");
    assert_same_as_native(b, &example("go-web-server"), &img, "amd64", t.path());
}

#[test]
fn goarch_arm64_gives_an_aarch64_elf_and_platform() {
    let b = builder();
    build_ok(b, &example("go-hello-world"), "go-hello-arm64:latest", &["--runtime-image", "scratch", "-e", "GOARCH=arm64"]);
    let t = tempfile::tempdir().unwrap();
    let img = b.unpack("go-hello-arm64:latest", t.path());
    assert_eq!(img.config["architecture"], "arm64");
    assert_eq!(img.config["os"], "linux");
    let elf = fs::read(img.rootfs.join("app")).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(elf[4], 2, "64-bit");
    assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 183, "e_machine EM_AARCH64");
    assert_same_as_native(b, &example("go-hello-world"), &img, "arm64", t.path());
}

#[test]
fn vendored_third_party_module_builds_offline() {
    let b = builder();
    build_ok(b, &example("go-vendored"), "go-vendored:latest", &["--runtime-image", "scratch"]);
    let t = tempfile::tempdir().unwrap();
    let img = b.unpack("go-vendored:latest", t.path());
    let ran = run_ok(&mut Command::new(img.rootfs.join("app")));
    assert!(String::from_utf8_lossy(&ran.stdout).contains("| Hello from a vendored module! |"));
    assert_same_as_native(b, &example("go-vendored"), &img, "amd64", t.path());
}

#[test]
fn assembly_package_goes_through_asm_and_pack() {
    let b = builder();
    build_ok(b, &example("go-assembly"), "go-assembly:latest", &["--runtime-image", "scratch"]);
    let t = tempfile::tempdir().unwrap();
    let img = b.unpack("go-assembly:latest", t.path());
    let ran = run_ok(&mut Command::new(img.rootfs.join("app")));
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "2+3 = 5\n");
    assert_same_as_native(b, &example("go-assembly"), &img, "amd64", t.path());
}

#[test]
fn compile_error_is_logged_fails_and_leaves_no_image() {
    let b = builder();
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    copy_tree(&example("go-hello-world"), &src);
    fs::write(src.join("main.go"), "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(undefinedThing)\n}\n").unwrap();
    let out = b.build(&src, "go-broken:latest", &["--runtime-image", "scratch"]);
    assert!(!out.status.success(), "{}", describe(&out));
    let log = stderr(&out);
    assert!(log.contains("main.go:6:14: undefined: undefinedThing"), "the compiler's message is in the log:\n{log}");
    assert!(log.contains("compiling example.com/hello failed"), "{log}");
    run_fail(b.ws2i().args(["inspect", "go-broken:latest"]));
}

#[test]
fn module_needing_a_download_says_vendor_your_dependencies() {
    let b = builder();
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("go.mod"), "module example.com/needsnet\n\ngo 1.22\n\nrequire github.com/google/uuid v1.6.0\n").unwrap();
    fs::write(src.join("main.go"), "package main\n\nimport \"github.com/google/uuid\"\n\nfunc main() { println(uuid.NewString()) }\n").unwrap();
    let out = b.build(&src, "go-needsnet:latest", &["--runtime-image", "scratch"]);
    assert!(!out.status.success(), "{}", describe(&out));
    let log = stderr(&out);
    assert!(log.contains("github.com/google/uuid") && log.contains("vendor your dependencies"), "{log}");
}

#[test]
fn incremental_build_recompiles_only_the_changed_package_and_its_dependents() {
    let b = builder();
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    copy_tree(&example("go-multi-package"), &src);
    let first = build_ok(b, &src, "go-multi:latest", &[]);
    let log = stderr(&first);
    for p in ["example.com/multi/internal/shout", "example.com/multi/greeting", "example.com/multi\n"] {
        assert!(log.contains(&format!("---> Compiling {p}")), "{p} compiled in a clean build:\n{log}");
    }
    assert!(!log.contains("shout_windows"), "{log}");

    let g = src.join("greeting/greeting.go");
    let changed = fs::read_to_string(&g).unwrap().replace("\"hello, \"", "\"hi, \"");
    fs::write(&g, changed).unwrap();
    let second = build_ok(b, &src, "go-multi:latest", &["--incremental"]);
    let log = stderr(&second);
    assert!(log.contains("---> Compiling example.com/multi/greeting"), "{log}");
    assert!(log.contains("---> Compiling example.com/multi\n"), "main depends on greeting:\n{log}");
    assert!(!log.contains("---> Compiling example.com/multi/internal/shout"), "shout did not change:\n{log}");
    assert!(log.contains("Reused 1 compiled package(s) from the previous build, compiled 2"), "{log}");
}

#[test]
fn usage_explains_the_builder() {
    let b = builder();
    let out = run_ok(b.ws2i().args(["usage", BUILDER]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("--runtime-image scratch") && text.contains("vendor"), "{text}");
}

/// podman (tests/src/podman.rs) pulls the scratch runtime image from a registry on loopback and
/// runs it unprivileged: what ws2i made is an ordinary Linux image to a container engine.
#[test]
fn podman_runs_the_runtime_image_pulled_from_a_loopback_registry() {
    let b = builder();
    build_ok(b, &example("go-hello-world"), "go-hello:podman", &["--runtime-image", "scratch"]);
    let registry = ws2i_tests::registry::Registry::start().unwrap();
    let remote = format!("{}/go-hello:podman", registry.host());
    run_ok(b.ws2i().args(["--quiet", "push", "go-hello:podman", &format!("docker://{remote}")]));
    let t = tempfile::tempdir().unwrap();
    let img = b.unpack("go-hello:podman", t.path());
    // The app is static too, so it doubles as the probe that podman runs containers here.
    let podman = ws2i_tests::podman::Podman::new();
    podman.probe_static(&img.rootfs.join("app"));
    podman.ok(podman.cmd().args(["pull", "--tls-verify=false", &remote]));
    let out = podman.text(&["run", "--rm", "--network", "none", "--read-only", "--user", "1000:1000", "--cap-drop", "all", &remote]);
    assert_eq!(out, "Hello World!\n");
}
