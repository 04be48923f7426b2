use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ExecArgs {}

pub fn run(_g: &super::Global, _a: ExecArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("exec: not implemented yet")
}
