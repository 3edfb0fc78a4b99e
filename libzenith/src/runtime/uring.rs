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

use std::alloc::Layout;
use std::collections::VecDeque;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use io_uring::{IoUring, opcode, types};
use memmap2::Mmap;

use crate::telemetry::{metrics::nanos, registry};

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
    /// was opened through a reader (Arrow IPC files are always memory-mapped).
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
        registry().io.record(backend, bytes, elapsed);
    }
}

/// Options and stats the files of one dataset share.
#[derive(Debug, Clone)]
pub struct IoContext {
    /// How to read.
    pub options: IoOptions,
    /// What happened.
    pub stats: Arc<IoStats>,
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
        }
    }

    /// Opens `path` for reading with the context's backend (or its fallback).
    pub fn open(&self, path: &Path) -> io::Result<Arc<dyn RangeRead>> {
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
                    registry().io_fallback(reason.label());
                    stats.note(reason.to_string());
                    Arc::new(PreadReader::new(path, file, direct, stats.clone())?)
                }
            }
        }
    };
    stats.note_backend(reader.backend());
    Ok(reader)
}

/// Opens `path` read-only, with `O_DIRECT` when asked and the file system allows it.
fn open_file(path: &Path, direct: bool, stats: &IoStats) -> io::Result<(File, bool)> {
    if direct {
        match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
        {
            Ok(file) => return Ok((file, true)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                stats.note("O_DIRECT refused by the file system (EINVAL): buffered reads");
            }
            Err(e) => return Err(e),
        }
    }
    Ok((File::open(path)?, false))
}

/// The alignment `O_DIRECT` reads use for offsets, lengths and memory (enough for every logical
/// block size up to 4 KiB).
const DIRECT_ALIGN: u64 = 4096;

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

// ---- mmap ---------------------------------------------------------------------------------------

/// The file mapped into memory; ranges are zero-copy slices of the mapping.
#[derive(Debug)]
pub struct MmapReader {
    data: Bytes,
    stats: Arc<IoStats>,
}

impl MmapReader {
    /// Maps `path` (an empty file maps to nothing).
    pub fn open(path: &Path, stats: Arc<IoStats>) -> io::Result<Self> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let data = if len == 0 {
            Bytes::new()
        } else {
            // SAFETY: read-only mapping; like every memory-mapped source, the file must not be
            // truncated while it is read (documented at zenith_loader_open).
            Bytes::from_owner(unsafe { Mmap::map(&file) }?)
        };
        Ok(MmapReader { data, stats })
    }

    /// The whole mapping.
    pub fn bytes(&self) -> &Bytes {
        &self.data
    }
}

impl RangeRead for MmapReader {
    fn backend(&self) -> IoBackend {
        IoBackend::Mmap
    }

    fn len(&self) -> u64 {
        self.data.len() as u64
    }

    fn read_ranges(&self, ranges: &[Range<u64>]) -> io::Result<Vec<Bytes>> {
        let total = check_ranges(ranges, self.len())?;
        self.stats.record(IoBackend::Mmap, total as u64, None);
        Ok(ranges
            .iter()
            .map(|r| self.data.slice(r.start as usize..r.end as usize))
            .collect())
    }
}

// ---- pread --------------------------------------------------------------------------------------

/// Positioned reads, range after range (with `O_DIRECT`, through an aligned bounce buffer).
#[derive(Debug)]
pub struct PreadReader {
    path: PathBuf,
    file: File,
    len: u64,
    direct: bool,
    stats: Arc<IoStats>,
}

impl PreadReader {
    /// Reads `file` (opened from `path`, with `O_DIRECT` when `direct`).
    pub fn new(path: &Path, file: File, direct: bool, stats: Arc<IoStats>) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(PreadReader {
            path: path.to_path_buf(),
            file,
            len,
            direct,
            stats,
        })
    }

    /// Fills `len` bytes at `dst` from `offset`.
    ///
    /// # Safety
    /// `dst` is valid for `len` bytes of writes.
    unsafe fn fill(&self, dst: *mut u8, offset: u64, len: usize) -> io::Result<()> {
        let fd = self.file.as_raw_fd();
        let mut done = 0usize;
        while done < len {
            // SAFETY: `dst + done .. dst + len` is writable per the contract.
            let n = unsafe {
                libc::pread(
                    fd,
                    dst.add(done).cast(),
                    len - done,
                    (offset + done as u64) as libc::off_t,
                )
            };
            match n {
                n if n > 0 => done += n as usize,
                0 => return Err(unexpected_eof(&self.path, offset + done as u64)),
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    /// `O_DIRECT`: aligned reads into a bounce buffer (4 MiB: the block layer splits a large read
    /// into parallel requests), copied to `dst`.
    ///
    /// # Safety
    /// `dst` is valid for `len` bytes of writes.
    unsafe fn fill_direct(
        &self,
        bounce: &mut AlignedBuf,
        dst: *mut u8,
        offset: u64,
        len: usize,
    ) -> io::Result<()> {
        let fd = self.file.as_raw_fd();
        let end = offset + len as u64;
        let mut window = align_down(offset, DIRECT_ALIGN);
        while window < end {
            let span = (align_up(end, DIRECT_ALIGN) - window).min(bounce.len as u64) as usize;
            let mut got = 0usize;
            while got < span {
                // SAFETY: the bounce buffer holds `bounce.len >= span` bytes.
                let n = unsafe {
                    libc::pread(
                        fd,
                        bounce.ptr.add(got).cast(),
                        span - got,
                        (window + got as u64) as libc::off_t,
                    )
                };
                if n > 0 {
                    got += n as usize;
                } else if n == 0 {
                    break; // end of file: the last block is short
                } else {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
            let from = offset.max(window);
            let to = end.min(window + span as u64);
            if window + (got as u64) < to {
                return Err(unexpected_eof(&self.path, window + got as u64));
            }
            // SAFETY: both regions are valid for the copied length and do not overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    bounce.ptr.add((from - window) as usize),
                    dst.add((from - offset) as usize),
                    (to - from) as usize,
                );
            }
            window += span as u64;
        }
        Ok(())
    }
}

impl RangeRead for PreadReader {
    fn backend(&self) -> IoBackend {
        IoBackend::Pread
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn read_ranges(&self, ranges: &[Range<u64>]) -> io::Result<Vec<Bytes>> {
        let total = check_ranges(ranges, self.len)?;
        let started = Instant::now();
        let mut dst = Destination::new(total);
        let base = dst.ptr();
        let mut bounce = if self.direct {
            Some(AlignedBuf::new(4 << 20)?)
        } else {
            None
        };
        let mut at = 0usize;
        for range in ranges {
            let len = (range.end - range.start) as usize;
            // SAFETY: `base + at .. + len` lies within the `total` bytes of `dst`.
            unsafe {
                match bounce.as_mut() {
                    Some(bounce) => self.fill_direct(bounce, base.add(at), range.start, len)?,
                    None => self.fill(base.add(at), range.start, len)?,
                }
            }
            at += len;
        }
        // SAFETY: every range was filled, and together they are the `total` bytes.
        let parts = unsafe { dst.into_parts(ranges) };
        self.stats
            .record(IoBackend::Pread, total as u64, Some(started.elapsed()));
        Ok(parts)
    }
}

fn unexpected_eof(path: &Path, offset: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!(
            "{}: end of file at byte {offset} (did the file shrink?)",
            path.display()
        ),
    )
}

fn align_down(value: u64, align: u64) -> u64 {
    value / align * align
}

fn align_up(value: u64, align: u64) -> u64 {
    value.div_ceil(align) * align
}

/// Heap memory aligned for `O_DIRECT`.
struct AlignedBuf {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: a plain heap allocation owned by this value.
unsafe impl Send for AlignedBuf {}

impl AlignedBuf {
    fn new(len: usize) -> io::Result<Self> {
        let layout = Self::layout(len)?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc(layout) };
        if ptr.is_null() {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        Ok(AlignedBuf { ptr, len })
    }

    fn layout(len: usize) -> io::Result<Layout> {
        Layout::from_size_align(len.max(1), DIRECT_ALIGN as usize).map_err(|_| too_large())
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, Self::layout(self.len).expect("valid layout")) };
    }
}

impl fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AlignedBuf({} bytes)", self.len)
    }
}

// ---- io_uring -----------------------------------------------------------------------------------

/// Submission queue entries per ring.
const RING_ENTRIES: u32 = 64;
/// Reads in flight at once when reading straight into the destination. Fewer, larger buffered
/// reads disturb the kernel's sequential readahead less: in `make bench-io`, 16 x 2 MiB read a
/// cold file faster than 32 x 512 KiB.
const MAX_IN_FLIGHT: usize = 16;
/// The largest piece one read submits when reading straight into the destination.
const PIECE: usize = 2 << 20;
/// Registered buffers per ring, and the size of each: 8 MiB pinned per ring, the common
/// `RLIMIT_MEMLOCK` of an unprivileged process (a ring whose registration is refused reads into
/// the same buffers unregistered). In `make bench-io`, 1 MiB pieces read `O_DIRECT` faster than
/// 256 KiB ones.
const SLOTS: usize = 8;
const SLOT_SIZE: usize = 1 << 20;
/// Idle rings the pool keeps.
const POOL_MAX_IDLE: usize = 16;

/// A ring and, once a read needed them, its aligned buffers (registered when the kernel allows).
struct Ring {
    ring: IoUring,
    slots: Option<Slots>,
}

struct Slots {
    buf: AlignedBuf,
    registered: bool,
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("fd", &self.ring.as_raw_fd())
            .field("slots", &self.slots.as_ref().map(|s| s.registered))
            .finish()
    }
}

/// 0: never tried; 1: registered; 2: refused (plain reads into the same buffers).
static FIXED_BUFFERS: AtomicU8 = AtomicU8::new(0);

/// Whether the last ring that set up its buffers could register them with the kernel (`None`
/// before any did). For benchmarks and diagnostics.
pub fn fixed_buffers_registered() -> Option<bool> {
    match FIXED_BUFFERS.load(Relaxed) {
        0 => None,
        n => Some(n == 1),
    }
}

impl Ring {
    /// Sets up a ring and checks that the kernel has `IORING_OP_READ` (5.6).
    fn new() -> Result<Ring, Fallback> {
        let ring = IoUring::builder()
            .build(RING_ENTRIES)
            .map_err(|e| classify_setup_error(&e, io_uring_disabled_sysctl()))?;
        let mut probe = io_uring::Probe::new();
        ring.submitter().register_probe(&mut probe).map_err(|e| {
            Fallback::Unsupported(format!(
                "IORING_REGISTER_PROBE failed ({e}): kernel older than 5.6"
            ))
        })?;
        for (code, name) in [
            (opcode::Read::CODE, "IORING_OP_READ"),
            (opcode::ReadFixed::CODE, "IORING_OP_READ_FIXED"),
        ] {
            if !probe.is_supported(code) {
                return Err(Fallback::Unsupported(format!("the kernel lacks {name}")));
            }
        }
        Ok(Ring { ring, slots: None })
    }

    /// The aligned buffers, allocated and registered on first use.
    fn slots(&mut self) -> io::Result<&Slots> {
        if self.slots.is_none() {
            let buf = AlignedBuf::new(SLOTS * SLOT_SIZE)?;
            let iovec = libc::iovec {
                iov_base: buf.ptr.cast(),
                iov_len: buf.len,
            };
            // SAFETY: the buffer lives as long as the ring (it is dropped after unregistering, in
            // `Drop for Ring`), and is only read by the kernel while a read into it is in flight.
            let registered = unsafe { self.ring.submitter().register_buffers(&[iovec]) }.is_ok();
            FIXED_BUFFERS.store(if registered { 1 } else { 2 }, Relaxed);
            self.slots = Some(Slots { buf, registered });
        }
        Ok(self.slots.as_ref().expect("just set"))
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if self.slots.as_ref().is_some_and(|s| s.registered) {
            let _ = self.ring.submitter().unregister_buffers();
        }
    }
}

/// The process's idle rings.
fn pool() -> &'static Mutex<Vec<Ring>> {
    static POOL: OnceLock<Mutex<Vec<Ring>>> = OnceLock::new();
    POOL.get_or_init(|| Mutex::new(Vec::new()))
}

/// An idle ring, or a new one.
fn take_ring() -> Result<Ring, Fallback> {
    let idle = pool().lock().unwrap_or_else(|p| p.into_inner()).pop();
    match idle {
        Some(ring) => Ok(ring),
        None => Ring::new(),
    }
}

fn give_ring(ring: Ring) {
    let mut idle = pool().lock().unwrap_or_else(|p| p.into_inner());
    if idle.len() < POOL_MAX_IDLE {
        idle.push(ring);
    }
}

/// One read of a batch: `span` file bytes from `file_off` (aligned for `O_DIRECT`), of which
/// `want` bytes from `skip` on go to `dst`.
#[derive(Debug)]
struct Piece {
    file_off: u64,
    span: usize,
    skip: usize,
    want: usize,
    dst: *mut u8,
    /// Bytes read so far (short reads are resubmitted for the rest).
    done: usize,
    /// The registered buffer slot the piece reads into (bounce mode only).
    slot: Option<usize>,
}

/// A batch that could not be completed.
enum BatchError {
    /// A read failed; every submitted read has completed, buffers may be reused.
    Io(io::Error),
    /// The ring itself failed with reads possibly still in flight: neither the ring nor the
    /// destination may be touched again (both are leaked).
    Fatal(io::Error),
}

impl Ring {
    /// Reads every piece, keeping up to `depth` in flight. In bounce mode (`bounce`), pieces
    /// read into this ring's slots and are copied to their destination.
    fn run(&mut self, fd: RawFd, pieces: &mut [Piece], bounce: bool) -> Result<(), BatchError> {
        let (slot_base, registered) = if bounce {
            let slots = self.slots().map_err(BatchError::Io)?;
            (slots.buf.ptr, slots.registered)
        } else {
            (std::ptr::null_mut(), false)
        };
        let depth = if bounce { SLOTS } else { MAX_IN_FLIGHT };
        let mut free_slots: Vec<usize> = (0..SLOTS).rev().collect();
        let mut ready: VecDeque<usize> = (0..pieces.len()).collect();
        let mut in_flight = 0usize;
        let mut failure: Option<io::Error> = None;
        let mut completed: Vec<(u64, i32)> = Vec::with_capacity(depth);
        loop {
            if failure.is_none() {
                // SAFETY: this ring is used by one thread at a time (it is owned here).
                let mut sq = self.ring.submission();
                while in_flight < depth {
                    let Some(&index) = ready.front() else { break };
                    let piece = &mut pieces[index];
                    if bounce && piece.slot.is_none() {
                        match free_slots.pop() {
                            Some(slot) => piece.slot = Some(slot),
                            None => break, // every slot busy: wait for a completion
                        }
                    }
                    let len = (piece.span - piece.done) as u32;
                    let offset = piece.file_off + piece.done as u64;
                    let entry = match piece.slot {
                        Some(slot) => {
                            // SAFETY: slot `slot` holds SLOT_SIZE >= span bytes.
                            let buf = unsafe { slot_base.add(slot * SLOT_SIZE + piece.done) };
                            if registered {
                                opcode::ReadFixed::new(types::Fd(fd), buf, len, 0)
                                    .offset(offset)
                                    .build()
                            } else {
                                opcode::Read::new(types::Fd(fd), buf, len)
                                    .offset(offset)
                                    .build()
                            }
                        }
                        // SAFETY: without bounce buffers a piece has skip 0 and span == want,
                        // and `dst .. dst + want` is writable (see `UringReader::read`).
                        None if !bounce => opcode::Read::new(
                            types::Fd(fd),
                            unsafe { piece.dst.add(piece.done) },
                            len,
                        )
                        .offset(offset)
                        .build(),
                        None => unreachable!("bounce pieces are given a slot above"),
                    };
                    // SAFETY: the buffer stays valid and untouched until the read completes: the
                    // loop below waits for every submitted read before returning.
                    if unsafe { sq.push(&entry.user_data(index as u64)) }.is_err() {
                        break; // submission queue full: submit first
                    }
                    ready.pop_front();
                    in_flight += 1;
                }
            }
            if in_flight == 0 {
                break;
            }
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
                    ) => {}
                Err(e) => return Err(BatchError::Fatal(e)),
            }
            completed.clear();
            completed.extend(
                self.ring
                    .completion()
                    .map(|cqe| (cqe.user_data(), cqe.result())),
            );
            for &(user_data, result) in &completed {
                in_flight -= 1;
                let index = user_data as usize;
                let piece = &mut pieces[index];
                if result < 0 {
                    let errno = -result;
                    if errno == libc::EINTR || errno == libc::EAGAIN {
                        ready.push_front(index);
                    } else if failure.is_none() {
                        failure = Some(io::Error::from_raw_os_error(errno));
                    }
                    continue;
                }
                let n = result as usize;
                piece.done += n;
                if piece.done >= piece.skip + piece.want {
                    if let Some(slot) = piece.slot.take() {
                        // SAFETY: the slot holds `done >= skip + want` read bytes; `dst` has
                        // room for `want`.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                slot_base.add(slot * SLOT_SIZE + piece.skip),
                                piece.dst,
                                piece.want,
                            );
                        }
                        free_slots.push(slot);
                    }
                } else if n == 0 || piece.done >= piece.span {
                    if failure.is_none() {
                        failure = Some(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!(
                                "end of file at byte {} (did the file shrink?)",
                                piece.file_off + piece.done as u64
                            ),
                        ));
                    }
                } else {
                    ready.push_front(index); // short read: the rest goes next
                }
            }
        }
        match failure {
            Some(e) => Err(BatchError::Io(e)),
            None => Ok(()),
        }
    }
}

/// Batched reads through io_uring (see the module documentation).
#[derive(Debug)]
pub struct UringReader {
    path: PathBuf,
    file: File,
    len: u64,
    direct: bool,
    fixed: bool,
    stats: Arc<IoStats>,
}

impl UringReader {
    /// Probes io_uring for `file` (opened from `path`, with `O_DIRECT` when `direct`): a ring,
    /// then a first read of the file through it. On failure the file comes back with the reason.
    pub fn new(
        path: &Path,
        file: File,
        direct: bool,
        fixed: bool,
        stats: Arc<IoStats>,
    ) -> Result<Self, (File, Fallback)> {
        let len = match file.metadata() {
            Ok(m) => m.len(),
            Err(e) => return Err((file, Fallback::Other(format!("fstat: {e}")))),
        };
        let reader = UringReader {
            path: path.to_path_buf(),
            file,
            len,
            direct,
            fixed,
            stats,
        };
        // The probe: some sandboxes let io_uring_setup through but fail the reads.
        let probe = 0..len.min(4096);
        match reader.read(std::slice::from_ref(&probe)) {
            Ok(_) => Ok(reader),
            Err(ReadError::Unavailable(reason)) => Err((reader.file, reason)),
            Err(ReadError::Io(e)) => Err((
                reader.file,
                Fallback::Unsupported(format!("a first read through the ring failed: {e}")),
            )),
        }
    }

    fn read(&self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>, ReadError> {
        let total = check_ranges(ranges, self.len)?;
        let mut dst = Destination::new(total);
        let base = dst.ptr();
        let bounce = self.direct || self.fixed;
        let (align, max_span) = if self.direct {
            (DIRECT_ALIGN, SLOT_SIZE)
        } else if bounce {
            (1, SLOT_SIZE)
        } else {
            (1, PIECE)
        };
        let mut pieces = Vec::new();
        let mut at = 0usize;
        for range in ranges {
            plan_pieces(range.clone(), align, max_span, base, at, &mut pieces);
            at += (range.end - range.start) as usize;
        }
        let mut ring = take_ring().map_err(ReadError::Unavailable)?;
        match ring.run(self.file.as_raw_fd(), &mut pieces, bounce) {
            Ok(()) => {
                give_ring(ring);
                // SAFETY: every piece was read in full, and the pieces tile the ranges.
                Ok(unsafe { dst.into_parts(ranges) })
            }
            Err(BatchError::Io(e)) => {
                give_ring(ring);
                Err(ReadError::Io(e))
            }
            Err(BatchError::Fatal(e)) => {
                // Reads may still land in these buffers: never free or reuse them.
                std::mem::forget(dst);
                std::mem::forget(ring);
                Err(ReadError::Io(e))
            }
        }
    }
}

enum ReadError {
    /// No ring could be set up (the pool was empty and setup failed).
    Unavailable(Fallback),
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// Splits `range` (whose bytes go to `base + at`) into pieces of at most `max_span` file bytes,
/// on `align` boundaries.
fn plan_pieces(
    range: Range<u64>,
    align: u64,
    max_span: usize,
    base: *mut u8,
    at: usize,
    pieces: &mut Vec<Piece>,
) {
    if range.is_empty() {
        return;
    }
    let mut window = align_down(range.start, align);
    let end = align_up(range.end, align);
    while window < end {
        let span = (end - window).min(max_span as u64);
        let from = range.start.max(window);
        let to = range.end.min(window + span);
        pieces.push(Piece {
            file_off: window,
            span: span as usize,
            skip: (from - window) as usize,
            want: (to - from) as usize,
            // SAFETY (of later use): within the destination, which holds every range.
            dst: base.wrapping_add(at + (from - range.start) as usize),
            done: 0,
            slot: None,
        });
        window += span;
    }
}

impl RangeRead for UringReader {
    fn backend(&self) -> IoBackend {
        IoBackend::IoUring
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn read_ranges(&self, ranges: &[Range<u64>]) -> io::Result<Vec<Bytes>> {
        let started = Instant::now();
        match self.read(ranges) {
            Ok(parts) => {
                let bytes = parts.iter().map(|p| p.len() as u64).sum();
                self.stats
                    .record(IoBackend::IoUring, bytes, Some(started.elapsed()));
                Ok(parts)
            }
            Err(ReadError::Io(e)) => Err(e),
            // Every ring is busy and no new one can be set up (e.g. RLIMIT_MEMLOCK reached by
            // many workers): this one read goes through pread.
            Err(ReadError::Unavailable(reason)) => {
                self.stats.note(format!("some reads used pread: {reason}"));
                let file = self.file.try_clone()?;
                PreadReader::new(&self.path, file, self.direct, self.stats.clone())?
                    .read_ranges(ranges)
            }
        }
    }
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
