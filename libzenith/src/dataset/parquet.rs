//! Parquet source. NOT YET IMPLEMENTED: being written in a parallel branch; until it lands,
//! opening such a file is a clean `Error::Unsupported`.

use std::path::Path;

use crate::error::{Error, Result};

/// A Parquet file.
#[derive(Debug)]
pub struct ParquetFile;

impl ParquetFile {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<crate::dataset::ipc::IpcFile> {
        Err(Error::Unsupported(format!(
            "{}: Parquet is not supported by this build yet",
            path.display()
        )))
    }
}
