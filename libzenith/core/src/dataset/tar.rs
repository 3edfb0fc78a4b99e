//! Tar shards in the WebDataset layout (`.tar`, also `.tar.gz` / `.tgz` / `.tar.zst`): the files
//! of an archive are grouped by key into rows. A file's key is its path up to the first dot of
//! its name, the rest is its extension (`train/0001.jpg` and `train/0001.cls` are the columns
//! `jpg` and `cls` of the row with key `train/0001`); consecutive files with one key make one
//! row, as WebDataset groups them.
//!
//! The batches have a `__key__` text column, then one binary column per extension found in the
//! archive (sorted by name, lowercased); a row without a file of some extension holds a null
//! there. The archive is read once, at open, and held in memory (to the memory budget).
//!
//! Tar headers are untrusted: every size is checked against the memory budget before anything
//! is allocated for it, header checksums are verified, a file that ends inside an entry is a
//! format error, and entries whose paths are absolute or climb out with `..` are refused (they
//! would name keys outside the archive). Directories, links and other special entries are
//! skipped; nothing is ever written to disk.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::BinaryBuilder;
use arrow_array::{ArrayRef, RecordBatch, StringArray, new_null_array};
use arrow_schema::{DataType, Field, Schema};

use super::compression::{Decompressed, FailureSlot};
use super::source::HeldBatches;
use crate::error::{Error, Result};
use crate::runtime::io::IoContext;

/// Tar's block size: headers are one block, file data is padded to a whole number of blocks.
const BLOCK: usize = 512;

/// Rows per chunk at most.
const CHUNK_ROWS: usize = 1024;

/// File bytes per chunk at most (a chunk with one bigger row holds just that row). Binary
/// columns have 32-bit offsets, so a chunk must stay under 2 GiB per column.
const CHUNK_BYTES: u64 = 256 << 20;

/// The largest file an entry may hold. Binary offsets are 32-bit: a chunk's column holds at most
/// [`CHUNK_BYTES`] from the rows before the last plus one entry of the last, under 2 GiB.
const MAX_ENTRY: u64 = 1 << 30;

/// The largest GNU long name or pax header accepted (real ones are a few hundred bytes).
const MAX_META: u64 = 1 << 20;

/// The name of the key column (WebDataset's).
pub const KEY_COLUMN: &str = "__key__";

/// A tar shard in the WebDataset layout, materialised as Arrow record batches.
#[derive(Debug)]
pub struct TarFile;

impl TarFile {
    /// Reads the archive at `path` through `io` into rows (see the module documentation),
    /// holding at most `budget` bytes of file data (and of decompressed archive, for a
    /// compressed one): past it, an [`Error::OutOfMemory`] naming the file.
    ///
    /// A corrupt or truncated header, an entry that ends early, a key with two files of one
    /// extension, an absolute or `..` path is an [`Error::Format`] naming the file and the
    /// entry. An archive without any file is a format error too.
    pub fn open_with_budget(path: &Path, io: &IoContext, budget: u64) -> Result<HeldBatches> {
        let text = Decompressed::open(path, io, budget)?;
        let failure = text.failure_slot();
        let mut reader = Entries {
            path,
            input: Box::new(text.into_reader()),
            offset: 0,
            failure,
        };
        let mut chunks = Chunks::default();
        let mut held = 0u64;
        while let Some(entry) = reader.next_entry()? {
            let Some((key, ext)) = split_key(&entry.name) else {
                // No extension: WebDataset skips such files too.
                reader.skip(entry.size)?;
                continue;
            };
            held = held
                .saturating_add(entry.size)
                .saturating_add(key.len() as u64);
            if held > budget {
                return Err(Error::over_budget(
                    format!("{}: the files of the tar archive", path.display()),
                    held,
                    budget,
                ));
            }
            if entry.size > MAX_ENTRY {
                return Err(Error::Unsupported(format!(
                    "{}: tar entry {:?} holds {} bytes; entries over 1 GiB are not \
                     supported",
                    path.display(),
                    entry.name,
                    entry.size
                )));
            }
            let data = reader.read_data(&entry)?;
            chunks.add(path, key, ext, data)?;
        }
        chunks.finish(path)
    }
}

/// One file entry of the archive: its full name and size (data follows the header).
struct Entry {
    name: String,
    size: u64,
}

/// Walks the entries of a tar stream.
struct Entries<'a> {
    path: &'a Path,
    input: Box<dyn Read + Send>,
    /// Bytes of the (decompressed) stream read so far, for messages.
    offset: u64,
    failure: FailureSlot,
}

impl Entries<'_> {
    /// A read error: the decompressor's own failure when it had one.
    fn io_error(&self, e: io::Error) -> Error {
        self.failure
            .take()
            .unwrap_or_else(|| Error::io(self.path, e))
    }

    fn truncated(&self, what: impl std::fmt::Display) -> Error {
        Error::format(
            self.path,
            format!(
                "truncated tar archive: the data ends at byte {} inside {what}",
                self.offset
            ),
        )
    }

    /// Reads up to `out.len()` bytes; how many there were before the end.
    fn read_full(&mut self, out: &mut [u8]) -> Result<usize> {
        let mut filled = 0;
        while filled < out.len() {
            match self.input.read(&mut out[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e)),
            }
        }
        self.offset += filled as u64;
        Ok(filled)
    }

    /// Skips `size` bytes of data and their padding.
    fn skip(&mut self, size: u64) -> Result<()> {
        let padded = padded(size);
        let copied = io::copy(&mut (&mut self.input).take(padded), &mut io::sink())
            .map_err(|e| self.io_error(e))?;
        self.offset += copied;
        if copied < size {
            return Err(self.truncated("an entry's data"));
        }
        Ok(())
    }

    /// Reads the data of `entry` (its size already checked against the budget) and skips the
    /// padding after it.
    fn read_data(&mut self, entry: &Entry) -> Result<Vec<u8>> {
        let mut data = Vec::new();
        data.try_reserve_exact(entry.size as usize).map_err(|_| {
            Error::alloc_failed(
                format!("{}: tar entry {:?}", self.path.display(), entry.name),
                entry.size,
            )
        })?;
        let got = (&mut self.input)
            .take(entry.size)
            .read_to_end(&mut data)
            .map_err(|e| self.io_error(e))?;
        self.offset += got as u64;
        if (got as u64) < entry.size {
            return Err(self.truncated(format_args!(
                "entry {:?} (it claims {} bytes, {} are there)",
                entry.name, entry.size, got
            )));
        }
        self.skip_padding(entry.size)?;
        Ok(data)
    }

    fn skip_padding(&mut self, size: u64) -> Result<()> {
        let pad = (padded(size) - size) as usize;
        let mut buf = [0u8; BLOCK];
        // The last entry's padding may be cut short by writers that stop early; its data is
        // whole, so it is kept (the next header read finds the end).
        self.read_full(&mut buf[..pad])?;
        Ok(())
    }

    /// Reads a metadata entry's data (GNU long name, pax header), bounded.
    fn read_meta(&mut self, size: u64, what: &str) -> Result<Vec<u8>> {
        if size > MAX_META {
            return Err(Error::format(
                self.path,
                format!(
                    "corrupt tar archive: a {what} of {size} bytes at byte {} (at most {MAX_META})",
                    self.offset
                ),
            ));
        }
        let entry = Entry {
            name: what.to_owned(),
            size,
        };
        self.read_data(&entry)
    }

    /// The next regular file entry, or `None` at the end of the archive. Metadata entries (GNU
    /// long names, pax headers) are applied to the entry they precede; other entries are skipped.
    fn next_entry(&mut self) -> Result<Option<Entry>> {
        let mut long_name: Option<String> = None;
        let mut pax: BTreeMap<String, String> = BTreeMap::new();
        loop {
            let at = self.offset;
            let mut header = [0u8; BLOCK];
            let got = self.read_full(&mut header)?;
            if got == 0 {
                // An archive without its two zero blocks still ends at an entry boundary.
                return match long_name.is_some() || !pax.is_empty() {
                    true => Err(self.truncated("a header")),
                    false => Ok(None),
                };
            }
            if got < BLOCK {
                return Err(self.truncated("a header"));
            }
            if header.iter().all(|&b| b == 0) {
                return Ok(None);
            }
            let bad = |what: &str| {
                Error::format(
                    self.path,
                    format!(
                        "not a tar archive, or a corrupt one: {what} in the header at byte {at}"
                    ),
                )
            };
            let stored = parse_number(&header[148..156]).ok_or_else(|| bad("no checksum"))?;
            if !checksum_matches(&header, stored) {
                return Err(bad("a wrong checksum"));
            }
            let mut size =
                parse_number(&header[124..136]).ok_or_else(|| bad("an unreadable size"))?;
            let kind = header[156];
            match kind {
                b'L' => {
                    let data = self.read_meta(size, "GNU long name")?;
                    long_name = Some(c_string(&data));
                    continue;
                }
                b'x' => {
                    let data = self.read_meta(size, "pax header")?;
                    parse_pax(&data, &mut pax).ok_or_else(|| bad("a malformed pax header"))?;
                    continue;
                }
                _ => {}
            }
            if let Some(pax_size) = pax.get("size") {
                size = pax_size
                    .parse()
                    .map_err(|_| bad("a pax size that is not a number"))?;
            }
            let name = match (pax.remove("path"), long_name.take()) {
                (Some(name), _) | (None, Some(name)) => name,
                (None, None) => header_name(&header),
            };
            pax.clear();
            // Regular files: '0', NUL (old tars), '7' (contiguous). Everything else (directories,
            // links, devices, FIFOs, global pax headers, GNU extensions) is skipped.
            if !matches!(kind, b'0' | 0 | b'7') {
                self.skip(size)?;
                continue;
            }
            let name = checked_name(&name).ok_or_else(|| {
                Error::format(
                    self.path,
                    format!(
                        "tar entry {name:?} at byte {at}: an empty, absolute or `..` path (an \
                         archive's files must stay inside it)"
                    ),
                )
            })?;
            return Ok(Some(Entry { name, size }));
        }
    }
}

/// `size` rounded up to whole blocks (saturating: a huge size fails as truncated, not wraps).
fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK as u64).saturating_mul(BLOCK as u64)
}

/// A NUL-terminated header field as text.
fn c_string(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// The name a ustar header holds: its prefix field and name field joined.
fn header_name(header: &[u8; BLOCK]) -> String {
    let name = c_string(&header[..100]);
    if &header[257..262] == b"ustar" && header[262] == 0 {
        let prefix = c_string(&header[345..500]);
        if !prefix.is_empty() {
            return format!("{prefix}/{name}");
        }
    }
    name
}

/// A tar number field: octal digits (spaces and NULs around them), or GNU's base-256 form
/// (first byte 0x80) for sizes past 8 GiB. `None` for anything else, or a negative or
/// 64-bit-overflowing value.
fn parse_number(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        if field[0] != 0x80 {
            return None; // 0xff: negative
        }
        let mut value = 0u64;
        for &b in &field[1..] {
            value = value.checked_mul(256)?.checked_add(b as u64)?;
        }
        return Some(value);
    }
    let text = field
        .iter()
        .copied()
        .skip_while(|&b| b == b' ' || b == 0)
        .take_while(|&b| b != b' ' && b != 0);
    let mut value = 0u64;
    let mut digits = 0;
    for b in text {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        value = value.checked_mul(8)?.checked_add((b - b'0') as u64)?;
        digits += 1;
    }
    (digits > 0).then_some(value)
}

/// Whether the header's bytes sum to `stored`, counting the checksum field as spaces (unsigned,
/// as POSIX says, or signed, as some old writers did).
fn checksum_matches(header: &[u8; BLOCK], stored: u64) -> bool {
    let mut unsigned = 0u64;
    let mut signed = 0i64;
    for (i, &b) in header.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += b as u64;
        signed += b as i8 as i64;
    }
    unsigned == stored || signed == stored as i64
}

/// Parses pax records (`"<len> <key>=<value>\n"`) into `out`; `None` when malformed.
fn parse_pax(data: &[u8], out: &mut BTreeMap<String, String>) -> Option<()> {
    let mut rest = data;
    while !rest.is_empty() && rest[0] != 0 {
        let space = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
        if len <= space + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return None;
        }
        let record = &rest[space + 1..len - 1];
        let eq = record.iter().position(|&b| b == b'=')?;
        let key = String::from_utf8_lossy(&record[..eq]).into_owned();
        let value = String::from_utf8_lossy(&record[eq + 1..]).into_owned();
        out.insert(key, value);
        rest = &rest[len..];
    }
    Some(())
}

/// The entry's name with a leading `./` removed; `None` when it is empty, absolute, or has a
/// `..` component.
fn checked_name(name: &str) -> Option<String> {
    let mut name = name;
    while let Some(rest) = name.strip_prefix("./") {
        name = rest;
    }
    if name.is_empty() || name.starts_with('/') || name.split('/').any(|part| part == "..") {
        return None;
    }
    Some(name.to_owned())
}

/// WebDataset's split of a file name: the key (the directory and the name up to its first dot)
/// and the extension (the rest, lowercased). `None` for names without a dot.
fn split_key(name: &str) -> Option<(String, String)> {
    let base_start = name.rfind('/').map_or(0, |i| i + 1);
    let dot = name[base_start..].find('.')? + base_start;
    let ext = &name[dot + 1..];
    if dot == base_start || ext.is_empty() {
        return None;
    }
    Some((name[..dot].to_owned(), ext.to_ascii_lowercase()))
}

/// One row being built: its key and its files by extension.
struct Sample {
    key: String,
    files: BTreeMap<String, Vec<u8>>,
}

/// Rows grouped into chunks as they come, each chunk built into arrays when full.
#[derive(Default)]
struct Chunks {
    /// Built chunks: rows, keys and one array per extension the chunk had.
    built: Vec<(usize, ArrayRef, BTreeMap<String, ArrayRef>)>,
    pending: Vec<Sample>,
    pending_bytes: u64,
    extensions: BTreeSet<String>,
}

impl Chunks {
    fn add(&mut self, path: &Path, key: String, ext: String, data: Vec<u8>) -> Result<()> {
        let size = data.len() as u64;
        let same_key = self.pending.last().is_some_and(|s| s.key == key);
        if !same_key {
            let start_new_chunk = self.pending.len() >= CHUNK_ROWS
                || (self.pending_bytes > 0 && self.pending_bytes + size > CHUNK_BYTES);
            if start_new_chunk {
                self.build()?;
            }
            self.pending.push(Sample {
                key,
                files: BTreeMap::new(),
            });
        }
        let sample = self
            .pending
            .last_mut()
            .expect("a sample was just pushed or found");
        if sample.files.contains_key(&ext) {
            return Err(Error::format(
                path,
                format!(
                    "tar archive: two files with key {:?} and extension {ext:?} (each key's \
                     files must have distinct extensions)",
                    sample.key
                ),
            ));
        }
        self.extensions.insert(ext.clone());
        sample.files.insert(ext, data);
        self.pending_bytes += size;
        Ok(())
    }

    /// Turns the pending rows into arrays.
    fn build(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rows = self.pending.len();
        let keys: ArrayRef = Arc::new(StringArray::from_iter_values(
            self.pending.iter().map(|s| s.key.as_str()),
        ));
        let mut arrays = BTreeMap::new();
        let exts: BTreeSet<&String> = self.pending.iter().flat_map(|s| s.files.keys()).collect();
        for ext in exts {
            let bytes: usize = self
                .pending
                .iter()
                .filter_map(|s| s.files.get(ext))
                .map(Vec::len)
                .sum();
            let mut builder = BinaryBuilder::with_capacity(rows, bytes);
            for sample in &self.pending {
                builder.append_option(sample.files.get(ext));
            }
            arrays.insert(ext.clone(), Arc::new(builder.finish()) as ArrayRef);
        }
        self.built.push((rows, keys, arrays));
        self.pending.clear();
        self.pending_bytes = 0;
        Ok(())
    }

    /// The held batches, every chunk with every extension's column (nulls where it had none).
    fn finish(mut self, path: &Path) -> Result<HeldBatches> {
        self.build()?;
        if self.built.is_empty() {
            return Err(Error::format(
                path,
                "tar archive without any file named <key>.<extension>",
            ));
        }
        let mut fields = vec![Field::new(KEY_COLUMN, DataType::Utf8, false)];
        fields.extend(
            self.extensions
                .iter()
                .map(|ext| Field::new(ext, DataType::Binary, true)),
        );
        let schema = Arc::new(Schema::new(fields));
        let mut batches = Vec::with_capacity(self.built.len());
        for (rows, keys, mut arrays) in self.built {
            let mut columns = vec![keys];
            for ext in &self.extensions {
                columns.push(
                    arrays
                        .remove(ext)
                        .unwrap_or_else(|| new_null_array(&DataType::Binary, rows)),
                );
            }
            batches.push(
                RecordBatch::try_new(schema.clone(), columns)
                    .map_err(|e| Error::arrow_format(path, e))?,
            );
        }
        Ok(HeldBatches::new(path, schema, batches))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_at_the_first_dot_of_the_name() {
        assert_eq!(
            split_key("a.b/0001.seg.PNG"),
            Some(("a.b/0001".into(), "seg.png".into()))
        );
        assert_eq!(split_key("x.jpg"), Some(("x".into(), "jpg".into())));
        assert_eq!(split_key("dir/noext"), None);
        assert_eq!(split_key("dir/.hidden"), None);
        assert_eq!(split_key("x."), None);
    }

    #[test]
    fn numbers_and_names_from_untrusted_headers() {
        assert_eq!(parse_number(b"00000001750\0"), Some(0o1750));
        assert_eq!(parse_number(b"  17 \0"), Some(0o17));
        assert_eq!(parse_number(b"0000000009\0\0"), None);
        assert_eq!(parse_number(b"\0\0\0\0"), None);
        assert_eq!(
            parse_number(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            Some(256)
        );
        assert_eq!(parse_number(&[0xff; 12]), None);
        assert_eq!(
            parse_number(&[0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            None
        );
        assert_eq!(checked_name("./a/b.jpg").as_deref(), Some("a/b.jpg"));
        assert_eq!(checked_name("/etc/passwd"), None);
        assert_eq!(checked_name("a/../../b.jpg"), None);
        assert_eq!(checked_name("./"), None);
        let mut pax = BTreeMap::new();
        assert!(parse_pax(b"19 path=long/a.jpg\n", &mut pax).is_some());
        assert_eq!(pax["path"], "long/a.jpg");
        assert!(parse_pax(b"99 path=x\n", &mut pax).is_none());
        assert!(parse_pax(b"5 a=b\n", &mut pax).is_none());
    }
}
