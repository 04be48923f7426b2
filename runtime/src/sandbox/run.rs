//! Running one module (core or component) in a fresh store: WASI context, limits, epoch checks.
//! A spawned child goes through the same path with the parent's shared `RunCtx`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Linker, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, I32Exit, ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::budget::RunState;
use super::ctx::{Invocation, RunCtx, RunError};
use super::detect::{detect, WasmKind};
use super::engine::Compiled;
use super::error::{BudgetExceeded, BudgetKind, SandboxError};
use super::host::{self, HostState};
use super::log::{clip, Sink, Stream, MAX_NOTICE};

/// The stack of every thread a module runs on (the hook's and each spawned child's): wasmtime's
/// 512 KiB wasm stack limit plus ample room for the host frames of WASI calls and `ws2i.spawn`.
/// Only touched pages cost memory.
pub(crate) const MODULE_STACK: usize = 8 << 20;

/// One store's share of the run's memory budget. Every linear memory and table of the store
/// is charged to `RunState::mem_used`, which the hook and all its spawned children draw on
/// together, so several memories, big tables or a chain of children cannot multiply the cap.
/// What a store holds is given back when it is dropped.
pub(crate) struct MemLimiter {
    state: Arc<RunState>,
    /// Bytes this store holds in the shared budget.
    held: u64,
    /// The last growth granted, given back if wasmtime then fails to perform it.
    pending: u64,
}

/// Bytes wasmtime spends per table element (a pointer each, as `ResourceLimiter` documents).
const TABLE_ELEMENT_BYTES: u64 = std::mem::size_of::<usize>() as u64;
/// Memories and tables one store may define (a Rust wasip2 component has a handful); each costs
/// host bookkeeping and address space even when empty, so their number is capped too.
const MAX_MEMORIES: usize = 64;
const MAX_TABLES: usize = 1024;

impl MemLimiter {
    pub(crate) fn new(state: Arc<RunState>) -> Self {
        MemLimiter { state, held: 0, pending: 0 }
    }

    /// Charge growth from `current` to `desired` bytes; the memory error once the run's
    /// memories and tables together would pass the budget.
    fn grow(&mut self, current: u64, desired: u64) -> wasmtime::Result<bool> {
        let delta = desired.saturating_sub(current);
        let limit = self.state.budget.memory.bytes();
        let before = self.state.mem_used.fetch_add(delta, Ordering::AcqRel);
        if before.saturating_add(delta) > limit {
            self.state.mem_used.fetch_sub(delta, Ordering::AcqRel);
            return Err(wasmtime::Error::new(self.state.budget.exceeded(BudgetKind::Memory)));
        }
        self.held += delta;
        self.pending = delta;
        Ok(true)
    }

    fn refund_pending(&mut self) {
        let n = std::mem::take(&mut self.pending);
        self.held -= n;
        self.state.mem_used.fetch_sub(n, Ordering::AcqRel);
    }
}

impl Drop for MemLimiter {
    fn drop(&mut self) {
        self.state.mem_used.fetch_sub(self.held, Ordering::AcqRel);
    }
}

impl ResourceLimiter for MemLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        self.grow(current as u64, desired as u64)
    }
    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.refund_pending();
        Ok(())
    }
    fn table_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        // Table elements live in host memory: they are charged to the same budget.
        self.grow(current as u64 * TABLE_ELEMENT_BYTES, (desired as u64).saturating_mul(TABLE_ELEMENT_BYTES))
    }
    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.refund_pending();
        Ok(())
    }
    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

pub(crate) struct P1State {
    wasi: WasiP1Ctx,
    limits: MemLimiter,
    ctx: Arc<RunCtx>,
    depth: u32,
}

impl HostState for P1State {
    fn ctx(&self) -> &Arc<RunCtx> {
        &self.ctx
    }
    fn depth(&self) -> u32 {
        self.depth
    }
    /// Each child runs on a thread of its own: a store's wasm may use up to wasmtime's stack
    /// limit (512 KiB) of the thread it runs on, counted from where it starts, so children
    /// nested on one thread would add up and overflow the host stack, aborting ws2i.
    fn run_child(ctx: &Arc<RunCtx>, inv: Invocation) -> Result<i32, RunError> {
        std::thread::scope(|s| {
            let child = std::thread::Builder::new()
                .name("ws2i-child".into())
                .stack_size(MODULE_STACK)
                .spawn_scoped(s, || run_one(ctx, inv))
                .map_err(|e| RunError::Refused(SandboxError::io("cannot start a thread for the spawned module", e)))?;
            child.join().unwrap_or_else(|_| Err(RunError::Refused(SandboxError::Setup("the spawned module's thread panicked".into()))))
        })
    }
}

struct P2State {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: MemLimiter,
}

impl WasiView for P2State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// A fixed wall clock at SOURCE_DATE_EPOCH.
struct FixedWall(Duration);
impl wasmtime_wasi::HostWallClock for FixedWall {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        self.0
    }
}

/// A monotonic clock that advances 1µs per reading: deterministic, yet never stands still
/// (a hook waiting for time to pass still terminates).
struct CountingMonotonic(AtomicU32);
impl wasmtime_wasi::HostMonotonicClock for CountingMonotonic {
    fn resolution(&self) -> u64 {
        1_000
    }
    fn now(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed) as u64 * 1_000
    }
}

fn deterministic_bytes(seed: u64) -> Vec<u8> {
    use sha2::{Digest as _, Sha256};
    (0u32..64).flat_map(|i| Sha256::new().chain_update(seed.to_le_bytes()).chain_update(i.to_le_bytes()).finalize()).collect()
}

fn wasi_builder(ctx: &RunCtx, inv: &Invocation, stderr: Sink) -> Result<WasiCtxBuilder, SandboxError> {
    let mut b = WasiCtxBuilder::new();
    // File calls run inline rather than as a blocking-pool round trip each. Preopens copy the
    // flag when they are made, so it comes first.
    b.allow_blocking_current_thread(true);
    let setup = |what: &str, e: wasmtime::Error| SandboxError::Setup(format!("{what}: {e:#}"));
    let root_perms = if ctx.rootfs_read_only { FsPerms::ReadOnly } else { FsPerms::ReadWrite };
    b.preopened_dir(&ctx.rootfs, "/", root_perms).map_err(|e| setup(&format!("cannot open rootfs {}", ctx.rootfs.display()), e))?;
    for m in &ctx.mounts {
        let perms = if m.read_only { FsPerms::ReadOnly } else { FsPerms::ReadWrite };
        b.preopened_dir(&m.host, &m.guest, perms).map_err(|e| setup(&format!("cannot open mount {}", m.host.display()), e))?;
    }
    b.args(&inv.args);
    let cwd = if inv.cwd.is_empty() { "/".to_string() } else { inv.cwd.clone() };
    let mut env = inv.env.clone();
    if !env.iter().any(|(k, _)| k == "PWD") {
        env.push(("PWD".into(), cwd.clone()));
    }
    b.envs(&env);
    b.initial_cwd(&cwd);
    b.stdout(inv.stdout.clone());
    b.stderr(stderr);
    if let Some(epoch) = ctx.reproducible {
        b.wall_clock(FixedWall(Duration::from_secs(epoch)));
        b.monotonic_clock(CountingMonotonic(AtomicU32::new(0)));
        b.secure_random(wasmtime_wasi::Deterministic::new(deterministic_bytes(epoch)));
        b.insecure_random(wasmtime_wasi::Deterministic::new(deterministic_bytes(epoch ^ 0x5eed)));
        b.insecure_random_seed(u128::from(epoch));
    }
    Ok(b)
}

/// Read and classify the program, then compile or fetch it.
fn load(ctx: &RunCtx, program: &str) -> Result<(Compiled, WasmKind), SandboxError> {
    let bytes = host::read_guest_file(ctx, program, ctx.state.budget.module_cap())?;
    let kind = detect(&bytes).map_err(|found| SandboxError::NotWasm { path: program.into(), found })?;
    let (compiled, used) = ctx.engines.load(program, kind, &bytes)?;
    ctx.cache_uses.lock().unwrap_or_else(|e| e.into_inner()).push(used);
    Ok((compiled, kind))
}

pub(crate) fn classify(e: wasmtime::Error) -> Result<i32, RunError> {
    if let Some(exit) = e.downcast_ref::<I32Exit>() {
        return Ok(exit.0);
    }
    if let Some(b) = e.downcast_ref::<BudgetExceeded>() {
        return Err(RunError::Budget(b.clone()));
    }
    // A trap deep in a recursion carries a backtrace of as many frames: keep its start.
    Err(RunError::Trap(clip(format!("{e:?}"), MAX_NOTICE)))
}

fn arm<T: 'static>(store: &mut Store<T>, state: &Arc<RunState>) {
    let state = state.clone();
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        state.check().map_err(wasmtime::Error::new)?;
        Ok(UpdateDeadline::Continue(1))
    });
}

/// Run `inv` to completion; `Ok` carries its exit code.
pub(crate) fn run_one(ctx: &Arc<RunCtx>, inv: Invocation) -> Result<i32, RunError> {
    let (compiled, _) = load(ctx, &inv.program)?;
    ctx.state.check().map_err(RunError::Budget)?;
    let stderr = Sink::lines(Stream::Stderr, ctx.log.clone());
    let builder = wasi_builder(ctx, &inv, stderr.clone())?;
    let limits = MemLimiter::new(ctx.state.clone());
    let engine = &ctx.engines.engine;
    let setup = |e: wasmtime::Error| RunError::Refused(SandboxError::Setup(format!("{e:#}")));
    let result = match compiled {
        Compiled::Core(module) => {
            let mut builder = builder;
            let state = P1State { wasi: builder.build_p1(), limits, ctx: ctx.clone(), depth: inv.depth };
            let mut store = Store::new(engine, state);
            store.limiter(|s| &mut s.limits);
            arm(&mut store, &ctx.state);
            let mut linker: Linker<P1State> = Linker::new(engine);
            wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut P1State| &mut s.wasi).map_err(setup)?;
            host::add_to_linker(&mut linker).map_err(setup)?;
            match linker.instantiate(&mut store, &module) {
                Err(e) => classify(e),
                Ok(instance) => match instance.get_typed_func::<(), ()>(&mut store, "_start") {
                    Err(_) => Err(RunError::Refused(SandboxError::Setup(format!(
                        "{} is a WebAssembly module without a `_start` export (not a WASI command)",
                        inv.program
                    )))),
                    Ok(start) => start.call(&mut store, ()).map(|()| 0).or_else(classify),
                },
            }
        }
        Compiled::Component(component) => {
            let mut builder = builder;
            let state = P2State { wasi: builder.build(), table: ResourceTable::new(), limits };
            let mut store = Store::new(engine, state);
            store.limiter(|s| &mut s.limits);
            arm(&mut store, &ctx.state);
            let mut linker = wasmtime::component::Linker::new(engine);
            wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(setup)?;
            match wasmtime_wasi::p2::bindings::sync::Command::instantiate(&mut store, &component, &linker) {
                Err(e) => classify(e),
                Ok(cmd) => match cmd.wasi_cli_run().call_run(&mut store) {
                    Ok(Ok(())) => Ok(0),
                    Ok(Err(())) => Ok(1),
                    Err(e) => classify(e),
                },
            }
        }
    };
    let _ = stderr.finish();
    let _ = inv.stdout.finish();
    result
}
