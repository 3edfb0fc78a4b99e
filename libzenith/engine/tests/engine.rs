//! The engine's guarantees: publish order out, exactly once or a failure report, back-pressure,
//! and release of events in flight at shutdown.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use zenith_engine::stage::native::FnStage;
use zenith_engine::{
    Engine, EngineOptions, FailureKind, Pinning, PollOutcome, PublishError, Stage, StageError,
};

const FOREVER: Duration = Duration::from_secs(60);

fn event(publisher: i64, index: i64) -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "publisher",
            Arc::new(Int64Array::from(vec![publisher])) as ArrayRef,
        ),
        ("index", Arc::new(Int64Array::from(vec![index])) as ArrayRef),
    ])
    .unwrap()
}

fn value(batch: &RecordBatch, column: usize) -> i64 {
    batch
        .column(column)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0)
}

/// Adds 1 to `index`, sleeping a little on every seventh event so workers finish out of order.
fn add_one() -> Arc<dyn Stage> {
    Arc::new(FnStage::new("add_one", |batch: RecordBatch| {
        let index = value(&batch, 1);
        if index % 7 == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(RecordBatch::try_new(
            batch.schema(),
            vec![
                batch.column(0).clone(),
                Arc::new(Int64Array::from(vec![index + 1])),
            ],
        )
        .unwrap())
    }))
}

/// Fails every event whose index is a multiple of 10.
fn fail_tens() -> Arc<dyn Stage> {
    Arc::new(FnStage::new("fail_tens", |batch: RecordBatch| {
        let index = value(&batch, 1);
        if index % 10 == 0 {
            return Err(StageError::stage(format!(
                "index {index} is a multiple of ten"
            )));
        }
        if index % 10 == 5 {
            panic!("index {index} panics");
        }
        Ok(batch)
    }))
}

#[test]
fn many_publishers_and_a_slow_consumer_get_every_event_once_in_publish_order() {
    const PUBLISHERS: i64 = 8;
    const EACH: i64 = 2_000;
    let engine = Arc::new(
        Engine::new(EngineOptions {
            capacity_events: 16,
            workers: 4,
            stages: vec![add_one()],
            ..EngineOptions::default()
        })
        .unwrap(),
    );
    // Each publisher records (sequence, publisher, index) for what it published.
    let start = Arc::new(Barrier::new(PUBLISHERS as usize));
    let handles: Vec<_> = (0..PUBLISHERS)
        .map(|publisher| {
            let (engine, start) = (Arc::clone(&engine), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                let mut published = Vec::new();
                for index in 0..EACH {
                    let sequence = engine.publish(event(publisher, index), FOREVER).unwrap();
                    published.push((sequence, index));
                }
                published
            })
        })
        .collect();
    let total = (PUBLISHERS * EACH) as u64;
    let mut seen = Vec::with_capacity(total as usize);
    for received in 0..total {
        if received % 1000 == 0 {
            // The slow consumer: publishers must wait for it, not lose events.
            std::thread::sleep(Duration::from_millis(5));
        }
        match engine.poll(FOREVER) {
            PollOutcome::Event { sequence, batch } => {
                assert_eq!(sequence, received, "events come out in publish order");
                seen.push((sequence, value(&batch, 0), value(&batch, 1) - 1));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut expected = HashSet::new();
    for (publisher, handle) in handles.into_iter().enumerate() {
        let published = handle.join().unwrap();
        // Each publisher's own events keep their order.
        assert!(published.windows(2).all(|w| w[0].0 < w[1].0));
        for (sequence, index) in published {
            expected.insert((sequence, publisher as i64, index));
        }
    }
    let seen: HashSet<_> = seen.into_iter().collect();
    assert_eq!(seen.len() as u64, total, "no duplicates");
    assert_eq!(seen, expected, "exactly the published events");
    assert!(matches!(
        engine.poll(Duration::from_millis(10)),
        PollOutcome::WouldBlock
    ));
    let stats = engine.stats();
    assert_eq!(
        (stats.published, stats.delivered, stats.failed),
        (total, total, 0)
    );
    assert_eq!((stats.in_flight, stats.in_flight_bytes), (0, 0));
}

#[test]
fn a_full_engine_blocks_publish_until_the_deadline_and_gives_the_event_back() {
    let engine = Engine::new(EngineOptions {
        capacity_events: 3,
        workers: 1,
        ..EngineOptions::default()
    })
    .unwrap();
    for index in 0..3 {
        assert_eq!(
            engine.publish(event(0, index), FOREVER).unwrap(),
            index as u64
        );
    }
    match engine.publish(event(0, 3), Duration::from_millis(20)) {
        Err(PublishError::WouldBlock(batch)) => assert_eq!(value(&batch, 1), 3),
        other => panic!("expected WouldBlock, got {other:?}"),
    }
    assert!(matches!(
        engine.publish(event(0, 3), Duration::ZERO),
        Err(PublishError::WouldBlock(_))
    ));
    // Polling one makes room for exactly one more.
    assert!(matches!(
        engine.poll(FOREVER),
        PollOutcome::Event { sequence: 0, .. }
    ));
    assert_eq!(engine.publish(event(0, 3), Duration::ZERO).unwrap(), 3);
    assert!(matches!(
        engine.publish(event(0, 4), Duration::ZERO),
        Err(PublishError::WouldBlock(_))
    ));
}

#[test]
fn the_byte_bound_blocks_publish_but_never_a_lone_event() {
    let bytes = event(0, 0).get_array_memory_size() as u64;
    let engine = Engine::new(EngineOptions {
        capacity_bytes: bytes + bytes / 2,
        ..EngineOptions::default()
    })
    .unwrap();
    engine.publish(event(0, 0), Duration::ZERO).unwrap();
    assert!(matches!(
        engine.publish(event(0, 1), Duration::from_millis(5)),
        Err(PublishError::WouldBlock(_))
    ));
    assert!(matches!(
        engine.poll(FOREVER),
        PollOutcome::Event { sequence: 0, .. }
    ));
    // Larger than the whole bound, but alone: accepted.
    let big = RecordBatch::try_from_iter([(
        "x",
        Arc::new(Int64Array::from((0..10_000).collect::<Vec<i64>>())) as ArrayRef,
    )])
    .unwrap();
    assert_eq!(engine.publish(big, Duration::ZERO).unwrap(), 1);
    assert!(matches!(
        engine.poll(FOREVER),
        PollOutcome::Event { sequence: 1, .. }
    ));
}

#[test]
fn failed_events_are_reported_in_their_place_with_stage_and_reason() {
    let engine = Engine::new(EngineOptions {
        workers: 3,
        stages: vec![add_one(), fail_tens()],
        ..EngineOptions::default()
    })
    .unwrap();
    // add_one runs first: index i becomes i + 1.
    for index in 0..50 {
        engine.publish(event(0, index), FOREVER).unwrap();
    }
    for sequence in 0..50u64 {
        match engine.poll(FOREVER) {
            PollOutcome::Event { sequence: s, batch } => {
                assert_eq!(s, sequence);
                assert!(!matches!((sequence + 1) % 10, 0 | 5));
                assert_eq!(value(&batch, 1), sequence as i64 + 1);
            }
            PollOutcome::Failed(failure) => {
                assert_eq!(failure.sequence, sequence);
                assert_eq!(
                    (failure.stage_index, failure.stage.as_str()),
                    (1, "fail_tens")
                );
                let after = sequence + 1;
                if after % 10 == 0 {
                    assert_eq!(failure.kind, FailureKind::Stage);
                    assert!(failure.message.contains(&format!("index {after}")));
                } else {
                    assert_eq!(after % 10, 5);
                    assert_eq!(failure.kind, FailureKind::Panic);
                    assert!(failure.message.contains("panics"));
                }
                assert!(
                    failure
                        .to_string()
                        .starts_with(&format!("event {sequence} failed in stage 1 'fail_tens'"))
                );
            }
            PollOutcome::WouldBlock => panic!("timed out"),
        }
    }
    let stats = engine.stats();
    assert_eq!((stats.delivered, stats.failed), (40, 10));
}

#[test]
fn dropping_an_engine_with_events_in_flight_releases_and_counts_them() {
    let running = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&running);
    let slow: Arc<dyn Stage> = Arc::new(FnStage::new("slow", move |batch| {
        counter.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(2));
        Ok(batch)
    }));
    // Batches whose buffers are shared with the test: their strong count shows release.
    let column: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
    let mut engine = Engine::new(EngineOptions {
        workers: 2,
        stages: vec![slow],
        ..EngineOptions::default()
    })
    .unwrap();
    for _ in 0..100 {
        let batch = RecordBatch::try_from_iter([("x", Arc::clone(&column))]).unwrap();
        engine.publish(batch, FOREVER).unwrap();
    }
    assert!(matches!(
        engine.poll(FOREVER),
        PollOutcome::Event { sequence: 0, .. }
    ));
    let released = engine.shutdown();
    assert_eq!(released, 99, "every published event not polled is released");
    assert_eq!(engine.stats().released, 99);
    assert_eq!(engine.stats().in_flight, 0);
    assert_eq!(engine.shutdown(), 0);
    assert!(matches!(
        engine.publish(event(0, 0), Duration::ZERO),
        Err(PublishError::Closed(_))
    ));
    drop(engine);
    assert_eq!(
        Arc::strong_count(&column),
        1,
        "nothing of the events is kept"
    );
    assert!(running.load(Ordering::SeqCst) < 100);
}

#[test]
fn options_out_of_range_are_refused() {
    for options in [
        EngineOptions {
            capacity_events: 0,
            ..EngineOptions::default()
        },
        EngineOptions {
            capacity_bytes: 0,
            ..EngineOptions::default()
        },
        EngineOptions {
            workers: 0,
            ..EngineOptions::default()
        },
    ] {
        let error = Engine::new(options).unwrap_err();
        assert_eq!(error.kind(), zenith_core::ErrorKind::InvalidArgument);
    }
}

#[test]
fn stages_report_events_failures_and_time_to_telemetry() {
    let engine = Engine::new(EngineOptions {
        stages: vec![Arc::new(FnStage::new(
            "telemetry_probe",
            |batch: RecordBatch| {
                if value(&batch, 1) == 1 {
                    return Err(StageError::stage("refused"));
                }
                Ok(batch)
            },
        ))],
        ..EngineOptions::default()
    })
    .unwrap();
    for index in 0..3 {
        engine.publish(event(0, index), FOREVER).unwrap();
    }
    for _ in 0..3 {
        assert!(!matches!(engine.poll(FOREVER), PollOutcome::WouldBlock));
    }
    zenith_engine::metrics::register();
    let text = zenith_core::telemetry::prometheus_text();
    for line in [
        "zenith_engine_stage_events_in_total{stage=\"telemetry_probe\"} 3",
        "zenith_engine_stage_events_out_total{stage=\"telemetry_probe\"} 2",
        "zenith_engine_stage_events_failed_total{stage=\"telemetry_probe\",kind=\"stage error\"} 1",
        "zenith_engine_stage_seconds_count{stage=\"telemetry_probe\"} 3",
        "# TYPE zenith_engine_in_flight_events gauge",
    ] {
        assert!(text.contains(line), "missing {line} in:\n{text}");
    }
}

/// The CPUs the calling thread may run on, as one column of the event (a stage's view).
fn affinity_stage() -> Arc<dyn Stage> {
    Arc::new(FnStage::new("affinity", |_batch: RecordBatch| {
        let cpus = zenith_core::runtime::affinity::current_thread_affinity()
            .map_err(|e| StageError::stage(e.to_string()))?;
        let cpus: Vec<i64> = cpus.into_iter().map(i64::from).collect();
        Ok(
            RecordBatch::try_from_iter([("cpu", Arc::new(Int64Array::from(cpus)) as ArrayRef)])
                .unwrap(),
        )
    }))
}

/// The next event's CPUs, as the affinity stage saw them.
fn polled_cpus(engine: &Engine) -> Vec<i64> {
    let PollOutcome::Event { batch, .. } = engine.poll(FOREVER) else {
        panic!("the affinity stage failed");
    };
    let cpus = batch.column(0).as_any().downcast_ref::<Int64Array>();
    cpus.unwrap().values().to_vec()
}

#[test]
fn pinned_workers_run_only_on_their_cpus() {
    let allowed = zenith_core::runtime::affinity::current_thread_affinity().unwrap();
    let last = *allowed.last().unwrap();
    let engine = Engine::new(EngineOptions {
        workers: 3,
        stages: vec![affinity_stage()],
        pinning: Some(Pinning::Cpus(vec![last])),
        ..EngineOptions::default()
    })
    .unwrap();
    for index in 0..12 {
        engine.publish(event(0, index), FOREVER).unwrap();
    }
    for _ in 0..12 {
        assert_eq!(polled_cpus(&engine), vec![i64::from(last)]);
    }
    // Workers pin as they start; one that has not run an event yet may still be starting.
    let started = std::time::Instant::now();
    while engine.pinned_workers() < 3 && started.elapsed() < FOREVER {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(engine.pinned_workers(), 3);

    // Node 0's CPUs (every Linux machine has node 0; sysfs lists its CPUs).
    let node0 = Pinning::NumaNode(0).cpus().unwrap();
    let engine = Engine::new(EngineOptions {
        workers: 1,
        stages: vec![affinity_stage()],
        pinning: Some(Pinning::NumaNode(0)),
        ..EngineOptions::default()
    })
    .unwrap();
    engine.publish(event(0, 0), FOREVER).unwrap();
    let cpus = polled_cpus(&engine);
    let node0: Vec<i64> = node0.iter().map(|&c| i64::from(c)).collect();
    assert!(
        cpus.iter().all(|c| node0.contains(c)),
        "{cpus:?} outside node 0 {node0:?}"
    );
    assert_eq!(engine.pinned_workers(), 1);

    for (pinning, message) in [
        (Pinning::Cpus(vec![]), "at least one CPU"),
        (Pinning::Cpus(vec![5000]), "CPU 5000 is out of range"),
        (Pinning::NumaNode(999), "NUMA node 999"),
    ] {
        let error = Engine::new(EngineOptions {
            pinning: Some(pinning),
            ..EngineOptions::default()
        })
        .unwrap_err();
        assert!(error.to_string().contains(message), "{error}");
    }
}
