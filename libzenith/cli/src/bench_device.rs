//! The GPU side of `zenith bench`: `--device cuda[:N]` runs the epochs through the loader's
//! device path (pinned slot ring, copy stream, device memory), and `zenith bench h2d` measures
//! pageable vs pinned host-to-device bandwidth. Without a CUDA driver or device both fail with
//! `ZENITH_ERR_NO_DEVICE` (exit code 16) and say what was searched.

use std::time::Duration;

use indicatif::ProgressBar;
use serde_json::{Value, json};
use zenith_core::{Error, Loader, LoaderOptions};
use zenith_gpu::device_path::DevicePath;
use zenith_gpu::h2d;
use zenith_gpu::pinned::gather_into_pinned;
use zenith_gpu::ring::cuda_engine::CudaCopyEngine;

use crate::exit::Failure;
use crate::output::{self, Table};

/// Staging slots of the bench's device path (the loader's default).
const SLOTS: usize = 4;

/// How long the device path waits for a slot or a copy before it fails.
const DEADLINE: Duration = Duration::from_secs(60);

/// Parses `--device`: `cuda` (device 0) or `cuda:N`.
pub fn parse_device(text: &str) -> Result<u32, String> {
    match text.trim() {
        "cuda" => Ok(0),
        other => other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or_else(|| format!("{text:?} is not a CUDA device (cuda or cuda:N)")),
    }
}

/// The device path of CUDA device `ordinal`, or the NO_DEVICE failure naming it; `options` are
/// changed so the loader gathers its batches into the device's pinned memory, from which the
/// path copies them without staging.
pub fn open_path(
    ordinal: u32,
    options: &mut LoaderOptions,
) -> Result<DevicePath<CudaCopyEngine>, Failure> {
    let engine = CudaCopyEngine::new(ordinal).map_err(|error| match error {
        Error::NoDevice(reason) => Error::NoDevice(format!(
            "--device cuda:{ordinal}: no such CUDA device here: {reason}"
        )),
        other => other,
    })?;
    let mut path = DevicePath::new(engine, ordinal, SLOTS, DEADLINE)?;
    gather_into_pinned(&mut path, options)?;
    Ok(path)
}

/// One epoch of `loader` through `path`: keeps the ring full and drops each device batch once
/// delivered (what a training step that consumed it does).
pub fn drain_epoch(
    loader: &Loader,
    path: &mut DevicePath<CudaCopyEngine>,
    bar: &ProgressBar,
) -> Result<(), Failure> {
    loop {
        path.fill(|| loader.next_batch())?;
        match path.pop()? {
            Some(batch) => {
                drop(batch);
                bar.inc(1);
            }
            None => return Ok(()),
        }
    }
}

/// The device path's counters for the report.
pub fn report(ordinal: u32, path: &DevicePath<CudaCopyEngine>, seconds: f64) -> Value {
    let stats = path.stats();
    json!({
        "device": format!("cuda:{ordinal}"),
        "device_copies": stats.copies,
        "device_bytes_copied": stats.bytes,
        "device_bytes_direct": stats.direct_bytes,
        "device_bytes_staged": stats.staged_bytes,
        "device_buffers_grown": stats.device_buffers_grown,
        "device_gb_per_second": stats.bytes as f64 / seconds.max(1e-9) / 1e9,
        "device_staging_waits": stats.staging_waits,
        "device_memory_waits": stats.device_waits,
        "device_copy_waits": stats.copy_waits,
    })
}

/// `zenith bench h2d [--device cuda:N] [--json]`: pageable vs pinned bandwidth per size.
pub fn run_h2d(ordinal: u32, json_out: bool) -> Result<(), Failure> {
    let rows = h2d::measure(ordinal, &h2d::DEFAULT_SIZES, 5).map_err(|error| match error {
        Error::NoDevice(reason) => Failure::from(Error::NoDevice(format!(
            "zenith bench h2d needs a CUDA device: {reason}"
        ))),
        other => Failure::from(other),
    })?;
    let report = json!({
        "device": format!("cuda:{ordinal}"),
        "sizes": rows.iter().map(|r| json!({
            "bytes": r.bytes,
            "pageable_gb_per_second": r.pageable_bytes_per_s / 1e9,
            "pinned_gb_per_second": r.pinned_bytes_per_s / 1e9,
            "pinned_over_pageable": r.pinned_bytes_per_s / r.pageable_bytes_per_s.max(1.0),
        })).collect::<Vec<_>>(),
    });
    if json_out {
        return output::print_json(&report);
    }
    let mut table = Table::new(
        &["bytes", "pageable GB/s", "pinned GB/s", "pinned/pageable"],
        &[true, true, true, true],
    );
    for r in &rows {
        table.row(vec![
            r.bytes.to_string(),
            format!("{:.2}", r.pageable_bytes_per_s / 1e9),
            format!("{:.2}", r.pinned_bytes_per_s / 1e9),
            format!(
                "{:.2}",
                r.pinned_bytes_per_s / r.pageable_bytes_per_s.max(1.0)
            ),
        ]);
    }
    output::print(&table.render(0, output::color_stdout()))
}
