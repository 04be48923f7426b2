//! Images: references in skopeo's transport syntax, manifests, indexes and configs, the embedded
//! local store (an OCI image layout), registries, and file transports (`oci:`, archives), with
//! one `copy` between any two (docs/images.md).
//!
//! Owns everything about an image except what is inside its layers. Uses [`crate::layer`] (the
//! store hands layer blobs to the unpacker) and [`crate::sandbox`]'s `WasmKind` (a wasm image's
//! platform); never the S2I build, `bud`, `run` or the pipeline above it.
//!
//! - [`reference`]: `ImageRef` and its transports, `NameTag`, `DockerRef`;
//! - [`manifest`] (re-exported here): manifests, indexes, configs, `ImageBuilder`, `Platform`;
//! - [`store`]: the local store and `oci:` layouts;
//! - [`endpoint`]: `ImageSource`/`ImageDestination`, what every transport implements;
//! - [`registry`]: the registry client, an endpoint; [`auth`]: its credentials;
//! - [`transport`]: opens the endpoint a reference names, `copy`, `inspect`.

pub mod auth;
pub mod endpoint;
pub mod manifest;
pub mod reference;
pub mod registry;
pub mod store;
pub mod transport;

pub use endpoint::{ImageDestination, ImageSource};
pub use manifest::*;
pub use reference::{DockerRef, ImageRef, LocalRef, NameTag, RefError, RemoteTarget};
pub use store::{Layout, ResolvedImage, Store};
