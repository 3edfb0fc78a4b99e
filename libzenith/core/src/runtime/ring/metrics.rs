//! The rings' gauges (`zenith_ring_occupancy{ring}`, `zenith_ring_capacity{ring}`), registered
//! with the telemetry registry on first use. A ring keeps the gauges it is given and moves them
//! as slots fill and drain.

use std::sync::{Arc, OnceLock};

use crate::telemetry::metrics::gauge_family;
use crate::telemetry::{Family, Gauge, registry};

struct RingFamilies {
    occupancy: Arc<Family<Gauge>>,
    capacity: Arc<Family<Gauge>>,
}

fn families() -> &'static RingFamilies {
    static FAMILIES: OnceLock<RingFamilies> = OnceLock::new();
    FAMILIES.get_or_init(|| {
        let r = registry();
        RingFamilies {
            occupancy: r.add(gauge_family(
                "zenith_ring_occupancy",
                "Slots in use in a ring buffer.",
                &["ring"],
            )),
            capacity: r.add(gauge_family(
                "zenith_ring_capacity",
                "Slots of a ring buffer.",
                &["ring"],
            )),
        }
    })
}

/// Registers the ring families (so a scrape lists them before any ring has reported).
pub fn register() {
    families();
}

/// The occupancy gauge of the ring named `ring` (`zenith_ring_occupancy{ring="..."}`).
pub fn occupancy(ring: &str) -> Arc<Gauge> {
    families().occupancy.with_labels(&[ring])
}

/// The capacity gauge of the ring named `ring` (`zenith_ring_capacity{ring="..."}`).
pub fn capacity(ring: &str) -> Arc<Gauge> {
    families().capacity.with_labels(&[ring])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::prometheus_text;

    #[test]
    fn rings_feed_their_gauges() {
        let gauge = occupancy("test-ring \"q\"");
        gauge.set(3.0);
        capacity("test-ring \"q\"").set(8.0);
        let text = prometheus_text();
        assert!(
            text.contains("zenith_ring_occupancy{ring=\"test-ring \\\"q\\\"\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("zenith_ring_capacity{ring=\"test-ring \\\"q\\\"\"} 8\n"));
    }
}
