//! Stage "Running assemble": the `--inject`/`--volume` inputs attached, assemble run in the
//! sandbox with the build's environment and budgets, and the labels it left in
//! `/tmp/.s2i/image_metadata.json` read back. A non-zero exit is [`BuildError::AssembleFailed`]:
//! nothing has been stored yet, so a failed build leaves no image.

use std::path::Path;

use anyhow::{anyhow, Context};
use cap_std::fs::Dir;

use crate::contract::ScriptName;
use crate::s2i::builder::Base;
use crate::s2i::labels::read_image_metadata;
use crate::s2i::rootfs::Rootfs;
use crate::s2i::{BuildCtx, BuildError, BuildRequest};
use crate::sandbox::{Hook, Mount, SandboxError};

/// What assemble left for the later stages.
pub(crate) struct Assembled {
    /// The assemble script's guest path.
    pub program: String,
    /// Labels from `image_metadata.json`, in file order.
    pub metadata: Vec<(String, String)>,
    /// Guest paths of the host inputs, never part of the result.
    pub host_exclude: Vec<String>,
}

pub(crate) fn run(ctx: &BuildCtx, base: &Base, rootfs: &Rootfs) -> Result<Assembled, BuildError> {
    let host_inputs = attach_host_inputs(ctx.req, &rootfs.dir)?;
    let program = rootfs.placed.get(&ScriptName::Assemble).cloned().ok_or_else(|| anyhow!("no assemble script"))?;
    let mut hook = Hook::new(rootfs.root.path(), program.clone());
    hook.env = rootfs.env.clone();
    hook.cwd = format!("{}/src", base.destination);
    hook.mounts = host_inputs.mounts;
    hook.budget = ctx.req.budget.clone();
    hook.reproducible = ctx.req.source_date_epoch;
    let outcome = ctx.sandbox.run(hook, ctx.log).map_err(|e: SandboxError| anyhow!(e)).context("running assemble")?;
    if outcome.exit_code != 0 {
        return Err(BuildError::AssembleFailed { exit_code: outcome.exit_code });
    }
    let metadata = read_image_metadata(&rootfs.dir)?;
    Ok(Assembled { program, metadata, host_exclude: host_inputs.exclude })
}

/// How the `--inject`/`--volume` inputs reach assemble, and what the diff must leave out.
struct HostInputs {
    mounts: Vec<Mount>,
    exclude: Vec<String>,
}

/// Directories are mounted (injections read-only); an injected file is copied into the build
/// root read-only, and it and any directory created to hold it are left out of the layer.
fn attach_host_inputs(req: &BuildRequest, root: &Dir) -> Result<HostInputs, BuildError> {
    let mut out = HostInputs {
        mounts: Vec::new(),
        exclude: Vec::new(),
    };
    for i in &req.injections {
        let meta = std::fs::metadata(&i.host)
            .with_context(|| format!("--inject {}: cannot read it", i.host.display()))?;
        if meta.is_dir() {
            out.mounts.push(Mount {
                host: i.host.clone(),
                guest: i.guest.clone(),
                read_only: true,
            });
        } else if meta.is_file() {
            let rel = i.guest.trim_start_matches('/');
            let mut first_created = None;
            let mut parent = String::new();
            for c in Path::new(rel).parent().into_iter().flat_map(|p| p.iter()) {
                if !parent.is_empty() {
                    parent.push('/');
                }
                parent.push_str(&c.to_string_lossy());
                if first_created.is_none() && !root.exists(&parent) {
                    first_created = Some(format!("/{parent}"));
                }
            }
            if !parent.is_empty() {
                root.create_dir_all(&parent)
                    .with_context(|| format!("--inject: creating /{parent} in the build root"))?;
            }
            let mut r = std::fs::File::open(&i.host)
                .with_context(|| format!("--inject: opening {}", i.host.display()))?;
            // Temp name then rename: an existing DEST (a symlink, or hardlinked to another
            // file of the image) is replaced, never written through.
            let tmp = format!("{rel}.ws2i-inject");
            let mut w = root
                .create(&tmp)
                .with_context(|| format!("--inject: creating {} in the build root", i.guest))?;
            std::io::copy(&mut r, &mut w)
                .with_context(|| format!("--inject: copying {}", i.host.display()))?;
            use cap_std::fs::PermissionsExt as _;
            w.set_permissions(cap_std::fs::Permissions::from_mode(0o444))
                .context("--inject: making the copy read-only")?;
            drop(w);
            root.rename(&tmp, root, rel)
                .with_context(|| format!("--inject: placing {} in the build root", i.guest))?;
            out.exclude
                .push(first_created.unwrap_or_else(|| i.guest.clone()));
        } else {
            return Err(anyhow!(
                "--inject {}: neither a file nor a directory",
                i.host.display()
            )
            .into());
        }
        out.exclude.push(i.guest.clone());
    }
    for v in &req.volumes {
        std::fs::create_dir_all(&v.host)
            .with_context(|| format!("--volume: creating {}", v.host.display()))?;
        out.mounts.push(Mount {
            host: v.host.clone(),
            guest: v.guest.clone(),
            read_only: false,
        });
        out.exclude.push(v.guest.clone());
    }
    Ok(out)
}

