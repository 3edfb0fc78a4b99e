//! A batch the loader delivered, and its exports: the Arrow C Data Interface ([`arrow`]) and
//! DLPack tensors of single columns ([`dlpack`]); the kernel that writes a shuffled batch's
//! columns into pooled buffers ([`gather_kernel`]); the validation of decoded IPC batches
//! ([`validate`]).

pub mod arrow;
pub mod dlpack;
pub mod gather_kernel;
pub mod placement;
pub mod validate;

use arrow_array::RecordBatch;

pub use arrow::{export_array, export_schema};
pub use dlpack::{DlpackTensor, export_column};

use crate::error::{Error, Result};

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

    /// Exports the column called `name` as a DLPack tensor (see [`dlpack`] for the mapping).
    ///
    /// With duplicate names, the first column of that name. An unknown name is an
    /// [`Error::InvalidArgument`] that names it and lists the columns there are.
    pub fn column_dlpack(&self, name: &str) -> Result<DlpackTensor> {
        let schema = self.data.schema();
        let Some(index) = schema.fields().iter().position(|f| f.name() == name) else {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(Error::InvalidArgument(format!(
                "no column named `{name}` in the batch (its columns: {})",
                names.join(", ")
            )));
        };
        self.column_dlpack_by_index(index)
    }

    /// Exports the column at `index` (0-based, schema order) as a DLPack tensor. An index past
    /// the last column is an [`Error::InvalidArgument`].
    pub fn column_dlpack_by_index(&self, index: usize) -> Result<DlpackTensor> {
        let columns = self.data.num_columns();
        if index >= columns {
            return Err(Error::InvalidArgument(format!(
                "column index {index} is out of range: the batch has {columns} columns"
            )));
        }
        let schema = self.data.schema();
        export_column(schema.field(index).name(), self.data.column(index).as_ref())
    }
}
