//! Does nothing: measures per-hook overhead.
fn main() {}
