//! ws2i: Source-to-Image builds in which every builder hook is a WebAssembly
//! (WASI) module run by wasmtime against a capability-restricted root
//! filesystem. This crate is the library a CI system can embed; the `ws2i`
//! binary is a thin shell over it (see `cli`).
//!
//! One folder per concept, in layers; a module uses only those below it
//! (docs/architecture.md has the picture, and `tests::layering` checks it):
//!
//! - [`cli`]: argument parsing and printing, one library call per command;
//! - [`pipeline`]: OKD's BuildConfig, ImageStream and Build objects and triggers, run locally
//!   (above `s2i`, `containerfile` and `image`);
//! - [`s2i`] (`ws2i build`, `usage`, `rebuild`, `create`), [`containerfile`] (`ws2i bud`),
//!   [`run`] (`ws2i run`), [`generate`] (`ws2i generate`: a build as an engine's manifests);
//! - [`source`]: a source (dir or git) staged safely; [`image`]: references, manifests, the
//!   local store, registries, transports;
//! - [`layer`]: unpack, diff and pack layers; [`sandbox`]: run one hook in wasmtime with budgets;
//! - vocabulary every layer may use: [`contract`] (hook names, environment files), [`Digest`],
//!   [`units`], [`progress`], [`scratch`] (temporary names a killed process leaves behind).

pub mod cli;
pub mod containerfile;
pub mod contract;
pub mod digest;
#[doc(hidden)]
pub mod fuzz;
pub mod generate;
pub mod image;
pub mod layer;
pub mod pipeline;
pub mod progress;
pub mod run;
pub mod s2i;
pub mod sandbox;
pub mod scratch;
pub mod source;
pub mod units;

pub use digest::Digest;
pub use units::{HumanDuration, Size};

#[cfg(test)]
mod layering;
