//! What the reader targets do with an input: write it to a file with the format's extension,
//! open it through the dataset open path with a modest memory budget, read every chunk, and
//! (for one input in four) run a short epoch of a loader over it (planning, slicing, gathering
//! across chunks).
//!
//! A crash is: an abort (an allocation the fuzzer's 2 GiB malloc/RSS limits refuse included),
//! a panic that escapes (decoders' panics are caught by the sources and become format errors:
//! those are not crashes unless `ZENITH_FUZZ_STRICT_PANICS=1`), a time-out, a stack overflow,
//! or an answer that breaks the contract: a chunk that does not hold the rows its metadata
//! says, or an `Error::Panic`/`Error::Internal` (a bug in Zenith by definition).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Once, OnceLock};

use zenith_core::dataset::{Dataset, DatasetOptions, SourceOptions};
use zenith_core::loader::ShuffleMode;
use zenith_core::{Error, Loader, LoaderOptions};

/// The memory budget of every open: roomy for the seeds, far below the fuzzer's 2 GiB limits,
/// so a size that the checks fail to stop shows up as a crash.
pub const BUDGET: u64 = 64 << 20;

/// Datasets of at most this many rows also run a loader epoch.
const EPOCH_ROWS: u64 = 4096;

/// libfuzzer-sys aborts on every panic, caught or not. Panics that the sources catch (decoders
/// rejecting hostile input) are part of the contract; only escaping ones are crashes, and
/// libfuzzer-sys still aborts on those after its `catch_unwind`.
pub fn quiet_caught_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("ZENITH_FUZZ_STRICT_PANICS").is_none() {
            std::panic::set_hook(Box::new(|_| {}));
        }
    });
}

/// One file per process, rewritten for every input.
fn input_path(ext: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("zenith-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the fuzz input directory");
        dir
    });
    dir.join(format!("input.{ext}"))
}

/// Errors are fine (the input is hostile) except those that say Zenith itself broke.
pub fn check(error: Error) {
    if let Error::Panic(_) | Error::Internal(_) = error {
        panic!("a bug, not an input error: {error}");
    }
}

/// The reader targets' body: `data` as a file named `input.<ext>`.
pub fn open_and_read(data: &[u8], ext: &str) {
    quiet_caught_panics();
    let path = input_path(ext);
    std::fs::write(&path, data).expect("write the fuzz input");
    let options = DatasetOptions {
        source: SourceOptions {
            memory_budget: Some(BUDGET),
            ..SourceOptions::default()
        },
        ..DatasetOptions::default()
    };
    let dataset = match Dataset::open(&path, &options) {
        Ok(dataset) => dataset,
        Err(error) => return check(error),
    };
    for (chunk, info) in dataset.chunks().iter().enumerate() {
        match dataset.read_chunk(chunk) {
            Ok(batch) => assert_eq!(batch.num_rows() as u64, info.rows, "chunk {chunk}"),
            Err(error) => check(error),
        }
    }
    // One input in four (by content, so a crash reproduces) also runs an epoch: it costs more
    // than the open and covers code that varies less with the input.
    let sampled = data.iter().fold(0u8, |h, &b| h.rotate_left(1) ^ b) % 4 == 0;
    if sampled && dataset.num_rows() <= EPOCH_ROWS {
        epoch(Arc::new(dataset));
    }
}

/// A global-shuffle epoch in batches of 7 rows (across chunk boundaries), built on this thread.
fn epoch(dataset: Arc<Dataset>) {
    let mut options = LoaderOptions::default();
    options.set_batch_size(7).unwrap();
    options.set_num_workers(0).unwrap();
    options.set_shard(0, 1).unwrap();
    options.set_shuffle(ShuffleMode::Global);
    options.set_memory_budget(Some(BUDGET)).unwrap();
    let rows = dataset.num_rows();
    let loader = match Loader::from_dataset(dataset, &options) {
        Ok(loader) => loader,
        Err(error) => return check(error),
    };
    let mut delivered = 0u64;
    loop {
        match loader.next_batch() {
            Ok(Some(batch)) => delivered += batch.data.num_rows() as u64,
            Ok(None) => break,
            // A chunk that does not decode stops the epoch at its batch.
            Err(error) => return check(error),
        }
    }
    assert_eq!(delivered, rows, "an epoch delivers every row once");
}
