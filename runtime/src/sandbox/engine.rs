//! The wasmtime engine, its epoch ticker, and the compiled-module caches (in process and on disk).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, Module, PoolingAllocationConfig};

use super::detect::WasmKind;
use super::error::SandboxError;

/// How often the engine's epoch advances; the granularity of the time and disk budgets.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Bumped whenever ws2i changes the engine configuration in a way that changes compiled code.
const CONFIG_FINGERPRINT: &str = "ws2i-sandbox-1;epoch-interruption;component-model";

#[derive(Clone)]
pub(crate) enum Compiled {
    Core(Module),
    Component(Component),
}

/// Where the compiled code of a run came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Already compiled in this process.
    Memory,
    /// Loaded from ws2i's own on-disk cache.
    Disk,
    /// Compiled now (and stored).
    Compiled,
}

pub(crate) struct Engines {
    pub engine: Engine,
    cache_dir: PathBuf,
    compat: String,
    modules: Mutex<HashMap<[u8; 32], Compiled>>,
}

fn base_config() -> Config {
    let mut cfg = Config::new();
    cfg.epoch_interruption(true);
    cfg.wasm_component_model(true);
    cfg
}

pub(crate) fn new_engine() -> Result<Engine, SandboxError> {
    Engine::new(&base_config()).map_err(|e| SandboxError::Setup(format!("cannot create the wasmtime engine: {e}")))
}

/// An engine whose instances come from a pool reserved up front: `instances` slots of linear
/// memory (each up to `max_memory` bytes), tables and fiber stacks. A request then costs an
/// madvise to reset its slot instead of mmap/mprotect/munmap (and their TLB shootdowns) of a
/// 4 GiB reservation and a 2 MiB stack; memory images stay copy-on-write mappings of the
/// compiled code. Isolation is the same as on demand: every instance is new, its memory and
/// tables reset before a slot is reused. Only the HTTP server uses it (build hooks such as
/// the Go toolchain exceed the per-instance size limits a pool needs).
fn pooled_engine(instances: u32, max_memory: u64) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        // A Rust wasip2 component: the main module plus a few shim and fixup modules.
        .total_core_instances(instances * 8)
        .total_memories(instances * 2)
        .total_tables(instances * 4)
        .total_stacks(instances)
        .total_gc_heaps(instances)
        .max_core_instances_per_component(32)
        .max_memories_per_component(4)
        .max_tables_per_component(16)
        // The store's limiter still enforces the memory budget; the slot only has to hold it.
        .max_memory_size(usize::try_from(max_memory.clamp(64 << 20, 4 << 30)).unwrap_or(4 << 30))
        // Keep the first MiB of a slot mapped between requests (reset with memset, or with
        // PAGEMAP_SCAN only the dirty pages where the kernel has it): a small handler's stack
        // and heap then fault no pages in.
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(64 << 10)
        .pagemap_scan(Enabled::Auto);
    let mut cfg = base_config();
    cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&cfg)
}

impl Engines {
    pub fn new(cache_dir: PathBuf) -> Result<Arc<Self>, SandboxError> {
        Ok(Self::with_engine(new_engine()?, cache_dir))
    }

    /// Engines of their own for serving `instances` requests at once from a pool (see
    /// [`pooled_engine`]); `None` when the pool cannot be reserved (too little address space,
    /// e.g. under `ulimit -v`), and the caller keeps allocating on demand.
    pub fn pooled(&self, instances: u32, max_memory: u64) -> Option<Arc<Self>> {
        pooled_engine(instances, max_memory).ok().map(|e| Self::with_engine(e, self.cache_dir.clone()))
    }

    fn with_engine(engine: Engine, cache_dir: PathBuf) -> Arc<Self> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        CONFIG_FINGERPRINT.hash(&mut h);
        let compat = format!("{:016x}", h.finish());
        let this = Arc::new(Engines { engine, cache_dir, compat, modules: Mutex::new(HashMap::new()) });
        start_ticker(Arc::downgrade(&this));
        this
    }

    /// Compile `bytes` or fetch them compiled. Precompiled artifacts are only ever read from
    /// `cache_dir/modules`, which ws2i alone writes (temp file + rename), never from an image.
    pub fn load(&self, path: &str, kind: WasmKind, bytes: &[u8]) -> Result<(Compiled, CacheUse), SandboxError> {
        let sha: [u8; 32] = Sha256::digest(bytes).into();
        if let Some(c) = self.modules.lock().unwrap_or_else(|e| e.into_inner()).get(&sha) {
            return Ok((c.clone(), CacheUse::Memory));
        }
        let file = self.cache_dir.join("modules").join(format!("{}-{}.cwasm", hex::encode(sha), self.compat));
        let (compiled, used) = match self.load_cached(&file, kind) {
            Some(c) => (c, CacheUse::Disk),
            None => {
                let compile_err = |e: wasmtime::Error| SandboxError::Compile { path: path.into(), message: format!("{e:#}") };
                let (c, ser) = match kind {
                    WasmKind::Core => {
                        let m = Module::new(&self.engine, bytes).map_err(compile_err)?;
                        let ser = m.serialize().ok();
                        (Compiled::Core(m), ser)
                    }
                    WasmKind::Component => {
                        let m = Component::new(&self.engine, bytes).map_err(compile_err)?;
                        let ser = m.serialize().ok();
                        (Compiled::Component(m), ser)
                    }
                };
                // A cache that cannot be written only costs a recompile next time.
                if let Some(ser) = ser {
                    let _ = store_atomically(&file, &ser);
                }
                (c, CacheUse::Compiled)
            }
        };
        self.modules.lock().unwrap_or_else(|e| e.into_inner()).insert(sha, compiled.clone());
        Ok((compiled, used))
    }

    fn load_cached(&self, file: &Path, kind: WasmKind) -> Option<Compiled> {
        if !file.is_file() {
            return None;
        }
        // SAFETY: the file is in ws2i's private cache, written only by `serialize` of this engine
        // configuration (the name carries the compatibility hash); wasmtime rejects other versions.
        let loaded = unsafe {
            match kind {
                WasmKind::Core => Module::deserialize_file(&self.engine, file).map(Compiled::Core),
                WasmKind::Component => Component::deserialize_file(&self.engine, file).map(Compiled::Component),
            }
        };
        match loaded {
            Ok(c) => Some(c),
            Err(_) => {
                let _ = std::fs::remove_file(file);
                None
            }
        }
    }
}

fn store_atomically(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = file.parent().expect("cache file has a parent");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

/// One ticker per sandbox; it ends when the sandbox is dropped.
fn start_ticker(engines: Weak<Engines>) {
    std::thread::Builder::new()
        .name("ws2i-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match engines.upgrade() {
                Some(e) => e.engine.increment_epoch(),
                None => return,
            }
        })
        .expect("spawn epoch thread");
}

/// `$WS2I_CACHE`, else `${XDG_CACHE_HOME:-~/.cache}/ws2i`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("WS2I_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("ws2i");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("ws2i")
}
