//! Freeing a loader mid-epoch stops its worker threads promptly and frees everything. Its own
//! test binary: it counts the process's threads, which other tests would disturb.

mod common;

use std::time::{Duration, Instant};

use common::data_file;
use zenith_core::loader::ShuffleMode;
use zenith_core::{Loader, LoaderOptions};

/// The tests of this binary count process-wide things (threads, gauges): one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn worker_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.unwrap().path().join("comm")).ok())
        .filter(|name| name.starts_with("zenith-worker"))
        .count()
}

/// Threads name themselves once running: wait (bounded) until `n` are visible.
fn wait_for_workers(n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    while worker_threads() != n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    worker_threads()
}

#[test]
fn dropping_a_loader_mid_epoch_joins_its_workers() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    assert_eq!(worker_threads(), 0);
    let mut o = LoaderOptions::default();
    o.set_batch_size(10).unwrap();
    o.set_shuffle(ShuffleMode::Global);
    o.set_num_workers(4).unwrap();
    o.set_prefetch(64).unwrap();
    let loader = Loader::open(data_file("basic.arrow"), &o).unwrap();
    assert_eq!(wait_for_workers(4), 4);
    loader.next_batch().unwrap().unwrap();
    // No timing bound (shared machines are noisy): the drop returning at all, with the workers
    // joined, is what proves they saw the stop.
    drop(loader);
    assert_eq!(worker_threads(), 0, "workers are joined by the drop");

    // A stream keeps the workers of its epoch until it is released.
    let loader = Loader::open(data_file("basic.arrow"), &o).unwrap();
    let reader = loader.reader();
    drop(loader);
    assert_eq!(wait_for_workers(4), 4);
    drop(reader);
    assert_eq!(worker_threads(), 0);
}

/// The value of the gauge line `name{ring="loader_handoff"}` in the Prometheus text.
fn handoff_gauge(name: &str) -> f64 {
    let prefix = format!("{name}{{ring=\"loader_handoff\"}} ");
    zenith_core::telemetry::prometheus_text()
        .lines()
        .find_map(|line| line.strip_prefix(&prefix).map(|v| v.parse().unwrap()))
        .unwrap_or(0.0)
}

#[test]
fn the_handoff_ring_reports_its_capacity_and_occupancy_while_it_lives() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut o = LoaderOptions::default();
    o.set_batch_size(10).unwrap();
    o.set_num_workers(2).unwrap();
    o.set_prefetch(8).unwrap();
    let loader = Loader::open(data_file("basic.arrow"), &o).unwrap();
    assert_eq!(handoff_gauge("zenith_ring_capacity"), 8.0);
    // Workers fill the window ahead of the consumer.
    let deadline = Instant::now() + Duration::from_secs(10);
    while handoff_gauge("zenith_ring_occupancy") < 8.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(handoff_gauge("zenith_ring_occupancy"), 8.0);
    loader.next_batch().unwrap().unwrap();
    drop(loader);
    assert_eq!(handoff_gauge("zenith_ring_occupancy"), 0.0);
    assert_eq!(handoff_gauge("zenith_ring_capacity"), 0.0);
}
