//! Build-log output in S2I's style. Everything goes to stderr so that it can
//! never corrupt `save-artifacts`' tar stream on stdout; ws2i streams both to
//! the build log line by line.

use std::fmt;
use std::io::Write;

#[doc(hidden)]
pub fn emit(prefix: &str, args: fmt::Arguments<'_>) {
    // A closed log is not a reason to fail a build step: ignore write errors.
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{prefix}{args}");
}

/// `---> Installing application source...`: the start of a build step.
#[macro_export]
macro_rules! step {
    ($($arg:tt)*) => { $crate::log::emit("---> ", format_args!($($arg)*)) };
}

/// A detail line under the current step.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::emit("", format_args!($($arg)*)) };
}

/// A warning: `WARNING: ...`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::emit("WARNING: ", format_args!($($arg)*)) };
}
