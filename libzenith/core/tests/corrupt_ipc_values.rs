//! Arrow IPC files whose column values are corrupt where arrow's decoder is told not to look
//! (the core validates decoded batches itself, `batch/validate.rs`): offsets out of order or past
//! their values, invalid UTF-8, offsets that split a character, list offsets past the child. Each
//! is a clear `Error::Format` naming the column, on the sequential and the shuffled path, and a
//! clean file still loads.

use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, ListArray, RecordBatch, StringArray};
use arrow_ipc::writer::FileWriter;
use zenith_core::loader::ShuffleMode;
use zenith_core::{ErrorKind, Loader, LoaderOptions};

/// An IPC file of one batch: `s` = ["ab", "ü", "cd"] (bytes "abücd", offsets 0 2 4 6) and
/// `l` = [[7], [8, 9], []] (offsets 0 1 3 3).
fn clean_file() -> Vec<u8> {
    let strings: ArrayRef = Arc::new(StringArray::from(vec!["ab", "ü", "cd"]));
    let lists: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
        Some(vec![Some(7)]),
        Some(vec![Some(8), Some(9)]),
        Some(vec![]),
    ]));
    let batch = RecordBatch::try_from_iter([("s", strings), ("l", lists)]).unwrap();
    let mut bytes = Vec::new();
    let mut writer = FileWriter::try_new(&mut bytes, &batch.schema()).unwrap();
    writer.write(&batch).unwrap();
    writer.finish().unwrap();
    drop(writer);
    bytes
}

fn le(values: &[i32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// `file` with its one occurrence of `from` replaced by `to` (same length).
fn patched(file: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = file
        .windows(from.len())
        .position(|w| w == from)
        .expect("the pattern is in the file");
    let mut out = file.to_vec();
    out[at..at + to.len()].copy_from_slice(to);
    out
}

/// Reads every batch of `file` with `shuffle`; the first error, if any.
fn load(file: &[u8], shuffle: ShuffleMode) -> Result<usize, zenith_core::Error> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.arrow");
    std::fs::write(&path, file).unwrap();
    let mut options = LoaderOptions::default();
    options.set_batch_size(2).unwrap();
    options.set_shuffle(shuffle);
    let loader = Loader::open(&path, &options)?;
    let mut rows = 0;
    while let Some(batch) = loader.next_batch()? {
        rows += batch.num_rows();
    }
    Ok(rows)
}

#[test]
fn a_clean_file_loads() {
    for shuffle in [ShuffleMode::None, ShuffleMode::Global] {
        assert_eq!(load(&clean_file(), shuffle).unwrap(), 3);
    }
}

#[test]
fn corrupt_values_are_format_errors_naming_the_column() {
    let clean = clean_file();
    let cases = [
        (
            "strings out of order",
            le(&[0, 2, 4, 6]),
            le(&[0, 4, 2, 6]),
            "`s`",
        ),
        (
            "a string past its values",
            le(&[0, 2, 4, 6]),
            le(&[0, 2, 4, 99]),
            "`s`",
        ),
        (
            "a negative offset",
            le(&[0, 2, 4, 6]),
            le(&[-8, 2, 4, 6]),
            "`s`",
        ),
        (
            "a split character",
            le(&[0, 2, 4, 6]),
            le(&[0, 3, 4, 6]),
            "`s`",
        ),
        (
            "invalid UTF-8",
            "abücd".as_bytes().to_vec(),
            b"ab\xc3\x28cd".to_vec(),
            "`s`",
        ),
        (
            "a list past its child",
            le(&[0, 1, 3, 3]),
            le(&[0, 1, 3, 9]),
            "`l`",
        ),
    ];
    for (what, from, to, column) in cases {
        let file = patched(&clean, &from, &to);
        for shuffle in [ShuffleMode::None, ShuffleMode::Global] {
            let error = load(&file, shuffle).expect_err(what);
            assert_eq!(error.kind(), ErrorKind::Format, "{what}: {error}");
            assert!(
                error.to_string().contains(column),
                "{what}: {error} does not name {column}"
            );
        }
    }
}
