//! The Parquet, CSV and Arrow IPC stream sources over pyarrow-written files (generate.py; every
//! value there is a function of the row id): content, chunking, projections, codecs,
//! directories and globs of shards, broken files, and concurrent reads.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::DataType;
use common::{BASIC_ROWS, assert_basic_columns, data_file};
use zenith_core::dataset::csv::CsvFile;
use zenith_core::dataset::ipc::IpcFile;
use zenith_core::dataset::ipc_stream::IpcStreamFile;
use zenith_core::dataset::parquet::ParquetFile;
use zenith_core::dataset::{Dataset, DatasetOptions, Format, Source};
use zenith_core::loader::ShuffleMode;
use zenith_core::{Error, Loader, LoaderOptions};

const CODECS: [&str; 5] = ["snappy", "zstd", "lz4", "gzip", "none"];
/// Rows per shard of shards/ (generate.py's SHARD_ROWS) and their row group size.
const SHARD_ROWS: [u64; 8] = [1000, 1500, 777, 1223, 1250, 1250, 2000, 1000];
const SHARD_ROW_GROUP: u64 = 500;
/// Rows in large.csv.
const LARGE_CSV_ROWS: u64 = 140_000;

fn codec_file(codec: &str) -> PathBuf {
    data_file(&format!("parquet/basic.{codec}.parquet"))
}

/// Reads every chunk of `source` in order and checks it continues the rows before it; returns
/// the number of rows.
fn check_all_chunks(source: &dyn Source, projection: Option<&[usize]>) -> u64 {
    let mut next_id = 0i64;
    for (index, &rows) in source.chunk_rows().iter().enumerate() {
        let batch = source.read_chunk(index, projection).unwrap();
        assert_eq!(batch.num_rows() as u64, rows, "chunk {index} has its rows");
        assert_basic_columns(&batch, next_id);
        next_id += rows as i64;
    }
    next_id as u64
}

/// Every batch a loader delivers, checked to continue the rows before it; returns the rows.
fn check_loader(path: &Path, batch_size: usize) -> u64 {
    let mut options = LoaderOptions::default();
    options.set_batch_size(batch_size).unwrap();
    options.set_shuffle(ShuffleMode::None);
    let loader = Loader::open(path, &options).unwrap();
    let mut next_id = 0i64;
    let mut batches = 0;
    while let Some(batch) = loader.next_batch().unwrap() {
        batches += 1;
        if batches < loader.num_batches() {
            assert_eq!(batch.num_rows(), batch_size);
        }
        assert_basic_columns(&batch.data, next_id);
        next_id += batch.num_rows() as i64;
    }
    assert_eq!(batches, loader.num_batches());
    next_id as u64
}

fn names(batch: &RecordBatch) -> Vec<String> {
    batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

fn dataset(path: &Path, columns: Option<&[&str]>) -> Result<Dataset, Error> {
    let options = DatasetOptions {
        columns: columns.map(|c| c.iter().map(|s| s.to_string()).collect()),
        ..DatasetOptions::default()
    };
    Dataset::open(path, &options)
}

/// `err` is a format error whose message names `name` and contains each of `words`.
fn assert_format_error(err: &Error, name: &str, words: &[&str]) {
    assert!(matches!(err, Error::Format { .. }), "{name}: {err:?}");
    let message = err.to_string();
    assert!(
        message.contains(name),
        "the message names the file: {message}"
    );
    for word in words {
        assert!(
            message.contains(word),
            "the message says {word:?}: {message}"
        );
    }
}

// ---- Parquet ---------------------------------------------------------------------------------

#[test]
fn parquet_every_codec_reads_basic_one_row_group_per_chunk() {
    let arrow_schema = IpcFile::open(&data_file("basic.arrow"))
        .unwrap()
        .schema()
        .clone();
    for codec in CODECS {
        let file = ParquetFile::open(&codec_file(codec)).unwrap();
        assert_eq!(file.chunk_rows(), [1000; 10], "{codec}");
        assert!(!file.in_memory());
        // pyarrow's embedded Arrow schema is honoured: label stays int32, embedding stays a
        // fixed_size_list of 4 floats (Parquet names the list's item `element`).
        let schema = file.schema();
        for (got, expected) in schema.fields().iter().zip(arrow_schema.fields()).take(5) {
            assert_eq!(got.name(), expected.name());
            assert_eq!(
                got.data_type(),
                expected.data_type(),
                "{codec}: {}",
                got.name()
            );
        }
        assert!(matches!(
            schema.field(5).data_type(),
            DataType::FixedSizeList(item, 4) if item.data_type() == &DataType::Float32
        ));
        assert_eq!(check_all_chunks(&file, None), BASIC_ROWS, "{codec}");
    }
}

#[test]
fn parquet_chunks_are_one_batch_even_for_large_row_groups() {
    // basic.parquet: 100 rows in one row group, pyarrow's defaults.
    let file = ParquetFile::open(&data_file("basic.parquet")).unwrap();
    assert_eq!(file.chunk_rows(), [100]);
    let batch = file.read_chunk(0, None).unwrap();
    assert_eq!(batch.num_rows(), 100);
    assert_basic_columns(&batch, 0);
    assert_eq!(check_loader(&data_file("basic.parquet"), 30), 100);
}

#[test]
fn parquet_projections_keep_the_requested_columns_in_the_requested_order() {
    let file = ParquetFile::open(&codec_file("zstd")).unwrap();
    for projection in [
        vec![0],
        vec![3, 0],
        vec![5, 4, 3, 2, 1, 0],
        vec![4, 0, 5],
        vec![2, 2],
    ] {
        let batch = file.read_chunk(7, Some(&projection)).unwrap();
        let expected: Vec<String> = projection
            .iter()
            .map(|&c| file.schema().field(c).name().clone())
            .collect();
        assert_eq!(names(&batch), expected);
        assert_eq!(batch.num_rows(), 1000);
        assert_basic_columns(&batch, 7000);
    }
    // No column at all still has the row group's rows.
    let empty = file.read_chunk(2, Some(&[])).unwrap();
    assert_eq!((empty.num_columns(), empty.num_rows()), (0, 1000));
    // Bad indices are errors, not panics.
    assert!(matches!(
        file.read_chunk(10, None),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        file.read_chunk(0, Some(&[6])),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn parquet_decoded_size_estimates_follow_the_projection() {
    let file = ParquetFile::open(&codec_file("snappy")).unwrap();
    let all = file.chunk_decoded_bytes(0, None);
    let id = file.chunk_decoded_bytes(0, Some(&[0]));
    let label = file.chunk_decoded_bytes(0, Some(&[1]));
    let embedding = file.chunk_decoded_bytes(0, Some(&[5]));
    // 1,000 int64 ids: at least 8,000 bytes once decoded, whatever the encoding.
    assert!(id >= 8_000, "{id}");
    // Ten distinct labels dictionary-encode to almost nothing, but decode to 1,000 int32s.
    assert!(label >= 4_000, "{label}");
    assert!(embedding >= 16_000, "{embedding}");
    assert!(all > id + label + embedding);
    assert_eq!(
        file.chunk_decoded_bytes(0, Some(&[0, 1, 5])),
        id + label + embedding
    );
    // Within a small factor of what the decoded batch really occupies.
    let actual = file.read_chunk(0, None).unwrap().get_array_memory_size() as u64;
    assert!(all * 4 > actual && all < actual * 4, "{all} vs {actual}");
}

#[test]
fn parquet_through_a_dataset_with_named_columns() {
    let ds = dataset(&codec_file("lz4"), Some(&["name", "id", "embedding"])).unwrap();
    assert_eq!(ds.num_rows(), BASIC_ROWS);
    assert_eq!(ds.chunks().len(), 10);
    assert!(!ds.in_memory());
    for chunk in 0..ds.chunks().len() {
        let batch = ds.read_chunk(chunk).unwrap();
        assert_eq!(names(&batch), ["name", "id", "embedding"]);
        assert_basic_columns(&batch, chunk as i64 * 1000);
    }
    let err = dataset(&codec_file("lz4"), Some(&["nope"])).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
}

#[test]
fn parquet_loads_in_order_through_the_loader() {
    for batch_size in [1, 999, 1000, 1024, 10_000, 50_000] {
        assert_eq!(check_loader(&codec_file("snappy"), batch_size), BASIC_ROWS);
    }
}

#[test]
fn parquet_reads_concurrently_from_many_threads() {
    let file: Arc<dyn Source> = Arc::new(ParquetFile::open(&codec_file("gzip")).unwrap());
    check_concurrent_reads(file);
}

/// Eight threads read every chunk of `source` several times, each in its own order and with its
/// own projection, at once.
fn check_concurrent_reads(source: Arc<dyn Source>) {
    let chunks = source.chunk_rows().len();
    let starts: Vec<i64> = source
        .chunk_rows()
        .iter()
        .scan(0i64, |start, &rows| {
            let here = *start;
            *start += rows as i64;
            Some(here)
        })
        .collect();
    let starts = Arc::new(starts);
    let num_columns = source.schema().fields().len();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let source = source.clone();
            let starts = starts.clone();
            std::thread::spawn(move || {
                let projection: Vec<usize> = (0..num_columns).rev().skip(t % 2).collect();
                for round in 0..3 {
                    for k in 0..chunks {
                        // Threads walk the chunks at different strides so they collide.
                        let index = (k * (2 * t + 1) + round) % chunks;
                        let projection = (t % 3 != 0).then_some(projection.as_slice());
                        let batch = source.read_chunk(index, projection).unwrap();
                        assert_basic_columns(&batch, starts[index]);
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("no reader thread failed");
    }
}

// ---- Parquet shards: directories and globs --------------------------------------------------

/// Row groups of 500 per shard, the last one short.
fn expected_shard_chunks() -> Vec<u64> {
    SHARD_ROWS
        .iter()
        .flat_map(|&rows| {
            let full = rows / SHARD_ROW_GROUP;
            let rest = rows % SHARD_ROW_GROUP;
            std::iter::repeat_n(SHARD_ROW_GROUP, full as usize).chain((rest > 0).then_some(rest))
        })
        .collect()
}

fn check_shards(ds: &Dataset, first_shard: usize, first_id: i64) {
    let files: Vec<PathBuf> = ds.sources().iter().map(|s| s.path().to_owned()).collect();
    let expected: Vec<String> = (first_shard..first_shard + files.len())
        .map(|k| format!("{}/part-{k}.parquet", if k < 4 { "a" } else { "b" }))
        .collect();
    for (file, name) in files.iter().zip(&expected) {
        assert!(file.ends_with(name), "{} is {name}", file.display());
    }
    let mut next_id = first_id;
    for (chunk, info) in ds.chunks().iter().enumerate() {
        let batch = ds.read_chunk(chunk).unwrap();
        assert_eq!(batch.num_rows() as u64, info.rows);
        assert_basic_columns(&batch, next_id);
        next_id += info.rows as i64;
    }
}

#[test]
fn a_directory_of_shards_reads_in_sorted_path_order_skipping_markers() {
    let root = data_file("shards");
    let ds = dataset(&root, None).unwrap();
    assert_eq!(
        ds.sources().len(),
        SHARD_ROWS.len(),
        "_SUCCESS and .crc files are skipped"
    );
    assert_eq!(ds.num_rows(), BASIC_ROWS);
    let chunk_rows: Vec<u64> = ds.chunks().iter().map(|c| c.rows).collect();
    assert_eq!(chunk_rows, expected_shard_chunks());
    check_shards(&ds, 0, 0);
    // Loader batches straddle shard boundaries.
    for batch_size in [1, 777, 1024, 10_000] {
        assert_eq!(check_loader(&root, batch_size), BASIC_ROWS);
    }
}

#[test]
fn globs_over_shards_read_the_matching_files_in_order() {
    let all = dataset(&data_file("shards/*/part-*.parquet"), None).unwrap();
    assert_eq!(all.sources().len(), 8);
    assert_eq!(all.num_rows(), BASIC_ROWS);
    check_shards(&all, 0, 0);
    assert_eq!(all.fingerprint(), all.fingerprint());

    let second_half = dataset(&data_file("shards/b/*.parquet"), Some(&["id", "name"])).unwrap();
    assert_eq!(second_half.sources().len(), 4);
    let first_id: u64 = SHARD_ROWS[..4].iter().sum();
    assert_eq!(second_half.num_rows(), BASIC_ROWS - first_id);
    check_shards(&second_half, 4, first_id as i64);
}

#[test]
fn shards_with_different_schemas_are_a_mismatch_naming_both_files() {
    let err = dataset(&data_file("mixed_shards"), None).unwrap_err();
    let Error::SchemaMismatch { first, other, .. } = &err else {
        panic!("expected a schema mismatch, got {err:?}");
    };
    assert!(first.ends_with("part-0.parquet"), "{}", first.display());
    assert!(other.ends_with("part-1.parquet"), "{}", other.display());
    let message = err.to_string();
    for word in [
        "part-0.parquet",
        "part-1.parquet",
        "label: Int32",
        "label: Int64",
    ] {
        assert!(message.contains(word), "{word:?} in {message}");
    }
}

// ---- Parquet: broken files -----------------------------------------------------------------

#[test]
fn broken_parquet_files_are_format_errors_naming_the_file() {
    for name in ["truncated.parquet", "corrupt_footer.parquet"] {
        let err = ParquetFile::open(&data_file(name)).unwrap_err();
        assert_format_error(&err, name, &[]);
        // Through discovery and the loader too.
        let err = Loader::open(data_file(name), &LoaderOptions::default()).unwrap_err();
        assert_format_error(&err, name, &[]);
    }

    // Garbage page headers in row group 0 only: the footer is fine, so the file opens, and the
    // damage is reported when (and only where) it is decoded.
    let corrupt = ParquetFile::open(&data_file("corrupt.parquet")).unwrap();
    assert_eq!(corrupt.chunk_rows(), [1000; 10]);
    for projection in [None, Some(&[0usize][..]), Some(&[3, 5][..])] {
        let err = corrupt.read_chunk(0, projection).unwrap_err();
        assert_format_error(&err, "corrupt.parquet", &["row group 0"]);
    }
    let batch = corrupt.read_chunk(1, None).unwrap();
    assert_basic_columns(&batch, 1000);

    // The loader reports the error and delivers nothing half-made; asking again fails again.
    let loader = Loader::open(data_file("corrupt.parquet"), &LoaderOptions::default()).unwrap();
    for _ in 0..2 {
        let err = loader.next_batch().unwrap_err();
        assert_format_error(&err, "corrupt.parquet", &["row group 0"]);
    }
}

#[test]
fn parquet_with_every_region_damaged_never_panics() {
    // Overwrites a window at many offsets of a small file: open and every read must return,
    // Ok or a format error, never panic or abort.
    let good = std::fs::read(data_file("basic.parquet")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.parquet");
    let step = (good.len() / 97).max(1);
    let mut errors = 0;
    for start in (0..good.len()).step_by(step) {
        let mut bytes = good.clone();
        let end = (start + 24).min(bytes.len());
        bytes[start..end].fill(0xA5);
        std::fs::write(&path, &bytes).unwrap();
        match ParquetFile::open(&path) {
            Err(err) => {
                assert!(matches!(err, Error::Format { .. }), "{err:?}");
                errors += 1;
            }
            Ok(file) => {
                for index in 0..file.chunk_rows().len() {
                    if let Err(err) = file.read_chunk(index, None) {
                        assert!(matches!(err, Error::Format { .. }), "{err:?}");
                        errors += 1;
                    }
                }
            }
        }
    }
    assert!(errors > 0, "some damage was detected");
}

// ---- CSV -------------------------------------------------------------------------------------

#[test]
fn csv_infers_the_schema_and_reads_basic() {
    let file = CsvFile::open(&data_file("basic.csv"), None).unwrap();
    let types: Vec<(String, DataType)> = file
        .schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    assert_eq!(
        types,
        [
            ("id".to_string(), DataType::Int64),
            ("label".to_string(), DataType::Int64),
            ("value".to_string(), DataType::Float64),
            ("name".to_string(), DataType::Utf8),
            ("flag".to_string(), DataType::Boolean),
        ]
    );
    assert!(file.in_memory());
    assert_eq!(file.chunk_rows(), [BASIC_ROWS]);
    assert_eq!(check_all_chunks(&file, None), BASIC_ROWS);
    let batch = file.read_chunk(0, Some(&[4, 3, 0])).unwrap();
    assert_eq!(names(&batch), ["flag", "name", "id"]);
    assert_basic_columns(&batch, 0);
    assert!(file.chunk_decoded_bytes(0, Some(&[0])) >= BASIC_ROWS * 8);
    assert!(matches!(
        file.read_chunk(1, None),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn csv_is_materialised_in_chunks_of_65536_rows() {
    let path = data_file("large.csv");
    let file = CsvFile::open(&path, None).unwrap();
    let chunk = 65_536; // the documented CSV chunk size
    assert_eq!(
        file.chunk_rows(),
        [chunk, chunk, LARGE_CSV_ROWS - 2 * chunk]
    );
    assert_eq!(check_all_chunks(&file, None), LARGE_CSV_ROWS);
    assert_eq!(check_loader(&path, 50_000), LARGE_CSV_ROWS);
}

#[test]
fn csv_with_a_given_schema_parses_as_it_says() {
    let given = Arc::new(arrow_schema::Schema::new(vec![
        arrow_schema::Field::new("id", DataType::Int64, false),
        arrow_schema::Field::new("label", DataType::Int32, true),
        arrow_schema::Field::new("value", DataType::Float64, true),
        arrow_schema::Field::new("name", DataType::Utf8, true),
        arrow_schema::Field::new("flag", DataType::Boolean, true),
    ]));
    let file = CsvFile::open(&data_file("basic.csv"), Some(given.clone())).unwrap();
    assert_eq!(file.schema(), &given);
    let batch = file.read_chunk(0, None).unwrap();
    assert_eq!(batch.column(1).data_type(), &DataType::Int32);
    assert_basic_columns(&batch, 0);

    // A header that does not name the given columns is refused, not misread.
    let renamed = Arc::new(arrow_schema::Schema::new(
        given
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_name(format!("x_{}", f.name())))
            .collect::<Vec<_>>(),
    ));
    let err = CsvFile::open(&data_file("basic.csv"), Some(renamed)).unwrap_err();
    assert_format_error(&err, "basic.csv", &[]);
}

#[test]
fn malformed_csv_is_a_format_error_naming_the_file_and_line() {
    // One field too many on line 5: found while inferring the schema.
    let err = CsvFile::open(&data_file("malformed.csv"), None).unwrap_err();
    assert_format_error(&err, "malformed.csv", &["line 5"]);
    // Same row, schema given: found by the parser.
    let schema = Arc::new(arrow_schema::Schema::new(vec![
        arrow_schema::Field::new("id", DataType::Int64, true),
        arrow_schema::Field::new("label", DataType::Int64, true),
        arrow_schema::Field::new("value", DataType::Float64, true),
    ]));
    let err = CsvFile::open(&data_file("malformed.csv"), Some(schema)).unwrap_err();
    assert_format_error(&err, "malformed.csv", &["line"]);
    // A value that does not parse as the type inferred from the first 1,000 records.
    let err = CsvFile::open(&data_file("bad_value.csv"), None).unwrap_err();
    assert_format_error(&err, "bad_value.csv", &["not-a-number", "line 1502"]);
    // Through the loader as well.
    let err = Loader::open(data_file("malformed.csv"), &LoaderOptions::default()).unwrap_err();
    assert_format_error(&err, "malformed.csv", &["line 5"]);
}

#[test]
fn empty_and_header_only_csv_files() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, b"").unwrap();
    let err = CsvFile::open(&empty, None).unwrap_err();
    assert_format_error(&err, "empty.csv", &["no header"]);

    // A header and no rows: the columns exist (as text: nothing says otherwise), no chunks.
    let header_only = dir.path().join("header_only.csv");
    std::fs::write(&header_only, b"a,b\n").unwrap();
    let file = CsvFile::open(&header_only, None).unwrap();
    assert_eq!(file.schema().fields().len(), 2);
    assert_eq!(file.schema().field(0).data_type(), &DataType::Utf8);
    assert!(file.chunk_rows().is_empty());
}

#[test]
fn csv_reads_concurrently_from_many_threads() {
    let file: Arc<dyn Source> = Arc::new(CsvFile::open(&data_file("large.csv"), None).unwrap());
    check_concurrent_reads(file);
}

// ---- Arrow IPC stream ------------------------------------------------------------------------

#[test]
fn ipc_stream_reads_basic_one_batch_per_chunk() {
    let path = data_file("basic.arrows");
    assert_eq!(Format::detect(&path).unwrap(), Some(Format::ArrowIpcStream));
    let stream = IpcStreamFile::open(&path).unwrap();
    let file = IpcFile::open(&data_file("basic.arrow")).unwrap();
    // The same irregular record batches as the IPC file pyarrow wrote from the same table.
    assert_eq!(stream.chunk_rows(), file.chunk_rows());
    assert_eq!(stream.schema(), file.schema());
    assert!(stream.in_memory());
    assert_eq!(check_all_chunks(&stream, None), BASIC_ROWS);
    assert_eq!(check_all_chunks(&stream, Some(&[5, 0])), BASIC_ROWS);
    for batch_size in [1, 1000, 1024, 10_000] {
        assert_eq!(check_loader(&path, batch_size), BASIC_ROWS);
    }
}

#[test]
fn ipc_stream_batches_are_views_of_the_mapping() {
    let stream = IpcStreamFile::open(&data_file("basic.arrows")).unwrap();
    let ids = |b: &RecordBatch| b.column(0).to_data().buffers()[0].clone();
    let first = ids(&stream.read_chunk(0, None).unwrap());
    let second = ids(&stream.read_chunk(1, None).unwrap());
    // Both batches point into one allocation (the mapping), the second after the first.
    assert_eq!(
        first.data_ptr(),
        second.data_ptr(),
        "same underlying allocation"
    );
    assert!(second.as_ptr() as usize > first.as_ptr() as usize);
    let file_len = std::fs::metadata(data_file("basic.arrows")).unwrap().len() as usize;
    assert!(second.as_ptr() as usize - (first.data_ptr().as_ptr() as usize) < file_len);
}

#[test]
fn ipc_stream_with_dictionaries() {
    let stream = IpcStreamFile::open(&data_file("dictionary.arrows")).unwrap();
    assert_eq!(stream.chunk_rows(), [30, 30, 30, 10]);
    let batch = stream.read_chunk(3, None).unwrap();
    assert!(matches!(
        batch.column(1).data_type(),
        DataType::Dictionary(..)
    ));
}

#[test]
fn broken_ipc_streams_are_format_errors_naming_the_file() {
    let err = IpcStreamFile::open(&data_file("truncated.arrows")).unwrap_err();
    assert_format_error(&err, "truncated.arrows", &["truncated"]);
    let err = IpcStreamFile::open(&data_file("corrupt.arrows")).unwrap_err();
    assert_format_error(&err, "corrupt.arrows", &[]);
    for name in ["truncated.arrows", "corrupt.arrows"] {
        let err = Loader::open(data_file(name), &LoaderOptions::default()).unwrap_err();
        assert_format_error(&err, name, &[]);
    }
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.arrows");
    std::fs::write(&empty, b"").unwrap();
    assert_format_error(
        &IpcStreamFile::open(&empty).unwrap_err(),
        "empty.arrows",
        &["empty"],
    );
    // Just an end-of-stream marker: no schema.
    let eos_only = dir.path().join("eos.arrows");
    std::fs::write(&eos_only, [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]).unwrap();
    assert_format_error(
        &IpcStreamFile::open(&eos_only).unwrap_err(),
        "eos.arrows",
        &["no schema"],
    );
}

#[test]
fn ipc_stream_with_every_region_damaged_never_panics() {
    let good = std::fs::read(data_file("dictionary.arrows")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.arrows");
    let step = (good.len() / 97).max(1);
    for start in (0..good.len()).step_by(step) {
        for cut in [false, true] {
            let mut bytes = good.clone();
            if cut {
                bytes.truncate(start);
            } else {
                let end = (start + 16).min(bytes.len());
                bytes[start..end].fill(0xA5);
            }
            std::fs::write(&path, &bytes).unwrap();
            if let Err(err) = IpcStreamFile::open(&path) {
                assert!(
                    matches!(err, Error::Format { .. } | Error::Unsupported(_)),
                    "{err:?}"
                );
            }
        }
    }
}

#[test]
fn ipc_stream_reads_concurrently_from_many_threads() {
    let file: Arc<dyn Source> = Arc::new(IpcStreamFile::open(&data_file("basic.arrows")).unwrap());
    check_concurrent_reads(file);
}
