//! DLPack export of one column of a batch, as a `DLManagedTensorVersioned` (DLPack 1.x).
//!
//! What a column becomes:
//!
//! | Arrow type                              | tensor                                   |
//! | --------------------------------------- | ---------------------------------------- |
//! | int8..64, uint8..64, float16/32/64      | 1-D `[rows]` of the same type            |
//! | bool (bit-packed)                       | 1-D `[rows]` of `kDLBool` bytes (a copy) |
//! | fixed_size_binary(w)                    | 2-D `[rows, w]` uint8                    |
//! | fixed_size_list(T, n)                   | `[rows, n, ...]`: T's tensor, one more dimension per list level |
//!
//! Zero copy where the buffer allows: the tensor's data pointer points into the column's Arrow
//! values buffer (which may be a mapping of the file), at the first element of the column's
//! slice, and the tensor holds a reference to that buffer until the consumer calls its
//! `deleter`, so it outlives the batch, the loader and the mapping's other users. Such tensors
//! are flagged `DLPACK_FLAG_BITMASK_READ_ONLY`: the memory is shared with the loader (its cached
//! record batches, later epochs, other exports of the same rows), so a consumer must not write
//! to it. A consumer that writes anyway (torch ignores the flag: `x.mul_(2)`) does not crash and
//! does not touch the file: files are mapped private and writable (copy-on-write, see
//! `runtime::io::mmap::map_file`), so the write lands in this process's copy of the page. It is
//! still seen by everything else sharing those rows, later epochs of the loader included: copy
//! first (`x.clone()`) to modify a batch. One copy is made, into a fresh buffer the tensor
//! owns (flagged `DLPACK_FLAG_BITMASK_IS_COPIED`, writable), when the elements are bit-packed
//! (bool) or when the buffer is not aligned for the element type (DLPack consumers dereference
//! typed pointers). A column with a null anywhere in the exported range, list values included,
//! is an error: a tensor has no validity mask, and silently exporting whatever bytes sit under a
//! null would be wrong data.
//!
//! The tensor itself is device-neutral: it carries its [`DLDevice`] (type and id) and keeps
//! whatever owns its memory alive ([`TensorMemory`]): a host Arrow buffer here, device memory
//! for the GPU runtime, which builds its tensors with [`DlpackTensor::from_parts`]. Host-side
//! accessors ([`DlpackTensor::bytes`]) refuse tensors whose memory the CPU cannot read.
//!
//! The `#[repr(C)]` structs below mirror `dlpack/dlpack.h` (DLPack 1.1); the header's prelude
//! carries the canonical C definitions (libzenith/ffi/cbindgen.toml) and tests/abi checks that both
//! lay out the same. Enumerations are plain integers here: C may hand us any value.

use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;

use arrow_array::Array;
use arrow_buffer::{BooleanBuffer, Buffer, MutableBuffer};
use arrow_data::ArrayData;
use arrow_schema::DataType;

use crate::error::{Error, Result};

/// The DLPack major version these definitions implement (`DLPACK_MAJOR_VERSION`).
pub const DLPACK_MAJOR_VERSION: u32 = 1;
/// The DLPack minor version these definitions implement (`DLPACK_MINOR_VERSION`).
pub const DLPACK_MINOR_VERSION: u32 = 1;

/// `DLPACK_FLAG_BITMASK_READ_ONLY`: the consumer must not write through the data pointer (zero-copy
/// tensors share their memory with the loader; see the module docs for what a write does).
pub const DLPACK_FLAG_BITMASK_READ_ONLY: u64 = 1 << 0;
/// `DLPACK_FLAG_BITMASK_IS_COPIED`: the data is a copy the tensor alone owns.
pub const DLPACK_FLAG_BITMASK_IS_COPIED: u64 = 1 << 1;
/// `DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED`: sub-byte elements are padded (never set here).
pub const DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED: u64 = 1 << 2;

/// `kDLCPU`, the `DLDeviceType` of host memory, where the columns of host batches live.
pub const DEVICE_TYPE_CPU: i32 = 1;
/// `kDLCUDA`: CUDA device memory.
pub const DEVICE_TYPE_CUDA: i32 = 2;
/// `kDLCUDAHost`: pinned host memory that CUDA copies from (the CPU reads it too).
pub const DEVICE_TYPE_CUDA_HOST: i32 = 3;

/// `kDLInt`: signed integer (`DLDataType::code`).
pub const TYPE_CODE_INT: u8 = 0;
/// `kDLUInt`: unsigned integer.
pub const TYPE_CODE_UINT: u8 = 1;
/// `kDLFloat`: IEEE floating point.
pub const TYPE_CODE_FLOAT: u8 = 2;
/// `kDLBool`: boolean, one byte per element holding 0 or 1.
pub const TYPE_CODE_BOOL: u8 = 6;

/// `DLPackVersion`: the version of the ABI a managed tensor follows.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DLPackVersion {
    /// Major version; a consumer that does not know it may only call the deleter.
    pub major: u32,
    /// Minor version; newer minors only add enumeration values.
    pub minor: u32,
}

/// `DLDevice`: where the data lives.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DLDevice {
    /// A `DLDeviceType` value (`kDLCPU` = 1, ...); an `int`-sized C enum.
    pub device_type: i32,
    /// The device index; 0 for host memory.
    pub device_id: i32,
}

/// `DLDataType`: the element type.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DLDataType {
    /// A `DLDataTypeCode` value (`kDLInt`, `kDLUInt`, `kDLFloat`, `kDLBool`, ...).
    pub code: u8,
    /// Bits per element (8, 16, 32, 64).
    pub bits: u8,
    /// Vector lanes per element; always 1 here.
    pub lanes: u16,
}

/// `DLTensor`: a strided view of memory; it does not own anything.
#[repr(C)]
#[derive(Debug)]
pub struct DLTensor {
    /// The first element (plus `byte_offset`); NULL when the tensor has no elements.
    pub data: *mut c_void,
    /// Where `data` lives.
    pub device: DLDevice,
    /// Number of dimensions (the length of `shape` and `strides`).
    pub ndim: i32,
    /// The element type.
    pub dtype: DLDataType,
    /// `ndim` extents.
    pub shape: *mut i64,
    /// `ndim` strides, in elements (not bytes); DLPack ≥ 1.2 requires them when `ndim != 0`.
    pub strides: *mut i64,
    /// Bytes from `data` to the first element.
    pub byte_offset: u64,
}

/// `DLManagedTensor`: the legacy (pre-1.0, unversioned) managed tensor.
///
/// Zenith never produces it; it is declared because `dlpack.h` declares it, so that a program
/// that includes `zenith.h` before `dlpack/dlpack.h` still finds it, and tests/abi checks its
/// layout like every other struct of the header.
#[repr(C)]
#[derive(Debug)]
pub struct DLManagedTensor {
    /// The tensor.
    pub dl_tensor: DLTensor,
    /// The producer's context.
    pub manager_ctx: *mut c_void,
    /// Frees the tensor and its context; called once by the consumer.
    pub deleter: Option<unsafe extern "C" fn(*mut DLManagedTensor)>,
}

/// `DLManagedTensorVersioned`: a tensor plus what frees it, the DLPack 1.x exchange struct.
#[repr(C)]
#[derive(Debug)]
pub struct DLManagedTensorVersioned {
    /// The ABI version this struct follows.
    pub version: DLPackVersion,
    /// The producer's context (for Zenith: what owns the memory, shape and strides).
    pub manager_ctx: *mut c_void,
    /// Frees the tensor, its context and the struct itself; called exactly once by the consumer.
    pub deleter: Option<unsafe extern "C" fn(*mut DLManagedTensorVersioned)>,
    /// `DLPACK_FLAG_BITMASK_*` bits.
    pub flags: u64,
    /// The tensor.
    pub dl_tensor: DLTensor,
}

/// What keeps a tensor's memory alive until the consumer calls its deleter.
pub enum TensorMemory {
    /// Host memory: an Arrow buffer (shared with a column, or a copy).
    Host(Buffer),
    /// Memory another part of Zenith manages (device memory, pinned staging): dropped when the
    /// tensor is deleted, which returns the memory to its owner.
    Owned(Box<dyn Send + Sync>),
}

impl std::fmt::Debug for TensorMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TensorMemory::Host(buffer) => write!(f, "Host({} bytes)", buffer.len()),
            TensorMemory::Owned(_) => f.write_str("Owned(..)"),
        }
    }
}

/// A DLPack tensor of one column, owned on the Rust side until [`DlpackTensor::into_raw`] hands
/// it to a consumer. Dropping it frees it (and releases the column's buffer).
#[derive(Debug)]
pub struct DlpackTensor {
    /// A leaked `Box<Holder>`, reclaimed by `Drop` or by the C deleter. It is a raw pointer from
    /// the start, so the pointers the C view holds into it (`manager_ctx`, `shape`, `strides`)
    /// are all derived from it and stay valid however the handle moves.
    holder: NonNull<Holder>,
}

// SAFETY: the holder is owned by this handle alone; what it owns (`Buffer`, boxed slices) is
// `Send`, and its raw pointers only point into that owned memory.
unsafe impl Send for DlpackTensor {}

impl Drop for DlpackTensor {
    fn drop(&mut self) {
        // SAFETY: `holder` came from `Box::leak` in `new` and was not handed out (`into_raw`
        // skips this drop), so it is reclaimed exactly once.
        drop(unsafe { Box::from_raw(self.holder.as_ptr()) });
    }
}

/// Everything a tensor needs to stay valid, in one allocation that `manager_ctx` points to.
#[derive(Debug)]
struct Holder {
    managed: DLManagedTensorVersioned,
    // Boxed slices: the tensor points into their heap storage, which never moves.
    shape: Box<[i64]>,
    strides: Box<[i64]>,
    /// The memory `data` points into: a clone of the column's Arrow buffer (zero copy), the
    /// copy, or device memory. `None` only for tensors without elements.
    owner: Option<TensorMemory>,
}

impl DlpackTensor {
    fn holder(&self) -> &Holder {
        // SAFETY: the holder lives until this handle is dropped or given away by `into_raw`.
        unsafe { self.holder.as_ref() }
    }

    /// The extents, outermost (rows) first.
    pub fn shape(&self) -> &[i64] {
        &self.holder().shape
    }

    /// The strides in elements, outermost first (always compact row-major).
    pub fn strides(&self) -> &[i64] {
        &self.holder().strides
    }

    /// The element type.
    pub fn dtype(&self) -> DLDataType {
        self.holder().managed.dl_tensor.dtype
    }

    /// The `DLPACK_FLAG_BITMASK_*` flags.
    pub fn flags(&self) -> u64 {
        self.holder().managed.flags
    }

    /// The C struct as a consumer sees it (version, context, deleter, flags, tensor).
    pub fn as_managed(&self) -> &DLManagedTensorVersioned {
        &self.holder().managed
    }

    /// Whether the data was copied (bool columns, misaligned buffers) rather than shared.
    pub fn is_copy(&self) -> bool {
        self.flags() & DLPACK_FLAG_BITMASK_IS_COPIED != 0
    }

    /// The C view of the tensor.
    pub fn as_dl_tensor(&self) -> &DLTensor {
        &self.holder().managed.dl_tensor
    }

    /// The host buffer the data lives in (shared with the column, or the copy); `None` when
    /// the tensor is empty or its memory is not an Arrow buffer (device memory).
    pub fn owner(&self) -> Option<&Buffer> {
        match &self.holder().owner {
            Some(TensorMemory::Host(buffer)) => Some(buffer),
            _ => None,
        }
    }

    /// Where the data lives.
    pub fn device(&self) -> DLDevice {
        self.as_dl_tensor().device
    }

    /// The tensor's bytes: `product(shape) * bits / 8` of them, row-major.
    ///
    /// # Panics
    /// For a tensor whose memory the CPU cannot read (a device other than `kDLCPU` or
    /// `kDLCUDAHost`): copy it to the host first.
    pub fn bytes(&self) -> &[u8] {
        let tensor = self.as_dl_tensor();
        assert!(
            matches!(
                tensor.device.device_type,
                DEVICE_TYPE_CPU | DEVICE_TYPE_CUDA_HOST
            ),
            "DlpackTensor::bytes on a tensor in device memory (device type {})",
            tensor.device.device_type
        );
        let count: i64 = self.shape().iter().product();
        let len = count as usize * usize::from(tensor.dtype.bits) / 8;
        if tensor.data.is_null() {
            return &[];
        }
        // SAFETY: `data` points to `len` initialised bytes inside `owner`, which lives as long as
        // `self` (checked against the buffer's length when the tensor was built).
        unsafe { std::slice::from_raw_parts(tensor.data.cast::<u8>(), len) }
    }

    /// Hands the tensor to a C consumer, who must call `(*ptr).deleter(ptr)` exactly once.
    pub fn into_raw(self) -> *mut DLManagedTensorVersioned {
        // From here on the deleter, not `Drop`, frees the holder.
        let this = ManuallyDrop::new(self);
        // SAFETY: the holder is live; `manager_ctx` points to it, so the deleter can reclaim it.
        unsafe { &raw mut (*this.holder.as_ptr()).managed }
    }

    /// Builds a host tensor: `shape` (rows first), element type, and the memory.
    fn new(
        shape: Vec<i64>,
        dtype: DLDataType,
        flags: u64,
        owner: Option<Buffer>,
        data: *mut c_void,
    ) -> Result<Self> {
        let device = DLDevice {
            device_type: DEVICE_TYPE_CPU,
            device_id: 0,
        };
        Self::from_parts(
            device,
            shape,
            dtype,
            flags,
            owner.map(TensorMemory::Host),
            data,
        )
    }

    /// Builds a tensor on any device: compact row-major `shape` (rows first) of `dtype`
    /// elements at `data` on `device`, kept alive by `owner` until the consumer deletes the
    /// tensor. The caller guarantees that `data` points to `product(shape)` elements inside
    /// the memory `owner` keeps alive (or that the tensor is empty and `owner` is `None`).
    pub fn from_parts(
        device: DLDevice,
        shape: Vec<i64>,
        dtype: DLDataType,
        flags: u64,
        owner: Option<TensorMemory>,
        data: *mut c_void,
    ) -> Result<Self> {
        let ndim = i32::try_from(shape.len())
            .map_err(|_| Error::Unsupported("too many tensor dimensions".to_string()))?;
        // Compact row-major: the innermost dimension is contiguous. A zero extent makes the
        // tensor empty; counting it as 1 keeps every stride positive for consumers that check.
        let mut strides = vec![1_i64; shape.len()];
        for k in (0..shape.len().saturating_sub(1)).rev() {
            strides[k] = strides[k + 1] * shape[k + 1].max(1);
        }
        let managed = DLManagedTensorVersioned {
            version: DLPackVersion {
                major: DLPACK_MAJOR_VERSION,
                minor: DLPACK_MINOR_VERSION,
            },
            manager_ctx: std::ptr::null_mut(),
            deleter: Some(delete_tensor),
            flags,
            dl_tensor: DLTensor {
                data,
                device,
                ndim,
                dtype,
                // Set below, once the holder has its final address.
                shape: std::ptr::null_mut(),
                strides: std::ptr::null_mut(),
                byte_offset: 0,
            },
        };
        let holder = NonNull::from(Box::leak(Box::new(Holder {
            managed,
            shape: shape.into_boxed_slice(),
            strides: strides.into_boxed_slice(),
            owner,
        })));
        let raw = holder.as_ptr();
        // SAFETY: `raw` is a fresh, valid allocation that nothing else references; every pointer
        // stored in it is derived from `raw` itself.
        unsafe {
            (*raw).managed.manager_ctx = raw.cast();
            (*raw).managed.dl_tensor.shape = (*raw).shape.as_mut_ptr();
            (*raw).managed.dl_tensor.strides = (*raw).strides.as_mut_ptr();
        }
        Ok(DlpackTensor { holder })
    }
}

/// The `deleter` of every tensor Zenith exports: frees the holder (and with it the reference to
/// the column's buffer, or the copy). NULL is ignored.
///
/// # Safety
/// `tensor` is NULL or came from [`DlpackTensor::into_raw`] and is not used afterwards.
unsafe extern "C" fn delete_tensor(tensor: *mut DLManagedTensorVersioned) {
    if tensor.is_null() {
        return;
    }
    // Dropping buffers does not panic today; if it ever did, the panic must not unwind into the
    // consumer's C frames (that aborts the process), so it is caught and the memory leaks.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: per the contract, `tensor` is the `managed` field of a live `Holder` whose
        // address is in `manager_ctx` (set in `DlpackTensor::new` from the box's raw pointer);
        // the box is rebuilt and dropped once.
        unsafe {
            let holder = (*tensor).manager_ctx.cast::<Holder>();
            if !holder.is_null() {
                drop(Box::from_raw(holder));
            }
        }
    }));
}

/// Where the tensor's elements are in the column.
enum Elements {
    /// `len` bytes at `start` in `buffer`, of elements that need `align`-byte alignment.
    Bytes {
        buffer: Buffer,
        start: usize,
        len: usize,
        align: usize,
    },
    /// `len` bits from bit `start` of `buffer` (Arrow booleans).
    Bits {
        buffer: Buffer,
        start: usize,
        len: usize,
    },
}

/// Exports the column `name` (for messages) held in `array` as a DLPack tensor.
///
/// Fails with [`Error::InvalidArgument`] when the exported range holds a null (at any nesting
/// level) and with [`Error::Unsupported`] for a type without a tensor form; both name the column.
pub fn export_column(name: &str, array: &dyn Array) -> Result<DlpackTensor> {
    export_data(name, &array.to_data())
}

/// [`export_column`] on the column's [`ArrayData`] (which also lets tests build layouts that no
/// typed array accepts, such as a misaligned values buffer).
pub fn export_data(name: &str, data: &ArrayData) -> Result<DlpackTensor> {
    // The type first: a string column with nulls is unsupported whatever its nulls, and saying
    // so spares the user filling nulls in vain.
    check_supported(name, data.data_type())?;
    let (shape, dtype, elements) = plan(name, data)?;
    let count = shape.iter().try_fold(1_usize, |n, &d| {
        usize::try_from(d).ok().and_then(|d| n.checked_mul(d))
    });
    let count = count.ok_or_else(|| Error::Internal(format!("column `{name}`: shape overflow")))?;

    let (owner, data_ptr, flags) = match elements {
        _ if count == 0 => (None, std::ptr::null_mut(), DLPACK_FLAG_BITMASK_READ_ONLY),
        Elements::Bytes {
            buffer,
            start,
            len,
            align,
        } => {
            let Some(bytes) = start
                .checked_add(len)
                .and_then(|end| buffer.as_slice().get(start..end))
            else {
                return Err(Error::Internal(format!(
                    "column `{name}`: values buffer of {} bytes is too short for bytes {start}..+{len}",
                    buffer.len()
                )));
            };
            if bytes.as_ptr().align_offset(align) == 0 {
                let ptr = bytes.as_ptr().cast_mut().cast();
                (Some(buffer), ptr, DLPACK_FLAG_BITMASK_READ_ONLY)
            } else {
                // Consumers read through typed pointers; an unaligned one is undefined
                // behaviour for them. Arrow's allocations are 64-byte aligned.
                let mut copy = MutableBuffer::with_capacity(bytes.len());
                copy.extend_from_slice(bytes);
                let copy = Buffer::from(copy);
                let ptr = copy.as_ptr().cast_mut().cast();
                (Some(copy), ptr, DLPACK_FLAG_BITMASK_IS_COPIED)
            }
        }
        Elements::Bits { buffer, start, len } => {
            if start
                .checked_add(len)
                .is_none_or(|end| end > buffer.len() * 8)
            {
                return Err(Error::Internal(format!(
                    "column `{name}`: bitmap of {} bytes is too short for bits {start}..+{len}",
                    buffer.len()
                )));
            }
            let bits = BooleanBuffer::new(buffer, start, len);
            let copy = Buffer::from_vec(bits.iter().map(u8::from).collect::<Vec<u8>>());
            let ptr = copy.as_ptr().cast_mut().cast();
            (Some(copy), ptr, DLPACK_FLAG_BITMASK_IS_COPIED)
        }
    };
    DlpackTensor::new(shape, dtype, flags, owner, data_ptr)
}

/// Walks the column's type from the outside in: the shape, the element type and where the
/// elements are. Checks for nulls in the range each level contributes.
fn plan(name: &str, data: &ArrayData) -> Result<(Vec<i64>, DLDataType, Elements)> {
    let dim = |n: usize| {
        i64::try_from(n).map_err(|_| Error::Internal(format!("column `{name}`: extent {n}")))
    };
    let overflow = || Error::Internal(format!("column `{name}`: element count overflow"));
    let mut shape = vec![dim(data.len())?];
    let mut level = data;
    // The exported elements of `level`: `count` of them, from logical index `logical`; their
    // physical index (into the buffers) is `level.offset() + logical`.
    let mut logical: usize = 0;
    let mut count = data.len();
    let mut depth = 0;
    loop {
        if logical
            .checked_add(count)
            .is_none_or(|end| end > level.len())
        {
            return Err(Error::Internal(format!(
                "column `{name}`: nesting level {depth} has {} elements, fewer than {logical}+{count}",
                level.len()
            )));
        }
        check_no_nulls(name, level, logical, count, depth)?;
        let start = level.offset().checked_add(logical).ok_or_else(overflow)?;
        match level.data_type() {
            DataType::FixedSizeList(_, n) => {
                let n = usize::try_from(*n).map_err(|_| overflow())?;
                let child = level.child_data().first().ok_or_else(|| {
                    Error::Internal(format!("column `{name}`: list without values"))
                })?;
                shape.push(dim(n)?);
                logical = start.checked_mul(n).ok_or_else(overflow)?;
                count = count.checked_mul(n).ok_or_else(overflow)?;
                level = child;
                depth += 1;
            }
            DataType::FixedSizeBinary(width) => {
                let width = usize::try_from(*width).map_err(|_| overflow())?;
                shape.push(dim(width)?);
                let elements = Elements::Bytes {
                    buffer: first_buffer(name, level)?,
                    start: start.checked_mul(width).ok_or_else(overflow)?,
                    len: count.checked_mul(width).ok_or_else(overflow)?,
                    align: 1,
                };
                return Ok((shape, dtype(TYPE_CODE_UINT, 8), elements));
            }
            DataType::Boolean => {
                let elements = Elements::Bits {
                    buffer: first_buffer(name, level)?,
                    start,
                    len: count,
                };
                return Ok((shape, dtype(TYPE_CODE_BOOL, 8), elements));
            }
            other => {
                let Some(element) = primitive_dtype(other) else {
                    return Err(unsupported(name, data.data_type(), other));
                };
                let size = usize::from(element.bits / 8);
                let elements = Elements::Bytes {
                    buffer: first_buffer(name, level)?,
                    start: start.checked_mul(size).ok_or_else(overflow)?,
                    len: count.checked_mul(size).ok_or_else(overflow)?,
                    align: size,
                };
                return Ok((shape, element, elements));
            }
        }
    }
}

/// Fails with [`Error::Unsupported`] unless `column_type` has a tensor form.
/// The bytes one row of a column of `data_type` takes in its tensor form ([`export_column`]),
/// or `None` for a type without one. Every type with a tensor form is fixed-width, so a batch of
/// `rows` rows needs exactly `rows * tensor_row_bytes` bytes per tensor column: what sizes device
/// buffers before the first batch arrives. Booleans take a byte per element (the export's copy).
pub fn tensor_row_bytes(data_type: &DataType) -> Option<usize> {
    match data_type {
        DataType::FixedSizeList(field, n) => usize::try_from(*n)
            .ok()?
            .checked_mul(tensor_row_bytes(field.data_type())?),
        DataType::FixedSizeBinary(width) => usize::try_from(*width).ok(),
        DataType::Boolean => Some(1),
        other => primitive_dtype(other).map(|d| usize::from(d.bits / 8)),
    }
}

fn check_supported(name: &str, column_type: &DataType) -> Result<()> {
    let mut element = column_type;
    while let DataType::FixedSizeList(field, _) = element {
        element = field.data_type();
    }
    match element {
        DataType::Boolean | DataType::FixedSizeBinary(_) => Ok(()),
        other if primitive_dtype(other).is_some() => Ok(()),
        other => Err(unsupported(name, column_type, other)),
    }
}

fn dtype(code: u8, bits: u8) -> DLDataType {
    DLDataType {
        code,
        bits,
        lanes: 1,
    }
}

/// The DLPack type of an Arrow fixed-width numeric type, if it has one.
fn primitive_dtype(data_type: &DataType) -> Option<DLDataType> {
    let (code, bits) = match data_type {
        DataType::Int8 => (TYPE_CODE_INT, 8),
        DataType::Int16 => (TYPE_CODE_INT, 16),
        DataType::Int32 => (TYPE_CODE_INT, 32),
        DataType::Int64 => (TYPE_CODE_INT, 64),
        DataType::UInt8 => (TYPE_CODE_UINT, 8),
        DataType::UInt16 => (TYPE_CODE_UINT, 16),
        DataType::UInt32 => (TYPE_CODE_UINT, 32),
        DataType::UInt64 => (TYPE_CODE_UINT, 64),
        DataType::Float16 => (TYPE_CODE_FLOAT, 16),
        DataType::Float32 => (TYPE_CODE_FLOAT, 32),
        DataType::Float64 => (TYPE_CODE_FLOAT, 64),
        _ => return None,
    };
    Some(dtype(code, bits))
}

fn unsupported(name: &str, column_type: &DataType, element_type: &DataType) -> Error {
    let element = if column_type == element_type {
        String::new()
    } else {
        format!(" (its elements are {element_type})")
    };
    Error::Unsupported(format!(
        "column `{name}` of type {column_type}{element} has no DLPack tensor form; supported: \
         integers, float16/32/64, bool, fixed_size_binary, and fixed_size_list of these"
    ))
}

fn first_buffer(name: &str, level: &ArrayData) -> Result<Buffer> {
    level
        .buffers()
        .first()
        .cloned()
        .ok_or_else(|| Error::Internal(format!("column `{name}`: array without a values buffer")))
}

/// Fails when `level` has a null among `count` elements from logical index `logical`.
fn check_no_nulls(
    name: &str,
    level: &ArrayData,
    logical: usize,
    count: usize,
    depth: usize,
) -> Result<()> {
    let Some(nulls) = level.nulls() else {
        return Ok(());
    };
    let nulls_in_range = if logical == 0 && count == nulls.len() {
        nulls.null_count()
    } else {
        nulls.slice(logical, count).null_count()
    };
    if nulls_in_range == 0 {
        return Ok(());
    }
    let place = if depth == 0 {
        String::new()
    } else {
        format!(" in its list values (nesting level {depth})")
    };
    Err(Error::InvalidArgument(format!(
        "column `{name}` has {nulls_in_range} null(s){place}; a DLPack tensor cannot represent \
         nulls (fill or filter them first)"
    )))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::types::{
        Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
        UInt32Type, UInt64Type,
    };
    use arrow_array::{
        ArrayRef, ArrowPrimitiveType, BooleanArray, FixedSizeBinaryArray, FixedSizeListArray,
        Float32Array, Int32Array, Int64Array, ListArray, PrimitiveArray, RecordBatch, StringArray,
    };
    use arrow_schema::Field;

    use super::*;
    use crate::batch::Batch;

    /// The tensor's elements, read through its C view as a consumer would.
    fn values<T: Copy>(tensor: &DlpackTensor) -> Vec<T> {
        let t = tensor.as_dl_tensor();
        assert_eq!(usize::from(t.dtype.bits) / 8, size_of::<T>());
        let count: i64 = tensor.shape().iter().product();
        if count == 0 {
            assert!(t.data.is_null(), "an empty tensor has a NULL data pointer");
            return Vec::new();
        }
        assert_eq!(t.byte_offset, 0);
        assert_eq!(
            t.data.align_offset(align_of::<T>()),
            0,
            "data is aligned for its type"
        );
        // SAFETY: the tensor holds `count` elements of `T` at `data` (its contract).
        unsafe { std::slice::from_raw_parts(t.data.cast::<T>(), count as usize) }.to_vec()
    }

    /// Checks what every tensor shares: version, device, C view == Rust view, compact strides.
    fn check_common(tensor: &DlpackTensor, shape: &[i64], dtype: DLDataType) {
        let t = tensor.as_dl_tensor();
        assert_eq!(tensor.shape(), shape);
        assert_eq!(t.ndim as usize, shape.len());
        // SAFETY: `shape` and `strides` point to `ndim` elements each.
        let (c_shape, c_strides) = unsafe {
            (
                std::slice::from_raw_parts(t.shape, shape.len()),
                std::slice::from_raw_parts(t.strides, shape.len()),
            )
        };
        assert_eq!(c_shape, shape);
        assert_eq!(c_strides, tensor.strides());
        let mut expected_strides = vec![1; shape.len()];
        for k in (0..shape.len().saturating_sub(1)).rev() {
            expected_strides[k] = expected_strides[k + 1] * shape[k + 1].max(1);
        }
        assert_eq!(tensor.strides(), expected_strides);
        assert_eq!(t.dtype, dtype);
        assert_eq!(
            t.device,
            DLDevice {
                device_type: DEVICE_TYPE_CPU,
                device_id: 0
            }
        );
        let managed = tensor.as_managed();
        assert_eq!(
            managed.version,
            DLPackVersion {
                major: 1,
                minor: DLPACK_MINOR_VERSION
            }
        );
        assert!(managed.deleter.is_some());
    }

    /// A zero-copy export shares the array's values buffer: data points at its first element.
    fn assert_shares<T: ArrowPrimitiveType>(tensor: &DlpackTensor, array: &PrimitiveArray<T>) {
        assert_eq!(tensor.flags(), DLPACK_FLAG_BITMASK_READ_ONLY);
        assert!(!tensor.is_copy());
        let data = tensor.as_dl_tensor().data.cast_const().cast::<u8>();
        assert_eq!(data, array.values().inner().as_ptr());
    }

    fn check_primitive<T: ArrowPrimitiveType>(code: u8)
    where
        T::Native: From<i8> + PartialEq + std::fmt::Debug,
    {
        let native: Vec<T::Native> = (-5i8..20).map(T::Native::from).collect();
        let array = PrimitiveArray::<T>::from_iter_values(native.iter().copied());
        let bits = (size_of::<T::Native>() * 8) as u8;

        let tensor = export_column("x", &array).unwrap();
        check_common(&tensor, &[25], dtype(code, bits));
        assert_eq!(values::<T::Native>(&tensor), native);
        assert_shares(&tensor, &array);

        // A slice starts at its first element, zero-copy.
        let slice = array.slice(7, 9);
        let tensor = export_column("x", &slice).unwrap();
        check_common(&tensor, &[9], dtype(code, bits));
        assert_eq!(values::<T::Native>(&tensor), native[7..16]);
        assert_shares(&tensor, &slice);
    }

    #[test]
    fn every_integer_and_float_type_maps_to_its_dlpack_type_without_copying() {
        check_primitive::<Int8Type>(TYPE_CODE_INT);
        check_primitive::<Int16Type>(TYPE_CODE_INT);
        check_primitive::<Int32Type>(TYPE_CODE_INT);
        check_primitive::<Int64Type>(TYPE_CODE_INT);
        check_primitive::<Float32Type>(TYPE_CODE_FLOAT);
        check_primitive::<Float64Type>(TYPE_CODE_FLOAT);
        // Unsigned types take the values 0..25 (From<i8> does not exist for them).
        fn check_unsigned<T: ArrowPrimitiveType>(bits: u8)
        where
            T::Native: From<u8> + PartialEq + std::fmt::Debug,
        {
            let native: Vec<T::Native> = (0u8..25).map(T::Native::from).collect();
            let array = PrimitiveArray::<T>::from_iter_values(native.iter().copied());
            let tensor = export_column("u", &array.slice(3, 10)).unwrap();
            check_common(&tensor, &[10], dtype(TYPE_CODE_UINT, bits));
            assert_eq!(values::<T::Native>(&tensor), native[3..13]);
            assert_eq!(tensor.flags(), DLPACK_FLAG_BITMASK_READ_ONLY);
        }
        check_unsigned::<UInt8Type>(8);
        check_unsigned::<UInt16Type>(16);
        check_unsigned::<UInt32Type>(32);
        check_unsigned::<UInt64Type>(64);
    }

    #[test]
    fn float16_is_exported_as_16_bit_floats() {
        // 1.0, -2.0, 0.5 as IEEE half bit patterns (no half crate needed to check them).
        let bits: Vec<u16> = vec![0x3c00, 0xc000, 0x3800];
        let data = ArrayData::builder(DataType::Float16)
            .len(3)
            .add_buffer(Buffer::from_vec(bits.clone()))
            .build()
            .unwrap();
        let tensor = export_data("h", &data).unwrap();
        check_common(&tensor, &[3], dtype(TYPE_CODE_FLOAT, 16));
        assert_eq!(values::<u16>(&tensor), bits);
        assert!(!tensor.is_copy());
    }

    #[test]
    fn an_array_data_offset_is_honoured() {
        // An offset on the ArrayData itself (as the C Data Interface and IPC produce), rather
        // than a sliced buffer.
        let data = ArrayData::builder(DataType::Int32)
            .len(3)
            .offset(2)
            .add_buffer(Buffer::from_vec(vec![10i32, 11, 12, 13, 14, 15]))
            .build()
            .unwrap();
        let tensor = export_data("o", &data).unwrap();
        check_common(&tensor, &[3], dtype(TYPE_CODE_INT, 32));
        assert_eq!(values::<i32>(&tensor), [12, 13, 14]);
        assert!(!tensor.is_copy());
    }

    fn embedding(rows: i32, width: i32) -> FixedSizeListArray {
        let floats = Float32Array::from_iter_values((0..rows * width).map(|v| v as f32));
        let field = Arc::new(Field::new("item", DataType::Float32, false));
        FixedSizeListArray::new(field, width, Arc::new(floats), None)
    }

    #[test]
    fn fixed_size_list_becomes_a_2d_tensor_over_the_values_buffer() {
        let list = embedding(5, 4);
        let tensor = export_column("embedding", &list).unwrap();
        check_common(&tensor, &[5, 4], dtype(TYPE_CODE_FLOAT, 32));
        assert_eq!(tensor.strides(), [4, 1]);
        let expected: Vec<f32> = (0..20).map(|v| v as f32).collect();
        assert_eq!(values::<f32>(&tensor), expected);
        assert!(!tensor.is_copy());

        let slice = list.slice(2, 2);
        let tensor = export_column("embedding", &slice).unwrap();
        check_common(&tensor, &[2, 4], dtype(TYPE_CODE_FLOAT, 32));
        assert_eq!(values::<f32>(&tensor), expected[8..16]);
        assert!(!tensor.is_copy());
    }

    #[test]
    fn a_list_offset_selects_rows_of_the_unsliced_values() {
        // Offset on the list level, values child unsliced: row r is values[(offset + r) * n..].
        let values_data = Float32Array::from_iter_values((0..24).map(|v| v as f32)).into_data();
        let field = Arc::new(Field::new("item", DataType::Float32, false));
        let data = ArrayData::builder(DataType::FixedSizeList(field, 3))
            .len(2)
            .offset(5)
            .add_child_data(values_data)
            .build()
            .unwrap();
        let tensor = export_data("l", &data).unwrap();
        check_common(&tensor, &[2, 3], dtype(TYPE_CODE_FLOAT, 32));
        assert_eq!(values::<f32>(&tensor), [15.0, 16.0, 17.0, 18.0, 19.0, 20.0]);
    }

    #[test]
    fn nested_fixed_size_lists_become_an_nd_tensor() {
        // rows × 2 × 3: a list of 2 lists of 3 floats.
        let inner = embedding(8, 3);
        let inner_field = Arc::new(Field::new("item", inner.data_type().clone(), false));
        let outer = FixedSizeListArray::new(inner_field, 2, Arc::new(inner), None);
        let tensor = export_column("cube", &outer).unwrap();
        check_common(&tensor, &[4, 2, 3], dtype(TYPE_CODE_FLOAT, 32));
        assert_eq!(tensor.strides(), [6, 3, 1]);
        let expected: Vec<f32> = (0..24).map(|v| v as f32).collect();
        assert_eq!(values::<f32>(&tensor), expected);

        let tensor = export_column("cube", &outer.slice(1, 2)).unwrap();
        check_common(&tensor, &[2, 2, 3], dtype(TYPE_CODE_FLOAT, 32));
        assert_eq!(values::<f32>(&tensor), expected[6..18]);
        assert!(!tensor.is_copy());
    }

    #[test]
    fn fixed_size_binary_becomes_rows_by_width_uint8() {
        let rows: Vec<[u8; 3]> = (0..5u8).map(|r| [r, r + 10, r + 20]).collect();
        let array = FixedSizeBinaryArray::try_from_iter(rows.iter()).unwrap();
        let tensor = export_column("bytes", &array).unwrap();
        check_common(&tensor, &[5, 3], dtype(TYPE_CODE_UINT, 8));
        assert_eq!(values::<u8>(&tensor), rows.concat());
        assert!(!tensor.is_copy());

        let tensor = export_column("bytes", &array.slice(3, 2)).unwrap();
        check_common(&tensor, &[2, 3], dtype(TYPE_CODE_UINT, 8));
        assert_eq!(values::<u8>(&tensor), rows[3..].concat());
    }

    #[test]
    fn bools_are_copied_into_one_byte_each() {
        let flags: Vec<bool> = (0..21).map(|i| i % 3 == 0).collect();
        let array = BooleanArray::from(flags.clone());
        let tensor = export_column("flag", &array).unwrap();
        check_common(&tensor, &[21], dtype(TYPE_CODE_BOOL, 8));
        let bytes: Vec<u8> = flags.iter().map(|&b| u8::from(b)).collect();
        assert_eq!(values::<u8>(&tensor), bytes);
        assert!(tensor.is_copy());
        assert_eq!(
            tensor.flags(),
            DLPACK_FLAG_BITMASK_IS_COPIED,
            "a copy is writable"
        );

        // A slice that starts inside a byte of the bitmap.
        let tensor = export_column("flag", &array.slice(5, 11)).unwrap();
        assert_eq!(values::<u8>(&tensor), bytes[5..16]);

        // Inside a fixed-size list: [rows, 3] of bools.
        let field = Arc::new(Field::new("item", DataType::Boolean, false));
        let list = FixedSizeListArray::new(field, 3, Arc::new(array), None);
        let tensor = export_column("flags", &list.slice(1, 5)).unwrap();
        check_common(&tensor, &[5, 3], dtype(TYPE_CODE_BOOL, 8));
        assert_eq!(values::<u8>(&tensor), bytes[3..18]);
    }

    #[test]
    fn a_misaligned_values_buffer_is_copied() {
        // Int32 values one byte past an aligned address: no typed array accepts this, but a
        // foreign producer could hand it over; consumers would read misaligned int32s.
        let raw: Vec<u8> = std::iter::once(0xff)
            .chain([7i32, -8, 9].iter().flat_map(|v| v.to_ne_bytes()))
            .collect();
        let misaligned = Buffer::from_vec(raw).slice(1);
        assert_ne!(misaligned.as_ptr().align_offset(4), 0);
        // SAFETY: the buffer holds 3 × 4 bytes; only its alignment is off, which is the point.
        let data = unsafe {
            ArrayData::builder(DataType::Int32)
                .len(3)
                .add_buffer(misaligned)
                .build_unchecked()
        };
        let tensor = export_data("m", &data).unwrap();
        check_common(&tensor, &[3], dtype(TYPE_CODE_INT, 32));
        assert!(tensor.is_copy());
        assert_eq!(tensor.flags(), DLPACK_FLAG_BITMASK_IS_COPIED);
        assert_eq!(values::<i32>(&tensor), [7, -8, 9]);
    }

    #[test]
    fn empty_columns_give_empty_tensors_with_a_null_data_pointer() {
        let tensor = export_column("e", &Int32Array::from(Vec::<i32>::new())).unwrap();
        check_common(&tensor, &[0], dtype(TYPE_CODE_INT, 32));
        assert!(tensor.as_dl_tensor().data.is_null());
        assert!(tensor.owner().is_none());
        assert!(tensor.bytes().is_empty());

        // Three rows of zero-length lists (a typed array would infer zero rows from no values).
        let field = Arc::new(Field::new("item", DataType::Float32, false));
        let data = ArrayData::builder(DataType::FixedSizeList(field, 0))
            .len(3)
            .add_child_data(Float32Array::from(Vec::<f32>::new()).into_data())
            .build()
            .unwrap();
        let tensor = export_data("e", &data).unwrap();
        check_common(&tensor, &[3, 0], dtype(TYPE_CODE_FLOAT, 32));
        assert!(tensor.as_dl_tensor().data.is_null());
    }

    #[test]
    fn nulls_are_an_invalid_argument_naming_the_column() {
        let array = Int32Array::from(vec![Some(1), None, Some(3), Some(4)]);
        let error = export_column("label", &array).unwrap_err();
        assert!(matches!(error, Error::InvalidArgument(_)), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains("`label`") && message.contains("1 null"),
            "{message}"
        );

        // Outside the exported range, a null does not matter.
        let tensor = export_column("label", &array.slice(2, 2)).unwrap();
        assert_eq!(values::<i32>(&tensor), [3, 4]);

        // A null list entry, and a null inside the list values.
        let field = Arc::new(Field::new("item", DataType::Float32, true));
        let floats = Float32Array::from(vec![Some(0.0), Some(1.0), None, Some(3.0)]);
        let with_null_value =
            FixedSizeListArray::new(field.clone(), 2, Arc::new(floats.clone()), None);
        let error = export_column("emb", &with_null_value).unwrap_err();
        assert!(matches!(error, Error::InvalidArgument(_)));
        assert!(error.to_string().contains("`emb`"), "{error}");
        assert!(error.to_string().contains("list values"), "{error}");
        // The first row's values have no null.
        let tensor = export_column("emb", &with_null_value.slice(0, 1)).unwrap();
        assert_eq!(values::<f32>(&tensor), [0.0, 1.0]);

        let nulls = arrow_buffer::NullBuffer::from(vec![true, false]);
        let floats = Float32Array::from(vec![0.0, 1.0, 2.0, 3.0]);
        let null_row = FixedSizeListArray::new(field, 2, Arc::new(floats), Some(nulls));
        let error = export_column("emb", &null_row).unwrap_err();
        assert!(matches!(error, Error::InvalidArgument(_)));
        assert!(!error.to_string().contains("list values"), "{error}");

        let bools = BooleanArray::from(vec![Some(true), None]);
        assert!(matches!(
            export_column("flag", &bools),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn types_without_a_tensor_form_are_unsupported_naming_column_and_type() {
        let strings = StringArray::from(vec!["a", "b"]);
        let error = export_column("name", &strings).unwrap_err();
        assert!(matches!(error, Error::Unsupported(_)), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains("`name`") && message.contains("Utf8"),
            "{message}"
        );

        // Unsupported wins over nulls: filling them would not help.
        let with_nulls = StringArray::from(vec![Some("a"), None]);
        let error = export_column("name", &with_nulls).unwrap_err();
        assert!(matches!(error, Error::Unsupported(_)), "{error:?}");

        let lists = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1)])]);
        let error = export_column("ragged", &lists).unwrap_err();
        assert!(matches!(error, Error::Unsupported(_)), "{error:?}");
        assert!(error.to_string().contains("`ragged`"), "{error}");

        let field = Arc::new(Field::new("item", DataType::Utf8, false));
        let fixed_strings =
            FixedSizeListArray::new(field, 1, Arc::new(StringArray::from(vec!["x"])), None);
        let message = export_column("tags", &fixed_strings)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("`tags`") && message.contains("its elements are Utf8"),
            "{message}"
        );
    }

    #[test]
    fn the_deleter_releases_the_shared_buffer_and_the_tensor() {
        let array = Int64Array::from_iter_values(0..1000);
        let buffer = array.values().inner().clone();
        let baseline = buffer.strong_count();

        let tensors: Vec<_> = (0..3)
            .map(|_| export_column("id", &array).unwrap())
            .collect();
        assert_eq!(
            buffer.strong_count(),
            baseline + 3,
            "each tensor holds the buffer"
        );
        let raw: Vec<_> = tensors.into_iter().map(DlpackTensor::into_raw).collect();
        assert_eq!(
            buffer.strong_count(),
            baseline + 3,
            "into_raw keeps it held"
        );

        // The data stays valid without the array: the tensors alone keep it alive.
        drop(array);
        let held = buffer.strong_count();
        assert_eq!(
            held,
            baseline + 2,
            "the array's reference is gone, the tensors' are not"
        );
        // SAFETY: `raw[0]` is a live tensor of 1000 int64s.
        let tail = unsafe {
            let t = &(*raw[0]).dl_tensor;
            *t.data.cast::<i64>().add(999)
        };
        assert_eq!(tail, 999);

        for (k, tensor) in raw.into_iter().enumerate() {
            // SAFETY: each raw tensor is released exactly once, as the C contract says.
            unsafe {
                let deleter = (*tensor).deleter.unwrap();
                deleter(tensor);
            }
            assert_eq!(buffer.strong_count(), held - 1 - k);
        }
        assert_eq!(
            buffer.strong_count(),
            1,
            "only the test's own reference is left"
        );
        // SAFETY: NULL is ignored.
        unsafe { delete_tensor(std::ptr::null_mut()) };

        // Dropping a tensor that was never handed out releases too.
        let array = Int64Array::from_iter_values(0..10);
        let buffer = array.values().inner().clone();
        let before = buffer.strong_count();
        let tensor = export_column("id", &array).unwrap();
        assert_eq!(buffer.strong_count(), before + 1);
        drop(tensor);
        assert_eq!(buffer.strong_count(), before);
    }

    #[test]
    fn copies_are_owned_by_the_tensor_alone() {
        let tensor = export_column("flag", &BooleanArray::from(vec![true, false])).unwrap();
        let copy = tensor.owner().unwrap().clone();
        assert_eq!(copy.strong_count(), 2);
        let raw = tensor.into_raw();
        // SAFETY: released exactly once.
        unsafe { ((*raw).deleter.unwrap())(raw) };
        assert_eq!(
            copy.strong_count(),
            1,
            "the deleter freed its reference to the copy"
        );
    }

    #[test]
    fn batch_columns_are_found_by_name_and_index() {
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..4));
        let names: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "c", "d"]));
        let data = RecordBatch::try_from_iter([("id", ids), ("name", names)]).unwrap();
        let batch = Batch {
            data,
            epoch: 0,
            index: 0,
        };
        let tensor = batch.column_dlpack("id").unwrap();
        assert_eq!(values::<i64>(&tensor), [0, 1, 2, 3]);
        let tensor = batch.column_dlpack_by_index(0).unwrap();
        assert_eq!(tensor.shape(), [4]);

        let message = batch.column_dlpack("nope").unwrap_err().to_string();
        assert!(
            message.contains("`nope`") && message.contains("id, name"),
            "{message}"
        );
        assert!(matches!(
            batch.column_dlpack_by_index(2),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            batch.column_dlpack("name"),
            Err(Error::Unsupported(_))
        ));
        assert!(matches!(
            batch.column_dlpack_by_index(1),
            Err(Error::Unsupported(_))
        ));
    }

    /// The tensor is device-neutral: a tensor built over memory another owner manages reports
    /// its device, refuses host reads, and drops the owner exactly when the consumer deletes it.
    #[test]
    fn tensors_carry_their_device_and_release_foreign_memory_on_delete() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        struct DeviceBlock(Arc<AtomicUsize>);
        impl Drop for DeviceBlock {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let freed = Arc::new(AtomicUsize::new(0));
        let device = DLDevice {
            device_type: DEVICE_TYPE_CUDA,
            device_id: 3,
        };
        let dtype = DLDataType {
            code: TYPE_CODE_FLOAT,
            bits: 32,
            lanes: 1,
        };
        // A made-up device address: nothing on the host side may dereference it.
        let fake_device_pointer = 0x7000_0000_usize as *mut c_void;
        let tensor = DlpackTensor::from_parts(
            device,
            vec![4, 2],
            dtype,
            0,
            Some(TensorMemory::Owned(Box::new(DeviceBlock(freed.clone())))),
            fake_device_pointer,
        )
        .unwrap();
        assert_eq!(tensor.device(), device);
        assert_eq!(tensor.shape(), [4, 2]);
        assert_eq!(tensor.strides(), [2, 1]);
        assert!(
            tensor.owner().is_none(),
            "device memory is not a host buffer"
        );
        let host_read = catch_unwind(AssertUnwindSafe(|| tensor.bytes().len()));
        assert!(host_read.is_err(), "bytes() must refuse device memory");
        let raw = tensor.into_raw();
        assert_eq!(freed.load(Ordering::SeqCst), 0);
        // SAFETY: `raw` came from into_raw and is deleted once.
        unsafe { ((*raw).deleter.unwrap())(raw) };
        assert_eq!(freed.load(Ordering::SeqCst), 1);
    }
}
