//! Local git repositories for tests of git sources: the real `git` CLI, with a fixed identity
//! and no system or user configuration.

use std::path::Path;
use std::process::Command;

use crate::{run_ok, stdout};

/// Runs `git -C DIR ARGS…` (identity "Ada Builder", default branch `main`) and returns its
/// trimmed stdout, failing the test if git fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = run_ok(
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=Ada Builder",
                "-c",
                "user.email=ada@example.com",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", dir),
    );
    stdout(&out).trim().to_string()
}

/// Copies a directory tree (files and directories only).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A new repository at `dir` holding a copy of `from`, committed once ("first").
pub fn repo_from(from: &Path, dir: &Path) {
    copy_tree(from, dir);
    git(dir, &["init", "-q"]);
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "first"]);
}
