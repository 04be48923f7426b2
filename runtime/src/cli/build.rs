//! `ws2i build SOURCE BUILDER [TAG]`: flags with s2i's names, then `ws2i::build::build`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::ValueEnum;

use super::{Console, Global, OutputFormat};
use crate::auth::Credentials;
use crate::build::{self, BuildError, BuildRequest, PullPolicy};
use crate::envfile::parse_env_arg;
use crate::image::ManifestFormat;
use crate::layer::Compression;
use crate::registry::RegistryOptions;
use crate::sandbox;
use crate::source::{SourceLocation, SourceSpec, DEFAULT_EXCLUDE};
use crate::store::Store;

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicyArg {
    Always,
    IfNotPresent,
    Never,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionArg {
    Gzip,
    Zstd,
}

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// A directory or a git URL (file://, https://, ssh://, git://, user@host:path).
    pub source: String,
    /// The builder image: NAME[:TAG] in the local store, or docker://HOST/REPO[:TAG].
    pub builder: String,
    /// Tag of the result in the local store (without it, only the digest is printed).
    pub tag: Option<String>,
    /// Git branch, tag or commit to build.
    #[arg(short = 'r', long = "ref")]
    pub git_ref: Option<String>,
    /// Subdirectory of the source to build.
    #[arg(long = "context-dir")]
    pub context_dir: Option<String>,
    /// Use the working tree as is (uncommitted and untracked files included).
    #[arg(long)]
    pub copy: bool,
    /// Copy symlinks of a local source as links.
    #[arg(long = "keep-symlinks")]
    pub keep_symlinks: bool,
    /// Regular expression of source paths left out ("" leaves nothing out).
    #[arg(long, default_value = DEFAULT_EXCLUDE)]
    pub exclude: String,
    /// Do not initialise git submodules.
    #[arg(long = "ignore-submodules")]
    pub ignore_submodules: bool,
    /// Environment variable for the build, NAME=VALUE (repeatable; wins over every file).
    #[arg(short = 'e', long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// File of NAME=VALUE lines for the build.
    #[arg(short = 'E', long = "environment-file", value_name = "FILE")]
    pub environment_file: Option<PathBuf>,
    /// URL of the scripts (image://, file://, http(s)://), tried before any other place.
    #[arg(short = 's', long = "scripts-url")]
    pub scripts_url: Option<String>,
    /// Where the scripts are in the builder (instead of its io.openshift.s2i.scripts-url label).
    #[arg(long = "image-scripts-url")]
    pub image_scripts_url: Option<String>,
    /// Where the source is put in the builder (default: its io.openshift.s2i.destination label, else /tmp).
    #[arg(short = 'd', long)]
    pub destination: Option<String>,
    /// When to fetch a docker:// builder.
    #[arg(long = "pull-policy", value_enum, default_value = "if-not-present")]
    pub pull_policy: PullPolicyArg,
    /// Value of the io.k8s.display-name label (default: the tag).
    #[arg(short = 'n', long = "application-name")]
    pub application_name: Option<String>,
    /// Value of the io.k8s.description label.
    #[arg(long)]
    pub description: Option<String>,
    /// Label of the result, KEY=VALUE (repeatable; wins over the generated ones).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Layer compression.
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: CompressionArg,
    /// Same inputs, same image digest: fixed clocks, mtimes and dates (SOURCE_DATE_EPOCH, default 0).
    #[arg(long)]
    pub reproducible: bool,
    /// The fixed time of --reproducible (implies it).
    #[arg(long = "source-date-epoch", value_name = "N")]
    pub source_date_epoch: Option<u64>,
    /// Keep the build rootfs on disk and print where.
    #[arg(long = "save-temp-dir")]
    pub save_temp_dir: bool,
    #[command(flatten)]
    pub budget: super::budget::BudgetArgs,
    /// Run the result once built (`ws2i run`, with the same budgets), as s2i's --run does.
    #[arg(long)]
    pub run: bool,
    /// With --run: serve the result's wasi:http component on [HOST_IP:]HOST_PORT:PORT.
    #[arg(short = 'p', long = "publish", value_name = "[HOST_IP:]HOST_PORT:PORT", requires = "run")]
    pub publish: Option<crate::run::Publish>,
    /// Registry credentials USER:PASS (docker:// builders).
    #[arg(long)]
    pub creds: Option<String>,
    /// Verify TLS (default: yes, except plain HTTP for localhost/127.0.0.1).
    #[arg(long = "tls-verify", num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: Option<bool>,
    /// Not supported: it needs native RUN; see the error for why.
    #[arg(long = "as-dockerfile", value_name = "PATH", hide = true)]
    pub as_dockerfile: Option<String>,
    /// Restore the artifacts of the image currently tagged TAG (its save-artifacts) before assemble.
    #[arg(long)]
    pub incremental: bool,
    /// Extended build: the result is this image plus the artifacts of the assembled builder.
    #[arg(long = "runtime-image")]
    pub runtime_image: Option<String>,
    /// Artifact for --runtime-image, SRC[:DEST] (SRC absolute in the builder, DEST relative; repeatable).
    #[arg(short = 'a', long = "runtime-artifact", value_name = "SRC[:DEST]")]
    pub runtime_artifacts: Vec<String>,
    /// Host file or dir (e.g. a secret) assemble reads at DEST, read-only; never in the image (repeatable).
    #[arg(short = 'i', long = "inject", value_name = "SRC:DEST")]
    pub inject: Vec<String>,
    /// Host dir assemble reads and writes at DIR (a cache); never in the image (repeatable).
    #[arg(short = 'v', long = "volume", value_name = "HOSTDIR:DIR")]
    pub volume: Vec<String>,
    /// Push the result to TAG, which must then be docker://HOST/REPO[:TAG] (kept locally as HOST/REPO:TAG).
    #[arg(long)]
    pub push: bool,
    /// Manifest format of the pushed image (default: OCI, as built).
    #[arg(long, value_enum)]
    pub format: Option<ManifestFormat>,
    /// POST {"success":bool,"labels":{…}} to this http(s) URL when the build ends, failed or not.
    #[arg(long = "callback-url", value_name = "URL")]
    pub callback_url: Option<String>,
}




fn request(a: &BuildArgs) -> Result<BuildRequest> {
    if a.as_dockerfile.is_some() {
        bail!(
            "--as-dockerfile is not supported: ws2i runs the builder's hooks as WebAssembly in its own sandbox, \
             and a Dockerfile would need a container engine to run assemble natively (RUN); build the image with `ws2i build` instead"
        );
    }
    let location = SourceLocation::parse(&a.source)?;
    let mut spec = SourceSpec::new(location);
    spec.git_ref = a.git_ref.clone();
    spec.context_dir = match &a.context_dir {
        Some(c) => SourceSpec::parse_context_dir(c)?,
        None => None,
    };
    spec.copy = a.copy;
    spec.keep_symlinks = a.keep_symlinks;
    spec.exclude = SourceSpec::parse_exclude(&a.exclude)?;
    spec.ignore_submodules = a.ignore_submodules;
    let cache = sandbox::default_cache_dir();
    let mut req = BuildRequest::new(spec, a.builder.clone(), Store::default_root()?, cache);
    match a.tag.as_deref() {
        Some(t) => {
            let (tag, push) = build::parse_tag(t, a.push, a.format)?;
            req.tag = Some(tag);
            req.push = push;
        }
        None if a.push => bail!("--push needs TAG docker://HOST/REPO[:TAG]"),
        None if a.format.is_some() => bail!("--format applies to --push only"),
        None => {}
    }
    req.pull_policy = match a.pull_policy {
        PullPolicyArg::Always => PullPolicy::Always,
        PullPolicyArg::IfNotPresent => PullPolicy::IfNotPresent,
        PullPolicyArg::Never => PullPolicy::Never,
    };
    req.scripts_url = a.scripts_url.clone();
    req.image_scripts_url = a.image_scripts_url.clone();
    req.destination = a.destination.clone();
    if let Some(f) = &a.environment_file {
        req.env_file = build::read_env_file(f)?;
    }
    req.env = a
        .env
        .iter()
        .map(|e| parse_env_arg(e))
        .collect::<Result<_, _>>()?;
    req.labels = a
        .labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => bail!("--label {l:?}: expected KEY=VALUE"),
        })
        .collect::<Result<_>>()?;
    req.application_name = a.application_name.clone();
    req.description = a.description.clone();
    req.compression = match a.compression {
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::Zstd => Compression::Zstd,
    };
    req.source_date_epoch = a.source_date_epoch.or(a.reproducible.then_some(0));
    req.keep_temp = a.save_temp_dir;
    req.incremental = a.incremental;
    req.runtime_image = a.runtime_image.clone();
    req.runtime_artifacts = a
        .runtime_artifacts
        .iter()
        .map(|s| build::RuntimeArtifact::parse(s))
        .collect::<Result<_>>()?;
    req.injections = a
        .inject
        .iter()
        .map(|s| build::HostMount::parse("--inject", s))
        .collect::<Result<_>>()?;
    req.volumes = a
        .volume
        .iter()
        .map(|s| build::HostMount::parse("--volume", s))
        .collect::<Result<_>>()?;
    if let Some(u) = &a.callback_url {
        build::parse_callback_url(u)?;
    }
    req.callback_url = a.callback_url.clone();
    req.budget = a.budget.budget();
    req.registry = RegistryOptions {
        tls_verify: a.tls_verify,
        creds: a
            .creds
            .as_deref()
            .map(Credentials::parse_creds)
            .transpose()?,
        authfile: None,
        attempts: None,
    };
    Ok(req)
}

pub fn run(g: &Global, a: BuildArgs) -> Result<ExitCode> {
    let mut req = request(&a)?;
    req.progress = crate::progress::enabled(g.quiet);
    let console = Console { quiet: g.quiet };
    let result = match build::build(&req, &console) {
        Ok(r) => r,
        Err(
            e @ (BuildError::AssembleFailed { exit_code }
            | BuildError::AssembleRuntimeFailed { exit_code }),
        ) => {
            eprintln!("ws2i: error: build failed: {e}");
            let code = u8::try_from(exit_code)
                .ok()
                .filter(|c| *c != 0)
                .unwrap_or(1);
            return Ok(ExitCode::from(code));
        }
        Err(e) => return Err(anyhow::Error::new(e).context("build failed")),
    };
    let name = result.image.clone().unwrap_or_else(|| "(untagged)".into());
    match g.output {
        OutputFormat::Json => println!("{}", serde_json::to_string(&result)?),
        OutputFormat::Text if g.quiet => println!("{}", result.digest),
        OutputFormat::Text => {
            println!("Build completed: {name} {}", result.digest);
            if let Some(p) = &result.pushed {
                println!("Pushed: {} {}", p.reference, p.digest);
            }
        }
    }
    if a.run {
        let image = result.image.clone().unwrap_or_else(|| result.digest.to_string());
        let image = image.trim_start_matches("docker://").to_string();
        let req = super::run::request(image, None, Vec::new(), a.publish, a.budget.budget())?;
        let code = crate::run::run_image(&req, &super::run::Passthrough { quiet: g.quiet })?;
        return Ok(ExitCode::from((code & 0xff) as u8));
    }
    Ok(ExitCode::SUCCESS)
}
