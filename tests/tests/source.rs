//! `ws2i::source`: fetching git and local sources into a staging dir, with hostile trees.
//! Git repos are made with the real `git` CLI and served as `file://` bare repos.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use ws2i::source::{fetch, SourceError, SourceLocation, SourceSpec};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Ada Lovelace", "-c", "user.email=ada@example.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .env("GIT_AUTHOR_DATE", "2024-01-02T03:04:05Z")
        .env("GIT_COMMITTER_DATE", "2024-01-02T03:04:05Z")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn write(p: &Path, s: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, s).unwrap();
}

fn commit_all(dir: &Path, msg: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", msg]);
    git(dir, &["rev-parse", "HEAD"])
}

/// A work repo with: v1 (tag) < main head, and branch `feature`; plus its bare clone.
struct Repos {
    _tmp: tempfile::TempDir,
    work: std::path::PathBuf,
    bare_url: String,
    c1: String,
}

fn make_repos() -> Repos {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    fs::create_dir(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    write(&work.join("app.txt"), "v1\n");
    write(&work.join("sub/app/.s2i/bin/assemble.wasm"), "\0asm fake");
    write(&work.join("sub/app/.s2i/environment"), "# env\nGREETING=hello\n");
    write(&work.join("sub/app/index.html"), "hi\n");
    let c1 = commit_all(&work, "first commit");
    git(&work, &["tag", "v1"]);
    git(&work, &["checkout", "-q", "-b", "feature"]);
    write(&work.join("feature.txt"), "feature\n");
    commit_all(&work, "feature work");
    git(&work, &["checkout", "-q", "main"]);
    write(&work.join("app.txt"), "v2\n");
    commit_all(&work, "second commit with a subject line that is quite a bit longer than eighty characters in total");
    let bare = tmp.path().join("bare.git");
    let out = Command::new("git").args(["clone", "-q", "--bare"]).arg(&work).arg(&bare).output().unwrap();
    assert!(out.status.success());
    let bare_url = format!("file://{}", bare.display());
    Repos { _tmp: tmp, work, bare_url, c1 }
}

fn spec(loc: &str) -> SourceSpec {
    SourceSpec::new(SourceLocation::parse(loc).unwrap())
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap()
}

#[test]
fn git_refs_tag_branch_commit_and_commit_info() {
    let r = make_repos();
    let cases: [(Option<&str>, &str, &str); 4] = [
        (None, "v2\n", "main"),
        (Some("v1"), "v1\n", "HEAD"),
        (Some("feature"), "v1\n", "feature"),
        (Some(&r.c1), "v1\n", "HEAD"),
    ];
    for (git_ref, content, ref_name) in cases {
        let staging = tempfile::tempdir().unwrap();
        let mut s = spec(&r.bare_url);
        s.git_ref = git_ref.map(String::from);
        let f = fetch(&s, staging.path()).unwrap();
        assert_eq!(read(&f.dir.join("app.txt")), content, "{git_ref:?}");
        assert_eq!(f.dir.join("feature.txt").exists(), git_ref == Some("feature"));
        assert!(!f.dir.join(".git").exists(), "default --exclude drops .git");
        let c = f.info.commit.expect("commit info");
        let rev = git_ref.unwrap_or("HEAD");
        let want = git(&r.work, &["log", "-1", "--format=%H|%an|%ae|%cn|%ce|%ad", rev]);
        assert_eq!(
            format!("{}|{}|{}|{}|{}|{}", c.id, c.author_name, c.author_email, c.committer_name, c.committer_email, c.date),
            want
        );
        assert_eq!(c.ref_name, ref_name);
        let subject = git(&r.work, &["log", "-1", "--format=%s", rev]);
        assert_eq!(c.message, subject.chars().take(80).collect::<String>().trim());
        assert_eq!(f.info.location, r.bare_url);
        assert!(!staging.path().join("clone").exists(), "clone dir removed");
    }
}

#[test]
fn git_bad_ref_is_an_error() {
    let r = make_repos();
    let staging = tempfile::tempdir().unwrap();
    let mut s = spec(&r.bare_url);
    s.git_ref = Some("no-such-branch".into());
    let e = fetch(&s, staging.path()).unwrap_err();
    assert!(matches!(e, SourceError::Git { .. }), "{e}");
    assert!(e.to_string().contains("no branch, tag or commit named \"no-such-branch\""), "{e}");
    s.git_ref = Some("--upload-pack=evil".into());
    let staging = tempfile::tempdir().unwrap();
    assert!(matches!(fetch(&s, staging.path()), Err(SourceError::BadRef(_))));
}

#[test]
fn context_dir_scripts_and_environment() {
    let r = make_repos();
    let staging = tempfile::tempdir().unwrap();
    let mut s = spec(&r.bare_url);
    s.context_dir = SourceSpec::parse_context_dir("sub/app").unwrap();
    let f = fetch(&s, staging.path()).unwrap();
    assert_eq!(read(&f.dir.join("index.html")), "hi\n");
    assert!(!f.dir.join("app.txt").exists());
    assert!(!f.dir.join(".s2i/bin/assemble.wasm").exists(), "scripts moved out of src");
    let a = &f.scripts["assemble.wasm"];
    assert!(a.starts_with(staging.path().join("scripts")));
    assert_eq!(fs::read(a).unwrap(), b"\0asm fake");
    assert_eq!(f.environment.len(), 1);
    assert_eq!((f.environment[0].key(), f.environment[0].value()), ("GREETING", "hello"));
    assert_eq!(f.info.context_dir.as_deref(), Some(Path::new("sub/app")));

    let staging = tempfile::tempdir().unwrap();
    s.context_dir = Some("nope".into());
    assert!(matches!(fetch(&s, staging.path()), Err(SourceError::MissingContextDir(_))));
}

#[test]
fn local_git_tree_builds_head_unless_copy() {
    let r = make_repos();
    write(&r.work.join("app.txt"), "dirty\n");
    write(&r.work.join("untracked.txt"), "new\n");
    let loc = r.work.to_str().unwrap();

    let staging = tempfile::tempdir().unwrap();
    let f = fetch(&spec(loc), staging.path()).unwrap();
    assert_eq!(read(&f.dir.join("app.txt")), "v2\n");
    assert!(!f.dir.join("untracked.txt").exists());
    assert_eq!(f.info.commit.unwrap().id, git(&r.work, &["rev-parse", "HEAD"]));

    let staging = tempfile::tempdir().unwrap();
    let mut s = spec(loc);
    s.copy = true;
    let f = fetch(&s, staging.path()).unwrap();
    assert_eq!(read(&f.dir.join("app.txt")), "dirty\n");
    assert_eq!(read(&f.dir.join("untracked.txt")), "new\n");
    assert!(!f.dir.join(".git").exists());
    assert!(f.info.commit.is_none());
}

#[test]
fn exclude_matches_relative_paths_only() {
    let tmp = tempfile::tempdir().unwrap();
    // A `.git` component in the *host* path must not exclude everything (upstream quirk).
    let src = tmp.path().join(".git/app");
    write(&src.join("a.txt"), "a");
    write(&src.join("b.log"), "b");
    write(&src.join("sub/c.log"), "c");
    write(&src.join(".git/HEAD"), "ref");
    let loc = src.to_str().unwrap();

    let staging = tempfile::tempdir().unwrap();
    let mut s = spec(loc);
    s.copy = true; // the fake `.git` dir would otherwise make it a git work tree to clone
    let f = fetch(&s, staging.path()).unwrap();
    assert!(f.dir.join("a.txt").exists() && f.dir.join("sub/c.log").exists());
    assert!(!f.dir.join(".git").exists());

    let staging = tempfile::tempdir().unwrap();
    s.exclude = SourceSpec::parse_exclude(r"\.log$").unwrap();
    let f = fetch(&s, staging.path()).unwrap();
    assert!(f.dir.join("a.txt").exists());
    assert!(!f.dir.join("b.log").exists() && !f.dir.join("sub/c.log").exists());
    assert!(f.dir.join(".git/HEAD").exists(), "a custom --exclude replaces the default");

    let staging = tempfile::tempdir().unwrap();
    s.exclude = SourceSpec::parse_exclude("").unwrap();
    let f = fetch(&s, staging.path()).unwrap();
    assert!(f.dir.join(".git/HEAD").exists() && f.dir.join("b.log").exists());
}

#[test]
fn s2iignore_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join(".s2iignore"), "# comment\n*.md\n!README.md\ntmp/\nsub/*.txt\n");
    for f in ["README.md", "NOTES.md", "tmp/x", "sub/a.txt", "sub/b.rs", "keep.txt", "deep/x.md"] {
        write(&src.join(f), "x");
    }
    let staging = tempfile::tempdir().unwrap();
    let f = fetch(&spec(src.to_str().unwrap()), staging.path()).unwrap();
    for (p, present) in [
        ("README.md", true),
        ("NOTES.md", false),
        ("tmp", false),
        ("sub/a.txt", false),
        ("sub/b.rs", true),
        ("keep.txt", true),
        ("deep/x.md", true), // not recursive, as upstream
    ] {
        assert_eq!(f.dir.join(p).exists(), present, "{p}");
    }
}

fn assert_no_host_content(dir: &Path, secret: &str) {
    for e in walk(dir) {
        let m = fs::symlink_metadata(&e).unwrap();
        if m.is_file() {
            assert!(!read(&e).contains(secret), "{} leaks host content", e.display());
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn symlink_and_special_file_attacks_never_copy_host_content() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = "TOP-SECRET-HOST-CONTENT";
    write(&tmp.path().join("outside/secret.txt"), secret);
    let src = tmp.path().join("a/src");
    write(&src.join("real.txt"), "real");
    write(&src.join("dir/inner.txt"), "inner");
    symlink("/etc/passwd", src.join("passwd")).unwrap();
    symlink("../../outside/secret.txt", src.join("up_secret")).unwrap();
    symlink("../../", src.join("up_dir")).unwrap();
    symlink(tmp.path().join("outside"), src.join("abs_dir")).unwrap();
    symlink("real.txt", src.join("ok_link")).unwrap();
    symlink("dir", src.join("ok_dir")).unwrap();
    symlink("missing", src.join("broken")).unwrap();
    symlink("../../nothing/here", src.join("broken_out")).unwrap();
    symlink(".", src.join("loop")).unwrap();
    fs::hard_link(tmp.path().join("outside/secret.txt"), src.join("hardlink")).unwrap();
    assert!(Command::new("mkfifo").arg(src.join("fifo")).status().unwrap().success());

    let staging = tempfile::tempdir().unwrap();
    let f = fetch(&spec(src.to_str().unwrap()), staging.path()).unwrap();
    assert_no_host_content(&f.dir, secret);
    assert_no_host_content(&f.dir, "root:");
    for gone in ["passwd", "up_secret", "up_dir", "abs_dir", "broken_out", "hardlink", "fifo", "loop"] {
        assert!(fs::symlink_metadata(f.dir.join(gone)).is_err(), "{gone} must not be copied");
        assert!(f.warnings.iter().any(|w| w.starts_with(gone)), "warning for {gone}: {:?}", f.warnings);
    }
    assert_eq!(read(&f.dir.join("ok_link")), "real");
    assert!(fs::symlink_metadata(f.dir.join("ok_link")).unwrap().is_file(), "in-root link dereferenced");
    assert_eq!(read(&f.dir.join("ok_dir/inner.txt")), "inner");
    assert!(fs::symlink_metadata(f.dir.join("broken")).unwrap().file_type().is_symlink());

    // --keep-symlinks copies links as links; nothing is dereferenced on the host.
    let staging = tempfile::tempdir().unwrap();
    let mut s = spec(src.to_str().unwrap());
    s.keep_symlinks = true;
    let f = fetch(&s, staging.path()).unwrap();
    assert_no_host_content(&f.dir, secret);
    for link in ["passwd", "up_secret", "up_dir", "ok_link", "loop"] {
        assert!(fs::symlink_metadata(f.dir.join(link)).unwrap().file_type().is_symlink(), "{link}");
    }
    assert!(fs::symlink_metadata(f.dir.join("hardlink")).is_err());
}

#[test]
fn hostile_git_repo_symlinks_stay_links() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("w");
    fs::create_dir(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    write(&work.join("app/x"), "x");
    symlink("/etc", work.join("etc")).unwrap();
    symlink("/etc", work.join("app/.s2i")).unwrap(); // .s2i/bin and .s2i/environment via a link out
    commit_all(&work, "evil");
    let staging = tempfile::tempdir().unwrap();
    let mut s = spec(&format!("file://{}", work.display()));
    s.context_dir = Some("app".into());
    let f = fetch(&s, staging.path()).unwrap();
    assert!(fs::symlink_metadata(f.dir.join(".s2i")).unwrap().file_type().is_symlink());
    assert!(f.scripts.is_empty() && f.environment.is_empty());
    // a context dir that is a link out of the repo is refused
    let staging = tempfile::tempdir().unwrap();
    s.context_dir = Some("etc".into());
    assert!(matches!(fetch(&s, staging.path()), Err(SourceError::MissingContextDir(_))));
}

#[test]
fn bad_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let staging = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    assert!(matches!(fetch(&spec(missing.to_str().unwrap()), staging.path()), Err(SourceError::MissingSource(_))));

    // recursive copy
    let src = tmp.path().join("src");
    write(&src.join("a"), "a");
    let e = fetch(&spec(src.to_str().unwrap()), &src.join("stage")).unwrap_err();
    assert!(matches!(e, SourceError::RecursiveCopy { .. }), "{e}");

    // malformed .s2i/environment names the line
    write(&src.join(".s2i/environment"), "A=1\n# ok\nthis line is wrong\n");
    let staging = tempfile::tempdir().unwrap();
    let e = fetch(&spec(src.to_str().unwrap()), staging.path()).unwrap_err();
    assert!(e.to_string().contains(".s2i/environment:3:"), "{e}");

    // --ref with a plain directory
    fs::remove_file(src.join(".s2i/environment")).unwrap();
    let staging = tempfile::tempdir().unwrap();
    let mut s = spec(src.to_str().unwrap());
    s.git_ref = Some("main".into());
    assert!(matches!(fetch(&s, staging.path()), Err(SourceError::RefWithoutGit(_))));
}

#[test]
fn git_url_to_a_missing_repository_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("file://{}/missing.git", tmp.path().display());
    let staging = tempfile::tempdir().unwrap();
    let e = fetch(&spec(&url), staging.path()).unwrap_err();
    assert!(matches!(e, SourceError::Git { ref step, .. } if step == "clone"), "{e}");
    assert!(e.to_string().contains("missing.git"), "{e}");
}

#[test]
fn submodules_recursive_unless_ignored() {
    let r = make_repos();
    let tmp = tempfile::tempdir().unwrap();
    let top = tmp.path().join("top");
    fs::create_dir(&top).unwrap();
    git(&top, &["init", "-q", "-b", "main"]);
    write(&top.join("main.txt"), "top");
    // lib (r.work) gets its own submodule, deep: recursion is checked one level down.
    let deep = tmp.path().join("deep");
    fs::create_dir(&deep).unwrap();
    git(&deep, &["init", "-q", "-b", "main"]);
    write(&deep.join("deep.txt"), "deep\n");
    commit_all(&deep, "deep");
    let deep_url = format!("file://{}", deep.display());
    git(&r.work, &["-c", "protocol.file.allow=always", "submodule", "add", "-q", &deep_url, "deep"]);
    commit_all(&r.work, "with a deep submodule");
    let sub_url = format!("file://{}", r.work.display());
    git(&top, &["-c", "protocol.file.allow=always", "submodule", "add", "-q", &sub_url, "lib"]);
    commit_all(&top, "with submodule");
    let url = format!("file://{}", top.display());

    let staging = tempfile::tempdir().unwrap();
    let mut s = spec(&url);
    s.allow_local_submodules = true;
    let f = fetch(&s, staging.path()).unwrap();
    assert_eq!(read(&f.dir.join("lib/app.txt")), "v2\n");
    assert_eq!(read(&f.dir.join("lib/deep/deep.txt")), "deep\n", "submodules are recursive");
    assert!(!f.dir.join("lib/.git").exists(), "the submodule's .git file is excluded too");

    let staging = tempfile::tempdir().unwrap();
    let mut s = spec(&url);
    s.ignore_submodules = true;
    let f = fetch(&s, staging.path()).unwrap();
    assert!(f.dir.join("lib").is_dir() && !f.dir.join("lib/app.txt").exists());
}
