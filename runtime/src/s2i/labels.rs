//! The result's labels: s2i's generated `io.openshift.s2i.build.*` and `io.k8s.*` labels,
//! `--label`, then what assemble wrote to `image_metadata.json` (later wins), within s2i's
//! 10240-byte limit, checked before anything is stored.

use std::collections::BTreeMap;

use anyhow::{anyhow, Context, Result};
use cap_std::fs::Dir;

use crate::image::{ImageRef, NameTag, ResolvedImage};
use crate::s2i::{BuildError, BuildRequest};
use crate::source;

/// S2I's label namespace for the build labels.
const NS: &str = "io.openshift.s2i.";

/// The labels ws2i sets on the result (generated, `--label`, then assemble's), after checking
/// that together with the base image's they stay within [`MAX_LABELS_SIZE`].
pub(crate) fn for_result(
    req: &BuildRequest,
    info: &source::SourceInfo,
    from: &ResolvedImage,
    metadata: &[(String, String)],
) -> Result<Vec<(String, String)>, BuildError> {
    let ours: Vec<(String, String)> = output_labels(req, info).into_iter().chain(metadata.iter().cloned()).collect();
    // As ImageBuilder will merge them: the base image's, then ours (later wins).
    let mut merged = from.config.labels();
    merged.extend(ours.iter().cloned());
    check_label_size(&merged)?;
    Ok(ours)
}

pub const MAX_LABELS_SIZE: usize = 10240;

/// Refuses a label set over [`MAX_LABELS_SIZE`], naming the largest labels so the user sees
/// which `--label` or image_metadata.json entry to shorten.
fn check_label_size(labels: &BTreeMap<String, String>) -> Result<(), BuildError> {
    let total: usize = labels.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total <= MAX_LABELS_SIZE {
        return Ok(());
    }
    let mut by_size: Vec<(String, usize)> = labels
        .iter()
        .map(|(k, v)| (k.clone(), k.len() + v.len()))
        .collect();
    by_size.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    by_size.truncate(3);
    Err(BuildError::LabelsTooLarge {
        total,
        largest: by_size,
    })
}

/// The builder as s2i records it: `NAME:TAG` for the local store (tag made explicit),
/// `HOST/REPO:TAG` for a registry (the name it is kept under locally, so the label resolves).
fn normalized_name(reference: &str) -> String {
    match reference.parse::<ImageRef>() {
        Ok(ImageRef::Local(l)) => l.to_string(),
        Ok(ImageRef::Docker(d)) => d.to_string(),
        _ => reference.to_string(),
    }
}

/// Where assemble may leave labels for the result (s2i's contract; fixed, whatever the destination).
pub(crate) const IMAGE_METADATA_DIR: &str = "/tmp/.s2i";
pub(crate) const IMAGE_METADATA: &str = "/tmp/.s2i/image_metadata.json";
/// A metadata file larger than this is refused rather than read into memory.
const IMAGE_METADATA_LIMIT: u64 = 1 << 20;

/// `{"labels":[{"k":"v"}, …]}`: every entry an object of string values. Unknown top-level keys
/// are refused so that a typo does not silently drop labels.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageMetadata {
    #[serde(default)]
    labels: Vec<BTreeMap<String, String>>,
}

/// The labels assemble wrote to [`IMAGE_METADATA`] (none when it wrote no file), in file
/// order; read through cap-std on the build root so that a symlink cannot point outside it.
pub(crate) fn read_image_metadata(root: &Dir) -> Result<Vec<(String, String)>, BuildError> {
    use std::io::Read as _;
    let rel = IMAGE_METADATA.trim_start_matches('/');
    let file = match root.open(rel) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(anyhow!("{IMAGE_METADATA} written by assemble: {e}").into()),
    };
    let mut bytes = Vec::new();
    file.take(IMAGE_METADATA_LIMIT + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {IMAGE_METADATA} written by assemble"))?;
    if bytes.len() as u64 > IMAGE_METADATA_LIMIT {
        return Err(anyhow!(
            "{IMAGE_METADATA} written by assemble is larger than {IMAGE_METADATA_LIMIT} bytes"
        )
        .into());
    }
    parse_image_metadata(&bytes)
        .with_context(|| format!("{IMAGE_METADATA} written by assemble is invalid"))
        .map_err(BuildError::from)
}

fn parse_image_metadata(bytes: &[u8]) -> Result<Vec<(String, String)>> {
    let m: ImageMetadata =
        serde_json::from_slice(bytes).context("expected {\"labels\":[{\"KEY\":\"VALUE\"}, …]}")?;
    let mut out = Vec::new();
    for entry in m.labels {
        for (k, v) in entry {
            if k.trim().is_empty() {
                anyhow::bail!("a label has an empty key");
            }
            out.push((k, v));
        }
    }
    Ok(out)
}

/// The labels ws2i writes, in s2i's merge order: generated, then `--label`.
fn output_labels(req: &BuildRequest, info: &source::SourceInfo) -> Vec<(String, String)> {
    let mut l: Vec<(String, String)> = Vec::new();
    let mut add = |k: String, v: &str| {
        if !v.is_empty() {
            l.push((k, v.to_string()));
        }
    };
    add(format!("{NS}build.image"), &normalized_name(&req.builder));
    if let Some(c) = &info.commit {
        if !c.author_name.is_empty() {
            add(
                format!("{NS}build.commit.author"),
                &format!("{} <{}>", c.author_name, c.author_email),
            );
        }
        add(format!("{NS}build.commit.date"), &c.date);
        add(format!("{NS}build.commit.id"), &c.id);
        add(format!("{NS}build.commit.ref"), &c.ref_name);
        add(format!("{NS}build.commit.message"), &c.message);
    }
    add(format!("{NS}build.source-location"), &info.location);
    if let Some(cd) = &info.context_dir {
        add(
            format!("{NS}build.source-context-dir"),
            &cd.to_string_lossy(),
        );
    }
    let display = req
        .application_name
        .clone()
        .or_else(|| req.tag.as_ref().map(NameTag::to_string))
        .unwrap_or_default();
    add("io.k8s.display-name".into(), &display);
    add(
        "io.k8s.description".into(),
        req.description.as_deref().unwrap_or(""),
    );
    for (k, v) in &req.labels {
        l.push((k.clone(), v.clone()));
    }
    l
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_metadata_schema() {
        let l = parse_image_metadata(br#"{"labels":[{"a":"1"},{"b":"2","c":""}]}"#).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[0], ("a".into(), "1".into()));
        assert!(parse_image_metadata(b"{}").unwrap().is_empty());
        for bad in [
            &br#"{"labels":{"a":"b"}}"#[..],
            br#"{"labels":[{"a":1}]}"#,
            br#"{"labels":[["a","b"]]}"#,
            br#"{"label":[]}"#,
            br#"{"labels":[{" ":"x"}]}"#,
            b"not json",
            b"",
        ] {
            assert!(
                parse_image_metadata(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn label_size_limit() {
        let mut l = BTreeMap::new();
        l.insert("k".to_string(), "v".repeat(MAX_LABELS_SIZE - 1));
        assert!(check_label_size(&l).is_ok(), "exactly the limit is allowed");
        l.insert("small".to_string(), "x".into());
        l.insert("b".to_string(), "y".repeat(100));
        let e = check_label_size(&l).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(&e, BuildError::LabelsTooLarge { total, largest }
                if *total == MAX_LABELS_SIZE + 6 + 101 && largest[0].0 == "k" && largest[1].0 == "b"),
            "{msg}"
        );
        assert!(msg.contains("limit of 10240 bytes") && msg.contains("k (10240 bytes)"), "{msg}");
    }
}
