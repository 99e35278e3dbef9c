//! The wasmtime engine: every setting Warden uses, in one place.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig,
};

use super::artefact_key::{ArtefactKey, ArtefactKeySource};
use super::cache::ArtefactCache;
use super::error::LoadError;

/// The largest memory cap a plugin may ask for.
pub const MAX_MEMORY_MIB: u64 = 1024;

/// How often the epoch advances: the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// How the runtime is set up.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Where compiled artefacts are cached; `None` disables the cache. A
    /// directory another user owns or can write is not used.
    pub cache_dir: Option<PathBuf>,
    /// The key that authenticates cached artefacts (read only with a
    /// `cache_dir`): an artefact whose tag it does not verify is compiled
    /// again rather than loaded.
    pub artefact_key: ArtefactKeySource,
    /// How many plugin instances may be alive at once (pool slots).
    pub max_instances: u32,
    /// Deadlines by epoch interruption. Turning it off is only for measuring
    /// its cost: without it a runaway plugin is never stopped.
    pub deadlines: bool,
    /// How much of each instance's linear memory may stay resident in its
    /// pool slot after use. Dirty pages below this bound are found with
    /// Linux's `PAGEMAP_SCAN` and restored in place, so the next instance
    /// takes no page faults on them; the rest is released with `madvise`.
    /// Zero releases everything (measured slower: see the benchmark).
    pub keep_resident_bytes: usize,
}

/// The default [`RuntimeOptions::keep_resident_bytes`]: covers the stack,
/// data and early heap of a typical Rust guest.
pub const DEFAULT_KEEP_RESIDENT: usize = 2 << 20;

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            cache_dir: None,
            artefact_key: ArtefactKeySource::Default,
            max_instances: 1000,
            deadlines: true,
            keep_resident_bytes: DEFAULT_KEEP_RESIDENT,
        }
    }
}

/// How many compiled components stay in memory: swapping back to one of
/// them (a rollback, a policy toggled back and forth) compiles nothing and
/// reads nothing from disk.
const RECENT_COMPONENTS: usize = 8;

/// The shared wasmtime engine, its epoch ticker, the recently compiled
/// components and the on-disk artefact cache.
pub struct Runtime {
    engine: Engine,
    recent: Mutex<VecDeque<(String, Component)>>,
    cache: Option<ArtefactCache>,
    /// Artefacts being written to the disk cache, off the load path;
    /// joined when the runtime is dropped.
    storing: Mutex<Vec<JoinHandle<()>>>,
    deadlines: bool,
    ticker: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl Runtime {
    /// Builds the engine and starts the epoch ticker.
    pub fn new(options: RuntimeOptions) -> Result<Self, LoadError> {
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_component_instances(options.max_instances)
            .total_core_instances(options.max_instances * 4)
            .total_memories(options.max_instances)
            .total_tables(options.max_instances * 4)
            .max_memory_size((MAX_MEMORY_MIB << 20) as usize)
            .linear_memory_keep_resident(options.keep_resident_bytes)
            .table_keep_resident(options.keep_resident_bytes.min(64 << 10))
            .pagemap_scan(if options.keep_resident_bytes > 0 {
                Enabled::Auto
            } else {
                Enabled::No
            });

        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .cranelift_opt_level(OptLevel::Speed)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling))
            .memory_init_cow(true)
            .epoch_interruption(options.deadlines);
        // For profiling guests with `perf`: `WARDEN_PROFILER=perfmap` writes
        // /tmp/perf-<pid>.map, which names compiled guest functions.
        if std::env::var_os("WARDEN_PROFILER").is_some_and(|v| v == "perfmap") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(|e| LoadError::Runtime(e.to_string()))?;

        let ticker = options.deadlines.then(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let (engine, flag) = (engine.clone(), stop.clone());
            let handle = std::thread::Builder::new()
                .name("warden-epoch".into())
                .spawn(move || {
                    // Ticks by the clock, not by wake-ups: a ticker woken
                    // late (a loaded machine) catches up, so a deadline of
                    // n ticks is n milliseconds however late it runs.
                    let start = std::time::Instant::now();
                    let mut ticks: u128 = 0;
                    while !flag.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        let due = start.elapsed().as_micros() / EPOCH_TICK.as_micros();
                        while ticks < due {
                            engine.increment_epoch();
                            ticks += 1;
                        }
                    }
                })
                .expect("spawning the epoch thread");
            (stop, handle)
        });

        let cache = options.cache_dir.and_then(|dir| {
            let key = ArtefactKey::resolve(&options.artefact_key)?;
            ArtefactCache::new(dir, &engine, key)
        });
        Ok(Self {
            engine,
            recent: Mutex::new(VecDeque::new()),
            cache,
            storing: Mutex::new(Vec::new()),
            deadlines: options.deadlines,
            ticker,
        })
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The compiled component with this digest (of `bytes`, read from
    /// `path`): from memory, else from the on-disk cache, else compiled and
    /// cached in both.
    pub(crate) fn compile(
        &self,
        digest: &str,
        path: &Path,
        bytes: &[u8],
    ) -> Result<Component, LoadError> {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = recent.iter().position(|(d, _)| d == digest) {
            let entry = recent.remove(i).expect("the index is in range");
            let component = entry.1.clone();
            recent.push_back(entry);
            return Ok(component);
        }
        drop(recent);
        let component = match self
            .cache
            .as_ref()
            .and_then(|c| c.load(&self.engine, digest))
        {
            Some(component) => component,
            None => {
                let component =
                    Component::new(&self.engine, bytes).map_err(|e| LoadError::Compile {
                        path: path.to_owned(),
                        reason: format!("{e:#}"),
                    })?;
                if let Some(cache) = &self.cache {
                    // Serialising and writing takes tens of milliseconds: a
                    // swap need not wait for it.
                    let (cache, component, digest) =
                        (cache.clone(), component.clone(), digest.to_owned());
                    let mut storing = self.storing.lock().unwrap_or_else(|e| e.into_inner());
                    storing.retain(|h| !h.is_finished());
                    storing.push(std::thread::spawn(move || cache.store(&digest, &component)));
                }
                component
            }
        };
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if !recent.iter().any(|(d, _)| d == digest) {
            if recent.len() == RECENT_COMPONENTS {
                recent.pop_front();
            }
            recent.push_back((digest.to_owned(), component.clone()));
        }
        Ok(component)
    }

    /// The epoch deadline, in ticks, for a call of at most `timeout`.
    pub(crate) fn deadline_ticks(&self, timeout: Duration) -> u64 {
        if !self.deadlines {
            return u64::MAX;
        }
        // One more than the timeout's: the epoch may be about to tick when
        // the deadline is set, and a call must get its whole timeout.
        let ticks = timeout.as_micros().div_ceil(EPOCH_TICK.as_micros()) + 1;
        u64::try_from(ticks).unwrap_or(u64::MAX)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let storing = std::mem::take(self.storing.get_mut().unwrap_or_else(|e| e.into_inner()));
        for handle in storing {
            let _ = handle.join();
        }
        if let Some((stop, handle)) = self.ticker.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
    }
}
