//! `cargo bench -p zenith-engine --bench engine`: events/s and publish→poll latency of the
//! engine for 1-, 64- and 1,024-row float64 batches through 0 stages, 1 native stage, 1 WASM
//! stage (the WAT normalize plugin) and 3 stages (native, WASM, native), 2 workers.
//!
//! Throughput: one publisher and one poller thread as fast as they go. Latency: the publisher
//! paced at half the measured peak; p50/p99 of poll time minus publish time. The WASM-vs-native
//! ratio compares the same (x - mean) / std computation. A benchmark, not a test: no thresholds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Float64Array, RecordBatch};
use zenith_engine::stage::native::FnStage;
use zenith_engine::stage::wasm::{WasmOptions, WasmStage};
use zenith_engine::{Engine, EngineOptions, PollOutcome, Stage};

fn native_normalize() -> Arc<dyn Stage> {
    Arc::new(FnStage::new("native_normalize", |batch: RecordBatch| {
        let x = batch
            .column(0)
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("float64");
        let n = x.len() as f64;
        let mean = x.values().iter().sum::<f64>() / n;
        let var = x
            .values()
            .iter()
            .map(|v| (v - mean) * (v - mean))
            .sum::<f64>()
            / n;
        let std = var.sqrt();
        let out = Float64Array::from_iter_values(x.values().iter().map(|v| (v - mean) / std));
        Ok(RecordBatch::try_new(batch.schema(), vec![Arc::new(out)]).expect("batch"))
    }))
}

fn wasm_normalize() -> Arc<dyn Stage> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugins");
    let prelude = std::fs::read_to_string(dir.join("prelude.wat")).expect("prelude");
    let text = std::fs::read_to_string(dir.join("normalize.wat")).expect("normalize.wat");
    let bytes = wat::parse_str(text.replace(";;PRELUDE", &prelude)).expect("wat");
    let options = WasmOptions {
        cache_dir: None,
        ..WasmOptions::default()
    };
    Arc::new(WasmStage::from_bytes("wasm_normalize", &bytes, options).expect("wasm stage"))
}

fn batch(rows: usize) -> RecordBatch {
    let values: Vec<f64> = (0..rows).map(|i| (i % 97) as f64 * 0.25 + 1.0).collect();
    RecordBatch::try_from_iter([("x", Arc::new(Float64Array::from(values)) as ArrayRef)])
        .expect("batch")
}

fn engine(stages: &[Arc<dyn Stage>]) -> Arc<Engine> {
    Arc::new(
        Engine::new(EngineOptions {
            workers: 2,
            capacity_events: 4096,
            stages: stages.to_vec(),
            ..EngineOptions::default()
        })
        .expect("engine"),
    )
}

/// Events per second with a publisher and a poller running flat out.
fn throughput(stages: &[Arc<dyn Stage>], rows: usize, events: u64) -> f64 {
    let engine = engine(stages);
    let event = batch(rows);
    let publisher = {
        let engine = Arc::clone(&engine);
        std::thread::spawn(move || {
            for _ in 0..events {
                engine
                    .publish(event.clone(), Duration::MAX)
                    .expect("publish");
            }
        })
    };
    let start = Instant::now();
    for _ in 0..events {
        match engine.poll(Duration::MAX) {
            PollOutcome::Event { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    let elapsed = start.elapsed();
    publisher.join().expect("publisher");
    events as f64 / elapsed.as_secs_f64()
}

/// p50 and p99 publish→poll latency with the publisher paced at `rate` events/s.
fn latency(stages: &[Arc<dyn Stage>], rows: usize, events: u64, rate: f64) -> (Duration, Duration) {
    let engine = engine(stages);
    let event = batch(rows);
    let interval = Duration::from_secs_f64(1.0 / rate);
    let publisher = {
        let engine = Arc::clone(&engine);
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut sent = Vec::with_capacity(events as usize);
            for i in 0..events {
                let due = start + interval * i as u32;
                while Instant::now() < due {
                    std::hint::spin_loop();
                }
                sent.push(Instant::now());
                engine
                    .publish(event.clone(), Duration::MAX)
                    .expect("publish");
            }
            sent
        })
    };
    let mut received = Vec::with_capacity(events as usize);
    for _ in 0..events {
        match engine.poll(Duration::MAX) {
            PollOutcome::Event { .. } => received.push(Instant::now()),
            other => panic!("{other:?}"),
        }
    }
    let sent = publisher.join().expect("publisher");
    let mut latencies: Vec<Duration> = sent
        .iter()
        .zip(&received)
        .map(|(s, r)| r.saturating_duration_since(*s))
        .collect();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    (at(0.5), at(0.99))
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let native = native_normalize();
    let wasm = wasm_normalize();
    let configs: Vec<(&str, Vec<Arc<dyn Stage>>)> = vec![
        ("0 stages", vec![]),
        ("1 native", vec![Arc::clone(&native)]),
        ("1 wasm", vec![Arc::clone(&wasm)]),
        (
            "3 stages",
            vec![Arc::clone(&native), Arc::clone(&wasm), Arc::clone(&native)],
        ),
    ];
    println!(
        "{:<10} {:>6} {:>14} {:>12} {:>12}",
        "stages", "rows", "events/s", "p50 (half)", "p99 (half)"
    );
    let mut rates = std::collections::HashMap::new();
    for rows in [1usize, 64, 1024] {
        for (name, stages) in &configs {
            let events: u64 =
                if quick { 20_000 } else { 200_000 } / if rows == 1024 { 4 } else { 1 };
            let rate = throughput(stages, rows, events);
            let paced = (events / 4).max(1000);
            let (p50, p99) = latency(stages, rows, paced, rate / 2.0);
            rates.insert((*name, rows), rate);
            println!(
                "{name:<10} {rows:>6} {rate:>14.0} {:>10.1}us {:>10.1}us",
                p50.as_secs_f64() * 1e6,
                p99.as_secs_f64() * 1e6
            );
        }
    }
    println!(
        "\nratio wasm/native normalize, 1024-row batches (events/s): {:.2}",
        rates[&("1 wasm", 1024)] / rates[&("1 native", 1024)]
    );
}
