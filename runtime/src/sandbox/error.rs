//! Errors a caller branches on: refused hooks, budgets, traps.

use std::fmt;

/// Which budget a hook ran out of. Log bytes are not here: that budget truncates, it never ends a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetKind {
    Memory,
    Time,
    Disk,
    SpawnCount,
    SpawnDepth,
    /// The host ran out of file descriptors while the run held them, so its disk could not be
    /// measured: the run is stopped rather than let the disk budget go blind.
    OpenFiles,
    /// Not a limit: the run's [`super::budget::CancelToken`] was tripped.
    Cancelled,
}

impl fmt::Display for BudgetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BudgetKind::Memory => "memory",
            BudgetKind::Time => "time",
            BudgetKind::Disk => "disk",
            BudgetKind::SpawnCount => "spawn count",
            BudgetKind::SpawnDepth => "spawn depth",
            BudgetKind::OpenFiles => "open files",
            BudgetKind::Cancelled => "cancel",
        })
    }
}

/// A fatal budget was exceeded; `limit` is already in the CLI's spelling ("256MiB", "3s").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", exceeded_message(*.which, .limit))]
pub struct BudgetExceeded {
    pub which: BudgetKind,
    pub limit: String,
}

fn exceeded_message(which: BudgetKind, limit: &str) -> String {
    match which {
        BudgetKind::Cancelled => "hook was cancelled".into(),
        BudgetKind::OpenFiles => format!(
            "hook holds so many open files that ws2i ran out of file descriptors ({limit}) and could not measure its disk use"
        ),
        _ => format!("hook exceeded its {which} budget ({limit})"),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{path} is {found}, not WebAssembly: hooks must be WebAssembly (a WASI core module or component)")]
    NotWasm { path: String, found: String },
    #[error("hook {path} not found in the rootfs")]
    NotFound { path: String },
    #[error(transparent)]
    Budget(#[from] BudgetExceeded),
    #[error("hook {path} trapped: {message}")]
    Trap { path: String, message: String },
    #[error("hook {path} could not be compiled: {message}")]
    Compile { path: String, message: String },
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("{0}")]
    Setup(String),
}

impl SandboxError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        SandboxError::Io { context: context.into(), source }
    }
}
