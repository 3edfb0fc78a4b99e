//! The loader's process-wide series (no labels: every loader of the process adds to them),
//! registered with the telemetry registry the first time a loader needs them.

use std::sync::{Arc, OnceLock};

use crate::telemetry::metrics::{
    counter_family, gauge_family, latency_histogram_family, seconds_counter_family,
};
use crate::telemetry::{Counter, Gauge, Histogram, registry};

/// The loader's series.
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

/// The loader's series, registered on first use.
pub fn metrics() -> &'static LoaderMetrics {
    static METRICS: OnceLock<LoaderMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let r = registry();
        LoaderMetrics {
            rows: r
                .add(counter_family(
                    "zenith_loader_rows_total",
                    "Rows delivered to consumers, all loaders.",
                    &[],
                ))
                .get(),
            batches: r
                .add(counter_family(
                    "zenith_loader_batches_total",
                    "Batches delivered to consumers, all loaders.",
                    &[],
                ))
                .get(),
            bytes: r
                .add(counter_family(
                    "zenith_loader_bytes_total",
                    "Bytes of Arrow buffers in the delivered batches.",
                    &[],
                ))
                .get(),
            worker_busy: r
                .add(seconds_counter_family(
                    "zenith_loader_worker_busy_seconds_total",
                    "Time spent building batches, summed over workers.",
                    &[],
                ))
                .get(),
            decode: r
                .add(seconds_counter_family(
                    "zenith_loader_decode_seconds_total",
                    "Time spent reading and decoding chunks (part of the worker time).",
                    &[],
                ))
                .get(),
            chunks_decoded: r
                .add(counter_family(
                    "zenith_loader_chunks_decoded_total",
                    "Chunks (Parquet row groups) decoded.",
                    &[],
                ))
                .get(),
            time_to_first_batch: r
                .add(latency_histogram_family(
                    "zenith_loader_time_to_first_batch_seconds",
                    "Time from opening a loader to its first delivered batch, one observation per loader.",
                    &[],
                ))
                .get(),
            consumer_wait: r
                .add(latency_histogram_family(
                    "zenith_loader_consumer_wait_seconds",
                    "Time a consumer waited for each batch built by workers.",
                    &[],
                ))
                .get(),
            queue_depth: r
                .add(gauge_family(
                    "zenith_loader_queue_depth",
                    "Batches built and waiting for their consumer, all loaders.",
                    &[],
                ))
                .get(),
            open: r
                .add(gauge_family(
                    "zenith_loaders_open",
                    "Loaders alive in this process.",
                    &[],
                ))
                .get(),
        }
    })
}
