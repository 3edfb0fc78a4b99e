//! Shared helpers for the integration tests: where pyarrow's test files are, and how to check
//! their values (every value is a function of the row id; see tests/data/generate.py).

#![allow(dead_code)] // each test binary uses a different subset

pub mod isolated;

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
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/generated")
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

/// Asserts that every column of `batch`, whichever of basic's columns it holds and in whatever
/// order (projections), has the values of rows `first_id..first_id + len`. Integer columns may
/// be 32- or 64-bit (CSV infers `label` as int64); `embedding` is checked when present.
pub fn assert_basic_columns(batch: &RecordBatch, first_id: i64) {
    use arrow_array::types::{Float32Type, Float64Type};
    use arrow_schema::DataType;

    let schema = batch.schema();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let name = field.name().as_str();
        for i in 0..batch.num_rows() {
            let row = first_id + i as i64;
            let int = || match column.data_type() {
                DataType::Int32 => column.as_primitive::<Int32Type>().value(i) as i64,
                DataType::Int64 => column.as_primitive::<Int64Type>().value(i),
                other => panic!("{name}: unexpected type {other}"),
            };
            match name {
                "id" => assert_eq!(int(), row, "id at row {row}"),
                "label" => assert_eq!(int(), row % 10, "label at row {row}"),
                "value" => assert_eq!(
                    column.as_primitive::<Float64Type>().value(i),
                    row as f64 * 0.5,
                    "value at row {row}"
                ),
                "name" => {
                    let names = column.as_string::<i32>();
                    if row % 7 == 3 {
                        assert!(names.is_null(i), "name at row {row} is null");
                    } else {
                        assert_eq!(names.value(i), format!("row-{row}"), "name at row {row}");
                    }
                }
                "flag" => assert_eq!(
                    column.as_boolean().value(i),
                    row % 3 == 0,
                    "flag at row {row}"
                ),
                "embedding" => {
                    let list = column.as_fixed_size_list();
                    let values = list.value(i);
                    let values = values.as_primitive::<Float32Type>();
                    let expected: Vec<f32> = (0..4).map(|k| row as f32 + k as f32 / 4.0).collect();
                    assert_eq!(values.values().to_vec(), expected, "embedding at row {row}");
                }
                other => panic!("unexpected column {other}"),
            }
        }
    }
}
