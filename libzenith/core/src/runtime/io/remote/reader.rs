//! [`RemoteReader`]: one remote object as a [`RangeRead`].
//!
//! * Opening sends one request: a GET of the object's last [`RemoteConfig::tail_bytes`], which
//!   also says its size, ETag and version. Parquet and Arrow IPC footers lie there, so they cost
//!   no further request.
//! * Every later ranged GET is pinned to the object as opened: it sends `If-Match` with the
//!   ETag from the open, and the answer's ETag and version are compared with it too (for a
//!   server that ignores `If-Match`). An object replaced mid-epoch is then an error naming it
//!   ([`io::ErrorKind::StaleNetworkFileHandle`]), never bytes of the new version decoded with
//!   the old version's footer.
//! * A read coalesces its ranges (gaps up to [`RemoteConfig::coalesce_gap`] are fetched rather
//!   than asked for separately), splits them into parts of at most
//!   [`RemoteConfig::part_size`], and fetches up to [`RemoteConfig::concurrency`] parts at once,
//!   each with retries (`fetch`). With a local cache, parts are looked up there first and
//!   stored after fetching.
//! * A reader that reads one range after another (CSV, whole IPC streams) gets the next range
//!   fetched ahead while it decodes this one, as long as every reader of the process together
//!   holds no more than [`RemoteConfig::read_ahead_bytes`] fetched ahead.

use std::fmt;
use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::bridge::{self, block_on};
use super::cache::DiskCache;
use super::fetch::{RetryPolicy, with_retries};
use super::metrics::metrics;
use super::options::StorageOptions;
use crate::dataset::Fnv64;
use crate::error::Result;
use crate::runtime::io::{IoBackend, IoStats, RangeRead, check_ranges};

/// How remote objects are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteConfig {
    /// Retries of each request and their deadline.
    pub retry: RetryPolicy,
    /// Parts fetched at once by one read.
    pub concurrency: usize,
    /// The largest part one request asks for.
    pub part_size: u64,
    /// Ranges this close are fetched as one.
    pub coalesce_gap: u64,
    /// Bytes fetched ahead for sequential readers, by every reader of the process together.
    pub read_ahead_bytes: u64,
    /// Bytes fetched from the end of the object when it is opened.
    pub tail_bytes: u64,
}

impl Default for RemoteConfig {
    fn default() -> Self {
        RemoteConfig {
            retry: RetryPolicy::default(),
            concurrency: 8,
            part_size: 8 << 20,
            coalesce_gap: 256 << 10,
            read_ahead_bytes: 64 << 20,
            tail_bytes: 64 << 10,
        }
    }
}

impl RemoteConfig {
    /// The defaults, with what the storage options change.
    pub fn from_options(options: &StorageOptions) -> Result<Self> {
        let mut config = RemoteConfig::default();
        if let Some(retries) = options.number("retries")? {
            config.retry.retries = u32::try_from(retries).unwrap_or(u32::MAX);
        }
        if let Some(deadline) = options.duration("retry_timeout")? {
            config.retry.deadline = deadline;
        }
        if let Some(n) = options.number("concurrency")? {
            config.concurrency = usize::try_from(n).unwrap_or(usize::MAX).clamp(1, 256);
        }
        if let Some(n) = options.number("read_ahead_bytes")? {
            config.read_ahead_bytes = n;
        }
        Ok(config)
    }

    /// How long one blocking call may wait: the retries' deadline and a margin for scheduling.
    fn wait_deadline(&self) -> Instant {
        Instant::now() + self.retry.deadline + Duration::from_secs(10)
    }
}

/// Bytes fetched ahead by every reader of the process.
static READ_AHEAD_IN_USE: AtomicU64 = AtomicU64::new(0);

/// Bytes of the read-ahead allowance held by one fetch ahead; given back when dropped.
#[derive(Debug)]
struct Reservation(u64);

impl Reservation {
    fn take(bytes: u64, cap: u64) -> Option<Self> {
        READ_AHEAD_IN_USE
            .fetch_update(Relaxed, Relaxed, |used| {
                used.checked_add(bytes).filter(|&total| total <= cap)
            })
            .ok()
            .map(|_| Reservation(bytes))
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        READ_AHEAD_IN_USE.fetch_sub(self.0, Relaxed);
    }
}

/// A range being fetched ahead of the reader.
struct ReadAhead {
    range: Range<u64>,
    handle: Option<JoinHandle<io::Result<Bytes>>>,
    _held: Reservation,
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
    }
}

/// Where a sequential reader is.
#[derive(Default)]
struct Sequential {
    /// Where the last single-range read ended.
    next: u64,
    /// Consecutive single-range reads that each started where the previous ended.
    streak: u32,
    ahead: Option<ReadAhead>,
}

/// The version of an object a reader opened: what its ranged GETs are pinned to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Pinned {
    /// The ETag the store gave at open (sent as `If-Match`).
    e_tag: Option<String>,
    /// The store's version id (S3 version, GCS generation), when it gave one.
    version: Option<String>,
}

impl Pinned {
    /// Whether an answer whose metadata says `meta` is of another version than the pinned one.
    /// A field the store left out of either says nothing.
    fn differs(&self, meta: &object_store::ObjectMeta) -> bool {
        let differ = |pinned: &Option<String>, now: &Option<String>| matches!((pinned, now), (Some(a), Some(b)) if a != b);
        differ(&self.e_tag, &meta.e_tag) || differ(&self.version, &meta.version)
    }

    /// The words for the version opened: `ETag "abc"`.
    fn describe(&self) -> String {
        match (&self.e_tag, &self.version) {
            (Some(tag), _) => format!("ETag {tag}"),
            (None, Some(version)) => format!("version {version}"),
            (None, None) => "no ETag".into(),
        }
    }
}

/// What a fetch needs, cheap to move into a task.
#[derive(Clone)]
struct Target {
    url: Arc<str>,
    store: Arc<dyn ObjectStore>,
    location: ObjectPath,
    policy: RetryPolicy,
    /// The version opened; every ranged GET asks for it.
    pinned: Arc<Pinned>,
}

impl Target {
    /// GETs `range` of the object with retries; a short answer is an error.
    async fn fetch(self, range: Range<u64>) -> io::Result<Bytes> {
        let what = format!(
            "GET bytes {}-{} of {}",
            range.start,
            range.end.saturating_sub(1),
            self.url
        );
        let want = range.end - range.start;
        let result = with_retries(self.policy, &what, || {
            let store = self.store.clone();
            let location = self.location.clone();
            let range = range.clone();
            let pinned = self.pinned.clone();
            async move {
                let options = GetOptions {
                    range: Some(GetRange::Bounded(range)),
                    if_match: pinned.e_tag.clone(),
                    ..GetOptions::default()
                };
                let got = store.get_opts(&location, options).await?;
                if pinned.differs(&got.meta) {
                    return Err(object_store::Error::Precondition {
                        path: location.to_string(),
                        source: format!(
                            "the store answered with ETag {:?}, version {:?}",
                            got.meta.e_tag, got.meta.version
                        )
                        .into(),
                    });
                }
                got.bytes().await
            }
        })
        .await;
        let bytes = match result {
            Err(e) if e.kind() == io::ErrorKind::StaleNetworkFileHandle => {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "{}: the object changed since it was opened ({} then; replaced or \
                         rewritten during the epoch), so its bytes are not mixed with the new \
                         version's; open the dataset again to read the new version ({e})",
                        self.url,
                        self.pinned.describe()
                    ),
                ));
            }
            other => other?,
        };
        metrics().bytes_fetched.inc_by(bytes.len() as u64);
        if bytes.len() as u64 != want {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{what}: the store answered {} bytes, not {want} (the object is shorter \
                     than when it was opened: truncated or replaced)",
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }
}

/// A remote object read by range.
pub struct RemoteReader {
    target: Target,
    len: u64,
    /// The object's last bytes, from `len - tail.len()`.
    tail: Bytes,
    config: RemoteConfig,
    cache: Option<Arc<DiskCache>>,
    stats: Arc<IoStats>,
    sequential: Mutex<Sequential>,
}

impl fmt::Debug for RemoteReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteReader")
            .field("url", &self.target.url)
            .field("len", &self.len)
            .field("pinned", &self.target.pinned)
            .finish_non_exhaustive()
    }
}

impl RemoteReader {
    /// Opens the object at `location` of `store` (`url` names it in messages): one GET of its
    /// tail, which says its size.
    pub fn open(
        url: String,
        store: Arc<dyn ObjectStore>,
        location: ObjectPath,
        config: RemoteConfig,
        cache: Option<Arc<DiskCache>>,
        stats: Arc<IoStats>,
    ) -> io::Result<Self> {
        let target = Target {
            url: url.into(),
            store,
            location,
            policy: config.retry,
            pinned: Arc::default(),
        };
        let started = Instant::now();
        let opening = target.clone();
        let tail_bytes = config.tail_bytes.max(1);
        let what = format!("GET the last {tail_bytes} bytes of {}", target.url);
        let tail = block_on(
            async move {
                let what = format!("GET the last {tail_bytes} bytes of {}", opening.url);
                let result = with_retries(opening.policy, &what, || {
                    let store = opening.store.clone();
                    let location = opening.location.clone();
                    async move {
                        let options = GetOptions {
                            range: Some(GetRange::Suffix(tail_bytes)),
                            ..GetOptions::default()
                        };
                        let got = match store.get_opts(&location, options).await {
                            // Azure takes no suffix range: its size first, then the last bytes.
                            Err(object_store::Error::NotSupported { .. }) => {
                                let size = store.head(&location).await?.size;
                                let options = GetOptions {
                                    range: Some(GetRange::Bounded(
                                        size.saturating_sub(tail_bytes)..size,
                                    )),
                                    ..GetOptions::default()
                                };
                                store.get_opts(&location, options).await?
                            }
                            other => other?,
                        };
                        let meta = got.meta.clone();
                        let range = got.range.clone();
                        Ok((meta, range, got.bytes().await?))
                    }
                })
                .await;
                match result {
                    // An empty object has no last byte to ask for (416): its size says so.
                    Err(e) if e.to_string().contains("416") => {
                        let head = with_retries(opening.policy, &what, || {
                            let store = opening.store.clone();
                            let location = opening.location.clone();
                            async move { store.head(&location).await }
                        })
                        .await?;
                        Ok((head.clone(), head.size..head.size, Bytes::new()))
                    }
                    other => other,
                }
            },
            config.wait_deadline(),
            &what,
        )??;
        let (meta, range, bytes) = tail;
        metrics().bytes_fetched.inc_by(bytes.len() as u64);
        if range.end != meta.size || bytes.len() as u64 != range.end - range.start {
            return Err(io::Error::other(format!(
                "{what}: the store answered bytes {range:?} ({} bytes) of an object of {}",
                bytes.len(),
                meta.size
            )));
        }
        stats.record(
            IoBackend::Pread,
            bytes.len() as u64,
            Some(started.elapsed()),
        );
        let target = Target {
            pinned: Arc::new(Pinned {
                e_tag: meta.e_tag.clone(),
                version: meta.version.clone(),
            }),
            ..target
        };
        Ok(RemoteReader {
            target,
            len: meta.size,
            tail: bytes,
            config,
            cache,
            stats,
            sequential: Mutex::new(Sequential::default()),
        })
    }

    /// The object's URL.
    pub fn url(&self) -> &str {
        &self.target.url
    }

    fn tail_start(&self) -> u64 {
        self.len - self.tail.len() as u64
    }

    /// The cache key of `range` of this object as it was when opened.
    fn cache_key(&self, range: &Range<u64>) -> String {
        let mut hash = Fnv64::default();
        hash.write(self.target.url.as_bytes());
        hash.write_u64(self.len);
        hash.write(self.target.pinned.e_tag.as_deref().unwrap_or("").as_bytes());
        hash.write_u64(range.start);
        hash.write_u64(range.end);
        format!("{:016x}", hash.finish())
    }

    /// Fetches `parts` (sorted, disjoint): from the cache where it has them, the rest from the
    /// store, up to `concurrency` at once. Also says whether anything came from the store.
    fn fetch_parts(&self, parts: &[Range<u64>]) -> io::Result<(Vec<Bytes>, bool)> {
        let mut out: Vec<Option<Bytes>> = vec![None; parts.len()];
        let mut missing = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            if let Some(cache) = &self.cache {
                if let Some(bytes) = cache.get(&self.cache_key(part), part.end - part.start) {
                    metrics().cache_hits.inc();
                    out[i] = Some(bytes);
                    continue;
                }
                metrics().cache_misses.inc();
            }
            missing.push(i);
        }
        let missing_was_empty = missing.is_empty();
        if !missing.is_empty() {
            let started = Instant::now();
            let jobs: Vec<Range<u64>> = missing.iter().map(|&i| parts[i].clone()).collect();
            let target = self.target.clone();
            let concurrency = self.config.concurrency;
            let what = format!("reading {} parts of {}", jobs.len(), self.target.url);
            let fetched = block_on(
                fetch_all(target, jobs, concurrency),
                self.config.wait_deadline(),
                &what,
            )??;
            let bytes: u64 = fetched.iter().map(|b| b.len() as u64).sum();
            self.stats
                .record(IoBackend::Pread, bytes, Some(started.elapsed()));
            for (i, bytes) in missing.into_iter().zip(fetched) {
                if let Some(cache) = &self.cache {
                    cache.put(&self.cache_key(&parts[i]), &bytes);
                }
                out[i] = Some(bytes);
            }
        }
        let parts = out
            .into_iter()
            .map(|b| b.expect("every part fetched"))
            .collect();
        Ok((parts, !missing_was_empty))
    }

    /// The range fetched ahead, if it is `range`.
    fn take_ahead(&self, range: &Range<u64>) -> io::Result<Option<Bytes>> {
        let ahead = {
            let mut state = self.sequential.lock().unwrap_or_else(|p| p.into_inner());
            match &state.ahead {
                Some(ahead) if ahead.range == *range => state.ahead.take(),
                _ => None,
            }
        };
        let Some(mut ahead) = ahead else {
            return Ok(None);
        };
        let Some(handle) = ahead.handle.take() else {
            return Ok(None);
        };
        let what = format!("reading ahead in {}", self.target.url);
        let bytes = block_on(handle, self.config.wait_deadline(), &what)?
            .map_err(|e| io::Error::other(format!("{what}: {e}")))??;
        self.stats
            .record(IoBackend::Pread, bytes.len() as u64, None);
        // What was fetched ahead is cached as a plain read would have cached it.
        if let Some(cache) = &self.cache {
            let parts = plan_parts(std::slice::from_ref(range), 0, self.config.part_size);
            for part in parts {
                let at = (part.start - range.start) as usize;
                let len = (part.end - part.start) as usize;
                cache.put(&self.cache_key(&part), &bytes[at..at + len]);
            }
        }
        Ok(Some(bytes))
    }

    /// Notes a single-range read of `range`; a reader reading on sequentially gets the next
    /// range of the same length fetched ahead, within the process's read-ahead allowance.
    fn after_read(&self, range: &Range<u64>) {
        let mut state = self.sequential.lock().unwrap_or_else(|p| p.into_inner());
        state.streak = if range.start == state.next && range.start > 0 {
            state.streak + 1
        } else {
            0
        };
        state.next = range.end;
        if state.streak == 0 || range.end >= self.len || state.ahead.is_some() {
            return;
        }
        let next = range.end..(range.end + (range.end - range.start)).min(self.tail_start());
        if next.is_empty() {
            return;
        }
        // Ranges the cache holds are not fetched again, ahead or not.
        if let Some(cache) = &self.cache {
            let parts = plan_parts(std::slice::from_ref(&next), 0, self.config.part_size);
            if parts.iter().all(|p| cache.contains(&self.cache_key(p))) {
                return;
            }
        }
        let Some(held) = Reservation::take(next.end - next.start, self.config.read_ahead_bytes)
        else {
            return;
        };
        let Ok(handle) = bridge::handle() else {
            return;
        };
        let target = self.target.clone();
        let task = handle.spawn(target.fetch(next.clone()));
        state.ahead = Some(ReadAhead {
            range: next,
            handle: Some(task),
            _held: held,
        });
    }
}

/// Fetches every range of `jobs` (in order), `concurrency` at a time; the first failure
/// cancels the rest.
async fn fetch_all(
    target: Target,
    jobs: Vec<Range<u64>>,
    concurrency: usize,
) -> io::Result<Vec<Bytes>> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut handles: Vec<JoinHandle<io::Result<Bytes>>> = jobs
        .into_iter()
        .map(|range| {
            let permits = permits.clone();
            let target = target.clone();
            tokio::spawn(async move {
                let _permit = permits
                    .acquire_owned()
                    .await
                    .map_err(|_| io::Error::other("request limiter closed"))?;
                target.fetch(range).await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(handles.len());
    for i in 0..handles.len() {
        let result = (&mut handles[i]).await;
        let failure = match result {
            Ok(Ok(bytes)) => {
                out.push(bytes);
                continue;
            }
            Ok(Err(e)) => e,
            Err(join) => io::Error::other(format!("a ranged GET task failed: {join}")),
        };
        for handle in &handles[i + 1..] {
            handle.abort();
        }
        return Err(failure);
    }
    Ok(out)
}

/// The parts a read of `ranges` fetches: the ranges sorted, those within `gap` of each other
/// merged, then cut into pieces of at most `part_size` bytes. Empty ranges need no part.
pub(super) fn plan_parts(ranges: &[Range<u64>], gap: u64, part_size: u64) -> Vec<Range<u64>> {
    let mut sorted: Vec<Range<u64>> = ranges.iter().filter(|r| !r.is_empty()).cloned().collect();
    sorted.sort_unstable_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(sorted.len());
    for range in sorted {
        match merged.last_mut() {
            Some(last) if range.start <= last.end.saturating_add(gap) => {
                last.end = last.end.max(range.end);
            }
            _ => merged.push(range),
        }
    }
    let part_size = part_size.max(1);
    let mut parts = Vec::with_capacity(merged.len());
    for range in merged {
        let mut start = range.start;
        while start < range.end {
            let end = range.end.min(start + part_size);
            parts.push(start..end);
            start = end;
        }
    }
    parts
}

/// The bytes of `range` from `parts` (sorted, disjoint, covering it): a slice of one part, or
/// the pieces of several copied together.
pub(super) fn assemble(range: &Range<u64>, parts: &[Range<u64>], fetched: &[Bytes]) -> Bytes {
    if range.is_empty() {
        return Bytes::new();
    }
    let first = parts.partition_point(|p| p.end <= range.start);
    let part = &parts[first];
    if range.end <= part.end {
        let at = (range.start - part.start) as usize;
        return fetched[first].slice(at..at + (range.end - range.start) as usize);
    }
    let mut out = BytesMut::with_capacity((range.end - range.start) as usize);
    for (part, bytes) in parts[first..].iter().zip(&fetched[first..]) {
        if part.start >= range.end {
            break;
        }
        let from = range.start.max(part.start) - part.start;
        let to = range.end.min(part.end) - part.start;
        out.extend_from_slice(&bytes[from as usize..to as usize]);
    }
    out.freeze()
}

impl RangeRead for RemoteReader {
    /// Remote objects are read by ranged requests into memory of their own, as with `pread`.
    fn backend(&self) -> IoBackend {
        IoBackend::Pread
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn read_ranges(&self, ranges: &[Range<u64>]) -> io::Result<Vec<Bytes>> {
        check_ranges(ranges, self.len)?;
        let tail_start = self.tail_start();
        let in_tail = |r: &Range<u64>| r.is_empty() || r.start >= tail_start;
        if ranges.iter().all(in_tail) {
            return Ok(ranges
                .iter()
                .map(|r| {
                    if r.is_empty() {
                        Bytes::new()
                    } else {
                        self.tail
                            .slice((r.start - tail_start) as usize..(r.end - tail_start) as usize)
                    }
                })
                .collect());
        }
        if let [range] = ranges {
            if let Some(bytes) = self.take_ahead(range)? {
                self.after_read(range);
                return Ok(vec![bytes]);
            }
        }
        let wanted: Vec<Range<u64>> = ranges.iter().filter(|r| !in_tail(r)).cloned().collect();
        let parts = plan_parts(&wanted, self.config.coalesce_gap, self.config.part_size);
        let (fetched, fetched_any) = self.fetch_parts(&parts)?;
        let out = ranges
            .iter()
            .map(|r| {
                if in_tail(r) {
                    if r.is_empty() {
                        Bytes::new()
                    } else {
                        self.tail
                            .slice((r.start - tail_start) as usize..(r.end - tail_start) as usize)
                    }
                } else {
                    assemble(r, &parts, &fetched)
                }
            })
            .collect();
        // A read the cache served whole is a replay (a later epoch): nothing is fetched ahead.
        if let [range] = ranges
            && (fetched_any || self.cache.is_none())
        {
            self.after_read(range);
        }
        Ok(out)
    }
}
