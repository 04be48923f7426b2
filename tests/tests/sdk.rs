//! The SDK: its host side directly, and SDK-based and C hooks through the
//! real `ws2i exec`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ws2i_tests::guests::Rootfs;
use ws2i_tests::{run, run_fail, run_ok, stderr, stdout, ws2i};

fn mode_of(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// A source tree with what `cp -Rf` must keep: nested dirs, an executable,
/// a private file, a private dir, relative and dangling symlinks.
fn make_source(root: &Path) {
    let w = |rel: &str, body: &str, mode: u32| {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, body).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    };
    w("index.txt", "hello from the app\n", 0o644);
    w("bin/start", "#!start\n", 0o755);
    w("a/b/c/deep.txt", "deep\n", 0o640);
    w("secret/key", "k\n", 0o600);
    fs::set_permissions(root.join("secret"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    std::os::unix::fs::symlink("a/b/c/deep.txt", root.join("link-to-deep")).unwrap();
    std::os::unix::fs::symlink("../index.txt", root.join("bin/index-link")).unwrap();
    std::os::unix::fs::symlink("does-not-exist", root.join("dangling")).unwrap();
}

/// Asserts that `copy` has the same entries, contents, modes and symlink
/// targets as `orig`.
fn assert_same_tree(orig: &Path, copy: &Path) {
    let mut names: Vec<_> = fs::read_dir(orig)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    let mut copied: Vec<_> = fs::read_dir(copy)
        .unwrap_or_else(|e| panic!("{}: {e}", copy.display()))
        .map(|e| e.unwrap().file_name())
        .collect();
    copied.sort();
    assert_eq!(names, copied, "entries of {}", copy.display());
    for name in names {
        let (a, b) = (orig.join(&name), copy.join(&name));
        let (ma, mb) = (
            fs::symlink_metadata(&a).unwrap(),
            fs::symlink_metadata(&b).unwrap(),
        );
        assert_eq!(ma.file_type(), mb.file_type(), "type of {}", b.display());
        if ma.file_type().is_symlink() {
            assert_eq!(
                fs::read_link(&a).unwrap(),
                fs::read_link(&b).unwrap(),
                "target of {}",
                b.display()
            );
            continue;
        }
        assert_eq!(mode_of(&a), mode_of(&b), "mode of {}", b.display());
        if ma.is_dir() {
            assert_same_tree(&a, &b);
        } else {
            assert_eq!(
                fs::read(&a).unwrap(),
                fs::read(&b).unwrap(),
                "content of {}",
                b.display()
            );
        }
    }
}

// ---- host side of the SDK -------------------------------------------------

#[test]
fn copy_tree_keeps_nested_dirs_symlinks_and_modes() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    make_source(&src);
    let stats = ws2i_sdk::copy_tree(&src, &dst).unwrap();
    assert_same_tree(&src, &dst);
    assert_eq!((stats.files, stats.symlinks), (4, 3));
    assert_eq!(stats.dirs, 7, "src, a, a/b, a/b/c, bin, empty, secret");
}

#[test]
fn copy_tree_merges_and_replaces_like_cp_rf() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    make_source(&src);
    fs::create_dir_all(dst.join("bin")).unwrap();
    fs::write(dst.join("index.txt"), "old").unwrap();
    fs::write(dst.join("kept.txt"), "kept").unwrap();
    fs::write(dst.join("link-to-deep"), "a file where a symlink goes").unwrap();
    std::os::unix::fs::symlink("/nowhere", dst.join("bin/start")).unwrap();
    ws2i_sdk::copy_tree(&src, &dst).unwrap();
    assert_eq!(
        fs::read_to_string(dst.join("index.txt")).unwrap(),
        "hello from the app\n"
    );
    assert_eq!(fs::read_to_string(dst.join("kept.txt")).unwrap(), "kept");
    assert_eq!(
        fs::read_link(dst.join("link-to-deep")).unwrap(),
        Path::new("a/b/c/deep.txt")
    );
    assert!(fs::symlink_metadata(dst.join("bin/start"))
        .unwrap()
        .is_file());
    assert_eq!(mode_of(&dst.join("bin/start")), 0o755);
}

#[test]
fn copy_tree_refuses_a_file_as_source_and_names_it() {
    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("f"), "x").unwrap();
    let err = ws2i_sdk::copy_tree(t.path().join("f"), t.path().join("d")).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
    let err = ws2i_sdk::copy_tree(t.path().join("missing"), t.path().join("d")).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn make_executable_adds_x_where_r_is() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("tool");
    fs::write(&f, "").unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
    ws2i_sdk::make_executable(&f).unwrap();
    assert_eq!(mode_of(&f), 0o750);
    assert_eq!(ws2i_sdk::mode(&f).unwrap(), 0o750);
}

#[test]
fn artifacts_tar_is_a_plain_sorted_tar_with_modes_and_symlinks() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("cache");
    make_source(&src);
    let mut tar = ws2i_sdk::ArtifactsTar::new(Vec::new());
    tar.append_tree(&src, "cache").unwrap();
    let bytes = tar.finish().unwrap();

    let mut archive = tar::Archive::new(&bytes[..]);
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let path = entry.path().unwrap().into_owned();
        let h = entry.header();
        let rel = path.strip_prefix("cache").unwrap();
        let host = src.join(rel);
        if h.entry_type().is_symlink() {
            assert_eq!(
                entry.link_name().unwrap().unwrap(),
                fs::read_link(&host).unwrap()
            );
        } else {
            assert_eq!(
                h.mode().unwrap(),
                mode_of(&host),
                "mode of {}",
                path.display()
            );
        }
        seen.push(path.to_string_lossy().into_owned());
    }
    assert_eq!(seen[0], "cache");
    assert!(
        seen.contains(&"cache/a/b/c/deep.txt".to_string()),
        "{seen:?}"
    );
    assert!(seen.contains(&"cache/dangling".to_string()), "{seen:?}");
    let pos = |n: &str| seen.iter().position(|s| s == n).unwrap();
    assert!(
        pos("cache/a") < pos("cache/bin") && pos("cache/bin") < pos("cache/index.txt"),
        "name order: {seen:?}"
    );

    // Unpacked, it is the same tree.
    let out = t.path().join("out");
    tar::Archive::new(&bytes[..]).unpack(&out).unwrap();
    assert_same_tree(&src, &out.join("cache"));

    // An empty name puts the contents at the top.
    let mut tar = ws2i_sdk::ArtifactsTar::new(Vec::new());
    tar.append_tree(&src, "").unwrap();
    let bytes = tar.finish().unwrap();
    let first = tar::Archive::new(&bytes[..])
        .entries()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .unwrap()
        .into_owned();
    assert_eq!(first, Path::new("a"));
}

// ---- hooks through the real `ws2i exec` -----------------------------------
//
// The hooks use the `ws2i.chmod` and `ws2i.mode` imports (docs/hooks.md).

/// A rootfs with the test-builder's hooks at /usr/libexec/s2i and a source
/// tree at /tmp/src.
fn builder_rootfs() -> Rootfs {
    let rootfs = Rootfs::new();
    for hook in ["assemble", "run", "save-artifacts", "usage"] {
        rootfs.install_hook(
            &format!("test-builder/{hook}"),
            &format!("/usr/libexec/s2i/{hook}"),
        );
    }
    make_source(&rootfs.host("/tmp/src"));
    rootfs
}

#[test]
fn sdk_assemble_copies_a_source_tree_with_dirs_symlinks_and_modes_intact() {
    let rootfs = builder_rootfs();
    let out = run_ok(
        ws2i()
            .arg("exec")
            .arg(rootfs.path())
            .arg("/usr/libexec/s2i/assemble"),
    );
    assert!(
        stderr(&out).contains("---> Installing application source..."),
        "{}",
        ws2i_tests::describe(&out)
    );
    assert_same_tree(&rootfs.host("/tmp/src"), &rootfs.host("/opt/app-root/src"));

    // The app it installed is what `run` serves.
    let out = run_ok(
        ws2i()
            .arg("exec")
            .arg(rootfs.path())
            .arg("/usr/libexec/s2i/run"),
    );
    assert_eq!(stdout(&out), "hello from the app\n");
}

#[test]
fn sdk_assemble_fails_with_exit_1_and_prints_requested_env() {
    let rootfs = builder_rootfs();
    let out = run_ok(
        ws2i()
            .arg("exec")
            .args([
                "--env",
                "TEST_PRINT_ENV=COLOUR UNSET_ONE",
                "--env",
                "COLOUR=blue",
            ])
            .arg(rootfs.path())
            .arg("/usr/libexec/s2i/assemble"),
    );
    let log = stderr(&out);
    assert!(
        log.contains("env COLOUR=blue") && log.contains("env UNSET_ONE is unset"),
        "{log}"
    );

    rootfs.write("/tmp/src/FAIL", "", 0o644);
    let out = run_fail(
        ws2i()
            .arg("exec")
            .arg(rootfs.path())
            .arg("/usr/libexec/s2i/assemble"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", ws2i_tests::describe(&out));
    assert!(
        stderr(&out).contains("FAIL"),
        "{}",
        ws2i_tests::describe(&out)
    );
}

#[test]
fn sdk_save_artifacts_writes_only_tar_and_assemble_restores_it() {
    let rootfs = builder_rootfs();
    rootfs.write("/opt/app-root/artifacts-cache/deps/lib.a", "lib", 0o640);
    let out = run_ok(
        ws2i()
            .arg("exec")
            .arg(rootfs.path())
            .arg("/usr/libexec/s2i/save-artifacts"),
    );
    let mut names = Vec::new();
    for e in tar::Archive::new(&out.stdout[..])
        .entries()
        .expect("stdout is a tar")
    {
        let e = e.expect("a well-formed tar entry");
        names.push(e.path().unwrap().to_string_lossy().into_owned());
    }
    assert_eq!(names, ["deps", "deps/lib.a"]);

    // The next build finds them at $DESTINATION/artifacts.
    let next = builder_rootfs();
    tar::Archive::new(&out.stdout[..])
        .unpack(next.host("/tmp/artifacts"))
        .unwrap();
    let out = run_ok(
        ws2i()
            .arg("exec")
            .arg(next.path())
            .arg("/usr/libexec/s2i/assemble"),
    );
    assert!(
        stderr(&out).contains("restored 1 artifact files"),
        "{}",
        ws2i_tests::describe(&out)
    );
    assert_eq!(
        mode_of(&next.host("/opt/app-root/artifacts-cache/deps/lib.a")),
        0o640
    );
}

#[test]
fn sdk_usage_prints_its_text() {
    let rootfs = builder_rootfs();
    let out = run_ok(
        ws2i()
            .arg("exec")
            .arg(rootfs.path())
            .arg("/usr/libexec/s2i/usage"),
    );
    assert!(
        stdout(&out).contains("Sample invocation"),
        "{}",
        ws2i_tests::describe(&out)
    );
}

#[test]
fn c_hook_without_sdk_follows_the_same_contract() {
    let rootfs = Rootfs::new();
    rootfs.install_hook("c-hook/assemble", "/usr/libexec/s2i/assemble");
    let src = rootfs.host("/opt/s2i/src");
    make_source(&src);
    rootfs.write("/opt/s2i/src/start", "#!app\n", 0o644);
    let out = run(ws2i()
        .arg("exec")
        .args(["--env", "DESTINATION=/opt/s2i"])
        .arg(rootfs.path())
        .arg("/usr/libexec/s2i/assemble"));
    assert!(out.status.success(), "{}", ws2i_tests::describe(&out));
    assert!(
        stdout(&out).contains("---> Installing application source (C hook)..."),
        "{}",
        ws2i_tests::describe(&out)
    );
    let app = rootfs.host("/opt/app-root/src");
    assert_eq!(
        mode_of(&app.join("start")),
        0o755,
        "the C hook marked start executable"
    );
    fs::set_permissions(app.join("start"), fs::Permissions::from_mode(0o644)).unwrap();
    assert_same_tree(&src, &app);
}

#[test]
fn sdk_command_spawns_a_rootfs_module_with_redirected_stdout() {
    let rootfs = builder_rootfs();
    rootfs.install_hook("test-builder/usage", "/usr/bin/usage.wasm");
    let out = run_ok(
        ws2i()
            .arg("exec")
            .args(["--env", "TEST_SPAWN=/usr/bin/usage.wasm"])
            .arg(rootfs.path())
            .arg("/usr/libexec/s2i/assemble"),
    );
    assert!(
        stderr(&out).contains("spawned /usr/bin/usage.wasm: exit code 0"),
        "{}",
        ws2i_tests::describe(&out)
    );
    let spawned = fs::read_to_string(rootfs.host("/tmp/spawn-out.txt")).unwrap();
    assert!(spawned.contains("Sample invocation"), "{spawned}");

    // A missing module is an error of the hook (exit 1) that names it.
    let out = run_fail(
        ws2i()
            .arg("exec")
            .args(["--env", "TEST_SPAWN=/usr/bin/nope.wasm"])
            .arg(rootfs.path())
            .arg("/usr/libexec/s2i/assemble"),
    );
    assert!(
        stderr(&out).contains("ws2i.spawn /usr/bin/nope.wasm"),
        "{}",
        ws2i_tests::describe(&out)
    );
}
