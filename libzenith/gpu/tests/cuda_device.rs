//! The CUDA paths on a real device: discovery, the slot ring on the CUDA copy engine (bytes that
//! land on the device are read back and compared), the pinned pool and host registration.
//!
//! Without a device each test prints why it is skipped (`SKIPPED: ...`) and passes, unless
//! `ZENITH_REQUIRE_GPU=1` is set (bench/gpu/run.sh sets it): then a missing device fails.

use std::io::Write;
use std::time::{Duration, Instant};

use cudarc::driver::result;
use zenith_gpu::pinned::{BlockPool, CudaHostAllocator, HostRegistration};
use zenith_gpu::ring::cuda_engine::CudaCopyEngine;
use zenith_gpu::ring::{RingConfig, SlotRing};

/// `Some(reason)` when there is no device to test on (and skipping is allowed).
fn skip_reason(test: &str) -> Option<String> {
    match zenith_gpu::device_count() {
        Ok(_) => None,
        Err(error) => {
            if std::env::var("ZENITH_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("{test}: ZENITH_REQUIRE_GPU=1 but {error}");
            }
            let reason = format!("SKIPPED {test}: {error}");
            // Straight to the process's stderr, past the test harness's capture: a skip is
            // visible in every `cargo test` run, not only with --nocapture.
            let _ = writeln!(std::io::stderr(), "{reason}");
            Some(reason)
        }
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

#[test]
fn discovery_reports_every_visible_device() {
    if skip_reason("discovery_reports_every_visible_device").is_some() {
        return;
    }
    let count = zenith_gpu::device_count().unwrap();
    assert!(count > 0);
    for ordinal in 0..count {
        let info = zenith_gpu::device_info(ordinal).unwrap();
        println!("{info:?}");
        assert_eq!(info.ordinal, ordinal);
        assert!(!info.name.is_empty());
        assert!(info.uuid.starts_with("GPU-"), "{}", info.uuid);
        assert!(info.memory_total_bytes > 0);
        assert!(info.compute_capability.0 >= 3);
        assert!(info.sm_count > 0);
    }
    assert!(zenith_gpu::device_info(count).is_err());
    match zenith_gpu::link_matrix() {
        Ok(matrix) => {
            assert_eq!(matrix.len(), count as usize);
            for (i, row) in matrix.iter().enumerate() {
                println!("{:?}", row.iter().map(|l| l.label()).collect::<Vec<_>>());
                assert_eq!(row[i], zenith_gpu::LinkKind::SameDevice);
            }
        }
        Err(error) => println!("link matrix unavailable (NVML): {error}"),
    }
}

#[test]
fn the_slot_ring_lands_bytes_on_the_device() {
    if skip_reason("the_slot_ring_lands_bytes_on_the_device").is_some() {
        return;
    }
    const SLOT: usize = 1 << 20;
    let engine = CudaCopyEngine::new(0).unwrap();
    let ring = SlotRing::new(engine, RingConfig::new(3, SLOT)).unwrap();
    for round in 0..12u8 {
        let mut slot = ring.acquire(soon()).unwrap();
        slot.bytes().fill(round);
        ring.submit(slot, SLOT, soon()).unwrap();
        let batch = ring.next(soon()).unwrap();
        let mut back = vec![0u8; SLOT];
        // SAFETY: the device buffer holds SLOT bytes and its copy finished (next waited on it);
        // the engine's context is current on this thread after `next`.
        unsafe { result::memcpy_dtoh_sync(&mut back, batch.device().device_ptr()) }.unwrap();
        assert!(back.iter().all(|b| *b == round), "round {round}");
    }
    assert_eq!(ring.stats().copies, 12);
}

#[test]
fn pinned_pool_and_registration_work_on_the_device() {
    if skip_reason("pinned_pool_and_registration_work_on_the_device").is_some() {
        return;
    }
    let pool = BlockPool::new(CudaHostAllocator::new(0).unwrap());
    let mut block = pool.acquire(1 << 20).unwrap();
    block.bytes_mut().fill(1);
    drop(block);
    assert_eq!(pool.stats().allocations, 1);
    let _again = pool.acquire(1 << 20).unwrap();
    assert_eq!(pool.stats().reuses, 1);
    let mut buffer = vec![0u8; 1 << 20];
    // SAFETY: the buffer outlives the registration.
    let registration =
        unsafe { HostRegistration::register(buffer.as_mut_ptr(), buffer.len(), 0) }.unwrap();
    assert_eq!(registration.len(), 1 << 20);
    drop(registration);
}
