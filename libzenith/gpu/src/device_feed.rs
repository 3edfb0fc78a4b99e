//! A loader's device path fed with the loader's batches, and its telemetry: per device, bytes
//! copied, copy time, the consumer's wait for copies (GPU starvation) and slot waits, in the
//! loader's stats ([`DeviceTotals`]) and in Prometheus (`zenith_device_*{device}`, families
//! the core owns in `zenith_core::loader::device_metrics`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use zenith_core::Result;
use zenith_core::batch::Batch;
use zenith_core::loader::device_metrics::{DeviceSeries, device_series};
use zenith_core::telemetry::metrics::nanos;

use crate::device_path::{DeviceColumns, DevicePath};
use crate::ring::{CopyEngine, RingStats};

/// One device path's counters since it opened (what `zenith_stats` reports).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceTotals {
    /// Bytes copied to the device.
    pub bytes_copied: u64,
    /// Batches copied.
    pub copies: u64,
    /// Time from each copy's submission until the loader saw it finished (exact when the
    /// consumer waited for it, else an upper bound), in nanoseconds.
    pub copy_ns: u64,
    /// Time the consumer spent taking batches from the device path (waiting for copies), in
    /// nanoseconds.
    pub consumer_wait_ns: u64,
    /// Batches whose copy had not finished when the consumer asked for them.
    pub consumer_waits: u64,
    /// Times a worker waited for a staging slot.
    pub staging_waits: u64,
    /// Times a copy waited for device memory the consumer still held.
    pub device_waits: u64,
}

/// The counters of [`DeviceTotals`], updated by the feed and read by any thread (a loader's
/// stats are read while its consumer takes batches).
#[derive(Debug, Default)]
struct AtomicTotals {
    bytes_copied: AtomicU64,
    copies: AtomicU64,
    copy_ns: AtomicU64,
    consumer_wait_ns: AtomicU64,
    consumer_waits: AtomicU64,
    staging_waits: AtomicU64,
    device_waits: AtomicU64,
}

/// A handle on a feed's counters that outlives borrows of the feed (for stats read from other
/// threads).
#[derive(Debug, Clone)]
pub struct SharedTotals(Arc<AtomicTotals>);

impl SharedTotals {
    /// The counters now.
    pub fn snapshot(&self) -> DeviceTotals {
        let t = &self.0;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        DeviceTotals {
            bytes_copied: get(&t.bytes_copied),
            copies: get(&t.copies),
            copy_ns: get(&t.copy_ns),
            consumer_wait_ns: get(&t.consumer_wait_ns),
            consumer_waits: get(&t.consumer_waits),
            staging_waits: get(&t.staging_waits),
            device_waits: get(&t.device_waits),
        }
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// A device path with its telemetry.
pub struct DeviceFeed<E: CopyEngine> {
    path: DevicePath<E>,
    series: DeviceSeries,
    /// The ring's counters when last accounted.
    last: RingStats,
    /// When each batch in flight was submitted, oldest first.
    submitted: VecDeque<Instant>,
    totals: SharedTotals,
}

impl<E: CopyEngine> DeviceFeed<E> {
    /// Feeds `path`, reporting under the Prometheus label `device` (`cuda:0`).
    pub fn new(path: DevicePath<E>, device: &str) -> Self {
        DeviceFeed {
            path,
            series: device_series(device),
            last: RingStats::default(),
            submitted: VecDeque::new(),
            totals: SharedTotals(Arc::default()),
        }
    }

    /// The device path.
    pub fn path(&self) -> &DevicePath<E> {
        &self.path
    }

    /// The device path, to configure before the first batch (its ring's shape, its pinned
    /// pool); batches go through [`DeviceFeed::next`], which counts them.
    pub fn path_mut(&mut self) -> &mut DevicePath<E> {
        &mut self.path
    }

    /// The counters so far.
    pub fn totals(&self) -> DeviceTotals {
        self.totals.snapshot()
    }

    /// A handle on the counters, readable from any thread while the feed runs.
    pub fn shared_totals(&self) -> SharedTotals {
        self.totals.clone()
    }

    /// The next batch on the device: keeps the ring's slots busy with the batches `source`
    /// gives next (their copies overlap the consumer's work) and hands out the oldest; `None`
    /// once `source` and the ring are empty (the end of the epoch).
    pub fn next(
        &mut self,
        mut source: impl FnMut() -> Result<Option<Batch>>,
    ) -> Result<Option<DeviceColumns<E>>> {
        let result = self.fill_and_take(&mut source);
        self.account_ring();
        result
    }

    fn fill_and_take(
        &mut self,
        source: &mut impl FnMut() -> Result<Option<Batch>>,
    ) -> Result<Option<DeviceColumns<E>>> {
        while self.path.in_flight() < self.path.depth() {
            match source()? {
                Some(batch) => {
                    self.path.push(batch)?;
                    self.submitted.push_back(Instant::now());
                }
                None => break,
            }
        }
        let asked = Instant::now();
        let waits_before = self.path.stats().copy_waits;
        let delivered = self.path.pop()?;
        let taken = Instant::now();
        if delivered.is_some() {
            let waited = self.path.stats().copy_waits > waits_before;
            let consumer_wait = taken - asked;
            add(&self.totals.0.consumer_wait_ns, nanos(consumer_wait));
            self.series.consumer_wait.add_duration(consumer_wait);
            if let Some(submitted) = self.submitted.pop_front() {
                // Waited: the copy finished as the wait ended. Not waited: it had finished
                // before the consumer asked, at the latest.
                let seen = if waited { taken } else { asked.max(submitted) };
                let copy = seen.saturating_duration_since(submitted);
                self.add_copy_time(copy);
            }
        }
        Ok(delivered)
    }

    fn add_copy_time(&mut self, copy: Duration) {
        add(&self.totals.0.copy_ns, nanos(copy));
        self.series.copy_time.add_duration(copy);
    }

    /// Adds what the ring counted since the last call.
    fn account_ring(&mut self) {
        let now = self.path.stats();
        let last = std::mem::replace(&mut self.last, now);
        let delta = |now: u64, then: u64| now.saturating_sub(then);
        let bytes = delta(now.bytes, last.bytes);
        let copies = delta(now.copies, last.copies);
        let consumer_waits = delta(now.copy_waits, last.copy_waits);
        let staging_waits = delta(now.staging_waits, last.staging_waits);
        let device_waits = delta(now.device_waits, last.device_waits);
        let totals = &self.totals.0;
        add(&totals.bytes_copied, bytes);
        add(&totals.copies, copies);
        add(&totals.consumer_waits, consumer_waits);
        add(&totals.staging_waits, staging_waits);
        add(&totals.device_waits, device_waits);
        self.series.bytes.inc_by(bytes);
        self.series.copies.inc_by(copies);
        self.series.consumer_waits.inc_by(consumer_waits);
        self.series.staging_waits.inc_by(staging_waits);
        self.series.device_waits.inc_by(device_waits);
    }
}
