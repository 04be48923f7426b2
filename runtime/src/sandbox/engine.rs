//! The wasmtime engine, its epoch ticker, and the compiled-module caches (in process and on disk).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, Module};

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

pub(crate) fn new_engine() -> Result<Engine, SandboxError> {
    let mut cfg = Config::new();
    cfg.epoch_interruption(true);
    cfg.wasm_component_model(true);
    Engine::new(&cfg).map_err(|e| SandboxError::Setup(format!("cannot create the wasmtime engine: {e}")))
}

impl Engines {
    pub fn new(cache_dir: PathBuf) -> Result<Arc<Self>, SandboxError> {
        let engine = new_engine()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        CONFIG_FINGERPRINT.hash(&mut h);
        let compat = format!("{:016x}", h.finish());
        let this = Arc::new(Engines { engine, cache_dir, compat, modules: Mutex::new(HashMap::new()) });
        start_ticker(Arc::downgrade(&this));
        Ok(this)
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
