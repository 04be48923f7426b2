use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum ImageCommand {
    /// List images in the local store.
    Images,
}

pub fn run(_g: &super::Global, _c: ImageCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
