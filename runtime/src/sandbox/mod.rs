//! Run one builder hook — a WASI core module or component found in a rootfs directory — in
//! wasmtime, seeing only that rootfs (plus explicit mounts), with budgets on memory, wall time,
//! bytes written, log bytes and spawns. See docs/sandbox.md for the guarantees.
//!
//! Each run gets a dedicated thread (the sync wasmtime API, so a `ws2i.spawn` host import can run
//! a nested module on the same thread); the caller's thread receives the log lines meanwhile.

mod budget;
mod ctx;
mod detect;
mod engine;
mod error;
mod host;
mod http;
mod log;
mod run;
mod spawn_all;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

pub use budget::{default_jobs, Budget, CancelToken};
pub use detect::{detect, WasmKind};
pub use engine::{default_cache_dir, CacheUse};
pub use error::{BudgetExceeded, BudgetKind, SandboxError};
pub use http::{HttpServe, ServeLimits, ProgramKind, ServeStats};
pub use log::{LogSink, Stream};

use budget::RunState;
use engine::Engines;
use log::{Event, LogBudget, Sink};
use ctx::{Invocation, RunCtx, RunError};

/// An extra directory the hook sees (`--inject`, `--volume`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub host: PathBuf,
    /// Absolute guest path, e.g. `/tmp/artifacts`.
    pub guest: String,
    pub read_only: bool,
}

/// Where the hook's stdout goes. Stderr always goes to the log.
pub enum Stdout {
    /// Line by line to the `LogSink`.
    Log,
    /// Raw bytes, streamed to the writer as written (save-artifacts' tar stream).
    Capture(Box<dyn Write + Send>),
}

/// One hook to run.
pub struct Hook {
    /// Host directory the hook sees as `/`.
    pub rootfs: PathBuf,
    /// Absolute guest path of the module, e.g. `/usr/libexec/s2i/assemble`.
    pub program: String,
    /// argv after argv[0] (argv[0] is `program`).
    pub args: Vec<String>,
    /// The whole environment (nothing is inherited from the host).
    pub env: Vec<(String, String)>,
    /// Working directory (guest path); also `PWD` unless `env` sets it.
    pub cwd: String,
    pub mounts: Vec<Mount>,
    pub stdout: Stdout,
    pub budget: Budget,
    /// `Some(SOURCE_DATE_EPOCH)`: fixed clocks and seeded randomness.
    pub reproducible: Option<u64>,
    /// The rootfs is preopened read-only (and `ws2i.chmod` refuses it): a hook that only
    /// reads, like save-artifacts, can then run on a shared cached rootfs without a copy.
    pub read_only_rootfs: bool,
}

impl Hook {
    /// A hook with defaults: no args, empty env, cwd `/`, stdout to the log, default budgets.
    pub fn new(rootfs: impl Into<PathBuf>, program: impl Into<String>) -> Self {
        Hook {
            rootfs: rootfs.into(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: "/".into(),
            mounts: Vec::new(),
            stdout: Stdout::Log,
            budget: Budget::default(),
            reproducible: None,
            read_only_rootfs: false,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Modules (hook and spawned children) found compiled, in memory or in the disk cache.
    pub cache_hits: u32,
    /// Modules compiled during this run.
    pub cache_misses: u32,
    pub wall_time: Duration,
    /// Bytes of files created or changed under the writable trees (the disk budget's measure).
    pub bytes_written: u64,
    /// Bytes of log produced (including any dropped past the log budget).
    pub log_bytes: u64,
    pub log_truncated: bool,
    pub spawns: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub exit_code: i32,
    pub stats: RunStats,
}

pub struct SandboxConfig {
    /// ws2i's private cache of compiled modules; see [`default_cache_dir`].
    pub cache_dir: PathBuf,
}

/// The engine and caches; cheap to clone and share between threads.
#[derive(Clone)]
pub struct Sandbox {
    engines: Arc<Engines>,
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        Ok(Sandbox { engines: Engines::new(config.cache_dir)? })
    }

    /// Run `hook` to completion, streaming its output to `log` from the calling thread.
    pub fn run(&self, hook: Hook, log: &dyn LogSink) -> Result<Outcome, SandboxError> {
        // Bounded: a hook that writes faster than `log` takes lines waits (log.rs).
        let (tx, rx) = mpsc::sync_channel::<Event>(log::QUEUE_BATCHES);
        let (done_tx, done_rx) = mpsc::channel();
        let engines = self.engines.clone();
        let ltx = tx.clone();
        // Epoch checks cannot reach a guest blocked inside a host call (a long sleep in
        // poll_oneoff); past the deadline plus a grace second the run is abandoned: its thread
        // stays parked until the host call returns, then traps at its first epoch check.
        let budget = hook.budget.clone();
        let watchdog = Instant::now() + budget.timeout + Duration::from_secs(1);
        let worker = std::thread::Builder::new()
            .name("ws2i-hook".into())
            .stack_size(run::MODULE_STACK)
            .spawn(move || {
                let r = run_hook(engines, hook, ltx.clone());
                let _ = done_tx.send(r);
                let _ = ltx.send(Event::Done);
            })
            .map_err(|e| SandboxError::io("cannot start the hook thread", e))?;
        drop(tx);
        // Lines arrive until the worker reports; poll both so a stray sender cannot hang us.
        let result = loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(Event::Done) => {
                    break done_rx.recv().unwrap_or_else(|_| Err(SandboxError::Setup("the hook thread panicked".into())))
                }
                Ok(ev) => deliver(log, ev),
                Err(_) => {}
            }
            if let Ok(r) = done_rx.try_recv() {
                break r;
            }
            if Instant::now() >= watchdog {
                break Err(SandboxError::Budget(budget.exceeded(BudgetKind::Time)));
            }
            if worker.is_finished() {
                break done_rx.try_recv().unwrap_or_else(|_| Err(SandboxError::Setup("the hook thread panicked".into())));
            }
        };
        while let Ok(ev) = rx.try_recv() {
            deliver(log, ev);
        }
        if worker.is_finished() {
            let _ = worker.join();
        }
        result
    }
}

fn deliver(log: &dyn LogSink, ev: Event) {
    match ev {
        Event::Lines(s, lines) => lines.iter().for_each(|l| log.line(s, l)),
        Event::Notice(m) => log.notice(&m),
        Event::Done => {}
    }
}

fn run_hook(engines: Arc<Engines>, hook: Hook, events: mpsc::SyncSender<Event>) -> Result<Outcome, SandboxError> {
    let started = Instant::now();
    let since = SystemTime::now() - Duration::from_secs(1);
    if !hook.program.starts_with('/') {
        return Err(SandboxError::Setup(format!("hook path {} must be absolute (a path inside the rootfs)", hook.program)));
    }
    if !hook.rootfs.is_dir() {
        return Err(SandboxError::Setup(format!("rootfs {} is not a directory", hook.rootfs.display())));
    }
    let log = Arc::new(LogBudget {
        limit: hook.budget.log.bytes(),
        used: AtomicU64::new(0),
        truncated: AtomicBool::new(false),
        events,
    });
    // Only writable trees can grow; walking a read-only rootfs would be wasted work.
    let mut roots = if hook.read_only_rootfs { Vec::new() } else { vec![hook.rootfs.clone()] };
    roots.extend(hook.mounts.iter().filter(|m| !m.read_only).map(|m| m.host.clone()));
    let state = RunState::new(hook.budget.clone());
    let ctx = Arc::new(RunCtx {
        engines,
        state: state.clone(),
        log: log.clone(),
        rootfs: hook.rootfs.clone(),
        rootfs_read_only: hook.read_only_rootfs,
        mounts: hook.mounts.clone(),
        reproducible: hook.reproducible,
        cache_uses: Mutex::new(Vec::new()),
        spawned: AtomicU32::new(0),
    });
    let watcher = budget::spawn_disk_watcher(state.clone(), roots.clone());
    let stdout = match hook.stdout {
        Stdout::Log => Sink::lines(Stream::Stdout, log.clone()),
        Stdout::Capture(w) => Sink::bytes(w),
    };
    let mut args = vec![hook.program.clone()];
    args.extend(hook.args);
    let inv = Invocation { program: hook.program.clone(), args, env: hook.env, cwd: hook.cwd, stdout, depth: 0 };
    let result = run::run_one(&ctx, inv);
    state.done.store(true, Ordering::Relaxed);
    watcher.thread().unpark();
    let _ = watcher.join();
    let written = budget::changed_bytes_all(&roots, since);
    let code = match result {
        Ok(code) => code,
        Err(RunError::Refused(e)) => return Err(e),
        Err(RunError::Budget(b)) => return Err(SandboxError::Budget(b)),
        Err(RunError::Trap(message)) => return Err(SandboxError::Trap { path: hook.program, message }),
    };
    // A write that finished between two watcher passes is still charged.
    let Ok(written) = written else {
        return Err(SandboxError::Budget(state.budget.exceeded(BudgetKind::OpenFiles)));
    };
    if written > state.budget.disk.bytes() {
        return Err(SandboxError::Budget(state.budget.exceeded(BudgetKind::Disk)));
    }
    let uses = ctx.cache_uses.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let stats = RunStats {
        cache_hits: uses.iter().filter(|u| **u != CacheUse::Compiled).count() as u32,
        cache_misses: uses.iter().filter(|u| **u == CacheUse::Compiled).count() as u32,
        wall_time: started.elapsed(),
        bytes_written: written,
        log_bytes: log.used.load(Ordering::Relaxed),
        log_truncated: log.truncated.load(Ordering::Relaxed),
        spawns: ctx.spawned.load(Ordering::Relaxed),
    };
    Ok(Outcome { exit_code: code, stats })
}
