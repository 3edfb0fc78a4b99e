//! Modules compiled once per process and cached on disk.
//!
//! In the process: a map from the SHA-256 of the module bytes to the compiled module. On disk:
//! `<cache dir>/<sha256 hex>-<engine key hex>.cwasm`, holding a header (magic, the module hash,
//! the engine key, the SHA-256 of the payload) and the payload from `Module::serialize`. The
//! engine key hashes wasmtime's own compatibility hash (its version and every setting that
//! changes compiled code). Deserializing runs machine code from the file, so a file is used only
//! when every field of its header matches and the payload hashes to what the header says; any
//! mismatch means a recompile, never an error.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

const MAGIC: &[u8; 8] = b"ZNWASM01";
const HEADER: usize = 8 + 32 + 8 + 32;

/// The SHA-256 of some bytes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A key for the engine's compiled-code compatibility (wasmtime version and settings).
fn engine_key(engine: &Engine) -> u64 {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.finish()
}

/// The user cache directory for compiled modules: `$ZENITH_WASM_CACHE` when set (a test run or a
/// container points it at scratch space), else `$XDG_CACHE_HOME/zenith/wasm`, else
/// `$HOME/.cache/zenith/wasm`; None when none is set.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("ZENITH_WASM_CACHE").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".cache"))
        })?;
    Some(base.join("zenith").join("wasm"))
}

fn process_cache() -> &'static Mutex<HashMap<[u8; 32], Module>> {
    static CACHE: OnceLock<Mutex<HashMap<[u8; 32], Module>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Where a module came from, for tests and telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Already compiled in this process.
    Process,
    /// Loaded from the disk cache.
    Disk,
    /// Compiled now.
    Compiled,
}

/// The compiled module of `bytes`: from this process, from the disk cache under `cache_dir`, or
/// compiled now (and then written to the disk cache, best effort).
pub fn module(
    engine: &Engine,
    bytes: &[u8],
    cache_dir: Option<&Path>,
) -> wasmtime::Result<(Module, Origin)> {
    let hash = sha256(bytes);
    if let Some(module) = process_cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&hash)
    {
        return Ok((module.clone(), Origin::Process));
    }
    let key = engine_key(engine);
    let file = cache_dir.map(|dir| dir.join(format!("{}-{key:016x}.cwasm", hex(&hash))));
    let (module, origin) = match file.as_deref().and_then(|f| load(engine, f, &hash, key)) {
        Some(module) => (module, Origin::Disk),
        None => {
            let module = Module::new(engine, bytes)?;
            if let Some(file) = &file {
                // The cache only saves time: a failed write leaves the compile in memory.
                let _ = store(&module, file, &hash, key);
            }
            (module, Origin::Compiled)
        }
    };
    process_cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(hash, module.clone());
    Ok((module, origin))
}

/// Reads a cache file and deserializes it if its header matches `hash` and `key` and its
/// payload is intact.
fn load(engine: &Engine, file: &Path, hash: &[u8; 32], key: u64) -> Option<Module> {
    let contents = std::fs::read(file).ok()?;
    if contents.len() < HEADER
        || &contents[..8] != MAGIC
        || contents[8..40] != hash[..]
        || contents[40..48] != key.to_le_bytes()
    {
        return None;
    }
    let payload = &contents[HEADER..];
    if contents[48..80] != sha256(payload) {
        return None;
    }
    // SAFETY: the payload is byte for byte what `Module::serialize` wrote for this module (its
    // SHA-256 matches the header) under an engine with the same compatibility key, in the user's
    // own cache directory; wasmtime checks its own header (version, settings) again.
    unsafe { Module::deserialize(engine, payload) }.ok()
}

/// Writes a cache file atomically (a temporary file renamed into place).
fn store(module: &Module, file: &Path, hash: &[u8; 32], key: u64) -> std::io::Result<()> {
    let payload = module.serialize().map_err(std::io::Error::other)?;
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut contents = Vec::with_capacity(HEADER + payload.len());
    contents.extend_from_slice(MAGIC);
    contents.extend_from_slice(hash);
    contents.extend_from_slice(&key.to_le_bytes());
    contents.extend_from_slice(&sha256(&payload));
    contents.extend_from_slice(&payload);
    let temporary = dir.join(format!(
        ".{}.{}.tmp",
        file.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("module"),
        std::process::id()
    ));
    std::fs::write(&temporary, &contents)?;
    std::fs::rename(&temporary, file).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

/// Forgets the modules compiled in this process (tests of the disk cache).
#[doc(hidden)]
pub fn clear_process_cache() {
    process_cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
}
