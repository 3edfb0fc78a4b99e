//! `zenith inspect` on pyarrow-written files: the JSON checked against what the files hold
//! (generate.py's layout, and the Parquet footers read with the parquet crate), the human
//! report, projections, the shuffle decision under a memory budget, and clean errors.

mod common;

use std::fs::File;

use common::{BASIC_ROWS, arg, data_file, fails_with, json, stdout_ok};
use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::{Value, json};

/// Record batch sizes generate.py cycles through for basic.arrow / basic.arrows.
const FILE_BATCH_SIZES: [u64; 4] = [1000, 777, 1500, 123];
/// Rows per shard of shards/, and their row group size.
const SHARD_ROWS: [u64; 8] = [1000, 1500, 777, 1223, 1250, 1250, 2000, 1000];
const SHARD_ROW_GROUP: u64 = 500;

fn basic_nulls_in_name() -> u64 {
    (0..BASIC_ROWS).filter(|i| i % 7 == 3).count() as u64
}

/// basic.arrow's record batch sizes, as generate.py's irregular_batches cuts them.
fn ipc_batch_sizes() -> Vec<u64> {
    let (mut sizes, mut offset, mut k) = (Vec::new(), 0, 0);
    while offset < BASIC_ROWS {
        let size = FILE_BATCH_SIZES[k % 4].min(BASIC_ROWS - offset);
        sizes.push(size);
        offset += size;
        k += 1;
    }
    sizes
}

fn names(report: &Value) -> Vec<&str> {
    report["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

fn column<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["schema"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

#[test]
fn a_parquet_file_reports_rows_row_groups_schema_codecs_and_exports() {
    let path = data_file("parquet/basic.zstd.parquet");
    let r = json(&["inspect", arg(&path)]);
    let footer = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
    let meta = footer.metadata();

    assert_eq!(r["format"], "parquet");
    assert_eq!(r["files"]["count"], 1);
    assert_eq!(r["files"]["bytes"], std::fs::metadata(&path).unwrap().len());
    assert_eq!(r["rows"], BASIC_ROWS);
    assert_eq!(r["rows"], meta.file_metadata().num_rows());
    assert_eq!(r["chunks"]["kind"], "row_group");
    assert_eq!(r["chunks"]["count"], meta.num_row_groups());
    assert_eq!(r["chunks"]["count"], 10);
    assert_eq!(
        (
            r["chunks"]["min_rows"].clone(),
            r["chunks"]["max_rows"].clone()
        ),
        (json!(1000), json!(1000))
    );
    assert_eq!(r["batches_per_epoch"], BASIC_ROWS.div_ceil(1024));

    assert_eq!(
        names(&r),
        ["id", "label", "value", "name", "flag", "embedding"]
    );
    let types: Vec<&str> = r["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types[..5], ["Int64", "Int32", "Float64", "Utf8", "Boolean"]);
    assert!(
        types[5].starts_with("FixedSizeList(4 x Float32"),
        "{}",
        types[5]
    );

    for c in r["schema"].as_array().unwrap() {
        assert_eq!(c["compression"], json!(["zstd"]), "{c}");
        assert!(c["compressed_bytes"].as_u64().unwrap() > 0);
        assert!(c["uncompressed_bytes"].as_u64().unwrap() > 0);
        assert_eq!(c["arrow"]["exportable"], true);
    }
    // Null counts from the column statistics.
    assert_eq!(column(&r, "name")["nulls"], basic_nulls_in_name());
    assert_eq!(column(&r, "id")["nulls"], 0);

    // What DLPack makes of each column.
    let dlpack = |name: &str| column(&r, name)["dlpack"].clone();
    assert_eq!(
        dlpack("id"),
        json!({"exportable": true, "dtype": "int64", "shape": [null], "reason": null})
    );
    assert_eq!(dlpack("label")["dtype"], "int32");
    assert_eq!(dlpack("value")["dtype"], "float64");
    assert_eq!(dlpack("flag")["dtype"], "bool");
    assert_eq!(dlpack("embedding")["dtype"], "float32");
    assert_eq!(dlpack("embedding")["shape"], json!([null, 4]));
    assert_eq!(dlpack("name")["exportable"], false);
    assert!(
        dlpack("name")["reason"]
            .as_str()
            .unwrap()
            .contains("no DLPack tensor form")
    );
    // The Arrow C Data Interface format strings.
    assert_eq!(column(&r, "id")["arrow"]["format"], "l");
    assert_eq!(column(&r, "name")["arrow"]["format"], "u");
    assert_eq!(column(&r, "embedding")["arrow"]["format"], "+w:4");
}

#[test]
fn every_codec_is_named_as_the_footer_names_it() {
    for (file, codec) in [
        ("snappy", "snappy"),
        ("gzip", "gzip"),
        ("lz4", "lz4_raw"),
        ("none", "none"),
    ] {
        let r = json(&[
            "inspect",
            arg(&data_file(&format!("parquet/basic.{file}.parquet"))),
        ]);
        assert_eq!(column(&r, "id")["compression"], json!([codec]), "{file}");
        assert_eq!(
            r["files"]["list"][0]["compression"],
            json!([codec]),
            "{file}"
        );
    }
}

#[test]
fn a_directory_of_shards_lists_every_file_with_its_row_groups() {
    let dir = data_file("shards");
    let r = json(&["inspect", arg(&dir)]);
    assert_eq!(r["files"]["count"], SHARD_ROWS.len());
    assert_eq!(r["rows"], BASIC_ROWS);
    let expected_groups: u64 = SHARD_ROWS.iter().map(|r| r.div_ceil(SHARD_ROW_GROUP)).sum();
    assert_eq!(r["chunks"]["count"], expected_groups);
    let list = r["files"]["list"].as_array().unwrap();
    let mut bytes = 0;
    for (k, file) in list.iter().enumerate() {
        let path = std::path::Path::new(file["path"].as_str().unwrap());
        let footer = SerializedFileReader::new(File::open(path).unwrap()).unwrap();
        assert_eq!(file["rows"], SHARD_ROWS[k], "{path:?}");
        assert_eq!(
            file["chunks"],
            footer.metadata().num_row_groups(),
            "{path:?}"
        );
        assert_eq!(
            file["relative_path"],
            format!("{}/part-{k}.parquet", if k < 4 { "a" } else { "b" })
        );
        bytes += std::fs::metadata(path).unwrap().len();
    }
    assert_eq!(r["files"]["bytes"], bytes);
}

#[test]
fn arrow_ipc_files_and_streams_report_their_record_batches_and_nulls_from_the_headers() {
    let sizes = ipc_batch_sizes();
    for file in ["basic.arrow", "basic.arrows"] {
        let r = json(&["inspect", arg(&data_file(file))]);
        let format = if file.ends_with(".arrow") {
            "arrow-ipc-file"
        } else {
            "arrow-ipc-stream"
        };
        assert_eq!(r["format"], format);
        assert_eq!(r["rows"], BASIC_ROWS);
        assert_eq!(r["chunks"]["kind"], "record_batch");
        assert_eq!(r["chunks"]["count"], sizes.len(), "{file}");
        assert_eq!(r["chunks"]["min_rows"], *sizes.iter().min().unwrap());
        assert_eq!(r["chunks"]["max_rows"], *sizes.iter().max().unwrap());
        assert_eq!(column(&r, "name")["nulls"], basic_nulls_in_name(), "{file}");
        assert_eq!(column(&r, "embedding")["nulls"], 0, "{file}");
        assert_eq!(column(&r, "id")["compression"], json!(["none"]));
        // Memory-mapped or held: a global shuffle needs nothing more.
        assert_eq!(r["shuffle"]["in_memory"], true);
        assert_eq!(r["shuffle"]["global"]["runs_as"], "global");
        assert_eq!(r["shuffle"]["global"]["memory_needed_bytes"], 0);
    }
}

#[test]
fn csv_reports_its_inferred_types_and_null_counts() {
    let r = json(&["inspect", arg(&data_file("basic.csv"))]);
    assert_eq!(r["format"], "csv");
    assert_eq!(r["rows"], BASIC_ROWS);
    assert_eq!(names(&r), ["id", "label", "value", "name", "flag"]);
    // CSV has no int32: the loader infers int64.
    assert_eq!(column(&r, "label")["type"], "Int64");
    assert_eq!(column(&r, "name")["nulls"], basic_nulls_in_name());
    assert_eq!(column(&r, "flag")["dlpack"]["exportable"], true);
}

#[test]
fn compressed_text_json_lines_and_tar_shards_report_format_codec_and_columns() {
    let r = json(&["inspect", arg(&data_file("formats/basic.csv.zst"))]);
    assert_eq!(r["format"], "csv");
    assert_eq!(r["rows"], BASIC_ROWS);
    assert_eq!(column(&r, "name")["compression"], json!(["zstd"]));
    assert_eq!(column(&r, "name")["nulls"], basic_nulls_in_name());

    let r = json(&["inspect", arg(&data_file("formats/basic.jsonl.gz"))]);
    assert_eq!(r["format"], "jsonl");
    assert_eq!(
        names(&r),
        ["id", "label", "value", "name", "flag", "embedding"]
    );

    let r = json(&["inspect", arg(&data_file("webdataset"))]);
    assert_eq!(r["format"], "tar");
    assert_eq!(r["rows"], 157);
    assert_eq!(names(&r), ["__key__", "cls", "jpg", "json"]);
    // Every third sample has no .json file: a null.
    assert_eq!(
        column(&r, "json")["nulls"],
        (0..157).filter(|i| i % 3 == 0).count()
    );
}

#[test]
fn columns_project_and_order_the_schema() {
    let r = json(&[
        "inspect",
        arg(&data_file("parquet/basic.snappy.parquet")),
        "--columns",
        "embedding,id",
    ]);
    assert_eq!(names(&r), ["embedding", "id"]);
    assert_eq!(column(&r, "embedding")["compression"], json!(["snappy"]));
}

#[test]
fn a_global_shuffle_over_the_budget_runs_as_block_with_windows_that_fit() {
    let path = data_file("parquet/basic.gzip.parquet");
    let roomy = json(&["inspect", arg(&path), "--memory-budget", "1G"]);
    let s = &roomy["shuffle"];
    assert_eq!(s["memory_budget_bytes"], 1u64 << 30);
    assert_eq!(s["in_memory"], false);
    assert_eq!(s["global"]["runs_as"], "global");
    assert_eq!(s["global"]["memory_needed_bytes"], s["decoded_bytes"]);
    assert_eq!(s["block"]["runs_as"], "block");
    let decoded = s["decoded_bytes"].as_u64().unwrap();
    assert!(decoded > 0);

    // A budget of a quarter of the decoded data: windows of half the budget.
    let budget = decoded / 4;
    let tight = json(&[
        "inspect",
        arg(&path),
        "--memory-budget",
        &budget.to_string(),
    ]);
    let s = &tight["shuffle"];
    assert_eq!(s["global"]["requested"], "global");
    assert_eq!(s["global"]["runs_as"], "block");
    let window = s["global"]["window_chunks"].as_u64().unwrap();
    let average = decoded / 10;
    assert_eq!(window, ((budget / 2) / average).clamp(1, 10));
    assert_eq!(s["global"]["windows"], 10u64.div_ceil(window));
    assert!(s["global"]["memory_needed_bytes"].as_u64().unwrap() <= budget);
}

#[test]
fn the_human_report_names_format_rows_chunks_columns_and_the_shuffle() {
    let text = stdout_ok(&["inspect", arg(&data_file("shards"))]);
    for needle in [
        "format     parquet",
        "rows       10,000",
        "22 row groups",
        "a/part-0.parquet",
        "embedding",
        "float32 [rows, 4]",
        "int64 [rows]",
        "no: no tensor form",
        "global  one exact permutation of 10,000 rows",
        "block   windows of",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    assert!(!text.contains('\x1b'), "no colour on a pipe");
}

#[test]
fn bad_inputs_exit_with_the_status_of_their_error_kind() {
    let missing = data_file("no_such_file.parquet");
    let stderr = fails_with(&["inspect", arg(&missing)], 6);
    assert!(stderr.starts_with("zenith: error: "), "{stderr}");
    assert!(
        stderr.contains("no_such_file.parquet: no such file or directory"),
        "{stderr}"
    );
    assert!(fails_with(&["inspect", arg(&data_file("empty_dir"))], 6).contains("no data files"));
    fails_with(&["inspect", arg(&data_file("not_a_dataset.bin"))], 7);
    fails_with(&["inspect", arg(&data_file("truncated.parquet"))], 7);
    fails_with(&["inspect", arg(&data_file("corrupt_footer.arrow"))], 7);
    let mixed = fails_with(&["inspect", arg(&data_file("mixed_shards"))], 11);
    assert!(mixed.contains("schema mismatch"), "{mixed}");
    let unknown = fails_with(
        &[
            "inspect",
            arg(&data_file("basic.arrow")),
            "--columns",
            "nope",
        ],
        4,
    );
    assert!(unknown.contains("no column named \"nope\""), "{unknown}");
    // Usage errors are clap's: exit 2.
    fails_with(
        &[
            "inspect",
            arg(&data_file("basic.arrow")),
            "--memory-budget",
            "lots",
        ],
        2,
    );
    fails_with(&["inspect"], 2);
}
