//! The engine's series, registered with zenith-core's telemetry registry on first use:
//! per stage (label `stage`, the stage's name) events in, out and failed (by failure kind),
//! processing time, and the limits a WASM stage tripped; per process, events waiting for a
//! worker and events in flight.

use std::sync::{Arc, OnceLock};

use zenith_core::telemetry::metrics::{counter_family, gauge_family, latency_histogram_family};
use zenith_core::telemetry::{Counter, Family, Gauge, Histogram, registry};

use crate::event::FailureKind;

struct Families {
    events_in: Arc<Family<Counter>>,
    events_out: Arc<Family<Counter>>,
    events_failed: Arc<Family<Counter>>,
    seconds: Arc<Family<Histogram>>,
    limit_trips: Arc<Family<Counter>>,
    queued: Arc<Gauge>,
    in_flight: Arc<Gauge>,
}

fn families() -> &'static Families {
    static FAMILIES: OnceLock<Families> = OnceLock::new();
    FAMILIES.get_or_init(|| {
        let r = registry();
        Families {
            events_in: r.add(counter_family(
                "zenith_engine_stage_events_in_total",
                "Events a stage was given.",
                &["stage"],
            )),
            events_out: r.add(counter_family(
                "zenith_engine_stage_events_out_total",
                "Events a stage transformed.",
                &["stage"],
            )),
            events_failed: r.add(counter_family(
                "zenith_engine_stage_events_failed_total",
                "Events a stage failed, by why.",
                &["stage", "kind"],
            )),
            seconds: r.add(latency_histogram_family(
                "zenith_engine_stage_seconds",
                "Time a stage took per event.",
                &["stage"],
            )),
            limit_trips: r.add(counter_family(
                "zenith_engine_stage_limit_trips_total",
                "Events a WASM stage stopped at a limit (time or memory).",
                &["stage", "limit"],
            )),
            queued: r
                .add(gauge_family(
                    "zenith_engine_queued_events",
                    "Events waiting for an engine worker, all engines.",
                    &[],
                ))
                .get(),
            in_flight: r
                .add(gauge_family(
                    "zenith_engine_in_flight_events",
                    "Events published and not yet polled, all engines.",
                    &[],
                ))
                .get(),
        }
    })
}

/// Registers the engine's families (so a scrape lists them before any engine has run).
pub fn register() {
    families();
}

/// One stage's series, looked up once when an engine starts.
pub(crate) struct StageMetrics {
    name: String,
    events_in: Arc<Counter>,
    events_out: Arc<Counter>,
    seconds: Arc<Histogram>,
}

impl StageMetrics {
    pub(crate) fn new(stage: &str) -> Self {
        let f = families();
        Self {
            name: stage.to_string(),
            events_in: f.events_in.with_labels(&[stage]),
            events_out: f.events_out.with_labels(&[stage]),
            seconds: f.seconds.with_labels(&[stage]),
        }
    }

    /// Records one event the stage ran for `elapsed`, and how it ended.
    pub(crate) fn record(&self, elapsed: std::time::Duration, failure: Option<FailureKind>) {
        self.events_in.inc();
        self.seconds.observe_duration(elapsed);
        match failure {
            None => self.events_out.inc(),
            Some(kind) => {
                let f = families();
                f.events_failed
                    .with_labels(&[self.name.as_str(), kind.as_str()])
                    .inc();
                let limit = match kind {
                    FailureKind::Timeout => Some("time"),
                    FailureKind::OutOfMemory => Some("memory"),
                    _ => None,
                };
                if let Some(limit) = limit {
                    f.limit_trips
                        .with_labels(&[self.name.as_str(), limit])
                        .inc();
                }
            }
        }
    }
}

/// Moves the process-wide queue gauges by the given deltas.
pub(crate) fn queue_changed(queued: f64, in_flight: f64) {
    let f = families();
    if queued != 0.0 {
        f.queued.add(queued);
    }
    if in_flight != 0.0 {
        f.in_flight.add(in_flight);
    }
}
