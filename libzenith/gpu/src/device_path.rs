//! The loader's device path: host batches staged into the slot ring, copied to device memory,
//! and handed over as device tensors (DLPack `kDLCUDA`) that wait on the copy's event on the
//! consumer's stream and, when released, keep the memory from reuse until the consumer's stream
//! passed its last use.
//!
//! Generic over the [`CopyEngine`]: the CUDA engine in production, the host engine in CI, so
//! staging, ordering, placement and the release rules are tested everywhere.
//!
//! No extra host copy where the batch is already pinned: with [`DevicePath::set_pinned_ranges`]
//! (the loader's batch pool over pinned memory, [`crate::pinned::pinned_batch_allocator`]), a
//! tensor column whose bytes lie in a pinned block is copied straight from the batch's buffer
//! into its place in device memory, and the ring keeps the buffer alive until the copy finished.
//! Other columns (zero-copy slices of mapped files, the heap, booleans the export converts) are
//! staged: copied into the slot's pinned memory first, so no asynchronous copy ever reads
//! pageable memory. [`crate::ring::RingStats`] counts both (`direct_bytes`, `staged_bytes`).
//!
//! Device buffers are sized before the first batch when the loader's schema and batch size are
//! known ([`DevicePath::set_batch_shape`]: every tensor form is fixed-width, so the largest batch
//! is known exactly); a batch larger than that (a stage that adds rows), or than the first batch
//! without a shape, grows the buffer it lands in.

use std::collections::VecDeque;
use std::ffi::c_void;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zenith_core::batch::dlpack::{DLDataType, DLDevice, DlpackTensor, TensorMemory};
use zenith_core::batch::{Batch, export_column};
use zenith_core::{Error, Result};

use arrow_schema::Schema;
use zenith_core::batch::dlpack::tensor_row_bytes;

use crate::dlpack_stream::ConsumerStream;
use crate::pinned_ranges::PinnedRanges;
use crate::ring::{
    CopyEngine, DeviceBatch, HostSource, RingConfig, RingError, RingStats, SlotRing, SubmitRange,
};

/// Columns start at multiples of this many bytes in a slot (and so in device memory): what
/// CUDA kernels and cuBLAS expect of tensor bases.
pub const COLUMN_ALIGN: usize = 256;

/// Where one column of a batch sits in its slot.
#[derive(Debug, Clone)]
pub struct ColumnPlacement {
    /// The column's name.
    pub name: String,
    /// Byte offset in the slot (a multiple of [`COLUMN_ALIGN`]).
    pub offset: usize,
    /// Bytes.
    pub len: usize,
    /// The tensor's extents, rows first.
    pub shape: Vec<i64>,
    /// The element type.
    pub dtype: DLDataType,
}

/// A column of a batch: on the device, or why it has no tensor form there.
#[derive(Debug, Clone)]
pub enum StagedColumn {
    /// Copied to the device.
    Placed(ColumnPlacement),
    /// Not a tensor (strings, nulls, ...): the reason, as the host export gave it.
    NotATensor {
        /// The column's name.
        name: String,
        /// Why it has no tensor form.
        reason: String,
    },
}

fn align_up(n: usize) -> Option<usize> {
    n.checked_add(COLUMN_ALIGN - 1)
        .map(|n| n / COLUMN_ALIGN * COLUMN_ALIGN)
}

/// Each column of `batch` with its host tensor, or why it has none.
fn host_tensors(batch: &Batch) -> impl Iterator<Item = (String, Result<DlpackTensor>)> + '_ {
    let schema = batch.data.schema();
    (0..batch.data.num_columns()).map(move |i| {
        let name = schema.field(i).name().clone();
        let tensor = export_column(&name, batch.data.column(i).as_ref());
        (name, tensor)
    })
}

/// A column's place in device memory, with its host tensor to copy from.
struct PlacedColumn {
    placement: ColumnPlacement,
    tensor: DlpackTensor,
}

/// Where `batch`'s columns go in device memory (each tensor column at the next
/// [`COLUMN_ALIGN`] boundary), their host tensors, and the bytes the batch needs.
fn place_columns(batch: &Batch) -> Result<(Vec<StagedColumn>, Vec<PlacedColumn>, usize)> {
    let too_large =
        || Error::InvalidArgument(format!("batch {} is too large to stage", batch.index));
    let mut columns = Vec::with_capacity(batch.data.num_columns());
    let mut placed = Vec::with_capacity(batch.data.num_columns());
    let mut end = 0usize;
    for (name, tensor) in host_tensors(batch) {
        let tensor = match tensor {
            Ok(tensor) => tensor,
            Err(error) => {
                columns.push(StagedColumn::NotATensor {
                    name,
                    reason: error.to_string(),
                });
                continue;
            }
        };
        let len = tensor.bytes().len();
        let offset = align_up(end).ok_or_else(too_large)?;
        end = offset.checked_add(len).ok_or_else(too_large)?;
        let placement = ColumnPlacement {
            name,
            offset,
            len,
            shape: tensor.shape().to_vec(),
            dtype: tensor.dtype(),
        };
        columns.push(StagedColumn::Placed(placement.clone()));
        placed.push(PlacedColumn { placement, tensor });
    }
    Ok((columns, placed, end))
}

/// The bytes a device buffer needs for `batch`'s tensor columns, aligned as the device path
/// places them.
pub fn staged_size(batch: &Batch) -> Result<usize> {
    let (_, _, end) = place_columns(batch)?;
    align_up(end.max(1)).ok_or_else(|| Error::InvalidArgument("a batch too large to stage".into()))
}

/// The most bytes a batch of at most `rows` rows of `schema` needs in device memory: every
/// tensor form is fixed-width ([`tensor_row_bytes`]), so this is exact for a batch of `rows`
/// rows whose columns all export (a column with nulls is not copied and needs less). `None` on
/// overflow.
pub fn batch_bound(schema: &Schema, rows: usize) -> Option<usize> {
    let mut end = 0usize;
    for field in schema.fields() {
        if let Some(row_bytes) = tensor_row_bytes(field.data_type()) {
            end = align_up(end)?.checked_add(rows.checked_mul(row_bytes)?)?;
        }
    }
    align_up(end.max(1))
}

fn ring_error(error: RingError) -> Error {
    match error {
        RingError::Failed(error) => error,
        deadline @ RingError::Deadline(_) => Error::Internal(format!(
            "device path: {deadline} (the consumer holds every device buffer, or the device \
             stopped copying)"
        )),
    }
}

/// The device path of one loader: it places batches in device memory (straight from pinned
/// buffers, or through a staging slot), keeps up to `depth` copies in flight and hands out the
/// oldest.
pub struct DevicePath<E: CopyEngine> {
    /// The engine until the first batch creates the ring; then the ring owns it.
    engine: Option<E>,
    ring: Option<SlotRing<E>>,
    slots: usize,
    ordinal: u32,
    deadline: Duration,
    /// Host memory columns may be copied from directly (the loader's pinned batch pool).
    pinned: Option<Arc<PinnedRanges>>,
    /// The bytes of the largest batch, known from the schema and batch size.
    bound: Option<usize>,
    /// Host batches submitted and not yet handed out, with where their columns went.
    pending: VecDeque<(Batch, Vec<StagedColumn>)>,
}

impl<E: CopyEngine> DevicePath<E> {
    /// A device path over `engine` (of device `ordinal`) with `slots` staging slots (at least
    /// [`crate::ring::MIN_SLOTS`]); every wait gives up after `deadline`.
    pub fn new(engine: E, ordinal: u32, slots: usize, deadline: Duration) -> Result<Self> {
        if slots < crate::ring::MIN_SLOTS {
            return Err(Error::InvalidArgument(format!(
                "the device path needs at least {} slots, not {slots}",
                crate::ring::MIN_SLOTS
            )));
        }
        Ok(DevicePath {
            engine: Some(engine),
            ring: None,
            slots,
            ordinal,
            deadline,
            pinned: None,
            bound: None,
            pending: VecDeque::new(),
        })
    }

    /// Columns whose bytes lie in `ranges` (pinned blocks the batches were gathered into) are
    /// copied straight from the batch, not staged. Takes effect for the next batch.
    pub fn set_pinned_ranges(&mut self, ranges: Arc<PinnedRanges>) {
        self.pinned = Some(ranges);
    }

    /// Sizes the device buffers for batches of at most `batch_size` rows of `schema`
    /// ([`batch_bound`]) instead of by the first batch. Call before the first batch.
    ///
    /// On failure: [`Error::InvalidArgument`] after the first batch (the ring exists) or when the
    /// size overflows.
    pub fn set_batch_shape(&mut self, schema: &Schema, batch_size: usize) -> Result<()> {
        if self.ring.is_some() {
            return Err(Error::InvalidArgument(
                "the device path's buffers are sized before its first batch".into(),
            ));
        }
        let bound = batch_bound(schema, batch_size).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "batches of {batch_size} rows of this schema are too large for a device buffer"
            ))
        })?;
        self.bound = Some(bound);
        Ok(())
    }

    /// The device's ordinal.
    pub fn ordinal(&self) -> u32 {
        self.ordinal
    }

    /// How many batches to keep submitted ahead of the consumer: every slot but the one the
    /// consumer holds.
    pub fn depth(&self) -> usize {
        self.slots - 1
    }

    /// Batches submitted and not yet handed out.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// The ring's counters (zero before the first batch).
    pub fn stats(&self) -> RingStats {
        self.ring.as_ref().map(|r| r.stats()).unwrap_or_default()
    }

    /// The ring's shape (`None` before the first batch).
    pub fn ring_config(&self) -> Option<RingConfig> {
        self.ring.as_ref().map(|r| r.config())
    }

    /// The ring, created for a first batch of `len` bytes: device buffers of the schema's bound
    /// when known, else of that batch; staging memory up front unless columns are expected to
    /// be copied from pinned batches (then each slot grows to what it stages).
    fn ring_for(&mut self, len: usize) -> Result<&SlotRing<E>> {
        if self.ring.is_none() {
            let engine = self
                .engine
                .take()
                .ok_or_else(|| Error::Internal("device path without an engine".into()))?;
            let device_bytes = self
                .bound
                .unwrap_or(0)
                .max(align_up(len).unwrap_or(len))
                .max(COLUMN_ALIGN);
            let mut config = RingConfig::new(self.slots, device_bytes);
            if self.pinned.is_some() {
                config.staging_bytes = 0;
            }
            self.ring = Some(SlotRing::new(engine, config)?);
        }
        self.ring
            .as_ref()
            .ok_or_else(|| Error::Internal("device path without a ring".into()))
    }

    /// Starts copying `batch`'s tensor columns to the device: pinned columns straight from the
    /// batch, the others through a staging slot.
    pub fn push(&mut self, batch: Batch) -> Result<()> {
        let deadline = Instant::now() + self.deadline;
        let (columns, placed, len) = place_columns(&batch)?;
        let pinned = self.pinned.clone();
        let is_pinned = |bytes: &[u8]| {
            pinned
                .as_ref()
                .is_some_and(|p| p.contains(bytes.as_ptr(), bytes.len()))
        };
        let ring = self.ring_for(len)?;
        let mut slot = ring.acquire(deadline).map_err(ring_error)?;
        // Staged columns sit at their device offsets in the slot: the copies of neighbouring
        // staged columns merge into one.
        let staged_end = placed
            .iter()
            .filter(|c| !is_pinned(c.tensor.bytes()))
            .map(|c| c.placement.offset + c.placement.len)
            .max()
            .unwrap_or(0);
        slot.reserve(staged_end)?;
        let mut ranges = Vec::with_capacity(placed.len());
        for PlacedColumn { placement, tensor } in placed {
            let bytes = tensor.bytes();
            let (ptr, len, offset) = (bytes.as_ptr(), bytes.len(), placement.offset);
            if len == 0 {
                continue;
            }
            if is_pinned(bytes) {
                // SAFETY: the bytes are the tensor's view of a buffer the tensor keeps alive
                // (Arrow buffers are immutable while shared), in a pinned block.
                let source = unsafe { HostSource::new(ptr, len, Box::new(tensor)) };
                ranges.push(SubmitRange::host(source, offset));
            } else {
                let target = slot.bytes().get_mut(offset..offset + len).ok_or_else(|| {
                    Error::Internal(format!("column `{}` past its staging slot", placement.name))
                })?;
                target.copy_from_slice(bytes);
                ranges.push(SubmitRange::staged(offset, len, offset));
            }
        }
        ring.submit_ranges(slot, ranges, deadline)
            .map_err(ring_error)?;
        self.pending.push_back((batch, columns));
        Ok(())
    }

    /// Submits batches from `next` (a loader's `next_batch`) until [`DevicePath::depth`] copies
    /// are in flight or `next` has no more: the copies of the batches ahead overlap the
    /// consumer's work.
    pub fn fill(&mut self, mut next: impl FnMut() -> Result<Option<Batch>>) -> Result<()> {
        while self.in_flight() < self.depth() {
            match next()? {
                Some(batch) => self.push(batch)?,
                None => break,
            }
        }
        Ok(())
    }

    /// The oldest submitted batch once its copy finished; `None` when nothing is in flight.
    pub fn pop(&mut self) -> Result<Option<DeviceColumns<E>>> {
        let Some(ring) = self.ring.as_ref() else {
            return Ok(None);
        };
        if self.pending.is_empty() {
            return Ok(None);
        }
        let batch = ring
            .next(Instant::now() + self.deadline)
            .map_err(ring_error)?;
        let (host, columns) = self
            .pending
            .pop_front()
            .ok_or_else(|| Error::Internal("device path out of step with its ring".into()))?;
        Ok(Some(DeviceColumns {
            host,
            columns,
            ordinal: self.ordinal,
            memory: Arc::new(HeldMemory {
                batch: Mutex::new(Some(batch)),
                markers: Mutex::new(Vec::new()),
            }),
        }))
    }
}

/// The device memory of one delivered batch, shared by its tensors; returned to the ring when the
/// last tensor and the batch are gone, ordered after the consumers' release markers.
struct HeldMemory<E: CopyEngine> {
    batch: Mutex<Option<DeviceBatch<E>>>,
    markers: Mutex<Vec<E::Event>>,
}

impl<E: CopyEngine> Drop for HeldMemory<E> {
    fn drop(&mut self) {
        let batch = self
            .batch
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let markers = std::mem::take(self.markers.get_mut().unwrap_or_else(|p| p.into_inner()));
        if let Some(batch) = batch {
            batch.release_after(markers);
        }
    }
}

/// What one device tensor keeps alive: the batch's memory, and the consumer stream to mark when
/// the consumer deletes the tensor.
struct TensorHold<E: CopyEngine> {
    memory: Arc<HeldMemory<E>>,
    stream: ConsumerStream,
}

impl<E: CopyEngine> Drop for TensorHold<E> {
    fn drop(&mut self) {
        let guard = self.memory.batch.lock().unwrap_or_else(|p| p.into_inner());
        let Some(batch) = guard.as_ref() else {
            return;
        };
        // The consumer's kernels queued on its stream so far may still read the tensor: mark
        // that point, so the memory is reused only after it. Failing to record (a destroyed
        // stream) leaves the reuse ordered by the copy stream alone, as without a stream.
        if let Ok(Some(marker)) = batch.engine().record_release(self.stream) {
            drop(guard);
            self.memory
                .markers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(marker);
        }
    }
}

/// A batch delivered on the device: its host form (row count, Arrow export of the host copy)
/// and its tensor columns in device memory.
pub struct DeviceColumns<E: CopyEngine> {
    host: Batch,
    columns: Vec<StagedColumn>,
    ordinal: u32,
    memory: Arc<HeldMemory<E>>,
}

impl<E: CopyEngine> DeviceColumns<E> {
    /// What every export of the batch (a DLPack tensor, an Arrow device array) starts with:
    /// makes work the consumer queues on `stream` wait for the copy, runs `with_event` on the
    /// engine and the copy's event (the Arrow export takes its `sync_event` there), and returns
    /// the device address of the batch's first byte, `with_event`'s result, and the hold that
    /// keeps the device memory from reuse until dropped (then marking `stream`, like a DLPack
    /// tensor's deleter).
    pub fn export_hold<T>(
        &self,
        stream: ConsumerStream,
        with_event: impl FnOnce(&E, &E::Event) -> Result<T>,
    ) -> Result<(u64, T, Box<dyn Send + Sync>)> {
        let (base, value) = {
            let guard = self.memory.batch.lock().unwrap_or_else(|p| p.into_inner());
            let batch = guard
                .as_ref()
                .ok_or_else(|| Error::Internal("device batch already released".into()))?;
            batch.engine().consumer_wait(batch.event(), stream)?;
            let value = with_event(batch.engine(), batch.event())?;
            (E::device_address(batch.device()), value)
        };
        let hold: Box<dyn Send + Sync> = Box::new(Mutex::new(TensorHold {
            memory: Arc::clone(&self.memory),
            stream,
        }));
        Ok((base, value, hold))
    }

    /// The batch as delivered on the host.
    pub fn host(&self) -> &Batch {
        &self.host
    }

    /// Where each column went.
    pub fn columns(&self) -> &[StagedColumn] {
        &self.columns
    }

    /// The device's ordinal.
    pub fn ordinal(&self) -> u32 {
        self.ordinal
    }

    /// The column `name` as a tensor in device memory, for a consumer on `stream`: work the
    /// consumer queues on `stream` after this call waits for the copy, and the memory is reused
    /// only after the point on `stream` where the consumer deleted the tensor.
    ///
    /// On failure: [`Error::InvalidArgument`] for an unknown column (naming the columns) or a
    /// column without a tensor form (the reason).
    pub fn column_dlpack(&self, name: &str, stream: ConsumerStream) -> Result<DlpackTensor> {
        let column = self
            .columns
            .iter()
            .find(|c| match c {
                StagedColumn::Placed(p) => p.name == name,
                StagedColumn::NotATensor { name: n, .. } => n == name,
            })
            .ok_or_else(|| {
                let names: Vec<&str> = self
                    .columns
                    .iter()
                    .map(|c| match c {
                        StagedColumn::Placed(p) => p.name.as_str(),
                        StagedColumn::NotATensor { name, .. } => name.as_str(),
                    })
                    .collect();
                Error::InvalidArgument(format!(
                    "no column named `{name}` in the batch (its columns: {})",
                    names.join(", ")
                ))
            })?;
        let placement = match column {
            StagedColumn::Placed(placement) => placement,
            StagedColumn::NotATensor { reason, .. } => {
                return Err(Error::InvalidArgument(format!(
                    "column `{name}` is not on the device: {reason}"
                )));
            }
        };
        let (base, (), hold) = self.export_hold(stream, |_, _| Ok(()))?;
        let address = base + placement.offset as u64;
        DlpackTensor::from_parts(
            DLDevice {
                device_type: E::DEVICE_TYPE,
                device_id: self.ordinal as i32,
            },
            placement.shape.clone(),
            placement.dtype,
            0,
            Some(TensorMemory::Owned(hold)),
            address as *mut c_void,
        )
    }
}
