//! Arrow IPC *file* format source, read one of two ways:
//!
//! * mapped (the `mmap` backend, the default): the file is mapped copy-on-write and every record
//!   batch is decoded as zero-copy views of the mapped pages. The mapping is owned by an `Arc`
//!   inside each Arrow buffer, so batches (and their C Data Interface exports) keep it alive
//!   after the dataset and the loader are gone.
//! * read (the `pread` and `io_uring` backends): the footer, the dictionaries and each record
//!   batch's block are read through the dataset's I/O backend into memory of their own, so a
//!   batch never depends on the file once read: for files that may change while they are read.
//!
//! Either way the file's identity is taken at open and checked before each record batch is
//! read (see [`Source::check_unchanged`]).

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::{FileDecoder, read_footer_length};
use arrow_ipc::{Block, root_as_footer};
use arrow_schema::SchemaRef;

use super::source::{Source, project_batch};
use crate::batch::validate::ValidatingIpcDecoder;
use crate::error::{Error, Result};
use crate::runtime::io::file::open_regular;
use crate::runtime::io::mmap::{into_buffer, map_file};
use crate::runtime::io::{FileIdentity, IoBackend, IoContext, RangeRead};

/// The magic bytes that open and close an Arrow IPC file.
pub const ARROW_FILE_MAGIC: &[u8; 6] = b"ARROW1";
/// Leading magic, its padding, footer length and trailing magic: nothing smaller is a valid file.
const MIN_FILE_LEN: usize = 6 + 2 + 4 + 6;
/// Trailer: the footer length (i32, little endian) followed by the magic.
const TRAILER_LEN: usize = 4 + 6;

/// An Arrow IPC file. Opening reads the footer, the dictionaries and each record batch's row
/// count; a batch is decoded (and validated) when it is read, so the first batch does not wait
/// for the whole file.
#[derive(Debug)]
pub struct IpcFile {
    path: PathBuf,
    schema: SchemaRef,
    data: Data,
    /// `None` for a remote object (read by range, never mapped).
    identity: Option<FileIdentity>,
    decoder: ValidatingIpcDecoder,
    blocks: Vec<Block>,
    rows: Vec<u64>,
    /// Decoded batches of a mapped file: views of the mapping, validated once, served again
    /// only after a check that the file is unchanged. (Batches read into memory are not kept
    /// here: the loader's chunk cache bounds them.)
    decoded: Vec<OnceLock<std::result::Result<RecordBatch, Arc<Error>>>>,
}

/// Where the file's bytes are.
#[derive(Debug)]
enum Data {
    /// The whole file, mapped copy-on-write.
    Mapped(Buffer),
    /// Read on demand through an I/O backend.
    Read(Arc<dyn RangeRead>),
}

impl Data {
    fn len(&self) -> usize {
        match self {
            Data::Mapped(buffer) => buffer.len(),
            Data::Read(reader) => reader.len() as usize,
        }
    }

    /// The bytes of each range (each within the file): slices of the mapping, or one batched
    /// read into memory.
    fn ranges(&self, path: &Path, ranges: &[Range<usize>]) -> Result<Vec<Buffer>> {
        match self {
            Data::Mapped(buffer) => Ok(ranges
                .iter()
                .map(|r| buffer.slice_with_length(r.start, r.end - r.start))
                .collect()),
            Data::Read(reader) => {
                let wide: Vec<Range<u64>> = ranges
                    .iter()
                    .map(|r| r.start as u64..r.end as u64)
                    .collect();
                let parts = reader.read_ranges(&wide).map_err(|e| Error::io(path, e))?;
                Ok(parts.into_iter().map(Buffer::from).collect())
            }
        }
    }

    fn range(&self, path: &Path, range: Range<usize>) -> Result<Buffer> {
        Ok(self.ranges(path, std::slice::from_ref(&range))?.remove(0))
    }
}

impl IpcFile {
    /// Maps `path` and reads its footer, dictionaries and batch lengths.
    ///
    /// Decoding validates every batch (offsets, UTF-8, lengths), so a corrupt file is a
    /// [`Error::Format`] (here, or from the read that meets the bad batch), never undefined
    /// behaviour.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, &IoContext::default())
    }

    /// [`Self::open`] with the I/O backend of `io`: `mmap` maps the file, `pread` and
    /// `io_uring` read it into memory (footer and dictionaries here, each record batch when it
    /// is read).
    pub fn open_with(path: &Path, io: &IoContext) -> Result<Self> {
        // Remote objects are never mapped: footer, dictionaries and batches come by range.
        let backend = if crate::runtime::io::remote::is_remote(path) {
            IoBackend::Pread
        } else {
            io.options.backend
        };
        let (data, identity) = match backend {
            IoBackend::Mmap => {
                let file = open_regular(path, 0).map_err(|e| Error::io(path, e))?;
                let identity = FileIdentity::of_file(&file).map_err(|e| Error::io(path, e))?;
                check_len(path, identity.len)?;
                let mmap = map_file(&file, identity.len).map_err(|e| Error::io(path, e))?;
                (Data::Mapped(into_buffer(mmap)), Some(identity))
            }
            IoBackend::Pread | IoBackend::IoUring => {
                let reader = io.open(path).map_err(|e| Error::io(path, e))?;
                check_len(path, reader.len())?;
                let identity = reader.identity().copied();
                (Data::Read(reader), identity)
            }
        };
        let head = data.range(path, 0..ARROW_FILE_MAGIC.len())?;
        if head.as_slice() != ARROW_FILE_MAGIC {
            return Err(Error::format(
                path,
                "not an Arrow IPC file (missing leading ARROW1 magic)",
            ));
        }
        if data.len() < MIN_FILE_LEN {
            return Err(Error::format(path, "truncated Arrow IPC file (no footer)"));
        }
        // Decoders are not written for hostile input: a panic on a corrupt file is a format
        // error of that file, not a crash and not a bug report.
        let opened = match catch_unwind(AssertUnwindSafe(|| decode(path, data, identity))) {
            Ok(result) => result,
            Err(_) => Err(Error::format(
                path,
                "corrupt Arrow IPC file (decoder rejected its layout)",
            )),
        }?;
        // What was read must be what the file held all along.
        opened.check_unchanged()?;
        Ok(opened)
    }
}

fn check_len(path: &Path, len: u64) -> Result<()> {
    let len = usize::try_from(len).map_err(|_| Error::format(path, "file too large to map"))?;
    if len < ARROW_FILE_MAGIC.len() {
        return Err(Error::format(
            path,
            "not an Arrow IPC file (too short for the ARROW1 magic)",
        ));
    }
    Ok(())
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

    fn fetch_chunk(&self, index: usize, projection: Option<&[usize]>) -> Result<RecordBatch> {
        let slot = self.decoded.get(index).ok_or_else(|| {
            Error::Internal(format!("{}: no record batch {index}", self.path.display()))
        })?;
        if let Data::Read(_) = self.data {
            let batch = self.decode_batch(index)?;
            return project_batch(&self.path, &batch, projection);
        }
        let decoded = slot.get_or_init(|| self.decode_batch(index).map_err(Arc::new));
        match decoded {
            Ok(batch) => project_batch(&self.path, batch, projection),
            Err(error) => Err(error.replicate()),
        }
    }

    fn in_memory(&self) -> bool {
        matches!(self.data, Data::Mapped(_))
    }

    fn identity(&self) -> Option<&FileIdentity> {
        self.identity.as_ref()
    }

    fn maps_file(&self) -> bool {
        matches!(self.data, Data::Mapped(_))
    }
}

/// Reads the footer, the dictionaries and the batch lengths.
fn decode(path: &Path, data: Data, identity: Option<FileIdentity>) -> Result<IpcFile> {
    let len = data.len();
    let trailer = data.range(path, len - TRAILER_LEN..len)?;
    let trailer: [u8; TRAILER_LEN] = trailer.as_slice().try_into().map_err(|_| {
        Error::format(
            path,
            "truncated Arrow IPC file (the trailer could not be read)",
        )
    })?;
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
    let footer_bytes = data.range(path, footer_end - footer_len..footer_end)?;
    let footer = root_as_footer(&footer_bytes)
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

    let dictionaries: Vec<Block> = footer.dictionaries().iter().flatten().copied().collect();
    let ranges = dictionaries
        .iter()
        .map(|block| block_range(path, len, block))
        .collect::<Result<Vec<_>>>()?;
    for (block, block_data) in dictionaries.iter().zip(data.ranges(path, &ranges)?) {
        decoder
            .read_dictionary(block, &block_data)
            .map_err(|e| Error::arrow_format(path, e))?;
    }
    // Only each batch's metadata is needed for its row count (one batched read when reading).
    // Batches are validated by the core's checks (same rules, faster offsets walk) once the
    // dictionaries, validated by arrow, are in.
    let decoder = ValidatingIpcDecoder::new(decoder, &schema);
    let blocks: Vec<Block> = footer.recordBatches().iter().flatten().copied().collect();
    let metadata = blocks
        .iter()
        .map(|block| {
            let range = block_range(path, len, block)?;
            let meta = usize::try_from(block.metaDataLength()).unwrap_or(0);
            Ok(range.start..range.start + meta.min(range.end - range.start))
        })
        .collect::<Result<Vec<_>>>()?;
    let rows = blocks
        .iter()
        .zip(data.ranges(path, &metadata)?)
        .map(|(block, meta)| record_batch_length(path, &meta, block))
        .collect::<Result<Vec<_>>>()?;
    let decoded = blocks.iter().map(|_| OnceLock::new()).collect();
    Ok(IpcFile {
        path: path.to_path_buf(),
        schema,
        data,
        identity,
        decoder,
        blocks,
        rows,
        decoded,
    })
}

impl IpcFile {
    /// Decodes record batch `index` (fully validated): zero-copy views of the mapping, or of
    /// its block read into memory. The file is checked before it is touched and again after, so
    /// that a batch read while the file changed is an error, not a mix of two files.
    fn decode_batch(&self, index: usize) -> Result<RecordBatch> {
        self.check_unchanged()?;
        let block = &self.blocks[index];
        let range = block_range(&self.path, self.data.len(), block)?;
        let block_data = match self.data.range(&self.path, range) {
            Ok(block_data) => block_data,
            // A short read of a file that shrank says less than "it changed".
            Err(e) => return Err(self.check_unchanged().err().unwrap_or(e)),
        };
        let decode = || {
            self.decoder
                .read_record_batch(block, &block_data)
                .map_err(|e| Error::arrow_format(&self.path, e))?
                .ok_or_else(|| Error::format(&self.path, "Arrow IPC block holds no record batch"))
        };
        // As at open: a decoder panic on corrupt data is a format error of the file.
        let decoded = catch_unwind(AssertUnwindSafe(decode)).unwrap_or_else(|_| {
            Err(Error::format(
                &self.path,
                format!("corrupt Arrow IPC record batch {index}"),
            ))
        });
        self.check_unchanged()?;
        decoded
    }
}

/// The row count a record batch message declares, read from its metadata without decoding it.
fn record_batch_length(path: &Path, meta: &Buffer, block: &Block) -> Result<u64> {
    let corrupt = |why: &str| {
        Error::format(
            path,
            format!("corrupt Arrow IPC record batch header: {why}"),
        )
    };
    let meta_len =
        usize::try_from(block.metaDataLength()).map_err(|_| corrupt("negative length"))?;
    let meta = &meta[..meta_len.min(meta.len())];
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

/// The byte range of one footer block (message metadata followed by its body) in a file of
/// `len` bytes, bounds-checked.
fn block_range(path: &Path, len: usize, block: &Block) -> Result<Range<usize>> {
    let corrupt = || Error::format(path, "corrupt Arrow IPC block (out of the file's bounds)");
    let offset = usize::try_from(block.offset()).map_err(|_| corrupt())?;
    let meta = usize::try_from(block.metaDataLength()).map_err(|_| corrupt())?;
    let body = usize::try_from(block.bodyLength()).map_err(|_| corrupt())?;
    let block_len = meta.checked_add(body).ok_or_else(corrupt)?;
    let end = offset.checked_add(block_len).ok_or_else(corrupt)?;
    if end > len {
        return Err(Error::format(
            path,
            "truncated Arrow IPC file (a record batch lies past its end)",
        ));
    }
    Ok(offset..end)
}
