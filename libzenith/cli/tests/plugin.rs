//! `zenith plugin check` on the shipped C plugins (examples/plugins, built here with clang for
//! wasm32) and on modules that break the plugin ABI.

mod common;
#[path = "../../engine/tests/support/example_plugins.rs"]
mod example_plugins;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{data_file, run, stdout_ok};
use example_plugins::build_example_plugins;
use serde_json::Value;

/// The shipped plugins, built once per test binary into a fresh directory.
fn plugins() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        build_example_plugins(dir.path());
        dir
    })
    .path()
}

fn plugin(name: &str) -> String {
    plugins().join(name).display().to_string()
}

/// Writes `bytes` as a module file and returns its path (kept with the built plugins).
fn module_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = plugins().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&stdout_ok(args)).expect("--json prints one JSON document")
}

fn fails_with(args: &[&str], code: i32, needle: &str) {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "zenith {args:?}: {stderr}");
    assert!(
        stderr.contains(needle),
        "zenith {args:?}: {stderr:?} lacks {needle:?}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout when it fails");
}

#[test]
fn a_valid_plugin_loads_with_its_limits() {
    let normalize = plugin("normalize.wasm");
    let doc = json(&[
        "plugin",
        "check",
        &normalize,
        "--memory",
        "64MiB",
        "--time-limit-ms",
        "250",
        "--json",
    ]);
    assert_eq!(doc["plugin"], normalize.as_str());
    assert!(doc["bytes"].as_u64().unwrap() > 0);
    assert_eq!(doc["memory_limit_bytes"], 64 << 20);
    assert_eq!(doc["time_limit_ms"], 250);
    assert!(doc["input"].is_null() && doc["output"].is_null());

    let table = stdout_ok(&["plugin", "check", &normalize]);
    assert!(table.contains("plugin ABI v1"), "{table}");
    assert!(table.contains("give --input"), "{table}");
}

#[test]
fn it_runs_the_plugin_on_the_first_batch() {
    let normalize = plugin("normalize.wasm");
    let input = data_file("basic.parquet").display().to_string();
    let doc = json(&[
        "plugin",
        "check",
        &normalize,
        "--input",
        &input,
        "--rows",
        "64",
        "--columns",
        "id,value",
        "--json",
    ]);
    assert_eq!(doc["input"]["rows"], 64);
    assert_eq!(doc["input"]["columns"], 2);
    assert_eq!(doc["output"]["rows"], 64);
    let names: Vec<&str> = doc["output"]["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["id", "value"]);
    assert_eq!(doc["output"]["schema"][1]["type"], "Float64");
}

#[test]
fn an_input_column_the_abi_does_not_carry_is_unsupported() {
    let normalize = plugin("normalize.wasm");
    let input = data_file("basic.parquet").display().to_string();
    // basic.parquet has a bool column `flag`: exit 8 (unsupported), naming the column.
    fails_with(
        &[
            "plugin", "check", &normalize, "--input", &input, "--rows", "16",
        ],
        8,
        "flag",
    );
}

#[test]
fn modules_that_break_the_abi_are_refused_by_name() {
    plugins();
    // Not WebAssembly at all.
    let text = module_file("text.wasm", b"# not a module\n");
    fails_with(
        &["plugin", "check", text.to_str().unwrap()],
        4,
        "not a valid module",
    );
    // A valid module that imports a function (plugins may import nothing: no WASI).
    let importing = module_file(
        "imports.wasm",
        &[
            0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
            0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: one type, () -> ()
            0x02, 0x09, 0x01, 0x03, b'e', b'n', b'v', 0x01, b'f', 0x00, 0x00, // import env.f
        ],
    );
    fails_with(
        &["plugin", "check", importing.to_str().unwrap()],
        4,
        "imports env::f",
    );
    // A valid empty module: none of the ABI's exports.
    let empty = module_file(
        "empty.wasm",
        &[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    );
    fails_with(
        &["plugin", "check", empty.to_str().unwrap()],
        4,
        "WASM plugin",
    );
    // A missing file is not found (exit 6), a zero time limit an invalid argument.
    let missing = plugins().join("missing.wasm");
    fails_with(
        &["plugin", "check", missing.to_str().unwrap()],
        6,
        "missing.wasm",
    );
    fails_with(
        &[
            "plugin",
            "check",
            &plugin("normalize.wasm"),
            "--time-limit-ms",
            "0",
        ],
        4,
        "time limit",
    );
}
