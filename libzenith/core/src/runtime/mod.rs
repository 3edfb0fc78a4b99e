//! The CPU runtime: what the machine looks like and how to use it well, under the loader.
//!
//! * [`topology`] — NUMA nodes, CPUs, memory, hugepage pools, and the GPUs and NICs on the PCI
//!   bus with their NUMA nodes, read from sysfs (no hwloc, no CUDA).
//! * [`affinity`] — pinning the calling thread to CPUs and reading its affinity back.
//! * [`alloc`] — memory placed on a NUMA node, on hugepages where it can be, usable as the
//!   backing store of Arrow buffers.
//! * [`block_cache`] — the global allocator of the library and the CLI: large freed blocks
//!   (decode buffers) are kept for reuse instead of faulting in fresh pages chunk after chunk.
//! * [`pool`] — a pool of host memory blocks (heap, or pinned memory from the GPU runtime) that
//!   back batch buffers and staging slots and return when released.
//! * [`memory_budget`] — the default budget of memory a loader and its reads work within.
//! * [`ring`] — the lock-free queues that move work between threads (the loader's worker →
//!   consumer hand-off among them).
//! * [`io`] — reading byte ranges of data files through io_uring (batched submissions,
//!   registered buffers, optional `O_DIRECT`), `pread` or `mmap`, with a clean fallback to
//!   `pread` when io_uring is unavailable.

pub mod affinity;
pub mod alloc;
pub mod block_cache;
pub mod io;
pub mod memory_budget;
pub mod pool;
pub mod ring;
#[cfg(test)]
pub(crate) mod test_env;
pub mod topology;
