//! The C ABI called directly from Rust: what a C caller sees, imported back through arrow-rs's
//! own C Data Interface importer.

mod common;

use std::ffi::{CStr, CString};
use std::ptr;

use arrow_array::ffi::from_ffi;
use arrow_array::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use arrow_array::{RecordBatch, StructArray};
use arrow_data::ffi::FFI_ArrowArray;
use arrow_schema::ffi::FFI_ArrowSchema;
use common::{BASIC_ROWS, assert_basic_rows, data_file};
use zenith::ffi::error::*;
use zenith::ffi::loader::*;
use zenith::ffi::options::*;
use zenith::status::*;

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
        ZENITH_ERR_NULL_ARGUMENT,
        ZENITH_ERR_INVALID_ARGUMENT,
        ZENITH_ERR_IO,
        ZENITH_ERR_NOT_FOUND,
        ZENITH_ERR_FORMAT,
        ZENITH_ERR_UNSUPPORTED,
        ZENITH_ERR_PANIC,
        ZENITH_ERR_INTERNAL,
        ZENITH_ERR_SCHEMA_MISMATCH,
    ];
    let texts: std::collections::HashSet<&CStr> = codes
        .iter()
        .map(|&c| unsafe { CStr::from_ptr(zenith_status_str(c)) })
        .collect();
    assert_eq!(texts.len(), codes.len());
}
