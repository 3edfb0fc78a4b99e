//! # zenith-core
//!
//! Zenith keeps GPUs fed: it turns datasets (Arrow IPC files and streams, Parquet, CSV; a file, a
//! directory of shards or a glob) into batches and hands them over through the Arrow C Data
//! Interface, zero-copy where the data allows.
//!
//! The crate is an ordinary Rust library with no C-facing names; the `libzenith` crate
//! (`libzenith/ffi`) is the thin C ABI over it, from which cbindgen generates
//! `include/zenith.h`. Data flows one way:
//! [`dataset`] (sources) → [`loader`] (epoch plan, cursor) → [`batch`] (exports). [`runtime`]
//! knows the machine and runs the loader on it: NUMA topology, thread pinning, NUMA-local and
//! hugepage memory, lock-free rings, file reads through io_uring, pread or mmap; [`telemetry`]
//! holds the process-wide metrics, rendered for Prometheus.

pub mod batch;
pub mod dataset;
pub mod error;
pub mod loader;
pub mod runtime;
pub mod telemetry;

pub use error::{Error, ErrorKind, Result};
pub use loader::{Loader, LoaderOptions};

/// Registers every domain's metric families with the telemetry registry (each registers itself
/// on first use anyway): call it before rendering or serving metrics, so a scrape lists every
/// series, in a fixed order, even before any loader has run.
pub fn register_metrics() {
    loader::metrics::metrics();
    loader::device_metrics::register();
    runtime::io::metrics::metrics();
    #[cfg(feature = "remote")]
    runtime::io::remote::metrics::metrics();
    runtime::ring::metrics::register();
}

#[cfg(test)]
mod tests {
    use crate::telemetry::prometheus_text;

    #[test]
    fn every_domain_registers_its_families_once_with_help_and_type() {
        super::register_metrics();
        super::register_metrics();
        let text = prometheus_text();
        for name in [
            "zenith_loader_rows_total",
            "zenith_loader_time_to_first_batch_seconds",
            "zenith_io_read_seconds",
            "zenith_ring_occupancy",
            "zenith_device_copied_bytes_total",
            "zenith_device_slot_waits_total",
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
    }
}
