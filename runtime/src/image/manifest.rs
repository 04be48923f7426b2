//! OCI / Docker v2 schema 2 manifests, indexes and image configs.
//!
//! Manifests and configs keep unknown fields (`extra`) so a round trip never
//! drops data; config blobs are copied byte-for-byte and only re-serialised
//! when [`ImageBuilder`] changes them.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Digest;

pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
}

pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
/// Tells crun's wasm handler (and CRI-O/podman that pass it on) to run the entrypoint as
/// WebAssembly when it is a `.wasm` module ("compat-smart"; "compat" would force it).
/// Read from the container's annotations, which come from the image manifest's annotations
/// (buildah `--annotation`) or are set on the pod; ws2i also writes it as a config label.
pub const ANNOTATION_WASM_VARIANT: &str = "module.wasm.image/variant";
pub const WASM_VARIANT_COMPAT_SMART: &str = "compat-smart";

/// The platform of an image whose entrypoint is WebAssembly, as runwasi and crun expect it:
/// architecture `wasm`, os `wasip1` for a core module, `wasip2` for a component.
pub fn wasm_platform(kind: crate::sandbox::WasmKind) -> Platform {
    let os = match kind {
        crate::sandbox::WasmKind::Core => "wasip1",
        crate::sandbox::WasmKind::Component => "wasip2",
    };
    Platform { architecture: "wasm".into(), os: os.into(), variant: None, extra: Map::new() }
}

/// Whether an image platform is a WebAssembly one (any WASI flavour, `wasm`/`wasm32`).
pub fn is_wasm_platform(p: &Platform) -> bool {
    matches!(p.architecture.as_str(), "wasm" | "wasm32") || p.os.starts_with("wasi")
}

/// What the file at guest path `path` inside `rootfs` is, if it is WebAssembly. Opened through
/// cap-std, so a symlink in an untrusted tree cannot make ws2i read outside it.
pub fn entry_kind(rootfs: &std::path::Path, path: &str) -> Option<crate::sandbox::WasmKind> {
    use std::io::Read;
    let dir = cap_std::fs::Dir::open_ambient_dir(rootfs, cap_std::ambient_authority()).ok()?;
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        return None;
    }
    let mut head = [0u8; 8];
    let mut f = dir.open(rel).ok()?;
    f.read_exact(&mut head).ok()?;
    crate::sandbox::detect(&head).ok()
}

/// The manifest flavour written to a destination (`--format oci|docker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum ManifestFormat {
    #[default]
    Oci,
    Docker,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Platform {
    /// Parses `os/arch[/variant]` as given to `--platform`.
    pub fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] | [os, arch, _]
                if !os.is_empty() && !arch.is_empty() && parts.get(2).is_none_or(|v| !v.is_empty()) =>
            {
                Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: parts.get(2).map(|v| v.to_string()),
                extra: Map::new(),
                })
            }
            _ => bail!("malformed platform {s:?}: expected OS/ARCH[/VARIANT], e.g. linux/amd64 or wasip2/wasm"),
        }
    }

    pub fn host_default() -> Self {
        Platform::parse("linux/amd64").expect("constant")
    }

    /// The platform of the machine ws2i runs on, in OCI's (GOARCH) names.
    pub fn native() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "riscv64" => "riscv64",
            "s390x" => "s390x",
            other => other,
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: arch.to_string(),
            variant: None,
            extra: Map::new(),
        }
    }

    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || other.variant.is_none() || self.variant == other.variant)
    }
}

/// `os/arch[/variant]`, as `--platform` takes it.
impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
            extra: Map::new(),
        }
    }
}

/// An OCI image manifest or a Docker v2 schema 2 manifest: same shape, different media types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An OCI image index or a Docker manifest list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Index {
    pub fn empty() -> Self {
        Index {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.to_string()),
            manifests: Vec::new(),
            annotations: BTreeMap::new(),
            extra: Map::new(),
        }
    }

    /// The manifest for `want`; failing an exact match, an index whose platforms are all
    /// WebAssembly gives its first entry, since ws2i runs wasm on any host.
    pub fn select(&self, want: &Platform) -> Result<&Descriptor> {
        let platforms = || self.manifests.iter().filter_map(|d| d.platform.as_ref());
        let only_wasm = platforms().next().is_some() && platforms().all(is_wasm_platform);
        self.manifests
            .iter()
            .find(|d| d.platform.as_ref().is_some_and(|p| want.matches(p)))
            .or_else(|| {
                only_wasm
                    .then(|| self.manifests.iter().find(|d| d.platform.as_ref().is_some_and(is_wasm_platform)))
                    .flatten()
            })
            .with_context(|| {
                let have: Vec<String> = self
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref().map(ToString::to_string))
                    .collect();
                format!("no manifest for platform {want} in the image index (available: {})", have.join(", "))
            })
    }
}

pub fn is_index(media_type: &str) -> bool {
    media_type == media::OCI_INDEX || media_type == media::DOCKER_LIST
}

pub fn is_manifest(media_type: &str) -> bool {
    media_type == media::OCI_MANIFEST || media_type == media::DOCKER_MANIFEST
}

/// Works out a manifest's media type when a transport did not say (e.g. an OCI
/// manifest may omit `mediaType`).
pub fn sniff_media_type(bytes: &[u8]) -> Result<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        manifests: Option<Value>,
    }
    let p: Probe = serde_json::from_slice(bytes).context("manifest is not JSON")?;
    Ok(match (p.media_type, p.manifests) {
        (Some(m), _) => m,
        (None, Some(_)) => media::OCI_INDEX.to_string(),
        (None, None) => media::OCI_MANIFEST.to_string(),
    })
}

impl Manifest {
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let m: Manifest = serde_json::from_slice(bytes).context("malformed image manifest")?;
        if m.schema_version != 2 {
            bail!(
                "unsupported manifest schemaVersion {} (only 2)",
                m.schema_version
            );
        }
        Ok(m)
    }

    pub fn format(&self) -> ManifestFormat {
        match self.media_type.as_deref() {
            Some(media::DOCKER_MANIFEST) => ManifestFormat::Docker,
            _ => ManifestFormat::Oci,
        }
    }

    /// Rewrites media types for `format`. Blobs are unchanged (gzip tar is the
    /// same bytes in both worlds), so only the manifest digest changes.
    pub fn convert(&self, format: ManifestFormat) -> Result<Manifest> {
        let mut m = self.clone();
        let map = |mt: &str| -> Result<String> {
            use media::*;
            Ok(match (format, mt) {
                (ManifestFormat::Oci, DOCKER_CONFIG) => OCI_CONFIG,
                (ManifestFormat::Oci, DOCKER_LAYER_GZIP) => OCI_LAYER_GZIP,
                (ManifestFormat::Oci, DOCKER_LAYER_TAR) => OCI_LAYER_TAR,
                (ManifestFormat::Docker, OCI_CONFIG) => DOCKER_CONFIG,
                (ManifestFormat::Docker, OCI_LAYER_GZIP) => DOCKER_LAYER_GZIP,
                (ManifestFormat::Docker, OCI_LAYER_TAR) => DOCKER_LAYER_TAR,
                (ManifestFormat::Docker, OCI_LAYER_ZSTD) => {
                    bail!("zstd layers cannot be expressed in Docker v2 schema 2; use --format oci")
                }
                (_, other) => return Ok(other.to_string()),
            }
            .to_string())
        };
        m.media_type = Some(
            match format {
                ManifestFormat::Oci => media::OCI_MANIFEST,
                ManifestFormat::Docker => media::DOCKER_MANIFEST,
            }
            .to_string(),
        );
        m.config.media_type = map(&m.config.media_type)?;
        for l in &mut m.layers {
            l.media_type = map(&l.media_type)?;
        }
        if format == ManifestFormat::Docker {
            // Docker v2s2 has no manifest annotations.
            m.annotations.clear();
        }
        Ok(m)
    }

    pub fn media_type_or_default(&self) -> &str {
        self.media_type.as_deref().unwrap_or(media::OCI_MANIFEST)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("manifest serialises")
    }
}

/// The parts of an image config ws2i reads; everything else is kept in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".into(),
            diff_ids: Vec::new(),
        }
    }
}

impl ImageConfig {
    /// `Env` as (name, value) pairs, in order; entries without `=` are skipped.
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        let env = self.config.as_ref().and_then(|c| c.env.as_deref()).unwrap_or_default();
        env.iter().filter_map(|e| e.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    pub fn parse(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).context("malformed image config")
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        self.config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default()
    }
}

/// RFC 3339 time for `created`: `SOURCE_DATE_EPOCH` when set (reproducible
/// builds), else now.
pub fn created_timestamp() -> Result<String> {
    let secs = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v
            .trim()
            .parse::<i64>()
            .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not an integer"))?,
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    };
    Ok(rfc3339(secs))
}

/// `secs` since the epoch as RFC 3339 UTC (`1970-01-01T00:00:00Z`).
pub fn rfc3339(secs: i64) -> String {
    // Civil-from-days (Howard Hinnant), avoids a date crate for one format.
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A layer appended by [`ImageBuilder`].
#[derive(Debug, Clone)]
pub struct NewLayer {
    pub diff_id: Digest,
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub created_by: String,
}

/// Builds a new image from a base (or from scratch): the base config is edited
/// as JSON so fields ws2i does not know survive.
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    config: Value,
    layers: Vec<Descriptor>,
    annotations: BTreeMap<String, String>,
    /// Fixed `created` time (reproducible builds); `None` = [`created_timestamp`].
    created: Option<String>,
}

impl ImageBuilder {
    /// Stamps config and history with this time instead of reading the environment.
    pub fn created_at(&mut self, epoch_secs: i64) -> &mut Self {
        self.created = Some(rfc3339(epoch_secs));
        self
    }

    fn created(&self) -> Result<String> {
        match &self.created {
            Some(c) => Ok(c.clone()),
            None => created_timestamp(),
        }
    }

    pub fn scratch(platform: &Platform) -> Self {
        let config = serde_json::json!({
            "architecture": platform.architecture,
            "os": platform.os,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [],
        });
        ImageBuilder {
            config,
            layers: Vec::new(),
            annotations: BTreeMap::new(),
            created: None,
        }
    }

    pub fn from_base(manifest: &Manifest, config_bytes: &[u8]) -> Result<Self> {
        let config: Value =
            serde_json::from_slice(config_bytes).context("malformed base image config")?;
        if !config.is_object() {
            bail!("base image config is not a JSON object");
        }
        let layers = manifest.convert(ManifestFormat::Oci)?.layers;
        Ok(ImageBuilder {
            config,
            layers,
            annotations: BTreeMap::new(),
            created: None,
        })
    }

    fn container_config(&mut self) -> &mut Map<String, Value> {
        let obj = self.config.as_object_mut().expect("checked object");
        let c = obj
            .entry("config")
            .or_insert_with(|| Value::Object(Map::new()));
        if !c.is_object() {
            *c = Value::Object(Map::new());
        }
        c.as_object_mut().expect("just made object")
    }

    pub fn add_layer(&mut self, layer: NewLayer) -> Result<&mut Self> {
        let created = self.created()?;
        let obj = self.config.as_object_mut().expect("checked object");
        let rootfs = obj
            .entry("rootfs")
            .or_insert_with(|| serde_json::json!({"type": "layers", "diff_ids": []}));
        let ids = rootfs
            .get_mut("diff_ids")
            .and_then(Value::as_array_mut)
            .context("base config has no rootfs.diff_ids array")?;
        ids.push(Value::String(layer.diff_id.to_string()));
        let history = obj
            .entry("history")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(h) = history.as_array_mut() {
            h.push(serde_json::json!({"created": created, "created_by": layer.created_by}));
        }
        self.layers
            .push(Descriptor::new(&layer.media_type, layer.digest, layer.size));
        Ok(self)
    }

    pub fn set(&mut self, key: &str, value: Value) -> &mut Self {
        self.container_config().insert(key.to_string(), value);
        self
    }

    pub fn label(&mut self, key: &str, value: &str) -> &mut Self {
        let c = self.container_config();
        let labels = c
            .entry("Labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if !labels.is_object() {
            *labels = Value::Object(Map::new());
        }
        labels
            .as_object_mut()
            .expect("object")
            .insert(key.into(), Value::String(value.into()));
        self
    }

    pub fn env(&mut self, key: &str, value: &str) -> &mut Self {
        let c = self.container_config();
        let env = c.entry("Env").or_insert_with(|| Value::Array(Vec::new()));
        if let Some(a) = env.as_array_mut() {
            let prefix = format!("{key}=");
            a.retain(|e| !e.as_str().is_some_and(|s| s.starts_with(&prefix)));
            a.push(Value::String(format!("{key}={value}")));
        }
        self
    }

    /// Make `path` the image's command. A WebAssembly module (`kind`) becomes what runwasi's
    /// wasmtime shim and crun's wasm handler need: the wasm platform, `Entrypoint` = [path] with
    /// no `Cmd`, and the `compat-smart` variant as manifest annotation and config label.
    /// Anything else stays `Cmd` = [path] on the base's platform.
    pub fn command(&mut self, path: &str, kind: Option<crate::sandbox::WasmKind>) -> &mut Self {
        let Some(kind) = kind else {
            return self.set("Cmd", serde_json::json!([path]));
        };
        let p = wasm_platform(kind);
        let obj = self.config.as_object_mut().expect("checked object");
        obj.insert("architecture".into(), Value::String(p.architecture));
        obj.insert("os".into(), Value::String(p.os));
        for stale in ["variant", "os.version", "os.features"] {
            obj.remove(stale);
        }
        self.container_config().remove("Cmd");
        self.set("Entrypoint", serde_json::json!([path]));
        self.label(ANNOTATION_WASM_VARIANT, WASM_VARIANT_COMPAT_SMART);
        self.annotation(ANNOTATION_WASM_VARIANT, WASM_VARIANT_COMPAT_SMART)
    }

    /// The config's `os`, `architecture` and `variant` (a multi-platform build's target).
    pub fn platform(&mut self, p: &Platform) -> &mut Self {
        let obj = self.config.as_object_mut().expect("checked object");
        obj.insert("architecture".into(), Value::String(p.architecture.clone()));
        obj.insert("os".into(), Value::String(p.os.clone()));
        match &p.variant {
            Some(v) => obj.insert("variant".into(), Value::String(v.clone())),
            None => obj.remove("variant"),
        };
        self
    }

    pub fn annotation(&mut self, key: &str, value: &str) -> &mut Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// Serialises config and manifest (OCI); returns `(config_bytes, manifest)`.
    pub fn finish(mut self) -> Result<(Vec<u8>, Manifest)> {
        let created = self.created()?;
        self.config
            .as_object_mut()
            .expect("object")
            .insert("created".into(), Value::String(created));
        let config_bytes = serde_json::to_vec(&self.config)?;
        ImageConfig::parse(&config_bytes)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            config: Descriptor::new(
                media::OCI_CONFIG,
                Digest::of(&config_bytes),
                config_bytes.len() as u64,
            ),
            layers: self.layers,
            annotations: self.annotations,
            extra: Map::new(),
        };
        Ok((config_bytes, manifest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn manifest_round_trip_keeps_unknown_fields_and_converts() {
        let d = Digest::of(b"x");
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{d}","size":1}},"layers":[{{"mediaType":"{}","digest":"{d}","size":1,"x-extra":1}}],"subject2":true}}"#,
            media::DOCKER_MANIFEST,
            media::DOCKER_CONFIG,
            media::DOCKER_LAYER_GZIP
        );
        let m = Manifest::parse(json.as_bytes()).unwrap();
        assert_eq!(m.format(), ManifestFormat::Docker);
        let back: Value = serde_json::from_slice(&m.to_bytes()).unwrap();
        assert_eq!(back["subject2"], true);
        assert_eq!(back["layers"][0]["x-extra"], 1);
        let oci = m.convert(ManifestFormat::Oci).unwrap();
        assert_eq!(oci.layers[0].media_type, media::OCI_LAYER_GZIP);
        assert_eq!(oci.config.media_type, media::OCI_CONFIG);
        assert_eq!(oci.convert(ManifestFormat::Docker).unwrap(), m);
        let mut z = oci.clone();
        z.layers[0].media_type = media::OCI_LAYER_ZSTD.into();
        assert!(z.convert(ManifestFormat::Docker).is_err());
    }

    #[test]
    fn builder_keeps_base_fields() {
        let base = br#"{"architecture":"amd64","os":"linux","config":{"Env":["A=1","PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":[]},"weird":[1,2]}"#;
        let m = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            config: Descriptor::new(media::OCI_CONFIG, Digest::of(base), base.len() as u64),
            layers: vec![],
            annotations: BTreeMap::new(),
            extra: Map::new(),
        };
        let mut b = ImageBuilder::from_base(&m, base).unwrap();
        b.env("PATH", "/usr/bin").label("io.k8s.description", "x");
        b.add_layer(NewLayer {
            diff_id: Digest::of(b"t"),
            digest: Digest::of(b"g"),
            size: 3,
            media_type: media::OCI_LAYER_GZIP.into(),
            created_by: "ws2i assemble".into(),
        })
        .unwrap();
        let (cfg, man) = b.finish().unwrap();
        let v: Value = serde_json::from_slice(&cfg).unwrap();
        assert_eq!(v["weird"], serde_json::json!([1, 2]));
        assert_eq!(
            v["config"]["Env"],
            serde_json::json!(["A=1", "PATH=/usr/bin"])
        );
        let c = ImageConfig::parse(&cfg).unwrap();
        assert_eq!(c.rootfs.diff_ids, vec![Digest::of(b"t")]);
        assert_eq!(c.labels()["io.k8s.description"], "x");
        assert_eq!(man.layers.len(), 1);
        assert_eq!(man.config.digest, Digest::of(&cfg));
    }

    #[test]
    fn platform_parse_and_select() {
        assert!(Platform::parse("linux").is_err());
        let p = Platform::parse("wasip2/wasm").unwrap();
        let mut idx = Index::empty();
        let mut d = Descriptor::new(media::OCI_MANIFEST, Digest::of(b"a"), 1);
        d.platform = Some(Platform::parse("linux/amd64").unwrap());
        idx.manifests.push(d);
        let err = idx.select(&p).unwrap_err().to_string();
        assert!(err.contains("linux/amd64"), "{err}");
    }

    #[test]
    fn a_wasm_command_sets_the_wasm_platform_entrypoint_and_variant() {
        use crate::sandbox::WasmKind;
        let base = br#"{"architecture":"arm64","variant":"v8","os":"linux","config":{"Cmd":["/old"],"Entrypoint":["/bin/sh","-c"]},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let m = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            config: Descriptor::new(media::OCI_CONFIG, Digest::of(base), base.len() as u64),
            layers: vec![],
            annotations: BTreeMap::new(),
            extra: Map::new(),
        };
        for (kind, os) in [(WasmKind::Core, "wasip1"), (WasmKind::Component, "wasip2")] {
            let mut b = ImageBuilder::from_base(&m, base).unwrap();
            b.command("/usr/libexec/s2i/run", Some(kind));
            let (cfg, manifest) = b.finish().unwrap();
            let v: Value = serde_json::from_slice(&cfg).unwrap();
            assert_eq!((v["os"].as_str(), v["architecture"].as_str()), (Some(os), Some("wasm")));
            assert!(v.get("variant").is_none());
            assert_eq!(v["config"]["Entrypoint"], serde_json::json!(["/usr/libexec/s2i/run"]));
            assert!(v["config"].get("Cmd").is_none());
            assert_eq!(v["config"]["Labels"][ANNOTATION_WASM_VARIANT], "compat-smart");
            assert_eq!(manifest.annotations[ANNOTATION_WASM_VARIANT], "compat-smart");
        }
        let mut b = ImageBuilder::from_base(&m, base).unwrap();
        b.command("/usr/libexec/s2i/run", None);
        let v: Value = serde_json::from_slice(&b.finish().unwrap().0).unwrap();
        assert_eq!((v["os"].as_str(), v["architecture"].as_str()), (Some("linux"), Some("arm64")));
        assert_eq!(v["config"]["Cmd"], serde_json::json!(["/usr/libexec/s2i/run"]));
    }

    #[test]
    fn entry_kind_reads_inside_the_rootfs_only() {
        use crate::sandbox::WasmKind;
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("m.wasm"), b"\0asm\x01\0\0\0").unwrap();
        std::fs::write(d.path().join("c.wasm"), b"\0asm\x0d\0\x01\0").unwrap();
        std::fs::write(d.path().join("sh"), b"#!/bin/sh\n").unwrap();
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(outside.path(), b"\0asm\x01\0\0\0").unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("escape")).unwrap();
        assert_eq!(entry_kind(d.path(), "/m.wasm"), Some(WasmKind::Core));
        assert_eq!(entry_kind(d.path(), "/c.wasm"), Some(WasmKind::Component));
        assert_eq!(entry_kind(d.path(), "/sh"), None);
        assert_eq!(entry_kind(d.path(), "/missing"), None);
        assert_eq!(entry_kind(d.path(), "/escape"), None);
    }

    #[test]
    fn an_index_of_only_wasm_platforms_is_accepted_for_any_host() {
        let entry = |p: &str| {
            let mut d = Descriptor::new(media::OCI_MANIFEST, Digest::of(p.as_bytes()), 1);
            d.platform = Some(Platform::parse(p).unwrap());
            d
        };
        let mut idx = Index::empty();
        idx.manifests.push(entry("wasip2/wasm"));
        let got = idx.select(&Platform::host_default()).unwrap();
        assert_eq!(got.digest, Digest::of(b"wasip2/wasm"));
        idx.manifests.push(entry("linux/arm64"));
        assert!(idx.select(&Platform::parse("linux/amd64").unwrap()).is_err());
    }
}
