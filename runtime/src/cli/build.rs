//! `ws2i build SOURCE BUILDER [TAG]`: flags with s2i's names, then `ws2i::s2i::build`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;

use super::{Console, Global, OutputFormat};
use crate::image::auth::Credentials;
use crate::s2i::{self, BuildError, BuildRequest, PullPolicy};
use crate::contract::envfile::parse_env_arg;
use crate::image::ManifestFormat;
use crate::layer::Compression;
use crate::image::registry::RegistryOptions;
use crate::s2i::s2ifile::{S2iFile, Trust};
use crate::sandbox;
use crate::source::{SourceLocation, SourceSpec, DEFAULT_EXCLUDE};
use crate::image::store::Store;

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicyArg {
    Always,
    IfNotPresent,
    Never,
}

impl From<PullPolicyArg> for PullPolicy {
    fn from(p: PullPolicyArg) -> Self {
        match p {
            PullPolicyArg::Always => PullPolicy::Always,
            PullPolicyArg::IfNotPresent => PullPolicy::IfNotPresent,
            PullPolicyArg::Never => PullPolicy::Never,
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionArg {
    Gzip,
    Zstd,
}

/// How a `docker://` builder is fetched: the flags build and usage share.
#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// When to fetch a docker:// builder.
    #[arg(short = 'p', long = "pull-policy", value_enum, default_value = "if-not-present")]
    pub pull_policy: PullPolicyArg,
    /// Registry credentials USER:PASS (docker:// images).
    #[arg(long)]
    pub creds: Option<String>,
    /// Verify TLS (default: yes, except plain HTTP for localhost/127.0.0.1).
    #[arg(long = "tls-verify", num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: Option<bool>,
}

impl PullArgs {
    pub fn registry(&self) -> Result<RegistryOptions> {
        Ok(RegistryOptions {
            tls_verify: self.tls_verify,
            creds: self
                .creds
                .as_deref()
                .map(Credentials::parse_creds)
                .transpose()?,
            authfile: None,
            attempts: None,
        })
    }
}

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// A directory or a git URL (file://, https://, ssh://, git://, user@host:path).
    #[arg(required_unless_present = "use_config")]
    pub source: Option<String>,
    /// The builder image: NAME[:TAG] in the local store, or docker://HOST/REPO[:TAG].
    #[arg(required_unless_present = "use_config")]
    pub builder: Option<String>,
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
    /// Follow git submodules whose URL is a local path or file:// (refused by default: they
    /// read other repositories of this host).
    #[arg(long = "allow-local-submodules")]
    pub allow_local_submodules: bool,
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
    #[command(flatten)]
    pub pull: PullArgs,
    /// When to fetch the previous image of --incremental (from the registry of a docker:// TAG).
    #[arg(long = "incremental-pull-policy", value_enum, default_value = "if-not-present")]
    pub incremental_pull_policy: PullPolicyArg,
    /// When to fetch a docker:// --runtime-image.
    #[arg(long = "runtime-pull-policy", value_enum, default_value = "if-not-present")]
    pub runtime_pull_policy: PullPolicyArg,
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
    /// The fixed time of --reproducible (implies it); SOURCE_DATE_EPOCH in the environment means the same.
    #[arg(long = "source-date-epoch", value_name = "N", env = "SOURCE_DATE_EPOCH")]
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
    // No -p: on build, -p is s2i's --pull-policy.
    #[arg(long = "publish", value_name = "[HOST_IP:]HOST_PORT:PORT", requires = "run")]
    pub publish: Option<crate::run::Publish>,
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
    /// Owner (USER[:GROUP], names from the builder's /etc/passwd) of the files assemble writes
    /// (default: the builder's io.openshift.s2i.assemble-user label, else its User).
    #[arg(long = "assemble-user", value_name = "USER[:GROUP]")]
    pub assemble_user: Option<crate::s2i::assemble_user::AssembleUser>,
    /// Restore SOURCE, BUILDER, TAG and flags from ./.s2ifile (else ./.stifile), or from FILE,
    /// under those given here, and save the result there once the arguments are valid. Host
    /// grants (--inject, --volume, …) are only restored from a FILE named here outside the source.
    #[arg(long = "use-config", value_name = "FILE", num_args = 0..=1, require_equals = true)]
    pub use_config: Option<Option<PathBuf>>,
    /// POST {"success":bool,"labels":{…}} to this http(s) URL when the build ends, failed or not.
    #[arg(long = "callback-url", value_name = "URL")]
    pub callback_url: Option<String>,
    /// Write the result's digest (the pushed one with --push) to FILE, e.g. a Tekton result.
    #[arg(long = "digest-file", value_name = "FILE")]
    pub digest_file: Option<PathBuf>,
    /// Build for these platforms, OS/ARCH[/VARIANT] comma-separated: assemble runs once per
    /// platform with TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT; several make an OCI
    /// image index (docs/build.md).
    #[arg(long, value_name = "OS/ARCH[,…]")]
    pub platform: Option<String>,
}

pub(super) fn request(a: &BuildArgs) -> Result<BuildRequest> {
    if a.as_dockerfile.is_some() {
        bail!(
            "--as-dockerfile is not supported: ws2i runs the builder's hooks as WebAssembly in its own sandbox, \
             and a Dockerfile would need a container engine to run assemble natively (RUN); build the image with `ws2i build` instead"
        );
    }
    let (Some(source), Some(builder)) = (&a.source, &a.builder) else {
        bail!("SOURCE and BUILDER are required (or saved in .s2ifile with --use-config)");
    };
    let location = SourceLocation::parse(source)?;
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
    spec.allow_local_submodules = a.allow_local_submodules;
    let cache = sandbox::default_cache_dir();
    let mut req = BuildRequest::new(spec, builder.clone(), Store::default_root()?, cache);
    match a.tag.as_deref() {
        Some(t) => {
            let (tag, push) = s2i::parse_tag(t, a.push, a.format)?;
            req.tag = Some(tag);
            req.push = push;
        }
        None if a.push => bail!("--push needs TAG docker://HOST/REPO[:TAG]"),
        None if a.format.is_some() => bail!("--format applies to --push only"),
        None => {}
    }
    req.pull_policy = a.pull.pull_policy.into();
    req.incremental_pull_policy = a.incremental_pull_policy.into();
    req.runtime_pull_policy = a.runtime_pull_policy.into();
    req.scripts_url = a.scripts_url.clone();
    req.image_scripts_url = a.image_scripts_url.clone();
    req.destination = a.destination.clone();
    if let Some(f) = &a.environment_file {
        req.env_file = s2i::read_env_file(f)?;
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
        .map(|s| s2i::RuntimeArtifact::parse(s))
        .collect::<Result<_>>()?;
    req.injections = a
        .inject
        .iter()
        .map(|s| s2i::HostMount::parse("--inject", s))
        .collect::<Result<_>>()?;
    req.volumes = a
        .volume
        .iter()
        .map(|s| s2i::HostMount::parse("--volume", s))
        .collect::<Result<_>>()?;
    if let Some(u) = &a.callback_url {
        s2i::parse_callback_url(u)?;
    }
    req.callback_url = a.callback_url.clone();
    req.assemble_user = a.assemble_user.clone();
    req.budget = a.budget.budget();
    req.registry = a.pull.registry()?;
    if let Some(p) = &a.platform {
        req.platforms = s2i::parse_platforms(p)?;
    }
    Ok(req)
}

/// Flags never written to `.s2ifile`: the switch itself, and credentials (a file in the
/// working directory, often committed, is no place for a password).
const NOT_SAVED: [&str; 2] = ["use-config", "creds"];

/// `--use-config`: the saved `.s2ifile` of the working directory under the command line —
/// a flag given here wins over its saved value (all values of a repeatable one), and SOURCE
/// BUILDER [TAG] given here replace the saved ones. Works on clap's view of the arguments,
/// so every flag of [`BuildArgs`] takes part without being listed. Returns the merged
/// arguments and the file to save once they are valid, and where.
///
/// What the file may restore depends on [`Trust`]: `--use-config` alone finds the file in the
/// working directory, and `--use-config=FILE` inside a local SOURCE names one the source
/// controls; both are untrusted, so a host grant in them is refused, naming the entry.
fn with_config(a: BuildArgs, named: Option<PathBuf>) -> Result<(BuildArgs, S2iFile, PathBuf)> {
    use clap::parser::ValueSource;
    use clap::{Args as _, CommandFactory as _, FromArgMatches as _};

    let cwd = std::env::current_dir().context("finding the working directory")?;
    let (saved, path) = match &named {
        Some(file) => (S2iFile::load_file(file)?.unwrap_or_default(), file.clone()),
        None => match S2iFile::load(&cwd)? {
            Some((f, path)) => {
                if path.ends_with(".stifile") {
                    eprintln!("ws2i: warning: {} is deprecated: it is saved as .s2ifile", path.display());
                }
                (f, path)
            }
            None => (S2iFile::default(), cwd.join(crate::s2i::s2ifile::FILE_NAMES[0])),
        },
    };
    // What is read from a deprecated .stifile is saved as .s2ifile.
    let save_path = if named.is_some() { path.clone() } else { cwd.join(crate::s2i::s2ifile::FILE_NAMES[0]) };
    let trust = match &named {
        None => Trust::Untrusted,
        Some(file) => {
            let source = a.source.clone().unwrap_or_else(|| saved.source.clone());
            let inside = |dir: &std::path::Path| -> bool {
                let file = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
                matches!((file.canonicalize(), dir.canonicalize()), (Ok(f), Ok(d)) if f.starts_with(&d))
            };
            match SourceLocation::parse(&source) {
                Ok(SourceLocation::Local(dir)) if inside(&dir) => Trust::Untrusted,
                _ => Trust::Trusted,
            }
        }
    };
    let config_dir = path.parent().map(std::path::Path::to_path_buf).unwrap_or_else(|| cwd.clone());
    let mut restored: Vec<String> = Vec::new();
    // clap's matches of this process's own arguments tell which flags were typed.
    let full = super::Cli::command()
        .try_get_matches_from(std::env::args_os())
        .context("re-reading the command line")?;
    let typed = full
        .subcommand_matches("build")
        .ok_or_else(|| anyhow::anyhow!("--use-config: not a build command line"))?;
    let on_cli = |id: &str| typed.value_source(id) == Some(ValueSource::CommandLine);

    let cmd = BuildArgs::augment_args(clap::Command::new("build"));
    let mut argv: Vec<std::ffi::OsString> = vec!["build".into()];
    for arg in cmd.get_arguments() {
        let (Some(long), id) = (arg.get_long(), arg.get_id().as_str()) else {
            continue;
        };
        if long == "use-config" {
            continue;
        }
        let takes_values = arg.get_action().takes_values();
        if on_cli(id) {
            if !takes_values {
                argv.push(format!("--{long}").into());
            } else if let Some(raw) = typed.get_raw(id) {
                argv.extend(raw.map(|v| {
                    let mut o = std::ffi::OsString::from(format!("--{long}="));
                    o.push(v);
                    o
                }));
            }
        } else if !NOT_SAVED.contains(&long) {
            let values = saved.values(long, long == "env");
            if !values.is_empty() {
                restored.push(long.to_string());
            }
            if !takes_values {
                if values.last().is_some_and(|v| v == "true") {
                    argv.push(format!("--{long}").into());
                }
            } else {
                argv.extend(values.iter().map(|v| format!("--{long}={v}").into()));
            }
        }
    }
    argv.push("--".into());
    if trust == Trust::Untrusted {
        let restored: Vec<&str> = restored.iter().map(String::as_str).collect();
        saved.check_untrusted(&path, &restored, a.source.is_none(), &config_dir)?;
    }
    match (&a.source, &a.builder) {
        (Some(s), Some(b)) => {
            argv.push(s.into());
            argv.push(b.into());
            argv.extend(a.tag.iter().map(Into::into));
        }
        (None, _) if !saved.source.is_empty() && !saved.builder_image.is_empty() => {
            argv.push(saved.source.clone().into());
            argv.push(saved.builder_image.clone().into());
            if !saved.tag.is_empty() {
                argv.push(saved.tag.clone().into());
            }
        }
        (None, _) => bail!("--use-config: no SOURCE and BUILDER given and none saved in .s2ifile"),
        (Some(_), None) => bail!("--use-config: give both SOURCE and BUILDER, or neither"),
    }
    let m = cmd
        .try_get_matches_from(&argv)
        .map_err(|e| {
            let msg = e.render().to_string();
            let first = msg.lines().next().unwrap_or_default().trim_start_matches("error: ").to_string();
            anyhow::anyhow!("the arguments restored from .s2ifile are invalid: {first}")
        })?;
    let merged = BuildArgs::from_arg_matches(&m).context("restoring .s2ifile")?;

    let mut out = S2iFile {
        source: merged.source.clone().unwrap_or_default(),
        builder_image: merged.builder.clone().unwrap_or_default(),
        tag: merged.tag.clone().unwrap_or_default(),
        ..S2iFile::default()
    };
    for arg in BuildArgs::augment_args(clap::Command::new("build")).get_arguments() {
        let (Some(long), id) = (arg.get_long(), arg.get_id().as_str()) else {
            continue;
        };
        if NOT_SAVED.contains(&long) || m.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        if !arg.get_action().takes_values() {
            out.set(long, &["true".to_string()], false);
        } else if let Some(raw) = m.get_raw(id) {
            let values: Vec<String> = raw.map(|v| v.to_string_lossy().into_owned()).collect();
            let repeatable = matches!(arg.get_action(), clap::ArgAction::Append);
            out.set(long, &values, repeatable);
        }
    }
    if trust == Trust::Untrusted {
        let dropped = out.drop_host_grants();
        if !dropped.is_empty() {
            let flags: Vec<String> = dropped.iter().map(|d| format!("--{d}")).collect();
            eprintln!(
                "ws2i: note: {} not saved to {}: a config file the source controls never restores host grants",
                flags.join(", "),
                save_path.display()
            );
        }
    }
    Ok((merged, out, save_path))
}

pub fn run(g: &Global, a: BuildArgs) -> Result<ExitCode> {
    let (a, save) = match a.use_config.clone() {
        Some(named) => {
            let (merged, file, path) = with_config(a, named)?;
            (merged, Some((file, path)))
        }
        None => (a, None),
    };
    let mut req = request(&a)?;
    if let Some((f, path)) = save {
        f.save_file(&path)?;
    }
    req.progress = crate::progress::enabled(g.quiet);
    let console = Console { quiet: g.quiet };
    let result = match s2i::build(&req, &console) {
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
    if let Some(path) = &a.digest_file {
        let digest = result.pushed.as_ref().map_or(&result.digest, |p| &p.digest);
        super::write_digest_file(path, &digest.to_string())?;
    }
    let name = result.image.clone().unwrap_or_else(|| "(untagged)".into());
    match g.output {
        OutputFormat::Json => println!("{}", serde_json::to_string(&result)?),
        OutputFormat::Text if g.quiet => println!("{}", result.digest),
        OutputFormat::Text => {
            println!("Build completed: {name} {}", result.digest);
            for p in &result.platforms {
                println!("  {} {}", p.platform, p.digest);
            }
            if let Some(p) = &result.pushed {
                println!("Pushed: {} {}", p.reference, p.digest);
            }
        }
    }
    if a.run {
        let image = result.image.clone().unwrap_or_else(|| result.digest.to_string());
        let image = image.trim_start_matches("docker://").to_string();
        let req = super::run::request(image, None, Vec::new(), a.publish, a.budget.budget(), crate::sandbox::ServeLimits::default())?;
        let code = crate::run::run_image(&req, &super::Passthrough { quiet: g.quiet })?;
        return Ok(ExitCode::from((code & 0xff) as u8));
    }
    Ok(ExitCode::SUCCESS)
}
