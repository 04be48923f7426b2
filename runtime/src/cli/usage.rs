//! `ws2i usage BUILDER`: print how to use a builder (its usage hook's output).

use std::process::ExitCode;

use anyhow::Result;

use super::Global;
use crate::sandbox;
use crate::image::store::Store;
use crate::s2i::usage::{self, UsageRequest};

#[derive(clap::Args, Debug)]
pub struct UsageArgs {
    /// The builder image: NAME[:TAG] or NAME@DIGEST in the local store, or docker://HOST/REPO[:TAG].
    pub builder: String,
    #[command(flatten)]
    pub pull: super::build::PullArgs,
    /// Where to find the usage script instead of the builder's scripts-url label.
    #[arg(long = "scripts-url", short = 's', value_name = "URL")]
    pub scripts_url: Option<String>,
    #[command(flatten)]
    pub budget: super::budget::BudgetArgs,
}

/// The hook's stdout is the command's stdout; its stderr stays on stderr.
pub fn run(g: &Global, a: UsageArgs) -> Result<ExitCode> {
    let req = UsageRequest {
        builder: a.builder,
        scripts_url: a.scripts_url,
        store_root: Store::default_root()?,
        cache_dir: sandbox::default_cache_dir(),
        budget: a.budget.budget(),
        pull_policy: a.pull.pull_policy.into(),
        registry: a.pull.registry()?,
        progress: crate::progress::enabled(g.quiet),
    };
    let code = usage::usage(&req, &super::Passthrough { quiet: g.quiet })?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
