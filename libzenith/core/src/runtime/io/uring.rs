//! The `io_uring` backend: the pieces of every range a chunk needs submitted together, from a
//! small process-wide pool of rings (see the module docs of [`super`]).

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use io_uring::{IoUring, opcode, types};

use super::aligned::{AlignedBuf, DIRECT_ALIGN, align_down, align_up};
use super::pread::PreadReader;
use super::{
    Destination, Fallback, FileIdentity, IoBackend, IoStats, RangeRead, check_ranges,
    classify_setup_error, io_uring_disabled_sysctl,
};

/// Submission queue entries per ring.
const RING_ENTRIES: u32 = 64;
/// Reads in flight at once when reading straight into the destination. Fewer, larger buffered
/// reads disturb the kernel's sequential readahead less: in `make bench-io`, 16 x 2 MiB read a
/// cold file faster than 32 x 512 KiB.
const MAX_IN_FLIGHT: usize = 16;
/// The largest piece one read submits when reading straight into the destination.
pub(super) const PIECE: usize = 2 << 20;
/// Registered buffers per ring, and the size of each: 8 MiB pinned per ring, the common
/// `RLIMIT_MEMLOCK` of an unprivileged process (a ring whose registration is refused reads into
/// the same buffers unregistered). In `make bench-io`, 1 MiB pieces read `O_DIRECT` faster than
/// 256 KiB ones.
const SLOTS: usize = 8;
pub(super) const SLOT_SIZE: usize = 1 << 20;
/// Idle rings the pool keeps.
const POOL_MAX_IDLE: usize = 16;

/// A ring and, once a read needed them, its aligned buffers (registered when the kernel allows).
pub(super) struct Ring {
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
    pub(super) fn new() -> Result<Ring, Fallback> {
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
pub(super) struct Piece {
    pub(super) file_off: u64,
    pub(super) span: usize,
    pub(super) skip: usize,
    pub(super) want: usize,
    pub(super) dst: *mut u8,
    /// Bytes read so far (short reads are resubmitted for the rest).
    pub(super) done: usize,
    /// The registered buffer slot the piece reads into (bounce mode only).
    pub(super) slot: Option<usize>,
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
    identity: FileIdentity,
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
        let identity = match FileIdentity::of_file(&file) {
            Ok(identity) => identity,
            Err(e) => return Err((file, Fallback::Other(format!("fstat: {e}")))),
        };
        let len = identity.len;
        let reader = UringReader {
            path: path.to_path_buf(),
            file,
            len,
            identity,
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
pub(super) fn plan_pieces(
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

    fn identity(&self) -> Option<&FileIdentity> {
        Some(&self.identity)
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
