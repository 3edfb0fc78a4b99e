//! Zenith's GPU runtime: CUDA loaded at run time, device discovery, pinned host memory, the slot
//! ring that lands batches in device memory, and the device-side hand-over contracts (Arrow C
//! Device Data Interface, DLPack stream rules).
//!
//! The crate builds and its tests pass on machines without CUDA: `libcuda.so` and
//! `libnvidia-ml.so` are opened on first use (cudarc's `dynamic-loading`, nvml-wrapper), and
//! without them every device entry point returns [`zenith_core::Error::NoDevice`] naming what was
//! searched. The slot ring is generic over a [`ring::CopyEngine`]; a host engine runs its reuse
//! rules everywhere.

pub mod device_array;
pub mod device_export;
pub mod device_feed;
pub mod device_path;
pub mod discovery;
pub mod dlpack_stream;
pub mod driver;
pub mod h2d;
pub mod pinned;
pub mod pinned_ranges;
pub mod ring;
pub mod topology_facts;

pub use discovery::{DeviceInfo, LinkKind, device_count, device_info, link_matrix};
pub use driver::driver;
