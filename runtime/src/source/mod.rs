//! The host-side input stage of `ws2i build`: fetch the SOURCE into a staging dir.
//!
//! [`SourceLocation::parse`] classifies the CLI argument like upstream's `git.Parse`: a URL with a
//! scheme (`file://`, `http(s)://`, `ssh://`, `git://`), the SCP form `user@host:path`, or a local
//! path. [`fetch`] then:
//! 1. gets a tree: a git clone for URLs and for a local git work tree without `--copy` (only
//!    committed `HEAD` is built, as upstream), or the local dir itself;
//! 2. copies `tree/<context-dir>` into `staging/src` through cap-std ([`copy`] documents the
//!    symlink, hard link and special file rules), leaving out `--exclude` matches and `.s2iignore`
//!    rules ([`ignore`]);
//! 3. moves the known scripts of `.s2i/bin` (or the deprecated `.sti/bin`) to `staging/scripts`
//!    and parses `.s2i/environment`.
//!
//! Decisions that differ from upstream:
//! - `--exclude` is matched against the path relative to the context dir (`/`-separated), not
//!   the full host path: a host dir named `x.git/` no longer excludes everything.
//! - git sources keep their symlinks as links even with `--context-dir` (upstream dereferences
//!   them there); local copies follow `--keep-symlinks`.
//! - `--copy` of a git work tree records no commit info (the tree may be dirty, so HEAD's labels
//!   would describe something else), as upstream.

pub mod copy;
mod git;
pub mod ignore;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use regex::Regex;

use crate::contract::envfile::{self, EnvError, EnvFileKind, EnvVar};
use crate::contract::ScriptName;

/// s2i's default `--exclude`.
pub const DEFAULT_EXCLUDE: &str = r"(^|/)\.git(/|$)";
const MAX_SMALL_FILE: u64 = 1 << 20;

/// Where the source comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceLocation {
    /// A host path (relative or absolute).
    Local(PathBuf),
    /// A git URL: `file://`, `http(s)://`, `ssh://`, `git://` or SCP form `user@host:path`.
    Git(String),
}

impl SourceLocation {
    /// Classifies the CLI SOURCE argument. A `#fragment` on a URL is refused: use `--ref`.
    pub fn parse(arg: &str) -> Result<Self, SourceError> {
        if arg.is_empty() {
            return Err(SourceError::BadLocation { arg: arg.into(), reason: "empty".into() });
        }
        if let Some((scheme, rest)) = arg.split_once("://") {
            let scheme = scheme.to_ascii_lowercase();
            if !["file", "http", "https", "ssh", "git"].contains(&scheme.as_str()) {
                return Err(SourceError::BadLocation { arg: arg.into(), reason: format!("unsupported scheme {scheme}") });
            }
            if scheme == "file" && !rest.starts_with('/') {
                return Err(SourceError::BadLocation { arg: arg.into(), reason: "file:// URL with a host".into() });
            }
            if arg.contains('#') {
                return Err(SourceError::BadLocation { arg: arg.into(), reason: "use --ref instead of a #fragment".into() });
            }
            return Ok(Self::Git(arg.to_string()));
        }
        if is_scp(arg) {
            return Ok(Self::Git(arg.to_string()));
        }
        Ok(Self::Local(PathBuf::from(arg)))
    }

    /// The value of the `io.openshift.s2i.build.source-location` label.
    pub fn display(&self) -> String {
        match self {
            Self::Local(p) => p.display().to_string(),
            Self::Git(u) => u.clone(),
        }
    }
}

/// `user@host:path` (the user part required, like upstream's SCP regexp; `./a:b` stays local).
fn is_scp(arg: &str) -> bool {
    let Some((userhost, path)) = arg.split_once(':') else { return false };
    let Some((user, host)) = userhost.split_once('@') else { return false };
    !user.is_empty() && !host.is_empty() && !path.is_empty() && !userhost.contains('/')
}

/// Everything that decides how a source is fetched.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub location: SourceLocation,
    pub git_ref: Option<String>,
    pub context_dir: Option<PathBuf>,
    pub copy: bool,
    pub keep_symlinks: bool,
    /// `None` excludes nothing (`--exclude ""`).
    pub exclude: Option<Regex>,
    pub ignore_submodules: bool,
    /// Follow submodules whose URL reaches the local filesystem (`file://`, a path).
    pub allow_local_submodules: bool,
}

impl SourceSpec {
    /// Upstream's defaults: HEAD, no context dir, clone when possible, default exclude.
    pub fn new(location: SourceLocation) -> Self {
        Self {
            location,
            git_ref: None,
            context_dir: None,
            copy: false,
            keep_symlinks: false,
            exclude: Some(Regex::new(DEFAULT_EXCLUDE).expect("valid default regex")),
            ignore_submodules: false,
            allow_local_submodules: false,
        }
    }

    /// Parses `--exclude` (an empty string excludes nothing, as upstream).
    pub fn parse_exclude(re: &str) -> Result<Option<Regex>, SourceError> {
        if re.is_empty() {
            return Ok(None);
        }
        Regex::new(re).map(Some).map_err(|e| SourceError::BadExclude(e.to_string()))
    }

    /// Validates `--context-dir`: relative, no `..`. `""` and `.` mean none.
    pub fn parse_context_dir(dir: &str) -> Result<Option<PathBuf>, SourceError> {
        let p = Path::new(dir);
        let mut out = PathBuf::new();
        for c in p.components() {
            match c {
                Component::Normal(n) => out.push(n),
                Component::CurDir => {}
                _ => return Err(SourceError::BadContextDir(dir.to_string())),
            }
        }
        Ok(if out.as_os_str().is_empty() { None } else { Some(out) })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    pub id: String,
    /// Branch name, or `HEAD` when detached (tag or SHA checkout), as upstream.
    pub ref_name: String,
    pub author_name: String,
    pub author_email: String,
    pub committer_name: String,
    pub committer_email: String,
    pub date: String,
    /// Subject line, truncated to 80 characters.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    pub location: String,
    pub context_dir: Option<PathBuf>,
    pub commit: Option<CommitInfo>,
}

#[derive(Debug)]
pub struct FetchedSource {
    /// `staging/src`: the application source, ready to inject at `<destination>/src`.
    pub dir: PathBuf,
    /// Scripts moved out of `.s2i/bin`, by file name (e.g. `assemble.wasm`), under `staging/scripts`.
    pub scripts: BTreeMap<String, PathBuf>,
    /// `.s2i/environment` of the context dir (empty when absent).
    pub environment: Vec<EnvVar>,
    pub info: SourceInfo,
    /// Things skipped during the copy, to be shown to the user.
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("invalid source {arg:?}: {reason}")]
    BadLocation { arg: String, reason: String },
    #[error("invalid --exclude regular expression: {0}")]
    BadExclude(String),
    #[error("invalid --context-dir {0:?}: must be a relative path inside the source")]
    BadContextDir(String),
    #[error("invalid --ref {0:?}")]
    BadRef(String),
    #[error("source directory {} does not exist or is not a directory", .0.display())]
    MissingSource(PathBuf),
    #[error("context dir {} not found in the source", .0.display())]
    MissingContextDir(PathBuf),
    #[error("recursive copy: the staging dir {} is inside the source {}", staging.display(), source_dir.display())]
    RecursiveCopy { source_dir: PathBuf, staging: PathBuf },
    #[error("--ref needs a git source; {} is copied", .0.display())]
    RefWithoutGit(PathBuf),
    #[error("git {step}: {message}")]
    Git { step: String, message: String },
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> SourceError + '_ {
    move |e| SourceError::Io { path: path.to_path_buf(), message: e.to_string() }
}

/// Fetches `spec` into `staging` (created if missing; must be empty).
pub fn fetch(spec: &SourceSpec, staging: &Path) -> Result<FetchedSource, SourceError> {
    std::fs::create_dir_all(staging).map_err(io_err(staging))?;
    if std::fs::read_dir(staging).map_err(io_err(staging))?.next().is_some() {
        return Err(SourceError::Io { path: staging.into(), message: "staging dir is not empty".into() });
    }
    let clone_dir = staging.join("clone");
    let mut commit = None;
    let mut is_git = false;
    let tree: PathBuf = match &spec.location {
        SourceLocation::Git(url) => {
            if let Some(path) = url.strip_prefix("file://") {
                git::check_local_repo(Path::new(path))?;
            }
            git::clone(url, &clone_dir, spec.git_ref.as_deref(), spec.ignore_submodules, spec.allow_local_submodules)?;
            commit = Some(git::commit_info(&clone_dir)?);
            is_git = true;
            clone_dir.clone()
        }
        SourceLocation::Local(p) => {
            if !p.is_dir() {
                return Err(SourceError::MissingSource(p.clone()));
            }
            let src = p.canonicalize().map_err(io_err(p))?;
            let stg = staging.canonicalize().map_err(io_err(staging))?;
            if stg.starts_with(&src) {
                return Err(SourceError::RecursiveCopy { source_dir: src, staging: stg });
            }
            if !spec.copy && (src.join(".git").exists() || src.join(".git").is_symlink()) {
                git::check_local_repo(&src)?;
                git::clone(&src.to_string_lossy(), &clone_dir, spec.git_ref.as_deref(), spec.ignore_submodules, spec.allow_local_submodules)?;
                commit = Some(git::commit_info(&clone_dir)?);
                is_git = true;
                clone_dir.clone()
            } else {
                if spec.git_ref.is_some() {
                    return Err(SourceError::RefWithoutGit(p.clone()));
                }
                src
            }
        }
    };
    let result = stage(spec, &tree, staging, is_git);
    if clone_dir.exists() {
        let _ = std::fs::remove_dir_all(&clone_dir);
    }
    let (dir, scripts, environment, warnings) = result?;
    Ok(FetchedSource {
        dir,
        scripts,
        environment,
        info: SourceInfo { location: spec.location.display(), context_dir: spec.context_dir.clone(), commit },
        warnings,
    })
}

type Staged = (PathBuf, BTreeMap<String, PathBuf>, Vec<EnvVar>, Vec<String>);

fn stage(spec: &SourceSpec, tree: &Path, staging: &Path, is_git: bool) -> Result<Staged, SourceError> {
    let tree_dir = Dir::open_ambient_dir(tree, ambient_authority()).map_err(io_err(tree))?;
    // Opening through the tree's Dir keeps a hostile `context-dir` symlink inside the tree.
    let root = match &spec.context_dir {
        None => tree_dir,
        Some(c) => tree_dir.open_dir(c).map_err(|_| SourceError::MissingContextDir(c.clone()))?,
    };
    let ignore = match read_small(&root, Path::new(".s2iignore")) {
        Some(text) => ignore::IgnoreRules::parse(&text),
        None => ignore::IgnoreRules::default(),
    };
    let exclude = spec.exclude.clone();
    let skip = move |rel: &str| exclude.as_ref().is_some_and(|re| re.is_match(rel)) || ignore.is_ignored(rel);
    let src_path = staging.join("src");
    std::fs::create_dir(&src_path).map_err(io_err(&src_path))?;
    let dst = Dir::open_ambient_dir(&src_path, ambient_authority()).map_err(io_err(&src_path))?;
    let opts = copy::CopyOptions { keep_symlinks: spec.keep_symlinks || is_git, skip: &skip };
    let warnings = copy::copy_tree(&root, &dst, &opts).map_err(io_err(tree))?;

    let scripts_path = staging.join("scripts");
    let scripts = move_scripts(&dst, &src_path, &scripts_path)?;
    let env_name = spec.context_dir.clone().unwrap_or_default().join(".s2i/environment");
    let environment = match read_small(&dst, Path::new(".s2i/environment")) {
        Some(text) => envfile::parse_env_file(&text, &env_name, EnvFileKind::Source)?,
        None => Vec::new(),
    };
    Ok((src_path, scripts, environment, warnings))
}

/// Reads a small regular file through `dir` (no following a link out of it); `None` if absent,
/// not a regular file, too large or not UTF-8.
fn read_small(dir: &Dir, rel: &Path) -> Option<String> {
    use std::io::Read;
    let f = dir.open(rel).ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_SMALL_FILE {
        return None;
    }
    let mut s = String::new();
    f.take(MAX_SMALL_FILE).read_to_string(&mut s).ok()?;
    Some(s)
}

/// Moves known script files from `src/.s2i/bin` (or `.sti/bin`) into `scripts_path`.
fn move_scripts(
    dst: &Dir,
    src_path: &Path,
    scripts_path: &Path,
) -> Result<BTreeMap<String, PathBuf>, SourceError> {
    let mut out = BTreeMap::new();
    for bin in [".s2i/bin", ".sti/bin"] {
        let Ok(entries) = dst.read_dir(bin) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if ScriptName::from_file_name(&name).is_none() || out.contains_key(&name) {
                continue;
            }
            // Only regular files: a kept symlink could point anywhere on the host.
            let rel = Path::new(bin).join(&name);
            if !dst.symlink_metadata(&rel).is_ok_and(|m| m.is_file()) {
                continue;
            }
            std::fs::create_dir_all(scripts_path).map_err(io_err(scripts_path))?;
            let to = scripts_path.join(&name);
            let from = src_path.join(&rel);
            std::fs::rename(&from, &to).map_err(io_err(&from))?;
            out.insert(name, to);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_locations() {
        use SourceLocation::*;
        assert_eq!(SourceLocation::parse("file:///tmp/r.git").unwrap(), Git("file:///tmp/r.git".into()));
        assert_eq!(SourceLocation::parse("https://h/x.git").unwrap(), Git("https://h/x.git".into()));
        assert_eq!(SourceLocation::parse("ssh://git@h:22/x").unwrap(), Git("ssh://git@h:22/x".into()));
        assert_eq!(SourceLocation::parse("git@github.com:u/r.git").unwrap(), Git("git@github.com:u/r.git".into()));
        assert_eq!(SourceLocation::parse("./app").unwrap(), Local("./app".into()));
        assert_eq!(SourceLocation::parse("a/b@c:d").unwrap(), Local("a/b@c:d".into()));
        assert_eq!(SourceLocation::parse("/abs/dir").unwrap(), Local("/abs/dir".into()));
        assert!(SourceLocation::parse("file://host/x").is_err());
        assert!(SourceLocation::parse("ftp://h/x").is_err());
        assert!(SourceLocation::parse("https://h/x#main").is_err());
        assert!(SourceLocation::parse("").is_err());
    }

    #[test]
    fn context_dir_and_exclude() {
        assert_eq!(SourceSpec::parse_context_dir("./a/b/").unwrap(), Some(PathBuf::from("a/b")));
        assert_eq!(SourceSpec::parse_context_dir(".").unwrap(), None);
        assert!(SourceSpec::parse_context_dir("../x").is_err());
        assert!(SourceSpec::parse_context_dir("/x").is_err());
        assert!(SourceSpec::parse_exclude("").unwrap().is_none());
        assert!(SourceSpec::parse_exclude("(").is_err());
        let re = Regex::new(DEFAULT_EXCLUDE).unwrap();
        assert!(re.is_match(".git") && re.is_match("a/.git/x") && !re.is_match(".gitignore"));
    }
}
