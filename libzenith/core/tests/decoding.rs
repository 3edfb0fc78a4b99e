//! Sources that must decode (like Parquet): each chunk decoded at most once per epoch whatever
//! the shuffle and the workers, decode failures reported at the batch that meets them and then
//! retried, and the memory budget turning the automatic shuffle into a block shuffle (and an
//! explicit global shuffle into an error).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use zenith_core::dataset::{Dataset, Format, Source};
use zenith_core::loader::ShuffleMode;
use zenith_core::{Error, Loader, LoaderOptions, Result};

const CHUNKS: usize = 12;
const CHUNK_ROWS: u64 = 250;
const ROWS: u64 = CHUNKS as u64 * CHUNK_ROWS;

/// A source whose chunks "decode" by building them, counting each decode, optionally failing.
#[derive(Debug)]
struct CountingSource {
    path: PathBuf,
    schema: SchemaRef,
    rows: Vec<u64>,
    decodes: Vec<AtomicUsize>,
    /// Chunk that fails this many more times.
    failing: Mutex<Option<(usize, usize)>>,
    /// When set, the first thread to decode waits (up to 10 s) until a second thread decodes too.
    hold_first: bool,
    /// The threads that have decoded, and their arrivals.
    threads: Mutex<Vec<ThreadId>>,
    arrived: Condvar,
}

impl CountingSource {
    fn new() -> Arc<Self> {
        Arc::new(CountingSource {
            path: PathBuf::from("counting.source"),
            schema: Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
            rows: vec![CHUNK_ROWS; CHUNKS],
            decodes: (0..CHUNKS).map(|_| AtomicUsize::new(0)).collect(),
            failing: Mutex::new(None),
            hold_first: false,
            threads: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
        })
    }

    /// A source whose first decoding thread waits for a second one (see `hold_first`).
    fn holding_first() -> Arc<Self> {
        let mut source = Arc::into_inner(Self::new()).unwrap();
        source.hold_first = true;
        Arc::new(source)
    }

    /// Records the calling thread; with `hold_first`, waits until two threads have decoded.
    fn arrive(&self) {
        let mut threads = self.threads.lock().unwrap();
        let me = std::thread::current().id();
        if !threads.contains(&me) {
            threads.push(me);
            self.arrived.notify_all();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.hold_first && threads.len() < 2 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            threads = self
                .arrived
                .wait_timeout(threads, deadline - now)
                .unwrap()
                .0;
        }
    }

    fn decodes(&self) -> Vec<usize> {
        self.decodes
            .iter()
            .map(|d| d.load(Ordering::SeqCst))
            .collect()
    }

    fn reset(&self) {
        self.decodes
            .iter()
            .for_each(|d| d.store(0, Ordering::SeqCst));
    }
}

impl Source for CountingSource {
    fn path(&self) -> &Path {
        &self.path
    }
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }
    fn chunk_rows(&self) -> &[u64] {
        &self.rows
    }
    fn chunk_decoded_bytes(&self, _index: usize, _projection: Option<&[usize]>) -> u64 {
        CHUNK_ROWS * 8
    }
    fn fetch_chunk(&self, index: usize, _projection: Option<&[usize]>) -> Result<RecordBatch> {
        self.arrive();
        {
            let mut failing = self.failing.lock().unwrap();
            if let Some((chunk, times)) = *failing {
                if chunk == index && times > 0 {
                    *failing = Some((chunk, times - 1));
                    return Err(Error::format(
                        &self.path,
                        format!("chunk {index} is damaged"),
                    ));
                }
            }
        }
        self.decodes[index].fetch_add(1, Ordering::SeqCst);
        let start = index as i64 * CHUNK_ROWS as i64;
        let ids = Int64Array::from_iter_values(start..start + CHUNK_ROWS as i64);
        Ok(RecordBatch::try_new(self.schema.clone(), vec![Arc::new(ids)]).unwrap())
    }
    fn in_memory(&self) -> bool {
        false
    }
}

fn dataset(source: &Arc<CountingSource>) -> Arc<Dataset> {
    let sources = vec![source.clone() as Arc<dyn Source>];
    Arc::new(Dataset::from_sources(Path::new("."), sources, &[Format::Parquet], None).unwrap())
}

/// The automatic shuffle: global, or block over the memory budget.
const AUTO: Option<ShuffleMode> = None;

/// Options with `shuffle` set explicitly (`AUTO`: left at the automatic default).
fn options(shuffle: Option<ShuffleMode>, workers: usize, budget: Option<u64>) -> LoaderOptions {
    let mut o = LoaderOptions::default();
    o.set_batch_size(100).unwrap();
    if let Some(shuffle) = shuffle {
        o.set_shuffle(shuffle);
    }
    o.set_num_workers(workers).unwrap();
    o.set_prefetch(2).unwrap();
    o.set_memory_budget(budget).unwrap();
    o
}

fn loader(
    source: &Arc<CountingSource>,
    shuffle: Option<ShuffleMode>,
    workers: usize,
    budget: Option<u64>,
) -> Loader {
    Loader::from_dataset(dataset(source), &options(shuffle, workers, budget)).unwrap()
}

fn ids_of(batch: &RecordBatch) -> &[i64] {
    batch.column(0).as_primitive::<Int64Type>().values()
}

fn drain(loader: &Loader) -> Vec<i64> {
    let mut ids = Vec::new();
    while let Some(batch) = loader.next_batch().unwrap() {
        ids.extend_from_slice(ids_of(&batch.data));
    }
    ids
}

fn all_ids() -> Vec<i64> {
    (0..ROWS as i64).collect()
}

#[test]
fn each_chunk_is_decoded_once_per_epoch() {
    for shuffle in [Some(ShuffleMode::None), AUTO, Some(ShuffleMode::Block)] {
        for workers in [0, 1, 2, 4] {
            let source = CountingSource::new();
            let loader = loader(&source, shuffle, workers, Some(ROWS * 8 / 3));
            let mut ids = drain(&loader);
            assert_eq!(
                source.decodes(),
                vec![1; CHUNKS],
                "{shuffle:?}, {workers} workers"
            );
            assert_eq!(loader.stats().chunks_decoded, CHUNKS as u64);
            ids.sort();
            assert_eq!(ids, all_ids());

            source.reset();
            loader.set_epoch(1).unwrap();
            drain(&loader);
            assert_eq!(source.decodes(), vec![1; CHUNKS], "again in epoch 1");
        }
    }
}

#[test]
fn workers_share_the_decoding_of_the_chunks_shuffled_batches_need() {
    // Every shuffled batch of 100 rows reads from (nearly) every chunk. The worker building
    // batch 0 decodes one chunk and then waits in it until another thread decodes too: the
    // worker building batch 1 must decode the chunks nobody has started instead of waiting
    // behind the first (which would leave the first waiting its 10 s out alone).
    let source = CountingSource::holding_first();
    let loader = loader(&source, Some(ShuffleMode::Global), 2, None);
    let mut ids = drain(&loader);
    assert_eq!(
        source.threads.lock().unwrap().len(),
        2,
        "one worker decoded alone"
    );
    assert_eq!(source.decodes(), vec![1; CHUNKS]);
    ids.sort();
    assert_eq!(ids, all_ids());
}

#[test]
fn an_automatic_shuffle_over_budget_runs_as_block_and_says_so() {
    let source = CountingSource::new();
    let fits = loader(&source, AUTO, 1, Some(ROWS * 8));
    assert_eq!(fits.stats().shuffle, ShuffleMode::Global);
    let tight_budget = Some(ROWS * 8 / 4);
    let tight = loader(&source, AUTO, 1, tight_budget);
    assert_eq!(tight.stats().shuffle, ShuffleMode::Block);
    assert_eq!(tight.stats().shuffle_requested, None);
    assert_eq!(tight.stats().decoded_bytes, ROWS * 8);
    assert_eq!(tight.stats().memory_budget, ROWS * 8 / 4);
    let reference = drain(&tight);
    assert_ne!(reference, all_ids());
    let mut sorted = reference.clone();
    sorted.sort();
    assert_eq!(sorted, all_ids());

    // Its resume token resumes the block order, although the automatic shuffle would now run
    // global (the options leave the budget at its default, which fits).
    let first = loader(&source, AUTO, 2, tight_budget);
    first.next_batch().unwrap();
    let mut resume = options(AUTO, 2, None);
    resume.set_resume_state(&first.save_state()).unwrap();
    let resumed = Loader::from_dataset(dataset(&source), &resume).unwrap();
    assert_eq!(resumed.stats().shuffle, ShuffleMode::Block);
    assert_eq!(drain(&resumed), reference[100..]);

    // A global shuffle asked for explicitly does not run as block: it fails to open.
    let err = Loader::from_dataset(
        dataset(&source),
        &options(Some(ShuffleMode::Global), 1, tight_budget),
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::OutOfMemory { needed, .. } if needed == ROWS * 8),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&format!("memory budget ({} bytes)", ROWS * 8 / 4)),
        "{err}"
    );
}

#[test]
fn a_failing_chunk_fails_its_batch_once_then_the_retry_delivers_it() {
    for workers in [0, 2] {
        let source = CountingSource::new();
        *source.failing.lock().unwrap() = Some((3, 1));
        let loader = loader(&source, Some(ShuffleMode::None), workers, None);
        let mut ids = Vec::new();
        let mut errors = 0;
        loop {
            match loader.next_batch() {
                Ok(Some(batch)) => ids.extend_from_slice(ids_of(&batch.data)),
                Ok(None) => break,
                Err(error) => {
                    errors += 1;
                    assert!(error.to_string().contains("chunk 3 is damaged"), "{error}");
                    assert!(errors < 5, "the retry succeeds");
                }
            }
        }
        // Without workers the one failure reaches the consumer; with them, a worker decoding
        // ahead may meet it first, and then the decode on demand is already the retry.
        let expected = if workers == 0 { 1..=1 } else { 0..=1 };
        assert!(
            expected.contains(&errors),
            "{workers} workers: {errors} errors"
        );
        assert_eq!(ids, all_ids(), "nothing lost, nothing repeated");
    }
}

#[test]
fn a_chunk_that_always_fails_stops_the_epoch_at_its_batch_without_skipping() {
    for workers in [0, 2] {
        let source = CountingSource::new();
        *source.failing.lock().unwrap() = Some((3, usize::MAX));
        let loader = loader(&source, Some(ShuffleMode::None), workers, None);
        let mut delivered = 0;
        while let Ok(Some(batch)) = loader.next_batch() {
            delivered += batch.num_rows();
        }
        // Chunk 3 holds rows 750..1000: the batches before row 700 are whole, the next one fails.
        assert_eq!(delivered, 700, "{workers} workers");
        for _ in 0..3 {
            let error = loader.next_batch().unwrap_err();
            assert!(error.to_string().contains("chunk 3 is damaged"), "{error}");
        }
    }
}
