//! # libzenith
//!
//! Zenith keeps GPUs fed: it turns datasets (Arrow IPC files and streams, Parquet, CSV; a file, a
//! directory of shards or a glob) into batches and hands them over through the Arrow C Data
//! Interface, zero-copy where the data allows.
//!
//! The crate is an ordinary safe Rust library; [`ffi`] is the thin C ABI over it, from which
//! cbindgen generates `include/zenith.h`. Data flows one way:
//! [`dataset`] (sources) → [`loader`] (epoch plan, cursor) → [`batch`] (exports). [`runtime`]
//! knows the machine and runs the loader on it: NUMA topology, thread pinning, NUMA-local and
//! hugepage memory, lock-free rings, file reads through io_uring, pread or mmap; [`telemetry`]
//! holds the process-wide metrics, rendered for Prometheus.

pub mod batch;
pub mod dataset;
pub mod error;
// C names (`zenith_loader`, ...) are the ABI; Rust naming rules do not apply to them.
#[allow(non_camel_case_types)]
pub mod ffi;
pub mod loader;
pub mod runtime;
pub mod status;
pub mod telemetry;
pub mod version;

pub use error::{Error, Result};
pub use loader::{Loader, LoaderOptions};
