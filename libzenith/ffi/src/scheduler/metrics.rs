//! The scheduler's Prometheus series, registered with zenith-core's telemetry registry (the
//! scheduler crate itself stays std-only): jobs pending and running, allocations, and the
//! latency of a scheduling pass. Every scheduler of the process adds to the same series.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use zenith_core::telemetry::metrics::{counter_family, gauge_family, latency_histogram_family};
use zenith_core::telemetry::{Counter, Gauge, Histogram, registry};
use zenith_scheduler::{JobState, Scheduler};

/// The scheduler's series.
#[derive(Debug)]
pub struct SchedulerMetrics {
    /// Jobs submitted and waiting (PENDING or QUEUED), all schedulers.
    pub jobs_pending: Arc<Gauge>,
    /// Jobs placed or running (SCHEDULED or RUNNING), all schedulers.
    pub jobs_running: Arc<Gauge>,
    /// Jobs started (`Start` decisions).
    pub allocation_success: Arc<Counter>,
    /// Wall time of each scheduling pass.
    pub decision_latency: Arc<Histogram>,
}

/// The scheduler's series, registered on first use.
pub fn metrics() -> &'static SchedulerMetrics {
    static METRICS: OnceLock<SchedulerMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let r = registry();
        SchedulerMetrics {
            jobs_pending: r
                .add(gauge_family(
                    "zenith_scheduler_jobs_pending",
                    "Jobs submitted and waiting for a placement (PENDING or QUEUED), all schedulers.",
                    &[],
                ))
                .get(),
            jobs_running: r
                .add(gauge_family(
                    "zenith_scheduler_jobs_running",
                    "Jobs placed or running (SCHEDULED or RUNNING), all schedulers.",
                    &[],
                ))
                .get(),
            allocation_success: r
                .add(counter_family(
                    "zenith_scheduler_allocation_success_total",
                    "Jobs started by a scheduling pass (all gang members placed).",
                    &[],
                ))
                .get(),
            decision_latency: r
                .add(latency_histogram_family(
                    "zenith_scheduler_decision_latency_seconds",
                    "Wall time of one scheduling pass (zenith_scheduler_schedule).",
                    &[],
                ))
                .get(),
        }
    })
}

/// What one scheduler has added to the process-wide series, so each call adds only the change
/// and freeing the scheduler takes its gauges back out.
#[derive(Debug, Default)]
pub(crate) struct Contribution {
    pending: u64,
    running: u64,
    allocations: u64,
}

impl Contribution {
    /// Starts from a (new or restored) scheduler: its waiting and running jobs count in the
    /// gauges; allocations it made before this process are not counted again.
    pub(crate) fn new(s: &Scheduler) -> Self {
        let mut c = Contribution {
            allocations: s.stats().allocation_success_total,
            ..Contribution::default()
        };
        c.update(s);
        c
    }

    /// Brings the series up to date with the scheduler's state.
    pub(crate) fn update(&mut self, s: &Scheduler) {
        let m = metrics();
        let stats = s.stats();
        let count = |st: JobState| stats.jobs[st as usize];
        let pending = count(JobState::Pending) + count(JobState::Queued);
        let running = count(JobState::Scheduled) + count(JobState::Running);
        m.jobs_pending.add(pending as f64 - self.pending as f64);
        m.jobs_running.add(running as f64 - self.running as f64);
        m.allocation_success.inc_by(
            stats
                .allocation_success_total
                .saturating_sub(self.allocations),
        );
        self.pending = pending;
        self.running = running;
        self.allocations = stats.allocation_success_total;
    }

    /// One pass took `elapsed`.
    pub(crate) fn pass(&self, elapsed: Duration) {
        metrics().decision_latency.observe_duration(elapsed);
    }
}

impl Drop for Contribution {
    fn drop(&mut self) {
        let m = metrics();
        m.jobs_pending.add(-(self.pending as f64));
        m.jobs_running.add(-(self.running as f64));
    }
}
