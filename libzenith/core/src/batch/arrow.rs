//! Arrow C Data Interface exports of record batches and schemas.
//!
//! A record batch is exported as a struct array (format `+s`) whose children are the columns, as
//! the C Data Interface specifies for record batches. The export holds references to the batch's
//! buffers, so memory it shares with a memory-mapped file stays mapped until `release` is called.

use arrow_array::{Array, RecordBatch, StructArray};
use arrow_data::ffi::FFI_ArrowArray;
use arrow_schema::Schema;
use arrow_schema::ffi::FFI_ArrowSchema;

use crate::error::{Error, Result};

/// Exports `schema` as a C Data Interface struct schema.
pub fn export_schema(schema: &Schema) -> Result<FFI_ArrowSchema> {
    FFI_ArrowSchema::try_from(schema).map_err(|e| {
        Error::Unsupported(format!(
            "schema cannot be exported over the C Data Interface: {e}"
        ))
    })
}

/// Exports `batch` as a C Data Interface struct array, without copying its buffers.
pub fn export_array(batch: &RecordBatch) -> FFI_ArrowArray {
    let array = StructArray::from(batch.clone());
    FFI_ArrowArray::new(&array.to_data())
}
