//! The formats users have, over files generate.py writes with pyarrow and Python's gzip and
//! tarfile (every value a function of the row id, or of the sample number for tar shards):
//! gzip- and zstd-compressed CSV and TSV, delimiter and header options, a given schema, JSON
//! lines, WebDataset tar shards (with shuffle, shards and resume), lists of paths, URL schemes,
//! and hostile inputs.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use common::{BASIC_ROWS, assert_basic_columns, data_file};
use zenith_core::dataset::{Dataset, DatasetOptions, Format};
use zenith_core::loader::ShuffleMode;
use zenith_core::{Error, Loader, LoaderOptions};

/// Rows in large.csv.zst (generate.py's LARGE_CSV_ROWS).
const LARGE_CSV_ROWS: u64 = 140_000;
/// Samples in webdataset/ (two shards: 100 and 57).
const WDS_SAMPLES: usize = 157;

fn unshuffled(batch_size: usize) -> LoaderOptions {
    let mut options = LoaderOptions::default();
    options.set_batch_size(batch_size).unwrap();
    options.set_shuffle(ShuffleMode::None);
    options.set_shard_none();
    options
}

/// Every row the loader delivers in one epoch, as one batch per delivery.
fn epoch(loader: &Loader) -> Vec<RecordBatch> {
    let mut batches = Vec::new();
    while let Some(batch) = loader.next_batch().unwrap() {
        batches.push(batch.data);
    }
    batches
}

/// Checks the basic columns of every delivered batch in order; returns the rows.
fn check_basic(path: &Path, options: &LoaderOptions) -> u64 {
    let loader = Loader::open(path, options).unwrap();
    let mut next = 0i64;
    for batch in epoch(&loader) {
        assert_basic_columns(&batch, next);
        next += batch.num_rows() as i64;
    }
    next as u64
}

#[test]
fn compressed_csv_and_tsv_hold_the_rows_of_basic() {
    for name in ["basic.csv.gz", "basic.csv.zst", "basic.tsv", "basic.tsv.gz"] {
        let path = data_file(&format!("formats/{name}"));
        assert_eq!(Format::detect(&path).unwrap(), Some(Format::Csv), "{name}");
        assert_eq!(check_basic(&path, &unshuffled(1000)), BASIC_ROWS, "{name}");
    }
    // More than one 4 MiB head of decompressed text, and more than two chunks.
    let path = data_file("formats/large.csv.zst");
    let dataset = Dataset::open(&path, &DatasetOptions::default()).unwrap();
    assert_eq!(dataset.num_rows(), LARGE_CSV_ROWS);
    assert!(dataset.chunks().len() >= 3);
    assert_eq!(check_basic(&path, &unshuffled(4096)), LARGE_CSV_ROWS);
}

#[test]
fn the_delimiter_header_and_schema_options_apply() {
    // `|` is no extension's default: the option is needed.
    let psv = data_file("formats/pipes.csv");
    let mut options = unshuffled(1000);
    options.set_csv_delimiter(Some(b'|')).unwrap();
    assert_eq!(check_basic(&psv, &options), BASIC_ROWS);
    assert!(options.set_csv_delimiter(Some(b'\n')).is_err());

    // No header: columns named f0.. unless a schema names them.
    let noheader = data_file("formats/noheader.csv");
    let mut options = unshuffled(1000);
    options.set_csv_header(false);
    let loader = Loader::open(&noheader, &options).unwrap();
    let names: Vec<String> = loader
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["f0", "f1", "f2", "f3", "f4"]);
    assert_eq!(loader.num_rows(), BASIC_ROWS);
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("label", DataType::Int32, false),
        Field::new("value", DataType::Float64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("flag", DataType::Boolean, false),
    ]));
    options.set_schema(Some(schema.clone())).unwrap();
    assert_eq!(check_basic(&noheader, &options), BASIC_ROWS);
    let loader = Loader::open(&noheader, &options).unwrap();
    assert_eq!(loader.schema().field(1).data_type(), &DataType::Int32);

    // The same schema over a file with a header: types from the schema, header checked.
    let mut options = unshuffled(1000);
    options.set_schema(Some(schema)).unwrap();
    let loader = Loader::open(data_file("formats/basic.csv.gz"), &options).unwrap();
    assert_eq!(loader.schema().field(1).data_type(), &DataType::Int32);
    assert!(options.set_schema(Some(Arc::new(Schema::empty()))).is_err());
}

#[test]
fn json_lines_hold_the_rows_of_basic_plain_and_compressed() {
    for name in ["basic.jsonl", "basic.jsonl.gz", "basic.ndjson.zst"] {
        let path = data_file(&format!("formats/{name}"));
        assert_eq!(
            Format::detect(&path).unwrap(),
            Some(Format::JsonLines),
            "{name}"
        );
        let loader = Loader::open(&path, &unshuffled(999)).unwrap();
        let mut next = 0i64;
        for batch in epoch(&loader) {
            let schema = batch.schema();
            let columns: Vec<usize> = ["id", "label", "value", "name", "flag"]
                .iter()
                .map(|name| schema.index_of(name).unwrap())
                .collect();
            let basic = batch.project(&columns).unwrap();
            assert_basic_columns(&basic, next);
            // The embedding: a JSON array of numbers, a list of doubles.
            let lists = batch.column_by_name("embedding").unwrap().as_list::<i32>();
            for i in 0..batch.num_rows() {
                let row = next + i as i64;
                let values = lists.value(i);
                let expected: Vec<f64> = (0..4).map(|k| row as f64 + k as f64 / 4.0).collect();
                assert_eq!(
                    values.as_primitive::<Float64Type>().values().to_vec(),
                    expected
                );
            }
            next += batch.num_rows() as i64;
        }
        assert_eq!(next as u64, BASIC_ROWS, "{name}");
    }
}

#[test]
fn broken_and_oversized_text_files_are_clear_errors() {
    let err = Loader::open(data_file("formats/malformed.jsonl"), &unshuffled(10)).unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err}");
    assert!(err.to_string().contains("malformed.jsonl"), "{err}");

    let err = Loader::open(data_file("formats/truncated.csv.gz"), &unshuffled(10)).unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err}");
    assert!(err.to_string().contains("gzip"), "{err}");

    // The decompressed text is bounded by the memory budget: a bomb cannot inflate past it.
    for name in ["basic.csv.gz", "basic.jsonl.gz", "large.csv.zst"] {
        let mut options = unshuffled(10);
        options.set_memory_budget(Some(64 << 10)).unwrap();
        let err = Loader::open(data_file(&format!("formats/{name}")), &options).unwrap_err();
        assert!(matches!(err, Error::OutOfMemory { .. }), "{name}: {err}");
        assert!(err.to_string().contains(name), "{err}");
    }
}

/// The files generate.py's wds_sample_files puts in sample `i`.
fn wds_files(i: usize) -> (Vec<u8>, Vec<u8>, Option<Vec<u8>>) {
    let jpg = (0..50 + i % 13)
        .map(|k| ((i * 7 + k) % 256) as u8)
        .collect();
    let cls = (i % 10).to_string().into_bytes();
    let json = (i % 3 != 0).then(|| format!("{{\"id\": {i}}}").into_bytes());
    (jpg, cls, json)
}

/// Checks every row of tar batches against wds_files; returns the sample numbers in order.
fn check_wds(batches: &[RecordBatch]) -> Vec<usize> {
    let mut seen = Vec::new();
    for batch in batches {
        let names: Vec<&str> = batch
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, ["__key__", "cls", "jpg", "json"]);
        let keys = batch.column(0).as_string::<i32>();
        for row in 0..batch.num_rows() {
            let key = keys.value(row);
            let i: usize = key.strip_prefix("train/").unwrap().parse().unwrap();
            let (jpg, cls, json) = wds_files(i);
            assert_eq!(batch.column(1).as_binary::<i32>().value(row), cls);
            assert_eq!(batch.column(2).as_binary::<i32>().value(row), jpg);
            let column = batch.column(3).as_binary::<i32>();
            match json {
                Some(json) => assert_eq!(column.value(row), json, "{key}"),
                None => assert!(column.is_null(row), "{key} has no json"),
            }
            seen.push(i);
        }
    }
    seen
}

#[test]
fn tar_shards_are_rows_grouped_by_key() {
    let dir = data_file("webdataset");
    let loader = Loader::open(&dir, &unshuffled(16)).unwrap();
    assert_eq!(loader.num_rows(), WDS_SAMPLES as u64);
    assert_eq!(
        loader.schema().field(2).data_type(),
        &DataType::Binary,
        "one binary column per extension"
    );
    assert_eq!(
        check_wds(&epoch(&loader)),
        (0..WDS_SAMPLES).collect::<Vec<_>>()
    );

    // gzip-compressed; long names through GNU and pax records.
    let hostile = data_file("webdataset_hostile");
    let loader = Loader::open(hostile.join("shard.tar.gz"), &unshuffled(16)).unwrap();
    assert_eq!(check_wds(&epoch(&loader)), (0..40).collect::<Vec<_>>());
    for name in ["long_names_gnu.tar", "long_names_pax.tar"] {
        let loader = Loader::open(hostile.join(name), &unshuffled(16)).unwrap();
        let batches = epoch(&loader);
        let keys = batches[0].column(0).as_string::<i32>();
        assert_eq!(keys.len(), 3, "{name}");
        assert_eq!(keys.value(2), format!("{}/2", "d".repeat(150)), "{name}");
    }
}

#[test]
fn tar_shards_shuffle_shard_and_resume_like_other_formats() {
    let dir = data_file("webdataset");
    let mut options = LoaderOptions::default();
    options.set_batch_size(10).unwrap();
    options.set_shuffle(ShuffleMode::Global);
    options.set_seed(7);
    options.set_num_workers(2).unwrap();
    options.set_shard_drop_remainder(true);
    // Two ranks: disjoint, together every sample but the dropped remainder.
    let mut all = BTreeSet::new();
    for rank in 0..2 {
        let mut ranked = options.clone();
        ranked.set_shard(rank, 2).unwrap();
        let loader = Loader::open(&dir, &ranked).unwrap();
        let seen = check_wds(&epoch(&loader));
        assert_eq!(seen.len(), WDS_SAMPLES / 2);
        for i in seen {
            assert!(all.insert(i), "sample {i} on both ranks");
        }
    }
    assert_eq!(all.len(), WDS_SAMPLES - WDS_SAMPLES % 2);

    // Shuffled (not file order), and resumed exactly after three batches.
    options.set_shard_none();
    let loader = Loader::open(&dir, &options).unwrap();
    let full = check_wds(&epoch(&loader));
    assert_ne!(full, (0..WDS_SAMPLES).collect::<Vec<_>>());
    let loader = Loader::open(&dir, &options).unwrap();
    for _ in 0..3 {
        loader.next_batch().unwrap().unwrap();
    }
    let token = loader.save_state();
    let mut resumed = options.clone();
    resumed.set_num_workers(0).unwrap();
    resumed.set_resume_state(&token).unwrap();
    let loader = Loader::open(&dir, &resumed).unwrap();
    assert_eq!(check_wds(&epoch(&loader)), full[30..]);
}

#[test]
fn hostile_tar_archives_are_clear_errors() {
    let dir = data_file("webdataset_hostile");
    let cases = [
        ("truncated.tar", "truncated tar archive"),
        ("huge_size.tar", "memory budget"),
        ("bad_checksum.tar", "wrong checksum"),
        ("traversal.tar", "`..` path"),
        ("absolute.tar", "absolute"),
        ("duplicate.tar", "two files with key \"a\""),
    ];
    for (name, message) in cases {
        let mut options = unshuffled(4);
        options.set_memory_budget(Some(1 << 30)).unwrap();
        let err = Loader::open(dir.join(name), &options).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(name), "{name}: {text}");
        assert!(text.contains(message), "{name}: {text}");
        let expected_oom = name == "huge_size.tar";
        assert_eq!(
            matches!(err, Error::OutOfMemory { .. }),
            expected_oom,
            "{name}: {text}"
        );
    }
}

#[test]
fn a_list_of_paths_is_one_dataset_in_the_order_given() {
    let dir = data_file("webdataset");
    let paths: Vec<PathBuf> = vec![dir.join("shard-000001.tar"), dir.join("shard-000000.tar")];
    let loader = Loader::open_list(&paths, &unshuffled(50)).unwrap();
    let seen = check_wds(&epoch(&loader));
    let expected: Vec<usize> = (100..WDS_SAMPLES).chain(0..100).collect();
    assert_eq!(seen, expected);

    // Formats mixed by path: CSV given twice over (compressed and not) is two shards.
    let csvs = vec![data_file("formats/basic.csv.gz"), data_file("basic.csv")];
    let loader = Loader::open_list(&csvs, &unshuffled(1000)).unwrap();
    assert_eq!(loader.num_rows(), 2 * BASIC_ROWS);

    let twice = vec![dir.join("shard-000000.tar"), dir.clone()];
    let err = Loader::open_list(&twice, &unshuffled(50)).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert!(err.to_string().contains("twice"), "{err}");
    let err = Loader::open_list(&[], &unshuffled(50)).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[test]
fn url_schemes_and_formats_not_supported_say_so_by_name() {
    // (s3://, gs://, az:// and http(s):// are read through object stores: tests/remote.)
    for url in ["hdfs://namenode/x.parquet", "ftp://host/x.csv"] {
        let err = Loader::open(url, &unshuffled(10)).unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{url}: {err}");
        let scheme = url.split("://").next().unwrap();
        assert!(err.to_string().contains(&format!("{scheme:?}")), "{err}");
    }
    // file:// URLs are local paths.
    let url = format!("file://{}", data_file("formats/basic.tsv").display());
    assert_eq!(check_basic(Path::new(&url), &unshuffled(1000)), BASIC_ROWS);

    let dir = tempfile::tempdir().unwrap();
    let sheet = dir.path().join("table.xlsx");
    std::fs::write(&sheet, b"PK\x03\x04 not really").unwrap();
    let err = Loader::open(&sheet, &unshuffled(10)).unwrap_err();
    assert!(err.to_string().contains("\".xlsx\""), "{err}");
    // A compressed Parquet file is no format either.
    let gz = dir.path().join("x.parquet.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0]).unwrap();
    let err = Loader::open(&gz, &unshuffled(10)).unwrap_err();
    assert!(err.to_string().contains("\".parquet.gz\""), "{err}");
}
