//! OKD's object shapes (`build.openshift.io/v1`, `image.openshift.io/v1`), as serde types that
//! round-trip the YAML/JSON users already have, plus the defaulting OKD's API server applies
//! (`v1/defaults.go`, `registry/buildconfig/strategy.go`; see docs/pipelines.md).
//!
//! `ObjectMeta` is our own small type, not k8s-openapi's: we need eight of its fields, and
//! k8s-openapi is a large crate (all of Kubernetes' API) that would more than double the compile
//! time of this module for types we never use.
//!
//! Fields OKD derives on read (`source.type`, `strategy.type`) are accepted on input and written
//! back on output ([`BuildConfig::normalize`]); the typed views ([`CommonSpec::strategy_kind`],
//! [`BuildTriggerPolicy::kind`]) are what the controller uses, so it never matches on strings.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const BUILD_API: &str = "build.openshift.io/v1";
pub const IMAGE_API: &str = "image.openshift.io/v1";
/// Namespace of objects that name none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Kubernetes object metadata: the fields ws2i reads or writes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Vec<OwnerReference>,
}

impl ObjectMeta {
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub controller: bool,
}

/// The kinds an image reference (`corev1.ObjectReference` in OKD) can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RefKind {
    /// `stream:tag` (OKD's default kind for every `from`).
    #[default]
    ImageStreamTag,
    /// `stream@sha256:…` (a hex prefix is accepted).
    ImageStreamImage,
    /// A pull spec, resolved as `ws2i build` resolves its builder.
    DockerImage,
}

impl fmt::Display for RefKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RefKind::ImageStreamTag => "ImageStreamTag",
            RefKind::ImageStreamImage => "ImageStreamImage",
            RefKind::DockerImage => "DockerImage",
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    #[serde(default)]
    pub kind: RefKind,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl ObjectReference {
    pub fn istag(name: &str) -> Self {
        ObjectReference {
            kind: RefKind::ImageStreamTag,
            name: name.into(),
            namespace: None,
        }
    }
    pub fn docker(name: &str) -> Self {
        ObjectReference {
            kind: RefKind::DockerImage,
            name: name.into(),
            namespace: None,
        }
    }
}

impl fmt::Display for ObjectReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LocalObjectReference {
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvVar {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

// ---------------------------------------------------------------------------------------------
// BuildConfig and Build

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitBuildSource {
    pub uri: String,
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageSourcePath {
    pub source_path: String,
    #[serde(default)]
    pub destination_dir: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageSource {
    pub from: ObjectReference,
    #[serde(default, rename = "as", skip_serializing_if = "Vec::is_empty")]
    pub as_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<ImageSourcePath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_secret: Option<LocalObjectReference>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BinaryBuildSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_file: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretBuildSource {
    pub secret: LocalObjectReference,
    #[serde(default)]
    pub destination_dir: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapBuildSource {
    pub config_map: LocalObjectReference,
    #[serde(default)]
    pub destination_dir: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildSource {
    /// Derived from the populated fields on output; only `Binary` means something on input.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitBuildSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<BinaryBuildSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_secret: Option<LocalObjectReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretBuildSource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_maps: Vec<ConfigMapBuildSource>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceBuildStrategy {
    #[serde(default)]
    pub from: ObjectReference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_secret: Option<LocalObjectReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scripts: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<bool>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_pull: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerBuildStrategy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ObjectReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_secret: Option<LocalObjectReference>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_cache: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_pull: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile_path: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_args: Vec<EnvVar>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildStrategy {
    /// Derived on output; `Docker` with a null `dockerStrategy` defaults it to `{}` (OKD).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub strategy_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_strategy: Option<DockerBuildStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_strategy: Option<SourceBuildStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_strategy: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jenkins_pipeline_strategy: Option<Value>,
}

/// The one strategy a valid spec has.
#[derive(Debug, Clone, Copy)]
pub enum StrategyKind<'a> {
    Source(&'a SourceBuildStrategy),
    Docker(&'a DockerBuildStrategy),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageLabel {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildOutput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<ObjectReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_secret: Option<LocalObjectReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_labels: Vec<ImageLabel>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitSourceRevision {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub commit: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRevision {
    #[serde(default, rename = "type")]
    pub revision_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSourceRevision>,
}

/// The part of the spec a BuildConfig and its Builds share (`CommonSpec` in OKD).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommonSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    #[serde(default)]
    pub source: BuildSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<SourceRevision>,
    #[serde(default)]
    pub strategy: BuildStrategy,
    #[serde(default)]
    pub output: BuildOutput,
    /// Kept for engine backends; ignored locally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_commit: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_deadline_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<Value>,
    #[serde(
        default,
        rename = "mountTrustedCA",
        skip_serializing_if = "Option::is_none"
    )]
    pub mount_trusted_ca: Option<bool>,
}

impl CommonSpec {
    /// The strategy, once [`BuildConfig::validate`] has checked there is exactly one.
    pub fn strategy_kind(&self) -> Option<StrategyKind<'_>> {
        match (
            &self.strategy.source_strategy,
            &self.strategy.docker_strategy,
        ) {
            (Some(s), None) => Some(StrategyKind::Source(s)),
            (None, Some(d)) => Some(StrategyKind::Docker(d)),
            _ => None,
        }
    }

    /// The strategy's `from`, if any (the default ImageChange trigger's target).
    pub fn strategy_from(&self) -> Option<&ObjectReference> {
        match self.strategy_kind()? {
            StrategyKind::Source(s) => Some(&s.from),
            StrategyKind::Docker(d) => d.from.as_ref(),
        }
    }

    pub fn strategy_from_mut(&mut self) -> Option<&mut ObjectReference> {
        if let Some(s) = &mut self.strategy.source_strategy {
            return Some(&mut s.from);
        }
        self.strategy
            .docker_strategy
            .as_mut()
            .and_then(|d| d.from.as_mut())
    }

    /// `Docker` or `Source`, as oc's TYPE column.
    pub fn type_name(&self) -> &'static str {
        match self.strategy_kind() {
            Some(StrategyKind::Source(_)) => "Source",
            Some(StrategyKind::Docker(_)) => "Docker",
            None if self.strategy.custom_strategy.is_some() => "Custom",
            None => "JenkinsPipeline",
        }
    }

    /// oc's FROM column: `Git@<ref or commit>`, `Dockerfile`, `Dockerfile,Git@…`, `Binary`, `Image`.
    pub fn from_column(&self) -> String {
        let commit = self
            .revision
            .as_ref()
            .and_then(|r| r.git.as_ref())
            .map(|g| g.commit.chars().take(7).collect::<String>())
            .filter(|c| !c.is_empty());
        let git = self.source.git.as_ref().map(|g| match &commit {
            Some(c) => format!("Git@{c}"),
            None => match &g.git_ref {
                Some(r) if !r.is_empty() => format!("Git@{r}"),
                _ => "Git".to_string(),
            },
        });
        let mut parts = Vec::new();
        if self.source.dockerfile.is_some() {
            parts.push("Dockerfile".to_string());
        }
        if let Some(g) = git {
            parts.push(g);
        } else if self.source.binary.is_some() {
            parts.push("Binary".to_string());
        }
        if parts.is_empty() && !self.source.images.is_empty() {
            parts.push("Image".to_string());
        }
        parts.join(",")
    }
}

/// `ImageChange` trigger parameters. `extra` keeps unknown keys so the loader can explain the
/// seed article's mis-nested `imageChange: {type: ImageChange}`; it is never written back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageChangeTrigger {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ObjectReference>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    #[serde(
        default,
        rename = "lastTriggeredImageID",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_triggered_image_id: Option<String>,
    #[serde(flatten, default, skip_serializing)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildTriggerPolicy {
    #[serde(default, rename = "type")]
    pub trigger_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generic: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitbucket: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_change: Option<ImageChangeTrigger>,
}

/// A trigger after defaulting: the controller matches on this, never on the `type` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    ConfigChange,
    ImageChange,
    /// Webhooks (GitHub, Generic, GitLab, Bitbucket): stored now, served by a later issue.
    WebHook,
}

impl BuildTriggerPolicy {
    /// The known kind, after the loader normalized the deprecated lowercase spellings.
    pub fn kind(&self) -> Option<TriggerKind> {
        match self.trigger_type.as_str() {
            "ConfigChange" => Some(TriggerKind::ConfigChange),
            "ImageChange" => Some(TriggerKind::ImageChange),
            "GitHub" | "Generic" | "GitLab" | "Bitbucket" => Some(TriggerKind::WebHook),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RunPolicy {
    #[default]
    Serial,
    SerialLatestOnly,
    Parallel,
}

impl RunPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RunPolicy::Serial => "Serial",
            RunPolicy::SerialLatestOnly => "SerialLatestOnly",
            RunPolicy::Parallel => "Parallel",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            RunPolicy::Serial,
            RunPolicy::SerialLatestOnly,
            RunPolicy::Parallel,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildConfigSpec {
    #[serde(default)]
    pub triggers: Vec<BuildTriggerPolicy>,
    #[serde(default)]
    pub run_policy: RunPolicy,
    #[serde(flatten)]
    pub common: CommonSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successful_builds_history_limit: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_builds_history_limit: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamTagReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageChangeTriggerStatus {
    /// A pull spec, despite the name (OKD).
    #[serde(default, rename = "lastTriggeredImageID")]
    pub last_triggered_image_id: String,
    pub from: ImageStreamTagReference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_trigger_time: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildConfigStatus {
    #[serde(default)]
    pub last_version: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_change_triggers: Vec<ImageChangeTriggerStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildConfig {
    #[serde(default = "build_api")]
    pub api_version: String,
    #[serde(default = "bc_kind")]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: BuildConfigSpec,
    #[serde(default)]
    pub status: BuildConfigStatus,
}

/// apiVersion and kind filled in, as on the wire.
impl Default for BuildConfig {
    fn default() -> Self {
        BuildConfig {
            api_version: build_api(),
            kind: bc_kind(),
            metadata: Default::default(),
            spec: Default::default(),
            status: Default::default(),
        }
    }
}

fn build_api() -> String {
    BUILD_API.into()
}
fn image_api() -> String {
    IMAGE_API.into()
}
fn bc_kind() -> String {
    "BuildConfig".into()
}
fn build_kind() -> String {
    "Build".into()
}
fn is_kind() -> String {
    "ImageStream".into()
}

/// `status.phase` of a Build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum BuildPhase {
    #[default]
    New,
    Pending,
    Running,
    Complete,
    Failed,
    Error,
    Cancelled,
}

impl BuildPhase {
    pub const ALL: [BuildPhase; 7] = [
        BuildPhase::New,
        BuildPhase::Pending,
        BuildPhase::Running,
        BuildPhase::Complete,
        BuildPhase::Failed,
        BuildPhase::Error,
        BuildPhase::Cancelled,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            BuildPhase::New => "New",
            BuildPhase::Pending => "Pending",
            BuildPhase::Running => "Running",
            BuildPhase::Complete => "Complete",
            BuildPhase::Failed => "Failed",
            BuildPhase::Error => "Error",
            BuildPhase::Cancelled => "Cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
    }
    /// Nothing leaves a terminal phase.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            BuildPhase::Complete | BuildPhase::Failed | BuildPhase::Error | BuildPhase::Cancelled
        )
    }
    /// Counted by `failedBuildsHistoryLimit`.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            BuildPhase::Failed | BuildPhase::Error | BuildPhase::Cancelled
        )
    }
}

impl fmt::Display for BuildPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageChangeCause {
    #[serde(default, rename = "imageID")]
    pub image_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ref: Option<ObjectReference>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildTriggerCause {
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_change_build: Option<ImageChangeCause>,
}

/// OKD's exact cause messages (`apiserverbuildutil/consts.go`).
pub mod cause {
    pub const MANUAL: &str = "Manually triggered";
    pub const CONFIG_CHANGE: &str = "Build configuration change";
    pub const IMAGE_CHANGE: &str = "Image change";
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildSpec {
    #[serde(flatten)]
    pub common: CommonSpec,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggered_by: Vec<BuildTriggerCause>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildStatusOutputTo {
    #[serde(default)]
    pub image_digest: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildStatusOutput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<BuildStatusOutputTo>,
}

/// `status.config`: `{kind: BuildConfig, name, namespace}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigReference {
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildStatus {
    #[serde(default)]
    pub phase: BuildPhase,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_timestamp: Option<String>,
    /// Nanoseconds, as OKD's `time.Duration` in JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_docker_image_reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<BuildStatusOutput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_snippet: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Build {
    #[serde(default = "build_api")]
    pub api_version: String,
    #[serde(default = "build_kind")]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: BuildSpec,
    #[serde(default)]
    pub status: BuildStatus,
}

/// apiVersion and kind filled in, as on the wire.
impl Default for Build {
    fn default() -> Self {
        Build {
            api_version: build_api(),
            kind: build_kind(),
            metadata: Default::default(),
            spec: Default::default(),
            status: Default::default(),
        }
    }
}

/// Labels and annotations OKD puts on every Build (`consts.go`).
pub mod build_meta {
    pub const BC_NAME: &str = "openshift.io/build-config.name";
    pub const BC_LABEL_DEPRECATED: &str = "buildconfig";
    pub const START_POLICY: &str = "openshift.io/build.start-policy";
    pub const NUMBER: &str = "openshift.io/build.number";
    pub const CLONE_OF: &str = "openshift.io/build.clone-of";
    pub const PAUSED: &str = "openshift.io/build-config.paused";
}

impl Build {
    pub fn bc_name(&self) -> Option<&str> {
        self.metadata
            .labels
            .get(build_meta::BC_NAME)
            .map(String::as_str)
    }
    pub fn number(&self) -> i64 {
        self.metadata
            .annotations
            .get(build_meta::NUMBER)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
    /// The run policy captured when the build was created (OKD reads the label, not the BC).
    pub fn run_policy(&self) -> RunPolicy {
        self.metadata
            .labels
            .get(build_meta::START_POLICY)
            .and_then(|p| RunPolicy::parse(p))
            .unwrap_or_default()
    }
    pub fn status_column(&self) -> String {
        match &self.status.reason {
            Some(r) if !r.is_empty() && self.status.phase != BuildPhase::Complete => {
                format!("{} ({r})", self.status.phase)
            }
            _ => self.status.phase.to_string(),
        }
    }
    pub fn image_digest(&self) -> Option<&str> {
        self.status
            .output
            .as_ref()
            .and_then(|o| o.to.as_ref())
            .map(|t| t.image_digest.as_str())
            .filter(|d| !d.is_empty())
    }
}

// ---------------------------------------------------------------------------------------------
// Image streams

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LookupPolicy {
    #[serde(default)]
    pub local: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TagReferencePolicy {
    #[serde(default, rename = "type")]
    pub policy_type: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagReference {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ObjectReference>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reference: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_policy: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_policy: Option<TagReferencePolicy>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup_policy: Option<LookupPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_image_repository: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<TagReference>,
}

/// One item of a tag's history; `items[0]` is the tag's current image.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagEvent {
    pub created: String,
    pub docker_image_reference: String,
    /// The manifest digest.
    pub image: String,
    #[serde(default)]
    pub generation: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedTagEventList {
    pub tag: String,
    #[serde(default)]
    pub items: Vec<TagEvent>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamStatus {
    #[serde(default)]
    pub docker_image_repository: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<NamedTagEventList>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageStream {
    #[serde(default = "image_api")]
    pub api_version: String,
    #[serde(default = "is_kind")]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ImageStreamSpec,
    /// Owned by ws2i: ignored on input, filled from the database on output.
    #[serde(default)]
    pub status: ImageStreamStatus,
}

/// apiVersion and kind filled in, as on the wire.
impl Default for ImageStream {
    fn default() -> Self {
        ImageStream {
            api_version: image_api(),
            kind: is_kind(),
            metadata: Default::default(),
            spec: Default::default(),
            status: Default::default(),
        }
    }
}

impl ImageStream {
    /// The store repository of this stream: `IS` in the default namespace, else `NS/IS`.
    pub fn repository(namespace: &str, name: &str) -> String {
        if namespace == DEFAULT_NAMESPACE {
            name.to_string()
        } else {
            format!("{namespace}/{name}")
        }
    }
    pub fn tag_history(&self, tag: &str) -> &[TagEvent] {
        self.status
            .tags
            .iter()
            .find(|t| t.tag == tag)
            .map(|t| t.items.as_slice())
            .unwrap_or(&[])
    }
    pub fn spec_tag(&self, tag: &str) -> Option<&TagReference> {
        self.spec.tags.iter().find(|t| t.name == tag)
    }
}

/// `ImageStreamTag` (`stream:tag`): a view of one tag, for `get istag -o json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamTag {
    #[serde(default = "image_api")]
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<TagReference>,
    #[serde(default)]
    pub generation: i64,
    #[serde(default)]
    pub lookup_policy: LookupPolicy,
    pub image: ImageView,
}

/// The part of OKD's `Image` ws2i can say without reading the manifest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageView {
    pub metadata: ObjectMeta,
    pub docker_image_reference: String,
}

// ---------------------------------------------------------------------------------------------
// Secrets and ConfigMaps (core `v1`): build inputs (`source.secrets`, `source.configMaps`)

fn v1() -> String {
    "v1".into()
}

/// A `v1` Secret. After the loader, `data` holds every value (base64, `stringData` merged in
/// as the API server does) and `stringData` is empty. Values are never printed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    #[serde(default = "v1")]
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub secret_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub string_data: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
}

impl Secret {
    /// The Secret as `get -o yaml|json` shows it: each value replaced by its size.
    pub fn redacted(&self) -> Secret {
        let mut s = self.clone();
        for v in s.data.values_mut() {
            let n = super::load::base64_decode(v).map(|b| b.len()).unwrap_or(0);
            *v = format!("<redacted: {n} bytes>");
        }
        s
    }
}

/// A `v1` ConfigMap: `data` (text) and `binaryData` (base64).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMap {
    #[serde(default = "v1")]
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub binary_data: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
}

/// `stream:tag` split; OKD's generator requires exactly one `:`.
pub fn split_istag(name: &str) -> Option<(&str, &str)> {
    let (s, t) = name.split_once(':')?;
    if s.is_empty() || t.is_empty() || t.contains(':') {
        return None;
    }
    Some((s, t))
}

/// `stream@sha256:hex` (hex prefix allowed) split.
pub fn split_isimage(name: &str) -> Option<(&str, &str)> {
    let (s, id) = name.split_once('@')?;
    if s.is_empty() || id.is_empty() {
        return None;
    }
    Some((s, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_round_trips_and_classifies() {
        for p in BuildPhase::ALL {
            assert_eq!(BuildPhase::parse(p.as_str()), Some(p));
            let j = serde_json::to_string(&p).unwrap();
            assert_eq!(j, format!("\"{p}\""));
        }
        assert!(BuildPhase::Cancelled.is_terminal() && BuildPhase::Cancelled.is_failure());
        assert!(!BuildPhase::Running.is_terminal());
        assert!(BuildPhase::Complete.is_terminal() && !BuildPhase::Complete.is_failure());
    }

    #[test]
    fn new_objects_carry_their_api_version_and_kind() {
        let b = serde_json::to_value(Build::default()).unwrap();
        assert_eq!(
            (b["apiVersion"].as_str(), b["kind"].as_str()),
            (Some(BUILD_API), Some("Build"))
        );
        let is = serde_json::to_value(ImageStream::default()).unwrap();
        assert_eq!(
            (is["apiVersion"].as_str(), is["kind"].as_str()),
            (Some(IMAGE_API), Some("ImageStream"))
        );
    }

    #[test]
    fn istag_and_isimage_names_split() {
        assert_eq!(
            split_istag("golang-builder:1.12"),
            Some(("golang-builder", "1.12"))
        );
        assert_eq!(split_istag("golang-builder"), None);
        assert_eq!(split_istag("a:b:c"), None);
        assert_eq!(
            split_isimage("app@sha256:ab12"),
            Some(("app", "sha256:ab12"))
        );
    }

    #[test]
    fn from_column_is_ocs() {
        let mut c = CommonSpec::default();
        c.source.git = Some(GitBuildSource {
            uri: "u".into(),
            git_ref: Some("master".into()),
        });
        assert_eq!(c.from_column(), "Git@master");
        c.revision = Some(SourceRevision {
            revision_type: "Git".into(),
            git: Some(GitSourceRevision {
                commit: "8eff0012345".into(),
                message: String::new(),
            }),
        });
        assert_eq!(c.from_column(), "Git@8eff001");
        c.source.git = None;
        c.source.dockerfile = Some("FROM scratch".into());
        assert_eq!(c.from_column(), "Dockerfile");
    }
}
