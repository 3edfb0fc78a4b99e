//! The CPU runtime: what the loader runs on, below the data formats. Topology, thread affinity,
//! NUMA-local allocation and rings live here too, each in its own module; this one holds:
//!
//! * [`uring`]: reading byte ranges of data files through io_uring (batched submissions,
//!   registered buffers, optional `O_DIRECT`), `pread` or `mmap`, with a clean fallback to
//!   `pread` when io_uring is unavailable.

pub mod uring;
