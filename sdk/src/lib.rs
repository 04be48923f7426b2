//! Write [ws2i](https://github.com/) builder hooks — `assemble`, `run`,
//! `save-artifacts`, `usage` — in Rust, compiled to `wasm32-wasip1`.
//!
//! A hook is an ordinary WASI program: it reads the source from
//! [`source_dir`] (`$DESTINATION/src`), restores [`artifacts`] of a previous
//! build if there are any, writes the application into the rootfs, and exits
//! 0 on success. The contract, language-neutral, is `docs/hooks.md`; this
//! crate wraps it:
//!
//! - paths and environment: [`destination`], [`source_dir`], [`artifacts_dir`],
//!   [`artifacts`], [`env::var`], [`env::flag`], [`env::list`];
//! - S2I-style log lines: [`step!`], [`info!`], [`warn!`] (on stderr);
//! - files: [`copy_tree`] (`cp -Rf src/. dst` keeping modes and symlinks),
//!   [`set_mode`], [`mode`], [`make_executable`], [`symlink`];
//! - other modules of the rootfs: [`Command`] over the `ws2i.spawn` import;
//! - `save-artifacts`: [`ArtifactsTar`], a tar stream on stdout;
//! - `usage`: [`usage`]; and [`run`] to turn an error into S2I's exit 1.
//!
//! # A complete `assemble`
//!
//! ```no_run
//! use std::io;
//! use ws2i_sdk::{copy_tree, make_executable, step, info, Command};
//!
//! fn assemble() -> io::Result<()> {
//!     let app = std::path::Path::new("/opt/app-root/src");
//!     if let Some(cache) = ws2i_sdk::artifacts() {
//!         step!("Restoring build artifacts...");
//!         copy_tree(&cache, "/opt/app-root/cache")?;
//!     }
//!     step!("Installing application source...");
//!     let stats = copy_tree(ws2i_sdk::source_dir(), app)?;
//!     info!("{} files, {} bytes", stats.files, stats.bytes);
//!
//!     step!("Building application from source...");
//!     Command::new("/usr/bin/compiler.wasm")
//!         .args(["-o", "/opt/app-root/bin/app", "main.src"])
//!         .current_dir(app)
//!         .run()?;
//!     make_executable("/opt/app-root/bin/app")?;
//!     Ok(())
//! }
//!
//! fn main() {
//!     ws2i_sdk::run(assemble)
//! }
//! ```
//!
//! Built natively (for unit tests of a hook's logic), the file helpers use
//! the OS directly on Unix; [`Command`] needs ws2i and reports
//! [`std::io::ErrorKind::Unsupported`].

pub mod abi;
mod artifacts;
pub mod env;
pub mod fs;
#[doc(hidden)]
pub mod log;
mod process;

pub use artifacts::ArtifactsTar;
pub use env::{
    artifacts, artifacts_dir, destination, source_dir, DEFAULT_DESTINATION, SCRIPTS_DIR,
};
pub use fs::{copy_tree, make_executable, mode, set_mode, symlink, CopyStats};
pub use process::{Command, EncodedSpawn, ExitStatus};

use std::fmt::Display;

/// Runs a hook's body: on error, prints `error: ...` to the log and exits 1,
/// which makes ws2i fail the build (and write no image).
pub fn run<E: Display>(hook: impl FnOnce() -> Result<(), E>) -> ! {
    match hook() {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            log::emit("error: ", format_args!("{e}"));
            std::process::exit(1)
        }
    }
}

/// Prints a builder's usage text (the `usage` hook) to stdout, as S2I's
/// `usage` scripts do; ws2i shows it for `ws2i usage BUILDER`.
pub fn usage(text: &str) {
    println!("{}", text.trim_end());
}
