//! Shared helpers for the integration tests: where pyarrow's test files are, and how to check
//! their values (every value is a function of the row id; see tests/data/generate.py).

#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{Array, RecordBatch};

/// Rows in `basic.arrow` and `single_batch.arrow`.
pub const BASIC_ROWS: u64 = 10_000;

/// Path of a file written by `tests/data/generate.py` (`make data`).
pub fn data_file(name: &str) -> PathBuf {
    let dir = std::env::var_os("ZENITH_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/generated")
        });
    assert!(
        dir.join("basic.arrow").exists(),
        "test data missing in {}: run `make data` first",
        dir.display()
    );
    dir.join(name)
}

/// Asserts that `batch` holds rows `first_id..first_id + len` of basic.arrow.
pub fn assert_basic_rows(batch: &RecordBatch, first_id: i64) {
    let ids = batch.column(0).as_primitive::<Int64Type>();
    let labels = batch.column(1).as_primitive::<Int32Type>();
    let names = batch.column(3).as_string::<i32>();
    for i in 0..batch.num_rows() {
        let row = first_id + i as i64;
        assert_eq!(ids.value(i), row);
        assert_eq!(labels.value(i), (row % 10) as i32);
        if row % 7 == 3 {
            assert!(names.is_null(i));
        } else {
            assert_eq!(names.value(i), format!("row-{row}"));
        }
    }
}
