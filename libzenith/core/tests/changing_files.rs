//! Files that change while a loader reads them (truncated, rewritten in place) are reported as
//! I/O errors instead of crashing the process, Arrow IPC files can be read into owned memory
//! (`IoBackend::Pread`), and writes through zero-copy DLPack tensors of mapped files never reach
//! the file or fault.
//!
//! Each scenario that crashed (SIGBUS, SIGSEGV) before the fix runs in a child process
//! ([`common::isolated`]), so a crash fails that test instead of killing the test run.

mod common;

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, RecordBatch};
use common::isolated::isolated;
use common::{BASIC_ROWS, assert_basic_columns, assert_basic_rows, data_file};
use zenith_core::batch::dlpack::DLPACK_FLAG_BITMASK_READ_ONLY;
use zenith_core::error::ErrorKind;
use zenith_core::loader::ShuffleMode;
use zenith_core::runtime::io::IoBackend;
use zenith_core::{Error, Loader, LoaderOptions};

const TIMEOUT: Duration = Duration::from_secs(120);

/// A private copy of test file `name` in `dir`, last modified long ago (so that a rewrite is
/// seen as a new modification time on any file system's timestamp granularity).
fn private_copy(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(Path::new(name).file_name().unwrap());
    std::fs::copy(data_file(name), &path).unwrap();
    let file = File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000))
        .unwrap();
    path
}

fn options(batch_size: usize, workers: usize, backend: IoBackend) -> LoaderOptions {
    let mut o = LoaderOptions::default();
    o.set_batch_size(batch_size).unwrap();
    o.set_shuffle(ShuffleMode::None);
    o.set_num_workers(workers).unwrap();
    o.set_prefetch(4).unwrap();
    o.set_io_backend(backend);
    o
}

/// Reads every byte a batch's columns expose, as a consumer would (a batch whose pages are gone
/// faults here).
fn touch(batch: &RecordBatch) -> u64 {
    let mut sum = 0u64;
    for column in batch.columns() {
        let data = column.to_data();
        for buffer in data.buffers() {
            sum = buffer
                .as_slice()
                .iter()
                .fold(sum, |s, &b| s.wrapping_add(b as u64));
        }
        if let Some(strings) = column.as_string_opt::<i32>() {
            for i in 0..strings.len() {
                sum = strings
                    .value(i)
                    .bytes()
                    .fold(sum, |s, b| s.wrapping_add(b as u64));
            }
        }
    }
    sum
}

fn truncate(path: &Path, len: u64) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// Overwrites the file in place (same inode, same size) with i32 pairs (0, 0x7fff0000): string
/// offsets read from it point gigabytes past their data.
fn rewrite_in_place(path: &Path) {
    let len = std::fs::metadata(path).unwrap().len() as usize;
    let pattern: Vec<u8> = [0u8, 0, 0, 0, 0, 0, 0xff, 0x7f]
        .into_iter()
        .cycle()
        .take(len)
        .collect();
    let mut file = OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.write_all(&pattern).unwrap();
    file.sync_all().unwrap();
}

fn assert_changed(err: &Error, path: &Path) {
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    let text = err.to_string();
    assert!(text.contains("changed while being read"), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
}

/// Waits until the workers have built the batches the prefetch window allows (they then sleep:
/// nothing of the file is read until the consumer takes one).
fn wait_for_prefetch(loader: &Loader, batches: u64) {
    let started = std::time::Instant::now();
    while loader.stats().queue_depth < batches {
        assert!(
            started.elapsed() < TIMEOUT,
            "workers never filled the window"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn truncating_a_mapped_ipc_file_is_an_io_error_not_sigbus() {
    isolated(
        "truncating_a_mapped_ipc_file_is_an_io_error_not_sigbus",
        TIMEOUT,
        || {
            let dir = tempfile::tempdir().unwrap();
            for workers in [0, 2] {
                let path = private_copy(dir.path(), "basic.arrow");
                let loader = Loader::open(&path, &options(500, workers, IoBackend::Mmap)).unwrap();
                let first = loader.next_batch().unwrap().unwrap();
                touch(&first.data);
                if workers > 0 {
                    // Batches built from the mapping before the truncation wait in the ring.
                    wait_for_prefetch(&loader, 4);
                }
                truncate(&path, 0);
                let err = loader.next_batch().unwrap_err();
                assert_changed(&err, &path);
                // Still an error, not a crash, when retried; so is a new epoch.
                assert_changed(&loader.next_batch().unwrap_err(), &path);
                assert_changed(&loader.set_epoch(1).unwrap_err(), &path);
            }
        },
    );
}

#[test]
fn truncating_a_mapped_ipc_stream_is_an_io_error_not_sigbus() {
    isolated(
        "truncating_a_mapped_ipc_stream_is_an_io_error_not_sigbus",
        TIMEOUT,
        || {
            let dir = tempfile::tempdir().unwrap();
            let path = private_copy(dir.path(), "basic.arrows");
            let loader = Loader::open(&path, &options(500, 0, IoBackend::Mmap)).unwrap();
            touch(&loader.next_batch().unwrap().unwrap().data);
            truncate(&path, 100);
            assert_changed(&loader.next_batch().unwrap_err(), &path);
        },
    );
}

#[test]
fn truncating_a_mapped_parquet_file_is_an_io_error_not_sigbus() {
    isolated(
        "truncating_a_mapped_parquet_file_is_an_io_error_not_sigbus",
        TIMEOUT,
        || {
            let dir = tempfile::tempdir().unwrap();
            for workers in [0, 2] {
                let path = private_copy(dir.path(), "parquet/basic.none.parquet");
                let loader = Loader::open(&path, &options(500, workers, IoBackend::Mmap)).unwrap();
                touch(&loader.next_batch().unwrap().unwrap().data);
                if workers > 0 {
                    wait_for_prefetch(&loader, 4);
                }
                truncate(&path, 0);
                // Batches decoded before the truncation are owned memory and may still come;
                // the first one that needs the file again fails.
                let err = loop {
                    match loader.next_batch() {
                        Ok(Some(batch)) => {
                            touch(&batch.data);
                        }
                        Ok(None) => panic!("the epoch ended without noticing the truncation"),
                        Err(err) => break err,
                    }
                };
                assert_changed(&err, &path);
                assert_changed(&loader.set_epoch(1).unwrap_err(), &path);
            }
        },
    );
}

#[test]
fn rewriting_a_mapped_ipc_file_in_place_is_an_io_error_not_a_segfault() {
    isolated(
        "rewriting_a_mapped_ipc_file_in_place_is_an_io_error_not_a_segfault",
        TIMEOUT,
        || {
            let dir = tempfile::tempdir().unwrap();
            // A whole epoch read: every record batch is decoded, validated and cached.
            let path = private_copy(dir.path(), "basic.arrow");
            let loader = Loader::open(&path, &options(1000, 0, IoBackend::Mmap)).unwrap();
            let mut next_id = 0;
            while let Some(batch) = loader.next_batch().unwrap() {
                assert_basic_columns(&batch.data, next_id);
                next_id += batch.num_rows() as i64;
            }
            rewrite_in_place(&path);
            // The cached batches' offsets now point outside their data: never served again.
            assert_changed(&loader.set_epoch(1).unwrap_err(), &path);
            assert_changed(&loader.set_epoch(2).unwrap_err(), &path);
            // The failed calls left the finished epoch as it was.
            assert!(loader.next_batch().unwrap().is_none());

            // Mid-epoch: the first batch's record batches are cached, then the file changes.
            let path = private_copy(dir.path(), "single_batch.arrow");
            let loader = Loader::open(&path, &options(1000, 2, IoBackend::Mmap)).unwrap();
            touch(&loader.next_batch().unwrap().unwrap().data);
            wait_for_prefetch(&loader, 4);
            rewrite_in_place(&path);
            assert_changed(&loader.next_batch().unwrap_err(), &path);
        },
    );
}

/// Whether the process maps `path` (per /proc/self/maps).
fn is_mapped(path: &Path) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .any(|line| line.ends_with(&*path.display().to_string()))
}

#[test]
fn ipc_files_read_with_pread_are_owned_memory_and_survive_truncation() {
    isolated(
        "ipc_files_read_with_pread_are_owned_memory_and_survive_truncation",
        TIMEOUT,
        || {
            let dir = tempfile::tempdir().unwrap();
            for name in ["basic.arrow", "basic.arrows", "dictionary.arrow"] {
                let path = private_copy(dir.path(), name);
                // Same rows as the mapped read; nothing of the file is mapped.
                let mapped = Loader::open(&path, &options(777, 2, IoBackend::Mmap)).unwrap();
                let read = Loader::open(&path, &options(777, 2, IoBackend::Pread)).unwrap();
                let mut held = Vec::new();
                loop {
                    let a = mapped.next_batch().unwrap();
                    let b = read.next_batch().unwrap();
                    match (a, b) {
                        (Some(a), Some(b)) => {
                            assert_eq!(a.data, b.data, "{name}");
                            held.push(b.data);
                        }
                        (None, None) => break,
                        other => panic!("{name}: epochs differ in length: {other:?}"),
                    }
                }
                assert_eq!(read.stats().io_backend, IoBackend::Pread, "{name}");
                assert!(read.stats().io_read_bytes > 0, "{name}");
                drop(mapped);
                assert!(!is_mapped(&path), "{name}: a pread loader maps its file");

                // Truncated: the batches already delivered stay readable (owned memory).
                truncate(&path, 0);
                for batch in &held {
                    touch(batch);
                }
                if name.ends_with(".arrows") {
                    // A stream is read whole at open: later epochs need nothing of the file.
                    read.set_epoch(1).unwrap();
                    assert_eq!(read.next_batch().unwrap().unwrap().data, held[0]);
                } else {
                    assert_changed(&read.set_epoch(1).unwrap_err(), &path);
                }
            }
            // Truncated mid-epoch: the next record batch read fails cleanly.
            let path = private_copy(dir.path(), "basic.arrow");
            let read = Loader::open(&path, &options(1000, 0, IoBackend::Pread)).unwrap();
            let first = read.next_batch().unwrap().unwrap();
            truncate(&path, 0);
            assert_changed(&read.next_batch().unwrap_err(), &path);
            assert_basic_rows(&first.data, 0);
            // The values themselves, once more, from the copying path.
            let path = private_copy(dir.path(), "basic.arrow");
            let read = Loader::open(&path, &options(1000, 0, IoBackend::Pread)).unwrap();
            let mut next_id = 0;
            while let Some(batch) = read.next_batch().unwrap() {
                assert_basic_rows(&batch.data, next_id);
                next_id += batch.num_rows() as i64;
            }
            assert_eq!(next_id as u64, BASIC_ROWS);
        },
    );
}

#[test]
fn writing_through_a_zero_copy_dlpack_tensor_never_reaches_the_file() {
    isolated(
        "writing_through_a_zero_copy_dlpack_tensor_never_reaches_the_file",
        TIMEOUT,
        || {
            let dir = tempfile::tempdir().unwrap();
            let path = private_copy(dir.path(), "basic.arrow");
            let on_disk = std::fs::read(&path).unwrap();
            let loader = Loader::open(&path, &options(1000, 0, IoBackend::Mmap)).unwrap();
            let batch = loader.next_batch().unwrap().unwrap();
            let tensor = batch.column_dlpack("id").unwrap();
            // Zero copy: the tensor points into the mapped file.
            assert!(!tensor.is_copy());
            assert_eq!(
                tensor.flags() & DLPACK_FLAG_BITMASK_READ_ONLY,
                DLPACK_FLAG_BITMASK_READ_ONLY,
                "the memory is shared with the loader's other batches: the flag stays set"
            );
            let rows = tensor.shape()[0] as usize;
            let data = tensor.as_dl_tensor().data.cast::<i64>();
            // What `x.mul_(2)` does to the tensor (torch ignores the read-only flag).
            for i in 0..rows {
                // SAFETY: the tensor holds `rows` aligned i64 values and keeps them alive.
                unsafe { data.add(i).write(data.add(i).read() * 2) };
            }
            // SAFETY: as above.
            let doubled: Vec<i64> = (0..rows).map(|i| unsafe { data.add(i).read() }).collect();
            assert_eq!(
                doubled,
                (0..rows as i64).map(|id| id * 2).collect::<Vec<_>>()
            );
            drop(tensor);
            drop(batch);
            drop(loader);
            assert!(
                std::fs::read(&path).unwrap() == on_disk,
                "the write reached the file"
            );
            // Another loader sees the file's values.
            let loader = Loader::open(&path, &options(1000, 0, IoBackend::Mmap)).unwrap();
            let batch = loader.next_batch().unwrap().unwrap();
            let ids = batch.data.column(0).as_primitive::<Int64Type>();
            assert_eq!(ids.value(1), 1);
            assert_basic_rows(&batch.data, 0);
        },
    );
}
