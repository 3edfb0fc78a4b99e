//! Engine stages run by the loader (`LoaderOptions::add_stage`): on the workers, before delivery,
//! with order, exactly-once delivery, resume, shuffle and sharding unchanged, and a failing stage
//! failing only the batch it failed on.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch};
use zenith_core::loader::{BatchStage, Loader, LoaderOptions, ShuffleMode};
use zenith_core::{Error, ErrorKind};
use zenith_engine::stage::loader::LoaderStage;
use zenith_engine::stage::native::FnStage;
use zenith_engine::{Stage, StageError};

const ROWS: i64 = 1000;

/// A CSV file of `ROWS` rows: `id` (0..ROWS) and `x` (a float derived from the id).
fn dataset() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.csv");
    let mut text = String::from("id,x\n");
    for id in 0..ROWS {
        text.push_str(&format!("{id},{}.25\n", id * 3 % 17));
    }
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn options(workers: usize) -> LoaderOptions {
    let mut o = LoaderOptions::default();
    o.set_batch_size(64).unwrap();
    o.set_shuffle(ShuffleMode::Global);
    o.set_seed(7);
    o.set_num_workers(workers).unwrap();
    o.set_shard_none();
    o
}

fn ids(batch: &RecordBatch) -> Vec<i64> {
    batch
        .column_by_name("id")
        .unwrap()
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .values()
        .to_vec()
}

fn xs(batch: &RecordBatch) -> Vec<f64> {
    let x = batch.column_by_name("x").unwrap();
    x.as_any()
        .downcast_ref::<Float64Array>()
        .unwrap()
        .values()
        .to_vec()
}

/// `x` replaced by `x * 2 + 1` and a column `worker_ran` added: a stage that changes values and
/// the schema.
fn scale() -> Arc<dyn Stage> {
    Arc::new(FnStage::new("scale", |batch: RecordBatch| {
        let x: Float64Array = xs(&batch).iter().map(|v| v * 2.0 + 1.0).collect();
        let on_worker = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("zenith-worker"));
        let flag = Int64Array::from(vec![i64::from(on_worker); batch.num_rows()]);
        RecordBatch::try_from_iter([
            ("id", batch.column_by_name("id").unwrap().clone()),
            ("x", Arc::new(x) as ArrayRef),
            ("worker_ran", Arc::new(flag) as ArrayRef),
        ])
        .map_err(|e| StageError::stage(e.to_string()))
    }))
}

fn loader_stage(stage: Arc<dyn Stage>) -> Arc<dyn BatchStage> {
    Arc::new(LoaderStage::new(stage))
}

fn drain(loader: &Loader) -> Vec<RecordBatch> {
    std::iter::from_fn(|| loader.next_batch().unwrap().map(|b| b.data)).collect()
}

#[test]
fn stages_run_on_the_workers_and_keep_order_and_every_row_once() {
    let (_dir, path) = dataset();
    let plain = drain(&Loader::open(&path, &options(4)).unwrap());
    let mut with_stage = options(4);
    with_stage.add_stage(loader_stage(scale()));
    let loader = Loader::open(&path, &with_stage).unwrap();
    let schema = loader.schema();
    assert_eq!(schema.fields().len(), 3, "the schema is the stages' output");
    assert!(
        schema.column_with_name("worker_ran").is_some(),
        "{schema:?}"
    );
    let staged = drain(&loader);
    assert_eq!(staged.len(), plain.len());
    let mut seen = BTreeSet::new();
    for (p, s) in plain.iter().zip(&staged) {
        assert_eq!(ids(p), ids(s), "the same rows in the same order");
        let expected: Vec<f64> = xs(p).iter().map(|v| v * 2.0 + 1.0).collect();
        assert_eq!(xs(s), expected);
        let flags = s.column_by_name("worker_ran").unwrap();
        let flags = flags.as_any().downcast_ref::<Int64Array>().unwrap();
        assert!(flags.values().iter().all(|&f| f == 1), "ran on a worker");
        seen.extend(ids(s));
    }
    assert_eq!(seen.len() as i64, ROWS, "every row exactly once");
    assert_eq!(
        staged.iter().map(RecordBatch::num_rows).sum::<usize>() as i64,
        ROWS
    );
}

#[test]
fn a_failing_stage_fails_that_batch_with_its_name_and_reason_and_the_retry_delivers_it() {
    let (_dir, path) = dataset();
    let failed_once = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let flaky: Arc<dyn Stage> = {
        let (failed_once, calls) = (failed_once.clone(), calls.clone());
        Arc::new(FnStage::new("flaky", move |batch: RecordBatch| {
            calls.fetch_add(1, Ordering::Relaxed);
            // Fails the batch holding row 500 once.
            if ids(&batch).contains(&500) && !failed_once.swap(true, Ordering::Relaxed) {
                return Err(StageError::stage("row 500 is not welcome"));
            }
            Ok(batch)
        }))
    };
    for workers in [0, 3] {
        failed_once.store(false, Ordering::Relaxed);
        let mut o = options(workers);
        o.add_stage(loader_stage(flaky.clone()));
        let loader = Loader::open(&path, &o).unwrap();
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        loop {
            match loader.next_batch() {
                Ok(Some(batch)) => rows.extend(ids(&batch.data)),
                Ok(None) => break,
                Err(e) => errors.push(e),
            }
        }
        assert_eq!(errors.len(), 1, "{workers} workers: {errors:?}");
        let error: &Error = &errors[0];
        assert_eq!(error.kind(), ErrorKind::Stage);
        let message = error.to_string();
        assert!(
            message.starts_with("stage `flaky` failed on batch ")
                && message.ends_with(": stage error: row 500 is not welcome"),
            "{message}"
        );
        rows.sort_unstable();
        assert_eq!(
            rows,
            (0..ROWS).collect::<Vec<_>>(),
            "nothing lost or repeated"
        );
    }
    assert!(calls.load(Ordering::Relaxed) > 0);
}

#[test]
fn a_panicking_stage_is_a_stage_failure_and_the_loader_goes_on() {
    let (_dir, path) = dataset();
    let panicky: Arc<dyn Stage> = Arc::new(FnStage::new("panicky", |batch: RecordBatch| {
        if ids(&batch).contains(&10) {
            panic!("boom at row 10");
        }
        Ok(batch)
    }));
    let mut o = options(2);
    o.set_shuffle(ShuffleMode::None);
    o.add_stage(loader_stage(panicky));
    let loader = Loader::open(&path, &o).unwrap();
    let error = loader.next_batch().unwrap_err();
    assert_eq!(
        error.to_string(),
        "stage `panicky` failed on batch 0: panic: boom at row 10"
    );
    // The batch fails again on every retry; skipping it is the caller's choice (a new epoch).
    assert!(loader.next_batch().is_err());
    loader.set_epoch(1).unwrap();
}

#[test]
fn resume_and_sharding_work_with_stages() {
    let (_dir, path) = dataset();
    let stage = loader_stage(scale());
    let staged = |mut o: LoaderOptions| {
        o.add_stage(stage.clone());
        o
    };
    let full = drain(&Loader::open(&path, &staged(options(2))).unwrap());

    // Stop after 5 batches, resume from the token with the same stages: the rest, exactly.
    let first = Loader::open(&path, &staged(options(2))).unwrap();
    let head: Vec<RecordBatch> = (0..5)
        .map(|_| first.next_batch().unwrap().unwrap().data)
        .collect();
    let token = first.save_state();
    drop(first);
    let mut resumed = staged(options(3));
    resumed.set_resume_state(&token).unwrap();
    let tail = drain(&Loader::open(&path, &resumed).unwrap());
    let joined: Vec<RecordBatch> = head.into_iter().chain(tail).collect();
    assert_eq!(
        joined, full,
        "head + resumed tail = one uninterrupted epoch"
    );

    // Two ranks with the stage: disjoint shares covering every row, each transformed.
    let mut union = Vec::new();
    for rank in 0..2 {
        let mut o = staged(options(2));
        o.set_shard(rank, 2).unwrap();
        for batch in drain(&Loader::open(&path, &o).unwrap()) {
            let expected: Vec<f64> = ids(&batch)
                .iter()
                .map(|id| ((id * 3 % 17) as f64 + 0.25) * 2.0 + 1.0)
                .collect();
            assert_eq!(xs(&batch), expected);
            union.extend(ids(&batch));
        }
    }
    union.sort_unstable();
    assert_eq!(union, (0..ROWS).collect::<Vec<_>>());
}

#[cfg(feature = "wasm")]
#[test]
fn a_wasm_plugin_normalizes_every_batch_on_the_workers() {
    use zenith_engine::stage::wasm::{WasmOptions, WasmStage};

    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugins");
    let prelude = std::fs::read_to_string(plugins.join("prelude.wat")).unwrap();
    let text = std::fs::read_to_string(plugins.join("normalize.wat")).unwrap();
    let module = wat::parse_str(text.replace(";;PRELUDE", &prelude)).unwrap();
    let options_wasm = WasmOptions {
        cache_dir: None,
        ..WasmOptions::default()
    };
    let wasm = Arc::new(WasmStage::from_bytes("normalize", &module, options_wasm).unwrap());
    let (_dir, path) = dataset();
    // normalize.wat transforms column 0: put `x` first.
    let mut plain_options = options(3);
    plain_options
        .set_columns(Some(vec!["x".into(), "id".into()]))
        .unwrap();
    let plain = drain(&Loader::open(&path, &plain_options).unwrap());
    let mut o = plain_options.clone();
    o.add_stage(loader_stage(wasm));
    let staged = drain(&Loader::open(&path, &o).unwrap());
    assert_eq!(plain.len(), staged.len());
    for (p, s) in plain.iter().zip(&staged) {
        assert_eq!(ids(p), ids(s));
        let x = xs(p);
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let std = (x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
        for (got, v) in xs(s).iter().zip(&x) {
            assert!((got - (v - mean) / std).abs() < 1e-12, "{got} vs {v}");
        }
    }
}
