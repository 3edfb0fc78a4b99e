//! CSV source. NOT YET IMPLEMENTED: being written in a parallel branch; until it lands,
//! opening such a file is a clean `Error::Unsupported`.

use std::path::Path;

use crate::error::{Error, Result};

/// A CSV file.
#[derive(Debug)]
pub struct CsvFile;

impl CsvFile {
    /// Opens `path`.
    pub fn open(
        path: &Path,
        _schema: Option<arrow_schema::SchemaRef>,
    ) -> Result<crate::dataset::ipc::IpcFile> {
        Err(Error::Unsupported(format!(
            "{}: CSV is not supported by this build yet",
            path.display()
        )))
    }
}
