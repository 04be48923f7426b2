//! Git sources, through the `git` CLI.
//!
//! Why the CLI and not a Rust git library (gix): gix's `file://` transport itself spawns
//! `git upload-pack`, submodule support in gix is partial, and its compile cost is large on the
//! 2-core CI machine. Upstream s2i also uses the CLI. The surface is small (clone, checkout,
//! submodule update, log), isolated here, so swapping in gix later touches this file only.
//!
//! Hardening: arguments are passed after `--` where git allows it, refs starting with `-` are
//! refused, prompts are disabled (no hanging on credentials), stalled HTTP transfers abort and
//! hooks are off (`core.hooksPath=/dev/null`).

use std::path::Path;
use std::process::Command;

use super::{CommitInfo, SourceError};

fn git(dir: Option<&Path>) -> Command {
    let mut c = Command::new("git");
    if let Some(d) = dir {
        c.arg("-C").arg(d);
    }
    // A stalled HTTP transfer (under 1 KB/s for 60 s) aborts instead of hanging the build.
    c.args(["-c", "core.hooksPath=/dev/null", "-c", "advice.detachedHead=false"])
        .args(["-c", "http.lowSpeedLimit=1000", "-c", "http.lowSpeedTime=60"])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .stdin(std::process::Stdio::null());
    c
}

fn run(mut c: Command, what: &str) -> Result<String, SourceError> {
    let out = c.output().map_err(|e| SourceError::Git { step: what.into(), message: format!("cannot run git: {e}") })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let msg: String = stderr.trim().chars().take(2000).collect();
        return Err(SourceError::Git { step: what.into(), message: msg });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Full clone (like upstream: no `--depth`, so any commit SHA can be checked out), then
/// checkout of `git_ref`, then recursive submodules unless `ignore_submodules`.
///
/// `file://`/local submodule URLs are allowed only when the superproject itself is local
/// (`local`): a remote repository must not be able to pull host repositories into the image
/// through a `file://` submodule (git's own default since 2.38.1, CVE-2022-39253).
pub fn clone(url: &str, dest: &Path, git_ref: Option<&str>, ignore_submodules: bool, local: bool) -> Result<(), SourceError> {
    let mut c = git(None);
    // --no-hardlinks: a local clone would otherwise share object files with the source repo.
    c.args(["clone", "--quiet", "--no-hardlinks", "--"]).arg(url).arg(dest);
    run(c, "clone")?;
    if let Some(r) = git_ref {
        if r.starts_with('-') || r.is_empty() {
            return Err(SourceError::BadRef(r.to_string()));
        }
        let mut c = git(Some(dest));
        c.args(["checkout", "--quiet", r]);
        run(c, &format!("checkout {r}"))?;
    }
    if !ignore_submodules {
        let mut c = git(Some(dest));
        if local {
            c.args(["-c", "protocol.file.allow=always"]);
        }
        c.args(["submodule", "update", "--init", "--recursive", "--quiet"]);
        run(c, "submodule update")?;
    }
    Ok(())
}

/// Commit metadata of HEAD in `dir`, as upstream reads it (`git.go:GetInfo`).
pub fn commit_info(dir: &Path) -> Result<CommitInfo, SourceError> {
    let mut c = git(Some(dir));
    c.args(["log", "-1", "--format=%H%x00%an%x00%ae%x00%cn%x00%ce%x00%ad%x00%s"]);
    let out = run(c, "log")?;
    let f: Vec<&str> = out.trim_end_matches('\n').split('\0').collect();
    let [id, an, ae, cn, ce, date, subject] = f[..] else {
        return Err(SourceError::Git { step: "log".into(), message: "unexpected output".into() });
    };
    let mut c = git(Some(dir));
    c.args(["rev-parse", "--abbrev-ref", "HEAD"]);
    let ref_name = run(c, "rev-parse")?.trim().to_string();
    Ok(CommitInfo {
        id: id.to_string(),
        ref_name,
        author_name: an.to_string(),
        author_email: ae.to_string(),
        committer_name: cn.to_string(),
        committer_email: ce.to_string(),
        date: date.to_string(),
        // Upstream pads/truncates the subject to 80 columns then trims; truncation is kept.
        message: subject.chars().take(80).collect::<String>().trim().to_string(),
    })
}
