//! Opening files the library reads: regular files only, never blocking on a FIFO or a device
//! ([`open_regular`]), and the identity a file had when it was opened ([`FileIdentity`]), against
//! which later reads check that it has not changed.

use std::fmt;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;

use crate::error::{Error, Result};

/// What a file is, in words, when it is not a regular file ("a FIFO", "a directory", ...).
pub fn special_kind(meta: &Metadata) -> Option<&'static str> {
    let kind = meta.file_type();
    if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_socket() {
        Some("a socket")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else {
        Some("a special file")
    }
}

/// The error for a path that is not a regular file (kind `InvalidInput`).
pub fn not_regular(kind: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("not a regular file ({kind}); only regular files are read"),
    )
}

/// Opens `path` read-only (with `extra_flags`, e.g. `O_DIRECT`) if it is a regular file.
///
/// The file is opened with `O_NONBLOCK`, so that opening a FIFO without a writer (or a device
/// that blocks on open) returns at once, and then checked with `fstat` on the open descriptor (no
/// race with a rename); a file that is not regular is an `InvalidInput` error saying what it is.
/// `O_NONBLOCK` is cleared again before the file is returned (io_uring would otherwise fail
/// reads that miss the page cache with `EAGAIN`).
pub fn open_regular(path: &Path, extra_flags: i32) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | extra_flags)
        .open(path)?;
    if let Some(kind) = special_kind(&file.metadata()?) {
        return Err(not_regular(kind));
    }
    let fd = file.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

/// Reads a small regular file whole, refusing one larger than `limit` bytes (sysfs and procfs
/// attributes are a page or two; anything larger is not what the reader expects).
pub fn read_small_file(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = open_regular(path, 0)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(bytes)
}

/// Who a file is, as far as a reader that keeps using it cares: the device and inode (a file
/// replaced by a rename has another), its size (truncated or grown) and its modification time
/// (rewritten in place). Taken when a source opens the file; compared before each epoch and
/// before each read of the file's bytes.
///
/// A rewrite that keeps the size and lands within the file system's timestamp granularity of
/// the previous modification (a few milliseconds on most Linux file systems) keeps the
/// identity: it cannot be told apart without reading the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileIdentity {
    /// `st_dev`.
    pub device: u64,
    /// `st_ino`.
    pub inode: u64,
    /// `st_size`, in bytes.
    pub len: u64,
    /// `st_mtime` in seconds.
    pub mtime_sec: i64,
    /// The nanoseconds of `st_mtime`.
    pub mtime_nsec: i64,
}

impl FileIdentity {
    /// The identity of an open file (`fstat`).
    pub fn of_file(file: &File) -> io::Result<Self> {
        Ok(Self::of_metadata(&file.metadata()?))
    }

    /// The identity described by `meta`.
    pub fn of_metadata(meta: &Metadata) -> Self {
        FileIdentity {
            device: meta.dev(),
            inode: meta.ino(),
            len: meta.size(),
            mtime_sec: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }

    /// Checks that `path` is still this file, unchanged. Otherwise an [`Error::Io`] on `path`
    /// saying "changed while being read" and what changed (replaced, truncated or grown,
    /// rewritten).
    ///
    /// A file that was removed (unlinked) is not a change: its inode lives on for as long as a
    /// mapping or a descriptor holds it, and no path can reach it to truncate or rewrite it, so
    /// reading it stays safe and gives the data that was opened (as with any Unix reader).
    pub fn check(&self, path: &Path) -> Result<()> {
        let now = match std::fs::metadata(path) {
            Ok(meta) => FileIdentity::of_metadata(&meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(path, e)),
        };
        match self.difference(&now) {
            None => Ok(()),
            Some(what) => Err(changed(path, &what)),
        }
    }

    /// What differs between this identity and `now`, in words; `None` when nothing does.
    pub fn difference(&self, now: &FileIdentity) -> Option<String> {
        if (self.device, self.inode) != (now.device, now.inode) {
            Some("the path now names another file (replaced)".into())
        } else if self.len != now.len {
            let how = if now.len < self.len {
                "truncated"
            } else {
                "grown"
            };
            Some(format!("{how} from {} to {} bytes", self.len, now.len))
        } else if (self.mtime_sec, self.mtime_nsec) != (now.mtime_sec, now.mtime_nsec) {
            Some("rewritten (its modification time changed)".into())
        } else {
            None
        }
    }
}

impl fmt::Display for FileIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "device {} inode {}, {} bytes, modified {}.{:09}",
            self.device, self.inode, self.len, self.mtime_sec, self.mtime_nsec
        )
    }
}

/// The error for a file that changed after it was opened: an [`Error::Io`] on `path` whose
/// message reads "changed while being read: <what>".
pub fn changed(path: &Path, what: &str) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: io::Error::other(format!(
            "changed while being read: {what}; files must not change while a loader reads them"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::{Duration, SystemTime};

    #[test]
    fn identities_see_truncation_growth_rewrites_and_replacement_but_allow_removal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let id = FileIdentity::of_file(&File::open(&path).unwrap()).unwrap();
        id.check(&path).unwrap();
        let expect = |words: &str| {
            let err = id.check(&path).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Io);
            let text = err.to_string();
            assert!(text.contains("changed while being read"), "{text}");
            assert!(text.contains(words), "{text}");
        };

        let file = File::options().write(true).open(&path).unwrap();
        file.set_len(4).unwrap();
        expect("truncated from 10 to 4 bytes");
        file.set_len(20).unwrap();
        expect("grown from 10 to 20 bytes");
        file.set_len(10).unwrap();
        file.set_modified(old).unwrap();
        id.check(&path).unwrap();
        (&file).write_all(b"x").unwrap();
        expect("rewritten");

        let other = dir.path().join("g");
        std::fs::write(&other, b"0123456789").unwrap();
        std::fs::rename(&other, &path).unwrap();
        expect("replaced");
        std::fs::remove_file(&path).unwrap();
        id.check(&path)
            .expect("an unlinked file lives on for its readers: not a change");
    }

    #[test]
    fn special_files_are_refused_without_blocking_and_reads_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
        // Without O_NONBLOCK this open would wait for a writer forever.
        let err = open_regular(&fifo, 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(
            err.to_string().contains("not a regular file (a FIFO)"),
            "{err}"
        );
        let err = open_regular(dir.path(), 0).unwrap_err();
        assert!(err.to_string().contains("a directory"), "{err}");

        let file = dir.path().join("small");
        std::fs::write(&file, b"12345").unwrap();
        assert_eq!(read_small_file(&file, 5).unwrap(), b"12345");
        let err = read_small_file(&file, 4).unwrap_err();
        assert!(err.to_string().contains("larger than 4 bytes"), "{err}");
        // The flag is cleared on the file handed out.
        let opened = open_regular(&file, 0).unwrap();
        // SAFETY: F_GETFL on an open descriptor.
        let flags = unsafe { libc::fcntl(opened.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0);
    }
}
