//! The Rust core's loader over pyarrow-written Arrow IPC files.

mod common;

use arrow_array::Array;
use common::{BASIC_ROWS, assert_basic_rows, data_file};
use zenith_core::loader::ShuffleMode;
use zenith_core::{Error, Loader, LoaderOptions};

/// Options for dataset order (the default is a global shuffle).
fn options(batch_size: usize) -> LoaderOptions {
    let mut options = LoaderOptions::default();
    options.set_batch_size(batch_size).unwrap();
    options.set_shuffle(ShuffleMode::None);
    options
}

#[test]
fn batches_have_batch_size_rows_except_the_last_and_cover_the_file_in_order() {
    for file in ["basic.arrow", "single_batch.arrow"] {
        for batch_size in [1, 999, 1000, 1024, 4096, 10_000, 50_000] {
            let loader = Loader::open(data_file(file), &options(batch_size)).unwrap();
            let expected_batches = BASIC_ROWS.div_ceil(batch_size as u64);
            assert_eq!(loader.num_batches(), expected_batches);
            let mut next_id = 0i64;
            let mut seen = 0;
            while let Some(batch) = loader.next_batch().unwrap() {
                seen += 1;
                if seen < expected_batches {
                    assert_eq!(batch.num_rows(), batch_size);
                }
                assert_basic_rows(&batch.data, next_id);
                next_id += batch.num_rows() as i64;
            }
            assert_eq!(seen, expected_batches);
            assert_eq!(next_id as u64, BASIC_ROWS);
            assert!(
                loader.next_batch().unwrap().is_none(),
                "the epoch stays done"
            );
        }
    }
}

#[test]
fn batches_inside_one_file_batch_are_views_of_the_mapping() {
    // single_batch.arrow holds one record batch: consecutive loader batches are consecutive
    // slices of the same mapped column, not copies.
    let loader = Loader::open(data_file("single_batch.arrow"), &options(100)).unwrap();
    let first = loader.next_batch().unwrap().unwrap();
    let second = loader.next_batch().unwrap().unwrap();
    let ids = |b: &zenith_core::batch::Batch| b.data.column(0).to_data().buffers()[0].clone();
    assert_eq!(
        ids(&first).data_ptr(),
        ids(&second).data_ptr(),
        "same underlying allocation"
    );
    assert_eq!(
        ids(&second).as_ptr() as usize - ids(&first).as_ptr() as usize,
        100 * 8
    );
}

#[test]
fn a_reader_continues_the_loaders_epoch_and_outlives_it() {
    let loader = Loader::open(data_file("basic.arrow"), &options(1000)).unwrap();
    assert_basic_rows(&loader.next_batch().unwrap().unwrap().data, 0);
    let reader = loader.reader();
    drop(loader);
    let mut next_id = 1000;
    for batch in reader {
        let batch = batch.unwrap();
        assert_basic_rows(&batch, next_id);
        next_id += batch.num_rows() as i64;
    }
    assert_eq!(next_id as u64, BASIC_ROWS);
}

#[test]
fn bad_inputs_are_typed_errors() {
    let open = |name: &str| Loader::open(data_file(name), &LoaderOptions::default()).unwrap_err();
    assert!(matches!(open("missing.arrow"), Error::NotFound { .. }));
    for name in [
        "truncated.arrow",
        "corrupt_footer.arrow",
        "not_a_dataset.bin",
        "zero_bytes.arrow",
    ] {
        let err = open(name);
        assert!(matches!(err, Error::Format { .. }), "{name}: {err}");
        assert!(
            err.to_string().contains(name),
            "message names the file: {err}"
        );
    }
    for name in [
        "truncated.parquet",
        "corrupt_footer.parquet",
        "truncated.arrows",
    ] {
        let err = open(name);
        assert!(matches!(err, Error::Format { .. }), "{name}: {err}");
        assert!(err.to_string().contains(name), "{err}");
    }
    assert!(matches!(
        LoaderOptions::default().set_batch_size(0),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn parquet_loads_like_ipc() {
    // basic.parquet holds the first 100 rows of basic.arrow, in one row group.
    let loader = Loader::open(data_file("basic.parquet"), &options(64)).unwrap();
    assert_eq!(loader.num_rows(), 100);
    let first = loader.next_batch().unwrap().unwrap();
    let second = loader.next_batch().unwrap().unwrap();
    assert_eq!((first.num_rows(), second.num_rows()), (64, 36));
    assert_basic_rows(&first.data, 0);
    assert_basic_rows(&second.data, 64);
    assert!(loader.next_batch().unwrap().is_none());
}

#[test]
fn empty_and_dictionary_files_load() {
    let empty = Loader::open(data_file("empty.arrow"), &options(10)).unwrap();
    assert_eq!(empty.num_rows(), 0);
    assert_eq!(empty.schema().fields().len(), 6);
    assert!(empty.next_batch().unwrap().is_none());

    let dict = Loader::open(data_file("dictionary.arrow"), &options(64)).unwrap();
    let first = dict.next_batch().unwrap().unwrap();
    let second = dict.next_batch().unwrap().unwrap();
    assert_eq!((first.num_rows(), second.num_rows()), (64, 36));
    assert!(matches!(
        first.data.column(1).data_type(),
        arrow_schema::DataType::Dictionary(..)
    ));
}
