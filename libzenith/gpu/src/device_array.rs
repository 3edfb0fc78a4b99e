//! The Arrow C Device Data Interface: `ArrowDeviceArray` (an `ArrowArray` plus where its buffers
//! live and the event to wait on before reading them) and `ArrowDeviceArrayStream`.
//!
//! The structs mirror the canonical C definitions that `zenith.h` carries under
//! `ARROW_C_DEVICE_DATA_INTERFACE` / `ARROW_C_DEVICE_STREAM_INTERFACE`
//! (<https://arrow.apache.org/docs/format/CDeviceDataInterface.html>). CPU batches export as
//! `ARROW_DEVICE_CPU` with no event, which pyarrow imports, so the layout is tested on every
//! machine.

use std::ffi::{c_char, c_int, c_void};

use arrow_array::RecordBatch;
use arrow_data::ffi::FFI_ArrowArray;
use arrow_schema::ffi::FFI_ArrowSchema;
use zenith_core::batch::export_array;

/// `ArrowDeviceType`: where an array's buffers live (the values follow DLPack's `DLDeviceType`).
pub type ArrowDeviceType = i32;

/// Host memory: the same as a plain `ArrowArray`.
pub const ARROW_DEVICE_CPU: ArrowDeviceType = 1;
/// CUDA device memory.
pub const ARROW_DEVICE_CUDA: ArrowDeviceType = 2;
/// Pinned host memory (`cudaMallocHost` / `cuMemHostAlloc`).
pub const ARROW_DEVICE_CUDA_HOST: ArrowDeviceType = 3;
/// CUDA managed (unified) memory.
pub const ARROW_DEVICE_CUDA_MANAGED: ArrowDeviceType = 13;

/// An array and the device its buffers are on (`struct ArrowDeviceArray`).
#[repr(C)]
#[derive(Debug)]
pub struct ArrowDeviceArray {
    /// The array; its buffers (and its children's) live on the device.
    pub array: FFI_ArrowArray,
    /// The device's id (the CUDA ordinal; 0 for the CPU... by convention -1 or 0).
    pub device_id: i64,
    /// The kind of device (`ARROW_DEVICE_*`).
    pub device_type: ArrowDeviceType,
    /// For CUDA a `CUevent*` the consumer waits on before reading; NULL when nothing to wait on.
    pub sync_event: *mut c_void,
    /// Reserved, zero.
    pub reserved: [i64; 3],
}

/// A stream of device arrays on one device (`struct ArrowDeviceArrayStream`).
#[repr(C)]
#[derive(Debug)]
pub struct ArrowDeviceArrayStream {
    /// The device every array of the stream is on.
    pub device_type: ArrowDeviceType,
    /// Writes the stream's schema (in CPU memory); 0 or an errno.
    pub get_schema:
        Option<unsafe extern "C" fn(*mut ArrowDeviceArrayStream, *mut FFI_ArrowSchema) -> c_int>,
    /// Writes the next array, or a released one at the end; 0 or an errno.
    pub get_next:
        Option<unsafe extern "C" fn(*mut ArrowDeviceArrayStream, *mut ArrowDeviceArray) -> c_int>,
    /// The last error's message, or NULL.
    pub get_last_error: Option<unsafe extern "C" fn(*mut ArrowDeviceArrayStream) -> *const c_char>,
    /// Releases the stream (not the arrays it produced).
    pub release: Option<unsafe extern "C" fn(*mut ArrowDeviceArrayStream)>,
    /// The producer's data.
    pub private_data: *mut c_void,
}

/// Exports a batch in host memory as a struct array on `ARROW_DEVICE_CPU` (device id -1, as
/// Arrow C++ uses for the CPU; no event). Shares the batch's buffers (no copy); the array's
/// release keeps them alive.
pub fn export_cpu(batch: &RecordBatch) -> ArrowDeviceArray {
    ArrowDeviceArray {
        array: export_array(batch),
        device_id: -1,
        device_type: ARROW_DEVICE_CPU,
        sync_event: std::ptr::null_mut(),
        reserved: [0; 3],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};
    use std::sync::Arc;

    use arrow_array::{Array, Int64Array, StructArray};

    #[test]
    fn layouts_match_the_canonical_c_structs_on_64_bit() {
        assert_eq!(size_of::<FFI_ArrowArray>(), 80);
        assert_eq!(offset_of!(ArrowDeviceArray, device_id), 80);
        assert_eq!(offset_of!(ArrowDeviceArray, device_type), 88);
        assert_eq!(offset_of!(ArrowDeviceArray, sync_event), 96);
        assert_eq!(offset_of!(ArrowDeviceArray, reserved), 104);
        assert_eq!(size_of::<ArrowDeviceArray>(), 128);
        assert_eq!(offset_of!(ArrowDeviceArrayStream, get_schema), 8);
        assert_eq!(offset_of!(ArrowDeviceArrayStream, private_data), 40);
        assert_eq!(size_of::<ArrowDeviceArrayStream>(), 48);
    }

    #[test]
    fn cpu_batches_export_as_arrow_device_cpu_and_import_back() {
        let values = Int64Array::from(vec![1, 2, 3]);
        let batch = RecordBatch::try_from_iter([("x", Arc::new(values) as _)]).unwrap();
        let exported = export_cpu(&batch);
        assert_eq!(exported.device_type, ARROW_DEVICE_CPU);
        assert!(exported.sync_event.is_null());
        assert_eq!(exported.reserved, [0; 3]);
        let schema =
            FFI_ArrowSchema::try_from(StructArray::from(batch.clone()).data_type()).unwrap();
        // SAFETY: a valid array and schema just exported; `from_ffi` takes the array.
        let data = unsafe { arrow_array::ffi::from_ffi(exported.array, &schema) }.unwrap();
        let imported = StructArray::from(data);
        assert_eq!(imported.len(), 3);
        let column = imported
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(column.values(), &[1, 2, 3]);
    }
}
