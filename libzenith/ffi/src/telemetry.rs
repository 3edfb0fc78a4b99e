//! The process-wide telemetry: `zenith_telemetry_prometheus` renders every metric in the
//! Prometheus text format, `zenith_telemetry_serve` serves it over HTTP.

use std::ffi::c_char;

use crate::args;
use crate::error::zenith_error;
use crate::status::{ZENITH_OK, zenith_status};
use zenith_core::telemetry::{MetricsServer, prometheus_text};

/// A thread serving `GET /metrics` over HTTP.
///
/// Created by `zenith_telemetry_serve`, stopped and freed by `zenith_telemetry_server_free`.
pub struct zenith_telemetry_server {
    inner: MetricsServer,
}

/// Writes every metric of the process (all loaders added up: rows, batches, bytes, time to first
/// batch, consumer wait, worker busy time, queue depth, bytes and latency of reads by I/O
/// backend, io_uring fallbacks, ring occupancy) in the Prometheus text exposition format 0.0.4,
/// NUL-terminated, into `buf`, and the text's length (without the NUL) into `*out_len`.
///
/// Units are base units (seconds, bytes); counters end in `_total`; histograms have cumulative
/// `_bucket{le="..."}` lines ending with `le="+Inf"`, then `_sum` and `_count`.
///
/// On failure: when `cap < *out_len + 1`, returns `ZENITH_ERR_BUFFER_TOO_SMALL` with the length
/// in `*out_len` (so `buf == NULL, cap == 0` asks for it) and writes nothing to `buf`. The text
/// can grow between two calls (counters gain digits, new series appear): leave some room.
/// NULL policy: `out_len` must not be NULL; `buf` may be NULL when `cap == 0`; `err` may be NULL.
/// Thread safety: may be called from any thread, at any time.
///
/// # Safety
/// `buf` is NULL or points to `cap` writable bytes; `out_len` is NULL or writable; `err` is NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_telemetry_prometheus(
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        zenith_core::register_metrics();
        crate::scheduler::metrics::metrics();
        let text = prometheus_text();
        // SAFETY: per the contract above.
        unsafe { args::write_text(&text, buf, cap, out_len) }?;
        Ok(ZENITH_OK)
    })
}

/// Starts a thread that answers `GET /metrics` on `addr` with the text of
/// `zenith_telemetry_prometheus` (`Content-Type: text/plain; version=0.0.4`); other paths get
/// 404. `addr` is `"host:port"`: `"127.0.0.1:9100"`, `"0.0.0.0:9100"`, `"[::1]:0"`; port 0
/// picks a free port (see `zenith_telemetry_server_port`).
///
/// Ownership: on success `*out` receives a server the caller stops and frees with
/// `zenith_telemetry_server_free`.
/// On failure: an address that does not parse or resolve returns `ZENITH_ERR_INVALID_ARGUMENT`,
/// one that cannot be bound (in use, not permitted) `ZENITH_ERR_IO`; `*out` is left untouched.
/// NULL policy: `addr` and `out` must not be NULL; `err` may be NULL.
/// Thread safety: may be called from any thread; several servers may run at once.
///
/// # Safety
/// `addr` is NULL or NUL-terminated; `out` and `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_telemetry_serve(
    addr: *const c_char,
    out: *mut *mut zenith_telemetry_server,
    err: *mut *mut zenith_error,
) -> zenith_status {
    ffi_boundary!(err: err, {
        // SAFETY: per the contract above.
        let addr = unsafe { args::utf8(addr, "addr") }?;
        let out = args::out(out, "out")?;
        zenith_core::register_metrics();
        crate::scheduler::metrics::metrics();
        let server = MetricsServer::start(addr)?;
        // SAFETY: `out` is non-NULL and writable per the contract.
        unsafe { out.write(args::into_handle(zenith_telemetry_server { inner: server })) };
        Ok(ZENITH_OK)
    })
}

/// Returns the TCP port the server listens on (the one chosen when `addr` asked for port 0), or
/// 0 when `server` is NULL.
///
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `server` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_telemetry_server_port(
    server: *const zenith_telemetry_server,
) -> u16 {
    ffi_boundary!(default: 0, {
        // SAFETY: per the contract above.
        unsafe { server.as_ref() }.map_or(0, |s| s.inner.local_addr().port())
    })
}

/// Stops the server's thread (waiting for an answer being written, at most a few seconds for a
/// stalled client), closes its socket and frees it.
///
/// NULL policy: `zenith_telemetry_server_free(NULL)` does nothing.
///
/// # Safety
/// `server` is NULL or a live server, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zenith_telemetry_server_free(server: *mut zenith_telemetry_server) {
    ffi_boundary!(default: (), {
        // SAFETY: per the contract above.
        unsafe { args::free_handle(server) }
    })
}
