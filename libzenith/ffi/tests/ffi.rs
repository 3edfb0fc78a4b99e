//! The C ABI called directly from Rust: what a C caller sees, imported back through arrow-rs's
//! own C Data Interface importer.

// Every unsafe block here calls the C API with pointers to live locals, as its docs require;
// what the calls do with them is what these tests check.
#![allow(clippy::undocumented_unsafe_blocks)]

#[path = "../../core/tests/common/mod.rs"]
mod common;

use std::ffi::{CStr, CString};
use std::ptr;

use arrow_array::ffi::from_ffi;
use arrow_array::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use arrow_array::{RecordBatch, StructArray};
use arrow_data::ffi::FFI_ArrowArray;
use arrow_schema::ffi::FFI_ArrowSchema;
use common::{BASIC_ROWS, assert_basic_rows, data_file};
use zenith::batch::*;
use zenith::error::*;
use zenith::loader::*;
use zenith::options::*;
use zenith::status::*;
use zenith_core::batch::dlpack::{
    DLManagedTensorVersioned, DLPACK_FLAG_BITMASK_IS_COPIED, DLPACK_FLAG_BITMASK_READ_ONLY,
    TYPE_CODE_BOOL, TYPE_CODE_FLOAT, TYPE_CODE_INT,
};

fn c_path(name: &str) -> CString {
    CString::new(data_file(name).into_os_string().into_encoded_bytes()).unwrap()
}

fn open(name: &str, batch_size: usize) -> *mut zenith_loader {
    let mut opts = ptr::null_mut();
    let mut loader = ptr::null_mut();
    let mut err = ptr::null_mut();
    unsafe {
        assert_eq!(zenith_loader_options_new(&mut opts), ZENITH_OK);
        assert_eq!(
            zenith_loader_options_set_batch_size(opts, batch_size, &mut err),
            ZENITH_OK
        );
        assert_eq!(
            zenith_loader_options_set_shuffle(opts, ZENITH_SHUFFLE_NONE, &mut err),
            ZENITH_OK
        );
        assert_eq!(
            zenith_loader_open(c_path(name).as_ptr(), opts, &mut loader, &mut err),
            ZENITH_OK
        );
        zenith_loader_options_free(opts);
    }
    assert!(err.is_null());
    loader
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

#[test]
fn next_exports_batches_that_arrow_rs_imports_intact() {
    let loader = open("basic.arrow", 1500);
    let mut next_id = 0i64;
    loop {
        let mut array = FFI_ArrowArray::empty();
        let mut schema = FFI_ArrowSchema::empty();
        let mut err = ptr::null_mut();
        let status = unsafe { zenith_loader_next(loader, &mut array, &mut schema, &mut err) };
        if status == ZENITH_DONE {
            break;
        }
        assert_eq!(status, ZENITH_OK);
        let data = unsafe { from_ffi(array, &schema) }.unwrap();
        let batch = RecordBatch::from(StructArray::from(data));
        assert_basic_rows(&batch, next_id);
        next_id += batch.num_rows() as i64;
    }
    assert_eq!(next_id as u64, BASIC_ROWS);
    unsafe { zenith_loader_free(loader) };
}

#[test]
fn exported_stream_reads_the_rest_of_the_epoch_after_the_loader_is_freed() {
    let loader = open("basic.arrow", 4000);
    let mut stream = FFI_ArrowArrayStream::empty();
    let mut err = ptr::null_mut();
    assert_eq!(
        unsafe { zenith_loader_export_stream(loader, &mut stream, &mut err) },
        ZENITH_OK
    );
    unsafe { zenith_loader_free(loader) };
    let reader = RecordBatchStreamReader::try_new(stream).unwrap();
    let sizes: Vec<usize> = reader
        .scan(0i64, |next_id, batch| {
            let batch = batch.unwrap();
            assert_basic_rows(&batch, *next_id);
            *next_id += batch.num_rows() as i64;
            Some(batch.num_rows())
        })
        .collect();
    assert_eq!(sizes, vec![4000, 4000, 2000]);
}

#[test]
fn failures_report_status_and_message_and_leave_outputs_untouched() {
    let sentinel = 0x5a5a as *mut zenith_loader;
    let mut loader = sentinel;
    let mut err = ptr::null_mut();
    let status = unsafe {
        zenith_loader_open(
            c_path("missing.arrow").as_ptr(),
            ptr::null(),
            &mut loader,
            &mut err,
        )
    };
    assert_eq!(status, ZENITH_ERR_NOT_FOUND);
    assert_eq!(loader, sentinel);
    let (code, message) = take_error(err);
    assert_eq!(code, ZENITH_ERR_NOT_FOUND);
    assert!(message.contains("missing.arrow"), "{message}");

    let mut err = ptr::null_mut();
    let status = unsafe {
        zenith_loader_open(
            c_path("truncated.arrow").as_ptr(),
            ptr::null(),
            &mut loader,
            &mut err,
        )
    };
    assert_eq!(status, ZENITH_ERR_FORMAT);
    assert_eq!(take_error(err).0, ZENITH_ERR_FORMAT);

    let mut err = ptr::null_mut();
    let status = unsafe { zenith_loader_open(ptr::null(), ptr::null(), &mut loader, &mut err) };
    assert_eq!(status, ZENITH_ERR_NULL_ARGUMENT);
    assert!(take_error(err).1.contains("path"));
    assert_eq!(loader, sentinel);

    let mut array = FFI_ArrowArray::empty();
    let mut err = ptr::null_mut();
    let status =
        unsafe { zenith_loader_next(ptr::null_mut(), &mut array, ptr::null_mut(), &mut err) };
    assert_eq!(status, ZENITH_ERR_NULL_ARGUMENT);
    take_error(err);
    assert!(array.is_released(), "a failed call writes nothing");
}

#[test]
fn status_strings_are_static_and_distinct() {
    let codes = [
        ZENITH_OK,
        ZENITH_DONE,
        ZENITH_WOULD_BLOCK,
        ZENITH_ERR_NULL_ARGUMENT,
        ZENITH_ERR_INVALID_ARGUMENT,
        ZENITH_ERR_IO,
        ZENITH_ERR_NOT_FOUND,
        ZENITH_ERR_FORMAT,
        ZENITH_ERR_UNSUPPORTED,
        ZENITH_ERR_PANIC,
        ZENITH_ERR_INTERNAL,
        ZENITH_ERR_SCHEMA_MISMATCH,
        ZENITH_ERR_BUFFER_TOO_SMALL,
        ZENITH_ERR_OUT_OF_MEMORY,
    ];
    let texts: std::collections::HashSet<&CStr> = codes
        .iter()
        .map(|&c| unsafe { CStr::from_ptr(zenith_status_str(c)) })
        .collect();
    assert_eq!(texts.len(), codes.len());
}

/// The next batch of `loader` as a handle.
fn next_batch(loader: *mut zenith_loader) -> *mut zenith_batch {
    let mut batch = ptr::null_mut();
    let mut err = ptr::null_mut();
    assert_eq!(
        unsafe { zenith_loader_next_batch(loader, &mut batch, &mut err) },
        ZENITH_OK
    );
    batch
}

/// `zenith_batch_column_dlpack`: the tensor, or the status and the error object's code and
/// message (the output must then be untouched).
fn column_dlpack(
    batch: *const zenith_batch,
    column: &[u8],
) -> Result<*mut DLManagedTensorVersioned, (zenith_status, zenith_status, String)> {
    let column = CString::new(column).unwrap();
    let sentinel = 0x5a5a as *mut DLManagedTensorVersioned;
    let mut out = sentinel;
    let mut err = ptr::null_mut();
    let status = unsafe { zenith_batch_column_dlpack(batch, column.as_ptr(), &mut out, &mut err) };
    if status == ZENITH_OK {
        assert!(err.is_null());
        assert!(!out.is_null() && out != sentinel);
        Ok(out)
    } else {
        assert_eq!(out, sentinel, "a failed call writes nothing");
        let (code, message) = take_error(err);
        Err((status, code, message))
    }
}

/// Calls the tensor's deleter, as a consumer does exactly once.
fn delete(tensor: *mut DLManagedTensorVersioned) {
    unsafe { ((*tensor).deleter.expect("a deleter"))(tensor) };
}

#[test]
fn dlpack_tensors_of_basic_columns_outlive_batch_and_loader() {
    let loader = open("basic.arrow", 1500);
    let _first = next_batch(loader);
    unsafe { zenith_batch_free(_first) };
    let batch = next_batch(loader); // rows 1500..3000, straddling record batches of the file

    let id = column_dlpack(batch, b"id").unwrap();
    let embedding = column_dlpack(batch, b"embedding").unwrap();
    let flag = column_dlpack(batch, b"flag").unwrap();
    let mut value = ptr::null_mut();
    let status =
        unsafe { zenith_batch_column_dlpack_by_index(batch, 2, &mut value, ptr::null_mut()) };
    assert_eq!(status, ZENITH_OK);
    unsafe {
        zenith_batch_free(batch);
        zenith_loader_free(loader);
    }

    unsafe {
        let t = &(*id).dl_tensor;
        assert_eq!((t.ndim, *t.shape, *t.strides), (1, 1500, 1));
        assert_eq!(
            (t.dtype.code, t.dtype.bits, t.dtype.lanes),
            (TYPE_CODE_INT, 64, 1)
        );
        assert_eq!((*id).flags, DLPACK_FLAG_BITMASK_READ_ONLY);
        let ids = std::slice::from_raw_parts(t.data.cast::<i64>(), 1500);
        assert!(ids.iter().enumerate().all(|(i, &v)| v == 1500 + i as i64));

        let t = &(*embedding).dl_tensor;
        let shape = std::slice::from_raw_parts(t.shape, 2);
        let strides = std::slice::from_raw_parts(t.strides, 2);
        assert_eq!((t.ndim, shape, strides), (2, &[1500, 4][..], &[4, 1][..]));
        assert_eq!((t.dtype.code, t.dtype.bits), (TYPE_CODE_FLOAT, 32));
        let floats = std::slice::from_raw_parts(t.data.cast::<f32>(), 6000);
        for (i, &v) in floats.iter().enumerate() {
            let (row, k) = (1500 + i / 4, i % 4);
            assert_eq!(v, row as f32 + k as f32 / 4.0);
        }

        let t = &(*flag).dl_tensor;
        assert_eq!((t.dtype.code, t.dtype.bits), (TYPE_CODE_BOOL, 8));
        assert_eq!((*flag).flags, DLPACK_FLAG_BITMASK_IS_COPIED);
        let flags = std::slice::from_raw_parts(t.data.cast::<u8>(), 1500);
        assert!(
            flags
                .iter()
                .enumerate()
                .all(|(i, &v)| v == u8::from((1500 + i) % 3 == 0))
        );

        let t = &(*value).dl_tensor;
        let values = std::slice::from_raw_parts(t.data.cast::<f64>(), 1500);
        assert!(
            values
                .iter()
                .enumerate()
                .all(|(i, &v)| v == (1500 + i) as f64 * 0.5)
        );
    }
    for tensor in [id, embedding, flag, value] {
        delete(tensor);
    }
}

#[test]
fn dlpack_failures_report_status_and_message_and_leave_out_untouched() {
    let loader = open("basic.arrow", 100);
    let batch = next_batch(loader);

    let (status, code, message) = column_dlpack(batch, b"name").unwrap_err();
    assert_eq!(
        (status, code),
        (ZENITH_ERR_UNSUPPORTED, ZENITH_ERR_UNSUPPORTED)
    );
    assert!(
        message.contains("`name`") && message.contains("Utf8"),
        "{message}"
    );

    let (status, _, message) = column_dlpack(batch, b"no_such_column").unwrap_err();
    assert_eq!(status, ZENITH_ERR_INVALID_ARGUMENT);
    assert!(message.contains("`no_such_column`"), "{message}");

    let (status, _, message) = column_dlpack(batch, b"bad\xff utf8").unwrap_err();
    assert_eq!(status, ZENITH_ERR_INVALID_ARGUMENT);
    assert!(message.contains("UTF-8"), "{message}");

    let (status, _, _) = column_dlpack(ptr::null(), b"id").unwrap_err();
    assert_eq!(status, ZENITH_ERR_NULL_ARGUMENT);

    let mut out = ptr::null_mut();
    let mut err = ptr::null_mut();
    unsafe {
        let status = zenith_batch_column_dlpack(batch, ptr::null(), &mut out, &mut err);
        assert_eq!(status, ZENITH_ERR_NULL_ARGUMENT);
        assert!(take_error(err).1.contains("column"));
        let status =
            zenith_batch_column_dlpack(batch, c"id".as_ptr(), ptr::null_mut(), ptr::null_mut());
        assert_eq!(status, ZENITH_ERR_NULL_ARGUMENT, "NULL err is allowed");
        let mut err = ptr::null_mut();
        let status = zenith_batch_column_dlpack_by_index(batch, 6, &mut out, &mut err);
        assert_eq!(status, ZENITH_ERR_INVALID_ARGUMENT);
        assert!(take_error(err).1.contains("6"));
        let status = zenith_batch_column_dlpack_by_index(batch, 3, &mut out, ptr::null_mut());
        assert_eq!(status, ZENITH_ERR_UNSUPPORTED);
        assert!(out.is_null());
        zenith_batch_free(batch);
        zenith_loader_free(loader);
    }
}
