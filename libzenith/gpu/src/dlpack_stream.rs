//! The array-API DLPack stream rules: what the `stream` a consumer passes to `__dlpack__` (and
//! to a future `zenith_batch_column_dlpack_stream`) means, before any CUDA call.
//!
//! For CUDA: `None` means the legacy default stream; `-1` means "do not synchronise"; `0` is
//! ambiguous and refused; `1` is the legacy default stream and `2` the per-thread default stream
//! (not pointers); any other positive value is a `cudaStream_t`. For the CPU only `None` or `-1`
//! are valid (no stream to wait on).

use zenith_core::{Error, Result};

/// The device a tensor lives on, as far as stream rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorDevice {
    /// Host memory (`kDLCPU`, `kDLCUDAHost`).
    Cpu,
    /// CUDA device memory (`kDLCUDA`, `kDLCUDAManaged`).
    Cuda,
}

/// What the producer must do before the consumer reads the tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerStream {
    /// Nothing: the consumer synchronises itself (or the data is on the host).
    NoSync,
    /// Make the legacy default stream (`CU_STREAM_LEGACY`) wait on the copy's event.
    LegacyDefault,
    /// Make the calling thread's per-thread default stream (`CU_STREAM_PER_THREAD`) wait.
    PerThreadDefault,
    /// Make this stream (a `CUstream` / `cudaStream_t`) wait.
    Handle(u64),
}

impl ConsumerStream {
    /// The value to pass to `cuStreamWaitEvent` as the stream, `None` for [`ConsumerStream::NoSync`]
    /// (`CU_STREAM_LEGACY` is 1 and `CU_STREAM_PER_THREAD` is 2, the same as DLPack's values).
    pub fn cu_stream_value(&self) -> Option<u64> {
        match self {
            ConsumerStream::NoSync => None,
            ConsumerStream::LegacyDefault => Some(1),
            ConsumerStream::PerThreadDefault => Some(2),
            ConsumerStream::Handle(handle) => Some(*handle),
        }
    }
}

/// Interprets the `stream` argument of `__dlpack__` for a tensor on `device`.
///
/// On failure: [`Error::InvalidArgument`] for `0` and negative values other than `-1` (CUDA), and
/// for any stream but `None`/`-1` on the CPU.
pub fn consumer_stream(device: TensorDevice, stream: Option<i64>) -> Result<ConsumerStream> {
    match (device, stream) {
        (TensorDevice::Cpu, None | Some(-1)) => Ok(ConsumerStream::NoSync),
        (TensorDevice::Cpu, Some(other)) => Err(Error::InvalidArgument(format!(
            "a tensor in host memory takes no stream (None or -1), not {other}"
        ))),
        (TensorDevice::Cuda, None | Some(1)) => Ok(ConsumerStream::LegacyDefault),
        (TensorDevice::Cuda, Some(-1)) => Ok(ConsumerStream::NoSync),
        (TensorDevice::Cuda, Some(2)) => Ok(ConsumerStream::PerThreadDefault),
        (TensorDevice::Cuda, Some(0)) => Err(Error::InvalidArgument(
            "stream 0 is ambiguous for CUDA (use 1 for the legacy default stream, 2 for the \
             per-thread default stream)"
                .into(),
        )),
        (TensorDevice::Cuda, Some(handle)) if handle > 2 => {
            Ok(ConsumerStream::Handle(handle as u64))
        }
        (TensorDevice::Cuda, Some(other)) => Err(Error::InvalidArgument(format!(
            "{other} is not a CUDA stream (-1, 1, 2 or a stream handle)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TensorDevice::{Cpu, Cuda};

    #[test]
    fn cuda_streams_follow_the_array_api_rules() {
        assert_eq!(
            consumer_stream(Cuda, None).unwrap(),
            ConsumerStream::LegacyDefault
        );
        assert_eq!(
            consumer_stream(Cuda, Some(-1)).unwrap(),
            ConsumerStream::NoSync
        );
        assert_eq!(
            consumer_stream(Cuda, Some(1)).unwrap(),
            ConsumerStream::LegacyDefault
        );
        assert_eq!(
            consumer_stream(Cuda, Some(2)).unwrap(),
            ConsumerStream::PerThreadDefault
        );
        assert_eq!(
            consumer_stream(Cuda, Some(0x7f00_1234)).unwrap(),
            ConsumerStream::Handle(0x7f00_1234)
        );
        for bad in [0, -2, i64::MIN] {
            let error = consumer_stream(Cuda, Some(bad)).unwrap_err();
            assert_eq!(
                error.kind(),
                zenith_core::ErrorKind::InvalidArgument,
                "{bad}"
            );
        }
    }

    #[test]
    fn host_tensors_take_no_stream() {
        assert_eq!(consumer_stream(Cpu, None).unwrap(), ConsumerStream::NoSync);
        assert_eq!(
            consumer_stream(Cpu, Some(-1)).unwrap(),
            ConsumerStream::NoSync
        );
        for bad in [0, 1, 2, 12345] {
            assert!(consumer_stream(Cpu, Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn stream_values_map_to_cu_stream_values() {
        assert_eq!(ConsumerStream::NoSync.cu_stream_value(), None);
        assert_eq!(ConsumerStream::LegacyDefault.cu_stream_value(), Some(1));
        assert_eq!(ConsumerStream::PerThreadDefault.cu_stream_value(), Some(2));
        assert_eq!(ConsumerStream::Handle(99).cu_stream_value(), Some(99));
    }
}
