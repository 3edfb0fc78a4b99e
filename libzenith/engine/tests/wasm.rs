//! WASM stages: the happy path through the engine, the module cache, and hostile plugins that
//! fail one event each while the engine and the stage go on.

#![cfg(feature = "wasm")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray};
use zenith_engine::stage::wasm::{Origin, WasmOptions, WasmStage, cache};
use zenith_engine::{Engine, EngineOptions, FailureKind, PollOutcome, Stage};

const FOREVER: Duration = Duration::from_secs(60);

fn plugins() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugins")
}

/// The binary module of a test plugin: its WAT with the shared prelude pasted in.
fn plugin(name: &str) -> Vec<u8> {
    let prelude = std::fs::read_to_string(plugins().join("prelude.wat")).unwrap();
    let text = std::fs::read_to_string(plugins().join(format!("{name}.wat"))).unwrap();
    wat::parse_str(text.replace(";;PRELUDE", &prelude)).unwrap()
}

fn options() -> WasmOptions {
    WasmOptions {
        memory_limit: 16 << 20,
        time_limit: Duration::from_millis(200),
        cache_dir: None,
        pool_size: 4,
        config: Vec::new(),
    }
}

fn stage(name: &str) -> Arc<WasmStage> {
    Arc::new(WasmStage::from_bytes(name, &plugin(name), options()).unwrap())
}

fn floats(values: &[f64]) -> RecordBatch {
    RecordBatch::try_from_iter([(
        "x",
        Arc::new(Float64Array::from(values.to_vec())) as ArrayRef,
    )])
    .unwrap()
}

fn column(batch: &RecordBatch, index: usize) -> Vec<f64> {
    batch
        .column(index)
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap()
        .values()
        .to_vec()
}

#[test]
fn identity_returns_every_column_type_unchanged_including_nulls_and_slices() {
    let stage = stage("identity");
    let batch = RecordBatch::try_from_iter([
        (
            "f",
            Arc::new(Float64Array::from(vec![
                Some(1.5),
                None,
                Some(-2.0),
                Some(8.0),
            ])) as ArrayRef,
        ),
        (
            "i",
            Arc::new(Int32Array::from(vec![Some(1), Some(2), None, Some(4)])) as ArrayRef,
        ),
        (
            "s",
            Arc::new(StringArray::from(vec![
                Some("a"),
                None,
                Some("ccc"),
                Some(""),
            ])) as ArrayRef,
        ),
    ])
    .unwrap();
    for input in [batch.clone(), batch.slice(1, 3), batch.slice(4, 0)] {
        let output = stage.process(input.clone()).unwrap();
        assert_eq!(output.schema(), input.schema());
        for (a, b) in output.columns().iter().zip(input.columns()) {
            assert_eq!(a.as_ref(), b.as_ref());
        }
    }
}

#[test]
fn normalize_matches_the_formula_through_an_engine_in_order() {
    let engine = Engine::new(EngineOptions {
        workers: 2,
        stages: vec![stage("normalize")],
        ..EngineOptions::default()
    })
    .unwrap();
    let inputs: Vec<Vec<f64>> = (0..64)
        .map(|i| {
            (0..(1 + i * 3))
                .map(|j| (j * j) as f64 * 0.5 - i as f64)
                .collect()
        })
        .collect();
    for values in &inputs {
        engine.publish(floats(values), FOREVER).unwrap();
    }
    for (sequence, values) in inputs.iter().enumerate() {
        let PollOutcome::Event { sequence: s, batch } = engine.poll(FOREVER) else {
            panic!("event {sequence} did not come through");
        };
        assert_eq!(s, sequence as u64);
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
        let got = column(&batch, 0);
        for (g, x) in got.iter().zip(values) {
            let want = (x - mean) / std;
            assert!(g == &want || (g.is_nan() && want.is_nan()) || (g - want).abs() < 1e-12);
        }
    }
}

/// Sends a good event, a hostile one (first value negative), then a good one through one engine:
/// the bad one fails with `kind` and a message containing `needle`; the others come through.
fn hostile(name: &str, columns: usize, kind: FailureKind, needle: &str) {
    let engine = Engine::new(EngineOptions {
        workers: 2,
        stages: vec![stage(name)],
        ..EngineOptions::default()
    })
    .unwrap();
    let batch = |first: f64| {
        let fields: Vec<(String, ArrayRef)> = (0..columns)
            .map(|c| {
                (
                    format!("c{c}"),
                    Arc::new(Float64Array::from(vec![first, 2.0, 3.0])) as ArrayRef,
                )
            })
            .collect();
        RecordBatch::try_from_iter(fields).unwrap()
    };
    for first in [1.0, -1.0, 1.0, -1.0, 5.0] {
        engine.publish(batch(first), FOREVER).unwrap();
    }
    for (sequence, first) in [1.0, -1.0, 1.0, -1.0, 5.0].into_iter().enumerate() {
        match engine.poll(FOREVER) {
            PollOutcome::Event { batch, .. } if first >= 0.0 => {
                assert_eq!(column(&batch, 0), vec![first, 2.0, 3.0]);
            }
            PollOutcome::Failed(failure) if first < 0.0 => {
                assert_eq!(failure.sequence, sequence as u64);
                assert_eq!(failure.stage, name);
                assert_eq!(failure.kind, kind, "{failure}");
                assert!(failure.message.contains(needle), "{failure}");
            }
            other => panic!("{name}: event {sequence} ({first}): unexpected {other:?}"),
        }
    }
    let stats = engine.stats();
    assert_eq!((stats.delivered, stats.failed), (3, 2));
}

#[test]
fn a_plugin_that_loops_forever_times_out_that_event_only() {
    hostile("loop_forever", 1, FailureKind::Timeout, "time limit");
}

#[test]
fn a_trapping_plugin_fails_that_event_only() {
    hostile("trap", 1, FailureKind::Trap, "unreachable");
}

#[test]
fn a_plugin_growing_past_its_memory_limit_fails_that_event_only() {
    hostile(
        "grow_past_limit",
        1,
        FailureKind::OutOfMemory,
        "memory limit of 16777216 bytes",
    );
}

#[test]
fn out_of_bounds_output_descriptors_fail_that_event_only() {
    hostile(
        "out_of_bounds",
        1,
        FailureKind::Malformed,
        "outside guest memory",
    );
}

#[test]
fn overlapping_output_buffers_fail_that_event_only() {
    hostile("overlapping", 2, FailureKind::Malformed, "overlaps");
}

#[test]
fn a_wrong_row_count_fails_that_event_only() {
    hostile("wrong_rows", 1, FailureKind::Malformed, "has 4 rows");
}

#[test]
fn a_plugin_status_fails_that_event_only() {
    hostile("error_status", 1, FailureKind::Stage, "status 7");
}

#[test]
fn modules_without_the_abi_exports_or_with_imports_are_refused_at_load() {
    let error = WasmStage::from_bytes("none", &plugin("no_exports"), options()).unwrap_err();
    assert!(
        error.to_string().contains("missing export `memory`"),
        "{error}"
    );
    let error = WasmStage::from_bytes("wasi", &plugin("imports_wasi"), options()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("wasi_snapshot_preview1::fd_write"),
        "{error}"
    );
    let error = WasmStage::from_bytes("junk", b"\0asm junk", options()).unwrap_err();
    assert!(error.to_string().contains("not a valid module"), "{error}");
    let error = WasmStage::load(Path::new("/nonexistent/plugin.wasm"), options()).unwrap_err();
    assert_eq!(error.kind(), zenith_core::ErrorKind::NotFound, "{error}");
}

#[test]
fn unsupported_column_types_fail_the_event_with_the_column_named() {
    let stage = stage("identity");
    let batch = RecordBatch::try_from_iter([(
        "flags",
        Arc::new(arrow_array::BooleanArray::from(vec![true])) as ArrayRef,
    )])
    .unwrap();
    let error = stage.process(batch).unwrap_err();
    assert_eq!(error.kind, FailureKind::Unsupported);
    assert!(error.message.contains("'flags'"), "{error}");
}

#[test]
fn compiled_modules_are_cached_on_disk_and_a_tampered_file_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    // A module no other test compiles, so the process cache does not answer first.
    let text = std::fs::read_to_string(plugins().join("identity.wat"))
        .unwrap()
        .replace(
            ";;PRELUDE",
            &std::fs::read_to_string(plugins().join("prelude.wat")).unwrap(),
        )
        .replace("(module", "(module (global $cache_test i32 (i32.const 42))");
    let bytes = wat::parse_str(text).unwrap();
    let options = WasmOptions {
        cache_dir: Some(dir.path().to_path_buf()),
        ..options()
    };
    let first = WasmStage::from_bytes("cached", &bytes, options.clone()).unwrap();
    assert_eq!(first.origin(), Origin::Compiled);
    let second = WasmStage::from_bytes("cached", &bytes, options.clone()).unwrap();
    assert_eq!(second.origin(), Origin::Process);
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with(&format!("{:02x}", cache::sha256(&bytes)[0])),
        "{name}"
    );

    cache::clear_process_cache();
    let third = WasmStage::from_bytes("cached", &bytes, options.clone()).unwrap();
    assert_eq!(third.origin(), Origin::Disk);
    assert_eq!(third.process(floats(&[1.0])).unwrap().num_rows(), 1);

    // Flip one payload byte: the integrity check refuses the file and the module is recompiled.
    let mut contents = std::fs::read(&files[0]).unwrap();
    let last = contents.len() - 1;
    contents[last] ^= 0xff;
    std::fs::write(&files[0], &contents).unwrap();
    cache::clear_process_cache();
    let fourth = WasmStage::from_bytes("cached", &bytes, options).unwrap();
    assert_eq!(fourth.origin(), Origin::Compiled);
    assert_eq!(fourth.process(floats(&[1.0])).unwrap().num_rows(), 1);
}
