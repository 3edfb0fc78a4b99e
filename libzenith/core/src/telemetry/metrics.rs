//! The metric types (counter, gauge, histogram), metric families with labels, and their
//! rendering in the Prometheus text exposition format 0.0.4.
//!
//! Updates are lock-free (relaxed atomics): a counter is one `fetch_add`, a histogram
//! observation two `fetch_add`s and a compare-and-swap loop on the sum. Families take a lock
//! only to add a new label set; hot paths keep the `Arc` of their series and never look it up
//! again.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A monotonically increasing count, stored as an integer in a unit `scale` times smaller than
/// the one rendered (nanoseconds for a `_seconds_total` counter, so adding a duration costs no
/// floating point).
#[derive(Debug)]
pub struct Counter {
    raw: AtomicU64,
    scale: u64,
}

impl Counter {
    fn new(scale: u64) -> Self {
        Counter {
            raw: AtomicU64::new(0),
            scale: scale.max(1),
        }
    }

    /// Adds `n` units of the stored unit (rows, bytes; nanoseconds for a seconds counter).
    pub fn inc_by(&self, n: u64) {
        self.raw.fetch_add(n, Relaxed);
    }

    /// Adds one.
    pub fn inc(&self) {
        self.inc_by(1);
    }

    /// Adds a duration (for counters of seconds, which store nanoseconds).
    pub fn add_duration(&self, elapsed: Duration) {
        self.inc_by(nanos(elapsed));
    }

    /// The stored value, in the stored unit.
    pub fn raw(&self) -> u64 {
        self.raw.load(Relaxed)
    }

    /// The value in the rendered unit.
    pub fn value(&self) -> f64 {
        scaled(self.raw(), self.scale)
    }
}

/// A value that goes up and down (an `f64`, stored as its bits).
#[derive(Debug, Default)]
pub struct Gauge {
    bits: AtomicU64,
}

impl Gauge {
    /// Sets the value.
    pub fn set(&self, value: f64) {
        self.bits.store(value.to_bits(), Relaxed);
    }

    /// Adds `delta` (negative to subtract).
    pub fn add(&self, delta: f64) {
        add_f64(&self.bits, delta);
    }

    /// The value.
    pub fn value(&self) -> f64 {
        f64::from_bits(self.bits.load(Relaxed))
    }
}

/// Bucket upper bounds, in seconds, for the latency histograms: 10 µs to 60 s.
pub(crate) const LATENCY_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// A distribution of observations over fixed buckets. Each observation is counted in the first
/// bucket whose upper bound it does not exceed (or in the overflow, `+Inf`, bucket); buckets are
/// made cumulative when rendered.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, then the overflow bucket.
    counts: Box<[AtomicU64]>,
    sum_bits: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "bounds increase");
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_bits: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// Records one observation.
    pub fn observe(&self, value: f64) {
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        self.counts[bucket].fetch_add(1, Relaxed);
        add_f64(&self.sum_bits, value);
    }

    /// Records a duration, in seconds.
    pub fn observe_duration(&self, elapsed: Duration) {
        self.observe(elapsed.as_secs_f64());
    }

    /// `(upper bound, cumulative count)` per bucket, ending with `(+Inf, total count)`, and the
    /// sum of the observations.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, f64) {
        let mut cumulative = 0u64;
        let mut buckets = Vec::with_capacity(self.counts.len());
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Relaxed);
            let bound = self.bounds.get(i).copied().unwrap_or(f64::INFINITY);
            buckets.push((bound, cumulative));
        }
        (buckets, f64::from_bits(self.sum_bits.load(Relaxed)))
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Relaxed)).sum()
    }
}

/// The kinds of metric a family can hold.
pub trait Metric: Send + Sync + std::fmt::Debug {
    /// The `# TYPE` of the family.
    const TYPE: &'static str;

    /// Writes the series' sample lines; `labels` is the rendered label set (`a="x",b="y"`, or
    /// empty).
    fn write_samples(&self, name: &str, labels: &str, out: &mut String);
}

impl Metric for Counter {
    const TYPE: &'static str = "counter";

    fn write_samples(&self, name: &str, labels: &str, out: &mut String) {
        let value = if self.scale == 1 {
            self.raw().to_string()
        } else {
            format_value(self.value())
        };
        write_sample(out, name, labels, &value);
    }
}

impl Metric for Gauge {
    const TYPE: &'static str = "gauge";

    fn write_samples(&self, name: &str, labels: &str, out: &mut String) {
        write_sample(out, name, labels, &format_value(self.value()));
    }
}

impl Metric for Histogram {
    const TYPE: &'static str = "histogram";

    fn write_samples(&self, name: &str, labels: &str, out: &mut String) {
        let (buckets, sum) = self.snapshot();
        let bucket_name = format!("{name}_bucket");
        let separator = if labels.is_empty() { "" } else { "," };
        for &(bound, cumulative) in &buckets {
            let with_le = format!("{labels}{separator}le=\"{}\"", format_value(bound));
            write_sample(out, &bucket_name, &with_le, &cumulative.to_string());
        }
        // The count is the +Inf bucket, so the two always agree.
        let count = buckets.last().map_or(0, |&(_, c)| c);
        write_sample(out, &format!("{name}_sum"), labels, &format_value(sum));
        write_sample(out, &format!("{name}_count"), labels, &count.to_string());
    }
}

/// Something the registry renders: a metric family.
pub trait Collect: Send + Sync + std::fmt::Debug {
    /// Appends the family's `# HELP`, `# TYPE` and sample lines.
    fn render(&self, out: &mut String);
}

/// One series of a family: its label values, its rendered label set, the metric.
type Series<M> = (Vec<String>, String, Arc<M>);

/// A named metric with zero or more label names; one series per distinct label values.
#[derive(Debug)]
pub struct Family<M> {
    name: &'static str,
    help: &'static str,
    label_names: &'static [&'static str],
    make: fn() -> M,
    /// Series in creation order: (label values, rendered label set, the metric).
    series: RwLock<Vec<Series<M>>>,
}

impl<M: Metric> Family<M> {
    /// A family with no series yet; `make` creates the metric of a new series.
    pub fn new(
        name: &'static str,
        help: &'static str,
        label_names: &'static [&'static str],
        make: fn() -> M,
    ) -> Self {
        debug_assert!(valid_name(name), "invalid metric name {name:?}");
        debug_assert!(label_names.iter().all(|l| valid_name(l) && *l != "le"));
        Family {
            name,
            help,
            label_names,
            make,
            series: RwLock::new(Vec::new()),
        }
    }

    /// The family's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The series with these label values (one per label name, in order), created on first use.
    /// Callers on hot paths keep the returned `Arc` instead of asking again.
    ///
    /// # Panics
    /// When the number of values differs from the number of label names (a programming error).
    pub fn with_labels(&self, values: &[&str]) -> Arc<M> {
        assert_eq!(
            values.len(),
            self.label_names.len(),
            "{}: label values {values:?} for label names {:?}",
            self.name,
            self.label_names
        );
        let matches =
            |stored: &Vec<String>| stored.iter().map(String::as_str).eq(values.iter().copied());
        {
            let series = self.series.read().unwrap_or_else(|p| p.into_inner());
            if let Some((_, _, metric)) = series.iter().find(|(v, _, _)| matches(v)) {
                return metric.clone();
            }
        }
        let mut series = self.series.write().unwrap_or_else(|p| p.into_inner());
        if let Some((_, _, metric)) = series.iter().find(|(v, _, _)| matches(v)) {
            return metric.clone();
        }
        let rendered = self
            .label_names
            .iter()
            .zip(values)
            .map(|(name, value)| format!("{name}=\"{}\"", escape_label_value(value)))
            .collect::<Vec<_>>()
            .join(",");
        let metric = Arc::new((self.make)());
        series.push((
            values.iter().map(|v| v.to_string()).collect(),
            rendered,
            metric.clone(),
        ));
        metric
    }

    /// The series of a family without labels.
    pub fn get(&self) -> Arc<M> {
        self.with_labels(&[])
    }
}

impl<M: Metric> Collect for Family<M> {
    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, escape_help(self.help));
        let _ = writeln!(out, "# TYPE {} {}", self.name, M::TYPE);
        let series = self.series.read().unwrap_or_else(|p| p.into_inner());
        for (_, labels, metric) in series.iter() {
            metric.write_samples(self.name, labels, out);
        }
    }
}

/// A counter family whose values are counted in units `scale` times smaller than rendered.
pub fn counter_family(
    name: &'static str,
    help: &'static str,
    label_names: &'static [&'static str],
) -> Family<Counter> {
    Family::new(name, help, label_names, || Counter::new(1))
}

/// A `_seconds_total` counter family whose series count nanoseconds.
pub fn seconds_counter_family(
    name: &'static str,
    help: &'static str,
    label_names: &'static [&'static str],
) -> Family<Counter> {
    Family::new(name, help, label_names, || Counter::new(1_000_000_000))
}

/// A gauge family.
pub fn gauge_family(
    name: &'static str,
    help: &'static str,
    label_names: &'static [&'static str],
) -> Family<Gauge> {
    Family::new(name, help, label_names, Gauge::default)
}

/// A histogram family with the [`LATENCY_BUCKETS`].
pub fn latency_histogram_family(
    name: &'static str,
    help: &'static str,
    label_names: &'static [&'static str],
) -> Family<Histogram> {
    Family::new(name, help, label_names, || Histogram::new(LATENCY_BUCKETS))
}

fn write_sample(out: &mut String, name: &str, labels: &str, value: &str) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

/// A sample value as the text format spells it: `+Inf`, `-Inf`, `NaN`, else a decimal number
/// (Rust's shortest round-trip form, never an exponent).
pub fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "+Inf".into()
    } else if value == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        value.to_string()
    }
}

/// Escapes a label value: backslash, double quote and line feed.
pub fn escape_label_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Escapes a `# HELP` text: backslash and line feed.
pub fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`: a valid metric or label name.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn add_f64(bits: &AtomicU64, delta: f64) {
    let _ = bits.fetch_update(Relaxed, Relaxed, |old| {
        Some((f64::from_bits(old) + delta).to_bits())
    });
}

fn scaled(raw: u64, scale: u64) -> f64 {
    // Whole and fractional parts separately, so large nanosecond counts keep their precision.
    (raw / scale) as f64 + (raw % scale) as f64 / scale as f64
}

/// Nanoseconds of a duration, saturating.
pub fn nanos(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape_label_value(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label_value("line\nnext"), "line\\nnext");
        assert_eq!(
            escape_help("back\\slash\nnewline \"quotes\""),
            "back\\\\slash\\nnewline \"quotes\""
        );
        let family = gauge_family("zenith_test_gauge", "A \"test\"\ngauge.", &["path"]);
        family.with_labels(&["C:\\data\n\"x\""]).set(2.5);
        let mut out = String::new();
        family.render(&mut out);
        assert_eq!(
            out,
            "# HELP zenith_test_gauge A \"test\"\\ngauge.\n# TYPE zenith_test_gauge gauge\n\
             zenith_test_gauge{path=\"C:\\\\data\\n\\\"x\\\"\"} 2.5\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let family = latency_histogram_family("zenith_test_seconds", "Test.", &["backend"]);
        let h = family.with_labels(&["pread"]);
        for v in [0.000_005, 0.000_01, 0.003, 0.003, 7.0, 1e9] {
            h.observe(v);
        }
        let (buckets, sum) = h.snapshot();
        assert_eq!(buckets.len(), LATENCY_BUCKETS.len() + 1);
        assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "cumulative");
        // 10 µs is "less than or equal": it lands in the 10 µs bucket.
        assert_eq!(buckets[0], (0.000_01, 2));
        let at = |bound: f64| buckets.iter().find(|b| b.0 == bound).unwrap().1;
        assert_eq!(at(0.002_5), 2);
        assert_eq!(at(0.005), 4);
        assert_eq!(at(10.0), 5);
        assert_eq!(at(60.0), 5);
        assert_eq!(*buckets.last().unwrap(), (f64::INFINITY, 6));
        assert_eq!(h.count(), 6);
        assert!((sum - (0.000_015 + 0.006 + 7.0 + 1e9)).abs() < 1e-3);

        let mut out = String::new();
        family.render(&mut out);
        assert!(out.contains("# TYPE zenith_test_seconds histogram\n"));
        assert!(out.contains("zenith_test_seconds_bucket{backend=\"pread\",le=\"0.00001\"} 2\n"));
        assert!(out.contains("zenith_test_seconds_bucket{backend=\"pread\",le=\"+Inf\"} 6\n"));
        assert!(out.contains("zenith_test_seconds_count{backend=\"pread\"} 6\n"));
        assert!(out.contains("zenith_test_seconds_sum{backend=\"pread\"} 1000000007.006015"));
    }

    #[test]
    fn counters_render_integers_or_seconds() {
        let rows = counter_family("zenith_test_rows_total", "Rows.", &[]);
        rows.get().inc_by(41);
        rows.get().inc();
        let busy = seconds_counter_family("zenith_test_busy_seconds_total", "Busy.", &[]);
        busy.get().add_duration(Duration::from_millis(1500));
        busy.get().inc_by(u64::MAX / 2); // large values keep their whole seconds exactly
        let (mut a, mut b) = (String::new(), String::new());
        rows.render(&mut a);
        busy.render(&mut b);
        assert!(a.ends_with("zenith_test_rows_total 42\n"), "{a}");
        assert!(
            b.contains("# TYPE zenith_test_busy_seconds_total counter\n"),
            "{b}"
        );
        let value: f64 = b
            .lines()
            .last()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (value - (1.5 + (u64::MAX / 2) as f64 / 1e9)).abs() < 1.0,
            "{b}"
        );
    }

    #[test]
    fn series_are_created_once_per_label_set() {
        let family = counter_family("zenith_test_total", "T.", &["a", "b"]);
        let first = family.with_labels(&["x", "y"]);
        first.inc();
        family.with_labels(&["x", "y"]).inc();
        family.with_labels(&["x", "z"]).inc();
        assert_eq!(first.raw(), 2);
        let mut out = String::new();
        family.render(&mut out);
        assert_eq!(out.matches("zenith_test_total{").count(), 2, "{out}");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(0.000_025), "0.000025");
        assert!(!valid_name("1abc") && valid_name("zenith_x:y"));
    }

    #[test]
    #[should_panic(expected = "label values")]
    fn wrong_label_count_is_a_bug() {
        counter_family("zenith_test2_total", "T.", &["a"]).get();
    }
}
