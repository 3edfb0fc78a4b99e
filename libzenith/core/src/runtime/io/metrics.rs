//! The I/O series: bytes and latency per backend, and io_uring fallbacks by reason, registered
//! with the telemetry registry on first use.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::IoBackend;
use crate::telemetry::metrics::{counter_family, latency_histogram_family};
use crate::telemetry::{Counter, Family, Histogram, registry};

/// The I/O series, one per backend (indexed by [`IoBackend::index`]).
#[derive(Debug)]
pub struct IoMetrics {
    /// Bytes read (for `mmap`: bytes of the column chunks handed to the decoder).
    pub read_bytes: [Arc<Counter>; 3],
    /// Latency of one batched read.
    pub read_seconds: [Arc<Histogram>; 3],
    fallbacks: Arc<Family<Counter>>,
}

impl IoMetrics {
    /// Records a batched read of `bytes` bytes through `backend` that took `elapsed` (`None`: not
    /// timed, as for `mmap`, whose reads are page faults inside decoding).
    pub fn record(&self, backend: IoBackend, bytes: u64, elapsed: Option<Duration>) {
        let i = backend.index();
        self.read_bytes[i].inc_by(bytes);
        if let Some(elapsed) = elapsed {
            self.read_seconds[i].observe_duration(elapsed);
        }
    }

    /// Counts a file that fell back from io_uring to `pread` for `reason`.
    pub fn fallback(&self, reason: &str) {
        self.fallbacks.with_labels(&[reason]).inc();
    }
}

/// The I/O series, registered on first use.
pub fn metrics() -> &'static IoMetrics {
    static METRICS: OnceLock<IoMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let r = registry();
        let read_bytes = r.add(counter_family(
            "zenith_io_read_bytes_total",
            "Bytes read from data files, by I/O backend (mmap: bytes handed to the decoder).",
            &["backend"],
        ));
        let read_seconds = r.add(latency_histogram_family(
            "zenith_io_read_seconds",
            "Latency of one batched read (every byte range one chunk needs), by I/O backend.",
            &["backend"],
        ));
        let fallbacks = r.add(counter_family(
            "zenith_io_fallbacks_total",
            "Files opened with io_uring requested but read with pread, by reason.",
            &["reason"],
        ));
        IoMetrics {
            read_bytes: IoBackend::ALL.map(|b| read_bytes.with_labels(&[b.name()])),
            read_seconds: IoBackend::ALL.map(|b| read_seconds.with_labels(&[b.name()])),
            fallbacks,
        }
    })
}
