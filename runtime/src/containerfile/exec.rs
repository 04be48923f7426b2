//! Driving a backend through a [`Plan`], and [`DirBackend`]: a plain
//! directory tree per stage, used by the tests (and handy for debugging).

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use cap_std::ambient_authority;
use cap_std::fs::{Dir, Permissions, PermissionsExt};

use super::glob::Ignore;
use super::*;

/// What `ws2i bud` needs from the image store, the layer code and the sandbox.
/// Stages are addressed by their index in [`Plan::stages`]; calls for a stage
/// come between its `start_stage` and its `commit`, in plan order.
pub trait BudBackend {
    /// The config of a base image (`FROM ref` or `COPY --from=ref`), pulling it if needed.
    fn base_image(&mut self, reference: &str) -> Result<ImageConfig>;
    /// Start a stage's filesystem from its base.
    fn start_stage(&mut self, stage: usize, base: &Base) -> Result<()>;
    /// Apply one COPY/ADD; context sources are read through `context`.
    fn copy_into(&mut self, stage: usize, context: &Dir, copy: &CopyStep) -> Result<()>;
    /// Create a WORKDIR directory (and parents) if missing.
    fn make_dir(&mut self, stage: usize, path: &str) -> Result<()>;
    /// Run an exec-form RUN: a WASI module from the stage's filesystem, sandboxed.
    fn run_wasm(&mut self, stage: usize, run: &RunStep) -> Result<()>;
    /// Seal a stage: its filesystem changes become one layer, with `config`.
    fn commit(&mut self, stage: usize, config: &ImageConfig) -> Result<()>;
}

/// Runs every stage of `plan` (up to [`Plan::output`]) on `backend`.
pub fn execute(plan: &Plan, context: &Path, backend: &mut dyn BudBackend) -> Result<()> {
    let ctx = Dir::open_ambient_dir(context, ambient_authority())
        .with_context(|| format!("opening build context {}", context.display()))?;
    for (i, stage) in plan.stages.iter().enumerate().take(plan.output + 1) {
        backend.start_stage(i, &stage.base)?;
        for step in &stage.steps {
            let (line, r) = match step {
                Step::Copy(c) => (c.line, backend.copy_into(i, &ctx, c)),
                Step::Run(r) => (r.line, backend.run_wasm(i, r)),
                Step::Workdir { line, path } => (*line, backend.make_dir(i, path)),
            };
            r.with_context(|| format!("Containerfile line {line}"))?;
        }
        backend.commit(i, &stage.config)?;
    }
    Ok(())
}

fn join_abs(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

/// The objects to create for copying `src` (normalized, relative to `root`,
/// `""` = the root) to `dest`, Docker's way: a file goes to `dest` (or into it
/// when `dest_is_dir`); a directory's *contents* go into `dest`. `src` itself
/// may be a symlink (followed, but only inside `root`: cap-std); symlinks
/// below it are copied as links, never followed. Exclusions hold through links: `src`
/// is walked by its real path, and a link (`src` or below it) whose target is excluded
/// is excluded too.
pub fn expand_entries(
    root: &Dir,
    src: &str,
    dest: &str,
    dest_is_dir: bool,
    ignore: Option<&Ignore>,
) -> Result<Vec<Entry>> {
    let probe = if src.is_empty() { "." } else { src };
    let meta = root
        .metadata(probe)
        .with_context(|| format!("{probe}: not found (or outside its root)"))?;
    let real = if src.is_empty() {
        String::new()
    } else {
        let real = root
            .canonicalize(src)
            .with_context(|| format!("{src}: not found (or outside its root)"))?;
        match real.to_str().ok_or_else(|| anyhow!("{src}: leads to a non-UTF-8 path"))? {
            "." => String::new(),
            r => r.trim_start_matches("./").to_string(),
        }
    };
    if real != src && ignore.is_some_and(|i| i.is_excluded(&real)) {
        bail!("{src}: a symlink to {real}, which is excluded by .containerignore/.dockerignore");
    }
    let name = src.rsplit('/').next().unwrap_or(src);
    let (src, probe) = if real.is_empty() { ("", ".") } else { (real.as_str(), real.as_str()) };
    let mut out = Vec::new();
    if meta.is_dir() {
        out.push(Entry {
            src: PathBuf::from(probe),
            dest: dest.to_string(),
            kind: EntryKind::Dir,
        });
        walk(root, src, dest, ignore, &mut out)?;
    } else if meta.is_file() {
        let dest = if dest_is_dir {
            join_abs(dest, name)
        } else {
            dest.to_string()
        };
        out.push(Entry {
            src: PathBuf::from(src),
            dest,
            kind: EntryKind::File,
        });
    } else {
        bail!("{src}: not a regular file or directory");
    }
    Ok(out)
}

fn walk(
    root: &Dir,
    rel: &str,
    dest: &str,
    ignore: Option<&Ignore>,
    out: &mut Vec<Entry>,
) -> Result<()> {
    let listing = root
        .read_dir(if rel.is_empty() { "." } else { rel })
        .with_context(|| format!("reading {rel}"))?;
    let mut names = Vec::new();
    for e in listing {
        let name = e?.file_name();
        names.push(
            name.into_string()
                .map_err(|n| anyhow!("non-UTF-8 file name {n:?} under {rel}"))?,
        );
    }
    names.sort();
    for name in names {
        let child = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if ignore.is_some_and(|i| i.is_excluded(&child)) {
            continue;
        }
        let child_dest = join_abs(dest, &name);
        let meta = root.symlink_metadata(&child)?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let leads_to_excluded = root
                .canonicalize(&child)
                .ok()
                .and_then(|r| r.to_str().map(|r| ignore.is_some_and(|i| i.is_excluded(r))))
                .unwrap_or(false);
            if leads_to_excluded {
                continue;
            }
            let target = root.read_link_contents(&child)?;
            out.push(Entry {
                src: child.into(),
                dest: child_dest,
                kind: EntryKind::Symlink(target),
            });
        } else if ft.is_dir() {
            out.push(Entry {
                src: child.clone().into(),
                dest: child_dest.clone(),
                kind: EntryKind::Dir,
            });
            walk(root, &child, &child_dest, ignore, out)?;
        } else if ft.is_file() {
            out.push(Entry {
                src: child.into(),
                dest: child_dest,
                kind: EntryKind::File,
            });
        }
        // Sockets, fifos and devices are skipped, as a context should not carry them.
    }
    Ok(())
}

/// A directory tree per stage under one root. Base images are registered up
/// front with [`DirBackend::add_base`]; ownership (`--chown`) is recorded, not
/// applied (no root needed); `RUN` steps are recorded, not run (the sandbox
/// lives elsewhere).
pub struct DirBackend {
    root: PathBuf,
    bases: HashMap<String, (ImageConfig, PathBuf)>,
    stages: Vec<Option<PathBuf>>,
    /// (stage, absolute path) → owner, from `--chown`.
    pub owners: BTreeMap<(usize, String), Chown>,
    /// RUN steps in order, with their stage.
    pub runs: Vec<(usize, RunStep)>,
    /// The config each committed stage ended with.
    pub committed: BTreeMap<usize, ImageConfig>,
}

impl DirBackend {
    /// Stages are created as `root/stage-N`.
    pub fn new(root: &Path) -> DirBackend {
        DirBackend {
            root: root.to_path_buf(),
            bases: HashMap::new(),
            stages: Vec::new(),
            owners: BTreeMap::new(),
            runs: Vec::new(),
            committed: BTreeMap::new(),
        }
    }

    /// Makes `reference` resolvable: its config, and a directory holding its rootfs.
    pub fn add_base(&mut self, reference: &str, config: ImageConfig, rootfs: &Path) {
        self.bases
            .insert(reference.to_string(), (config, rootfs.to_path_buf()));
    }

    /// The rootfs directory of a started stage.
    pub fn stage_dir(&self, stage: usize) -> Option<&Path> {
        self.stages.get(stage)?.as_deref()
    }

    fn open_stage(&self, stage: usize) -> Result<Dir> {
        let p = self
            .stage_dir(stage)
            .ok_or_else(|| anyhow!("stage {stage} not started"))?;
        Ok(Dir::open_ambient_dir(p, ambient_authority())?)
    }

    fn base_dir(&self, reference: &str) -> Result<&Path> {
        self.bases
            .get(reference)
            .map(|(_, p)| p.as_path())
            .ok_or_else(|| anyhow!("image {reference} not found"))
    }
}

/// Copies a whole tree (used to start a stage from its base).
fn copy_tree(src: &Dir, dst: &Dir) -> Result<()> {
    for e in expand_entries(src, "", "/", true, None)? {
        write_entry(src, dst, &e, None)?;
    }
    Ok(())
}

pub(crate) fn rel_dest(dest: &str) -> &str {
    match dest.trim_start_matches('/') {
        "" => ".",
        d => d,
    }
}

/// Writes one entry into `dst`; files go to a temp name first, then rename.
pub(crate) fn write_entry(src: &Dir, dst: &Dir, e: &Entry, chmod: Option<u32>) -> Result<()> {
    let target = rel_dest(&e.dest);
    if let Some(parent) = Path::new(target)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        dst.create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let existing = dst.symlink_metadata(target).ok();
    let mode = |m: u32| Permissions::from_mode(chmod.unwrap_or(m) & 0o7777);
    match &e.kind {
        EntryKind::Dir => {
            if !existing.as_ref().is_some_and(|m| m.is_dir()) {
                if existing.is_some() {
                    dst.remove_file(target)?;
                }
                dst.create_dir(target)
                    .with_context(|| format!("creating {}", e.dest))?;
            }
            let m = src.metadata(&e.src)?.permissions().mode();
            dst.set_permissions(target, mode(m))?;
        }
        EntryKind::File => {
            let tmp = format!("{target}.ws2i-tmp");
            let mut from = src
                .open(&e.src)
                .with_context(|| format!("opening {}", e.src.display()))?;
            let mut to = dst
                .create(&tmp)
                .with_context(|| format!("creating {}", e.dest))?;
            io::copy(&mut from, &mut to)?;
            drop(to);
            let m = from.metadata()?.permissions().mode();
            dst.set_permissions(&tmp, mode(m))?;
            if existing.as_ref().is_some_and(|m| m.is_dir()) {
                bail!("{}: a directory is in the way of a file", e.dest);
            }
            dst.rename(&tmp, dst, target)?;
        }
        EntryKind::Symlink(link) => {
            if existing.is_some() {
                dst.remove_file(target)
                    .with_context(|| format!("replacing {}", e.dest))?;
            }
            // The link text is copied verbatim; it is only ever resolved inside the image.
            dst.symlink_contents(link, target)?;
        }
    }
    Ok(())
}

impl BudBackend for DirBackend {
    fn base_image(&mut self, reference: &str) -> Result<ImageConfig> {
        self.bases
            .get(reference)
            .map(|(c, _)| c.clone())
            .ok_or_else(|| anyhow!("image {reference} not found"))
    }

    fn start_stage(&mut self, stage: usize, base: &Base) -> Result<()> {
        let dir = self.root.join(format!("stage-{stage}"));
        std::fs::create_dir_all(&dir)?;
        let dst = Dir::open_ambient_dir(&dir, ambient_authority())?;
        match base {
            Base::Scratch => {}
            Base::Image(r) => copy_tree(
                &Dir::open_ambient_dir(self.base_dir(r)?, ambient_authority())?,
                &dst,
            )?,
            Base::Stage(s) => copy_tree(&self.open_stage(*s)?, &dst)?,
        }
        if self.stages.len() <= stage {
            self.stages.resize(stage + 1, None);
        }
        self.stages[stage] = Some(dir);
        Ok(())
    }

    fn copy_into(&mut self, stage: usize, context: &Dir, copy: &CopyStep) -> Result<()> {
        let dst = self.open_stage(stage)?;
        let (src, entries) = match &copy.source {
            CopySource::Context(entries) => (context.try_clone()?, entries.clone()),
            CopySource::Stage { stage: s, paths } => from_paths(self.open_stage(*s)?, paths, copy)?,
            CopySource::Image { reference, paths } => from_paths(
                Dir::open_ambient_dir(self.base_dir(reference)?, ambient_authority())?,
                paths,
                copy,
            )?,
        };
        for e in &entries {
            write_entry(&src, &dst, e, copy.chmod)?;
            if let Some(c) = &copy.chown {
                self.owners.insert((stage, e.dest.clone()), c.clone());
            }
        }
        Ok(())
    }

    fn make_dir(&mut self, stage: usize, path: &str) -> Result<()> {
        let dst = self.open_stage(stage)?;
        dst.create_dir_all(rel_dest(path))
            .with_context(|| format!("WORKDIR {path}"))?;
        Ok(())
    }

    fn run_wasm(&mut self, stage: usize, run: &RunStep) -> Result<()> {
        use std::io::Read;
        // Same admission rule as the real backend: the program must be a
        // WebAssembly module inside the stage's own filesystem.
        let prog = &run.argv[0];
        let mut magic = [0u8; 4];
        self.open_stage(stage)?
            .open(rel_dest(prog))
            .and_then(|mut f| f.read_exact(&mut magic))
            .with_context(|| format!("RUN {prog}: not found in the stage's filesystem"))?;
        if &magic != b"\0asm" {
            bail!("RUN {prog}: not a WebAssembly module; ws2i runs no native programs");
        }
        self.runs.push((stage, run.clone()));
        Ok(())
    }

    fn commit(&mut self, stage: usize, config: &ImageConfig) -> Result<()> {
        self.committed.insert(stage, config.clone());
        Ok(())
    }
}

/// `--from` sources are expanded against their stage/image once it exists.
pub(crate) fn from_paths(dir: Dir, paths: &[String], copy: &CopyStep) -> Result<(Dir, Vec<Entry>)> {
    let mut entries = Vec::new();
    for p in paths {
        entries.extend(expand_entries(
            &dir,
            p.trim_start_matches('/'),
            &copy.dest,
            copy.dest_is_dir,
            None,
        )?);
    }
    Ok((dir, entries))
}
