//! The remote series: bytes fetched, requests (retries included), retries, and local-cache
//! hits and misses, registered with the telemetry registry on first use.

use std::sync::{Arc, OnceLock};

use crate::telemetry::metrics::counter_family;
use crate::telemetry::{Counter, registry};

/// Counters of every remote read in the process.
#[derive(Debug)]
pub struct RemoteMetrics {
    /// Bytes received from stores (range bodies; the cache's hits are not fetched).
    pub bytes_fetched: Arc<Counter>,
    /// Requests sent (each attempt counts, retries included).
    pub requests: Arc<Counter>,
    /// Attempts that were retries of a failed request.
    pub retries: Arc<Counter>,
    /// Ranges served from the local cache.
    pub cache_hits: Arc<Counter>,
    /// Ranges looked up in the local cache and not found (or found corrupt).
    pub cache_misses: Arc<Counter>,
}

/// The remote series, registered on first use.
pub fn metrics() -> &'static RemoteMetrics {
    static METRICS: OnceLock<RemoteMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let r = registry();
        let counter = |name, help| r.add(counter_family(name, help, &[])).get();
        RemoteMetrics {
            bytes_fetched: counter(
                "zenith_remote_fetched_bytes_total",
                "Bytes received from object stores and HTTP servers (cache hits excluded).",
            ),
            requests: counter(
                "zenith_remote_requests_total",
                "Requests sent to object stores and HTTP servers (every attempt, retries included).",
            ),
            retries: counter(
                "zenith_remote_retries_total",
                "Requests to object stores retried after a failure.",
            ),
            cache_hits: counter(
                "zenith_remote_cache_hits_total",
                "Remote byte ranges served from the local cache.",
            ),
            cache_misses: counter(
                "zenith_remote_cache_misses_total",
                "Remote byte ranges looked up in the local cache and fetched.",
            ),
        }
    })
}
