//! The loader's device path: host batches staged into the slot ring, copied to device memory,
//! and handed over as device tensors (DLPack `kDLCUDA`) that wait on the copy's event on the
//! consumer's stream and, when released, keep the memory from reuse until the consumer's stream
//! passed its last use.
//!
//! Generic over the [`CopyEngine`]: the CUDA engine in production, the host engine in CI, so
//! staging, ordering, placement and the release rules are tested everywhere.
//!
//! Staging is one place, [`stage_batch`]: today it copies each delivered host batch's tensor
//! columns into the pinned slot (one extra host copy). Once the gather kernel gathers straight
//! into a caller-given buffer, that function is the only one to change.

use std::collections::VecDeque;
use std::ffi::c_void;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zenith_core::batch::dlpack::{DLDataType, DLDevice, DlpackTensor, TensorMemory};
use zenith_core::batch::{Batch, export_column};
use zenith_core::{Error, Result};

use crate::dlpack_stream::ConsumerStream;
use crate::ring::{CopyEngine, DeviceBatch, RingConfig, RingError, SlotRing};

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

/// The bytes a slot needs for `batch`'s tensor columns, aligned as [`stage_batch`] places them.
pub fn staged_size(batch: &Batch) -> Result<usize> {
    let mut size = 0usize;
    for (_, tensor) in host_tensors(batch) {
        if let Ok(tensor) = tensor {
            size = align_up(size)
                .and_then(|s| s.checked_add(tensor.bytes().len()))
                .ok_or_else(|| Error::InvalidArgument("a batch too large to stage".into()))?;
        }
    }
    Ok(align_up(size.max(1)).unwrap_or(usize::MAX))
}

/// Copies `batch`'s tensor columns into `slot`, each at the next [`COLUMN_ALIGN`] boundary, and
/// says where each column went. The one place that stages: gathering straight into the slot
/// replaces its copy.
///
/// On failure: [`Error::InvalidArgument`] when the columns do not fit the slot (a batch larger
/// than the first one, which sized the ring).
pub fn stage_batch(batch: &Batch, slot: &mut [u8]) -> Result<(Vec<StagedColumn>, usize)> {
    let mut columns = Vec::with_capacity(batch.data.num_columns());
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
        let bytes = tensor.bytes();
        let offset = align_up(end).unwrap_or(usize::MAX);
        let Some(target) = offset
            .checked_add(bytes.len())
            .and_then(|stop| slot.get_mut(offset..stop))
        else {
            return Err(Error::InvalidArgument(format!(
                "batch {} does not fit its device slot of {} bytes (column `{name}` ends past \
                 it); batches after the first may not be larger than the first",
                batch.index,
                slot.len()
            )));
        };
        target.copy_from_slice(bytes);
        end = offset + bytes.len();
        columns.push(StagedColumn::Placed(ColumnPlacement {
            name,
            offset,
            len: bytes.len(),
            shape: tensor.shape().to_vec(),
            dtype: tensor.dtype(),
        }));
    }
    Ok((columns, end))
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

/// The device path of one loader: it stages batches, keeps up to `depth` copies in flight and
/// hands out the oldest.
pub struct DevicePath<E: CopyEngine> {
    /// The engine until the first batch sizes the ring; then the ring owns it.
    engine: Option<E>,
    ring: Option<SlotRing<E>>,
    slots: usize,
    ordinal: u32,
    deadline: Duration,
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
            pending: VecDeque::new(),
        })
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
    pub fn stats(&self) -> crate::ring::RingStats {
        self.ring.as_ref().map(|r| r.stats()).unwrap_or_default()
    }

    fn ring_for(&mut self, batch: &Batch) -> Result<&SlotRing<E>> {
        if self.ring.is_none() {
            let engine = self
                .engine
                .take()
                .ok_or_else(|| Error::Internal("device path without an engine".into()))?;
            let config = RingConfig::new(self.slots, staged_size(batch)?);
            self.ring = Some(SlotRing::new(engine, config)?);
        }
        self.ring
            .as_ref()
            .ok_or_else(|| Error::Internal("device path without a ring".into()))
    }

    /// Stages `batch` and starts its copy to the device.
    pub fn push(&mut self, batch: Batch) -> Result<()> {
        let deadline = Instant::now() + self.deadline;
        let ring = self.ring_for(&batch)?;
        let mut slot = ring.acquire(deadline).map_err(ring_error)?;
        let (columns, len) = stage_batch(&batch, slot.bytes())?;
        ring.submit(slot, len, deadline).map_err(ring_error)?;
        self.pending.push_back((batch, columns));
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
