//! Arrow IPC *stream* format source (`.arrows`, what `pyarrow.ipc.new_stream` writes): the file is
//! memory-mapped (or, with the `pread` and `io_uring` backends, read into memory) and decoded
//! message by message into zero-copy record batches, one chunk per batch.
//!
//! A stream has no footer, so finding its batches means walking every message once; that walk is
//! done at open and the batches (views of the mapping, or of the memory read) are kept. As with
//! IPC files, the mapping is owned by the Arrow buffers, so batches outlive the dataset; batches
//! of a mapping are served only after a check that the file has not changed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::root_as_message;

use super::source::HeldBatches;
use crate::error::{Error, Result};
use crate::runtime::io::file::open_regular;
use crate::runtime::io::mmap::{into_buffer, map_file};
use crate::runtime::io::{FileIdentity, IoBackend, IoContext};

/// The marker before each message's length since Arrow 0.15 (older streams start with the length).
const CONTINUATION_MARKER: [u8; 4] = [0xff; 4];

/// An Arrow IPC stream file, mapped into memory and decoded into zero-copy record batches.
#[derive(Debug)]
pub struct IpcStreamFile;

impl IpcStreamFile {
    /// Maps `path` and decodes its schema, dictionaries and record batches.
    ///
    /// Decoding validates every batch (offsets, UTF-8, lengths). An empty file, a stream without
    /// a schema message, one that ends inside a message, or a message the decoder rejects is an
    /// [`Error::Format`] naming the file. A stream that ends after a complete message without the
    /// end-of-stream marker is accepted, as Arrow's own readers do.
    pub fn open(path: &Path) -> Result<HeldBatches> {
        Self::open_with(path, &IoContext::default())
    }

    /// [`Self::open`] with the I/O backend of `io`: `mmap` maps the file (batches are views of
    /// the mapping), `pread` and `io_uring` read it whole into memory (batches need nothing of
    /// the file afterwards).
    pub fn open_with(path: &Path, io: &IoContext) -> Result<HeldBatches> {
        // Remote objects are read whole into memory (one streamed read), never mapped.
        let backend = if crate::runtime::io::remote::is_remote(path) {
            IoBackend::Pread
        } else {
            io.options.backend
        };
        let (data, mapped) = match backend {
            IoBackend::Mmap => {
                let file = open_regular(path, 0).map_err(|e| Error::io(path, e))?;
                let identity = FileIdentity::of_file(&file).map_err(|e| Error::io(path, e))?;
                check_not_empty(path, identity.len)?;
                let mmap = map_file(&file, identity.len).map_err(|e| Error::io(path, e))?;
                (into_buffer(mmap), Some(identity))
            }
            IoBackend::Pread | IoBackend::IoUring => {
                let reader = io.open(path).map_err(|e| Error::io(path, e))?;
                check_not_empty(path, reader.len())?;
                let bytes = reader
                    .read_range(0..reader.len())
                    .map_err(|e| Error::io(path, e))?;
                (Buffer::from(bytes), None)
            }
        };
        check_byte_order(path, &data)?;
        // Decoders are not written for hostile input: a panic on a corrupt stream is a format
        // error of that file, not a crash.
        let held = match catch_unwind(AssertUnwindSafe(|| decode(path, data))) {
            Ok(result) => result,
            Err(_) => Err(Error::format(
                path,
                "corrupt Arrow IPC stream (the decoder rejected its layout)",
            )),
        }?;
        Ok(match mapped {
            Some(identity) => {
                let held = held.mapped_from(identity);
                // What was decoded must be what the file held all along.
                crate::dataset::Source::check_unchanged(&held)?;
                held
            }
            None => held,
        })
    }
}

fn check_not_empty(path: &Path, len: u64) -> Result<()> {
    if len == 0 {
        return Err(Error::format(
            path,
            "not an Arrow IPC stream (the file is empty)",
        ));
    }
    Ok(())
}

/// Walks the messages of a stream (mapped or read).
fn decode(path: &Path, mut data: Buffer) -> Result<HeldBatches> {
    let mut decoder = StreamDecoder::new();
    let mut batches = Vec::new();
    while !data.is_empty() {
        // `decode` consumes `data` up to the end of the next record batch (or all of it). The
        // batch's buffers are slices of the mapping: the mapping is page-aligned and writers
        // align bodies to 8 bytes (a misaligned buffer would be copied, not misread).
        match decoder
            .decode(&mut data)
            .map_err(|e| Error::format(path, format!("corrupt Arrow IPC stream: {e}")))?
        {
            Some(batch) => batches.push(batch),
            None => break,
        }
    }
    decoder.finish().map_err(|_| {
        Error::format(
            path,
            "truncated Arrow IPC stream (the file ends inside a message)",
        )
    })?;
    let schema = decoder
        .schema()
        .ok_or_else(|| Error::format(path, "not an Arrow IPC stream (no schema message)"))?;
    Ok(HeldBatches::new(path, schema, batches))
}

/// Rejects streams written with the other byte order, which the decoder would misread silently.
///
/// Only the first message (the schema) is inspected; anything unreadable here is left to the
/// decoder, which reports it with more context.
fn check_byte_order(path: &Path, data: &[u8]) -> Result<()> {
    let mut offset = 0;
    if data.len() >= 4 && data[..4] == CONTINUATION_MARKER {
        offset = 4;
    }
    let Some(len_bytes) = data.get(offset..offset + 4) else {
        return Ok(());
    };
    let len = u32::from_le_bytes(len_bytes.try_into().expect("four bytes")) as usize;
    let Some(message) = data.get(offset + 4..).and_then(|rest| rest.get(..len)) else {
        return Ok(());
    };
    let schema = root_as_message(message)
        .ok()
        .and_then(|message| message.header_as_schema());
    match schema {
        Some(schema) if !schema.endianness().equals_to_target_endianness() => {
            Err(Error::Unsupported(format!(
                "{}: Arrow IPC stream written with the other byte order",
                path.display()
            )))
        }
        _ => Ok(()),
    }
}
