//! A batch delivered on a device, exported through the Arrow C Device Data Interface: a struct
//! array whose children's buffers point into the batch's device memory, with the event to wait
//! on before reading them.
//!
//! Each child is one tensor column as the device path placed it: its data buffer starts at the
//! column's offset in the device buffer, and its validity buffer is NULL (a column with a null
//! has no tensor form, so it never reaches the device). Fixed-size lists keep their layout: the
//! list has no buffer of its own and its values child points at the same bytes. Columns that are
//! not on the device (strings, columns with nulls, ...) and bool columns (the device holds one
//! byte per value, Arrow one bit) cannot be exported: the call fails with
//! [`Error::Unsupported`] naming every such column, and the caller exports a subset of columns
//! instead. That is what a consumer of an `ArrowDeviceArray` expects: every buffer of the array
//! on the one device the struct names, never a silent mix of host and device memory.
//!
//! The array's release follows the DLPack tensors' rules: the device memory is reused only after
//! the array and all its children are released (and, for a consumer stream, after the point on
//! that stream where the release happened).

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_buffer::Buffer;
use arrow_data::ArrayData;
use arrow_data::ffi::FFI_ArrowArray;
use arrow_schema::ffi::FFI_ArrowSchema;
use arrow_schema::{DataType, Field, Fields, Schema};
use zenith_core::batch::export_schema;
use zenith_core::{Error, Result};

use crate::device_array::ArrowDeviceArray;
use crate::device_path::{DeviceColumns, StagedColumn};
use crate::dlpack_stream::ConsumerStream;
use crate::ring::CopyEngine;
use crate::ring::cuda_engine::CudaCopyEngine;
use crate::ring::host_engine::HostCopyEngine;

/// How long the host engine's export waits for a copy before it fails (the ring hands out only
/// finished copies, so the wait returns at once).
const HOST_COPY_DEADLINE: Duration = Duration::from_secs(60);

/// What an engine gives the Arrow `sync_event` of its batches.
pub trait ArrowSyncEvent: CopyEngine {
    /// The handle `sync_event` points to (a `CUevent` for CUDA), or `None` when the engine
    /// waited for the copy on the host (`sync_event` is then NULL: nothing to wait on).
    fn sync_event(&self, event: &Self::Event) -> Result<Option<usize>>;
}

impl ArrowSyncEvent for HostCopyEngine {
    fn sync_event(&self, event: &Self::Event) -> Result<Option<usize>> {
        if self.wait(event, Instant::now() + HOST_COPY_DEADLINE)? {
            Ok(None)
        } else {
            Err(Error::Internal(format!(
                "a host copy did not finish within {} s",
                HOST_COPY_DEADLINE.as_secs()
            )))
        }
    }
}

impl ArrowSyncEvent for CudaCopyEngine {
    fn sync_event(&self, event: &Self::Event) -> Result<Option<usize>> {
        // The slot's event, recorded on the copy stream after this batch's copy. It lives as
        // long as the ring, which the export's hold keeps alive. A later copy through the same
        // staging slot re-records it; a consumer that waits after that waits for the later copy
        // too (later, never too early: the event is re-recorded only after this copy finished).
        Ok(Some(event.raw() as usize))
    }
}

/// What the exported buffers keep alive: the batch's device memory (until the last buffer is
/// released) and the storage `sync_event` points to.
struct DeviceOwner {
    _hold: Mutex<Box<dyn Send + Sync>>,
    sync_event: Box<usize>,
}

/// Why `data_type` cannot be described over device bytes, or the byte width of one row of it.
fn row_width(data_type: &DataType) -> std::result::Result<usize, String> {
    match data_type {
        DataType::Boolean => Err(
            "bools are one byte per value on the device and one bit in Arrow (export the column \
             with DLPack)"
                .into(),
        ),
        DataType::FixedSizeBinary(width) => usize::try_from(*width).map_err(|e| e.to_string()),
        DataType::FixedSizeList(field, len) => {
            let len = usize::try_from(*len).map_err(|e| e.to_string())?;
            Ok(row_width(field.data_type())?.saturating_mul(len))
        }
        other => other
            .primitive_width()
            .ok_or_else(|| format!("{other} has no fixed-width layout")),
    }
}

/// The Arrow array of `len` rows of `data_type` over the device bytes at `address`.
fn device_child(
    data_type: &DataType,
    len: usize,
    address: u64,
    owner: &Arc<DeviceOwner>,
) -> Result<ArrayData> {
    let (buffers, children) = match data_type {
        DataType::FixedSizeList(field, n) => {
            let values = len.saturating_mul(usize::try_from(*n).unwrap_or(0));
            let child = device_child(field.data_type(), values, address, owner)?;
            (vec![], vec![child])
        }
        _ => {
            let bytes = row_width(data_type)
                .map_err(Error::Unsupported)?
                .saturating_mul(len);
            let ptr = NonNull::new(address as usize as *mut u8)
                .ok_or_else(|| Error::Internal("a device batch at address 0".into()))?;
            let owner: Arc<dyn arrow_buffer::alloc::Allocation> = owner.clone();
            // SAFETY: `bytes` bytes at `ptr` are the column's placement in the batch's device
            // memory (checked against the placement's length by the caller), kept alive by
            // `owner`. The buffer is only ever exported by pointer, never read here.
            let buffer = unsafe { Buffer::from_custom_allocation(ptr, bytes, owner) };
            (vec![buffer], vec![])
        }
    };
    let builder = ArrayData::builder(data_type.clone())
        .len(len)
        .buffers(buffers)
        .child_data(children);
    // SAFETY: the layout was built for `data_type` (one data buffer of `len` rows for fixed-width
    // types, one values child for fixed-size lists, no nulls). `build` would validate the
    // buffers' contents, which live on the device and must not be read from the host.
    Ok(unsafe { builder.build_unchecked() })
}

/// The positions of the columns to export: every column for `None`, else each named one (the
/// first of that name).
///
/// On failure: [`Error::InvalidArgument`] for a name the schema does not have (listing its
/// columns).
pub fn selected_columns(schema: &Schema, names: Option<&[&str]>) -> Result<Vec<usize>> {
    let Some(names) = names else {
        return Ok((0..schema.fields().len()).collect());
    };
    names
        .iter()
        .map(|name| {
            schema.index_of(name).map_err(|_| {
                let all: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                Error::InvalidArgument(format!(
                    "no column named `{name}` in the batch (its columns: {})",
                    all.join(", ")
                ))
            })
        })
        .collect()
}

/// Exports `batch` (the columns named in `columns`, all of them for `None`) as a struct array
/// on the engine's device, for a consumer on `stream`, with the schema of the exported columns.
///
/// `stream` follows the DLPack stream rules: [`ConsumerStream::NoSync`] leaves synchronisation
/// to the consumer (it waits on `sync_event` and releases the array only once its own work on
/// the data finished); any other stream is made to wait for the copy now, and the device memory
/// is reused only after the point on that stream where the array was released.
///
/// On failure: [`Error::InvalidArgument`] for an unknown column name; [`Error::Unsupported`]
/// naming every selected column that is not on the device or has no Arrow layout there. Nothing
/// is waited on or held then.
pub fn export_device_array<E: ArrowSyncEvent>(
    batch: &DeviceColumns<E>,
    columns: Option<&[&str]>,
    stream: ConsumerStream,
) -> Result<(ArrowDeviceArray, FFI_ArrowSchema)> {
    let host_schema = batch.host().data.schema();
    let indices = selected_columns(&host_schema, columns)?;
    let mut placed = Vec::with_capacity(indices.len());
    let mut refused = Vec::new();
    for &index in &indices {
        let field = host_schema.field(index);
        match batch.columns().get(index) {
            Some(StagedColumn::Placed(placement)) => match row_width(field.data_type()) {
                Ok(width) if width.checked_mul(batch.host().num_rows()) == Some(placement.len) => {
                    placed.push((field.clone(), placement.offset))
                }
                Ok(_) => refused.push(format!(
                    "`{}` (its device bytes do not match its type {})",
                    field.name(),
                    field.data_type()
                )),
                Err(reason) => refused.push(format!("`{}` ({reason})", field.name())),
            },
            Some(StagedColumn::NotATensor { reason, .. }) => {
                refused.push(format!("`{}` (not on the device: {reason})", field.name()))
            }
            None => refused.push(format!("`{}` (not staged)", field.name())),
        }
    }
    if !refused.is_empty() {
        return Err(Error::Unsupported(format!(
            "batch {} cannot be exported as an Arrow device array: {}; export the other columns \
             by name",
            batch.host().index,
            refused.join(", ")
        )));
    }
    let fields: Fields = placed
        .iter()
        .map(|(f, _)| f.clone())
        .collect::<Vec<Field>>()
        .into();
    let schema = export_schema(&Schema::new(fields.clone()))?;
    let (base, sync, hold) = batch.export_hold(stream, |engine, event| engine.sync_event(event))?;
    let owner = Arc::new(DeviceOwner {
        _hold: Mutex::new(hold),
        sync_event: Box::new(sync.unwrap_or(0)),
    });
    let rows = batch.host().num_rows();
    let children = placed
        .iter()
        .map(|(field, offset)| device_child(field.data_type(), rows, base + *offset as u64, &owner))
        .collect::<Result<Vec<_>>>()?;
    // SAFETY: a struct of `rows` rows whose children were built with `rows` rows each, no nulls.
    let data = unsafe {
        ArrayData::builder(DataType::Struct(fields))
            .len(rows)
            .child_data(children)
            .build_unchecked()
    };
    // Without a child nothing keeps `owner` (and its event storage) alive: no event then, and
    // nothing on the device to wait for.
    let sync_event = match sync {
        Some(_) if !placed.is_empty() => &*owner.sync_event as *const usize as *mut c_void,
        _ => std::ptr::null_mut(),
    };
    let array = ArrowDeviceArray {
        array: FFI_ArrowArray::new(&data),
        device_id: i64::from(batch.ordinal()),
        device_type: E::DEVICE_TYPE,
        sync_event,
        reserved: [0; 3],
    };
    Ok((array, schema))
}
