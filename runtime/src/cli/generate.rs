//! `ws2i generate job|tekton-task|shipwright-strategy SOURCE BUILDER TAG [build flags]`: the
//! arguments of `ws2i build`, checked as it checks them, printed as the engine's manifests.
//! `ws2i generate tekton-pipeline -f FILE --registry HOST`: BuildConfigs as a Tekton Pipeline.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Subcommand;

use super::build::BuildArgs;
use super::{Global, OutputFormat};
use crate::generate::{self, tekton_pipeline, BuildStep, Engine};

/// The image of `scripts/ws2i-image`.
const DEFAULT_IMAGE: &str = concat!("ws2i/ws2i:", env!("CARGO_PKG_VERSION"));

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub engine: EngineCommand,
}

#[derive(Subcommand, Debug)]
pub enum EngineCommand {
    /// A Kubernetes Job (batch/v1) that runs the build.
    Job(StepArgs),
    /// A Tekton Task (tekton.dev/v1) with one ws2i step, and the TaskRun of the build.
    TektonTask(StepArgs),
    /// A Shipwright ClusterBuildStrategy (shipwright.io/v1beta1) of one step, a Build and a BuildRun.
    ShipwrightStrategy(StepArgs),
    /// OKD BuildConfigs (as `ws2i apply` reads them) as a Tekton Pipeline: one task per
    /// BuildConfig, in the order their images chain, with a ConfigMap and a PipelineRun.
    TektonPipeline(PipelineArgs),
}

#[derive(clap::Args, Debug)]
pub struct PipelineArgs {
    /// A file, or a directory of *.yaml, *.yml, *.json (as `ws2i apply -f`).
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// HOST[:PORT][/PREFIX] where the streams' images are pushed and pulled
    /// (REGISTRY/NAMESPACE/STREAM:TAG, as OKD's integrated registry lays them out).
    #[arg(long)]
    pub registry: String,
    /// Name of the Pipeline.
    #[arg(long, default_value = "ws2i-pipeline")]
    pub name: String,
    /// The ws2i image the steps run (scripts/ws2i-image builds it).
    #[arg(long = "ws2i-image", value_name = "IMAGE", default_value = DEFAULT_IMAGE)]
    pub ws2i_image: String,
}

#[derive(clap::Args, Debug)]
pub struct StepArgs {
    /// Name of the generated objects (default: the last component of TAG's repository).
    #[arg(long)]
    pub name: Option<String>,
    /// The ws2i image the step runs (scripts/ws2i-image builds it).
    #[arg(long = "ws2i-image", value_name = "IMAGE", default_value = DEFAULT_IMAGE)]
    pub ws2i_image: String,
    /// The arguments of `ws2i build`, unchanged.
    #[command(flatten)]
    pub build: BuildArgs,
}

/// Flags of `ws2i build` the manifest sets itself (`--push`) or carries apart (SOURCE's ref and
/// context dir): never passed on as typed.
const CARRIED: [&str; 3] = ["push", "ref", "context-dir"];

/// Flags that make no sense in a pod, with what to do instead.
const REFUSED: [(&str, &str); 5] = [
    ("use-config", "give the arguments themselves"),
    ("run", "a build step does not run its result"),
    ("publish", "a build step does not run its result"),
    ("creds", "a password does not belong in a manifest: mount a docker config.json and set DOCKER_CONFIG"),
    ("digest-file", "the manifest writes the digest where its engine wants it"),
];

pub fn run(g: &Global, a: GenerateArgs) -> Result<ExitCode> {
    let (engine, sub, args) = match a.engine {
        EngineCommand::Job(a) => (Engine::Job, "job", a),
        EngineCommand::TektonTask(a) => (Engine::TektonTask, "tekton-task", a),
        EngineCommand::ShipwrightStrategy(a) => (Engine::ShipwrightStrategy, "shipwright-strategy", a),
        EngineCommand::TektonPipeline(a) => return pipeline(g, a),
    };
    let flags = typed_build_flags(sub)?;
    let req = super::build::request(&args.build)?;
    let step = BuildStep::from_request(&req, flags, args.name.as_deref(), &args.ws2i_image)?;
    print_docs(g, &step.manifests(engine))
}

fn pipeline(g: &Global, a: PipelineArgs) -> Result<ExitCode> {
    let mut loaded = crate::pipeline::load::Loaded::default();
    for f in &a.files {
        let l = crate::pipeline::load::load_path(f)?;
        loaded.objects.extend(l.objects);
        loaded.warnings.extend(l.warnings);
    }
    let opts = tekton_pipeline::PipelineOptions {
        name: a.name,
        registry: a.registry,
        image: a.ws2i_image,
    };
    let (docs, warnings) = tekton_pipeline::manifests(&loaded, &opts)?;
    for w in loaded.warnings.iter().chain(&warnings) {
        eprintln!("warning: {w}");
    }
    print_docs(g, &docs)
}

fn print_docs(g: &Global, docs: &[serde_json::Value]) -> Result<ExitCode> {
    let text = match g.output {
        OutputFormat::Json => generate::to_json(docs)?,
        OutputFormat::Text => generate::to_yaml(docs)?,
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// The build flags given on this command line, as `--long=value` / `--switch`, in the order
/// `ws2i build` declares them. Works on clap's view of the arguments (as `--use-config` does),
/// so every flag of [`BuildArgs`] is passed on without being listed here.
fn typed_build_flags(sub: &str) -> Result<Vec<String>> {
    use clap::parser::ValueSource;
    use clap::{Args as _, CommandFactory as _};

    let all = super::Cli::command()
        .try_get_matches_from(std::env::args_os())
        .context("re-reading the command line")?;
    let m = all
        .subcommand_matches("generate")
        .and_then(|g| g.subcommand_matches(sub))
        .ok_or_else(|| anyhow::anyhow!("not a `generate {sub}` command line"))?;
    let mut flags = Vec::new();
    for arg in BuildArgs::augment_args(clap::Command::new("build")).get_arguments() {
        let (Some(long), id) = (arg.get_long(), arg.get_id().as_str()) else {
            continue; // SOURCE, BUILDER, TAG: the request carries them
        };
        if m.value_source(id) != Some(ValueSource::CommandLine) || CARRIED.contains(&long) {
            continue;
        }
        if let Some((_, instead)) = REFUSED.iter().find(|(f, _)| *f == long) {
            bail!("--{long} is not for a build step: {instead}");
        }
        if !arg.get_action().takes_values() {
            flags.push(format!("--{long}"));
        } else if let Some(raw) = m.get_raw(id) {
            for v in raw {
                let v = v.to_str().ok_or_else(|| {
                    anyhow::anyhow!(
                        "--{long}: the value is not UTF-8, which a manifest cannot hold"
                    )
                })?;
                flags.push(format!("--{long}={v}"));
            }
        }
    }
    Ok(flags)
}
