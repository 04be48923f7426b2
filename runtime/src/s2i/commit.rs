//! Stage "Committing the layer": the tree to commit (the assembled builder, or the runtime image
//! an extended build made) diffed against its base with the build's inputs left out, packed into
//! one reproducible layer owned by the assemble user, and stored as a blob.

use std::io::{Seek, SeekFrom};

use anyhow::{anyhow, Context};
use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::contract::ScriptName;
use crate::image::ResolvedImage;
use crate::layer::{self, BaseRootfs, BuildRoot, PackOptions, PackedLayer};
use crate::s2i::assemble::Assembled;
use crate::s2i::builder::Base;
use crate::s2i::labels::{IMAGE_METADATA, IMAGE_METADATA_DIR};
use crate::s2i::rootfs::Rootfs;
use crate::s2i::scripts::{is_in_image, ResolvedScripts};
use crate::s2i::{BuildCtx, BuildError};

/// A tree to commit on top of the image it came from.
pub(crate) struct Tree {
    pub from: ResolvedImage,
    pub base: BaseRootfs,
    pub root: BuildRoot,
    pub launch: Launch,
    /// Guest paths left out of the layer.
    pub exclude: Vec<String>,
}

/// What the result runs.
pub(crate) enum Launch {
    /// The S2I run script (guest path); a wasm one makes a wasm image.
    RunHook(String),
    /// A native entrypoint declared by the builder, for a scratch runtime image.
    Entrypoint(Vec<String>),
}

impl Launch {
    pub(crate) fn argv(&self) -> Vec<String> {
        match self {
            Launch::RunHook(p) => vec![p.clone()],
            Launch::Entrypoint(argv) => argv.clone(),
        }
    }
}

/// The assembled builder as the tree to commit: its inputs (source, artifacts, host inputs,
/// scripts from outside the image except a run script, which is the image's command) and
/// assemble's message to ws2i are not part of the result.
pub(crate) fn builder_tree(
    builder: &ResolvedImage,
    base: &Base,
    rootfs: Rootfs,
    resolved: &ResolvedScripts,
    assembled: &Assembled,
) -> Result<Tree, BuildError> {
    let destination = &base.destination;
    let run_path = rootfs.placed.get(&ScriptName::Run).cloned().ok_or_else(|| anyhow!("no run script"))?;
    let mut exclude = vec![format!("{destination}/src"), format!("{destination}/artifacts")];
    exclude.extend(assembled.host_exclude.iter().cloned());
    let base_has_dir = Dir::open_ambient_dir(base.rootfs.path(), ambient_authority())
        .map(|d| d.exists(IMAGE_METADATA_DIR.trim_start_matches('/')))
        .unwrap_or(false);
    exclude.push(if base_has_dir { IMAGE_METADATA.to_string() } else { IMAGE_METADATA_DIR.to_string() });
    if is_in_image(resolved, &run_path) {
        exclude.push(format!("{destination}/scripts"));
    } else {
        for p in rootfs.placed.values() {
            if *p != run_path && !is_in_image(resolved, p) {
                exclude.push(p.clone());
            }
        }
    }
    Ok(Tree { from: builder.clone(), base: base.rootfs.clone(), root: rootfs.root, launch: Launch::RunHook(run_path), exclude })
}

/// The new layer, stored.
pub(crate) struct Committed {
    pub packed: PackedLayer,
    /// Entries in the layer.
    pub changes: usize,
}

pub(crate) fn commit(ctx: &BuildCtx, tree: &Tree, owner: (u32, u32)) -> Result<Committed, BuildError> {
    let req = ctx.req;
    let exclude: Vec<&str> = tree.exclude.iter().map(String::as_str).collect();
    let changes = layer::diff(&tree.base, &tree.root, &exclude).context("comparing the build with the builder")?;
    let opts = PackOptions {
        compression: req.compression,
        source_date_epoch: req.source_date_epoch.unwrap_or(0),
        preserve_mtimes: req.source_date_epoch.is_none(),
        uid: owner.0,
        gid: owner.1,
        ..PackOptions::default()
    };
    let mut tmp = tempfile::tempfile_in(ctx.store.root()).context("creating a temporary layer file")?;
    let packed = layer::pack(&changes, &opts, &mut tmp).context("packing the layer")?;
    tmp.seek(SeekFrom::Start(0)).context("rereading the layer")?;
    ctx.store.put_blob(&mut tmp, Some(&packed.digest)).context("storing the layer")?;
    Ok(Committed { packed, changes: changes.as_slice().len() })
}
