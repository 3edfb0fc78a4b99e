//! Running the built `zenith` binary on pyarrow-written data (tests/data/generate.py).

#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

/// Rows of every `basic.*` table (generate.py's default `--rows`).
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
        "test data missing in {}: run `make data` first (or set ZENITH_TEST_DATA)",
        dir.display()
    );
    dir.join(name)
}

/// The `zenith` binary, with no colour or I/O override leaking in from the environment.
pub fn zenith() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_zenith"));
    for var in [
        "NO_COLOR",
        "ZENITH_IO_BACKEND",
        "RANK",
        "WORLD_SIZE",
        "SLURM_PROCID",
        "SLURM_NTASKS",
    ] {
        command.env_remove(var);
    }
    command
}

/// Runs `zenith ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    zenith().args(args).output().expect("zenith runs")
}

/// Runs `zenith ARGS`, expects exit 0, and returns stdout as text.
pub fn stdout_ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "zenith {args:?} exited {:?}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

/// Runs `zenith ARGS --json`, expects exit 0 and an empty stderr, and parses stdout.
pub fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = run(&all);
    assert!(
        out.status.success(),
        "zenith {all:?} exited {:?}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "nothing on stderr when it is not a terminal: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("--json prints one JSON document")
}

/// Runs `zenith ARGS`, expects exit code `code`, and returns stderr.
pub fn fails_with(args: &[&str], code: i32) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "zenith {args:?}: stderr {stderr}"
    );
    assert!(out.stdout.is_empty(), "a failure prints nothing on stdout");
    stderr
}

/// `value` as a path argument.
pub fn arg(path: &std::path::Path) -> &str {
    path.to_str().expect("UTF-8 test path")
}
