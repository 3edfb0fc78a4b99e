//! The C ABI of the formats users have: the CSV delimiter, header and schema setters (an
//! `ArrowSchema` copied, never consumed; released or non-struct schemas refused) and
//! `zenith_loader_open_paths` (NULL entries, an empty list).

// Every unsafe block here calls the C API with pointers to live locals (or NULL where a test
// checks the NULL policy), as its docs require; what the calls do with them is what these tests
// check.
#![allow(clippy::undocumented_unsafe_blocks)]

#[path = "../../core/tests/common/mod.rs"]
mod common;

use std::ffi::{CStr, CString};
use std::ptr;

use arrow_schema::ffi::FFI_ArrowSchema;
use arrow_schema::{DataType, Field, Schema};
use common::{BASIC_ROWS, data_file};
use zenith::error::*;
use zenith::loader::*;
use zenith::options::*;
use zenith::status::*;

fn c_path(name: &str) -> CString {
    CString::new(data_file(name).into_os_string().into_encoded_bytes()).unwrap()
}

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

fn options() -> *mut zenith_loader_options {
    let mut opts = ptr::null_mut();
    unsafe {
        assert_eq!(zenith_loader_options_new(&mut opts), ZENITH_OK);
        assert_eq!(
            zenith_loader_options_set_shuffle(opts, ZENITH_SHUFFLE_NONE, ptr::null_mut()),
            ZENITH_OK
        );
        assert_eq!(
            zenith_loader_options_set_batch_size(opts, 1, ptr::null_mut()),
            ZENITH_OK
        );
        assert_eq!(
            zenith_loader_options_set_shard_none(opts, ptr::null_mut()),
            ZENITH_OK
        );
    }
    opts
}

/// Rows per epoch: batches of one row each (see `options`).
fn rows(loader: *mut zenith_loader) -> u64 {
    unsafe { zenith_loader_num_batches(loader) }
}

#[test]
fn csv_options_and_a_given_schema_reach_the_loader() {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("label", DataType::Int32, false),
        Field::new("value", DataType::Float64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("flag", DataType::Boolean, false),
    ]);
    let c_schema = FFI_ArrowSchema::try_from(&schema).unwrap();
    let opts = options();
    let mut err = ptr::null_mut();
    let mut loader = ptr::null_mut();
    unsafe {
        assert_eq!(
            zenith_loader_options_set_csv_header(opts, false, &mut err),
            ZENITH_OK
        );
        assert_eq!(
            zenith_loader_options_set_schema(opts, &c_schema, &mut err),
            ZENITH_OK
        );
        // Copied, not consumed: the caller's schema is still whole.
        assert!(c_schema.release().is_some());
        assert_eq!(
            zenith_loader_open(
                c_path("formats/noheader.csv").as_ptr(),
                opts,
                &mut loader,
                &mut err
            ),
            ZENITH_OK
        );
        assert_eq!(rows(loader), BASIC_ROWS);
        zenith_loader_free(loader);

        // '|' under a .csv name needs the delimiter; '\n' cannot be one.
        assert_eq!(
            zenith_loader_options_set_csv_delimiter(opts, b'\n', &mut err),
            ZENITH_ERR_INVALID_ARGUMENT
        );
        let (_, message) = take_error(err);
        assert!(message.contains("delimiter"), "{message}");
        err = ptr::null_mut();
        assert_eq!(
            zenith_loader_options_set_csv_header(opts, true, &mut err),
            ZENITH_OK
        );
        assert_eq!(
            zenith_loader_options_set_schema(opts, ptr::null(), &mut err),
            ZENITH_OK
        );
        assert_eq!(
            zenith_loader_options_set_csv_delimiter(opts, b'|', &mut err),
            ZENITH_OK
        );
        let mut loader = ptr::null_mut();
        assert_eq!(
            zenith_loader_open(
                c_path("formats/pipes.csv").as_ptr(),
                opts,
                &mut loader,
                &mut err
            ),
            ZENITH_OK
        );
        assert_eq!(rows(loader), BASIC_ROWS);
        zenith_loader_free(loader);
        zenith_loader_options_free(opts);
    }
}

#[test]
fn released_non_struct_and_empty_schemas_are_invalid_arguments() {
    let opts = options();
    let released = FFI_ArrowSchema::empty();
    let int = FFI_ArrowSchema::try_from(&DataType::Int64).unwrap();
    let empty = FFI_ArrowSchema::try_from(&Schema::empty()).unwrap();
    for (what, schema) in [("released", &released), ("int64", &int), ("empty", &empty)] {
        let mut err = ptr::null_mut();
        let status = unsafe { zenith_loader_options_set_schema(opts, schema, &mut err) };
        assert_eq!(status, ZENITH_ERR_INVALID_ARGUMENT, "{what}");
        let (code, message) = take_error(err);
        assert_eq!(code, status);
        assert!(message.contains("schema"), "{what}: {message}");
    }
    unsafe {
        assert_eq!(
            zenith_loader_options_set_schema(ptr::null_mut(), &int, ptr::null_mut()),
            ZENITH_ERR_NULL_ARGUMENT
        );
        zenith_loader_options_free(opts);
    }
}

#[test]
fn open_paths_reads_the_paths_in_order_and_checks_its_arguments() {
    let a = c_path("webdataset/shard-000001.tar");
    let b = c_path("webdataset/shard-000000.tar");
    let paths = [a.as_ptr(), b.as_ptr()];
    let mut loader = ptr::null_mut();
    let mut err = ptr::null_mut();
    let opts = options();
    unsafe {
        assert_eq!(
            zenith_loader_open_paths(paths.as_ptr(), 2, opts, &mut loader, &mut err),
            ZENITH_OK
        );
        assert_eq!(rows(loader), 157);
        zenith_loader_free(loader);
        zenith_loader_options_free(opts);

        let with_null = [a.as_ptr(), ptr::null()];
        let mut out = ptr::null_mut();
        assert_eq!(
            zenith_loader_open_paths(with_null.as_ptr(), 2, ptr::null(), &mut out, &mut err),
            ZENITH_ERR_INVALID_ARGUMENT
        );
        assert!(out.is_null(), "*out untouched on failure");
        let (_, message) = take_error(err);
        assert!(message.contains("paths[1]"), "{message}");
        assert_eq!(
            zenith_loader_open_paths(ptr::null(), 2, ptr::null(), &mut out, ptr::null_mut()),
            ZENITH_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            zenith_loader_open_paths(ptr::null(), 0, ptr::null(), &mut out, ptr::null_mut()),
            ZENITH_ERR_NOT_FOUND
        );
        let url = CString::new("hdfs://namenode/train/").unwrap();
        assert_eq!(
            zenith_loader_open(url.as_ptr(), ptr::null(), &mut out, ptr::null_mut()),
            ZENITH_ERR_UNSUPPORTED
        );
    }
}
