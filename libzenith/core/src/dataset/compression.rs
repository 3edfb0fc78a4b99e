//! Whole-file compression of text and tar datasets (`.csv.gz`, `.jsonl.zst`, `.tar.gz`, ...):
//! which codec a file uses, and a streamed reader of its decompressed bytes.
//!
//! Files are decompressed as they are parsed, a block at a time; the decompressed text is never
//! held whole. A decompression bomb is bounded: a stream that inflates past the memory budget
//! stops with an [`Error::OutOfMemory`] naming the file, whatever the parser was doing.

use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes};

use crate::error::{Error, Result};
use crate::runtime::io::{IoContext, RangeRead, SequentialRead};

/// Bytes read from the file at a time, and decompressed bytes kept as the head of a stream.
const READ_BLOCK: usize = 4 << 20;

/// How a whole file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Not compressed.
    None,
    /// gzip (one or more members, as `gzip` and Python's `gzip` module write).
    Gzip,
    /// Zstandard (one or more frames).
    Zstd,
}

impl Compression {
    /// The codec a file's first bytes announce (magic numbers cannot lie): gzip `1f 8b`, zstd
    /// `28 b5 2f fd`; [`Compression::None`] otherwise.
    pub fn from_magic(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The codec a file name's last extension names (`.gz`, `.gzip`, `.zst`, `.zstd`), and the
    /// name without that extension (`train.csv.gz` → `train.csv`), for the format beneath.
    pub fn from_name(path: &Path) -> (Compression, &Path) {
        let codec = match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("gz") || ext.eq_ignore_ascii_case("gzip") => {
                Compression::Gzip
            }
            Some(ext) if ext.eq_ignore_ascii_case("zst") || ext.eq_ignore_ascii_case("zstd") => {
                Compression::Zstd
            }
            _ => return (Compression::None, path),
        };
        let stem = path.file_stem().map(Path::new).unwrap_or(path);
        (codec, stem)
    }

    /// A short lowercase name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// The decompressed bytes of a file, streamed: the first block (`head`, kept for schema
/// inference and block sizing) and a reader of the rest.
pub struct Decompressed {
    head: Bytes,
    /// True when `head` is the whole content.
    complete: bool,
    codec: Compression,
    rest: Box<dyn Read + Send>,
    /// The file's reader, for an uncompressed file's inference sample (which may read past the
    /// head without decompressing anything twice).
    file: Arc<dyn RangeRead>,
    /// Why the decompressed stream stopped early (a bomb, corrupt data), when it did: parsers
    /// see only an I/O error, this says what it was.
    failure: Arc<Mutex<Option<Error>>>,
}

impl std::fmt::Debug for Decompressed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decompressed")
            .field("head", &self.head.len())
            .field("complete", &self.complete)
            .field("codec", &self.codec)
            .finish_non_exhaustive()
    }
}

impl Decompressed {
    /// Opens `path` through `io` and starts decompressing it (the codec from its magic bytes).
    /// At most `budget` decompressed bytes are read: past them, reading stops and
    /// [`Self::failure`] is an [`Error::OutOfMemory`].
    pub fn open(path: &Path, io: &IoContext, budget: u64) -> Result<Decompressed> {
        let file = io.open(path).map_err(|e| Error::io(path, e))?;
        let first = file
            .read_range(0..file.len().min(READ_BLOCK as u64))
            .map_err(|e| Error::io(path, e))?;
        let codec = Compression::from_magic(&first);
        let failure = Arc::new(Mutex::new(None));
        if codec == Compression::None {
            let complete = first.len() as u64 == file.len();
            let rest = SequentialRead::new(file.clone(), first.len() as u64, READ_BLOCK);
            return Ok(Decompressed {
                head: first,
                complete,
                codec,
                rest: Box::new(rest),
                file,
                failure,
            });
        }
        let compressed = first.clone().reader().chain(SequentialRead::new(
            file.clone(),
            first.len() as u64,
            READ_BLOCK,
        ));
        let decoder: Box<dyn Read + Send> = match codec {
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(compressed)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::new(compressed)
                    .map_err(|e| decode_error(path, codec, &e))?,
            ),
            Compression::None => unreachable!("handled above"),
        };
        let mut rest: Box<dyn Read + Send> = Box::new(Bounded {
            inner: decoder,
            path: path.to_path_buf(),
            codec,
            read: 0,
            budget,
            failure: failure.clone(),
        });
        let mut head = Vec::new();
        let complete = fill(&mut rest, &mut head, READ_BLOCK).map_err(|e| {
            failure
                .lock()
                .ok()
                .and_then(|mut f| f.take())
                .unwrap_or_else(|| Error::io(path, e))
        })?;
        Ok(Decompressed {
            head: Bytes::from(head),
            complete,
            codec,
            rest,
            file,
            failure,
        })
    }

    /// The first decompressed bytes (up to 4 MiB).
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// The codec the file uses.
    pub fn codec(&self) -> Compression {
        self.codec
    }

    /// Bytes to infer a schema from: an uncompressed file whole (read again from disk, lazily;
    /// inference stops after its sample of records), a compressed one's head, cut after its last
    /// complete line when more follows (decompressing twice would cost as much as parsing).
    pub fn sample(&self) -> Box<dyn Read + Send + '_> {
        if self.codec == Compression::None {
            let rest = SequentialRead::new(self.file.clone(), self.head.len() as u64, READ_BLOCK);
            return Box::new(self.head.clone().reader().chain(rest));
        }
        let cut = if self.complete {
            self.head.len()
        } else {
            self.head
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(self.head.len(), |at| at + 1)
        };
        Box::new(&self.head[..cut])
    }

    /// A handle on the failure slot, to ask after the stream was handed to a parser.
    pub fn failure_slot(&self) -> FailureSlot {
        FailureSlot(self.failure.clone())
    }

    /// The whole decompressed content, as one reader.
    pub fn into_reader(self) -> impl Read + Send {
        self.head.reader().chain(self.rest)
    }
}

/// Where a [`Decompressed`] stream leaves the reason it stopped early.
#[derive(Debug, Clone)]
pub struct FailureSlot(Arc<Mutex<Option<Error>>>);

impl FailureSlot {
    /// The failure, if the stream stopped early (taken).
    pub fn take(&self) -> Option<Error> {
        self.0.lock().ok().and_then(|mut f| f.take())
    }
}

/// Reads into `out` until it holds `limit` bytes or the stream ends; true when it ended.
fn fill(reader: &mut dyn Read, out: &mut Vec<u8>, limit: usize) -> io::Result<bool> {
    out.reserve(limit.min(1 << 16));
    let mut block = vec![0u8; 64 << 10];
    while out.len() < limit {
        let want = (limit - out.len()).min(block.len());
        match reader.read(&mut block[..want]) {
            Ok(0) => return Ok(true),
            Ok(n) => out.extend_from_slice(&block[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

fn decode_error(path: &Path, codec: Compression, e: &io::Error) -> Error {
    Error::format(
        path,
        format!("corrupt or truncated {} data: {e}", codec.name()),
    )
}

/// A decoder that counts what it yields and stops past the budget; its errors are recorded as
/// the stream's failure, with the file named.
struct Bounded {
    inner: Box<dyn Read + Send>,
    path: std::path::PathBuf,
    codec: Compression,
    read: u64,
    budget: u64,
    failure: Arc<Mutex<Option<Error>>>,
}

impl Bounded {
    fn fail(&self, error: Error) -> io::Error {
        let message = error.to_string();
        if let Ok(mut slot) = self.failure.lock() {
            slot.get_or_insert(error);
        }
        io::Error::other(message)
    }
}

impl Read for Bounded {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = match self.inner.read(out) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => return Err(self.fail(decode_error(&self.path, self.codec, &e))),
        };
        self.read = self.read.saturating_add(n as u64);
        if self.read > self.budget {
            return Err(self.fail(Error::over_budget(
                format!(
                    "{}: the decompressed {} stream",
                    self.path.display(),
                    self.codec.name()
                ),
                self.read,
                self.budget,
            )));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn codecs_are_named_by_magic_and_by_extension() {
        assert_eq!(Compression::from_magic(&gzip(b"x")), Compression::Gzip);
        let zst = zstd::encode_all(&b"x"[..], 1).unwrap();
        assert_eq!(Compression::from_magic(&zst), Compression::Zstd);
        assert_eq!(Compression::from_magic(b"a,b\n"), Compression::None);
        let (codec, inner) = Compression::from_name(Path::new("d/train.csv.GZ"));
        assert_eq!((codec, inner), (Compression::Gzip, Path::new("train.csv")));
        let (codec, inner) = Compression::from_name(Path::new("x.jsonl.zst"));
        assert_eq!((codec, inner), (Compression::Zstd, Path::new("x.jsonl")));
        assert_eq!(
            Compression::from_name(Path::new("x.csv")),
            (Compression::None, Path::new("x.csv"))
        );
    }

    #[test]
    fn streams_decompress_whole_and_bombs_stop_at_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let text: Vec<u8> = b"a,b\n1,2\n".repeat(1 << 20); // 8 MiB: more than one head block
        let path = dir.path().join("t.csv.gz");
        std::fs::write(&path, gzip(&text)).unwrap();
        let stream = Decompressed::open(&path, &IoContext::default(), 1 << 30).unwrap();
        assert_eq!(stream.codec(), Compression::Gzip);
        let mut sample = Vec::new();
        stream.sample().read_to_end(&mut sample).unwrap();
        assert!(sample.ends_with(b"\n") && sample.len() <= READ_BLOCK);
        let mut all = Vec::new();
        stream.into_reader().read_to_end(&mut all).unwrap();
        assert_eq!(all, text);

        // 8 MiB of text against a 1 MiB budget: an out-of-memory error naming the file.
        let err = Decompressed::open(&path, &IoContext::default(), 1 << 20).unwrap_err();
        assert!(matches!(err, Error::OutOfMemory { .. }), "{err}");
        assert!(err.to_string().contains("t.csv.gz"), "{err}");
        let stream = Decompressed::open(&path, &IoContext::default(), 6 << 20).unwrap();
        let slot = stream.failure_slot();
        let mut all = Vec::new();
        assert!(stream.into_reader().read_to_end(&mut all).is_err());
        assert!(matches!(slot.take(), Some(Error::OutOfMemory { .. })));

        // A truncated gzip member is a format error of the file.
        let cut = dir.path().join("cut.csv.gz");
        let whole = gzip(&text);
        std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
        // (Within the first block: reported by open.)
        let err = Decompressed::open(&cut, &IoContext::default(), 1 << 30).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{err}");
        assert!(err.to_string().contains("gzip"), "{err}");
    }
}
