//! Git sources, in process through libgit2 (the `git2` crate; docs/architecture.md says why
//! this library and not gix): clone, `--ref` checkout, recursive submodules, commit info.
//! No `git` program is needed at build time.
//!
//! Hardening: libgit2 runs no hooks and never prompts (a credential it cannot find is an
//! error, not a hang); ssh keys come from the ssh agent only and host keys are checked against
//! `known_hosts` by libgit2; stalled connections time out ([`TIMEOUT_MS`]); a `--ref` starting
//! with `-` is refused; a submodule whose URL reaches the local filesystem (`file://`, a path,
//! or a relative URL of a local superproject) is refused unless `--allow-local-submodules`
//! (git's own `protocol.file.allow=user` since 2.38.1, CVE-2022-39253, made explicit), so no
//! repository can pull other host repositories into the image; and a local repository's
//! metadata (its `.git`, a `gitdir:` file, `commondir`, object alternates, any symlink in it)
//! must resolve inside its own tree ([`check_local_repo`]).

use std::path::Path;
use std::sync::Once;

use git2::build::{CheckoutBuilder, CloneLocal, RepoBuilder};
use git2::{Cred, CredentialType, FetchOptions, ProxyOptions, RemoteCallbacks, Repository};

use super::{CommitInfo, SourceError};

/// Connect and read timeout of network transports: a stalled server fails the build instead
/// of hanging it (the CLI used `http.lowSpeedTime=60`).
const TIMEOUT_MS: i32 = 60_000;

fn err(step: impl Into<String>) -> impl FnOnce(git2::Error) -> SourceError {
    let step = step.into();
    move |e| SourceError::Git {
        step,
        message: e.message().chars().take(2000).collect(),
    }
}

fn set_timeouts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: process-wide libgit2 options, set once before any transport is used.
        unsafe {
            let _ = git2::opts::set_server_connect_timeout_in_milliseconds(TIMEOUT_MS);
            let _ = git2::opts::set_server_timeout_in_milliseconds(TIMEOUT_MS);
        }
    });
}

/// Fetch options for one remote: proxy from the environment/config, ssh keys from the agent
/// (asked once per user name, so a refused key ends the loop libgit2 would otherwise retry),
/// and credential helpers of the git config for https.
fn fetch_options<'a>() -> FetchOptions<'a> {
    let mut tried: Vec<CredentialType> = Vec::new();
    let mut cb = RemoteCallbacks::new();
    cb.credentials(move |url, user, allowed| {
        let want = if allowed.contains(CredentialType::USERNAME) {
            CredentialType::USERNAME
        } else if allowed.contains(CredentialType::SSH_KEY) {
            CredentialType::SSH_KEY
        } else if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            CredentialType::USER_PASS_PLAINTEXT
        } else {
            return Err(git2::Error::from_str("no usable credential type"));
        };
        if tried.contains(&want) {
            return Err(git2::Error::from_str(&format!("authentication to {url} failed")));
        }
        tried.push(want);
        let user = user.unwrap_or("git");
        if want == CredentialType::USERNAME {
            Cred::username(user)
        } else if want == CredentialType::SSH_KEY {
            Cred::ssh_key_from_agent(user)
        } else {
            let cfg = git2::Config::open_default()?;
            Cred::credential_helper(&cfg, url, Some(user).filter(|u| *u != "git"))
        }
    });
    let mut proxy = ProxyOptions::new();
    proxy.auto();
    let mut fo = FetchOptions::new();
    fo.remote_callbacks(cb).proxy_options(proxy);
    fo
}

/// Full clone (like upstream: no depth limit, so any commit can be checked out), then
/// checkout of `git_ref`, then recursive submodules unless `ignore_submodules`.
/// `allow_local_submodules`: follow submodule URLs that reach the local filesystem.
pub fn clone(
    url: &str,
    dest: &Path,
    git_ref: Option<&str>,
    ignore_submodules: bool,
    allow_local_submodules: bool,
) -> Result<(), SourceError> {
    if let Some(r) = git_ref {
        if r.starts_with('-') || r.is_empty() || r.contains('\0') {
            return Err(SourceError::BadRef(r.to_string()));
        }
    }
    set_timeouts();
    let mut checkout = CheckoutBuilder::new();
    checkout.force();
    let repo = RepoBuilder::new()
        // No hard links: a local clone must not share object files with the source repo.
        .clone_local(CloneLocal::NoLinks)
        .fetch_options(fetch_options())
        .with_checkout(checkout)
        .clone(url, dest)
        .map_err(err("clone"))?;
    if let Some(r) = git_ref {
        checkout_ref(&repo, r)?;
    }
    if !ignore_submodules {
        update_submodules(&repo, allow_local_submodules)?;
    }
    Ok(())
}

/// How many alternates deep libgit2 follows (it stops at 5); more is refused here.
const MAX_ALTERNATES_DEPTH: usize = 5;
/// Entries of a git dir looked at for symlinks before giving up (a huge one is refused).
const MAX_GIT_ENTRIES: usize = 200_000;

/// Refuses a local repository at `tree` (a work tree with `.git`, or a bare repository) whose
/// git metadata would make the clone read another repository of the host: `.git` a symlink or
/// a `gitdir:` file leading outside `tree`, a `commondir` or `objects/info/alternates` entry
/// outside it, or any symlink inside the git dir resolving outside it. Worktrees made by
/// `git worktree add` (their `.git` names the main repository) are refused too: build the
/// main repository, or use `--copy`.
pub fn check_local_repo(tree: &Path) -> Result<(), SourceError> {
    // A missing repository is the clone's error to report.
    let Ok(tree) = tree.canonicalize() else { return Ok(()) };
    let refuse = |what: String| SourceError::Git {
        step: "open".into(),
        message: format!("{what}, outside the source {}: refused (a local source may not read another repository)", tree.display()),
    };
    let inside = |p: &Path, what: &str| -> Result<std::path::PathBuf, SourceError> {
        let real = p.canonicalize().map_err(super::io_err(p))?;
        if real.starts_with(&tree) {
            Ok(real)
        } else {
            Err(refuse(format!("{what} leads to {}", real.display())))
        }
    };
    let dotgit = tree.join(".git");
    let git_dir = match std::fs::symlink_metadata(&dotgit) {
        Err(_) => tree.clone(),
        Ok(m) if m.file_type().is_symlink() => inside(&dotgit, ".git (a symlink)")?,
        Ok(m) if m.is_file() => {
            let text = read_pointer(&dotgit)?;
            let target = text.strip_prefix("gitdir:").map(str::trim).ok_or_else(|| SourceError::Git {
                step: "open".into(),
                message: format!("{}: a .git file that is not `gitdir: PATH`", dotgit.display()),
            })?;
            inside(&tree.join(target), ".git (a `gitdir:` file)")?
        }
        Ok(_) => inside(&dotgit, ".git")?,
    };
    let mut dirs = vec![git_dir.clone()];
    let commondir = git_dir.join("commondir");
    if commondir.exists() {
        let text = read_pointer(&commondir)?;
        dirs.push(inside(&git_dir.join(text.trim()), "its `commondir`")?);
    }
    let mut objects: Vec<(std::path::PathBuf, usize)> = dirs.iter().map(|d| (d.join("objects"), 0)).collect();
    while let Some((obj, depth)) = objects.pop() {
        let alternates = obj.join("info/alternates");
        if !alternates.exists() {
            continue;
        }
        if depth >= MAX_ALTERNATES_DEPTH {
            return Err(refuse(format!("{} nests alternates too deep", alternates.display())));
        }
        for line in read_pointer(&alternates)?.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let alt = inside(&obj.join(line), "an entry of objects/info/alternates")?;
            objects.push((alt, depth + 1));
        }
    }
    let mut seen = 0;
    for d in &dirs {
        let mut stack = vec![d.clone()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).map_err(super::io_err(&dir))?.flatten() {
                seen += 1;
                if seen > MAX_GIT_ENTRIES {
                    return Err(refuse(format!("{} has more than {MAX_GIT_ENTRIES} entries", d.display())));
                }
                let Ok(ft) = e.file_type() else { continue };
                if ft.is_symlink() {
                    // A broken link reads nothing; one that resolves must stay inside.
                    if e.path().canonicalize().is_ok() {
                        inside(&e.path(), &format!("the symlink {}", e.path().display()))?;
                    }
                } else if ft.is_dir() {
                    stack.push(e.path());
                }
            }
        }
    }
    Ok(())
}

/// A small git pointer file (`gitdir:`, `commondir`, `alternates`).
fn read_pointer(path: &Path) -> Result<String, SourceError> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(64 * 1024).read_to_string(&mut text))
        .map_err(super::io_err(path))?;
    Ok(text)
}

/// `git checkout REF` as the CLI resolves it: a local branch, else a branch of `origin` (a
/// local branch tracking it is made, so the ref label names it), else a tag or commit, which
/// leaves HEAD detached.
fn checkout_ref(repo: &Repository, r: &str) -> Result<(), SourceError> {
    let step = format!("checkout {r}");
    let mut force = CheckoutBuilder::new();
    force.force();
    let branch = match repo.find_branch(r, git2::BranchType::Local) {
        Ok(b) => Some(b),
        Err(_) => match repo.find_branch(&format!("origin/{r}"), git2::BranchType::Remote) {
            Ok(remote) => {
                let commit = remote.get().peel_to_commit().map_err(err(step.clone()))?;
                let mut b = repo.branch(r, &commit, false).map_err(err(step.clone()))?;
                b.set_upstream(Some(&format!("origin/{r}")))
                    .map_err(err(step.clone()))?;
                Some(b)
            }
            Err(_) => None,
        },
    };
    match branch {
        Some(b) => {
            let name = b
                .get()
                .name()
                .ok_or_else(|| SourceError::BadRef(r.to_string()))?
                .to_string();
            let tree = b.get().peel_to_tree().map_err(err(step.clone()))?;
            repo.checkout_tree(tree.as_object(), Some(&mut force))
                .map_err(err(step.clone()))?;
            repo.set_head(&name).map_err(err(step))?;
        }
        None => {
            let commit = repo
                .revparse_single(r)
                .and_then(|o| o.peel_to_commit())
                .map_err(|_| SourceError::Git {
                    step: step.clone(),
                    message: format!("no branch, tag or commit named {r:?} in the repository"),
                })?;
            repo.checkout_tree(commit.as_object(), Some(&mut force))
                .map_err(err(step.clone()))?;
            repo.set_head_detached(commit.id()).map_err(err(step))?;
        }
    }
    Ok(())
}

/// A URL that reaches the local filesystem: `file://`, or a path (not `scheme://`, not `user@host:path`).
fn is_local_url(url: &str) -> bool {
    if let Some((scheme, _)) = url.split_once("://") {
        return scheme.eq_ignore_ascii_case("file");
    }
    !super::is_scp(url)
}

/// `git submodule update --init --recursive`: each submodule cloned and checked out at the
/// commit the superproject records, then its own submodules.
fn update_submodules(repo: &Repository, allow_local: bool) -> Result<(), SourceError> {
    let mut subs = repo.submodules().map_err(err("submodule update"))?;
    for sm in subs.iter_mut() {
        let name = String::from_utf8_lossy(sm.name_bytes()).into_owned();
        let step = format!("submodule update {name}");
        sm.init(false).map_err(err(step.clone()))?;
        // The URL as init resolved it (a relative one is relative to the superproject's remote).
        let url = repo
            .config()
            .and_then(|c| c.get_string(&format!("submodule.{name}.url")))
            .map_err(err(step.clone()))?;
        if !allow_local && is_local_url(&url) {
            return Err(SourceError::Git {
                step,
                message: format!(
                    "submodule URL {url:?} reaches the local filesystem: refused (pass --allow-local-submodules to follow it)"
                ),
            });
        }
        let mut opts = git2::SubmoduleUpdateOptions::new();
        opts.fetch(fetch_options());
        let mut checkout = CheckoutBuilder::new();
        checkout.force();
        opts.checkout(checkout);
        sm.update(true, Some(&mut opts)).map_err(err(step.clone()))?;
        let sub = sm.open().map_err(err(step))?;
        update_submodules(&sub, allow_local)?;
    }
    Ok(())
}

/// Commit metadata of HEAD in `dir`, as upstream reads it (`git.go:GetInfo`, `git log -1`).
pub fn commit_info(dir: &Path) -> Result<CommitInfo, SourceError> {
    let repo = Repository::open(dir).map_err(err("log"))?;
    let head = repo.head().map_err(err("log"))?;
    let commit = head.peel_to_commit().map_err(err("log"))?;
    let ref_name = if repo.head_detached().unwrap_or(false) {
        "HEAD".to_string()
    } else {
        head.shorthand().unwrap_or("HEAD").to_string()
    };
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (author, committer) = (commit.author(), commit.committer());
    // git's subject (%s): the first paragraph, lines joined by spaces.
    let subject = commit.summary_bytes().map(lossy).unwrap_or_default();
    Ok(CommitInfo {
        id: commit.id().to_string(),
        ref_name,
        author_name: lossy(author.name_bytes()),
        author_email: lossy(author.email_bytes()),
        committer_name: lossy(committer.name_bytes()),
        committer_email: lossy(committer.email_bytes()),
        date: git_default_date(author.when()),
        // Upstream pads/truncates the subject to 80 columns then trims; truncation is kept.
        message: subject.chars().take(80).collect::<String>().trim().to_string(),
    })
}

/// `git log --format=%ad` (git's "default" date format): `Tue Jan 2 03:04:05 2024 +0000`,
/// in the author's own offset.
fn git_default_date(t: git2::Time) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let offset = i64::from(t.offset_minutes());
    let local = t.seconds() + offset * 60;
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let sign = if offset < 0 { '-' } else { '+' };
    let off = offset.abs();
    format!(
        "{} {} {} {:02}:{:02}:{:02} {} {}{:02}{:02}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
        y,
        sign,
        off / 60,
        off % 60
    )
}

/// Days since 1970-01-01 to (year, month 1–12, day 1–31), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_like_git_log() {
        assert_eq!(git_default_date(git2::Time::new(0, 0)), "Thu Jan 1 00:00:00 1970 +0000");
        assert_eq!(
            git_default_date(git2::Time::new(1_704_164_645, 0)),
            "Tue Jan 2 03:04:05 2024 +0000"
        );
        assert_eq!(
            git_default_date(git2::Time::new(1_704_164_645, -330)),
            "Mon Jan 1 21:34:05 2024 -0530"
        );
        assert_eq!(
            git_default_date(git2::Time::new(951_782_400, 120)),
            "Tue Feb 29 02:00:00 2000 +0200"
        );
        assert_eq!(git_default_date(git2::Time::new(-86_400, 0)), "Wed Dec 31 00:00:00 1969 +0000");
    }

    #[test]
    fn local_urls() {
        assert!(is_local_url("file:///srv/x.git"));
        assert!(is_local_url("/srv/x.git") && is_local_url("../x.git"));
        assert!(!is_local_url("https://h/x.git") && !is_local_url("git@h:x.git"));
        assert!(!is_local_url("ssh://git@h/x"));
    }
}
