//! A batch the loader delivered, and its exports: the Arrow C Data Interface ([`arrow`]) and
//! DLPack tensors.

pub mod arrow;

use arrow_array::RecordBatch;

pub use arrow::{export_array, export_schema};

/// One batch of an epoch: its rows and where it sits in the epoch.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The rows, with the loader's (projected) schema.
    pub data: RecordBatch,
    /// The epoch it belongs to.
    pub epoch: u64,
    /// Its position in this rank's epoch (0-based).
    pub index: u64,
}

impl Batch {
    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        self.data.num_rows()
    }
}
