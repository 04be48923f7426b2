//! Stages "Writing image" and "Pushing image": the new config and manifest on top of the image the
//! tree came from (its command, the labels, the source annotations, a fixed `created` under
//! SOURCE_DATE_EPOCH), committed to the store under TAG; then, with `--push`, sent to the
//! registry, mounting the builder's blobs where the registry allows.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use crate::image::transport::{self, CopyOptions};
use crate::image::{
    media, Descriptor, ImageBuilder, ImageConfig, ImageRef, LocalRef, Manifest, NameTag, Platform,
    Store,
};
use crate::layer::MediaTypeFlavor;
use crate::s2i::commit::{Committed, Launch, Tree};
use crate::s2i::runtime::SCRATCH;
use crate::s2i::{BuildCtx, BuildError, BuildRequest, PushTarget, Pushed};
use crate::source::SourceInfo;
use crate::Digest;

/// The stored result.
pub(crate) struct Written {
    pub digest: Digest,
    pub config_digest: Digest,
    /// Every label of the result, the base image's included.
    pub labels: BTreeMap<String, String>,
}

pub(crate) fn write(
    ctx: &BuildCtx,
    info: &SourceInfo,
    tree: &Tree,
    layer: &Committed,
    labels: &[(String, String)],
    assemble: &str,
) -> Result<Written, BuildError> {
    let (req, store, from) = (ctx.req, &ctx.store, &tree.from);
    let config_bytes = store.layout().read_blob(&from.config_digest)?;
    let mut b = ImageBuilder::from_base(&from.manifest, &config_bytes)?;
    let packed = &layer.packed;
    b.add_layer(crate::image::NewLayer {
        diff_id: packed.diff_id.clone(),
        digest: packed.digest.clone(),
        size: packed.size,
        media_type: packed.compression.media_type(MediaTypeFlavor::Oci).into(),
        created_by: format!("ws2i build: {assemble}"),
    })?;
    match &tree.launch {
        Launch::Entrypoint(argv) => b.set("Entrypoint", serde_json::json!(argv)),
        // A wasm run hook makes a wasm image (platform, Entrypoint, variant): docs/images.md.
        Launch::RunHook(p) => b.command(p, crate::image::entry_kind(tree.root.path(), p)),
    };
    // `--platform`: the image says the target, even over a wasm run hook's platform.
    if let Some(t) = &ctx.target {
        b.platform(&t.platform);
    }
    for (k, v) in labels {
        b.label(k, v);
    }
    b.annotation("org.opencontainers.image.source", &info.location);
    if let Some(c) = &info.commit {
        b.annotation("org.opencontainers.image.revision", &c.id);
    }
    if req.runtime_image.as_deref() != Some(SCRATCH) {
        b.annotation(
            "org.opencontainers.image.base.digest",
            &from.manifest_digest.to_string(),
        );
    }
    let (config_bytes, manifest) = b.finish()?;
    let (config_bytes, manifest) = match req.source_date_epoch {
        Some(sde) => fix_created(config_bytes, manifest, sde)?,
        None => (config_bytes, manifest),
    };
    let digest = match &req.tag {
        Some(tag) if !ctx.in_index() => store.commit_image(&config_bytes, &manifest, tag)?,
        _ => {
            store.layout().put_bytes(&config_bytes)?;
            store.put_manifest(&manifest.to_bytes(), manifest.media_type_or_default())?
        }
    };
    let all = ImageConfig::parse(&config_bytes)?.labels();
    Ok(Written {
        digest,
        config_digest: manifest.config.digest.clone(),
        labels: all,
    })
}

/// `--push`: the stored result to its `docker://` TAG ([`BuildRequest::check`] made sure there is one).
pub(crate) fn push(ctx: &BuildCtx, target: &PushTarget) -> Result<Pushed, BuildError> {
    let tag = ctx
        .req
        .tag
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("--push needs a TAG"))?;
    push_result(ctx.req, &ctx.store, tag, target, false)
}

/// Pushes the stored result, letting the registry mount the builder's blobs when the builder
/// came from the same registry (the transport ignores a candidate on another one). `all`: the
/// stored image is an index, pushed whole.
pub(crate) fn push_result(
    req: &BuildRequest,
    store: &Store,
    tag: &NameTag,
    p: &PushTarget,
    all: bool,
) -> Result<Pushed, BuildError> {
    let mut mount_from = Vec::new();
    if let Ok(ImageRef::Docker(b)) = req.builder.parse::<ImageRef>() {
        mount_from.push(format!("{}/{}", b.registry, b.repository));
    }
    let opts = CopyOptions {
        format: p.format,
        platform: Platform::host_default(),
        registry: req.registry.clone(),
        store_root: Some(store.root().to_path_buf()),
        progress: req.progress,
        mount_from,
    };
    let dest = ImageRef::Docker(p.dest.clone());
    let copy = if all { transport::copy_all_report } else { transport::copy_report };
    let report = copy(&ImageRef::Local(LocalRef::Tagged(tag.clone())), &dest, &opts)
    .with_context(|| format!("pushing {tag} to {dest} (it is kept in the local store)"))?;
    Ok(Pushed {
        reference: dest.to_string(),
        digest: report.digest,
        mounted: report.mounted.len(),
        uploaded: report.copied.len(),
    })
}

/// `created` of the image and of the new history entry from SOURCE_DATE_EPOCH, so that the
/// same inputs give the same config (and manifest) digest.
fn fix_created(
    config_bytes: Vec<u8>,
    mut manifest: Manifest,
    sde: u64,
) -> Result<(Vec<u8>, Manifest)> {
    let ts = crate::image::rfc3339(sde as i64);
    let mut v: serde_json::Value = serde_json::from_slice(&config_bytes)?;
    v["created"] = serde_json::Value::String(ts.clone());
    if let Some(last) = v
        .get_mut("history")
        .and_then(|h| h.as_array_mut())
        .and_then(|h| h.last_mut())
    {
        if last.is_object() {
            last["created"] = serde_json::Value::String(ts);
        }
    }
    let bytes = serde_json::to_vec(&v)?;
    manifest.config = Descriptor::new(media::OCI_CONFIG, Digest::of(&bytes), bytes.len() as u64);
    Ok((bytes, manifest))
}
