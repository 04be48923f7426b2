//! Reading OKD objects from YAML or JSON files: multi-document streams, `kind: List`, the API
//! groups `build.openshift.io/v1`, `image.openshift.io/v1` and the legacy group-less `v1`;
//! then OKD's defaulting and validation ([`prepare`]).
//!
//! Errors name the file, the document and the field; YAML syntax and type errors carry serde_yaml's
//! line and column. Triggers OKD would drop silently (an empty or unknown `type`, as in the seed
//! article's mis-nested `imageChange: {type: ImageChange}`) are dropped here too, with a warning
//! that names the fix.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::objects::*;
use crate::containerfile::{Args, Containerfile, Keyword};

/// An object read from a file, ready for the database.
#[derive(Debug, Clone)]
pub enum Object {
    ImageStream(ImageStream),
    BuildConfig(BuildConfig),
    Secret(Secret),
    ConfigMap(ConfigMap),
}

impl Object {
    pub fn kind(&self) -> &'static str {
        match self {
            Object::ImageStream(_) => "ImageStream",
            Object::BuildConfig(_) => "BuildConfig",
            Object::Secret(_) => "Secret",
            Object::ConfigMap(_) => "ConfigMap",
        }
    }
    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Object::ImageStream(o) => &o.metadata,
            Object::BuildConfig(o) => &o.metadata,
            Object::Secret(o) => &o.metadata,
            Object::ConfigMap(o) => &o.metadata,
        }
    }
    pub fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Object::ImageStream(o) => &mut o.metadata,
            Object::BuildConfig(o) => &mut o.metadata,
            Object::Secret(o) => &mut o.metadata,
            Object::ConfigMap(o) => &mut o.metadata,
        }
    }
    /// oc's `kind.group/name`, e.g. `buildconfig.build.openshift.io/app`, `secret/token`.
    pub fn qualified_name(&self) -> String {
        let n = &self.meta().name;
        match self {
            Object::ImageStream(_) => format!("imagestream.image.openshift.io/{n}"),
            Object::BuildConfig(_) => format!("buildconfig.build.openshift.io/{n}"),
            Object::Secret(_) => format!("secret/{n}"),
            Object::ConfigMap(_) => format!("configmap/{n}"),
        }
    }
}

/// What a set of files held.
#[derive(Debug, Default)]
pub struct Loaded {
    pub objects: Vec<Object>,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    /// Syntax or type error; serde_yaml's message carries the line and column.
    #[error("{origin}: invalid YAML: {message}")]
    Syntax { origin: String, message: String },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

fn invalid(origin: &str, message: impl Into<String>) -> LoadError {
    LoadError::Invalid {
        origin: origin.to_string(),
        message: message.into(),
    }
}

/// Reads a file, or every `*.yaml`, `*.yml` and `*.json` of a directory (sorted by name,
/// not recursive), like `oc apply -f`.
pub fn load_path(path: &Path) -> Result<Loaded, LoadError> {
    let io = |p: &Path, e: std::io::Error| LoadError::Io {
        path: p.to_path_buf(),
        message: e.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(|e| io(path, e))?;
    let files = if meta.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| io(path, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("yaml" | "yml" | "json")
                    )
            })
            .collect();
        v.sort();
        if v.is_empty() {
            return Err(LoadError::Io {
                path: path.into(),
                message: "no *.yaml, *.yml or *.json files".into(),
            });
        }
        v
    } else {
        vec![path.to_path_buf()]
    };
    let mut all = Loaded::default();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| io(&f, e))?;
        let l = load_str(&text, &f.display().to_string())?;
        all.objects.extend(l.objects);
        all.warnings.extend(l.warnings);
    }
    Ok(all)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
}

/// Parses every document of `text` (`origin` names it in errors), then defaults and validates.
pub fn load_str(text: &str, origin: &str) -> Result<Loaded, LoadError> {
    // Pass 1 reads each document's kind; pass 2 deserializes the same document straight into its
    // type, so type errors keep serde_yaml's line and column (a Value in between would lose them).
    let mut heads = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let v = serde_yaml::Value::deserialize(doc).map_err(|e| LoadError::Syntax {
            origin: origin.into(),
            message: e.to_string(),
        })?;
        heads.push((i, v));
    }
    let mut out = Loaded::default();
    for (doc, (i, value)) in serde_yaml::Deserializer::from_str(text).zip(heads) {
        let here = if i == 0 {
            origin.to_string()
        } else {
            format!("{origin}: document {}", i + 1)
        };
        if value.is_null() {
            continue; // an empty document (`---` at the end)
        }
        let head: Head = serde_yaml::from_value(value.clone())
            .map_err(|e| invalid(&here, format!("not a Kubernetes object: {e}")))?;
        match head.kind.as_str() {
            "List" => {
                check_api(&here, &head, &["v1"])?;
                let items = value
                    .get("items")
                    .and_then(|v| v.as_sequence())
                    .cloned()
                    .unwrap_or_default();
                for (j, item) in items.into_iter().enumerate() {
                    let at = format!("{here}: items[{j}]");
                    let h: Head = serde_yaml::from_value(item.clone())
                        .map_err(|e| invalid(&at, format!("not a Kubernetes object: {e}")))?;
                    let input = item.clone();
                    let obj = typed(&at, &h, || serde_yaml::from_value::<Typed>(item))?;
                    push(&mut out, &at, &input, obj)?;
                }
            }
            _ => {
                let obj = typed(&here, &head, || Typed::deserialize_kind(doc, &head.kind))?;
                push(&mut out, &here, &value, obj)?;
            }
        }
    }
    Ok(out)
}

/// The kinds `apply` takes, deserialized by kind.
enum Typed {
    Bc(BuildConfig),
    Is(ImageStream),
    Secret(Secret),
    ConfigMap(ConfigMap),
}

impl<'de> Deserialize<'de> for Typed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Only used for List items, which were already read as Values.
        let v = serde_yaml::Value::deserialize(d)?;
        let kind = v
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or_default()
            .to_string();
        let e = serde::de::Error::custom;
        match kind.as_str() {
            "BuildConfig" => serde_yaml::from_value(v).map(Typed::Bc).map_err(e),
            "Secret" => serde_yaml::from_value(v).map(Typed::Secret).map_err(e),
            "ConfigMap" => serde_yaml::from_value(v).map(Typed::ConfigMap).map_err(e),
            _ => serde_yaml::from_value(v).map(Typed::Is).map_err(e),
        }
    }
}

impl Typed {
    fn deserialize_kind(
        doc: serde_yaml::Deserializer<'_>,
        kind: &str,
    ) -> Result<Self, serde_yaml::Error> {
        match kind {
            "BuildConfig" => BuildConfig::deserialize(doc).map(Typed::Bc),
            "Secret" => Secret::deserialize(doc).map(Typed::Secret),
            "ConfigMap" => ConfigMap::deserialize(doc).map(Typed::ConfigMap),
            _ => ImageStream::deserialize(doc).map(Typed::Is),
        }
    }
}

const KINDS: &str = "ImageStream, BuildConfig, Secret, ConfigMap and List";

fn check_api(here: &str, head: &Head, allowed: &[&str]) -> Result<(), LoadError> {
    if allowed.contains(&head.api_version.as_str()) {
        return Ok(());
    }
    Err(invalid(
        here,
        format!(
            "apiVersion {:?} is not one ws2i reads for kind {}: use {}",
            head.api_version,
            head.kind,
            allowed
                .iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    ))
}

/// Checks kind and apiVersion, then deserializes with `de`. Also returns whether the object came
/// through an API group (not legacy `v1`).
fn typed(
    here: &str,
    head: &Head,
    de: impl FnOnce() -> Result<Typed, serde_yaml::Error>,
) -> Result<(Typed, bool), LoadError> {
    let allowed: &[&str] = match head.kind.as_str() {
        "BuildConfig" => &[BUILD_API, "v1"],
        "ImageStream" => &[IMAGE_API, "v1"],
        "Secret" | "ConfigMap" => &["v1"],
        "" => return Err(invalid(here, format!("no kind: ws2i reads {KINDS}"))),
        other => {
            return Err(invalid(
                here,
                format!("unknown kind {other:?}: ws2i reads {KINDS}"),
            ));
        }
    };
    check_api(here, head, allowed)?;
    let obj = de().map_err(|e| LoadError::Syntax {
        origin: here.into(),
        message: e.to_string(),
    })?;
    // The legacy group-less API does not default the history limits (OKD).
    Ok((obj, head.api_version != "v1"))
}

fn push(
    out: &mut Loaded,
    here: &str,
    input: &serde_yaml::Value,
    (obj, group_api): (Typed, bool),
) -> Result<(), LoadError> {
    let obj = match obj {
        Typed::Bc(bc) => Object::BuildConfig(bc),
        Typed::Is(is) => Object::ImageStream(is),
        Typed::Secret(s) => Object::Secret(s),
        Typed::ConfigMap(c) => Object::ConfigMap(c),
    };
    let unknown = unknown_fields(input, &obj);
    let (obj, warnings) = prepare(obj, group_api).map_err(|m| invalid(here, m))?;
    let who = format!("{}/{}", obj.kind(), obj.meta().name);
    out.warnings.extend(
        unknown
            .into_iter()
            .map(|f| format!("{who}: unknown field {f:?} (ignored)")),
    );
    out.warnings.extend(warnings);
    out.objects.push(obj);
    Ok(())
}

/// kubectl's field validation, as warnings: the paths of `input` that the typed object does not
/// hold (`spec.triggers[1].imageChange.fooBar`). Not reported: `status` (ws2i's own, ignored on
/// input), the standard `metadata` fields ws2i does not keep (`uid`, `managedFields`, …), the
/// fields of a trigger OKD drops (its own warning says why), and a field set to an empty value
/// (null, false, "", [], {}): ws2i omits those on output, so it cannot tell them from a known
/// field at its default.
fn unknown_fields(input: &serde_yaml::Value, obj: &Object) -> Vec<String> {
    const META: &[&str] = &[
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    ];
    let (Ok(input), Ok(typed)) = (
        serde_json::to_value(input),
        match obj {
            Object::ImageStream(o) => serde_json::to_value(o),
            Object::BuildConfig(o) => serde_json::to_value(o),
            Object::Secret(o) => serde_json::to_value(o),
            Object::ConfigMap(o) => serde_json::to_value(o),
        },
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    diff_fields(&input, &typed, "", &mut out);
    let dropped = |path: &str| {
        input["spec"]["triggers"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .any(|(i, t)| {
                let ty = t["type"].as_str().unwrap_or_default();
                let known = matches!(
                    ty,
                    "ConfigChange"
                        | "ImageChange"
                        | "imageChange"
                        | "GitHub"
                        | "github"
                        | "Generic"
                        | "generic"
                        | "GitLab"
                        | "Bitbucket"
                );
                !known && path.starts_with(&format!("spec.triggers[{i}]."))
            })
    };
    out.retain(|p| {
        let top_meta = p
            .strip_prefix("metadata.")
            .is_some_and(|f| META.contains(&f.split(['.', '[']).next().unwrap_or_default()));
        !(p == "status" || p.starts_with("status.") || top_meta || dropped(p))
    });
    out
}

fn diff_fields(input: &Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (input, typed) {
        (Value::Object(i), Value::Object(t)) => {
            for (k, v) in i {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match t.get(k) {
                    Some(tv) => diff_fields(v, tv, &p, out),
                    None if is_empty_value(v) => {}
                    None => out.push(p),
                }
            }
        }
        (Value::Array(i), Value::Array(t)) => {
            for (n, (iv, tv)) in i.iter().zip(t).enumerate() {
                diff_fields(iv, tv, &format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(_) => false,
    }
}

/// OKD's defaulting, trigger dropping and validation. `group_api`: the object came through
/// `build.openshift.io/v1` (which defaults the history limits to 5/5), not legacy `v1`.
/// Returns the object and the warnings, or the first validation error.
pub fn prepare(obj: Object, group_api: bool) -> Result<(Object, Vec<String>), String> {
    match obj {
        Object::ImageStream(mut is) => {
            is.status = ImageStreamStatus::default();
            is.metadata.generation = None;
            validate_name("metadata.name", &is.metadata.name)?;
            for (i, t) in is.spec.tags.iter().enumerate() {
                validate_tag_name(&format!("spec.tags[{i}].name"), &t.name)?;
                if let Some(f) = &t.from {
                    let field = format!("spec.tags[{i}].from");
                    match f.kind {
                        RefKind::ImageStreamTag if !f.name.contains(':') => {} // a tag of this stream
                        RefKind::ImageStreamTag => check_istag(&field, &f.name)?,
                        RefKind::ImageStreamImage => check_isimage(&field, &f.name)?,
                        RefKind::DockerImage => check_nonempty(&field, &f.name)?,
                    }
                }
            }
            Ok((Object::ImageStream(is), Vec::new()))
        }
        Object::BuildConfig(mut bc) => {
            let mut warnings = Vec::new();
            default_bc(&mut bc, group_api, &mut warnings);
            validate_bc(&bc)?;
            if bc.spec.common.source.source_secret.is_some() {
                warnings.push(format!(
                    "buildconfig/{}: spec.source.sourceSecret is not used: ws2i clones with the host's git credentials (ssh agent, git credential helpers)",
                    bc.metadata.name
                ));
            }
            Ok((Object::BuildConfig(bc), warnings))
        }
        Object::Secret(mut s) => {
            s.metadata.generation = None;
            validate_name("metadata.name", &s.metadata.name)?;
            for (k, v) in &s.data {
                validate_key("data", k)?;
                base64_decode(v).map_err(|e| format!("data[{k:?}]: not base64: {e}"))?;
            }
            // The API server's rule: stringData is merged into data, stringData winning.
            for (k, v) in std::mem::take(&mut s.string_data) {
                validate_key("stringData", &k)?;
                s.data.insert(k, base64_encode(v.as_bytes()));
            }
            Ok((Object::Secret(s), Vec::new()))
        }
        Object::ConfigMap(mut c) => {
            c.metadata.generation = None;
            validate_name("metadata.name", &c.metadata.name)?;
            for k in c.data.keys() {
                validate_key("data", k)?;
            }
            for (k, v) in &c.binary_data {
                validate_key("binaryData", k)?;
                if c.data.contains_key(k) {
                    return Err(format!("binaryData[{k:?}]: the key is in data too"));
                }
                base64_decode(v).map_err(|e| format!("binaryData[{k:?}]: not base64: {e}"))?;
            }
            Ok((Object::ConfigMap(c), Vec::new()))
        }
    }
}

/// A Secret or ConfigMap key becomes a file name: Kubernetes' `[-._a-zA-Z0-9]+`, not `.`/`..`.
fn validate_key(field: &str, k: &str) -> Result<(), String> {
    let ok = !k.is_empty()
        && k.len() <= 253
        && k != "."
        && k != ".."
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{field}: key {k:?} must be letters, digits, '-', '_' or '.' (it becomes a file name)"
        ))
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (what Kubernetes writes in `data`).
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64; padding optional, whitespace (line breaks of wrapped values) ignored.
pub fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    let mut padding = false;
    for (i, ch) in text.bytes().enumerate() {
        if ch.is_ascii_whitespace() {
            continue;
        }
        if ch == b'=' {
            padding = true;
            continue;
        }
        if padding {
            return Err(format!("data after '=' padding at byte {i}"));
        }
        let v = B64
            .iter()
            .position(|&b| b == ch)
            .ok_or_else(|| format!("invalid character {:?} at byte {i}", ch as char))?;
        acc = acc << 6 | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 6 {
        return Err("truncated input".into());
    }
    Ok(out)
}

fn default_bc(bc: &mut BuildConfig, group_api: bool, warnings: &mut Vec<String>) {
    bc.metadata.generation = None;
    bc.status = BuildConfigStatus::default();
    let spec = &mut bc.spec;
    let st = &mut spec.common.strategy;
    match st.strategy_type.as_deref() {
        Some("Docker") if st.docker_strategy.is_none() => {
            st.docker_strategy = Some(Default::default())
        }
        Some("Source") if st.source_strategy.is_none() => {
            st.source_strategy = Some(Default::default())
        }
        _ => {}
    }
    let src = &mut spec.common.source;
    if src.source_type.as_deref() == Some("Binary") && src.binary.is_none() {
        src.binary = Some(Default::default());
    }
    if group_api {
        spec.successful_builds_history_limit.get_or_insert(5);
        spec.failed_builds_history_limit.get_or_insert(5);
    }
    let name = bc.metadata.name.clone();
    let strategy_from_is_istag = spec
        .common
        .strategy_from()
        .is_some_and(|f| f.kind == RefKind::ImageStreamTag);
    let image_source = spec
        .common
        .source
        .images
        .first()
        .map(|i| i.from.name.clone());
    let mut kept = Vec::new();
    for (i, mut t) in std::mem::take(&mut spec.triggers).into_iter().enumerate() {
        t.trigger_type = match t.trigger_type.as_str() {
            "github" => "GitHub".into(),
            "generic" => "Generic".into(),
            "imageChange" => "ImageChange".into(),
            other => other.into(),
        };
        if t.kind().is_none() {
            warnings.push(dropped_trigger_warning(
                &name,
                i,
                &t,
                strategy_from_is_istag,
                image_source.as_deref(),
            ));
            continue;
        }
        if t.kind() == Some(TriggerKind::ImageChange) && t.image_change.is_none() {
            t.image_change = Some(Default::default());
        }
        kept.push(t);
    }
    spec.triggers = kept;
    derive_types(&mut spec.common);
}

/// Says what OKD does with the trigger (drops it) and what would have been meant.
fn dropped_trigger_warning(
    bc: &str,
    i: usize,
    t: &BuildTriggerPolicy,
    strategy_from_is_istag: bool,
    image_source: Option<&str>,
) -> String {
    let found = t
        .image_change
        .as_ref()
        .and_then(|ic| ic.extra.get("type"))
        .and_then(|v| v.as_str().map(str::to_string));
    let what = match (t.trigger_type.as_str(), &found) {
        ("", Some(f)) => format!("has no type (found imageChange.type: {f})"),
        ("", None) => "has no type".to_string(),
        (other, _) => format!("has unknown type {other:?}"),
    };
    let fix = if found.as_deref() == Some("ImageChange") || t.image_change.is_some() {
        if strategy_from_is_istag {
            "Did you mean \"- type: ImageChange\\n  imageChange: {}\"?".to_string()
        } else {
            let from = image_source.unwrap_or("STREAM:TAG");
            format!(
                "Did you mean \"- type: ImageChange\\n  imageChange: {{from: {{kind: ImageStreamTag, name: {from}}}}}\"? \
                 (this strategy has no ImageStreamTag from, so the trigger needs an explicit imageChange.from)"
            )
        }
    } else {
        "Valid types: ConfigChange, ImageChange, GitHub, Generic, GitLab, Bitbucket.".to_string()
    };
    format!("buildconfig/{bc}: spec.triggers[{i}] {what}; dropped, as OKD silently drops it. {fix}")
}

/// `type` fields as OKD's server writes them on read.
pub fn derive_types(c: &mut CommonSpec) {
    c.strategy.strategy_type = Some(c.type_name().to_string());
    let s = &mut c.source;
    s.source_type = Some(
        if s.binary.is_some() {
            "Binary"
        } else if s.git.is_some() {
            "Git"
        } else if s.dockerfile.is_some() {
            "Dockerfile"
        } else if !s.images.is_empty() {
            "Image"
        } else {
            "None"
        }
        .to_string(),
    );
}

fn check_nonempty(field: &str, v: &str) -> Result<(), String> {
    if v.trim().is_empty() {
        return Err(format!("{field}.name is required"));
    }
    Ok(())
}

fn check_istag(field: &str, name: &str) -> Result<(), String> {
    match split_istag(name) {
        Some((s, t)) => {
            validate_name(&format!("{field}.name"), s)?;
            validate_tag_name(&format!("{field}.name"), t)
        }
        None => Err(format!(
            "{field}.name {name:?} must be STREAM:TAG (kind ImageStreamTag)"
        )),
    }
}

fn check_isimage(field: &str, name: &str) -> Result<(), String> {
    match split_isimage(name) {
        Some((s, id)) if id.starts_with("sha256:") => validate_name(&format!("{field}.name"), s),
        _ => Err(format!(
            "{field}.name {name:?} must be STREAM@sha256:ID (kind ImageStreamImage)"
        )),
    }
}

fn check_ref(field: &str, r: &ObjectReference) -> Result<(), String> {
    match r.kind {
        RefKind::ImageStreamTag => check_istag(field, &r.name),
        RefKind::ImageStreamImage => check_isimage(field, &r.name),
        RefKind::DockerImage => check_nonempty(field, &r.name),
    }
}

/// Names become file names and store repositories: lowercase DNS-1123 subdomains (OKD's rule).
pub fn validate_name(field: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(format!("{field} {name:?} must be lowercase letters, digits, '-' or '.', starting and ending with a letter or digit"))
    }
}

/// `^[\w][\w.-]{0,127}$` (oc tag).
pub fn validate_tag_name(field: &str, tag: &str) -> Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && word(tag.as_bytes()[0])
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{field}: tag {tag:?} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"
        ))
    }
}

fn validate_bc(bc: &BuildConfig) -> Result<(), String> {
    validate_name("metadata.name", &bc.metadata.name)?;
    let c = &bc.spec.common;
    if c.strategy.custom_strategy.is_some() || c.strategy.jenkins_pipeline_strategy.is_some() {
        return Err("spec.strategy: ws2i runs sourceStrategy and dockerStrategy only (custom and Jenkins pipeline strategies run native code)".into());
    }
    let kind = c.strategy_kind().ok_or_else(|| {
        "spec.strategy: exactly one of sourceStrategy or dockerStrategy is required".to_string()
    })?;
    let s = &c.source;
    match kind {
        StrategyKind::Source(ss) => {
            if ss.from.name.is_empty() {
                return Err("spec.strategy.sourceStrategy.from.name is required".into());
            }
            check_ref("spec.strategy.sourceStrategy.from", &ss.from)?;
            if s.git.is_none() && s.binary.is_none() {
                return Err(
                    "spec.source: a Source strategy needs source.git or source.binary".into(),
                );
            }
        }
        StrategyKind::Docker(ds) => {
            if let Some(f) = &ds.from {
                check_ref("spec.strategy.dockerStrategy.from", f)?;
            }
            if s.git.is_none()
                && s.binary.is_none()
                && s.dockerfile.is_none()
                && s.images.is_empty()
            {
                return Err("spec.source: a Docker strategy needs at least one of git, binary, dockerfile or images".into());
            }
            if let Some(p) = &ds.dockerfile_path {
                check_relative("spec.strategy.dockerStrategy.dockerfilePath", p)?;
            }
        }
    }
    if let Some(g) = &s.git {
        if g.uri.trim().is_empty() {
            return Err("spec.source.git.uri is required".into());
        }
    }
    if let Some(d) = &s.context_dir {
        check_relative("spec.source.contextDir", d)?;
    }
    if let Some(df) = &s.dockerfile {
        if df.len() > 60_000 {
            return Err(format!(
                "spec.source.dockerfile is {} bytes, over OKD's limit of 60000",
                df.len()
            ));
        }
        check_containerfile("spec.source.dockerfile", df)?;
    }
    for (i, img) in s.images.iter().enumerate() {
        check_ref(&format!("spec.source.images[{i}].from"), &img.from)?;
        for (j, n) in img.as_names.iter().enumerate() {
            check_nonempty(&format!("spec.source.images[{i}].as[{j}]"), n)?;
        }
        for (j, p) in img.paths.iter().enumerate() {
            let f = format!("spec.source.images[{i}].paths[{j}]");
            if !p.source_path.starts_with('/') {
                return Err(format!(
                    "{f}.sourcePath {:?} must be an absolute path in the image",
                    p.source_path
                ));
            }
            check_relative(&format!("{f}.destinationDir"), &p.destination_dir)?;
        }
    }
    for (i, sec) in s.secrets.iter().enumerate() {
        let f = format!("spec.source.secrets[{i}]");
        validate_name(&format!("{f}.secret.name"), &sec.secret.name)?;
        check_relative(&format!("{f}.destinationDir"), &sec.destination_dir)?;
    }
    for (i, cm) in s.config_maps.iter().enumerate() {
        let f = format!("spec.source.configMaps[{i}]");
        validate_name(&format!("{f}.configMap.name"), &cm.config_map.name)?;
        check_relative(&format!("{f}.destinationDir"), &cm.destination_dir)?;
    }
    if c.post_commit.is_some() {
        return Err("spec.postCommit: ws2i cannot run a post-commit hook (it runs a command in the output image)".into());
    }
    if let Some(to) = &c.output.to {
        match to.kind {
            RefKind::ImageStreamTag => check_istag("spec.output.to", &to.name)?,
            RefKind::DockerImage => {
                to.name
                    .parse::<crate::image::NameTag>()
                    .map_err(|e| format!("spec.output.to.name: a DockerImage output is a local store NAME:TAG here: {e}"))?;
            }
            RefKind::ImageStreamImage => {
                return Err("spec.output.to.kind must be ImageStreamTag or DockerImage".into())
            }
        }
    }
    if let Some(d) = c.completion_deadline_seconds {
        if d <= 0 {
            return Err("spec.completionDeadlineSeconds must be greater than 0".into());
        }
    }
    for (f, v) in [
        (
            "spec.successfulBuildsHistoryLimit",
            bc.spec.successful_builds_history_limit,
        ),
        (
            "spec.failedBuildsHistoryLimit",
            bc.spec.failed_builds_history_limit,
        ),
    ] {
        if v.is_some_and(|v| v < 0) {
            return Err(format!("{f} must be 0 or more"));
        }
    }
    let mut watched = Vec::new();
    for (i, t) in bc.spec.triggers.iter().enumerate() {
        let f = format!("spec.triggers[{i}]");
        match t.kind() {
            Some(TriggerKind::ImageChange) => {
                let ic = t.image_change.as_ref().expect("defaulted");
                let target = match &ic.from {
                    None => match c.strategy_from() {
                        Some(sf) if sf.kind == RefKind::ImageStreamTag => sf.name.clone(),
                        _ => {
                            return Err(format!(
                                "{f}.imageChange: a default ImageChange trigger can only be used when the build strategy includes an ImageStreamTag reference; give imageChange.from"
                            ))
                        }
                    },
                    Some(from) => {
                        if from.kind != RefKind::ImageStreamTag {
                            return Err(format!("{f}.imageChange.from.kind must be ImageStreamTag"));
                        }
                        check_istag(&format!("{f}.imageChange.from"), &from.name)?;
                        from.name.clone()
                    }
                };
                if watched.contains(&target) {
                    return Err(format!("{f}: a second ImageChange trigger on {target}"));
                }
                watched.push(target);
            }
            Some(TriggerKind::ConfigChange) => {
                if t.image_change.is_some() || t.github.is_some() || t.generic.is_some() {
                    return Err(format!("{f}: ConfigChange takes no parameters"));
                }
            }
            Some(TriggerKind::WebHook) => {}
            None => unreachable!("dropped by default_bc"),
        }
    }
    Ok(())
}

fn check_relative(field: &str, p: &str) -> Result<(), String> {
    let path = Path::new(p);
    if path.is_absolute()
        || path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(format!(
            "{field} {p:?} must be a relative path without '..'"
        ));
    }
    Ok(())
}

/// An inline Dockerfile is checked at apply time: a syntax error or a native `RUN` is refused
/// before anything is stored, naming the line.
fn check_containerfile(field: &str, text: &str) -> Result<(), String> {
    let cf = Containerfile::parse(text).map_err(|e| format!("{field}: {e}"))?;
    for ins in &cf.instructions {
        if ins.keyword == Keyword::Run && matches!(ins.args, Args::Shell(_)) {
            return Err(format!(
                "{field}: Containerfile line {}: shell-form RUN is refused: ws2i runs no native programs \
                 (use the exec form with a WASI module, or COPY --chmod for files)",
                ins.line
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_BC: &str = "apiVersion: build.openshift.io/v1
kind: BuildConfig
metadata:
  labels:
    build: golang-builder
  name: golang-builder
spec:
  source:
    type: Git
    git:
      ref: master
      uri: https://example.invalid/golang-s2i.git
  strategy:
    type: Docker
    dockerStrategy:
  output:
    to:
      kind: ImageStreamTag
      name: golang-builder:1.12
  triggers:
  - type: ConfigChange
  - imageChange:
      type: ImageChange
";

    fn bc(l: &Loaded, i: usize) -> &BuildConfig {
        match &l.objects[i] {
            Object::BuildConfig(b) => b,
            o => panic!("not a bc: {o:?}"),
        }
    }

    #[test]
    fn seed_trigger_is_dropped_with_a_warning_naming_the_fix() {
        let l = load_str(SEED_BC, "seed.yaml").unwrap();
        let b = bc(&l, 0);
        assert_eq!(b.spec.triggers.len(), 1);
        assert_eq!(b.spec.triggers[0].kind(), Some(TriggerKind::ConfigChange));
        assert!(
            b.spec.common.strategy.docker_strategy.is_some(),
            "type Docker defaults dockerStrategy"
        );
        assert_eq!(b.spec.successful_builds_history_limit, Some(5));
        assert_eq!(b.spec.failed_builds_history_limit, Some(5));
        assert_eq!(b.spec.run_policy, RunPolicy::Serial);
        assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
        let w = &l.warnings[0];
        assert!(
            w.contains("spec.triggers[1] has no type (found imageChange.type: ImageChange)"),
            "{w}"
        );
        assert!(
            w.contains("imageChange.from"),
            "no ISTag strategy from, so explicit from is the fix: {w}"
        );
    }

    #[test]
    fn multi_document_list_and_legacy_v1() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: image.openshift.io/v1\n  kind: ImageStream\n  metadata: {name: a}\n- apiVersion: v1\n  kind: ImageStream\n  metadata: {name: b}\n---\n{\"apiVersion\": \"v1\", \"kind\": \"BuildConfig\", \"metadata\": {\"name\": \"c\"}, \"spec\": {\"source\": {\"dockerfile\": \"FROM scratch\"}, \"strategy\": {\"dockerStrategy\": {}}}}\n---\n";
        let l = load_str(text, "t.yaml").unwrap();
        let names: Vec<_> = l.objects.iter().map(|o| o.qualified_name()).collect();
        assert_eq!(
            names,
            [
                "imagestream.image.openshift.io/a",
                "imagestream.image.openshift.io/b",
                "buildconfig.build.openshift.io/c"
            ]
        );
        assert_eq!(
            bc(&l, 2).spec.successful_builds_history_limit,
            None,
            "legacy v1 does not default limits"
        );
        assert_eq!(
            bc(&l, 2).spec.common.source.source_type.as_deref(),
            Some("Dockerfile")
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let e = load_str(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n",
            "d.yaml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown kind \"Deployment\""), "{e}");
        let e = load_str(
            "kind: ImageStream\nmetadata:\n  name: [unclosed\n",
            "y.yaml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("line 3 column"), "{e}");
        let e = load_str("apiVersion: v1\nkind: BuildConfig\nmetadata: {name: x}\nspec:\n  runPolicy: Sometimes\n  strategy: {dockerStrategy: {}}\n  source: {dockerfile: FROM scratch}\n", "p.yaml").unwrap_err();
        let s = e.to_string();
        assert!(s.contains("Sometimes") && s.contains("line 5"), "{s}");
        let e = load_str(
            "apiVersion: v1\nkind: BuildConfig\nmetadata: {name: x}\nspec:\n  strategy: {dockerStrategy: {}}\n  source:\n    dockerfile: |\n      FROM scratch\n      RUN mkdir /x\n",
            "r.yaml",
        )
        .unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("spec.source.dockerfile: Containerfile line 2: shell-form RUN"),
            "{s}"
        );
        let e = load_str(
            "apiVersion: v1\nkind: BuildConfig\nmetadata: {name: x}\nspec:\n  strategy: {dockerStrategy: {}}\n  source: {dockerfile: FROM scratch}\n  triggers: [{type: ImageChange}]\n",
            "t.yaml",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("default ImageChange trigger can only be used"),
            "{e}"
        );
    }

    #[test]
    fn unknown_fields_are_named_by_path_and_known_or_empty_ones_are_not() {
        let text = "apiVersion: build.openshift.io/v1\nkind: BuildConfig\nmetadata: {name: app, uid: u1}\n\
                    spec:\n  source: {git: {uri: 'file:///r'}}\n  strategy:\n    sourceStrategy:\n      \
                    from: {kind: DockerImage, name: b}\n      fooBar: 1\n      forcePull: false\n      env: [{name: A, value: b, valueFrom: {x: 1}}]\n  \
                    triggers: [{type: ConfigChange}, {imageChange: {type: ImageChange}}]\nstatus: {lastVersion: 3}\n";
        let l = load_str(text, "u.yaml").unwrap();
        let unknown: Vec<&String> = l
            .warnings
            .iter()
            .filter(|w| w.contains("unknown field"))
            .collect();
        assert_eq!(
            unknown,
            [
                "BuildConfig/app: unknown field \"spec.strategy.sourceStrategy.env[0].valueFrom\" (ignored)",
                "BuildConfig/app: unknown field \"spec.strategy.sourceStrategy.fooBar\" (ignored)",
            ],
            "{:?}",
            l.warnings
        );
        assert_eq!(
            l.warnings.len(),
            3,
            "plus the dropped trigger: {:?}",
            l.warnings
        );
        let l = load_str(SEED_BC, "seed.yaml").unwrap();
        assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    }

    #[test]
    fn secrets_merge_string_data_and_base64_round_trips() {
        for s in ["", "a", "ab", "abc", "s3cret-value", "\u{0}\u{1}\u{ff}"] {
            assert_eq!(
                base64_decode(&base64_encode(s.as_bytes())).unwrap(),
                s.as_bytes(),
                "{s:?}"
            );
        }
        assert_eq!(base64_encode(b"s3cret-value"), "czNjcmV0LXZhbHVl");
        assert!(base64_decode("a*b=").is_err());
        let l = load_str(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: t}\ndata: {a: YQ==, b: Yg==}\nstringData: {b: bee}\n",
            "s.yaml",
        )
        .unwrap();
        let Object::Secret(s) = &l.objects[0] else {
            panic!()
        };
        assert!(s.string_data.is_empty());
        assert_eq!(
            base64_decode(&s.data["b"]).unwrap(),
            b"bee",
            "stringData wins"
        );
        assert_eq!(s.redacted().data["a"], "<redacted: 1 bytes>");
        let e = load_str(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {'../x': y}\n",
            "c.yaml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("key \"../x\""), "{e}");
        let e = load_str(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: t}\ndata: {a: 'no!'}\n",
            "s.yaml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("data[\"a\"]: not base64"), "{e}");
    }
}
