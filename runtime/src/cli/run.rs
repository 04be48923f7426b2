//! `ws2i run IMAGE [-- ARGS…]`: run an image's WebAssembly command, or serve it with `-p`.

use std::net::SocketAddr;
use std::process::ExitCode;

use super::Global;
use crate::run::{self, Publish, RunLog, RunRequest};
use crate::sandbox;
use crate::image::store::Store;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The image in the local store (NAME[:TAG] or NAME@DIGEST).
    pub image: String,
    /// Arguments replacing the image's Cmd (after `--`).
    #[arg(last = true)]
    pub args: Vec<String>,
    /// Environment variable over the image's Env (repeatable).
    #[arg(long = "env", short = 'e', value_name = "K=V", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Run this platform's image of a multi-platform image, OS/ARCH[/VARIANT] (default: the
    /// host's); one that this host cannot run natively is refused.
    #[arg(long)]
    pub platform: Option<String>,
    /// Serve a wasi:http proxy component on [HOST_IP:]HOST_PORT:PORT (HOST_IP defaults to
    /// 127.0.0.1; HOST_PORT 0 picks a free port). --memory and --timeout then apply per request.
    #[arg(long = "publish", short = 'p', value_name = "[HOST_IP:]HOST_PORT:PORT")]
    pub publish: Option<Publish>,
    #[command(flatten)]
    pub budget: super::budget::BudgetArgs,
}

pub(crate) fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.into(), v.into())),
        _ => Err(format!("expected K=V, got {s:?}")),
    }
}

impl RunLog for super::Passthrough {
    fn serving(&self, image: &str, addr: SocketAddr) {
        // Always printed: scripts and tests wait for this line.
        eprintln!("Serving {image} on http://{addr}");
    }
}

pub(crate) fn request(image: String, args: Option<Vec<String>>, env: Vec<(String, String)>, publish: Option<Publish>, budget: sandbox::Budget) -> anyhow::Result<RunRequest> {
    Ok(RunRequest {
        image,
        args,
        env,
        publish,
        store_root: Store::default_root()?,
        cache_dir: sandbox::default_cache_dir(),
        budget,
        platform: None,
    })
}

pub fn run(g: &Global, a: RunArgs) -> anyhow::Result<ExitCode> {
    let args = (!a.args.is_empty()).then_some(a.args);
    let mut req = request(a.image, args, a.env, a.publish, a.budget.budget())?;
    req.platform = a.platform.as_deref().map(crate::image::Platform::parse).transpose()?;
    let code = run::run_image(&req, &super::Passthrough { quiet: g.quiet })?;
    Ok(ExitCode::from((code & 0xff) as u8))
}
