//! Locating and building guest hooks (see guest-scripts/build).
