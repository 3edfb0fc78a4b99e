//! The device path's telemetry on the host copy engine: bytes, copies, consumer waits and slot
//! waits per device, in the feed's totals and in the Prometheus text a scrape returns.

use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Int64Array, RecordBatch};
use zenith_core::batch::Batch;
use zenith_core::telemetry::prometheus_text;
use zenith_gpu::device_feed::DeviceFeed;
use zenith_gpu::device_path::DevicePath;
use zenith_gpu::ring::HostCopyEngine;

fn batch(index: u64, rows: usize) -> Batch {
    let ids = Int64Array::from_iter_values(0..rows as i64);
    let data = RecordBatch::try_from_iter([("id", Arc::new(ids) as _)]).unwrap();
    Batch {
        data,
        epoch: 0,
        index,
    }
}

/// The value of the sample `line_start` (name and labels) in a Prometheus text.
fn sample(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(line_start)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {line_start} in\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn copies_are_counted_per_device_in_totals_and_prometheus() {
    zenith_core::register_metrics();
    let path = DevicePath::new(
        HostCopyEngine::new().unwrap(),
        0,
        3,
        Duration::from_secs(10),
    )
    .unwrap();
    let mut feed = DeviceFeed::new(path, "host:feed-test");
    let shared = feed.shared_totals();
    let mut source = (0..5u64).map(|i| batch(i, 100));
    let mut delivered = Vec::new();
    while let Some(batch) = feed.next(|| Ok(source.next())).unwrap() {
        delivered.push(batch.host().index);
    }
    assert_eq!(delivered, vec![0, 1, 2, 3, 4]);
    let totals = feed.totals();
    assert_eq!(totals, shared.snapshot());
    assert_eq!(totals.copies, 5);
    // 100 int64 rows: 800 bytes, staged at 256-byte alignment: 1024 bytes a slot, 800 copied.
    assert_eq!(totals.bytes_copied, 5 * 800);
    let text = prometheus_text();
    let device = "{device=\"host:feed-test\"}";
    assert_eq!(
        sample(&text, &format!("zenith_device_copied_bytes_total{device}")),
        4000.0
    );
    assert_eq!(
        sample(&text, &format!("zenith_device_copies_total{device}")),
        5.0
    );
    assert_eq!(
        sample(
            &text,
            &format!("zenith_device_consumer_waits_total{device}")
        ),
        totals.consumer_waits as f64
    );
    for slot in ["staging", "device"] {
        let line =
            format!("zenith_device_slot_waits_total{{device=\"host:feed-test\",slot=\"{slot}\"}}");
        let expected = if slot == "staging" {
            totals.staging_waits
        } else {
            totals.device_waits
        };
        assert_eq!(sample(&text, &line), expected as f64);
    }
    let wait = sample(
        &text,
        &format!("zenith_device_consumer_wait_seconds_total{device}"),
    );
    assert!(wait >= 0.0);
    assert!(sample(&text, &format!("zenith_device_copy_seconds_total{device}")) >= 0.0);
    for family in [
        "zenith_device_copied_bytes_total",
        "zenith_device_copy_seconds_total",
        "zenith_device_consumer_wait_seconds_total",
        "zenith_device_slot_waits_total",
    ] {
        assert_eq!(text.matches(&format!("# TYPE {family} counter")).count(), 1);
    }
}

#[test]
fn a_consumer_holding_every_device_buffer_shows_as_device_waits() {
    let path = DevicePath::new(
        HostCopyEngine::new().unwrap(),
        0,
        3,
        Duration::from_millis(200),
    )
    .unwrap();
    let mut feed = DeviceFeed::new(path, "host:held");
    let mut source = (0..10u64).map(|i| batch(i, 10));
    let mut held = Vec::new();
    // Hold every batch: the ring runs out of device buffers and the submit waits until the
    // deadline, then fails; the wait is counted.
    let error = loop {
        match feed.next(|| Ok(source.next())) {
            Ok(Some(batch)) => held.push(batch),
            Ok(None) => panic!("the ring should have run out of device memory"),
            Err(error) => break error,
        }
    };
    assert!(error.to_string().contains("device path"), "{error}");
    assert!(feed.totals().device_waits >= 1, "{:?}", feed.totals());
}
