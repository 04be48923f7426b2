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
use super::log::{Sink, Stream};

pub(crate) struct MemLimiter {
    limit: u64,
    state: Arc<RunState>,
}

impl ResourceLimiter for MemLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit {
            return Err(wasmtime::Error::new(self.state.budget.exceeded(BudgetKind::Memory)));
        }
        Ok(true)
    }
    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        // Tables hold host memory too; a generous fixed cap keeps them from bypassing the memory budget.
        Ok(desired <= 10_000_000)
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
    fn run_child(ctx: &Arc<RunCtx>, inv: Invocation) -> Result<i32, RunError> {
        run_one(ctx, inv)
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
    let bytes = host::read_guest_file(ctx, program)?;
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
    Err(RunError::Trap(format!("{e:?}")))
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
    let limits = MemLimiter { limit: ctx.state.budget.memory.bytes(), state: ctx.state.clone() };
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
