//! Arrow IPC stream source. NOT YET IMPLEMENTED: being written in a parallel branch; until it lands,
//! opening such a file is a clean `Error::Unsupported`.

use std::path::Path;

use crate::error::{Error, Result};

/// A Arrow IPC stream file.
#[derive(Debug)]
pub struct IpcStreamFile;

impl IpcStreamFile {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<crate::dataset::ipc::IpcFile> {
        Err(Error::Unsupported(format!(
            "{}: Arrow IPC stream is not supported by this build yet",
            path.display()
        )))
    }
}
