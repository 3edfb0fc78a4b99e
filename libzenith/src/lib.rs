//! # libzenith
//!
//! Zenith keeps GPUs fed: it turns Arrow IPC (and, as the loader grows, Parquet and CSV) datasets
//! into batches and hands them over zero-copy through the Arrow C Data Interface.
//!
//! The crate is an ordinary safe Rust library; [`ffi`] is the thin C ABI over it, from which
//! cbindgen generates `include/zenith.h`. Data flows one way:
//! [`dataset`] (sources) → [`loader`] (epoch plan, cursor) → [`batch`] (exports).

pub mod batch;
pub mod dataset;
pub mod error;
// C names (`zenith_loader`, ...) are the ABI; Rust naming rules do not apply to them.
#[allow(non_camel_case_types)]
pub mod ffi;
pub mod loader;
pub mod status;
pub mod version;

pub use error::{Error, Result};
pub use loader::{Loader, LoaderOptions};
