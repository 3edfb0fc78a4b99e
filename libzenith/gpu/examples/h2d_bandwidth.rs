//! Host-to-device bandwidth, side by side in one run: `cuMemcpyHtoD` from pageable memory, from
//! pinned memory, and zenith's slot ring, twice: staged (a producer copies each batch into a
//! pinned slot, the copy stream lands it, the consumer takes and releases it) and direct (each
//! batch already in pinned memory, as the loader's workers build it, copied without staging).
//!
//! `cargo run --release -p zenith-gpu --example h2d_bandwidth -- [batch MiB] [batches] [slots]`
//! prints one JSON object. Without a device it prints the reason and exits with status 2.

use std::time::{Duration, Instant};

use cudarc::driver::{result, sys};
use zenith_gpu::ring::cuda_engine::CudaCopyEngine;
use zenith_gpu::ring::{HostSource, RingConfig, SlotRing, SubmitRange};

fn arg(position: usize, default: usize) -> usize {
    std::env::args()
        .nth(position)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn gbps(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64() / 1e9
}

fn main() {
    let batch_mib = arg(1, 256);
    let batches = arg(2, 40);
    let slots = arg(3, 4);
    let bytes = batch_mib << 20;
    if let Err(error) = zenith_gpu::device_count() {
        eprintln!("h2d_bandwidth: {error}");
        std::process::exit(2);
    }
    let info = zenith_gpu::device_info(0).expect("device 0");
    // The ring's engine retains the primary context and makes it current on this thread.
    let engine = CudaCopyEngine::new(0).expect("copy engine");
    // SAFETY: a plain device allocation in the current (primary) context, freed below.
    let device = unsafe { result::malloc_sync(bytes) }.expect("cuMemAlloc");

    // Pageable: an ordinary heap buffer (the driver stages it through its own pinned buffer).
    let pageable = vec![1u8; bytes];
    // SAFETY: `device` holds `bytes` bytes.
    unsafe { result::memcpy_htod_sync(device, &pageable) }.expect("warm-up");
    let start = Instant::now();
    for _ in 0..batches {
        // SAFETY: as above.
        unsafe { result::memcpy_htod_sync(device, &pageable) }.expect("cuMemcpyHtoD");
    }
    let pageable_gbps = gbps(bytes * batches, start.elapsed());

    // Pinned: cuMemHostAlloc'd memory, synchronous copies.
    // SAFETY: a plain allocation, freed below.
    let pinned = unsafe { result::malloc_host(bytes, sys::CU_MEMHOSTALLOC_PORTABLE) }
        .expect("cuMemHostAlloc") as *mut u8;
    // SAFETY: `pinned` holds `bytes` bytes until freed below.
    let pinned_slice = unsafe { std::slice::from_raw_parts_mut(pinned, bytes) };
    pinned_slice.fill(2);
    let start = Instant::now();
    for _ in 0..batches {
        // SAFETY: as above.
        unsafe { result::memcpy_htod_sync(device, pinned_slice) }.expect("cuMemcpyHtoD");
    }
    let pinned_gbps = gbps(bytes * batches, start.elapsed());
    // SAFETY: allocated above, no longer used.
    unsafe {
        result::free_host(pinned as *mut std::ffi::c_void).expect("cuMemFreeHost");
        result::free_sync(device).expect("cuMemFree");
    }

    // The slot ring: gather (memcpy from a source batch, as a worker would) into a pinned slot,
    // async copy on the copy stream, consumer takes and releases each batch.
    let ring = SlotRing::new(engine, RingConfig::new(slots, bytes)).expect("slot ring");
    let source = vec![3u8; bytes];
    let start = Instant::now();
    drive(&ring, batches, |ring| {
        let mut slot = ring.acquire(deadline()).expect("acquire");
        slot.bytes().copy_from_slice(&source);
        ring.submit(slot, bytes, deadline()).expect("submit");
    });
    let ring_gbps = gbps(bytes * batches, start.elapsed());
    let stats = ring.stats();

    // Direct: the batch is in pinned memory already; the ring copies it without staging.
    let engine = CudaCopyEngine::new(0).expect("copy engine");
    let mut config = RingConfig::new(slots, bytes);
    config.staging_bytes = 0;
    let direct_ring = SlotRing::new(engine, config).expect("slot ring");
    // SAFETY: a plain allocation, freed below after every copy out of it finished.
    let batch = unsafe { result::malloc_host(bytes, sys::CU_MEMHOSTALLOC_PORTABLE) }
        .expect("cuMemHostAlloc") as usize;
    let start = Instant::now();
    drive(&direct_ring, batches, |ring| {
        let slot = ring.acquire(deadline()).expect("acquire");
        // SAFETY: `batch` is pinned memory of `bytes` bytes, unchanged and freed only after the
        // last batch was taken (its copy finished).
        let source = unsafe { HostSource::new(batch as *const u8, bytes, Box::new(())) };
        ring.submit_ranges(slot, vec![SubmitRange::host(source, 0)], deadline())
            .expect("submit");
    });
    let direct_gbps = gbps(bytes * batches, start.elapsed());
    drop(direct_ring);
    // SAFETY: allocated above; every copy out of it finished (all batches were taken).
    unsafe { result::free_host(batch as *mut std::ffi::c_void) }.expect("cuMemFreeHost");
    println!(
        "{{\"device\":{:?},\"pci\":\"{}\",\"batch_bytes\":{bytes},\"batches\":{batches},\"slots\":{slots},\
         \"pageable_gbps\":{pageable_gbps:.2},\"pinned_gbps\":{pinned_gbps:.2},\"zenith_ring_gbps\":{ring_gbps:.2},\
         \"zenith_vs_pinned\":{:.3},\"zenith_direct_gbps\":{direct_gbps:.2},\"zenith_direct_vs_pinned\":{:.3},\
         \"copy_waits\":{},\"staging_waits\":{},\"device_waits\":{}}}",
        info.name,
        info.pci_address,
        ring_gbps / pinned_gbps,
        direct_gbps / pinned_gbps,
        stats.copy_waits,
        stats.staging_waits,
        stats.device_waits
    );
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

/// Runs `submit` `batches` times on a producer thread while this thread takes and releases each
/// batch in order.
fn drive(
    ring: &SlotRing<CudaCopyEngine>,
    batches: usize,
    submit: impl Fn(&SlotRing<CudaCopyEngine>) + Sync,
) {
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..batches {
                submit(ring);
            }
        });
        let mut taken = 0;
        while taken < batches {
            match ring.next(deadline()) {
                Ok(batch) => {
                    drop(batch);
                    taken += 1;
                }
                Err(zenith_gpu::ring::RingError::Failed(_)) => std::thread::yield_now(),
                Err(error) => panic!("{error}"),
            }
        }
    });
}
