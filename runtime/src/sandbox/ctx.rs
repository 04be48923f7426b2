//! What a run and the children it spawns share, and the one program each of them runs.
//! The runner (`run.rs`) and the host imports (`host.rs`) both use these; neither uses the other's
//! internals.

use std::path::PathBuf;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};

use super::budget::RunState;
use super::engine::{CacheUse, Engines};
use super::error::{BudgetExceeded, SandboxError};
use super::log::{LogBudget, Sink};
use super::Mount;

/// Everything a hook and its spawned children share.
pub(crate) struct RunCtx {
    pub engines: Arc<Engines>,
    pub state: Arc<RunState>,
    pub log: Arc<LogBudget>,
    pub rootfs: PathBuf,
    pub rootfs_read_only: bool,
    pub mounts: Vec<Mount>,
    pub reproducible: Option<u64>,
    pub cache_uses: Mutex<Vec<CacheUse>>,
    pub spawned: AtomicU32,
}

/// One program to run: what `Hook` says, or what a `ws2i.spawn` call says.
pub(crate) struct Invocation {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub stdout: Sink,
    pub depth: u32,
}

/// Why a module did not produce an exit code.
pub(crate) enum RunError {
    /// Refused before it ran (not found, not wasm, does not compile, bad setup).
    Refused(SandboxError),
    /// It ran and was stopped by a fatal budget.
    Budget(BudgetExceeded),
    /// It ran and trapped.
    Trap(String),
}

impl From<SandboxError> for RunError {
    fn from(e: SandboxError) -> Self {
        RunError::Refused(e)
    }
}

