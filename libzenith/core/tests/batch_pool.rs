//! Pooled batch buffers: the pool never hands out a buffer still in use, whatever the consumer
//! holds and in whatever order it releases batches, across epochs; and every block goes back to
//! the allocator once the loader and its batches are gone.

mod common;

use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use common::{BASIC_ROWS, data_file};
use zenith_core::batch::Batch;
use zenith_core::loader::ShuffleMode;
use zenith_core::runtime::pool::{HeapAllocator, HostAllocator};
use zenith_core::{Loader, LoaderOptions};

/// The heap, counting the blocks it has handed out and not been given back.
#[derive(Default)]
struct CountingAllocator {
    live: Mutex<HashMap<usize, usize>>,
    allocations: AtomicUsize,
}

impl HostAllocator for CountingAllocator {
    fn allocate(&self, bytes: usize) -> zenith_core::Result<NonNull<u8>> {
        let ptr = HeapAllocator.allocate(bytes)?;
        let previous = self
            .live
            .lock()
            .unwrap()
            .insert(ptr.as_ptr() as usize, bytes);
        assert!(previous.is_none(), "a live block was allocated twice");
        self.allocations.fetch_add(1, SeqCst);
        Ok(ptr)
    }

    unsafe fn free(&self, ptr: NonNull<u8>, bytes: usize) {
        let known = self.live.lock().unwrap().remove(&(ptr.as_ptr() as usize));
        assert_eq!(known, Some(bytes), "a block freed that was not live");
        // SAFETY: allocated above by the heap allocator with these bytes.
        unsafe { HeapAllocator.free(ptr, bytes) };
    }
}

/// Asserts every row of `batch` is the basic.arrow row its id says (see tests/data/generate.py).
fn assert_rows_intact(batch: &RecordBatch) {
    let ids = batch.column(0).as_primitive::<Int64Type>();
    let labels = batch.column(1).as_primitive::<Int32Type>();
    let names = batch.column(3).as_string::<i32>();
    for i in 0..batch.num_rows() {
        let row = ids.value(i);
        assert!((0..BASIC_ROWS as i64).contains(&row));
        assert_eq!(labels.value(i), (row % 10) as i32, "row {row}");
        if row % 7 == 3 {
            assert!(names.is_null(i), "row {row}");
        } else {
            assert_eq!(names.value(i), format!("row-{row}"));
        }
    }
}

/// The byte ranges of every buffer of `batch`'s columns (children included).
fn buffer_ranges(batch: &RecordBatch, out: &mut Vec<(usize, usize)>) {
    fn walk(data: &arrow_data::ArrayData, out: &mut Vec<(usize, usize)>) {
        for buffer in data.buffers() {
            if !buffer.is_empty() {
                out.push((
                    buffer.as_ptr() as usize,
                    buffer.as_ptr() as usize + buffer.len(),
                ));
            }
        }
        if let Some(nulls) = data.nulls() {
            let b = nulls.buffer();
            out.push((b.as_ptr() as usize, b.as_ptr() as usize + b.len()));
        }
        data.child_data().iter().for_each(|c| walk(c, out));
    }
    for column in batch.columns() {
        walk(&column.to_data(), out);
    }
}

/// No two held batches share memory (the pool handed no block out twice).
fn assert_disjoint(held: &[Batch]) {
    let mut ranges = Vec::new();
    held.iter()
        .for_each(|b| buffer_ranges(&b.data, &mut ranges));
    ranges.sort_unstable();
    ranges.dedup(); // one batch may hold one buffer twice (a cloned array); not across batches
    for pair in ranges.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "buffers overlap: {pair:?}");
    }
}

#[test]
fn held_batches_survive_later_epochs_and_out_of_order_releases() {
    let allocator = Arc::new(CountingAllocator::default());
    let mut options = LoaderOptions::default();
    options.set_batch_size(97).unwrap();
    options.set_shuffle(ShuffleMode::Global);
    options.set_num_workers(2).unwrap();
    options.set_host_allocator(Some(allocator.clone() as Arc<dyn HostAllocator>));
    let loader = Loader::open(data_file("basic.arrow"), &options).unwrap();
    let mut held: Vec<Batch> = Vec::new();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for epoch in 0..4 {
        loader.set_epoch(epoch).unwrap();
        while let Some(batch) = loader.next_batch().unwrap() {
            assert_rows_intact(&batch.data);
            held.push(batch);
            // Release a pseudo-random held batch about every other batch: out of order.
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            if (state >> 60) & 1 == 1 {
                let victim = (state >> 33) as usize % held.len();
                held.swap_remove(victim);
            }
        }
        // Everything still held, from this epoch and the ones before, is intact and disjoint.
        held.iter().for_each(|b| assert_rows_intact(&b.data));
        assert_disjoint(&held);
    }
    assert!(
        allocator.allocations.load(SeqCst) > 0,
        "the loader gathered into the given allocator"
    );
    // Blocks were reused: far fewer allocations than batches built.
    let built = 4 * BASIC_ROWS.div_ceil(97) as usize;
    assert!(allocator.allocations.load(SeqCst) < built * 5);
    drop(loader);
    held.iter().for_each(|b| assert_rows_intact(&b.data));
    drop(held);
    assert!(
        allocator.live.lock().unwrap().is_empty(),
        "every block returns to the allocator once the loader and its batches are gone"
    );
}
