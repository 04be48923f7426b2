//! ws2i: Source-to-Image builds in which every builder hook is a WebAssembly
//! (WASI) module run by wasmtime against a capability-restricted root
//! filesystem. This crate is the library a CI system can embed; the `ws2i`
//! binary is a thin shell over it (see `cli`).
//!
//! One module per concept:
//! - [`sandbox`]: run one hook in wasmtime with budgets (memory, time, disk, log, spawns).
//! - [`layer`]: unpack hostile layers safely, diff a rootfs against its base, pack layers reproducibly.
//! - [`reference`], [`image`], [`store`], [`registry`], [`transport`]: image references, manifests and
//!   configs, the embedded local store, registries, and file transports.
//! - [`containerfile`]: the Containerfile subset of `ws2i bud`: parse, plan, execute on a backend.
//! - [`bud`]: `ws2i bud`, the containerfile plan executed on the store, layers and sandbox.
//! - [`cli`]: argument parsing and output, nothing else.

pub mod assemble_user;
pub mod auth;
pub mod bud;
pub mod build;
pub mod cli;
pub mod containerfile;
pub mod create;
pub mod digest;
pub mod envfile;
pub mod generate;
pub mod image;
pub mod layer;
pub mod progress;
pub mod rebuild;
pub mod s2ifile;
pub mod reference;
pub mod registry;
pub mod run;
pub mod sandbox;
pub mod scripts;
pub mod source;
pub mod store;
pub mod transport;
pub mod usage;
pub mod units;

pub use digest::Digest;
pub use units::{HumanDuration, Size};
