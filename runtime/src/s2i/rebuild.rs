//! `ws2i rebuild IMAGE [NEWTAG]`: builds again from the S2I labels of an image ws2i built, as
//! `s2i rebuild` does. The source is fetched at the exact commit recorded in
//! `io.openshift.s2i.build.commit.id` (not the ref, which may have moved), from the recorded
//! location and context dir, with the recorded builder.
//!
//! The labels are data the build's hooks could write (`image_metadata.json`), so a recorded
//! location on this machine (a path or a `file://` repository) is not followed on their word: the
//! user names it with `--source` ([`RebuildError::LocalSource`]). A remote git URL is fine.

use std::collections::BTreeMap;

use crate::s2i::BuildRequest;
use crate::image::reference::{LocalRef, NameTag};
use crate::source::{SourceLocation, SourceSpec};
use crate::image::store::Store;

const BUILD_IMAGE: &str = "io.openshift.s2i.build.image";
const SOURCE_LOCATION: &str = "io.openshift.s2i.build.source-location";
const CONTEXT_DIR: &str = "io.openshift.s2i.build.source-context-dir";
const COMMIT_ID: &str = "io.openshift.s2i.build.commit.id";
const COMMIT_REF: &str = "io.openshift.s2i.build.commit.ref";

/// Why the labels of an image cannot be rebuilt from.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("image {image} not found in the local store: {reason}")]
    NotFound { image: String, reason: String },
    #[error("image {image} was not built by ws2i/s2i: label {label} is missing")]
    MissingLabel { image: String, label: &'static str },
    #[error("image {image}: label {label} is invalid: {reason}")]
    BadLabel {
        image: String,
        label: &'static str,
        reason: String,
    },
    #[error("image {image} was built from {location}, a source on this machine, as its label {SOURCE_LOCATION} says (the build's hooks can write that label); to rebuild from it, name it yourself: --source {location}")]
    LocalSource { image: String, location: String },
    #[error("--source {given:?}: {reason}")]
    BadSource { given: String, reason: String },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The build that made `image`, read from its labels: a [`BuildRequest`] with the recorded
/// source, commit and builder, tagged `new_tag` (default: `image` itself when it is a tag).
/// `source` (`--source`) replaces the recorded location; a local one must be given this way.
/// The caller sets budgets, compression and reproducibility like for any build.
pub fn rebuild_request(
    store: &Store,
    image: &str,
    new_tag: Option<NameTag>,
    source: Option<&str>,
    cache_dir: std::path::PathBuf,
) -> Result<BuildRequest, RebuildError> {
    let r: LocalRef =
        image
            .parse()
            .map_err(|e: crate::image::reference::RefError| RebuildError::NotFound {
                image: image.into(),
                reason: e.to_string(),
            })?;
    let img = store.resolve(&r).map_err(|e| RebuildError::NotFound {
        image: image.into(),
        reason: format!("{e:#}"),
    })?;
    let labels = img.config.labels();
    request_from_labels(
        image,
        &labels,
        source,
        store,
        cache_dir,
        new_tag.or(match r {
            LocalRef::Tagged(t) => Some(t),
            _ => None,
        }),
    )
}

fn request_from_labels(
    image: &str,
    labels: &BTreeMap<String, String>,
    source: Option<&str>,
    store: &Store,
    cache_dir: std::path::PathBuf,
    tag: Option<NameTag>,
) -> Result<BuildRequest, RebuildError> {
    let get = |label: &'static str| {
        labels
            .get(label)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .ok_or(RebuildError::MissingLabel {
                image: image.into(),
                label,
            })
    };
    let bad = |label: &'static str, reason: String| RebuildError::BadLabel {
        image: image.into(),
        label,
        reason,
    };
    let builder = get(BUILD_IMAGE)?;
    let recorded = get(SOURCE_LOCATION)?;
    let location = match source {
        Some(s) => SourceLocation::parse(s).map_err(|e| RebuildError::BadSource {
            given: s.into(),
            reason: e.to_string(),
        })?,
        None => {
            let l = SourceLocation::parse(recorded).map_err(|e| bad(SOURCE_LOCATION, e.to_string()))?;
            let local = match &l {
                SourceLocation::Local(_) => true,
                SourceLocation::Git(url) => url.to_ascii_lowercase().starts_with("file://"),
            };
            if local {
                return Err(RebuildError::LocalSource { image: image.into(), location: recorded.into() });
            }
            l
        }
    };
    let mut spec = SourceSpec::new(location);
    if let Some(cd) = labels.get(CONTEXT_DIR).filter(|v| !v.trim().is_empty()) {
        spec.context_dir = SourceSpec::parse_context_dir(cd.trim())
            .map_err(|e| bad(CONTEXT_DIR, e.to_string()))?;
    }
    if let SourceLocation::Git(_) = &spec.location {
        // Without the commit a rebuild would silently build whatever the branch is now.
        let id = get(COMMIT_ID)?;
        if !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad(COMMIT_ID, format!("{id:?} is not a commit id")));
        }
        spec.git_ref = Some(id.to_string());
    }
    let mut req = BuildRequest::new(spec, builder, store.root().to_path_buf(), cache_dir);
    // Checking out the commit id leaves git detached ("HEAD"); the branch or tag the original
    // build came from is still the truth about this commit, and keeps the labels identical.
    if let Some(r) = labels.get(COMMIT_REF).filter(|v| !v.trim().is_empty()) {
        req.labels.push((COMMIT_REF.to_string(), r.clone()));
    }
    req.tag = tag;
    req.application_name = labels.get("io.k8s.display-name").cloned();
    req.description = labels.get("io.k8s.description").cloned();
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(location: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (BUILD_IMAGE.to_string(), "ws2i/test-builder:latest".to_string()),
            (SOURCE_LOCATION.to_string(), location.to_string()),
            (COMMIT_ID.to_string(), "0123abcd".to_string()),
        ])
    }

    #[test]
    fn a_local_source_location_needs_the_users_word() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let req = |location: &str, source: Option<&str>| {
            request_from_labels("app:v1", &labels(location), source, &store, dir.path().into(), None)
        };
        for local in ["/home/me/app", "./app", "file:///srv/git/app.git", "FILE:///srv/x"] {
            let e = req(local, None).unwrap_err();
            assert!(matches!(&e, RebuildError::LocalSource { location, .. } if location == local), "{e}");
            assert!(e.to_string().contains(&format!("--source {local}")), "{e}");
            let ok = req(local, Some("/the/users/own/path")).unwrap();
            assert_eq!(ok.source.location, SourceLocation::Local("/the/users/own/path".into()));
        }
        let remote = req("https://git.example/app.git", None).unwrap();
        assert_eq!(remote.source.location, SourceLocation::Git("https://git.example/app.git".into()));
        assert_eq!(remote.source.git_ref.as_deref(), Some("0123abcd"));
        assert!(matches!(req("https://x/y", Some("ftp://z")), Err(RebuildError::BadSource { .. })));
    }
}
