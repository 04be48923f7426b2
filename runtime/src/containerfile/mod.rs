//! The Containerfile front end of `ws2i bud`: a Dockerfile subset that needs
//! no native execution (see docs/containerfile.md for the exact subset).
//!
//! Three steps, each usable alone:
//! 1. [`Containerfile::parse`]: text → [`Instruction`]s (directives,
//!    continuations, exec vs shell form). Errors name the line.
//! 2. [`plan`]: instructions + build context + base image configs → a
//!    [`Plan`]: per stage its base, its [`Step`]s (context paths already
//!    resolved through cap-std, globs and `.containerignore` applied, every
//!    variable expanded) and its resulting [`ImageConfig`].
//! 3. [`execute`]: drives a [`BudBackend`] (the store/layer/sandbox in
//!    production, [`DirBackend`] in tests) through the plan.

pub mod bud;
mod eval;
mod exec;
mod expand;
mod glob;
mod parse;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

pub use eval::{plan, BuildOptions};
pub use exec::{execute, expand_entries, BudBackend, DirBackend};
pub(crate) use exec::{from_paths, rel_dest, write_entry};
pub use glob::Ignore;
pub use parse::{Args, Containerfile, Flag, Instruction, Keyword};
/// For the fuzz targets (fuzz.rs at the crate root).
pub(crate) use expand::words as expand_words;

/// What went wrong, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The text does not parse.
    Syntax,
    /// Valid Dockerfile, outside ws2i's subset (shell-form RUN, ONBUILD, ADD of a URL, ...).
    Unsupported,
    /// A variable expansion failed (`${X:?msg}`, bad substitution).
    Expansion,
    /// A source is missing, outside the context, or unreadable.
    Context,
    /// Stage names, `--from`, `--target`, or a base image that cannot be resolved.
    Reference,
}

/// An error tied to a Containerfile line (0 when not about one line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Containerfile line {line}: {message}")]
pub struct Error {
    pub line: usize,
    pub kind: ErrorKind,
    pub message: String,
}

/// A harmless instruction recorded or ignored, reported to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub line: usize,
    pub message: String,
}

/// The image configuration a stage ends with (inherited from its base, then
/// changed by its instructions). Maps 1:1 onto the OCI image config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// Ordered as set; a later `ENV` of the same name replaces in place.
    pub env: Vec<(String, String)>,
    pub labels: BTreeMap<String, String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    /// `8080/tcp` form, protocol always present.
    pub exposed_ports: BTreeSet<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub volumes: BTreeSet<String>,
    pub stop_signal: Option<String>,
    pub author: Option<String>,
}

impl ImageConfig {
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn set_env(&mut self, name: &str, value: String) {
        match self.env.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.env.push((name.to_string(), value)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Scratch,
    /// An image reference as written (after ARG expansion), for the backend to resolve.
    Image(String),
    /// An earlier stage of this Containerfile, by index.
    Stage(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub stages: Vec<Stage>,
    /// Index of the stage that is the build's result (the last, or `--target`).
    pub output: usize,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub name: Option<String>,
    pub base: Base,
    /// The base's config, so a backend can tell what this stage changed.
    pub base_config: ImageConfig,
    /// Filesystem changes in order; a backend packs all of a stage's steps
    /// into one layer on top of the base's layers.
    pub steps: Vec<Step>,
    pub config: ImageConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Copy(CopyStep),
    Run(RunStep),
    /// `WORKDIR` creates its directory (mode 0755) when missing.
    Workdir {
        line: usize,
        path: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyStep {
    pub line: usize,
    pub source: CopySource,
    /// Absolute path in the image (relative `COPY` destinations resolved against `WORKDIR`).
    pub dest: String,
    /// Destination is a directory: it ended with `/` or there are several sources.
    pub dest_is_dir: bool,
    /// `--chmod`: applied to every copied file and directory.
    pub chmod: Option<u32>,
    /// `--chown`: user and group as written (names or ids), resolved by the backend.
    pub chown: Option<Chown>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopySource {
    /// From the build context, fully resolved: what to copy where.
    Context(Vec<Entry>),
    /// `--from=<stage>`: absolute paths in that stage's filesystem; expand
    /// with [`expand_entries`] once the stage exists.
    Stage { stage: usize, paths: Vec<String> },
    /// `--from=<image>`: absolute paths in that image's filesystem.
    Image {
        reference: String,
        paths: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chown {
    pub user: String,
    pub group: Option<String>,
}

/// One filesystem object to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the source root (context or stage/image rootfs), normalized.
    pub src: PathBuf,
    /// Absolute path in the image.
    pub dest: String,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// Copied as a link (target text unchanged), never followed.
    Symlink(PathBuf),
}

/// `RUN ["/path/tool.wasm", "arg"]`: a WASI module from the stage's own
/// filesystem, run sandboxed with the stage's rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStep {
    pub line: usize,
    pub argv: Vec<String>,
    /// The stage's ENV plus its ARGs (ENV wins), as Docker gives RUN.
    pub env: Vec<(String, String)>,
    pub workdir: String,
    pub user: Option<String>,
}
