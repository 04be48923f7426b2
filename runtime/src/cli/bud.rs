//! `ws2i bud`: build an image from a Containerfile without a daemon.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::images::TransportFlags;
use super::{Global, OutputFormat};
use crate::containerfile::bud::{self, BudOptions};
use crate::containerfile::BuildOptions;
use crate::image::reference::ImageRef;

use crate::image::store::Store;

#[derive(clap::Args, Debug)]
pub struct BudArgs {
    /// Budgets of each sandboxed exec-form RUN.
    #[command(flatten)]
    pub budget: super::budget::BudgetArgs,
    /// The Containerfile (default: CONTEXT/Containerfile, else CONTEXT/Dockerfile).
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Name of the image: a local NAME[:TAG] in the store, or any destination reference.
    #[arg(short = 't', long = "tag")]
    pub tag: String,
    /// ARG value, NAME=VALUE (repeatable).
    #[arg(long = "build-arg", value_parser = parse_build_arg)]
    pub build_args: Vec<(String, String)>,
    /// Build this stage instead of the last.
    #[arg(long)]
    pub target: Option<String>,
    /// Time stamped into the image and its layers (default 0: reproducible).
    #[arg(long, env = "SOURCE_DATE_EPOCH", default_value_t = 0)]
    pub source_date_epoch: u64,
    #[command(flatten)]
    pub transport: TransportFlags,
    /// The build context directory.
    pub context: PathBuf,
}

fn parse_build_arg(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}



pub fn run(g: &Global, a: BudArgs) -> Result<ExitCode> {
    let destination: ImageRef = a.tag.parse().with_context(|| format!("-t {}", a.tag))?;
    if a.transport.all {
        anyhow::bail!("--all applies to push, pull and copy, not to bud");
    }
    let copy = a.transport.options(g)?;
    let mut opts = BudOptions::new(destination);
    opts.build = BuildOptions {
        build_args: a.build_args.into_iter().collect::<BTreeMap<_, _>>(),
        target: a.target,
    };
    opts.format = copy.format.unwrap_or_default();
    opts.platform = copy.platform;
    opts.registry = copy.registry;
    opts.progress = copy.progress;
    opts.source_date_epoch = a.source_date_epoch;
    opts.budget = a.budget.budget();
    let file = a
        .file
        .unwrap_or_else(|| bud::default_containerfile(&a.context));
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let store = Store::open(Store::default_root()?)?;
    let r = bud::build(
        &store,
        &text,
        &a.context,
        &opts,
        &super::Console { quiet: g.quiet },
    )?;
    if g.output == OutputFormat::Json {
        println!(
            "{}",
            serde_json::json!({"image": r.image, "digest": r.digest})
        );
    } else if g.quiet {
        println!("{}", r.digest);
    } else {
        println!("{} {}", r.image, r.digest);
    }
    Ok(ExitCode::SUCCESS)
}
