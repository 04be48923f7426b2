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
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// With `-p`: what keeps slow, idle or greedy clients from taking the server from the others.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// A request's head must arrive within this, or the connection is closed.
    #[arg(long = "header-timeout", value_name = "DURATION", default_value = "10s")]
    pub header_timeout: crate::HumanDuration,
    /// Each piece of a request body must arrive within this of the previous one.
    #[arg(long = "body-timeout", value_name = "DURATION", default_value = "10s")]
    pub body_timeout: crate::HumanDuration,
    /// Open connections at most; at the cap idle keep-alive ones are closed to make room.
    #[arg(long = "max-connections", value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Memory of all requests at once: fewer run together when --memory × 16 exceeds it.
    #[arg(long = "serve-memory", value_name = "SIZE", default_value = "8GiB")]
    pub serve_memory: crate::Size,
}

impl ServeArgs {
    pub fn limits(&self) -> sandbox::ServeLimits {
        sandbox::ServeLimits {
            header_timeout: self.header_timeout.0,
            body_idle_timeout: self.body_timeout.0,
            max_connections: self.max_connections as usize,
            memory: self.serve_memory,
        }
    }
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

pub(crate) fn request(
    image: String,
    args: Option<Vec<String>>,
    env: Vec<(String, String)>,
    publish: Option<Publish>,
    budget: sandbox::Budget,
    serve_limits: sandbox::ServeLimits,
) -> anyhow::Result<RunRequest> {
    Ok(RunRequest {
        image,
        args,
        env,
        publish,
        store_root: Store::default_root()?,
        cache_dir: sandbox::default_cache_dir(),
        budget,
        serve_limits,
        platform: None,
    })
}

pub fn run(g: &Global, a: RunArgs) -> anyhow::Result<ExitCode> {
    let args = (!a.args.is_empty()).then_some(a.args);
    let mut req = request(a.image, args, a.env, a.publish, a.budget.budget(), a.serve.limits())?;
    req.platform = a.platform.as_deref().map(crate::image::Platform::parse).transpose()?;
    let code = run::run_image(&req, &super::Passthrough { quiet: g.quiet })?;
    Ok(ExitCode::from((code & 0xff) as u8))
}
