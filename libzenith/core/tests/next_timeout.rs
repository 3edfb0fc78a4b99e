//! `Loader::next_batch_timeout`: a bounded wait that leaves the loader usable, so that bindings
//! can wait in slices and let their interpreter handle signals (Ctrl-C) between them.
//!
//! This binary holds one test on purpose: it sets `ZENITH_TEST_WORKER_DELAY_MS` (test-only: each
//! worker waits that long before building a batch), which would slow every loader of the process.

mod common;

use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use common::data_file;
use zenith_core::loader::{Fetched, ShuffleMode};
use zenith_core::{Loader, LoaderOptions};

fn ids(batch: &zenith_core::batch::Batch) -> Vec<i64> {
    batch
        .data
        .column(0)
        .as_primitive::<Int64Type>()
        .values()
        .to_vec()
}

#[test]
fn a_timed_out_wait_consumes_nothing_and_the_batches_come_later_in_order() {
    let mut o = LoaderOptions::default();
    o.set_batch_size(2500).unwrap();
    o.set_shuffle(ShuffleMode::Global);
    o.set_num_workers(1).unwrap();
    o.set_prefetch(1).unwrap();
    let reference: Vec<Vec<i64>> = {
        let loader = Loader::open(data_file("basic.arrow"), &o).unwrap();
        std::iter::from_fn(|| loader.next_batch().unwrap())
            .map(|b| ids(&b))
            .collect()
    };
    assert_eq!(reference.len(), 4);

    // SAFETY: this binary's only test, on one thread, before the loader below starts workers.
    unsafe { std::env::set_var("ZENITH_TEST_WORKER_DELAY_MS", "400") };
    let loader = Loader::open(data_file("basic.arrow"), &o).unwrap();
    let mut got = Vec::new();
    let mut pending = 0;
    loop {
        let started = Instant::now();
        match loader
            .next_batch_timeout(Duration::from_millis(20))
            .unwrap()
        {
            Fetched::Batch(batch) => got.push(ids(&batch)),
            Fetched::Done => break,
            Fetched::Pending => {
                // Bounded: well under the worker's delay, however loaded the machine.
                assert!(started.elapsed() < Duration::from_millis(390));
                pending += 1;
                if pending == 1 {
                    assert!(matches!(
                        loader.next_batch_timeout(Duration::ZERO).unwrap(),
                        Fetched::Pending
                    ));
                    assert_eq!(loader.stats().batches, 0, "nothing consumed");
                }
            }
        }
    }
    assert!(
        pending >= 4,
        "each batch took 400 ms to appear: {pending} timeouts"
    );
    assert_eq!(got, reference, "the same batches in the same order");
    assert!(matches!(
        loader.next_batch_timeout(Duration::ZERO).unwrap(),
        Fetched::Done
    ));

    // A loader freed while its worker waits stops at once (the test delay is cancellable).
    let loader = Loader::open(data_file("basic.arrow"), &o).unwrap();
    assert!(matches!(
        loader.next_batch_timeout(Duration::from_millis(1)).unwrap(),
        Fetched::Pending
    ));
    let started = Instant::now();
    drop(loader);
    assert!(started.elapsed() < Duration::from_millis(390));
    // SAFETY: as above; no loader is open.
    unsafe { std::env::remove_var("ZENITH_TEST_WORKER_DELAY_MS") };
}
