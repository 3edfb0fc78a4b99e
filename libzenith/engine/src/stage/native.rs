//! Native stages: a Rust closure ([`FnStage`]) or a C callback over the Arrow C Data Interface
//! ([`CallbackStage`]).

use std::ffi::{c_char, c_void};

use arrow_array::{Array, RecordBatch, StructArray};
use arrow_data::ArrayData;
use arrow_data::ffi::FFI_ArrowArray;
use arrow_schema::ffi::FFI_ArrowSchema;
use arrow_schema::{DataType, Schema};

use super::{Stage, StageError};
use crate::event::FailureKind;

/// A stage that runs a Rust function.
pub struct FnStage<F> {
    name: String,
    function: F,
}

impl<F> FnStage<F>
where
    F: Fn(RecordBatch) -> Result<RecordBatch, StageError> + Send + Sync,
{
    /// A stage named `name` that calls `function` on each event.
    pub fn new(name: impl Into<String>, function: F) -> Self {
        Self {
            name: name.into(),
            function,
        }
    }
}

impl<F> Stage for FnStage<F>
where
    F: Fn(RecordBatch) -> Result<RecordBatch, StageError> + Send + Sync,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn process(&self, batch: RecordBatch) -> Result<RecordBatch, StageError> {
        (self.function)(batch)
    }
}

/// The C callback of a [`CallbackStage`]: transforms `(in_array, in_schema)`, a record batch as
/// a struct array, into `(out_array, out_schema)`.
///
/// Ownership: the callback may move out of the input structs (then it marks them released, as the
/// C Data Interface says); whatever it leaves unreleased the host releases after the call. On
/// success (return 0) it fills both output structs, which the host then owns. On failure it
/// returns nonzero, leaves the outputs alone (or released) and may write a message of at most
/// `error_capacity` bytes (NUL-terminated) to `error`.
pub type StageCallback = unsafe extern "C" fn(
    user_data: *mut c_void,
    in_array: *mut FFI_ArrowArray,
    in_schema: *mut FFI_ArrowSchema,
    out_array: *mut FFI_ArrowArray,
    out_schema: *mut FFI_ArrowSchema,
    error: *mut c_char,
    error_capacity: usize,
) -> i32;

/// Called once when a [`CallbackStage`] is dropped, with its user data.
pub type StageFreeCallback = unsafe extern "C" fn(user_data: *mut c_void);

/// Bytes a callback may write as its error message.
const ERROR_CAPACITY: usize = 1024;

/// A stage that calls a C function for each event, through the Arrow C Data Interface.
pub struct CallbackStage {
    name: String,
    callback: StageCallback,
    user_data: *mut c_void,
    free: Option<StageFreeCallback>,
}

// SAFETY: the creator of a CallbackStage promises (see `CallbackStage::new`) that the callback may
// be called from any thread, concurrently, with this user data.
unsafe impl Send for CallbackStage {}
// SAFETY: as above; the stage itself holds no mutable state.
unsafe impl Sync for CallbackStage {}

impl CallbackStage {
    /// A stage named `name` calling `callback` with `user_data` for each event; `free` (if any)
    /// is called with `user_data` when the stage is dropped.
    ///
    /// # Safety
    /// `callback` must follow the contract of [`StageCallback`] and be safe to call from several
    /// threads at once with `user_data`, which must stay valid until `free` is called.
    pub unsafe fn new(
        name: impl Into<String>,
        callback: StageCallback,
        user_data: *mut c_void,
        free: Option<StageFreeCallback>,
    ) -> Self {
        Self {
            name: name.into(),
            callback,
            user_data,
            free,
        }
    }
}

impl Drop for CallbackStage {
    fn drop(&mut self) {
        if let Some(free) = self.free {
            // SAFETY: called once, with the user data the creator gave for this purpose.
            unsafe { free(self.user_data) };
        }
    }
}

impl Stage for CallbackStage {
    fn name(&self) -> &str {
        &self.name
    }

    fn process(&self, batch: RecordBatch) -> Result<RecordBatch, StageError> {
        let data = StructArray::from(batch).into_data();
        let mut in_array = FFI_ArrowArray::new(&data);
        let mut in_schema = FFI_ArrowSchema::try_from(data.data_type()).map_err(|e| {
            StageError::new(FailureKind::Unsupported, format!("export schema: {e}"))
        })?;
        let mut out_array = FFI_ArrowArray::empty();
        let mut out_schema = FFI_ArrowSchema::empty();
        let mut message = [0u8; ERROR_CAPACITY];
        // SAFETY: every pointer is to a live local; the callback follows StageCallback's contract
        // (promised in `new`). Input structs it moved out of are marked released, so dropping
        // them afterwards is a no-op; the others are released by their Drop.
        let status = unsafe {
            (self.callback)(
                self.user_data,
                &mut in_array,
                &mut in_schema,
                &mut out_array,
                &mut out_schema,
                message.as_mut_ptr().cast(),
                ERROR_CAPACITY,
            )
        };
        drop(in_array);
        drop(in_schema);
        if status != 0 {
            let end = message.iter().position(|&b| b == 0).unwrap_or(0);
            let text = String::from_utf8_lossy(&message[..end]);
            let text = if text.is_empty() {
                "no message".to_string()
            } else {
                text.into_owned()
            };
            return Err(StageError::stage(format!(
                "callback returned {status}: {text}"
            )));
        }
        if out_array.is_released() || schema_is_released(&out_schema) {
            return Err(StageError::new(
                FailureKind::Malformed,
                "callback returned 0 but left its output array or schema released",
            ));
        }
        // SAFETY: the callback filled both structs per the C Data Interface; `from_ffi` takes
        // ownership of the array and validates its layout below.
        let data = unsafe { arrow_array::ffi::from_ffi(out_array, &out_schema) }
            .map_err(|e| StageError::new(FailureKind::Malformed, format!("import output: {e}")))?;
        batch_from_data(data)
    }
}

/// A record batch from a struct array's data, validated in full (a callback's output is not
/// trusted).
fn batch_from_data(data: ArrayData) -> Result<RecordBatch, StageError> {
    let malformed = |e: arrow_schema::ArrowError| {
        StageError::new(FailureKind::Malformed, format!("output: {e}"))
    };
    if !matches!(data.data_type(), DataType::Struct(_)) {
        return Err(StageError::new(
            FailureKind::Malformed,
            format!(
                "output must be a struct array (a record batch), got {}",
                data.data_type()
            ),
        ));
    }
    data.validate_full().map_err(malformed)?;
    let array = StructArray::from(data);
    if array.null_count() > 0 {
        return Err(StageError::new(
            FailureKind::Malformed,
            "output struct array has top-level nulls",
        ));
    }
    let (fields, columns, _) = array.into_parts();
    RecordBatch::try_new(std::sync::Arc::new(Schema::new(fields)), columns).map_err(malformed)
}

/// The C Data Interface's `ArrowSchema`, field for field: arrow-rs keeps `release` private, and a
/// released schema must be recognised before it is read.
#[repr(C)]
struct RawSchema {
    format: *const c_char,
    name: *const c_char,
    metadata: *const c_char,
    flags: i64,
    n_children: i64,
    children: *mut *mut RawSchema,
    dictionary: *mut RawSchema,
    release: Option<unsafe extern "C" fn(*mut RawSchema)>,
    private_data: *mut c_void,
}

const _: () = assert!(
    std::mem::size_of::<RawSchema>() == std::mem::size_of::<FFI_ArrowSchema>()
        && std::mem::align_of::<RawSchema>() == std::mem::align_of::<FFI_ArrowSchema>()
);

/// True when a schema struct is released (its `release` callback is NULL) or has no format.
pub fn schema_is_released(schema: &FFI_ArrowSchema) -> bool {
    // SAFETY: FFI_ArrowSchema is `#[repr(C)]` with exactly the C Data Interface's fields, which
    // RawSchema mirrors (same size and alignment, checked above); only two fields are read.
    let raw = unsafe { &*(schema as *const FFI_ArrowSchema).cast::<RawSchema>() };
    raw.release.is_none() || raw.format.is_null()
}
