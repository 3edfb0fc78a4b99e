//! Telemetry: one process-wide registry of counters, gauges and histograms, rendered in the
//! Prometheus text exposition format 0.0.4 and optionally served at `GET /metrics`.
//!
//! Every loader of the process adds to the same series (each loader also keeps its own
//! [`crate::loader::stats`] counters, which `zenith_loader_stats` reports). Metrics use base
//! units (seconds, bytes), counters end in `_total`, histograms have fixed cumulative buckets.
//!
//! | metric | type | what |
//! | --- | --- | --- |
//! | `zenith_loader_rows_total`, `_batches_total`, `_bytes_total` | counter | delivered to consumers |
//! | `zenith_loader_time_to_first_batch_seconds` | histogram | one observation per loader |
//! | `zenith_loader_consumer_wait_seconds` | histogram | one observation per batch taken from workers |
//! | `zenith_loader_worker_busy_seconds_total` | counter | building batches, all workers |
//! | `zenith_loader_decode_seconds_total`, `zenith_loader_chunks_decoded_total` | counter | chunk decoding (reads included) |
//! | `zenith_loader_queue_depth` | gauge | batches built and not yet taken, all loaders |
//! | `zenith_loaders_open` | gauge | loaders alive |
//! | `zenith_io_read_bytes_total{backend}` | counter | bytes read per I/O backend (`io_uring`, `pread`, `mmap`) |
//! | `zenith_io_read_seconds{backend}` | histogram | latency of one batched read (all ranges of one row group) |
//! | `zenith_io_fallbacks_total{reason}` | counter | io_uring requested, `pread` used |
//! | `zenith_ring_occupancy{ring}`, `zenith_ring_capacity{ring}` | gauge | fed by the rings ([`ring_occupancy`]) |
//! | `zenith_build_info{version}` | gauge | always 1 |

pub mod http;
pub mod metrics;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub use http::MetricsServer;
pub use metrics::{Collect, Counter, Family, Gauge, Histogram};
use metrics::{counter_family, gauge_family, latency_histogram_family, seconds_counter_family};

use crate::runtime::uring::IoBackend;

/// The loader's series (no labels: every loader of the process adds to them).
#[derive(Debug)]
pub struct LoaderMetrics {
    /// Rows delivered.
    pub rows: Arc<Counter>,
    /// Batches delivered.
    pub batches: Arc<Counter>,
    /// Bytes of the delivered batches' Arrow buffers.
    pub bytes: Arc<Counter>,
    /// Open to first batch, one observation per loader.
    pub time_to_first_batch: Arc<Histogram>,
    /// Each wait of a consumer for a batch from the workers.
    pub consumer_wait: Arc<Histogram>,
    /// Time spent building batches.
    pub worker_busy: Arc<Counter>,
    /// Time spent decoding chunks.
    pub decode: Arc<Counter>,
    /// Chunks decoded.
    pub chunks_decoded: Arc<Counter>,
    /// Batches built and waiting for their consumer.
    pub queue_depth: Arc<Gauge>,
    /// Loaders alive.
    pub open: Arc<Gauge>,
}

/// The I/O series, one per backend (indexed by [`IoBackend::index`]).
#[derive(Debug)]
pub struct IoMetrics {
    /// Bytes read (for `mmap`: bytes of the column chunks handed to the decoder).
    pub read_bytes: [Arc<Counter>; 3],
    /// Latency of one batched read.
    pub read_seconds: [Arc<Histogram>; 3],
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
}

/// The process-wide registry: the built-in families, in rendering order, plus any registered
/// later with [`Registry::register`].
#[derive(Debug)]
pub struct Registry {
    /// Loader series.
    pub loader: LoaderMetrics,
    /// I/O series.
    pub io: IoMetrics,
    fallbacks: Arc<Family<Counter>>,
    ring_occupancy: Arc<Family<Gauge>>,
    ring_capacity: Arc<Family<Gauge>>,
    families: Mutex<Vec<Arc<dyn Collect>>>,
}

impl Registry {
    fn new() -> Self {
        let mut families: Vec<Arc<dyn Collect>> = Vec::new();
        fn keep<M: metrics::Metric + 'static>(
            families: &mut Vec<Arc<dyn Collect>>,
            family: Family<M>,
        ) -> Arc<Family<M>> {
            let family = Arc::new(family);
            families.push(family.clone());
            family
        }
        let rows = keep(
            &mut families,
            counter_family(
                "zenith_loader_rows_total",
                "Rows delivered to consumers, all loaders.",
                &[],
            ),
        );
        let batches = keep(
            &mut families,
            counter_family(
                "zenith_loader_batches_total",
                "Batches delivered to consumers, all loaders.",
                &[],
            ),
        );
        let bytes = keep(
            &mut families,
            counter_family(
                "zenith_loader_bytes_total",
                "Bytes of Arrow buffers in the delivered batches.",
                &[],
            ),
        );
        let worker_busy = keep(
            &mut families,
            seconds_counter_family(
                "zenith_loader_worker_busy_seconds_total",
                "Time spent building batches, summed over workers.",
                &[],
            ),
        );
        let decode = keep(
            &mut families,
            seconds_counter_family(
                "zenith_loader_decode_seconds_total",
                "Time spent reading and decoding chunks (part of the worker time).",
                &[],
            ),
        );
        let chunks_decoded = keep(
            &mut families,
            counter_family(
                "zenith_loader_chunks_decoded_total",
                "Chunks (Parquet row groups) decoded.",
                &[],
            ),
        );
        let time_to_first_batch = keep(
            &mut families,
            latency_histogram_family(
                "zenith_loader_time_to_first_batch_seconds",
                "Time from opening a loader to its first delivered batch, one observation per loader.",
                &[],
            ),
        );
        let consumer_wait = keep(
            &mut families,
            latency_histogram_family(
                "zenith_loader_consumer_wait_seconds",
                "Time a consumer waited for each batch built by workers.",
                &[],
            ),
        );
        let queue_depth = keep(
            &mut families,
            gauge_family(
                "zenith_loader_queue_depth",
                "Batches built and waiting for their consumer, all loaders.",
                &[],
            ),
        );
        let open = keep(
            &mut families,
            gauge_family("zenith_loaders_open", "Loaders alive in this process.", &[]),
        );
        let read_bytes = keep(
            &mut families,
            counter_family(
                "zenith_io_read_bytes_total",
                "Bytes read from data files, by I/O backend (mmap: bytes handed to the decoder).",
                &["backend"],
            ),
        );
        let read_seconds = keep(
            &mut families,
            latency_histogram_family(
                "zenith_io_read_seconds",
                "Latency of one batched read (every byte range one chunk needs), by I/O backend.",
                &["backend"],
            ),
        );
        let fallbacks = keep(
            &mut families,
            counter_family(
                "zenith_io_fallbacks_total",
                "Files opened with io_uring requested but read with pread, by reason.",
                &["reason"],
            ),
        );
        let ring_occupancy = keep(
            &mut families,
            gauge_family(
                "zenith_ring_occupancy",
                "Slots in use in a ring buffer.",
                &["ring"],
            ),
        );
        let ring_capacity = keep(
            &mut families,
            gauge_family("zenith_ring_capacity", "Slots of a ring buffer.", &["ring"]),
        );
        let build_info = keep(
            &mut families,
            gauge_family(
                "zenith_build_info",
                "The libzenith version (always 1).",
                &["version"],
            ),
        );
        build_info
            .with_labels(&[env!("CARGO_PKG_VERSION")])
            .set(1.0);
        let per_backend = |family: &Family<Counter>| {
            IoBackend::ALL.map(|backend| family.with_labels(&[backend.name()]))
        };
        let per_backend_h = |family: &Family<Histogram>| {
            IoBackend::ALL.map(|backend| family.with_labels(&[backend.name()]))
        };
        Registry {
            loader: LoaderMetrics {
                rows: rows.get(),
                batches: batches.get(),
                bytes: bytes.get(),
                time_to_first_batch: time_to_first_batch.get(),
                consumer_wait: consumer_wait.get(),
                worker_busy: worker_busy.get(),
                decode: decode.get(),
                chunks_decoded: chunks_decoded.get(),
                queue_depth: queue_depth.get(),
                open: open.get(),
            },
            io: IoMetrics {
                read_bytes: per_backend(&read_bytes),
                read_seconds: per_backend_h(&read_seconds),
            },
            fallbacks,
            ring_occupancy,
            ring_capacity,
            families: Mutex::new(families),
        }
    }

    /// Adds a family, rendered after those already there (for metrics of other modules).
    pub fn register(&self, family: Arc<dyn Collect>) {
        self.families
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(family);
    }

    /// Counts a file that fell back from io_uring to `pread` for `reason`.
    pub fn io_fallback(&self, reason: &str) {
        self.fallbacks.with_labels(&[reason]).inc();
    }

    /// Every family in the Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let families = self
            .families
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut out = String::with_capacity(8 << 10);
        for family in families {
            family.render(&mut out);
        }
        out
    }
}

/// The registry of this process.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::new)
}

/// The occupancy gauge of the ring named `ring` (`zenith_ring_occupancy{ring="..."}`): a ring
/// keeps the returned gauge and sets it as slots fill and drain.
pub fn ring_occupancy(ring: &str) -> Arc<Gauge> {
    registry().ring_occupancy.with_labels(&[ring])
}

/// The capacity gauge of the ring named `ring` (`zenith_ring_capacity{ring="..."}`).
pub fn ring_capacity(ring: &str) -> Arc<Gauge> {
    registry().ring_capacity.with_labels(&[ring])
}

/// The registry rendered in the Prometheus text format 0.0.4.
pub fn prometheus_text() -> String {
    registry().render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_renders_every_family_once_with_help_and_type() {
        let text = prometheus_text();
        for name in [
            "zenith_loader_rows_total",
            "zenith_loader_time_to_first_batch_seconds",
            "zenith_io_read_seconds",
            "zenith_ring_occupancy",
            "zenith_build_info",
        ] {
            assert_eq!(
                text.matches(&format!("# TYPE {name} ")).count(),
                1,
                "{name}"
            );
            assert_eq!(
                text.matches(&format!("# HELP {name} ")).count(),
                1,
                "{name}"
            );
        }
        for backend in ["io_uring", "pread", "mmap"] {
            assert!(text.contains(&format!(
                "zenith_io_read_bytes_total{{backend=\"{backend}\"}} "
            )));
            assert!(text.contains(&format!(
                "zenith_io_read_seconds_bucket{{backend=\"{backend}\",le=\"+Inf\"}} "
            )));
        }
        assert!(text.ends_with('\n'));
        assert!(text.contains(&format!(
            "zenith_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
    }

    #[test]
    fn rings_feed_their_gauges() {
        let gauge = ring_occupancy("test-ring \"q\"");
        gauge.set(3.0);
        ring_capacity("test-ring \"q\"").set(8.0);
        let text = prometheus_text();
        assert!(
            text.contains("zenith_ring_occupancy{ring=\"test-ring \\\"q\\\"\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("zenith_ring_capacity{ring=\"test-ring \\\"q\\\"\"} 8\n"));
    }
}
