//! Stage "Preparing build rootfs": a private writable copy of the builder's rootfs with the
//! source at `<destination>/src`, the scripts from outside the image at
//! `<destination>/scripts`, and the environment assemble runs with.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::contract::envfile::{BuildEnv, EnvVar};
use crate::contract::ScriptName;
use crate::layer::BuildRoot;
use crate::s2i::builder::{Base, Builder};
use crate::s2i::scripts::{self, ResolvedScripts};
use crate::s2i::{BuildCtx, BuildError};
use crate::source::{self, FetchedSource};

/// The tree assemble runs in.
pub(crate) struct Rootfs {
    pub root: BuildRoot,
    pub dir: Dir,
    /// Each script's guest path.
    pub placed: BTreeMap<ScriptName, String>,
    /// The hook environment: image `ENV` < `.s2i/environment` < `-E` < `-e`, plus `DESTINATION`.
    pub env: Vec<(String, String)>,
}

pub(crate) fn prepare(
    ctx: &BuildCtx,
    builder: &Builder,
    base: &Base,
    source: &FetchedSource,
    resolved: &ResolvedScripts,
) -> Result<Rootfs, BuildError> {
    let root = ctx.cache.checkout(&base.rootfs)?;
    let dir = Dir::open_ambient_dir(root.path(), ambient_authority())
        .context("opening the build root")?;
    inject_source(&dir, &base.destination, &source.dir, "src")?;
    let placed = scripts::install(&dir, &base.destination, resolved)?;
    let merged = BuildEnv {
        image: builder
            .env
            .iter()
            .filter_map(|(k, v)| EnvVar::new(k.clone(), v.clone()).ok())
            .collect(),
        source_file: source.environment.clone(),
        cli_file: ctx.req.env_file.clone(),
        cli_args: ctx.req.env.clone(),
    }
    .resolve();
    let mut env: Vec<(String, String)> = merged
        .iter()
        .map(|e| (e.key().to_string(), e.value().to_string()))
        .collect();
    if !env.iter().any(|(k, _)| k == "DESTINATION") {
        env.push(("DESTINATION".into(), base.destination.clone()));
    }
    // `--platform`: the target wins over any same-named variable, as BuildKit's automatic args.
    if let Some(p) = ctx.platform() {
        for (k, v) in crate::s2i::platforms::target_env(p) {
            env.retain(|(e, _)| *e != k);
            env.push((k, v));
        }
    }
    Ok(Rootfs {
        root,
        dir,
        placed,
        env,
    })
}

/// Puts the source at `<destination>/src` in the build root, through cap-std (the builder's own
/// symlinks, e.g. `/tmp -> /somewhere`, stay inside the root).
pub(crate) fn inject_source(
    root: &Dir,
    destination: &str,
    source_dir: &Path,
    sub: &str,
) -> Result<(), BuildError> {
    let rel = join_rel(destination, sub);
    root.create_dir_all(&rel)
        .with_context(|| format!("creating {destination}/{sub} in the build root"))?;
    let into = root
        .open_dir(&rel)
        .with_context(|| format!("opening {destination}/{sub}"))?;
    let staged = Dir::open_ambient_dir(source_dir, ambient_authority())
        .with_context(|| format!("opening the staged input {}", source_dir.display()))?;
    let never = |_: &str| false;
    let opts = source::copy::CopyOptions {
        keep_symlinks: true,
        skip: &never,
    };
    source::copy::copy_tree(&staged, &into, &opts)
        .with_context(|| format!("copying into {destination}/{sub}"))?;
    Ok(())
}

/// `destination` (a guest dir, "" for `/`) joined with `sub`, relative to the root.
pub(crate) fn join_rel(destination: &str, sub: &str) -> String {
    let d = destination.trim_start_matches('/');
    if d.is_empty() {
        sub.to_string()
    } else {
        format!("{d}/{sub}")
    }
}
