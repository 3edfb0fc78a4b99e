//! The gather step alone, for `bench/gather_callgrind.sh` (a benchmark, not a test).
//!
//! Builds the loader benchmark's columns in memory (`id` int64, `label` int32, `value` float64,
//! `emb` fixed-size list of 64 float32, `text` utf8 ~9 bytes) in chunks of 65,536 rows, then
//! gathers shuffled batches of 1024 rows with one method on one thread:
//!
//! - `kernel`: the gather kernel into pooled buffers (batches dropped as they are made, so the
//!   pool recycles them, as with a consumer that releases each batch);
//! - `interleave`: arrow's `interleave_record_batch` (what the loader did before the kernel);
//! - `memcpy`: one contiguous copy of the same bytes per column per batch (the bandwidth
//!   ceiling);
//! - `lines`: one 8-byte load from each of the cache lines a batch's rows occupy
//!   ([`LINES_PER_ROW`] per row), at random over a buffer as large as the data set, prefetched
//!   [`LINES_AHEAD`] lines ahead, nothing stored (the latency ceiling of a gather of random rows:
//!   how many scattered lines one core can bring in).
//!
//! Usage: `gather_bench METHOD [--rows N] [--gather-rows M] [--repeat R]`. Prints the rows and
//! bytes gathered and the thread's CPU time; `gather_epoch` is the function callgrind counts.

use std::hint::black_box;
use std::sync::Arc;

use arrow_array::types::Float32Type;
use arrow_array::{
    Array, FixedSizeListArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Schema};
use arrow_select::interleave::interleave_record_batch;
use zenith_core::batch::gather_kernel::{HostPool, gather_batch};
use zenith_core::runtime::pool::{BlockPool, HeapAllocator, HostAllocator};

const CHUNK_ROWS: usize = 65_536;
const BATCH_ROWS: usize = 1024;
const EMB_WIDTH: i32 = 64;
/// The cache lines one row of these columns occupies: `id`, `label`, `value` one each, `emb`
/// four (256 bytes), `text` one for its offsets and one for its bytes.
const LINES_PER_ROW: usize = 9;
/// How far ahead `lines` prefetches, as the kernel does.
const LINES_AHEAD: usize = 32;

struct Args {
    method: String,
    rows: usize,
    gather_rows: usize,
    repeat: usize,
}

fn parse_args() -> Args {
    let mut args = std::env::args().skip(1);
    let method = args.next().unwrap_or_else(|| usage());
    let mut parsed = Args {
        method,
        rows: 1 << 20,
        gather_rows: 1 << 20,
        repeat: 1,
    };
    while let Some(flag) = args.next() {
        let value: usize = args
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| usage());
        match flag.as_str() {
            "--rows" => parsed.rows = value,
            "--gather-rows" => parsed.gather_rows = value,
            "--repeat" => parsed.repeat = value,
            _ => usage(),
        }
    }
    parsed
}

fn usage() -> ! {
    eprintln!(
        "usage: gather_bench kernel|interleave|memcpy|lines [--rows N] [--gather-rows M] [--repeat R]"
    );
    std::process::exit(2)
}

/// A small deterministic generator (the data only has to look like the benchmark's).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 17
    }
}

fn chunks(rows: usize) -> Vec<RecordBatch> {
    let emb_type = DataType::FixedSizeList(
        Arc::new(Field::new_list_field(DataType::Float32, true)),
        EMB_WIDTH,
    );
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("label", DataType::Int32, true),
        Field::new("value", DataType::Float64, true),
        Field::new("emb", emb_type, true),
        Field::new("text", DataType::Utf8, true),
    ]));
    let mut rng = Rng(7);
    (0..rows)
        .step_by(CHUNK_ROWS)
        .map(|start| {
            let n = CHUNK_ROWS.min(rows - start);
            let ids = Int64Array::from_iter_values((start..start + n).map(|i| i as i64));
            let labels = Int32Array::from_iter_values((0..n).map(|_| (rng.next() % 1000) as i32));
            let values = Float64Array::from_iter_values((0..n).map(|_| rng.next() as f64));
            let emb = FixedSizeListArray::from_iter_primitive::<Float32Type, _, _>(
                (0..n).map(|_| {
                    Some(
                        (0..EMB_WIDTH)
                            .map(|_| Some(rng.next() as f32))
                            .collect::<Vec<_>>(),
                    )
                }),
                EMB_WIDTH,
            );
            let text = StringArray::from_iter_values(
                (0..n).map(|_| format!("tok-{}", rng.next() % 100_000)),
            );
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(ids),
                    Arc::new(labels),
                    Arc::new(values),
                    Arc::new(emb),
                    Arc::new(text),
                ],
            )
            .expect("a valid chunk")
        })
        .collect()
}

/// Batches of `(chunk, row)` pairs: a shuffled epoch over the chunks, each batch's indices
/// sorted by chunk as the loader's plan gives them.
fn shuffled_batches(
    chunks: &[RecordBatch],
    rows: usize,
    gather_rows: usize,
) -> Vec<Vec<(usize, usize)>> {
    let mut order: Vec<usize> = (0..rows).collect();
    let mut rng = Rng(11);
    for i in (1..order.len()).rev() {
        order.swap(i, rng.next() as usize % (i + 1));
    }
    order.truncate(gather_rows);
    debug_assert!(chunks.iter().all(|c| c.num_rows() <= CHUNK_ROWS));
    order
        .chunks(BATCH_ROWS)
        .map(|batch| {
            let mut indices: Vec<(usize, usize)> = batch
                .iter()
                .map(|&row| (row / CHUNK_ROWS, row % CHUNK_ROWS))
                .collect();
            indices.sort_unstable();
            indices
        })
        .collect()
}

/// The bytes a batch of these rows holds (values, offsets, strings).
fn batch_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| {
            c.to_data().buffers().iter().map(|b| b.len()).sum::<usize>()
                + c.to_data()
                    .child_data()
                    .iter()
                    .map(|d| d.buffers().iter().map(|b| b.len()).sum::<usize>())
                    .sum::<usize>()
        })
        .sum()
}

/// One pass over `batches` with `method` (`flat`: the memcpy's source); returns a count that
/// keeps the work observable.
#[inline(never)]
fn gather_epoch(
    method: &str,
    chunks: &[RecordBatch],
    batches: &[Vec<(usize, usize)>],
    pool: &HostPool,
    scratch: &mut [u8],
    flat: &[u8],
) -> usize {
    let mut count = 0;
    for (n, indices) in batches.iter().enumerate() {
        match method {
            "kernel" => {
                let gathered = gather_batch(chunks, indices, pool).expect("gather");
                count += black_box(&gathered.batch).num_rows();
            }
            "interleave" => {
                let refs: Vec<&RecordBatch> = chunks.iter().collect();
                let batch = interleave_record_batch(&refs, indices).expect("interleave");
                count += black_box(&batch).num_rows();
            }
            "memcpy" => {
                // The same bytes copied contiguously, walking a source as large as the data.
                let len = scratch.len();
                let at = (n * len) % (flat.len() - len);
                scratch.copy_from_slice(&flat[at..at + len]);
                black_box(&scratch);
                count += 1;
            }
            "lines" => {
                // Random line numbers from a generator seeded by the batch: independent loads.
                let lines = flat.len() / 64;
                let mut rng = Rng(n as u64 + 1);
                let mut ahead = Rng(n as u64 + 1);
                let wanted = indices.len() * LINES_PER_ROW;
                let mut sum = 0u64;
                for i in 0..wanted + LINES_AHEAD {
                    if i < wanted {
                        let at = (ahead.next() as usize % lines) * 64;
                        prefetch(flat[at..].as_ptr());
                    }
                    if i >= LINES_AHEAD {
                        let at = (rng.next() as usize % lines) * 64;
                        sum = sum.wrapping_add(u64::from(flat[at]));
                    }
                }
                count += black_box(sum) as usize & 1;
            }
            _ => usage(),
        }
    }
    count
}

/// A hint to load the cache line at `at` (as the kernel prefetches).
fn prefetch(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

fn thread_cpu_seconds() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9
}

fn main() {
    let args = parse_args();
    let chunks = chunks(args.rows);
    let batches = shuffled_batches(&chunks, args.rows, args.gather_rows.min(args.rows));
    let pool: HostPool = BlockPool::new(Arc::new(HeapAllocator) as Arc<dyn HostAllocator>);
    // The bytes one full batch holds, measured on a gathered batch.
    let sample = gather_batch(&chunks, &batches[0], &pool)
        .expect("gather")
        .batch;
    let per_batch = batch_bytes(&sample) * BATCH_ROWS / sample.num_rows().max(1);
    drop(sample);
    let mut scratch = vec![0u8; per_batch];
    let flat = if args.method == "memcpy" || args.method == "lines" {
        vec![1u8; per_batch * args.rows / BATCH_ROWS + per_batch + 1]
    } else {
        Vec::new()
    };
    let gathered_rows: usize = batches.iter().map(Vec::len).sum::<usize>() * args.repeat;
    let bytes = per_batch as f64 * gathered_rows as f64 / BATCH_ROWS as f64;
    let started = thread_cpu_seconds();
    for _ in 0..args.repeat {
        black_box(gather_epoch(
            &args.method,
            &chunks,
            &batches,
            &pool,
            &mut scratch,
            &flat,
        ));
    }
    let cpu = thread_cpu_seconds() - started;
    println!(
        "method={} rows={} gathered_rows={} bytes={:.0} cpu_s={:.4} bytes_per_cpu_s={:.3e} pool_allocations={}",
        args.method,
        args.rows,
        gathered_rows,
        bytes,
        cpu,
        bytes / cpu,
        pool.stats().allocations
    );
    // Sanity: every column is there with the gathered rows.
    let check = gather_batch(&chunks, &batches[0], &pool)
        .expect("gather")
        .batch;
    assert_eq!(check.num_columns(), 5);
    assert!(check.column(4).len() == batches[0].len());
}
