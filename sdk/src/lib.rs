//! The SDK: see docs/hooks.md
