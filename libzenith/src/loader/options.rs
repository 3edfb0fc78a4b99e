//! What a user can ask of a loader, validated at the setter so errors point at the argument.

use crate::error::{Error, Result};

/// The batch size a loader uses unless `zenith_loader_options_set_batch_size` says otherwise.
pub const ZENITH_DEFAULT_BATCH_SIZE: usize = 1024;

/// Options for [`crate::Loader::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoaderOptions {
    batch_size: usize,
}

impl Default for LoaderOptions {
    fn default() -> Self {
        LoaderOptions {
            batch_size: ZENITH_DEFAULT_BATCH_SIZE,
        }
    }
}

impl LoaderOptions {
    /// Rows per batch; every batch has exactly this many rows except the last of an epoch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Sets the rows per batch. Zero is an [`Error::InvalidArgument`].
    pub fn set_batch_size(&mut self, batch_size: usize) -> Result<()> {
        if batch_size == 0 {
            return Err(Error::InvalidArgument(
                "batch_size must be at least 1".into(),
            ));
        }
        self.batch_size = batch_size;
        Ok(())
    }
}
