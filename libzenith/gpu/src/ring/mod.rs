//! The device path's slot ring and the copy engines it runs on.

pub mod cuda_engine;
pub mod engine;
pub mod host_engine;
pub mod slot_ring;

pub use engine::{CopyEngine, CopyRange, CopySource};
pub use host_engine::{GateHandle, HostCopyEngine, HostEvent};
pub use slot_ring::{
    DeviceBatch, HostSource, MIN_SLOTS, RingConfig, RingError, RingStats, SlotRing, StagingSlot,
    SubmitRange, WaitingFor,
};
