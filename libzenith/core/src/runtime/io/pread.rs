//! The `pread` backend: positioned reads, one range after another; the fallback of io_uring.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::aligned::{AlignedBuf, DIRECT_ALIGN, align_down, align_up};
use super::{Destination, FileIdentity, IoBackend, IoStats, RangeRead, check_ranges};

/// Positioned reads, range after range (with `O_DIRECT`, through an aligned bounce buffer).
#[derive(Debug)]
pub struct PreadReader {
    path: PathBuf,
    file: File,
    len: u64,
    identity: FileIdentity,
    direct: bool,
    stats: Arc<IoStats>,
}

impl PreadReader {
    /// Reads `file` (opened from `path`, with `O_DIRECT` when `direct`).
    pub fn new(path: &Path, file: File, direct: bool, stats: Arc<IoStats>) -> io::Result<Self> {
        let identity = FileIdentity::of_file(&file)?;
        Ok(PreadReader {
            path: path.to_path_buf(),
            file,
            len: identity.len,
            identity,
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

    fn identity(&self) -> Option<&FileIdentity> {
        Some(&self.identity)
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
