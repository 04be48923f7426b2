//! Issue 13, "nothing a hostile tenant controls may steer the host": attacks from what a tenant
//! controls (its source tree and its `.s2ifile`, its git metadata, its hooks' output, its
//! previous image) against the real `ws2i` binary, the test-builder hooks and umoci.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ws2i::image::store::Store;
use ws2i_tests::builders::{digest_line, make_builder, make_builder_with, shared_cache};
use ws2i_tests::git::{git, repo_from};
use ws2i_tests::{describe, run, run_fail, run_ok, stderr, stdout, ws2i};

const BUILDER: &str = "ws2i-test/test-builder:latest";
/// The test builder shaped like a Debian or Fedora base: `/var/run -> ../run`, `/tmp -> var/tmp`.
const DISTRO: &str = "ws2i-test/distro-builder:latest";
const HOOKS: [&str; 4] = ["assemble", "run", "save-artifacts", "usage"];

struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let w = World { dir: tempfile::tempdir().unwrap() };
        make_builder(&w.home(), BUILDER, &HOOKS);
        fs::create_dir_all(w.src()).unwrap();
        w.write_src("index.html", "<h1>hello</h1>\n");
        w
    }
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn src(&self) -> PathBuf {
        self.dir.path().join("src")
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn write_src(&self, rel: &str, content: impl AsRef<[u8]>) {
        let p = self.src().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    fn build(&self, args: &[&str]) -> Command {
        let mut c = ws2i();
        c.env("WS2I_HOME", self.home())
            .env("WS2I_CACHE", shared_cache("untrusted"))
            .env_remove("SOURCE_DATE_EPOCH")
            .arg("build")
            .args(args);
        c
    }
    fn has_image(&self, name: &str) -> bool {
        Store::open(self.home()).unwrap().resolve(&name.parse().unwrap()).is_ok()
    }
    /// The image's rootfs, unpacked by umoci.
    fn unpack(&self, name: &str) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let rootfs = t.path().join("bundle/rootfs");
        fs::create_dir_all(&rootfs).unwrap();
        run_ok(
            Command::new("umoci")
                .args(["raw", "unpack", "--rootless", "--image"])
                .arg(format!("{}:{name}", self.home().display()))
                .arg(&rootfs),
        );
        t
    }
}

fn rootfs(t: &tempfile::TempDir) -> PathBuf {
    t.path().join("bundle/rootfs")
}

/// `out` failed and its stderr names every one of `names`.
fn fails_naming(out: &Output, names: &[&str]) {
    assert!(!out.status.success(), "unexpectedly succeeded\n{}", describe(out));
    let err = stderr(out);
    for n in names {
        assert!(err.contains(n), "the error does not name {n:?}\n{}", describe(out));
    }
}

// ---------------------------------------------------------------------------------------------
// 1. A `.s2ifile` the source controls grants nothing.

#[test]
fn s2ifile_in_the_source_grants_nothing_but_harmless_entries_apply() {
    let w = World::new();
    let host = w.path("host");
    fs::create_dir_all(host.join("cache")).unwrap();
    fs::write(host.join("id_rsa"), "PRIVATE KEY\n").unwrap();
    let src = w.src();
    // Every kind of host grant, next to harmless entries.
    let hostile = serde_json::json!({
        "source": ".", "builderImage": BUILDER, "tag": "app:hostile",
        "flags": {
            "volume-0": format!("{}:/cache", host.join("cache").display()),
            "inject-0": format!("{}:/run/key", host.join("id_rsa").display()),
            "environment-file": host.join("id_rsa").display().to_string(),
            "scripts-url": format!("file://{}", host.display()),
            "digest-file": host.join("written-by-the-tenant").display().to_string(),
            "callback-url": "http://127.0.0.1:9/steal",
            "memory": "64GiB",
            "allow-local-submodules": "true",
            "env-0": "A=from-file",
            "label-0": "team=file",
        }
    });
    fs::write(src.join(".s2ifile"), serde_json::to_vec(&hostile).unwrap()).unwrap();
    // `--use-config` alone, run from inside the checkout.
    let out = run(w.build(&["--use-config"]).current_dir(&src));
    fails_naming(
        &out,
        &[
            "\"volume-0\" (--volume)",
            "\"inject-0\" (--inject)",
            "\"environment-file\" (--environment-file)",
            "\"scripts-url\"",
            "\"digest-file\"",
            "\"callback-url\"",
            "\"memory\"",
            "\"allow-local-submodules\"",
            "grant access to the host",
        ],
    );
    assert!(!stderr(&out).contains("\"env-0\""), "a harmless entry is not refused: {}", describe(&out));
    assert!(!w.has_image("app:hostile"));
    assert!(!host.join("written-by-the-tenant").exists());
    // Naming the file does not make it trusted while it lies inside the source.
    let named = format!("--use-config={}", src.join(".s2ifile").display());
    let out = run(w.build(&[&named]).current_dir(w.dir.path()));
    fails_naming(&out, &["\"volume-0\" (--volume)", "--use-config=FILE"]);

    // A saved SOURCE leading out of the checkout is refused too: it would copy a host dir.
    let elsewhere = serde_json::json!({"source": host.display().to_string(), "builderImage": BUILDER});
    fs::write(src.join(".s2ifile"), serde_json::to_vec(&elsewhere).unwrap()).unwrap();
    let out = run(w.build(&["--use-config"]).current_dir(&src));
    fails_naming(&out, &["\"source\""]);

    // Harmless entries alone apply.
    let harmless = serde_json::json!({
        "source": ".", "builderImage": BUILDER, "tag": "app:harmless",
        "flags": {"env-0": "TEST_PRINT_ENV=A", "env-1": "A=from-file", "label-0": "team=file"}
    });
    fs::write(src.join(".s2ifile"), serde_json::to_vec(&harmless).unwrap()).unwrap();
    let out = run_ok(w.build(&["--use-config"]).current_dir(&src));
    assert!(stderr(&out).contains("env A=from-file"), "{}", describe(&out));
    let cfg = ws2i_tests::skopeo(&["inspect", "--config", &format!("oci:{}:app:harmless", w.home().display())]);
    let cfg: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(cfg["config"]["Labels"]["team"], "file");

    // A grant typed on the command line works, and is not saved into a file the source controls.
    let volume = format!("{}:/cache", host.join("cache").display());
    let out = run_ok(
        w.build(&["--use-config", ".", BUILDER, "app:typed", "-v", &volume, "-e", "TEST_COPY=/tmp/src/index.html:/cache/seen"])
            .current_dir(&src),
    );
    assert!(host.join("cache/seen").is_file(), "{}", describe(&out));
    assert!(stderr(&out).contains("--volume not saved"), "{}", describe(&out));
    let saved: serde_json::Value = serde_json::from_slice(&fs::read(src.join(".s2ifile")).unwrap()).unwrap();
    assert!(saved["flags"].get("volume-0").is_none(), "{saved}");
    assert_eq!(saved["flags"]["env-0"], "TEST_COPY=/tmp/src/index.html:/cache/seen");
    run_ok(w.build(&["--use-config", "-e", "TEST_COPY="]).current_dir(&src));

    // A config the user names, outside the source, is trusted: its grants apply.
    let mine = w.path("mine.s2ifile");
    let trusted = serde_json::json!({
        "source": src.display().to_string(), "builderImage": BUILDER, "tag": "app:trusted",
        "flags": {"volume-0": volume, "env-0": "TEST_COPY=/tmp/src/index.html:/cache/trusted"}
    });
    fs::write(&mine, serde_json::to_vec(&trusted).unwrap()).unwrap();
    let out = run_ok(w.build(&[&format!("--use-config={}", mine.display())]).current_dir(&src));
    assert!(host.join("cache/trusted").is_file(), "{}", describe(&out));
    let saved: serde_json::Value = serde_json::from_slice(&fs::read(&mine).unwrap()).unwrap();
    assert_eq!(saved["flags"]["volume-0"], volume, "a trusted file keeps its grants");
}

// ---------------------------------------------------------------------------------------------
// 2. A local source cannot reach other repositories of the host.

/// A repository elsewhere on the host, holding a secret.
fn other_repo(w: &World) -> PathBuf {
    let content = w.path("other-content");
    fs::create_dir_all(&content).unwrap();
    fs::write(content.join("secret.txt"), "other repository's secret\n").unwrap();
    let repo = w.path("other");
    repo_from(&content, &repo);
    repo
}

#[test]
fn git_metadata_must_resolve_inside_the_source() {
    let w = World::new();
    let other = other_repo(&w);
    let build = |src: &Path, tag: &str| run(&mut w.build(&[src.to_str().unwrap(), BUILDER, tag]));

    // `.git` a symlink to another repository.
    let a = w.path("a");
    fs::create_dir_all(&a).unwrap();
    fs::write(a.join("index.html"), "a\n").unwrap();
    symlink(other.join(".git"), a.join(".git")).unwrap();
    fails_naming(&build(&a, "app:a"), &[".git (a symlink)", "outside the source", "refused"]);

    // `.git` a `gitdir:` file naming another repository.
    let b = w.path("b");
    fs::create_dir_all(&b).unwrap();
    fs::write(b.join(".git"), format!("gitdir: {}\n", other.join(".git").display())).unwrap();
    fails_naming(&build(&b, "app:b"), &["`gitdir:` file", "outside the source"]);

    // A `commondir` leading out.
    let c = w.path("c");
    repo_from(&w.src(), &c);
    fs::write(c.join(".git/commondir"), other.join(".git").display().to_string()).unwrap();
    fails_naming(&build(&c, "app:c"), &["commondir", "outside the source"]);

    // Object alternates leading out (what `git clone --shared` makes).
    let d = w.path("d");
    git(w.dir.path(), &["clone", "-q", "--shared", other.to_str().unwrap(), d.to_str().unwrap()]);
    fails_naming(&build(&d, "app:d"), &["objects/info/alternates", "outside the source"]);

    // A symlink inside the git dir leading out.
    let e = w.path("e");
    repo_from(&w.src(), &e);
    fs::remove_dir_all(e.join(".git/refs/tags")).unwrap();
    symlink(other.join(".git/refs/heads"), e.join(".git/refs/tags")).unwrap();
    fails_naming(&build(&e, "app:e"), &["symlink", "outside the source"]);

    for t in ["app:a", "app:b", "app:c", "app:d", "app:e"] {
        assert!(!w.has_image(t), "{t}");
    }
    // The same checks hold for a file:// URL.
    let url = format!("file://{}", d.display());
    fails_naming(&run(&mut w.build(&[&url, BUILDER, "app:url"])), &["objects/info/alternates"]);

    // A plain repository still builds (committed HEAD).
    let ok = w.path("ok");
    repo_from(&w.src(), &ok);
    run_ok(&mut w.build(&[ok.to_str().unwrap(), BUILDER, "app:ok"]));
}

#[test]
fn local_submodules_need_allow_local_submodules() {
    let w = World::new();
    let other = other_repo(&w);
    for url in [format!("file://{}", other.display()), other.display().to_string(), "../other".to_string()] {
        let top = w.path(&format!("top-{}", url.len()));
        repo_from(&w.src(), &top);
        git(&top, &["-c", "protocol.file.allow=always", "submodule", "add", "-q", &url, "lib"]);
        git(&top, &["commit", "-q", "-m", "with a submodule"]);
        let out = run(&mut w.build(&[top.to_str().unwrap(), BUILDER, "app:sub"]));
        fails_naming(&out, &["reaches the local filesystem", "--allow-local-submodules"]);
        assert!(!w.has_image("app:sub"));
    }
    let top = w.path(&format!("top-{}", other.display().to_string().len()));
    run_ok(&mut w.build(&[top.to_str().unwrap(), BUILDER, "app:allowed", "--allow-local-submodules"]));
    let t = w.unpack("app:allowed");
    assert!(rootfs(&t).join("opt/app-root/src/lib/secret.txt").is_file(), "the flag follows it");
}

// ---------------------------------------------------------------------------------------------
// 3. Exclusions hold through links.

#[test]
fn exclusions_hold_through_symlinks() {
    let w = World::new();
    w.write_src("secret.txt", "ignored secret\n");
    w.write_src("private/key", "excluded key\n");
    w.write_src("keep/ok.txt", "ok\n");
    w.write_src("keep/hidden.txt", "ignored in a dir\n");
    w.write_src(".s2iignore", "secret.txt\nkeep/hidden.txt\n");
    symlink("secret.txt", w.src().join("leak")).unwrap();
    symlink("private", w.src().join("pub")).unwrap();
    symlink("private/key", w.src().join("key")).unwrap();
    symlink("keep", w.src().join("alias")).unwrap();
    let src = w.src();
    for (tag, extra) in [("app:follow", None), ("app:links", Some("--keep-symlinks"))] {
        let mut args = vec![src.to_str().unwrap(), BUILDER, tag, "--exclude", "^private$"];
        args.extend(extra);
        let out = run_ok(&mut w.build(&args));
        let t = w.unpack(tag);
        let app = rootfs(&t).join("opt/app-root/src");
        for gone in ["secret.txt", "private", "leak", "pub", "key", "alias/hidden.txt", "keep/hidden.txt"] {
            assert!(fs::symlink_metadata(app.join(gone)).is_err(), "{tag}: {gone} is in the image\n{}", describe(&out));
        }
        assert_eq!(fs::read_to_string(app.join("keep/ok.txt")).unwrap(), "ok\n");
        assert!(fs::metadata(app.join("alias/ok.txt")).is_ok(), "{tag}: a link to kept content stays");
        let grep = run(Command::new("grep").args(["-r", "ignored secret\\|excluded key\\|ignored in a dir"]).arg(&app));
        assert!(!grep.status.success(), "{tag}: excluded content in the image: {}", describe(&grep));
        assert!(stderr(&out).contains("leak: symlink to secret.txt, which is excluded"), "{}", describe(&out));
    }
}

#[test]
fn containerignore_holds_through_symlinks() {
    let w = World::new();
    let ctx = w.path("ctx");
    fs::create_dir_all(ctx.join("private")).unwrap();
    fs::write(ctx.join("secret.txt"), "ignored secret\n").unwrap();
    fs::write(ctx.join("private/key"), "ignored key\n").unwrap();
    fs::write(ctx.join("ok.txt"), "ok\n").unwrap();
    fs::write(ctx.join(".containerignore"), "secret.txt\nprivate\n").unwrap();
    symlink("secret.txt", ctx.join("leak")).unwrap();
    symlink("private", ctx.join("pub")).unwrap();
    let bud = |file: &str, tag: &str| {
        fs::write(ctx.join("Containerfile"), file).unwrap();
        let mut c = ws2i();
        c.env("WS2I_HOME", w.home()).env_remove("SOURCE_DATE_EPOCH").args(["bud", "-t", tag]).arg(&ctx);
        run(&mut c)
    };
    fails_naming(&bud("FROM scratch\nCOPY leak /leak\n", "b:file"), &["leak", "secret.txt", "excluded"]);
    fails_naming(&bud("FROM scratch\nCOPY pub /pub/\n", "b:dir"), &["pub", "private", "excluded"]);
    let out = bud("FROM scratch\nCOPY . /app/\n", "b:all");
    assert!(out.status.success(), "{}", describe(&out));
    let t = w.unpack("b:all");
    let app = rootfs(&t).join("app");
    assert!(app.join("ok.txt").is_file());
    for gone in ["secret.txt", "private", "leak", "pub"] {
        assert!(fs::symlink_metadata(app.join(gone)).is_err(), "{gone} is in the image");
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Inputs are never committed, whatever links the builder's rootfs has.

fn make_distro_builder(home: &Path) {
    make_builder_with(home, DISTRO, &HOOKS, &|root| {
        fs::create_dir_all(root.join("run")).unwrap();
        fs::create_dir_all(root.join("var/tmp")).unwrap();
        symlink("../run", root.join("var/run")).unwrap();
        fs::remove_dir(root.join("tmp")).unwrap();
        symlink("var/tmp", root.join("tmp")).unwrap();
    });
}

#[test]
fn injected_inputs_stay_out_of_distro_shaped_images() {
    let w = World::new();
    make_distro_builder(&w.home());
    let host = w.path("host");
    fs::create_dir_all(host.join("dir")).unwrap();
    fs::write(host.join("token"), "s3cret-token\n").unwrap();
    fs::write(host.join("dir/key"), "s3cret-key\n").unwrap();
    w.write_src(".s2i/environment", "TEST_COPY=/var/run/secrets/token:/opt/app-root/token-was-read\n");
    let inject = format!("{}:/var/run/secrets/token", host.join("token").display());
    let inject_dir = format!("{}:/var/run/keys", host.join("dir").display());
    let out = run_ok(&mut w.build(&[w.src().to_str().unwrap(), DISTRO, "app:distro", "-i", &inject, "-i", &inject_dir]));
    assert!(stderr(&out).contains("copied /var/run/secrets/token"), "{}", describe(&out));
    let t = w.unpack("app:distro");
    let root = rootfs(&t);
    assert_eq!(fs::read_to_string(root.join("opt/app-root/token-was-read")).unwrap(), "s3cret-token\n");
    assert!(root.join("opt/app-root/src/index.html").is_file(), "the source was installed");
    for gone in ["run/secrets", "run/keys", "var/tmp/src", "var/run/secrets"] {
        assert!(fs::symlink_metadata(root.join(gone)).is_err(), "{gone} was committed\n{}", describe(&out));
    }
    // Only what assemble made is secret-bearing; nothing else in the image holds the token.
    let grep = run(Command::new("grep").args(["-rl", "s3cret"]).arg(&root));
    let hits: Vec<String> = stdout(&grep).lines().map(str::to_string).collect();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert!(hits[0].ends_with("opt/app-root/token-was-read"), "{hits:?}");
    assert!(fs::symlink_metadata(root.join("tmp")).unwrap().file_type().is_symlink(), "the builder's links stay");
}

// ---------------------------------------------------------------------------------------------
// 5. A hook cannot plant whiteouts.

#[test]
fn files_named_like_whiteouts_are_refused() {
    let w = World::new();
    for name in [".wh.index.html", ".wh..wh..opq"] {
        let src = w.path(&format!("wh-{}", name.len()));
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join("index.html"), "x\n").unwrap();
        fs::write(src.join(name), "").unwrap();
        let out = run(&mut w.build(&[src.to_str().unwrap(), BUILDER, "app:wh"]));
        fails_naming(&out, &[&format!("opt/app-root/src/{name}"), "whiteout"]);
        assert!(!w.has_image("app:wh"));
    }
}

// ---------------------------------------------------------------------------------------------
// 6. A hostile previous image cannot break incremental builds.

/// One ustar header block (`name` and `link` up to 100 bytes).
fn header(name: &[u8], kind: u8, size: u64, link: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    if size < 1 << 33 {
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    } else {
        // GNU base-256: the high bit set, the value big-endian.
        h[128..136].copy_from_slice(&size.to_be_bytes());
        h[124] = 0x80;
    }
    h[136..148].copy_from_slice(b"00000000000\0");
    h[148..156].copy_from_slice(b"        ");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

fn entry(tar: &mut Vec<u8>, name: &[u8], kind: u8, data: &[u8], link: &[u8]) {
    tar.extend(header(name, kind, data.len() as u64, link));
    tar.extend_from_slice(data);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
}

/// A PAX `x` record `KEY=VALUE`.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = [key.as_bytes(), b"=", value, b"\n"].concat();
    let mut len = body.len() + 2;
    while format!("{len} ").len() + body.len() != len {
        len = format!("{len} ").len() + body.len();
    }
    [format!("{len} ").into_bytes(), body].concat()
}

/// A wasm command writing `bytes` to stdout.
fn emitter(bytes: &[u8]) -> Vec<u8> {
    let data: String = bytes.iter().map(|b| format!("\\{b:02x}")).collect();
    let pages = (1024 + bytes.len()) / 65536 + 1;
    let text = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") {pages})
  (data (i32.const 1024) "{data}")
  (func (export "_start") (local $p i32) (local $n i32)
    (local.set $p (i32.const 1024))
    (local.set $n (i32.const {len}))
    (block $done (loop $l
      (br_if $done (i32.eqz (local.get $n)))
      (i32.store (i32.const 0) (local.get $p))
      (i32.store (i32.const 4) (local.get $n))
      (br_if $done (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $p (i32.add (local.get $p) (i32.load (i32.const 8))))
      (local.set $n (i32.sub (local.get $n) (i32.load (i32.const 8))))
      (br $l)))))"#,
        len = bytes.len()
    );
    wat::parse_str(text).unwrap()
}

#[test]
fn hostile_save_artifacts_output_is_skipped_not_fatal() {
    let w = World::new();
    run_ok(&mut w.build(&[w.src().to_str().unwrap(), BUILDER, "app:inc"]));

    let mut tar = Vec::new();
    entry(&mut tar, b"good.txt", b'0', b"good\n", b"");
    entry(&mut tar, b"/abs.txt", b'0', b"abs\n", b"");
    entry(&mut tar, b"../up.txt", b'0', b"up\n", b"");
    entry(&mut tar, b"a/../../x.txt", b'0', b"x\n", b"");
    entry(&mut tar, b"etc-link", b'2', b"", b"/etc");
    entry(&mut tar, b"climb", b'2', b"", b"../../../..");
    entry(&mut tar, b"ok-link", b'2', b"", b"good.txt");
    entry(&mut tar, b"passwd", b'1', b"", b"/etc/passwd");
    entry(&mut tar, b"null", b'3', b"", b"");
    entry(&mut tar, b"ok-link/through.txt", b'0', b"through\n", b"");
    // A long hostile name: skipped, and the warning does not repeat it whole.
    let long = [b"../".as_slice(), &[b'N'; 200_000]].concat();
    entry(&mut tar, b"PaxHeader", b'x', &pax_record("path", &long), b"");
    entry(&mut tar, b"placeholder", b'0', b"long\n", b"");
    tar.extend([0u8; 1024]);
    w.write_src(".s2i/bin/save-artifacts", emitter(&tar));
    let out = run_ok(&mut w.build(&[w.src().to_str().unwrap(), BUILDER, "app:inc", "--incremental"]));
    let err = stderr(&out);
    for skipped in ["\"/abs.txt\"", "\"../up.txt\"", "\"a/../../x.txt\"", "\"etc-link\"", "\"climb\"", "\"passwd\"", "\"null\"", "\"ok-link/through.txt\""] {
        assert!(err.contains(&format!("artifacts: skipping {skipped}")), "{skipped}: {}", describe(&out));
    }
    assert!(err.len() < 50_000, "a hostile name was echoed: {} bytes of stderr", err.len());
    let t = w.unpack("app:inc");
    let cache = rootfs(&t).join("opt/app-root/artifacts-cache");
    assert_eq!(fs::read_to_string(cache.join("good.txt")).unwrap(), "good\n");
    assert_eq!(fs::read_link(cache.join("ok-link")).unwrap(), PathBuf::from("good.txt"));
    for gone in ["abs.txt", "up.txt", "x.txt", "etc-link", "climb", "passwd", "null"] {
        assert!(fs::symlink_metadata(cache.join(gone)).is_err(), "{gone} restored");
    }

    // A huge PAX header: refused from its header, without reading or echoing it; a clean build.
    let mut tar = Vec::new();
    tar.extend(header(b"PaxHeader", b'x', 1 << 40, b""));
    tar.extend_from_slice(&pax_record("path", b"MARKER-OF-THE-PAX-DATA"));
    tar.resize(tar.len().div_ceil(512) * 512 + 1024, 0);
    w.write_src(".s2i/bin/save-artifacts", emitter(&tar));
    let out = run_ok(&mut w.build(&[w.src().to_str().unwrap(), BUILDER, "app:inc", "--incremental"]));
    let err = stderr(&out);
    assert!(err.contains("clean build") && err.contains("PAX extended header entry of 1099511627776 bytes exceeds the cap"), "{}", describe(&out));
    assert!(!err.contains("MARKER-OF-THE-PAX-DATA"), "{}", describe(&out));
}

// ---------------------------------------------------------------------------------------------
// 7. SOURCE_DATE_EPOCH means --source-date-epoch.

#[test]
fn source_date_epoch_in_the_environment_makes_builds_identical() {
    let w = World::new();
    let build = |tag: &str, env: bool| {
        let mut c = w.build(&[w.src().to_str().unwrap(), BUILDER, tag]);
        if env {
            c.env("SOURCE_DATE_EPOCH", "1700000000");
        } else {
            c.args(["--source-date-epoch", "1700000000"]);
        }
        digest_line(&run_ok(&mut c))
    };
    // One tag: it is the default io.k8s.display-name, so part of the config.
    let first = build("app:sde", true);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = build("app:sde", true);
    assert_eq!(first, second, "two builds a second apart differ");
    assert_eq!(build("app:sde", false), first, "the variable and the flag mean the same");
    let cfg = ws2i_tests::skopeo(&["inspect", "--config", &format!("oci:{}:app:sde", w.home().display())]);
    let cfg: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(cfg["created"], "2023-11-14T22:13:20Z");
    // Layer mtimes too: every entry of the new layer at the epoch.
    let t = w.unpack("app:sde");
    let built = fs::metadata(rootfs(&t).join("opt/app-root/artifacts-cache/built-from.txt")).unwrap();
    assert_eq!(built.modified().unwrap(), std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000));
    // A bad value is a clear error.
    let mut c = w.build(&[w.src().to_str().unwrap(), BUILDER, "app:bad"]);
    let out = run_fail(c.env("SOURCE_DATE_EPOCH", "yesterday"));
    assert!(stderr(&out).contains("source-date-epoch") && stderr(&out).contains("yesterday"), "{}", describe(&out));
}
