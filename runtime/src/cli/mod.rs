//! The `ws2i` command line: parses arguments, calls the library, prints.
//! No logic lives here that a CI system embedding the library would need.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod bud;
mod budget;
mod create;
mod build;
mod exec;
mod generate;
mod images;
mod pipeline;
mod rebuild;
mod run;
mod usage;

#[derive(Parser, Debug)]
#[command(name = "ws2i", version, about = "Source-to-Image builds with WebAssembly builder hooks: no daemon, no root")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command understands.
#[derive(clap::Args, Debug, Clone)]
pub struct Global {
    /// Print only errors (and the result a script would need).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Output format of results.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Verbosity of ws2i's own log, 0 (default) to 5, as in s2i.
    #[arg(long, global = true, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=5))]
    pub loglevel: u8,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build an image from SOURCE with a builder image, the S2I way (hooks run as WebAssembly).
    Build(Box<build::BuildArgs>),
    /// Print the manifest that runs a build on Kubernetes, Tekton or Shipwright, unprivileged.
    Generate(generate::GenerateArgs),
    /// Run one hook against a rootfs directory with the build sandbox and budgets.
    Exec(exec::ExecArgs),
    /// Build an image from a Containerfile (no daemon, no native RUN).
    Bud(bud::BudArgs),
    /// Scaffold a builder project: Rust hooks on ws2i-sdk, a Containerfile, a test app.
    Create(create::CreateArgs),
    /// Build again from the S2I labels of an image ws2i built (same source commit and builder).
    Rebuild(rebuild::RebuildArgs),
    /// Run an image's WebAssembly command, or serve its wasi:http component with -p.
    Run(run::RunArgs),
    /// Print how to use a builder image (runs its usage hook).
    Usage(usage::UsageArgs),
    #[command(flatten)]
    Images(images::ImageCommand),
    #[command(flatten)]
    Pipeline(pipeline::PipelineCommand),
}

pub fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so `println!` into a closed pipe (`ws2i inspect … | head -1`)
    // would panic; a command-line tool should end quietly instead, as cat and ls do.
    // SAFETY: called first thing, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    sweep_leftovers(&cli.global);
    let result = match cli.command {
        Command::Build(args) => build::run(&cli.global, *args),
        Command::Exec(args) => exec::run(&cli.global, args),
        Command::Generate(args) => generate::run(&cli.global, args),
        Command::Bud(args) => bud::run(&cli.global, args),
        Command::Create(args) => create::run(&cli.global, args),
        Command::Rebuild(args) => rebuild::run(&cli.global, args),
        Command::Run(args) => run::run(&cli.global, args),
        Command::Usage(args) => usage::run(&cli.global, args),
        Command::Images(cmd) => images::run(&cli.global, cmd),
        Command::Pipeline(cmd) => pipeline::run(&cli.global, cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("ws2i: error: {err:#}");
            ExitCode::from(125)
        }
    }
}

/// Removes what killed ws2i processes left behind: build roots and half-unpacked rootfs in the
/// cache, staging dirs. (The store sweeps its own temp files when it is opened.) A live
/// process's work is never touched: [`crate::scratch`] says how it is told apart.
fn sweep_leftovers(global: &Global) {
    let cache = crate::sandbox::default_cache_dir().join("layers");
    let swept = crate::layer::RootfsCache::sweep(&cache).and_then(|n| Ok(n + crate::s2i::sweep_staging()?));
    match swept {
        Ok(n) if n > 0 && global.loglevel > 0 => eprintln!("ws2i: removed {n} leftovers of killed runs"),
        Ok(_) => {}
        Err(e) if !global.quiet => eprintln!("ws2i: warning: {e:#}"),
        Err(_) => {}
    }
}

/// `--digest-file FILE`: the digest alone, written to a temporary name beside FILE and renamed,
/// so that a reader (a Tekton result, a CI step) never sees half of it.
pub(crate) fn write_digest_file(path: &std::path::Path, digest: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    let name = path.file_name().context("--digest-file names no file")?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    std::fs::write(&tmp, digest)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("writing --digest-file {}", path.display()))
}

/// The log of commands whose stdout carries only their result (the library's [`StderrLog`]).
pub(crate) use crate::s2i::StderrLog as Console;

/// For commands whose output is a hook's (exec, run, usage): the hook's stdout is ws2i's
/// stdout and its stderr stays on stderr; ws2i's own notices go to stderr unless `--quiet`.
pub(crate) struct Passthrough {
    pub quiet: bool,
}

impl crate::sandbox::LogSink for Passthrough {
    fn line(&self, stream: crate::sandbox::Stream, line: &str) {
        use std::io::Write;
        let _ = match stream {
            crate::sandbox::Stream::Stdout => writeln!(std::io::stdout().lock(), "{line}"),
            crate::sandbox::Stream::Stderr => writeln!(std::io::stderr().lock(), "{line}"),
        };
    }
    fn notice(&self, msg: &str) {
        if !self.quiet {
            eprintln!("ws2i: {msg}");
        }
    }
}

#[cfg(test)]
mod tests {
    /// clap checks its definitions (unique short flags, valid `requires`) only when a command
    /// is parsed; this finds a clash in `cargo test` instead of in a user's first run.
    #[test]
    fn command_definitions_are_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
