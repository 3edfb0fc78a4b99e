//! The loader: a dataset, an epoch plan over it and a cursor into the plan.
//!
//! The cursor is shared (behind a mutex) between the loader and any stream exported from it, so a
//! stream continues the epoch where the loader stands, and outlives the loader.

pub mod gather;
mod options;
pub mod plan;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};

pub use options::{LoaderOptions, ZENITH_DEFAULT_BATCH_SIZE};
use plan::EpochPlan;

use crate::dataset::Dataset;
use crate::error::{Error, Result};

/// Streams the batches of a dataset in plan order.
#[derive(Debug)]
pub struct Loader {
    shared: Arc<Shared>,
}

/// State shared by a loader and the streams exported from it.
#[derive(Debug)]
struct Shared {
    dataset: Dataset,
    plan: EpochPlan,
    /// Index (in the plan) of the next batch to deliver.
    next_batch: Mutex<u64>,
}

impl Loader {
    /// Opens the dataset at `path` and plans its first epoch.
    pub fn open(path: impl AsRef<Path>, options: &LoaderOptions) -> Result<Self> {
        let dataset = Dataset::open(path.as_ref(), &crate::dataset::DatasetOptions::default())?;
        let plan = EpochPlan::sequential(dataset.num_rows(), options.batch_size());
        Ok(Loader {
            shared: Arc::new(Shared {
                dataset,
                plan,
                next_batch: Mutex::new(0),
            }),
        })
    }

    /// The schema of every batch.
    pub fn schema(&self) -> SchemaRef {
        self.shared.dataset.schema().clone()
    }

    /// Number of batches in an epoch.
    pub fn num_batches(&self) -> u64 {
        self.shared.plan.num_batches()
    }

    /// Total rows in the dataset.
    pub fn num_rows(&self) -> u64 {
        self.shared.dataset.num_rows()
    }

    /// The next batch of the epoch, or `None` once the epoch is exhausted.
    pub fn next_batch(&self) -> Result<Option<RecordBatch>> {
        self.shared.next_batch()
    }

    /// A reader that continues this epoch from the loader's current position. Batches it yields
    /// are consumed: the loader does not deliver them again. It stays valid after the loader is
    /// dropped.
    pub fn reader(&self) -> EpochReader {
        EpochReader {
            shared: self.shared.clone(),
        }
    }
}

impl Shared {
    fn cursor(&self) -> MutexGuard<'_, u64> {
        // A poisoned cursor means a panic mid-batch; the position itself is still consistent
        // because it only advances after a batch is built.
        self.next_batch
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn next_batch(&self) -> Result<Option<RecordBatch>> {
        let mut cursor = self.cursor();
        let Some(range) = self.plan.batch(*cursor) else {
            return Ok(None);
        };
        let batch = gather::gather_range(&self.dataset, &self.dataset, range.start, range.len)?;
        // Advance only once the batch exists: a failed batch is retried, never half-delivered.
        *cursor += 1;
        Ok(Some(batch))
    }
}

/// An iterator over the rest of an epoch, usable as an Arrow [`RecordBatchReader`] (and from there
/// as an `ArrowArrayStream`).
#[derive(Debug)]
pub struct EpochReader {
    shared: Arc<Shared>,
}

impl Iterator for EpochReader {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.shared
            .next_batch()
            .map_err(Error::into_arrow)
            .transpose()
    }
}

impl RecordBatchReader for EpochReader {
    fn schema(&self) -> SchemaRef {
        self.shared.dataset.schema().clone()
    }
}
