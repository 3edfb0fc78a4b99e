//! The status codes a C caller gets for files that change while being read, special files
//! (FIFOs, devices), directory loops and oversized walks, and what a write through a zero-copy
//! DLPack tensor does. Each scenario that used to crash or hang runs in a child process with a
//! timeout ([`common::isolated`]).

// Every unsafe block here calls the C API with pointers to live locals, as its docs require.
#![allow(clippy::undocumented_unsafe_blocks)]

#[path = "../../core/tests/common/mod.rs"]
mod common;
#[path = "../../core/tests/fake_sysfs/mod.rs"]
mod fake_sysfs;

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr;
use std::time::{Duration, SystemTime};

use arrow_array::ffi::from_ffi;
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{Array, StructArray};
use arrow_data::ffi::FFI_ArrowArray;
use arrow_schema::ffi::FFI_ArrowSchema;
use common::data_file;
use common::isolated::isolated;
use fake_sysfs::FakeSysfs;
use zenith::batch::*;
use zenith::error::*;
use zenith::loader::*;
use zenith::options::*;
use zenith::status::*;
use zenith::topology::*;
use zenith_core::batch::dlpack::{DLManagedTensorVersioned, DLPACK_FLAG_BITMASK_READ_ONLY};

const TIMEOUT: Duration = Duration::from_secs(120);

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_encoded_bytes()).unwrap()
}

fn mkfifo(path: &Path) {
    assert_eq!(unsafe { libc::mkfifo(c_path(path).as_ptr(), 0o644) }, 0);
}

/// A private copy of test file `name`, last modified long ago.
fn private_copy(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(Path::new(name).file_name().unwrap());
    std::fs::copy(data_file(name), &path).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000))
        .unwrap();
    path
}

fn truncate(path: &Path) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(0)
        .unwrap();
}

/// Takes ownership of an error object: its code and message.
fn take_error(err: *mut zenith_error) -> (zenith_status, String) {
    assert!(!err.is_null(), "an error object was written");
    unsafe {
        let code = zenith_error_code(err);
        let message = CStr::from_ptr(zenith_error_message(err))
            .to_str()
            .unwrap()
            .to_owned();
        zenith_error_free(err);
        (code, message)
    }
}

/// Opens `path` unshuffled, with `workers` workers and the I/O backend `backend`: the status,
/// and the loader on success (or the error message).
fn open(
    path: &Path,
    workers: usize,
    backend: zenith_io_backend,
) -> Result<*mut zenith_loader, (zenith_status, String)> {
    let mut opts = ptr::null_mut();
    let mut loader = ptr::null_mut();
    let mut err = ptr::null_mut();
    unsafe {
        assert_eq!(zenith_loader_options_new(&mut opts), ZENITH_OK);
        assert_eq!(
            zenith_loader_options_set_batch_size(opts, 1000, &mut err),
            ZENITH_OK
        );
        assert_eq!(
            zenith_loader_options_set_shuffle(opts, ZENITH_SHUFFLE_NONE, &mut err),
            ZENITH_OK
        );
        assert_eq!(
            zenith_loader_options_set_num_workers(opts, workers, &mut err),
            ZENITH_OK
        );
        assert_eq!(
            zenith_loader_options_set_io_backend(opts, backend, &mut err),
            ZENITH_OK
        );
        let status = zenith_loader_open(c_path(path).as_ptr(), opts, &mut loader, &mut err);
        zenith_loader_options_free(opts);
        if status == ZENITH_OK {
            assert!(err.is_null());
            Ok(loader)
        } else {
            assert!(loader.is_null(), "*out untouched on failure");
            let (code, message) = take_error(err);
            assert_eq!(code, status);
            Err((status, message))
        }
    }
}

/// The next batch through `zenith_loader_next`, imported: `Ok(None)` at the end of the epoch.
fn next(loader: *mut zenith_loader) -> Result<Option<StructArray>, (zenith_status, String)> {
    let mut array = FFI_ArrowArray::empty();
    let mut schema = FFI_ArrowSchema::empty();
    let mut err = ptr::null_mut();
    let status = unsafe { zenith_loader_next(loader, &mut array, &mut schema, &mut err) };
    match status {
        ZENITH_OK => {
            let data = unsafe { from_ffi(array, &schema) }.unwrap();
            Ok(Some(StructArray::from(data)))
        }
        ZENITH_DONE => Ok(None),
        status => {
            let (code, message) = take_error(err);
            assert_eq!(code, status);
            Err((status, message))
        }
    }
}

fn set_epoch(loader: *mut zenith_loader, epoch: u64) -> Result<(), (zenith_status, String)> {
    let mut err = ptr::null_mut();
    match unsafe { zenith_loader_set_epoch(loader, epoch, &mut err) } {
        ZENITH_OK => Ok(()),
        status => Err((status, take_error(err).1)),
    }
}

fn fallback_reason(loader: *mut zenith_loader) -> String {
    let mut buf = vec![0 as std::ffi::c_char; 4096];
    let mut len = 0;
    let mut err = ptr::null_mut();
    let status = unsafe {
        zenith_loader_io_fallback_reason(loader, buf.as_mut_ptr(), buf.len(), &mut len, &mut err)
    };
    assert_eq!(status, ZENITH_OK);
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned()
}

/// Reads every byte of every buffer of an imported batch (a batch whose pages are gone faults).
fn touch(batch: &StructArray) -> u64 {
    fn walk(data: &arrow_data::ArrayData, sum: &mut u64) {
        for buffer in data.buffers() {
            *sum = buffer
                .as_slice()
                .iter()
                .fold(*sum, |s, &b| s.wrapping_add(b as u64));
        }
        data.child_data().iter().for_each(|c| walk(c, sum));
    }
    let mut sum = 0;
    walk(&batch.to_data(), &mut sum);
    sum
}

fn assert_changed((status, message): (zenith_status, String), path: &Path) {
    assert_eq!(status, ZENITH_ERR_IO, "{message}");
    assert!(message.contains("changed while being read"), "{message}");
    assert!(message.contains(&*path.display().to_string()), "{message}");
}

#[test]
fn a_fifo_given_as_the_path_is_invalid_argument() {
    isolated(
        "a_fifo_given_as_the_path_is_invalid_argument",
        TIMEOUT,
        || {
            let dir = tempfile::tempdir().unwrap();
            let fifo = dir.path().join("pipe.arrow");
            mkfifo(&fifo);
            let (status, message) = open(&fifo, 0, ZENITH_IO_MMAP).unwrap_err();
            assert_eq!(status, ZENITH_ERR_INVALID_ARGUMENT, "{message}");
            assert!(message.contains("not a regular file (a FIFO)"), "{message}");
            let (status, message) = open(Path::new("/dev/null"), 0, ZENITH_IO_MMAP).unwrap_err();
            assert_eq!(status, ZENITH_ERR_INVALID_ARGUMENT, "{message}");
        },
    );
}

#[test]
fn fifos_and_loops_in_a_directory_or_glob_are_skipped_and_walks_are_bounded() {
    isolated(
        "fifos_and_loops_in_a_directory_or_glob_are_skipped_and_walks_are_bounded",
        TIMEOUT,
        || {
            let dir = tempfile::tempdir().unwrap();
            let shards = dir.path().join("shards");
            std::fs::create_dir(&shards).unwrap();
            private_copy(&shards, "basic.arrow");
            mkfifo(&shards.join("zz.arrow"));
            std::os::unix::fs::symlink(".", shards.join("self")).unwrap();
            for path in [shards.clone(), shards.join("**/*.arrow")] {
                let loader = open(&path, 1, ZENITH_IO_MMAP).unwrap();
                assert_eq!(unsafe { zenith_loader_num_batches(loader) }, 10);
                let reason = fallback_reason(loader);
                assert!(reason.contains("zz.arrow: not a regular file"), "{reason}");
                assert!(reason.contains("loops back"), "{reason}");
                unsafe { zenith_loader_free(loader) };
            }
            let mut deep = dir.path().join("deep");
            for _ in 0..=zenith_core::dataset::discover::MAX_DEPTH {
                deep.push("d");
            }
            std::fs::create_dir_all(&deep).unwrap();
            private_copy(&deep, "basic.arrow");
            let (status, message) = open(&dir.path().join("deep"), 0, ZENITH_IO_MMAP).unwrap_err();
            assert_eq!(status, ZENITH_ERR_INVALID_ARGUMENT, "{message}");
            assert!(message.contains("levels deep"), "{message}");
        },
    );
}

#[test]
fn a_fifo_in_a_sysfs_tree_is_a_format_error() {
    isolated("a_fifo_in_a_sysfs_tree_is_a_format_error", TIMEOUT, || {
        let fake = FakeSysfs::new();
        fake.node(0, "0-3", 1 << 20, 1 << 19, "10")
            .fifo("devices/system/cpu/online");
        let mut topology = ptr::null_mut();
        let mut err = ptr::null_mut();
        let root = c_path(fake.root());
        let status = unsafe { zenith_topology_discover_at(root.as_ptr(), &mut topology, &mut err) };
        assert!(topology.is_null());
        let (code, message) = take_error(err);
        assert_eq!(
            (status, code),
            (ZENITH_ERR_FORMAT, ZENITH_ERR_FORMAT),
            "{message}"
        );
        assert!(message.contains("not a regular file"), "{message}");
    });
}

#[test]
fn truncated_or_rewritten_mapped_files_are_io_errors() {
    isolated(
        "truncated_or_rewritten_mapped_files_are_io_errors",
        TIMEOUT,
        || {
            let dir = tempfile::tempdir().unwrap();
            // zenith_loader_next and zenith_loader_set_epoch, on an IPC file and a Parquet file.
            for name in ["basic.arrow", "parquet/basic.none.parquet"] {
                let path = private_copy(dir.path(), name);
                let loader = open(&path, 0, ZENITH_IO_MMAP).unwrap();
                touch(&next(loader).unwrap().unwrap());
                truncate(&path);
                assert_changed(next(loader).unwrap_err(), &path);
                assert_changed(set_epoch(loader, 1).unwrap_err(), &path);
                unsafe { zenith_loader_free(loader) };
            }

            // The C stream's get_next: EIO and the message through get_last_error.
            let path = private_copy(dir.path(), "single_batch.arrow");
            let loader = open(&path, 0, ZENITH_IO_MMAP).unwrap();
            let mut stream = FFI_ArrowArrayStream::empty();
            let mut err = ptr::null_mut();
            assert_eq!(
                unsafe { zenith_loader_export_stream(loader, &mut stream, &mut err) },
                ZENITH_OK
            );
            unsafe { zenith_loader_free(loader) };
            truncate(&path);
            let mut array = FFI_ArrowArray::empty();
            let get_next = stream.get_next().unwrap();
            let errno = unsafe { get_next(&mut stream, &mut array) };
            assert_eq!(errno, libc::EIO);
            let last = unsafe { CStr::from_ptr((stream.get_last_error().unwrap())(&mut stream)) };
            assert!(
                last.to_str().unwrap().contains("changed while being read"),
                "{last:?}"
            );
            drop(stream);

            // Rewritten in place after a whole epoch was read (and cached).
            let path = private_copy(dir.path(), "basic.arrow");
            let loader = open(&path, 2, ZENITH_IO_MMAP).unwrap();
            while let Some(batch) = next(loader).unwrap() {
                touch(&batch);
            }
            let len = std::fs::metadata(&path).unwrap().len() as usize;
            std::fs::write(&path, vec![0x7f; len]).unwrap();
            assert_changed(set_epoch(loader, 1).unwrap_err(), &path);
            unsafe { zenith_loader_free(loader) };
        },
    );
}

#[test]
fn ipc_files_read_with_pread_own_their_memory() {
    isolated(
        "ipc_files_read_with_pread_own_their_memory",
        TIMEOUT,
        || {
            let dir = tempfile::tempdir().unwrap();
            let path = private_copy(dir.path(), "basic.arrow");
            let loader = open(&path, 0, ZENITH_IO_PREAD).unwrap();
            let first = next(loader).unwrap().unwrap();
            let mut stats = zenith_stats {
                struct_size: std::mem::size_of::<zenith_stats>(),
                ..unsafe { std::mem::zeroed() }
            };
            let mut err = ptr::null_mut();
            assert_eq!(
                unsafe { zenith_loader_stats(loader, &mut stats, &mut err) },
                ZENITH_OK
            );
            assert_eq!(stats.io_backend, ZENITH_IO_PREAD);
            truncate(&path);
            // The exported array does not depend on the file; the next read fails cleanly.
            touch(&first);
            assert_changed(next(loader).unwrap_err(), &path);
            unsafe { zenith_loader_free(loader) };
            touch(&first);
            assert_eq!(first.len(), 1000);
        },
    );
}

#[test]
fn writing_through_a_zero_copy_tensor_leaves_the_file_alone() {
    isolated(
        "writing_through_a_zero_copy_tensor_leaves_the_file_alone",
        TIMEOUT,
        || {
            let dir = tempfile::tempdir().unwrap();
            let path = private_copy(dir.path(), "basic.arrow");
            let on_disk = std::fs::read(&path).unwrap();
            let loader = open(&path, 0, ZENITH_IO_MMAP).unwrap();
            let mut batch = ptr::null_mut();
            let mut err = ptr::null_mut();
            assert_eq!(
                unsafe { zenith_loader_next_batch(loader, &mut batch, &mut err) },
                ZENITH_OK
            );
            let mut tensor: *mut DLManagedTensorVersioned = ptr::null_mut();
            let column = CString::new("value").unwrap();
            assert_eq!(
                unsafe {
                    zenith_batch_column_dlpack(batch, column.as_ptr(), &mut tensor, &mut err)
                },
                ZENITH_OK
            );
            let managed = unsafe { &mut *tensor };
            assert_ne!(managed.flags & DLPACK_FLAG_BITMASK_READ_ONLY, 0);
            let rows = unsafe { *managed.dl_tensor.shape } as usize;
            let data = managed.dl_tensor.data.cast::<f64>();
            // x.mul_(2), as torch does it whatever the flag says.
            for i in 0..rows {
                unsafe { data.add(i).write(data.add(i).read() * 2.0) };
            }
            assert_eq!(unsafe { data.add(3).read() }, 3.0);
            unsafe { (managed.deleter.unwrap())(tensor) };
            unsafe { zenith_batch_free(batch) };
            unsafe { zenith_loader_free(loader) };
            assert!(std::fs::read(&path).unwrap() == on_disk, "the file changed");
        },
    );
}
