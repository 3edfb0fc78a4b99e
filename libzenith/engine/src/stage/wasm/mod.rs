//! Sandboxed WASM stages (plugin ABI v1, `docs/plugins.md`).
//!
//! One wasmtime engine per process (cranelift, epoch interruption) with one ticker thread that
//! advances its epoch; each stage holds its compiled module ([`cache`]) and a pool of instances,
//! each in its own store with its own memory limit. An instance runs one event at a time; one
//! that failed (trap, timeout, out of memory, malformed result) is dropped, the others go on.
//! Modules may import nothing: no WASI, no files, no network, no clock.

pub mod cache;

/// The plugin ABI's descriptors (they need no wasmtime: [`crate::stage::abi`]).
pub use super::abi;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arrow_array::RecordBatch;
use wasmtime::{
    Config, Engine, ExternType, Instance, Memory, Module, OptLevel, ResourceLimiter, Store,
    StoreLimits, StoreLimitsBuilder, Trap, TypedFunc, ValType,
};
use zenith_core::{Error, Result};

use super::{Stage, StageError};
use crate::event::FailureKind;
pub use cache::Origin;

/// How often the ticker advances the epoch: the resolution of the CPU time limit.
pub const TICK: Duration = Duration::from_millis(2);
/// Default linear-memory limit of one instance.
pub const DEFAULT_MEMORY_LIMIT: usize = 256 << 20;
/// Default CPU time limit for one event.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(1);
/// Largest module file read.
pub const MAX_MODULE_BYTES: u64 = 256 << 20;
/// Largest configuration a stage is given.
pub const MAX_CONFIG_BYTES: usize = 16 << 20;

/// The process's wasmtime engine, and the ticker thread that advances its epoch.
fn engine() -> Result<&'static Engine> {
    static ENGINE: OnceLock<std::result::Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = Config::new();
            config.epoch_interruption(true);
            config.cranelift_opt_level(OptLevel::Speed);
            let engine = Engine::new(&config).map_err(|e| format!("{e:#}"))?;
            let ticking = engine.clone();
            std::thread::Builder::new()
                .name("zenith-wasm-epoch".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(TICK);
                        ticking.increment_epoch();
                    }
                })
                .map_err(|e| format!("spawn epoch ticker: {e}"))?;
            Ok(engine)
        })
        .as_ref()
        .map_err(|e| Error::Internal(format!("wasmtime engine: {e}")))
}

/// Limits and settings of one WASM stage.
#[derive(Debug, Clone)]
pub struct WasmOptions {
    /// Most linear memory one instance may grow to, in bytes.
    pub memory_limit: usize,
    /// Most CPU time one event may take in the plugin (resolution [`TICK`]).
    pub time_limit: Duration,
    /// Where compiled modules are cached; None: compile in memory only. Defaults to
    /// [`cache::default_cache_dir`].
    pub cache_dir: Option<PathBuf>,
    /// Most instances kept in the pool (more are created under load, then dropped).
    pub pool_size: usize,
    /// Opaque bytes each instance reads once through its `zn_configure` export before its first
    /// event (plugin ABI v1, optional export). Empty: `zn_configure`, when exported, is called
    /// with no bytes; non-empty for a plugin without `zn_configure` is an error at load.
    pub config: Vec<u8>,
}

impl Default for WasmOptions {
    fn default() -> Self {
        Self {
            memory_limit: DEFAULT_MEMORY_LIMIT,
            time_limit: DEFAULT_TIME_LIMIT,
            cache_dir: cache::default_cache_dir(),
            pool_size: 16,
            config: Vec::new(),
        }
    }
}

/// What each store carries: its limits, and whether a limit refused a request.
struct Host {
    limits: StoreLimits,
    memory_refused: Arc<AtomicBool>,
}

impl ResourceLimiter for Host {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if !allowed {
            self.memory_refused.store(true, Ordering::Relaxed);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// One instance of the plugin with its store and exports.
struct Plugin {
    store: Store<Host>,
    memory: Memory,
    alloc: TypedFunc<(u32, u32), u32>,
    transform: TypedFunc<(u32, u32, u32), i32>,
    reset: Option<TypedFunc<(), ()>>,
    memory_refused: Arc<AtomicBool>,
}

/// A stage running a WASM plugin.
pub struct WasmStage {
    name: String,
    module: Module,
    origin: Origin,
    options: WasmOptions,
    pool: Mutex<Vec<Plugin>>,
}

impl std::fmt::Debug for WasmStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmStage")
            .field("name", &self.name)
            .field("options", &self.options)
            .finish()
    }
}

fn invalid(path: &str, message: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("WASM plugin {path}: {message}"))
}

impl WasmStage {
    /// Loads a plugin from a `.wasm` file; the stage is named after the file's stem.
    pub fn load(path: &Path, options: WasmOptions) -> Result<Self> {
        let metadata = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if metadata.len() > MAX_MODULE_BYTES {
            return Err(invalid(
                &path.display().to_string(),
                format!("{} bytes, more than {MAX_MODULE_BYTES}", metadata.len()),
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "wasm".into());
        Self::from_bytes(&name, &bytes, options)
    }

    /// Loads a plugin from module bytes (binary WASM).
    pub fn from_bytes(name: &str, bytes: &[u8], options: WasmOptions) -> Result<Self> {
        if options.memory_limit == 0 {
            return Err(invalid(name, "the memory limit must be positive"));
        }
        if options.time_limit.is_zero() {
            return Err(invalid(name, "the time limit must be positive"));
        }
        if options.config.len() > MAX_CONFIG_BYTES {
            return Err(invalid(
                name,
                format!(
                    "a configuration of {} bytes, more than {MAX_CONFIG_BYTES}",
                    options.config.len()
                ),
            ));
        }
        let engine = engine()?;
        let (module, origin) = cache::module(engine, bytes, options.cache_dir.as_deref())
            .map_err(|e| invalid(name, format!("not a valid module: {e:#}")))?;
        check_interface(&module, !options.config.is_empty()).map_err(|e| invalid(name, e))?;
        let stage = WasmStage {
            name: name.to_string(),
            module,
            origin,
            options,
            pool: Mutex::new(Vec::new()),
        };
        // Instantiate once now, so a module whose start function traps or whose initial memory
        // exceeds the limit is refused here rather than on every event.
        let plugin = stage.instantiate().map_err(|e| invalid(name, e.message))?;
        stage.give_back(plugin);
        Ok(stage)
    }

    /// Where the compiled module came from (process, disk cache, or compiled now).
    pub fn origin(&self) -> Origin {
        self.origin
    }

    fn instantiate(&self) -> std::result::Result<Plugin, StageError> {
        let engine = self.module.engine();
        let memory_refused = Arc::new(AtomicBool::new(false));
        let host = Host {
            limits: StoreLimitsBuilder::new()
                .memory_size(self.options.memory_limit)
                .instances(1)
                .memories(1)
                .tables(4)
                .table_elements(1 << 16)
                .build(),
            memory_refused: Arc::clone(&memory_refused),
        };
        let mut store = Store::new(engine, host);
        store.limiter(|host| host);
        store.set_epoch_deadline(self.deadline_ticks());
        let failed =
            |e: wasmtime::Error| classify(&e, &memory_refused, &self.options, "instantiate");
        let instance = Instance::new(&mut store, &self.module, &[]).map_err(failed)?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| StageError::new(FailureKind::Malformed, "no exported memory"))?;
        let alloc = instance
            .get_typed_func(&mut store, "zn_alloc")
            .map_err(failed)?;
        let transform = instance
            .get_typed_func(&mut store, "zn_transform")
            .map_err(failed)?;
        let reset = instance.get_typed_func(&mut store, "zn_reset").ok();
        let configure = instance.get_typed_func(&mut store, "zn_configure").ok();
        let mut plugin = Plugin {
            store,
            memory,
            alloc,
            transform,
            reset,
            memory_refused,
        };
        if let Some(configure) = configure {
            self.configure(&mut plugin, &configure)?;
        }
        Ok(plugin)
    }

    /// Hands the stage's configuration to a new instance: copied into a block from `zn_alloc`
    /// (nothing allocated when empty: pointer 0, length 0), `zn_configure(ptr, len)` called once,
    /// then `zn_reset` (when exported) frees the block. A nonzero status fails the instance.
    fn configure(
        &self,
        plugin: &mut Plugin,
        configure: &TypedFunc<(u32, u32), i32>,
    ) -> std::result::Result<(), StageError> {
        let refused = Arc::clone(&plugin.memory_refused);
        let fail = |e: wasmtime::Error, what: &str| classify(&e, &refused, &self.options, what);
        let config = &self.options.config;
        let len = config.len() as u32; // at most MAX_CONFIG_BYTES
        let mut at = 0;
        if !config.is_empty() {
            at = plugin
                .alloc
                .call(&mut plugin.store, (len, 1))
                .map_err(|e| fail(e, "zn_alloc"))?;
            let memory = plugin.memory.data_mut(&mut plugin.store);
            let end = at as usize + config.len();
            if at == 0 || end > memory.len() {
                return Err(StageError::new(
                    FailureKind::OutOfMemory,
                    format!(
                        "zn_alloc({len}, 1) for the configuration returned {at}, not a block inside guest memory of {} bytes",
                        memory.len()
                    ),
                ));
            }
            memory[at as usize..end].copy_from_slice(config);
        }
        let status = configure
            .call(&mut plugin.store, (at, len))
            .map_err(|e| fail(e, "zn_configure"))?;
        if status != 0 {
            return Err(StageError::stage(format!(
                "zn_configure refused the configuration ({len} bytes) with status {status}"
            )));
        }
        if let Some(reset) = &plugin.reset {
            reset
                .call(&mut plugin.store, ())
                .map_err(|e| fail(e, "zn_reset"))?;
        }
        Ok(())
    }

    fn deadline_ticks(&self) -> u64 {
        let ticks = self.options.time_limit.as_nanos().div_ceil(TICK.as_nanos());
        u64::try_from(ticks).unwrap_or(u64::MAX / 2).max(1) + 1
    }

    fn take(&self) -> std::result::Result<Plugin, StageError> {
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match pooled {
            Some(plugin) => Ok(plugin),
            None => self.instantiate(),
        }
    }

    fn give_back(&self, plugin: Plugin) {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < self.options.pool_size.max(1) {
            pool.push(plugin);
        }
    }

    /// Runs one event on one instance. Any error leaves the instance unusable.
    fn run(
        &self,
        plugin: &mut Plugin,
        batch: &RecordBatch,
    ) -> std::result::Result<RecordBatch, StageError> {
        let columns = abi::input_columns(batch)?;
        let layout = abi::layout(&columns)
            .filter(|l| l.total <= u32::MAX as usize)
            .ok_or_else(|| {
                StageError::new(
                    FailureKind::OutOfMemory,
                    "the event is larger than a 32-bit guest address space",
                )
            })?;
        plugin.memory_refused.store(false, Ordering::Relaxed);
        plugin.store.set_epoch_deadline(self.deadline_ticks());
        let refused = Arc::clone(&plugin.memory_refused);
        let fail = |e: wasmtime::Error, what: &str| classify(&e, &refused, &self.options, what);
        let base = plugin
            .alloc
            .call(
                &mut plugin.store,
                (layout.total as u32, abi::BUFFER_ALIGN as u32),
            )
            .map_err(|e| fail(e, "zn_alloc"))?;
        let size = plugin.memory.data_size(&plugin.store);
        let end = u64::from(base) + layout.total as u64;
        if base == 0 || end > size as u64 {
            let kind = if base == 0 || refused.load(Ordering::Relaxed) {
                FailureKind::OutOfMemory
            } else {
                FailureKind::Malformed
            };
            return Err(StageError::new(
                kind,
                format!(
                    "zn_alloc({}, {}) returned {base}, not a block inside guest memory of {size} bytes{}",
                    layout.total,
                    abi::BUFFER_ALIGN,
                    limit_note(&refused, &self.options)
                ),
            ));
        }
        if base as usize % abi::BUFFER_ALIGN != 0 {
            return Err(StageError::new(
                FailureKind::Malformed,
                format!(
                    "zn_alloc returned {base}, not aligned to {}",
                    abi::BUFFER_ALIGN
                ),
            ));
        }
        let fingerprint = abi::schema_fingerprint(&batch.schema());
        {
            let memory = plugin.memory.data_mut(&mut plugin.store);
            let block = &mut memory[base as usize..end as usize];
            abi::write_input(block, base, &layout, &columns, fingerprint);
        }
        let columns_at = base + layout.columns_at as u32;
        let output_at = base + layout.output_at as u32;
        let status = plugin
            .transform
            .call(
                &mut plugin.store,
                (columns_at, columns.len() as u32, output_at),
            )
            .map_err(|e| fail(e, "zn_transform"))?;
        if status != 0 {
            let kind = if refused.load(Ordering::Relaxed) {
                FailureKind::OutOfMemory
            } else {
                FailureKind::Stage
            };
            return Err(StageError::new(
                kind,
                format!(
                    "zn_transform returned status {status}{}",
                    limit_note(&refused, &self.options)
                ),
            ));
        }
        let output = abi::read_output(plugin.memory.data(&plugin.store), output_at as usize)?;
        if let Some(reset) = &plugin.reset {
            reset
                .call(&mut plugin.store, ())
                .map_err(|e| fail(e, "zn_reset"))?;
        }
        Ok(output)
    }
}

/// ", memory limit of N bytes reached" when the limiter refused a request during this event.
fn limit_note(refused: &AtomicBool, options: &WasmOptions) -> String {
    if refused.load(Ordering::Relaxed) {
        format!(" (memory limit of {} bytes reached)", options.memory_limit)
    } else {
        String::new()
    }
}

/// Turns a wasmtime error into a stage error of the right kind.
fn classify(
    error: &wasmtime::Error,
    refused: &AtomicBool,
    options: &WasmOptions,
    what: &str,
) -> StageError {
    let trap = error.downcast_ref::<Trap>().copied();
    if trap == Some(Trap::Interrupt) {
        return StageError::new(
            FailureKind::Timeout,
            format!(
                "{what} ran past the time limit of {:?} for one event",
                options.time_limit
            ),
        );
    }
    if refused.load(Ordering::Relaxed) {
        return StageError::new(
            FailureKind::OutOfMemory,
            format!(
                "{what}: memory limit of {} bytes reached: {error:#}",
                options.memory_limit
            ),
        );
    }
    let kind = if trap.is_some() {
        FailureKind::Trap
    } else {
        FailureKind::Stage
    };
    StageError::new(kind, format!("{what}: {error:#}"))
}

/// Checks the module's imports (none) and exports (ABI v1) before any instance exists; a
/// configuration needs a `zn_configure` export to read it.
fn check_interface(module: &Module, configured: bool) -> std::result::Result<(), String> {
    if let Some(import) = module.imports().next() {
        return Err(format!(
            "imports {}::{}, but plugins may import nothing (no WASI)",
            import.module(),
            import.name()
        ));
    }
    let func = |name: &str, params: &[ValType], results: &[ValType]| match module.get_export(name) {
        Some(ExternType::Func(ty)) => {
            let ok = ty.params().len() == params.len()
                && ty.results().len() == results.len()
                && ty.params().zip(params).all(|(a, b)| ValType::eq(&a, b))
                && ty.results().zip(results).all(|(a, b)| ValType::eq(&a, b));
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "export `{name}` has type {ty}, plugin ABI v1 wants ({params:?}) -> ({results:?})"
                ))
            }
        }
        Some(_) => Err(format!("export `{name}` is not a function")),
        None => Err(format!("missing export `{name}` (plugin ABI v1)")),
    };
    match module.get_export("memory") {
        Some(ExternType::Memory(memory)) if !memory.is_64() && !memory.is_shared() => {}
        Some(ExternType::Memory(_)) => {
            return Err("export `memory` must be a 32-bit, unshared memory".into());
        }
        _ => return Err("missing export `memory` (plugin ABI v1)".into()),
    }
    func("zn_alloc", &[ValType::I32, ValType::I32], &[ValType::I32])?;
    func(
        "zn_transform",
        &[ValType::I32, ValType::I32, ValType::I32],
        &[ValType::I32],
    )?;
    if module.get_export("zn_reset").is_some() {
        func("zn_reset", &[], &[])?;
    }
    if module.get_export("zn_configure").is_some() {
        func(
            "zn_configure",
            &[ValType::I32, ValType::I32],
            &[ValType::I32],
        )?;
    } else if configured {
        return Err(
            "a configuration was given, but the plugin does not export `zn_configure` to read it"
                .into(),
        );
    }
    Ok(())
}

impl Stage for WasmStage {
    fn name(&self) -> &str {
        &self.name
    }

    fn process(&self, batch: RecordBatch) -> std::result::Result<RecordBatch, StageError> {
        let mut plugin = self.take()?;
        let outcome = self.run(&mut plugin, &batch);
        if outcome.is_ok() {
            self.give_back(plugin);
        }
        outcome
    }
}
