//! Reading byte ranges of data files through one of three backends, behind one trait
//! ([`RangeRead`]):
//!
//! * `io_uring` ([`UringReader`]): every range a chunk needs is split into pieces and submitted
//!   together (pieces of up to 2 MiB, 16 in flight; 8 of 1 MiB through the registered
//!   buffers), with one `io_uring_enter` per batch of submissions and
//!   completions. Buffered reads land directly in the destination buffer. With `O_DIRECT` (or
//!   when asked to), pieces go through the ring's own 4 KiB-aligned buffers, registered with the
//!   kernel once (`IORING_REGISTER_BUFFERS`, read with `IORING_OP_READ_FIXED`, so pages are not
//!   pinned per read) and copied out; when registration is refused (`RLIMIT_MEMLOCK`) the same
//!   buffers are read with plain `IORING_OP_READ`.
//! * `pread` ([`PreadReader`]): positioned reads, one range after another. The fallback.
//! * `mmap` ([`MmapReader`]): the file mapped once; a "read" is a zero-copy slice.
//!
//! Rings are process-wide: a small pool, each ring used by one thread at a time and shared by all
//! files. Opening a file for `io_uring` probes it: a ring must be set up (a failure is classified:
//! `ENOSYS`, `EPERM` from seccomp or `kernel.io_uring_disabled`, `ENOMEM` from
//! `RLIMIT_MEMLOCK`, a kernel without `IORING_OP_READ`) and a first read of the file must succeed
//! through it. Otherwise the file is read with `pread`, the reason is kept ([`IoStats`]) and
//! counted (`zenith_io_fallbacks_total{reason}`). `ZENITH_IO_BACKEND=pread|io_uring|mmap` in the
//! environment overrides the loader option (see [`IoOptions::with_env_override`]).
//!
//! One file per backend: [`uring`], [`pread`], [`mmap`] (which also maps whole files for the
//! sources that read them in place); [`aligned`] holds the `O_DIRECT` buffers two of them share;
//! [`file`] opens regular files only (never blocking on a FIFO) and keeps a file's
//! [`FileIdentity`], so readers can tell when the file changed under them.
//! This is the seam where remote storage plugs in: a source asks for byte ranges through
//! [`RangeRead`] and does not care where they come from. A path that is a URL (`s3://...`,
//! see [`remote`]) is opened as a remote object read by ranged requests; its reads count as
//! `pread` in the per-backend series, and [`remote::metrics`] counts the requests.

mod aligned;
pub mod file;
pub mod metrics;
pub mod mmap;
pub mod pread;
pub mod remote;
pub mod uring;

use std::fmt;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::telemetry::metrics::nanos;

pub use file::FileIdentity;
pub use mmap::MmapReader;
pub use pread::PreadReader;
pub use uring::{UringReader, fixed_buffers_registered};

/// How file bytes reach memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IoBackend {
    /// The file is memory-mapped; pages are read by page faults, zero-copy (the default).
    #[default]
    Mmap,
    /// Batched reads through io_uring.
    IoUring,
    /// Positioned reads (`pread`), one range after another.
    Pread,
}

impl IoBackend {
    /// Every backend, in the order of [`Self::index`].
    pub(crate) const ALL: [IoBackend; 3] = [IoBackend::IoUring, IoBackend::Pread, IoBackend::Mmap];

    /// A dense index (0: io_uring, 1: pread, 2: mmap), for per-backend tables.
    pub fn index(self) -> usize {
        match self {
            IoBackend::IoUring => 0,
            IoBackend::Pread => 1,
            IoBackend::Mmap => 2,
        }
    }

    /// The name used in metrics labels and in `ZENITH_IO_BACKEND`.
    pub fn name(self) -> &'static str {
        match self {
            IoBackend::IoUring => "io_uring",
            IoBackend::Pread => "pread",
            IoBackend::Mmap => "mmap",
        }
    }

    /// The backend a name (as [`Self::name`] spells it; `uring` also) stands for.
    pub fn parse(name: &str) -> Option<IoBackend> {
        match name.trim().to_ascii_lowercase().as_str() {
            "io_uring" | "uring" | "io-uring" => Some(IoBackend::IoUring),
            "pread" => Some(IoBackend::Pread),
            "mmap" => Some(IoBackend::Mmap),
            _ => None,
        }
    }
}

impl fmt::Display for IoBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The environment variable that overrides the loader's I/O backend.
pub(crate) const ENV_BACKEND: &str = "ZENITH_IO_BACKEND";

/// How a dataset's files are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoOptions {
    /// The backend asked for.
    pub backend: IoBackend,
    /// Open files with `O_DIRECT` (io_uring and pread only): reads bypass the page cache. File
    /// systems that refuse it (tmpfs) are read buffered, and the stats say so.
    pub direct: bool,
    /// Read through the ring's registered buffers even without `O_DIRECT` (one more copy, no
    /// per-read page pinning). For measurements; `O_DIRECT` always uses them.
    pub fixed_buffers: bool,
}

impl IoOptions {
    /// Applies `ZENITH_IO_BACKEND` (looked up with `lookup`): the backend it names replaces the
    /// option's. Returns the options and a note when the variable changed the backend. An
    /// unknown value is an [`crate::Error::InvalidArgument`].
    pub fn with_env_override(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> crate::Result<(IoOptions, Option<String>)> {
        let Some(value) = lookup(ENV_BACKEND) else {
            return Ok((self, None));
        };
        if value.trim().is_empty() {
            return Ok((self, None));
        }
        let backend = IoBackend::parse(&value).ok_or_else(|| {
            crate::Error::InvalidArgument(format!(
                "environment variable {ENV_BACKEND}={value:?}: expected mmap, io_uring or pread"
            ))
        })?;
        let note = (backend != self.backend).then(|| {
            format!(
                "{ENV_BACKEND}={} overrides the loader option ({})",
                backend.name(),
                self.backend.name()
            )
        });
        self.backend = backend;
        Ok((self, note))
    }
}

/// Why io_uring was not used for a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// `io_uring_setup` is not implemented (`ENOSYS`): a kernel without io_uring, or a sandbox
    /// that hides it.
    NotImplemented,
    /// `kernel.io_uring_disabled` is set (the value): io_uring is off for this process.
    Disabled(u32),
    /// `EPERM` with io_uring enabled: a seccomp filter or a security module denies it.
    Denied,
    /// `ENOMEM`: the ring does not fit `RLIMIT_MEMLOCK` (kernels before 5.12 charge rings to it).
    MemLock,
    /// The kernel has io_uring but not what this reader needs, or a first read failed.
    Unsupported(String),
    /// Another setup failure.
    Other(String),
}

impl Fallback {
    /// A short, fixed label (for `zenith_io_fallbacks_total{reason=...}`).
    pub fn label(&self) -> &'static str {
        match self {
            Fallback::NotImplemented => "enosys",
            Fallback::Disabled(_) => "io_uring_disabled",
            Fallback::Denied => "eperm",
            Fallback::MemLock => "memlock",
            Fallback::Unsupported(_) => "unsupported",
            Fallback::Other(_) => "other",
        }
    }
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fallback::NotImplemented => f.write_str(
                "io_uring unavailable: io_uring_setup failed with ENOSYS (kernel without \
                 io_uring, or a sandbox that hides it); reading with pread",
            ),
            Fallback::Disabled(value) => write!(
                f,
                "io_uring unavailable: kernel.io_uring_disabled = {value} (EPERM); reading with pread"
            ),
            Fallback::Denied => f.write_str(
                "io_uring unavailable: io_uring_setup failed with EPERM (a seccomp filter or \
                 security module denies it); reading with pread",
            ),
            Fallback::MemLock => f.write_str(
                "io_uring unavailable: io_uring_setup failed with ENOMEM (the ring exceeds \
                 RLIMIT_MEMLOCK); reading with pread",
            ),
            Fallback::Unsupported(why) => {
                write!(f, "io_uring unusable: {why}; reading with pread")
            }
            Fallback::Other(why) => write!(f, "io_uring unavailable: {why}; reading with pread"),
        }
    }
}

/// Classifies a failed `io_uring_setup`; `disabled` is `kernel.io_uring_disabled` when readable.
pub fn classify_setup_error(error: &io::Error, disabled: Option<u32>) -> Fallback {
    match error.raw_os_error() {
        Some(libc::ENOSYS) => Fallback::NotImplemented,
        Some(libc::EPERM) => match disabled {
            Some(value) if value != 0 => Fallback::Disabled(value),
            _ => Fallback::Denied,
        },
        Some(libc::ENOMEM) => Fallback::MemLock,
        Some(libc::EINVAL) => {
            Fallback::Unsupported(format!("io_uring_setup rejected its parameters ({error})"))
        }
        _ => Fallback::Other(format!("io_uring_setup: {error}")),
    }
}

/// `kernel.io_uring_disabled` (0: enabled, 1: only for `kernel.io_uring_group`, 2: disabled);
/// `None` on kernels without the knob.
pub fn io_uring_disabled_sysctl() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// What the readers of one dataset have done: the backend in use, why io_uring was not, and the
/// bytes and time of their reads. Shared by the dataset's files; reported by the loader's stats.
#[derive(Debug)]
pub struct IoStats {
    requested: AtomicU8,
    /// 0: no file opened through a reader yet; else 1 + [`IoBackend::index`].
    used: AtomicU8,
    read_bytes: AtomicU64,
    read_ns: AtomicU64,
    notes: Mutex<Vec<String>>,
}

impl Default for IoStats {
    /// Stats of a dataset read with the default backend (mmap).
    fn default() -> Self {
        IoStats::new(IoBackend::default())
    }
}

impl IoStats {
    /// Stats of a dataset whose options ask for `requested`.
    pub fn new(requested: IoBackend) -> Self {
        IoStats {
            requested: AtomicU8::new(requested.index() as u8),
            used: AtomicU8::new(0),
            read_bytes: AtomicU64::new(0),
            read_ns: AtomicU64::new(0),
            notes: Mutex::new(Vec::new()),
        }
    }

    /// The backend asked for (after `ZENITH_IO_BACKEND`).
    pub fn requested(&self) -> IoBackend {
        IoBackend::ALL[usize::from(self.requested.load(Relaxed)).min(2)]
    }

    /// The backend the files are read with: `pread` when any fell back; `None` before any file
    /// was opened through a reader (memory-mapped Arrow IPC files are not).
    pub fn used(&self) -> Option<IoBackend> {
        match self.used.load(Relaxed) {
            0 => None,
            n => Some(IoBackend::ALL[usize::from(n - 1).min(2)]),
        }
    }

    /// Bytes read (for mmap: bytes handed to the decoders).
    pub fn read_bytes(&self) -> u64 {
        self.read_bytes.load(Relaxed)
    }

    /// Nanoseconds spent in reads (0 for mmap, whose reads are page faults during decoding).
    pub fn read_ns(&self) -> u64 {
        self.read_ns.load(Relaxed)
    }

    /// Why the files are not read as asked (io_uring unavailable, `O_DIRECT` refused, the
    /// environment's override), joined with "; ". `None` when everything went as asked.
    pub fn notes(&self) -> Option<String> {
        let notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        (!notes.is_empty()).then(|| notes.join("; "))
    }

    /// Adds a note (each distinct text once).
    pub fn note(&self, text: impl Into<String>) {
        let text = text.into();
        let mut notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        if !notes.contains(&text) {
            notes.push(text);
        }
    }

    fn note_backend(&self, backend: IoBackend) {
        let code = backend.index() as u8 + 1;
        // A fallback (pread) wins over io_uring; otherwise the first one stays.
        let _ = self.used.fetch_update(Relaxed, Relaxed, |old| {
            (old == 0 || (backend == IoBackend::Pread && old != code)).then_some(code)
        });
    }

    fn record(&self, backend: IoBackend, bytes: u64, elapsed: Option<std::time::Duration>) {
        self.read_bytes.fetch_add(bytes, Relaxed);
        if let Some(elapsed) = elapsed {
            self.read_ns.fetch_add(nanos(elapsed), Relaxed);
        }
        metrics::metrics().record(backend, bytes, elapsed);
    }
}

/// Options and stats the files of one dataset share.
#[derive(Debug, Clone)]
pub struct IoContext {
    /// How to read.
    pub options: IoOptions,
    /// What happened.
    pub stats: Arc<IoStats>,
    /// How to reach remote objects (endpoint, credentials, retries, cache).
    pub storage: remote::StorageOptions,
}

impl Default for IoContext {
    /// The default options (mmap), fresh stats.
    fn default() -> Self {
        IoContext::new(IoOptions::default())
    }
}

impl IoContext {
    /// A context reading with `options`.
    pub fn new(options: IoOptions) -> Self {
        IoContext {
            options,
            stats: Arc::new(IoStats::new(options.backend)),
            storage: remote::StorageOptions::default(),
        }
    }

    /// This context, reaching remote objects with `storage`.
    pub fn with_storage(mut self, storage: remote::StorageOptions) -> Self {
        self.storage = storage;
        self
    }

    /// Opens `path` for reading with the context's backend (or its fallback); a URL
    /// (`s3://bucket/key`) through its object store.
    pub fn open(&self, path: &Path) -> io::Result<Arc<dyn RangeRead>> {
        if remote::is_remote(path) {
            let reader = remote::open(path, &self.storage, &self.stats)?;
            self.stats.note_backend(reader.backend());
            return Ok(reader);
        }
        open_reader(path, &self.options, &self.stats)
    }
}

/// Reads byte ranges of one file. Safe to call from several threads at once.
pub trait RangeRead: Send + Sync + fmt::Debug {
    /// The backend doing the reads.
    fn backend(&self) -> IoBackend;

    /// The file's length in bytes.
    fn len(&self) -> u64;

    /// True for an empty file.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The identity the file had when this reader opened it (`None` for readers of something
    /// other than a local file). Reads past a change of the file are the caller's to prevent:
    /// see [`FileIdentity::check`].
    fn identity(&self) -> Option<&FileIdentity> {
        None
    }

    /// Reads every range (each within the file) and returns their bytes, one [`Bytes`] per range
    /// in the given order. io_uring submits all of them at once; the buffers of one call share
    /// one allocation.
    fn read_ranges(&self, ranges: &[Range<u64>]) -> io::Result<Vec<Bytes>>;

    /// Reads one range.
    fn read_range(&self, range: Range<u64>) -> io::Result<Bytes> {
        Ok(self.read_ranges(std::slice::from_ref(&range))?.remove(0))
    }
}

/// Opens `path` with `options.backend`, falling back to `pread` when io_uring is unusable; the
/// fallback's reason and the backend used go to `stats`.
pub fn open_reader(
    path: &Path,
    options: &IoOptions,
    stats: &Arc<IoStats>,
) -> io::Result<Arc<dyn RangeRead>> {
    let reader: Arc<dyn RangeRead> = match options.backend {
        IoBackend::Mmap => Arc::new(MmapReader::open(path, stats.clone())?),
        IoBackend::Pread => {
            let (file, direct) = open_file(path, options.direct, stats)?;
            Arc::new(PreadReader::new(path, file, direct, stats.clone())?)
        }
        IoBackend::IoUring => {
            let (file, direct) = open_file(path, options.direct, stats)?;
            let fixed = options.fixed_buffers;
            match UringReader::new(path, file, direct, fixed, stats.clone()) {
                Ok(reader) => Arc::new(reader),
                Err((file, reason)) => {
                    metrics::metrics().fallback(reason.label());
                    stats.note(reason.to_string());
                    Arc::new(PreadReader::new(path, file, direct, stats.clone())?)
                }
            }
        }
    };
    stats.note_backend(reader.backend());
    Ok(reader)
}

/// Opens `path` read-only, with `O_DIRECT` when asked and the file system allows it; only a
/// regular file (see [`file::open_regular`]).
fn open_file(path: &Path, direct: bool, stats: &IoStats) -> io::Result<(File, bool)> {
    if direct {
        match file::open_regular(path, libc::O_DIRECT) {
            Ok(file) => return Ok((file, true)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                stats.note("O_DIRECT refused by the file system (EINVAL): buffered reads");
            }
            Err(e) => return Err(e),
        }
    }
    Ok((file::open_regular(path, 0)?, false))
}

/// Checks that every range lies within a file of `len` bytes; returns their total length.
fn check_ranges(ranges: &[Range<u64>], len: u64) -> io::Result<usize> {
    let mut total = 0usize;
    for range in ranges {
        if range.start > range.end || range.end > len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("byte range {range:?} is outside the file ({len} bytes)"),
            ));
        }
        total = total
            .checked_add(usize::try_from(range.end - range.start).map_err(|_| too_large())?)
            .ok_or_else(too_large)?;
    }
    Ok(total)
}

fn too_large() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "byte ranges too large for memory",
    )
}

/// One allocation of `total` bytes filled through raw pointers, then split into one [`Bytes`]
/// per range. The memory is never exposed before it is filled.
struct Destination {
    buf: Vec<u8>,
    total: usize,
}

impl Destination {
    fn new(total: usize) -> Self {
        Destination {
            buf: Vec::with_capacity(total),
            total,
        }
    }

    fn ptr(&mut self) -> *mut u8 {
        self.buf.as_mut_ptr()
    }

    /// # Safety
    /// Every byte of the capacity requested at construction has been written.
    unsafe fn into_parts(mut self, ranges: &[Range<u64>]) -> Vec<Bytes> {
        // SAFETY: per the contract, the first `total` bytes (within the capacity) are
        // initialised.
        unsafe { self.buf.set_len(self.total) };
        split(Bytes::from(self.buf), ranges)
    }
}

/// Splits the concatenation of `ranges` into one slice per range.
fn split(all: Bytes, ranges: &[Range<u64>]) -> Vec<Bytes> {
    let mut at = 0usize;
    ranges
        .iter()
        .map(|r| {
            let len = (r.end - r.start) as usize;
            let part = all.slice(at..at + len);
            at += len;
            part
        })
        .collect()
}

/// A [`std::io::Read`] over a [`RangeRead`], from an offset to the end of the file, reading
/// `block` bytes per call to the reader (one batched submission for io_uring).
#[derive(Debug)]
pub struct SequentialRead {
    reader: Arc<dyn RangeRead>,
    pos: u64,
    block: u64,
    buf: Bytes,
}

impl SequentialRead {
    /// Reads `reader` from `start` on, `block` bytes at a time.
    pub fn new(reader: Arc<dyn RangeRead>, start: u64, block: usize) -> Self {
        SequentialRead {
            reader,
            pos: start,
            block: block.max(1) as u64,
            buf: Bytes::new(),
        }
    }
}

impl io::Read for SequentialRead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.buf.is_empty() {
            let len = self.reader.len();
            if self.pos >= len || out.is_empty() {
                return Ok(0);
            }
            let end = len.min(self.pos + self.block);
            self.buf = self.reader.read_range(self.pos..end)?;
            self.pos = end;
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        bytes::Buf::advance(&mut self.buf, n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::uring::{PIECE, Ring, SLOT_SIZE, plan_pieces};
    use super::*;
    use std::io::Write;

    fn sample_file(len: usize) -> (tempfile::NamedTempFile, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&data).unwrap();
        file.flush().unwrap();
        (file, data)
    }

    fn ranges_for(len: u64) -> Vec<Range<u64>> {
        vec![
            0..1,
            5..5,
            100..5000,
            len - 10..len,
            4096..4096 + 3 * SLOT_SIZE as u64 + 17,
            777..(2 * PIECE as u64 + 999),
            0..len,
        ]
    }

    fn check_backend(options: IoOptions, expect: IoBackend) {
        let (file, data) = sample_file((8 << 20) + 12_345);
        let stats = Arc::new(IoStats::new(options.backend));
        let reader = open_reader(file.path(), &options, &stats).unwrap();
        assert_eq!(reader.backend(), expect, "{:?}", stats.notes());
        let ranges = ranges_for(data.len() as u64);
        let parts = reader.read_ranges(&ranges).unwrap();
        for (range, part) in ranges.iter().zip(&parts) {
            assert_eq!(
                &part[..],
                &data[range.start as usize..range.end as usize],
                "{range:?}"
            );
        }
        assert!(reader.read_range(0..data.len() as u64 + 1).is_err());
        assert!(stats.read_bytes() > 0);
        assert_eq!(stats.used(), Some(expect));
        if options.direct && expect != IoBackend::Mmap {
            // Where the temporary directory's file system refuses O_DIRECT, the note says so.
            if let Some(note) = stats.notes() {
                assert!(note.contains("O_DIRECT refused"), "{note}");
                eprintln!("NOTE: {note}");
            }
        }

        let mut all = Vec::new();
        io::Read::read_to_end(
            &mut SequentialRead::new(reader.clone(), 0, 100_000),
            &mut all,
        )
        .unwrap();
        assert!(all == data, "sequential reads cover the file");
        let mut tail = Vec::new();
        io::Read::read_to_end(
            &mut SequentialRead::new(reader, data.len() as u64 - 5, 3),
            &mut tail,
        )
        .unwrap();
        assert_eq!(tail, &data[data.len() - 5..]);
    }

    /// io_uring where this kernel allows it; the test says which path ran.
    fn uring_expected() -> IoBackend {
        match Ring::new() {
            Ok(_) => IoBackend::IoUring,
            Err(reason) => {
                eprintln!("NOTE: io_uring unavailable here ({reason}); the pread fallback ran");
                IoBackend::Pread
            }
        }
    }

    #[test]
    fn every_backend_reads_the_same_bytes() {
        let uring = uring_expected();
        for direct in [false, true] {
            for fixed in [false, true] {
                let options = |backend| IoOptions {
                    backend,
                    direct,
                    fixed_buffers: fixed,
                };
                check_backend(options(IoBackend::IoUring), uring);
                check_backend(options(IoBackend::Pread), IoBackend::Pread);
                check_backend(options(IoBackend::Mmap), IoBackend::Mmap);
            }
        }
        // Say what ran: the registered buffers are used by O_DIRECT and fixed-buffer reads.
        eprintln!(
            "io_uring: {uring}; buffers registered with the kernel: {:?}",
            fixed_buffers_registered()
        );
        if uring == IoBackend::IoUring {
            assert!(fixed_buffers_registered().is_some());
        }
    }

    #[test]
    fn empty_files_and_empty_reads() {
        let (file, _) = sample_file(0);
        for backend in IoBackend::ALL {
            let stats = Arc::new(IoStats::new(backend));
            let options = IoOptions {
                backend,
                ..IoOptions::default()
            };
            let reader = open_reader(file.path(), &options, &stats).unwrap();
            assert!(reader.is_empty());
            assert!(reader.read_ranges(&[]).unwrap().is_empty());
            assert_eq!(reader.read_range(0..0).unwrap().len(), 0);
        }
    }

    #[test]
    fn setup_errors_are_classified() {
        let e = |errno| io::Error::from_raw_os_error(errno);
        assert_eq!(
            classify_setup_error(&e(libc::ENOSYS), Some(0)),
            Fallback::NotImplemented
        );
        assert_eq!(
            classify_setup_error(&e(libc::EPERM), Some(0)),
            Fallback::Denied
        );
        assert_eq!(
            classify_setup_error(&e(libc::EPERM), None),
            Fallback::Denied
        );
        assert_eq!(
            classify_setup_error(&e(libc::EPERM), Some(2)),
            Fallback::Disabled(2)
        );
        assert_eq!(
            classify_setup_error(&e(libc::ENOMEM), Some(0)),
            Fallback::MemLock
        );
        assert_eq!(
            classify_setup_error(&e(libc::EINVAL), None).label(),
            "unsupported"
        );
        assert_eq!(
            classify_setup_error(&e(libc::EMFILE), None).label(),
            "other"
        );
        let text = Fallback::Disabled(2).to_string();
        assert!(text.contains("kernel.io_uring_disabled = 2") && text.contains("pread"));
        assert!(Fallback::MemLock.to_string().contains("RLIMIT_MEMLOCK"));
        assert!(Fallback::Denied.to_string().contains("seccomp"));
    }

    #[test]
    fn the_environment_overrides_the_option() {
        let env = |value: &'static str| {
            move |name: &str| (name == ENV_BACKEND).then(|| value.to_string())
        };
        let uring = IoOptions {
            backend: IoBackend::IoUring,
            ..IoOptions::default()
        };
        let (options, note) = uring.with_env_override(env("pread")).unwrap();
        assert_eq!(options.backend, IoBackend::Pread);
        assert!(note.unwrap().contains("ZENITH_IO_BACKEND=pread overrides"));
        let (options, note) = uring.with_env_override(env("io_uring")).unwrap();
        assert_eq!((options.backend, note), (IoBackend::IoUring, None));
        let (options, _) = uring.with_env_override(env("")).unwrap();
        assert_eq!(options.backend, IoBackend::IoUring);
        assert!(uring.with_env_override(env("aio")).is_err());
        assert_eq!(uring.with_env_override(|_| None).unwrap().0, uring);
    }

    #[test]
    fn pieces_tile_ranges_on_aligned_windows() {
        let base = std::ptr::null_mut::<u8>();
        for (range, align, max) in [
            (0..10_000u64, 4096, 8192usize),
            (5..5000, 4096, 4096),
            (4095..4097, 4096, 4096),
            (1..1_000_000, 1, 65536),
            (123..124, 1, 65536),
        ] {
            let mut pieces = Vec::new();
            plan_pieces(range.clone(), align, max, base, 0, &mut pieces);
            let wanted: usize = pieces.iter().map(|p| p.want).sum();
            assert_eq!(wanted as u64, range.end - range.start, "{range:?}");
            let mut next = range.start;
            for p in &pieces {
                assert_eq!(p.file_off % align, 0);
                assert_eq!(p.span as u64 % align, 0);
                assert!(p.span <= max && p.skip + p.want <= p.span);
                assert_eq!(p.file_off + p.skip as u64, next);
                assert_eq!(p.dst as usize, (next - range.start) as usize);
                next += p.want as u64;
            }
        }
    }
}
