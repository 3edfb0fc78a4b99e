//! `zenith bench`: epochs deliver every row, sweeps run one loader per combination side by side,
//! and piped output carries no progress.

mod common;

use common::{BASIC_ROWS, arg, data_file, fails_with, json, run, stdout_ok};
use serde_json::Value;

fn runs(report: &Value) -> &Vec<Value> {
    report["runs"].as_array().expect("runs")
}

#[test]
fn a_sweep_of_workers_and_io_backends_runs_every_combination() {
    let path = data_file("parquet/basic.snappy.parquet");
    let r = json(&[
        "bench",
        arg(&path),
        "--epochs",
        "2",
        "--batch-size",
        "1000",
        "--workers",
        "0,2",
        "--io",
        "mmap,pread,io_uring",
    ]);
    assert_eq!(r["epochs"], 2);
    assert_eq!(r["batch_size"], 1000);
    assert_eq!(r["shuffle"], "auto");
    let runs = runs(&r);
    assert_eq!(runs.len(), 6);
    let combos: Vec<(Option<&str>, u64)> = runs
        .iter()
        .map(|run| {
            (
                run["io_requested"].as_str(),
                run["workers"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        combos,
        [
            (Some("mmap"), 0),
            (Some("mmap"), 2),
            (Some("pread"), 0),
            (Some("pread"), 2),
            (Some("io_uring"), 0),
            (Some("io_uring"), 2),
        ]
    );
    for run in runs {
        assert_eq!(run["rows"], 2 * BASIC_ROWS, "{run}");
        assert_eq!(run["batches_per_epoch"], BASIC_ROWS.div_ceil(1000));
        assert_eq!(run["batches"], 2 * BASIC_ROWS.div_ceil(1000));
        assert_eq!(run["epoch_seconds"].as_array().unwrap().len(), 2);
        assert_eq!(run["shuffle"], "global");
        for key in [
            "seconds",
            "rows_per_second",
            "gb_per_second",
            "time_to_first_batch_seconds",
            "worker_busy_seconds",
        ] {
            assert!(run[key].as_f64().unwrap() > 0.0, "{key}: {run}");
        }
        assert!(run["consumer_wait_seconds"].as_f64().unwrap() >= 0.0);
        assert!(run["bytes"].as_u64().unwrap() > 0);
        // Parquet row groups are decoded: 10 per epoch.
        assert_eq!(run["chunks_decoded"], 20, "{run}");
        match run["io_requested"].as_str().unwrap() {
            // io_uring falls back to pread where the kernel refuses it, and says why.
            "io_uring" => {
                let used = run["io_backend"].as_str().unwrap();
                assert!(used == "io_uring" || used == "pread", "{run}");
                if used == "pread" {
                    assert!(run["io_note"].is_string(), "{run}");
                }
            }
            asked => assert_eq!(run["io_backend"], asked, "{run}"),
        }
        if run["io_backend"] != "mmap" {
            assert!(run["io_read_bytes"].as_u64().unwrap() > 0, "{run}");
        }
    }
}

#[test]
fn drop_last_shuffle_none_and_block_are_what_ran() {
    let path = data_file("shards");
    let r = json(&[
        "bench",
        arg(&path),
        "--batch-size",
        "768",
        "--drop-last",
        "--shuffle",
        "none",
        "--workers",
        "1",
        "--prefetch",
        "3",
    ]);
    let run = &runs(&r)[0];
    assert_eq!(r["shuffle"], "none");
    assert_eq!(run["shuffle"], "none");
    assert_eq!(run["rows"], BASIC_ROWS / 768 * 768);
    assert_eq!(run["prefetch"], 3);

    // The automatic shuffle (the default) over a tiny budget runs as block, and the report says
    // so; an explicit global shuffle over the same budget fails as out of memory (2 - (-11)).
    let r = json(&[
        "bench",
        arg(&path),
        "--memory-budget",
        "64K",
        "--workers",
        "1",
    ]);
    assert_eq!(r["shuffle"], "auto");
    assert_eq!(runs(&r)[0]["shuffle"], "block");
    assert_eq!(runs(&r)[0]["rows"], BASIC_ROWS);
    let stderr = fails_with(
        &[
            "bench",
            arg(&path),
            "--memory-budget",
            "64K",
            "--shuffle",
            "global",
            "--json",
        ],
        13,
    );
    assert!(stderr.contains("memory budget"), "{stderr}");
}

#[test]
fn arrow_ipc_follows_the_io_backend() {
    let r = json(&[
        "bench",
        arg(&data_file("basic.arrow")),
        "--io",
        "pread",
        "--workers",
        "1",
    ]);
    let run = &runs(&r)[0];
    assert_eq!(run["rows"], BASIC_ROWS);
    assert_eq!(run["io_requested"], "pread");
    assert_eq!(run["io_backend"], "pread");
}

#[test]
fn piped_output_is_a_table_without_progress_or_colour() {
    let out = run(&[
        "bench",
        arg(&data_file("parquet/basic.zstd.parquet")),
        "--workers",
        "1,2",
        "--epochs",
        "2",
    ]);
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "no progress on a pipe: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\r') && !text.contains('\x1b'), "{text:?}");
    let header = text
        .lines()
        .find(|l| l.starts_with("io "))
        .unwrap_or_else(|| panic!("no table header in:\n{text}"));
    for column in [
        "workers",
        "rows/s",
        "GB/s",
        "1st batch",
        "wait/batch",
        "busy",
    ] {
        assert!(header.contains(column), "{column} missing: {header}");
    }
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("mmap ")).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(rows[0].contains("20,000"), "{}", rows[0]);
}

#[test]
fn bad_arguments_and_bad_data_exit_with_their_codes() {
    let path = data_file("parquet/basic.none.parquet");
    fails_with(&["bench", arg(&path), "--io", "floppy"], 2);
    fails_with(&["bench", arg(&path), "--batch-size", "0"], 2);
    fails_with(&["bench", arg(&path), "--shuffle", "sometimes"], 2);
    fails_with(&["bench", arg(&path), "--epochs", "0"], 2);
    fails_with(&["bench", arg(&path), "--workers", "100000"], 4);
    fails_with(&["bench", arg(&data_file("missing_dir"))], 6);
    // Corrupt pages fail when the row group is decoded, mid-epoch: still a clean exit.
    let stderr = fails_with(
        &[
            "bench",
            arg(&data_file("corrupt.parquet")),
            "--workers",
            "1",
        ],
        7,
    );
    assert!(stderr.contains("corrupt.parquet"), "{stderr}");
}

#[test]
fn help_shows_examples() {
    let help = stdout_ok(&["bench", "--help"]);
    assert!(help.contains("Examples:"), "{help}");
    assert!(
        help.contains("--workers 1,2,4 --io mmap,pread,io_uring"),
        "{help}"
    );
}

#[test]
fn metrics_addr_serves_the_run_and_keeps_stdout_clean() {
    let out = run(&[
        "bench",
        arg(&data_file("basic.arrow")),
        "--metrics-addr",
        "127.0.0.1:0",
        "--json",
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("zenith: serving metrics at http://127.0.0.1:"),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON alone");
    assert_eq!(runs(&report)[0]["rows"], BASIC_ROWS);
}

/// The exit code of `ZENITH_ERR_NO_DEVICE` (2 - status).
const NO_DEVICE_EXIT: i32 = 16;

/// Runs `zenith ARGS` with every CUDA device hidden (`CUDA_VISIBLE_DEVICES=""`), so the test
/// means the same on machines with and without a GPU; expects `code` and returns stderr.
fn without_devices(args: &[&str], code: i32) -> String {
    let out = common::zenith()
        .env("CUDA_VISIBLE_DEVICES", "")
        .args(args)
        .output()
        .expect("zenith runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "zenith {args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "a failure prints nothing on stdout");
    stderr
}

/// Whether a NO_DEVICE message says why: no driver library, or a driver that sees no device.
fn says_why(stderr: &str) -> bool {
    stderr.contains("CUDA driver library was not found") || stderr.contains("CUDA_ERROR_NO_DEVICE")
}

#[test]
fn bench_on_a_cuda_device_without_one_fails_with_no_device() {
    let path = data_file("parquet/basic.snappy.parquet");
    let stderr = without_devices(
        &["bench", arg(&path), "--device", "cuda:0", "--json"],
        NO_DEVICE_EXIT,
    );
    assert!(stderr.contains("--device cuda:0"), "{stderr}");
    assert!(says_why(&stderr), "{stderr}");
}

#[test]
fn bench_h2d_without_a_device_fails_with_no_device() {
    let stderr = without_devices(&["bench", "h2d"], NO_DEVICE_EXIT);
    assert!(
        stderr.contains("zenith bench h2d needs a CUDA device"),
        "{stderr}"
    );
    assert!(says_why(&stderr), "{stderr}");
    // A device that is not cuda[:N] is a usage error.
    let stderr = fails_with(&["bench", "h2d", "--device", "gpu0"], 2);
    assert!(stderr.contains("is not a CUDA device"), "{stderr}");
}
