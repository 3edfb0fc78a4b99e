//! The series of the loader's device path, one per device (label `device`, `cuda:0`, ...).
//!
//! The device path lives in the GPU crate, which the core cannot depend on: the core owns the
//! families (so [`crate::register_metrics`] lists them before any device path ran) and hands
//! each device path its [`DeviceSeries`] to fill.

use std::sync::{Arc, OnceLock};

use crate::telemetry::metrics::{counter_family, seconds_counter_family};
use crate::telemetry::{Counter, Family, registry};

/// The families, registered on first use.
struct DeviceFamilies {
    bytes: Arc<Family<Counter>>,
    copies: Arc<Family<Counter>>,
    copy_time: Arc<Family<Counter>>,
    consumer_wait: Arc<Family<Counter>>,
    consumer_waits: Arc<Family<Counter>>,
    slot_waits: Arc<Family<Counter>>,
}

fn families() -> &'static DeviceFamilies {
    static FAMILIES: OnceLock<DeviceFamilies> = OnceLock::new();
    FAMILIES.get_or_init(|| {
        let r = registry();
        DeviceFamilies {
            bytes: r.add(counter_family(
                "zenith_device_copied_bytes_total",
                "Bytes the loader's device path copied to the device (straight from pinned batch \
                 buffers or through pinned staging slots).",
                &["device"],
            )),
            copies: r.add(counter_family(
                "zenith_device_copies_total",
                "Batches the loader's device path copied to the device.",
                &["device"],
            )),
            copy_time: r.add(seconds_counter_family(
                "zenith_device_copy_seconds_total",
                "Time from submitting each copy until the loader saw it finished: exact when the \
                 consumer waited for the copy, otherwise an upper bound (until the consumer took \
                 the batch); includes queueing behind earlier copies.",
                &["device"],
            )),
            consumer_wait: r.add(seconds_counter_family(
                "zenith_device_consumer_wait_seconds_total",
                "Time the consumer waited for a batch to land on the device (GPU starvation); \
                 the wait for workers to build it is zenith_loader_consumer_wait_seconds.",
                &["device"],
            )),
            consumer_waits: r.add(counter_family(
                "zenith_device_consumer_waits_total",
                "Batches the consumer had to wait for because their copy had not finished.",
                &["device"],
            )),
            slot_waits: r.add(counter_family(
                "zenith_device_slot_waits_total",
                "Times the device path waited for a free slot: `staging` (a pinned staging slot \
                 whose copy had not finished) or `device` (device memory the consumer still held).",
                &["device", "slot"],
            )),
        }
    })
}

/// Registers the device families (no series until a device path runs).
pub fn register() {
    families();
}

/// The series of one device, for its device path to fill.
#[derive(Debug, Clone)]
pub struct DeviceSeries {
    /// Bytes copied to the device.
    pub bytes: Arc<Counter>,
    /// Batches copied.
    pub copies: Arc<Counter>,
    /// Copy time (see `zenith_device_copy_seconds_total`).
    pub copy_time: Arc<Counter>,
    /// Time the consumer waited for copies.
    pub consumer_wait: Arc<Counter>,
    /// Batches the consumer waited for.
    pub consumer_waits: Arc<Counter>,
    /// Waits for a staging slot.
    pub staging_waits: Arc<Counter>,
    /// Waits for device memory the consumer held.
    pub device_waits: Arc<Counter>,
}

/// The series of the device labelled `device` (`cuda:0`; `host:0` for the host copy engine).
pub fn device_series(device: &str) -> DeviceSeries {
    let f = families();
    DeviceSeries {
        bytes: f.bytes.with_labels(&[device]),
        copies: f.copies.with_labels(&[device]),
        copy_time: f.copy_time.with_labels(&[device]),
        consumer_wait: f.consumer_wait.with_labels(&[device]),
        consumer_waits: f.consumer_waits.with_labels(&[device]),
        staging_waits: f.slot_waits.with_labels(&[device, "staging"]),
        device_waits: f.slot_waits.with_labels(&[device, "device"]),
    }
}
