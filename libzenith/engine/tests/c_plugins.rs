//! The example C plugins (examples/plugins), built here with clang --target=wasm32 and wasm-ld,
//! against references computed with numpy (tests/plugins/reference.py). Needs clang, lld and the
//! test venv's numpy (`make setup`); without them the tests fail and say so.

#![cfg(feature = "wasm")]

#[path = "support/example_plugins.rs"]
mod example_plugins;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arrow_array::{Array, ArrayRef, FixedSizeBinaryArray, Float64Array, Int32Array, RecordBatch};
use example_plugins::build_example_plugins;
use zenith_engine::stage::wasm::{WasmOptions, WasmStage};
use zenith_engine::{Engine, EngineOptions, PollOutcome, Stage};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the plugins and the numpy references once, into a scratch folder under target/tmp.
fn built() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = root()
            .join("target/tmp")
            .join(format!("engine-plugins-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        build_example_plugins(&dir);
        let python = std::env::var_os("PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join(".venv/bin/python"));
        let reference = Command::new(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugins/reference.py"))
            .arg(&dir)
            .output()
            .unwrap_or_else(|e| panic!("run {} (make setup creates .venv): {e}", python.display()));
        assert!(
            reference.status.success(),
            "reference.py failed:\n{}",
            String::from_utf8_lossy(&reference.stderr)
        );
        dir
    })
}

fn load(name: &str) -> Arc<WasmStage> {
    Arc::new(load_configured(name, Vec::new()).unwrap())
}

fn load_configured(name: &str, config: Vec<u8>) -> zenith_core::Result<WasmStage> {
    let options = WasmOptions {
        cache_dir: None,
        pool_size: 2,
        config,
        ..WasmOptions::default()
    };
    WasmStage::load(&built().join(format!("{name}.wasm")), options)
}

fn f64s(path: &Path) -> Vec<f64> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// `batch` published `count` times through an engine of `workers` workers running `stage`: the
/// outputs, in publish order.
fn through_engine(
    stage: Arc<WasmStage>,
    workers: usize,
    batch: &RecordBatch,
    count: usize,
) -> Vec<RecordBatch> {
    let engine = Engine::new(EngineOptions {
        stages: vec![stage],
        workers,
        ..EngineOptions::default()
    })
    .unwrap();
    for _ in 0..count {
        engine
            .publish(batch.clone(), Duration::from_secs(60))
            .unwrap();
    }
    (0..count)
        .map(|_| match engine.poll(Duration::from_secs(60)) {
            PollOutcome::Event { batch, .. } => batch,
            other => panic!("the plugin failed: {other:?}"),
        })
        .collect()
}

/// Column 0 as float64 values.
fn first_f64s(batch: &RecordBatch) -> Vec<f64> {
    let x = batch.column(0).as_any().downcast_ref::<Float64Array>();
    x.unwrap().values().to_vec()
}

#[test]
fn normalize_c_plugin_equals_numpy_through_an_engine() {
    let input = f64s(&built().join("normalize_in.f64"));
    let expected = f64s(&built().join("normalize_out.f64"));
    let batch = RecordBatch::try_from_iter([
        ("x", Arc::new(Float64Array::from(input.clone())) as ArrayRef),
        (
            "id",
            Arc::new(Int32Array::from_iter_values(0..1000)) as ArrayRef,
        ),
    ])
    .unwrap();
    for out in through_engine(load("normalize"), 2, &batch, 3) {
        let got = first_f64s(&out);
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e).abs() <= 1e-12 * e.abs().max(1.0), "{g} != {e}");
        }
        // Columns it does not normalize pass through.
        assert_eq!(out.column(1).as_ref(), batch.column(1).as_ref());
    }
}

#[test]
fn image_resize_c_plugin_equals_numpy_bilinear() {
    let input = std::fs::read(built().join("resize_in.u8")).unwrap();
    let expected = std::fs::read(built().join("resize_out.u8")).unwrap();
    let images = FixedSizeBinaryArray::try_from_iter(input.chunks_exact(20 * 20 * 3)).unwrap();
    let batch = RecordBatch::try_from_iter([("image", Arc::new(images) as ArrayRef)]).unwrap();
    let out = load("image_resize").process(batch).unwrap();
    let resized = out
        .column(0)
        .as_any()
        .downcast_ref::<FixedSizeBinaryArray>()
        .unwrap();
    assert_eq!((resized.len(), resized.value_length()), (4, 32 * 32 * 3));
    let got: Vec<u8> = (0..4).flat_map(|i| resized.value(i).to_vec()).collect();
    // The same float32 formula; allow one step where numpy and wasm round a .5 differently.
    let worst = got
        .iter()
        .zip(&expected)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(worst <= 1, "largest difference from numpy: {worst}");
}

#[test]
fn image_resize_refuses_images_that_are_not_square_rgb() {
    let images = FixedSizeBinaryArray::try_from_iter([[0u8; 10]].iter()).unwrap();
    let batch = RecordBatch::try_from_iter([("image", Arc::new(images) as ArrayRef)]).unwrap();
    let error = load("image_resize").process(batch).unwrap_err();
    assert!(error.message.contains("status 2"), "{error}");
}

/// Two little-endian float64: normalize's configuration.
fn mean_std(mean: f64, std: f64) -> Vec<u8> {
    [mean.to_le_bytes(), std.to_le_bytes()].concat()
}

#[test]
fn normalize_reads_a_fixed_mean_and_std_from_its_configuration() {
    let stage = Arc::new(load_configured("normalize", mean_std(2.0, 4.0)).unwrap());
    let x: Vec<f64> = (0..64).map(f64::from).collect();
    let batch =
        RecordBatch::try_from_iter([("x", Arc::new(Float64Array::from(x.clone())) as ArrayRef)])
            .unwrap();
    let expected: Vec<f64> = x.iter().map(|v| (v - 2.0) / 4.0).collect();
    // More events at once than the pool holds: instances created under load are configured too.
    for out in through_engine(stage, 4, &batch, 16) {
        assert_eq!(first_f64s(&out), expected);
    }
}

#[test]
fn a_refused_or_unreadable_configuration_fails_the_load() {
    let wrong_length = load_configured("normalize", vec![1, 2, 3]).unwrap_err();
    assert_eq!(wrong_length.kind(), zenith_core::ErrorKind::InvalidArgument);
    assert!(
        wrong_length
            .to_string()
            .contains("zn_configure refused the configuration (3 bytes) with status 1"),
        "{wrong_length}"
    );
    let zero_std = load_configured("normalize", mean_std(0.0, 0.0)).unwrap_err();
    assert!(zero_std.to_string().contains("status 2"), "{zero_std}");
    let unreadable = load_configured("image_resize", vec![1]).unwrap_err();
    assert!(
        unreadable
            .to_string()
            .contains("does not export `zn_configure`"),
        "{unreadable}"
    );
}
