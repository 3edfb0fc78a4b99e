//! Telemetry: one process-wide registry of counters, gauges and histograms, rendered in the
//! Prometheus text exposition format 0.0.4 and optionally served at `GET /metrics`.
//!
//! Telemetry knows no domain: each one (the loader in `loader::metrics`, I/O in
//! `runtime::io::metrics`, the rings in `runtime::ring::metrics`, later the GPU, scheduler and
//! engine) builds its own families and adds them with [`Registry::register`] the first time it
//! is used; [`crate::register_metrics`] registers them all up front, so a scrape lists every
//! series even before any loader has run. Every loader of the process adds to the same series
//! (each loader also keeps its own [`crate::loader::stats`] counters, which `zenith_loader_stats`
//! reports). Metrics use base units (seconds, bytes), counters end in `_total`, histograms have
//! fixed cumulative buckets.
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
//! | `zenith_device_copied_bytes_total{device}`, `zenith_device_copies_total{device}` | counter | copied by the loader's device path (`loader::device_metrics`, filled by the GPU crate) |
//! | `zenith_device_copy_seconds_total{device}` | counter | submit until the copy was seen finished |
//! | `zenith_device_consumer_wait_seconds_total{device}`, `zenith_device_consumer_waits_total{device}` | counter | consumer waiting for copies (GPU starvation) |
//! | `zenith_device_slot_waits_total{device,slot}` | counter | waits for a `staging` slot or `device` memory |
//! | `zenith_ring_occupancy{ring}`, `zenith_ring_capacity{ring}` | gauge | fed by the rings |
//! | `zenith_build_info{version}` | gauge | always 1 |

pub mod http;
pub mod metrics;

use std::sync::{Arc, Mutex, OnceLock};

pub use http::MetricsServer;
pub use metrics::{Collect, Counter, Family, Gauge, Histogram, Metric};

/// The process-wide registry: every family of every domain, in registration order.
#[derive(Debug)]
pub struct Registry {
    families: Mutex<Vec<Arc<dyn Collect>>>,
}

impl Registry {
    fn new() -> Self {
        let build_info = Arc::new(metrics::gauge_family(
            "zenith_build_info",
            "The libzenith version (always 1).",
            &["version"],
        ));
        build_info
            .with_labels(&[env!("CARGO_PKG_VERSION")])
            .set(1.0);
        Registry {
            families: Mutex::new(vec![build_info]),
        }
    }

    /// Adds a family, rendered after those already there. A domain registers each of its
    /// families once (typically from a `OnceLock` that holds them).
    pub fn register(&self, family: Arc<dyn Collect>) {
        self.families
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(family);
    }

    /// Registers `family` and hands it back typed, for the domain to keep.
    pub fn add<M: Metric + 'static>(&self, family: Family<M>) -> Arc<Family<M>> {
        let family = Arc::new(family);
        self.register(family.clone());
        family
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

/// The registry rendered in the Prometheus text format 0.0.4.
pub fn prometheus_text() -> String {
    registry().render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_families_render_once_after_the_build_info() {
        let family = registry().add(metrics::counter_family(
            "zenith_test_registered_total",
            "A family registered by a test.",
            &["kind"],
        ));
        family.with_labels(&["a"]).inc_by(2);
        let text = prometheus_text();
        assert_eq!(
            text.matches("# TYPE zenith_test_registered_total counter")
                .count(),
            1
        );
        assert!(
            text.contains("zenith_test_registered_total{kind=\"a\"} 2\n"),
            "{text}"
        );
        assert!(text.ends_with('\n'));
        let build_info = format!(
            "zenith_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        );
        let at = |needle: &str| text.find(needle).unwrap();
        assert!(at(&build_info) < at("zenith_test_registered_total{"));
    }
}
