//! `ws2i rebuild IMAGE [NEWTAG]`: build again from an image's S2I labels.

use std::process::ExitCode;

use anyhow::{Context, Result};

use super::{Global, OutputFormat};
use crate::s2i::{self, BuildError};
use crate::image::reference::NameTag;
use crate::sandbox;
use crate::image::store::Store;

#[derive(clap::Args, Debug)]
pub struct RebuildArgs {
    /// An image in the local store built by ws2i.
    pub image: String,
    /// Tag for the result (default: IMAGE).
    pub new_tag: Option<String>,
    /// Build from this source instead of the recorded one; needed when the recorded one is on
    /// this machine (a path or file:// repository), which an image's label alone cannot grant.
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,
    /// Fixed mtimes and created time, so the same inputs give the same digest.
    #[arg(long)]
    pub reproducible: bool,
    /// The fixed time of --reproducible (implies it).
    #[arg(long = "source-date-epoch", value_name = "SECONDS", env = "SOURCE_DATE_EPOCH")]
    pub source_date_epoch: Option<u64>,
    #[command(flatten)]
    pub budget: super::budget::BudgetArgs,
}




pub fn run(g: &Global, a: RebuildArgs) -> Result<ExitCode> {
    let store = Store::open(Store::default_root()?).context("opening the local image store")?;
    let tag = a
        .new_tag
        .as_deref()
        .map(|t| {
            t.parse::<NameTag>()
                .with_context(|| format!("invalid NEWTAG {t:?}"))
        })
        .transpose()?;
    let mut req =
        crate::s2i::rebuild::rebuild_request(&store, &a.image, tag, a.source.as_deref(), sandbox::default_cache_dir())?;
    req.source_date_epoch = a.source_date_epoch.or(a.reproducible.then_some(0));
    req.budget = a.budget.budget();
    req.progress = crate::progress::enabled(g.quiet);
    let result = match s2i::build(&req, &super::Console { quiet: g.quiet }) {
        Ok(r) => r,
        Err(
            e @ (BuildError::AssembleFailed { exit_code }
            | BuildError::AssembleRuntimeFailed { exit_code }),
        ) => {
            eprintln!("ws2i: error: rebuild failed: {e}");
            return Ok(ExitCode::from(
                u8::try_from(exit_code)
                    .ok()
                    .filter(|c| *c != 0)
                    .unwrap_or(1),
            ));
        }
        Err(e) => return Err(anyhow::Error::new(e).context("rebuild failed")),
    };
    let name = result.image.clone().unwrap_or_else(|| "(untagged)".into());
    match g.output {
        OutputFormat::Json => println!("{}", serde_json::to_string(&result)?),
        OutputFormat::Text if g.quiet => println!("{}", result.digest),
        OutputFormat::Text => println!("Build completed: {name} {}", result.digest),
    }
    Ok(ExitCode::SUCCESS)
}
