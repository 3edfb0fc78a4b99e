//! Arrow IPC *file* format source: the file is memory-mapped and every record batch is decoded as
//! zero-copy views of the mapped pages.
//!
//! The mapping is owned by an `Arc` inside each Arrow buffer, so batches (and their C Data
//! Interface exports) keep it alive after the dataset and the loader are gone.

use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::{FileDecoder, read_footer_length};
use arrow_ipc::{Block, root_as_footer};
use arrow_schema::SchemaRef;

use super::source::{Source, project_batch};
use crate::error::{Error, Result};
use crate::runtime::io::mmap::{into_buffer, map_file};

/// The magic bytes that open and close an Arrow IPC file.
pub const ARROW_FILE_MAGIC: &[u8; 6] = b"ARROW1";
/// Leading magic, its padding, footer length and trailing magic: nothing smaller is a valid file.
const MIN_FILE_LEN: usize = 6 + 2 + 4 + 6;
/// Trailer: the footer length (i32, little endian) followed by the magic.
const TRAILER_LEN: usize = 4 + 6;

/// An Arrow IPC file, mapped into memory. Opening reads the footer, the dictionaries and each
/// record batch's row count; a batch is decoded (and validated) the first time it is read, so the
/// first batch does not wait for the whole file.
#[derive(Debug)]
pub struct IpcFile {
    path: PathBuf,
    schema: SchemaRef,
    data: Buffer,
    decoder: FileDecoder,
    blocks: Vec<Block>,
    rows: Vec<u64>,
    decoded: Vec<OnceLock<std::result::Result<RecordBatch, Arc<Error>>>>,
}

impl IpcFile {
    /// Maps `path` and reads its footer, dictionaries and batch lengths.
    ///
    /// Decoding validates every batch (offsets, UTF-8, lengths), so a corrupt file is a
    /// [`Error::Format`] (here, or from the read that meets the bad batch), never undefined
    /// behaviour.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let len = usize::try_from(len).map_err(|_| Error::format(path, "file too large to map"))?;
        if len < ARROW_FILE_MAGIC.len() {
            return Err(Error::format(
                path,
                "not an Arrow IPC file (too short for the ARROW1 magic)",
            ));
        }
        let mmap = map_file(&file).map_err(|e| Error::io(path, e))?;
        if &mmap[..ARROW_FILE_MAGIC.len()] != ARROW_FILE_MAGIC {
            return Err(Error::format(
                path,
                "not an Arrow IPC file (missing leading ARROW1 magic)",
            ));
        }
        if len < MIN_FILE_LEN {
            return Err(Error::format(path, "truncated Arrow IPC file (no footer)"));
        }
        let data = into_buffer(mmap);
        // Decoders are not written for hostile input: a panic on a corrupt file is a format
        // error of that file, not a crash and not a bug report.
        match catch_unwind(AssertUnwindSafe(|| decode(path, &data))) {
            Ok(result) => result,
            Err(_) => Err(Error::format(
                path,
                "corrupt Arrow IPC file (decoder rejected its layout)",
            )),
        }
    }
}

impl Source for IpcFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn chunk_rows(&self) -> &[u64] {
        &self.rows
    }

    fn chunk_decoded_bytes(&self, index: usize, projection: Option<&[usize]>) -> u64 {
        // The body holds every column; a projection keeps about its share of it.
        let body = self
            .blocks
            .get(index)
            .map_or(0, |b| b.bodyLength().max(0) as u64);
        let columns = self.schema.fields().len().max(1) as u64;
        projection.map_or(body, |p| body * p.len() as u64 / columns)
    }

    fn read_chunk(&self, index: usize, projection: Option<&[usize]>) -> Result<RecordBatch> {
        let slot = self.decoded.get(index).ok_or_else(|| {
            Error::Internal(format!("{}: no record batch {index}", self.path.display()))
        })?;
        let decoded = slot.get_or_init(|| self.decode_batch(index).map_err(Arc::new));
        match decoded {
            Ok(batch) => project_batch(&self.path, batch, projection),
            Err(error) => Err(error.replicate()),
        }
    }

    fn in_memory(&self) -> bool {
        true
    }
}

/// Reads the footer, the dictionaries and the batch lengths of a mapped file.
fn decode(path: &Path, data: &Buffer) -> Result<IpcFile> {
    let len = data.len();
    let trailer: [u8; TRAILER_LEN] = data[len - TRAILER_LEN..]
        .try_into()
        .expect("fixed-size slice");
    if &trailer[4..] != ARROW_FILE_MAGIC {
        return Err(Error::format(
            path,
            "truncated Arrow IPC file (missing trailing ARROW1 magic)",
        ));
    }
    let footer_len = read_footer_length(trailer).map_err(|e| Error::arrow_format(path, e))?;
    let footer_end = len - TRAILER_LEN;
    if footer_len > footer_end - ARROW_FILE_MAGIC.len() {
        return Err(Error::format(
            path,
            format!("corrupt Arrow IPC footer length {footer_len}"),
        ));
    }
    let footer = root_as_footer(&data[footer_end - footer_len..footer_end])
        .map_err(|e| Error::format(path, format!("corrupt Arrow IPC footer: {e}")))?;
    let ipc_schema = footer
        .schema()
        .ok_or_else(|| Error::format(path, "Arrow IPC footer has no schema"))?;
    if !ipc_schema.endianness().equals_to_target_endianness() {
        return Err(Error::Unsupported(format!(
            "{}: Arrow IPC file written with the other byte order",
            path.display()
        )));
    }
    let schema = Arc::new(
        arrow_ipc::convert::try_fb_to_schema(ipc_schema)
            .map_err(|e| Error::arrow_format(path, e))?,
    );
    let mut decoder = FileDecoder::new(schema.clone(), footer.version());

    for block in footer.dictionaries().iter().flatten() {
        let block_data = block_slice(path, data, block)?;
        decoder
            .read_dictionary(block, &block_data)
            .map_err(|e| Error::arrow_format(path, e))?;
    }
    let mut blocks = Vec::new();
    let mut rows = Vec::new();
    for block in footer.recordBatches().iter().flatten() {
        rows.push(record_batch_length(
            path,
            &block_slice(path, data, block)?,
            block,
        )?);
        blocks.push(*block);
    }
    let decoded = blocks.iter().map(|_| OnceLock::new()).collect();
    Ok(IpcFile {
        path: path.to_path_buf(),
        schema,
        data: data.clone(),
        decoder,
        blocks,
        rows,
        decoded,
    })
}

impl IpcFile {
    /// Decodes record batch `index` (zero-copy views of the mapping, fully validated).
    fn decode_batch(&self, index: usize) -> Result<RecordBatch> {
        let block = &self.blocks[index];
        let block_data = block_slice(&self.path, &self.data, block)?;
        let decode = || {
            self.decoder
                .read_record_batch(block, &block_data)
                .map_err(|e| Error::arrow_format(&self.path, e))?
                .ok_or_else(|| Error::format(&self.path, "Arrow IPC block holds no record batch"))
        };
        // As at open: a decoder panic on corrupt data is a format error of the file.
        catch_unwind(AssertUnwindSafe(decode)).unwrap_or_else(|_| {
            Err(Error::format(
                &self.path,
                format!("corrupt Arrow IPC record batch {index}"),
            ))
        })
    }
}

/// The row count a record batch message declares, read from its metadata without decoding it.
fn record_batch_length(path: &Path, block_data: &Buffer, block: &Block) -> Result<u64> {
    let corrupt = |why: &str| {
        Error::format(
            path,
            format!("corrupt Arrow IPC record batch header: {why}"),
        )
    };
    let meta_len =
        usize::try_from(block.metaDataLength()).map_err(|_| corrupt("negative length"))?;
    let meta = &block_data[..meta_len.min(block_data.len())];
    // Encapsulated message: [0xFFFFFFFF] <i32 length> <flatbuffer Message>.
    let prefix = if meta.len() >= 4 && meta[..4] == [0xff; 4] {
        8
    } else {
        4
    };
    if meta.len() < prefix {
        return Err(corrupt("too short"));
    }
    let message =
        arrow_ipc::root_as_message(&meta[prefix..]).map_err(|e| corrupt(&e.to_string()))?;
    let batch = message
        .header_as_record_batch()
        .ok_or_else(|| corrupt("not a record batch"))?;
    u64::try_from(batch.length()).map_err(|_| corrupt("negative row count"))
}

/// The bytes of one footer block (message metadata followed by its body), bounds-checked.
fn block_slice(path: &Path, data: &Buffer, block: &Block) -> Result<Buffer> {
    let corrupt = || Error::format(path, "corrupt Arrow IPC block (out of the file's bounds)");
    let offset = usize::try_from(block.offset()).map_err(|_| corrupt())?;
    let meta = usize::try_from(block.metaDataLength()).map_err(|_| corrupt())?;
    let body = usize::try_from(block.bodyLength()).map_err(|_| corrupt())?;
    let block_len = meta.checked_add(body).ok_or_else(corrupt)?;
    let end = offset.checked_add(block_len).ok_or_else(corrupt)?;
    if end > data.len() {
        return Err(Error::format(
            path,
            "truncated Arrow IPC file (a record batch lies past its end)",
        ));
    }
    Ok(data.slice_with_length(offset, block_len))
}
