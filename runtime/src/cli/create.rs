//! `ws2i create NAME DIR`: scaffold a builder project.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use super::{Global, OutputFormat};
use crate::s2i::create::{self, BuilderName};

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// The builder's name: its cargo package and image (NAME:latest).
    pub name: BuilderName,
    /// Directory to write the project into (created if missing; existing files are kept).
    pub dir: PathBuf,
    /// ws2i-sdk's directory (it is not on crates.io); default: the sdk/ next to ws2i's sources.
    #[arg(long = "sdk-path", value_name = "DIR")]
    pub sdk_path: Option<PathBuf>,
}

pub fn run(g: &Global, a: CreateArgs) -> Result<ExitCode> {
    let sdk = a.sdk_path.unwrap_or_else(create::default_sdk_path);
    let done = create::create(&a.name, &a.dir, &sdk)?;
    match g.output {
        OutputFormat::Json => println!("{}", serde_json::to_string(&done)?),
        OutputFormat::Text => {
            if !g.quiet {
                for f in &done.skipped {
                    eprintln!("ws2i: kept existing {f}");
                }
            }
            println!(
                "Created builder {} in {} ({} files); build and test it with {}/build",
                a.name,
                a.dir.display(),
                done.written.len(),
                a.dir.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
