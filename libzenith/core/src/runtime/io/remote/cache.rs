//! The local cache of remote byte ranges: a directory and a byte cap (storage options
//! `cache_dir`, `cache_max_bytes`), so that a second epoch, or a second run, reads from local
//! disk what the first fetched.
//!
//! Each entry is one file named by its key (the object's URL, size and ETag when opened, and
//! the range): a header (magic, length, checksum) and the bytes. An entry whose header or
//! checksum does not match (a partial write, a disk error) is removed and fetched again; a
//! write goes to a temporary file renamed into place, so readers never see half an entry.
//! When the entries exceed the cap, the least recently used are removed.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;

use super::options::StorageOptions;
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"ZNCACHE1";
const HEADER: usize = 8 + 8 + 8;
const SUFFIX: &str = ".zrange";
/// The cap when `cache_dir` is set without `cache_max_bytes`.
pub const DEFAULT_CAP: u64 = 10 << 30;

/// A checksum of `data`, eight bytes at a time (a partial write or a flipped bit changes it).
pub fn checksum(data: &[u8]) -> u64 {
    let mut hash = 0x9e37_79b9_7f4a_7c15u64 ^ data.len() as u64;
    let mut words = data.chunks_exact(8);
    for word in &mut words {
        let value = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        hash = (hash ^ value)
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(31);
    }
    for &byte in words.remainder() {
        hash = (hash ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[derive(Debug, Default)]
struct Index {
    /// key → (bytes on disk, last use).
    entries: HashMap<String, (u64, u64)>,
    total: u64,
    clock: u64,
}

/// A directory of cached ranges, capped in bytes.
#[derive(Debug)]
pub struct DiskCache {
    dir: PathBuf,
    cap: u64,
    index: Mutex<Index>,
}

impl DiskCache {
    /// Opens (creating it if needed) the cache in `dir`, holding at most `cap` bytes. Entries
    /// already there are kept, oldest (by modification time) first in line for eviction.
    pub fn open(dir: &Path, cap: u64) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let mut found = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(key) = name.to_str().and_then(|n| n.strip_suffix(SUFFIX)) else {
                continue;
            };
            let meta = entry.metadata()?;
            found.push((meta.modified().ok(), key.to_string(), meta.len()));
        }
        found.sort();
        let mut index = Index::default();
        for (_, key, size) in found {
            index.clock += 1;
            index.total += size;
            index.entries.insert(key, (size, index.clock));
        }
        let cache = DiskCache {
            dir: dir.to_path_buf(),
            cap,
            index: Mutex::new(index),
        };
        cache.evict();
        Ok(cache)
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}{SUFFIX}"))
    }

    /// Bytes the entries take on disk.
    pub fn total_bytes(&self) -> u64 {
        self.lock().total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an entry for `key` is on disk (not checked: [`Self::get`] checks).
    pub fn contains(&self, key: &str) -> bool {
        self.path(key).exists()
    }

    /// The entry `key` if it holds `len` bytes whose checksum matches; a damaged entry is
    /// removed.
    pub fn get(&self, key: &str, len: u64) -> Option<Bytes> {
        let path = self.path(key);
        let data = fs::read(&path).ok()?;
        let valid = data.len() == HEADER + len as usize
            && &data[..8] == MAGIC
            && u64::from_le_bytes(data[8..16].try_into().expect("eight bytes")) == len
            && u64::from_le_bytes(data[16..24].try_into().expect("eight bytes"))
                == checksum(&data[HEADER..]);
        let mut index = self.lock();
        if !valid {
            let _ = fs::remove_file(&path);
            if let Some((size, _)) = index.entries.remove(key) {
                index.total -= size;
            }
            return None;
        }
        index.clock += 1;
        let clock = index.clock;
        let size = data.len() as u64;
        match index.entries.get_mut(key) {
            Some(entry) => entry.1 = clock,
            // Written by another process sharing the directory.
            None => {
                index.entries.insert(key.to_string(), (size, clock));
                index.total += size;
            }
        }
        drop(index);
        Some(Bytes::from(data).slice(HEADER..))
    }

    /// Stores `data` as `key` (best effort: a full disk only means a miss later), then evicts
    /// the least recently used entries past the cap. An entry larger than the cap is not kept.
    pub fn put(&self, key: &str, data: &[u8]) {
        let size = (HEADER + data.len()) as u64;
        if size > self.cap {
            return;
        }
        let path = self.path(key);
        let temp = self.dir.join(format!(".{key}.{}.tmp", std::process::id()));
        if write_entry(&temp, &path, data).is_err() {
            let _ = fs::remove_file(&temp);
            return;
        }
        {
            let mut index = self.lock();
            index.clock += 1;
            let clock = index.clock;
            if let Some((old, _)) = index.entries.insert(key.to_string(), (size, clock)) {
                index.total -= old;
            }
            index.total += size;
        }
        self.evict();
    }

    /// Removes least recently used entries until the rest fit the cap.
    fn evict(&self) {
        let mut index = self.lock();
        while index.total > self.cap {
            let Some(oldest) = index
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            let (size, _) = index.entries.remove(&oldest).expect("present");
            index.total -= size;
            let _ = fs::remove_file(self.path(&oldest));
        }
    }
}

/// Writes an entry to `temp`, then renames it to `path` (readers never see half an entry).
fn write_entry(temp: &Path, path: &Path, data: &[u8]) -> io::Result<()> {
    let mut file = fs::File::create(temp)?;
    file.write_all(MAGIC)?;
    file.write_all(&(data.len() as u64).to_le_bytes())?;
    file.write_all(&checksum(data).to_le_bytes())?;
    file.write_all(data)?;
    fs::rename(temp, path)
}

/// The cache the options ask for (`cache_dir`, `cache_max_bytes`), shared by every reader of
/// the process that names the same directory; `None` without `cache_dir`.
pub fn cache_for(options: &StorageOptions) -> Result<Option<Arc<DiskCache>>> {
    static CACHES: OnceLock<Mutex<HashMap<PathBuf, Arc<DiskCache>>>> = OnceLock::new();
    let Some(dir) = options.get("cache_dir") else {
        return Ok(None);
    };
    let cap = options.number("cache_max_bytes")?.unwrap_or(DEFAULT_CAP);
    let dir = PathBuf::from(dir);
    let mut caches = CACHES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(cache) = caches.get(&dir) {
        return Ok(Some(cache.clone()));
    }
    let cache = Arc::new(DiskCache::open(&dir, cap).map_err(|e| Error::io(&dir, e))?);
    caches.insert(dir, cache.clone());
    Ok(Some(cache))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_checked_and_evicted_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        let entry = (HEADER + 100) as u64;
        let cache = DiskCache::open(dir.path(), 3 * entry).unwrap();
        let data = |b: u8| vec![b; 100];
        cache.put("a", &data(1));
        cache.put("b", &data(2));
        cache.put("c", &data(3));
        assert_eq!(cache.get("a", 100).unwrap(), data(1)); // a is now the most recent
        cache.put("d", &data(4)); // evicts b
        assert!(cache.get("b", 100).is_none());
        assert_eq!(cache.get("a", 100).unwrap(), data(1));
        assert_eq!(cache.total_bytes(), 3 * entry);
        // A damaged entry is a miss and is removed.
        let path = cache.path("c");
        let mut bytes = fs::read(&path).unwrap();
        bytes[HEADER + 5] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        assert!(cache.get("c", 100).is_none());
        assert!(!path.exists());
        // A wrong length is a miss too; an entry over the cap is not kept.
        assert!(cache.get("d", 99).is_none());
        cache.put("huge", &vec![0; 4 * 100 + 3 * HEADER]);
        assert!(cache.get("huge", 400 + 3 * HEADER as u64).is_none());
        // Reopening finds what is on disk.
        cache.put("e", &data(5));
        let again = DiskCache::open(dir.path(), 3 * entry).unwrap();
        assert_eq!(again.get("e", 100).unwrap(), data(5));
        assert!(again.total_bytes() <= 3 * entry);
    }
}
