//! Files whose metadata lies: sizes that a file states (row counts, value counts, page sizes,
//! columns) must be checked against the file and the memory budget before anything is sized by
//! them. Each answer is a clear `Error::Format` or `Error::OutOfMemory`, never an abort.
//!
//! Every hostile open runs in a child process (this test binary re-executed on the one test,
//! under an 8 GiB address-space limit and a time limit), so that an abort, an allocation the
//! limit refuses or an endless loop fails that test instead of killing or hanging the run.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader, ParquetMetaDataWriter};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use zenith_core::dataset::source::{HeldBatches, Source};
use zenith_core::dataset::{Dataset, DatasetOptions, Format, SourceOptions};
use zenith_core::{Error, Loader, LoaderOptions};

/// The environment variable that tells a re-executed test binary to run the hostile body.
const CHILD: &str = "ZENITH_HOSTILE_CHILD";
/// The address space a child may map: far below what the lies ask for (16 GiB, 8 TB, 52 GB).
const CHILD_ADDRESS_SPACE: u64 = 8 << 30;
const CHILD_TIME_LIMIT: Duration = Duration::from_secs(120);
/// The budget the hostile opens run with.
const BUDGET: u64 = 64 << 20;

/// Runs `body` in a child process (this binary, filtered to the test `name`), and fails unless
/// the child exits cleanly: a panic, an abort, a signal or a time-out is a failure.
fn isolated(name: &str, body: impl FnOnce()) {
    if std::env::var_os(CHILD).is_some() {
        body();
        return;
    }
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: CHILD_ADDRESS_SPACE,
                rlim_max: CHILD_ADDRESS_SPACE,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > CHILD_TIME_LIMIT {
            child.kill().ok();
            child.wait().ok();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut output = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut output)
        .ok();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut output)
        .ok();
    match status {
        None => {
            panic!("{name}: still running after {CHILD_TIME_LIMIT:?} (endless loop?)\n{output}")
        }
        Some(status) => assert!(
            status.success(),
            "{name}: the child died ({status}): an abort or a failed assertion\n{output}"
        ),
    }
}

fn options(budget: u64) -> DatasetOptions {
    DatasetOptions {
        source: SourceOptions {
            memory_budget: Some(budget),
            ..SourceOptions::default()
        },
        ..DatasetOptions::default()
    }
}

/// Opens `path` as a dataset with a budget and reads every chunk: the first error, if any.
fn open_and_read(path: &Path, budget: u64) -> Result<Dataset, Error> {
    let dataset = Dataset::open(path, &options(budget))?;
    for chunk in 0..dataset.chunks().len() {
        dataset.read_chunk(chunk)?;
    }
    Ok(dataset)
}

fn assert_refused(result: Result<Dataset, Error>, words: &[&str]) {
    let err = result.expect_err("a lying file must be refused");
    assert!(
        matches!(err, Error::Format { .. } | Error::OutOfMemory { .. }),
        "a format or out-of-memory error, not {err:?}"
    );
    let message = err.to_string();
    for word in words {
        assert!(message.contains(word), "{word:?} in {message:?}");
    }
}

// ---- Parquet --------------------------------------------------------------------------------

fn int64_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]))
}

/// A small honest Parquet file written by the `parquet` crate: 10 rows of an int64 column in one
/// row group, uncompressed, no statistics or page index.
fn honest_parquet() -> Vec<u8> {
    let schema = int64_schema();
    let column: ArrayRef = Arc::new(Int64Array::from_iter_values(0..10));
    plain_parquet(RecordBatch::try_new(schema, vec![column]).unwrap())
}

/// `batch` as a Parquet file of one row group, uncompressed, plain-encoded, without statistics.
fn plain_parquet(batch: RecordBatch) -> Vec<u8> {
    let schema = batch.schema();
    let props = WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .set_statistics_enabled(EnabledStatistics::None)
        .set_dictionary_enabled(false)
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema, Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    out
}

fn footer_of(file: &[u8]) -> ParquetMetaData {
    ParquetMetaDataReader::new()
        .parse_and_finish(&Bytes::copy_from_slice(file))
        .unwrap()
}

/// `data` (everything before the footer, starting with PAR1) followed by `metadata` written as
/// a footer (Thrift FileMetaData, its length, PAR1).
fn with_footer(data: &[u8], metadata: &ParquetMetaData) -> Vec<u8> {
    let mut out = data.to_vec();
    ParquetMetaDataWriter::new(&mut out, metadata)
        .finish()
        .unwrap();
    out
}

/// The bytes of `file` before its footer.
fn data_part(file: &[u8]) -> &[u8] {
    let footer_len = u32::from_le_bytes(file[file.len() - 8..file.len() - 4].try_into().unwrap());
    &file[..file.len() - 8 - footer_len as usize]
}

/// `file` with its (only) row group claiming `rows` rows, and its column chunks `values`
/// values when given.
fn claiming(file: &[u8], rows: i64, values: Option<i64>) -> Vec<u8> {
    let mut builder = footer_of(file).into_builder();
    let row_groups = builder
        .take_row_groups()
        .into_iter()
        .map(|row_group| {
            let mut rg = row_group.into_builder();
            let columns = rg
                .take_columns()
                .into_iter()
                .map(|c| match values {
                    Some(v) => c.into_builder().set_num_values(v).build().unwrap(),
                    None => c,
                })
                .collect();
            rg.set_column_metadata(columns)
                .set_num_rows(rows)
                .build()
                .unwrap()
        })
        .collect();
    let metadata = builder.set_row_groups(row_groups).build();
    with_footer(data_part(file), &metadata)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn the_parquet_helpers_write_readable_files() {
    let dir = tempfile::tempdir().unwrap();
    let honest = honest_parquet();
    let same = claiming(&honest, 10, None);
    for (name, bytes) in [("honest.parquet", &honest), ("rewritten.parquet", &same)] {
        let dataset = open_and_read(&write(dir.path(), name, bytes), BUDGET).unwrap();
        assert_eq!(dataset.num_rows(), 10, "{name}");
    }
    let path = write(dir.path(), "dict.parquet", &dictionary_parquet(2));
    let dataset = open_and_read(&path, BUDGET).unwrap();
    let batch = dataset.read_chunk(0).unwrap();
    let x = batch
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(x.values(), &[7; 10]);
}

#[test]
fn a_parquet_footer_claiming_2_pow_40_rows_is_refused_at_open() {
    isolated(
        "a_parquet_footer_claiming_2_pow_40_rows_is_refused_at_open",
        || {
            let dir = tempfile::tempdir().unwrap();
            let honest = honest_parquet();
            assert!(honest.len() < 4096);
            // Only the row group's num_rows lies; then its column chunks lie along with it.
            let lies = [
                ("rows.parquet", claiming(&honest, 1 << 40, None)),
                ("values.parquet", claiming(&honest, 1 << 40, Some(1 << 40))),
            ];
            for (name, bytes) in lies {
                let path = write(dir.path(), name, &bytes);
                assert_refused(open_and_read(&path, BUDGET), &[name, "row group 0"]);
                // The loader, with the default budget, refuses it too (before any planning).
                let err = Loader::open(&path, &LoaderOptions::default()).unwrap_err();
                assert!(matches!(err, Error::Format { .. }), "{err:?}");
            }
        },
    );
}

#[test]
fn a_parquet_row_group_that_fits_the_file_but_not_the_budget_is_out_of_memory() {
    isolated(
        "a_parquet_row_group_that_fits_the_file_but_not_the_budget_is_out_of_memory",
        || {
            let dir = tempfile::tempdir().unwrap();
            // 10^9 rows of int64 fit the pages of a ~100-byte chunk (runs of a repeated value
            // can be that dense) but decode to 8 GB.
            let bytes = claiming(&honest_parquet(), 1_000_000_000, Some(1_000_000_000));
            let path = write(dir.path(), "dense.parquet", &bytes);
            let err = Dataset::open(&path, &options(BUDGET)).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::OutOfMemory {
                        needed: 8_000_000_000,
                        ..
                    }
                ),
                "{err:?}"
            );
            assert_eq!(err.kind(), zenith_core::ErrorKind::OutOfMemory);
            assert!(err.to_string().contains("dense.parquet"), "{err}");
            // With the default budget (half the available memory) it may open; reading then
            // finds the rows missing. Either way: an error, not an abort.
            let result = open_and_read(
                &path,
                zenith_core::runtime::memory_budget::default_memory_budget(),
            );
            assert_refused(result, &["dense.parquet"]);
        },
    );
}

// A Parquet file built by hand, one int64 column dictionary-encoded: a dictionary page of
// `dict_values` claimed values (holding 2: 7 and 8) and a data page of 10 indices, all 0.

/// Thrift compact protocol: a field header (short form) and a zigzag varint i32 value.
fn thrift_i32(out: &mut Vec<u8>, delta: u8, value: i32) {
    out.push(delta << 4 | 5);
    let mut v = ((value << 1) ^ (value >> 31)) as u32;
    loop {
        if v < 0x80 {
            out.push(v as u8);
            break;
        }
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
}

/// A page header: type, uncompressed and compressed sizes, and the sub-header (field `field`,
/// i32 fields given in order from 1) .
fn page_header(kind: i32, size: i32, field: u8, sub: &[i32]) -> Vec<u8> {
    let mut out = Vec::new();
    thrift_i32(&mut out, 1, kind);
    thrift_i32(&mut out, 1, size);
    thrift_i32(&mut out, 1, size);
    out.push((field - 3) << 4 | 12);
    for &value in sub {
        thrift_i32(&mut out, 1, value);
    }
    out.push(0);
    out.push(0);
    out
}

fn dictionary_parquet(dict_values: i32) -> Vec<u8> {
    let template = honest_parquet();
    let metadata = footer_of(&template);
    let mut chunk = Vec::new();
    let dict_body: Vec<u8> = [7i64, 8].iter().flat_map(|v| v.to_le_bytes()).collect();
    // Dictionary page (type 2): num_values, encoding PLAIN (0).
    chunk.extend(page_header(2, 16, 7, &[dict_values, 0]));
    chunk.extend(&dict_body);
    let data_offset = chunk.len();
    // Data page v1 (type 0): 10 values, RLE_DICTIONARY (8), levels RLE (3): bit width 1, then
    // one RLE run of 10 zeros.
    let data_body = [1u8, 10 << 1, 0];
    chunk.extend(page_header(0, 3, 5, &[10, 8, 3, 3]));
    chunk.extend(data_body);

    let mut builder = metadata.into_builder();
    let row_groups = builder
        .take_row_groups()
        .into_iter()
        .map(|row_group| {
            let mut rg = row_group.into_builder();
            let columns = rg
                .take_columns()
                .into_iter()
                .map(|c| {
                    c.into_builder()
                        .set_dictionary_page_offset(Some(4))
                        .set_data_page_offset(4 + data_offset as i64)
                        .set_total_compressed_size(chunk.len() as i64)
                        .set_total_uncompressed_size(chunk.len() as i64)
                        .set_num_values(10)
                        .set_encodings(vec![Encoding::PLAIN, Encoding::RLE_DICTIONARY])
                        .set_offset_index_offset(None)
                        .set_offset_index_length(None)
                        .set_column_index_offset(None)
                        .set_column_index_length(None)
                        .build()
                        .unwrap()
                })
                .collect();
            rg.set_column_metadata(columns)
                .set_num_rows(10)
                .set_file_offset(4)
                .build()
                .unwrap()
        })
        .collect();
    let metadata = builder
        .set_row_groups(row_groups)
        .set_page_index(None)
        .build();
    let mut data = b"PAR1".to_vec();
    data.extend(&chunk);
    with_footer(&data, &metadata)
}

#[test]
fn a_dictionary_page_claiming_2_pow_31_values_is_refused_before_decoding() {
    isolated(
        "a_dictionary_page_claiming_2_pow_31_values_is_refused_before_decoding",
        || {
            let dir = tempfile::tempdir().unwrap();
            let path = write(dir.path(), "dict.parquet", &dictionary_parquet(i32::MAX));
            // The footer is honest: the file opens; the lie is inside the column chunk.
            let dataset = Dataset::open(&path, &options(BUDGET)).unwrap();
            let err = dataset.read_chunk(0).unwrap_err();
            assert!(matches!(err, Error::Format { .. }), "{err:?}");
            assert!(err.to_string().contains("dictionary"), "{err}");
            // Without a budget of its own (the default), the same.
            let err = open_and_read(
                &path,
                zenith_core::runtime::memory_budget::default_memory_budget(),
            );
            assert_refused(err, &["dict.parquet", "row group 0"]);
        },
    );
}

/// arrow-rs 60 skips an unknown footer field that is a list of booleans one element at a time,
/// taking no byte for each: 9 bytes claiming 2^31 - 1 of them cost it seconds (103 s under
/// AddressSanitizer, found while fuzzing), and a footer holds hundreds. Refused before it parses.
#[test]
fn a_parquet_footer_with_endless_boolean_lists_is_refused_at_once() {
    isolated(
        "a_parquet_footer_with_endless_boolean_lists_is_refused_at_once",
        || {
            let honest = honest_parquet();
            let data = data_part(&honest);
            let footer = &honest[data.len()..honest.len() - 8];
            assert_eq!(
                footer.last(),
                Some(&0),
                "FileMetaData ends with its stop byte"
            );
            // Field 100 (long form), a list of booleans (type 1) of 2^31 - 1 elements.
            let field = [0x09, 0xc8, 0x01, 0xf1, 0xff, 0xff, 0xff, 0xff, 0x07];
            let mut lying = footer[..footer.len() - 1].to_vec();
            for _ in 0..50 {
                lying.extend(field);
            }
            lying.push(0);
            let mut file = data.to_vec();
            file.extend(&lying);
            file.extend((lying.len() as u32).to_le_bytes());
            file.extend(b"PAR1");
            let dir = tempfile::tempdir().unwrap();
            let path = write(dir.path(), "booleans.parquet", &file);
            // Without the check, arrow-rs is still skipping after the child's time limit.
            assert_refused(
                open_and_read(&path, BUDGET),
                &["booleans.parquet", "footer"],
            );
        },
    );
}

// ---- CSV ------------------------------------------------------------------------------------

fn wide_csv(columns: usize, rows: usize) -> Vec<u8> {
    let mut text = String::new();
    let header: Vec<String> = (0..columns).map(|c| format!("c{c}")).collect();
    text.push_str(&header.join(","));
    text.push('\n');
    for row in 0..rows {
        let line: Vec<String> = (0..columns).map(|c| (row + c % 7).to_string()).collect();
        text.push_str(&line.join(","));
        text.push('\n');
    }
    text.into_bytes()
}

#[test]
fn a_csv_with_100_000_columns_and_2_rows_opens_in_chunks_sized_in_bytes() {
    isolated(
        "a_csv_with_100_000_columns_and_2_rows_opens_in_chunks_sized_in_bytes",
        || {
            let dir = tempfile::tempdir().unwrap();
            let path = write(dir.path(), "wide.csv", &wide_csv(100_000, 2));
            let dataset = open_and_read(&path, 1 << 30).unwrap();
            assert_eq!(dataset.num_rows(), 2);
            assert_eq!(dataset.schema().fields().len(), 100_000);
            let batch = dataset.read_chunk(0).unwrap();
            let last = batch.column(99_999).as_any().downcast_ref::<Int64Array>();
            assert_eq!(last.unwrap().values(), &[99_999 % 7, 1 + 99_999 % 7]);
        },
    );
}

#[test]
fn a_csv_that_decodes_past_the_budget_is_out_of_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "long.csv", &wide_csv(4, 100_000));
    let err = Dataset::open(&path, &options(256 << 10)).unwrap_err();
    assert!(matches!(err, Error::OutOfMemory { .. }), "{err:?}");
    assert!(err.to_string().contains("long.csv"), "{err}");
    assert_eq!(open_and_read(&path, BUDGET).unwrap().num_rows(), 100_000);
}

// ---- Row counts past u64 --------------------------------------------------------------------

#[test]
fn chunk_row_counts_that_sum_past_u64_are_a_format_error() {
    // Sources whose row counts come from metadata (an IPC footer's batch lengths may be any
    // i64): two chunks of 2^63 rows cannot both be believed.
    #[derive(Debug)]
    struct Lying(HeldBatches, Vec<u64>);
    impl Source for Lying {
        fn path(&self) -> &Path {
            self.0.path()
        }
        fn schema(&self) -> &SchemaRef {
            self.0.schema()
        }
        fn chunk_rows(&self) -> &[u64] {
            &self.1
        }
        fn chunk_decoded_bytes(&self, _: usize, _: Option<&[usize]>) -> u64 {
            0
        }
        fn fetch_chunk(
            &self,
            index: usize,
            projection: Option<&[usize]>,
        ) -> zenith_core::error::Result<RecordBatch> {
            self.0.fetch_chunk(index, projection)
        }
        fn in_memory(&self) -> bool {
            true
        }
    }
    let held = HeldBatches::new(Path::new("/lies.arrow"), int64_schema(), vec![]);
    let source: Arc<dyn Source> = Arc::new(Lying(held, vec![1 << 63, 1 << 63]));
    let err = Dataset::from_sources(
        Path::new("/lies.arrow"),
        vec![source],
        &[Format::ArrowIpcFile],
        None,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err:?}");
    assert!(err.to_string().contains("2^64"), "{err}");
}

// ---- Honest files stay readable -------------------------------------------------------------

/// The pyarrow-written seeds of the fuzz corpus (libzenith/fuzz/seeds.py) pass every check:
/// the bounds above refuse lies, not files that real writers produce (every codec, page
/// version, encoding, nested types, page indexes, constant columns whose runs are dense).
#[test]
fn pyarrow_written_fuzz_seeds_open_and_read() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    // Files that are meant to fail: codecs this build does not decode, a ragged CSV.
    let refused = ["typed.brotli.parquet", "zstd_body.arrow", "ragged.csv"];
    let mut opened = 0;
    for target in ["ipc_file", "ipc_stream", "parquet", "csv"] {
        let Ok(entries) = std::fs::read_dir(corpus.join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap();
            let result = open_and_read(&path, BUDGET);
            if refused.contains(&name) {
                let err = result.expect_err(name);
                assert!(matches!(err, Error::Format { .. }), "{name}: {err:?}");
            } else {
                result.unwrap_or_else(|e| panic!("{name}: {e}"));
                opened += 1;
            }
        }
    }
    assert!(opened >= 25 || !corpus.exists(), "{opened} seeds read");
}

// ---- Crashes the fuzzer found (libzenith/fuzz), replayed ------------------------------------

/// Every input in tests/fuzz_crashes/<target>/ once crashed that fuzz target (or, named
/// `caught_panic_*`, makes arrow-rs panic inside a decoder: the sources must catch that and
/// answer a format error); each is replayed as the target does, in a child process (an abort
/// must fail the test, not the run).
#[test]
fn fuzz_crashes_stay_fixed() {
    isolated("fuzz_crashes_stay_fixed", || {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_crashes");
        let dir = tempfile::tempdir().unwrap();
        for target in ["ipc_file", "ipc_stream", "parquet", "csv", "resume_state"] {
            let Ok(entries) = std::fs::read_dir(root.join(target)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let ext = match target {
                    "ipc_file" => "arrow",
                    "ipc_stream" => "arrows",
                    "parquet" => "parquet",
                    "csv" => "csv",
                    _ => {
                        replay_resume_token(&data);
                        continue;
                    }
                };
                let file = write(dir.path(), &format!("input.{ext}"), &data);
                if let Err(err) = open_and_read(&file, BUDGET) {
                    assert!(
                        !matches!(err, Error::Panic(_) | Error::Internal(_)),
                        "{}: {err}",
                        path.display()
                    );
                }
            }
        }
    });
}

/// What the resume_state target checks: the bytes, given a valid envelope (magic, version, all
/// columns, checksum), are refused or decode to a state that encodes back to the same bytes.
fn replay_resume_token(data: &[u8]) {
    use zenith_core::dataset::Fnv64;
    use zenith_core::loader::{RESUME_STATE_SIZE, ResumeState};
    let mut token = vec![0u8; RESUME_STATE_SIZE];
    let n = data.len().min(RESUME_STATE_SIZE);
    token[..n].copy_from_slice(&data[..n]);
    token[..4].copy_from_slice(b"ZNRS");
    token[4..6].copy_from_slice(&1u16.to_le_bytes());
    token[14..22].copy_from_slice(&0u64.to_le_bytes());
    let body = RESUME_STATE_SIZE - 8;
    let mut hash = Fnv64::default();
    hash.write(&token[..body]);
    let checksum = hash.finish().to_le_bytes();
    token[body..].copy_from_slice(&checksum);
    if let Ok(state) = ResumeState::decode(&token) {
        assert_eq!(state.encode(), token);
    }
}

/// Only the columns a loader asks for are decoded: a column chunk whose pages are garbage fails
/// the batches that read it, and no batch of a loader that leaves it out.
#[test]
fn a_parquet_column_left_out_by_the_loader_is_never_decoded() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, false),
        Field::new("b", DataType::Int64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(0..100)),
        Arc::new(Int64Array::from_iter_values(1000..1100)),
    ];
    let mut file = plain_parquet(RecordBatch::try_new(schema, columns).unwrap());
    // Column a's chunk (its page header and values) overwritten with garbage.
    let (start, len) = footer_of(&file).row_group(0).column(0).byte_range();
    file[start as usize..(start + len) as usize].fill(0xff);
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "garbage_a.parquet", &file);

    let mut options = LoaderOptions::default();
    options.set_columns(Some(vec!["b".into()])).unwrap();
    let loader = Loader::open(&path, &options).unwrap();
    let mut b = Vec::new();
    while let Some(batch) = loader.next_batch().unwrap() {
        assert_eq!(batch.data.num_columns(), 1);
        let column = batch.data.column(0);
        b.extend_from_slice(
            column
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values(),
        );
    }
    b.sort_unstable();
    assert_eq!(b, (1000..1100).collect::<Vec<i64>>());

    let everything = Loader::open(&path, &LoaderOptions::default()).unwrap();
    let err = everything.next_batch().unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err:?}");
    assert!(err.to_string().contains("garbage_a.parquet"), "{err}");
}
