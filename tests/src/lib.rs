//! The harness shared by the end-to-end tests: the real `ws2i` binary, the
//! real guest hooks, a real registry.

pub mod guests;
pub mod registry;
