//! Checked conversions of C arguments: NULL checks, paths, outputs.

use std::ffi::{CStr, OsStr, c_char};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use zenith_core::{Error, Result};

/// Borrows `*ptr`, or fails with `ZENITH_ERR_NULL_ARGUMENT` naming `name`.
///
/// # Safety
/// `ptr` is NULL or points to a live `T` not mutated for `'a`.
pub unsafe fn borrow<'a, T>(ptr: *const T, name: &'static str) -> Result<&'a T> {
    // SAFETY: forwarded to the caller.
    unsafe { ptr.as_ref() }.ok_or(Error::NullArgument(name))
}

/// Mutably borrows `*ptr`, or fails with `ZENITH_ERR_NULL_ARGUMENT` naming `name`.
///
/// # Safety
/// `ptr` is NULL or points to a live `T` not otherwise accessed for `'a`.
pub unsafe fn borrow_mut<'a, T>(ptr: *mut T, name: &'static str) -> Result<&'a mut T> {
    // SAFETY: forwarded to the caller.
    unsafe { ptr.as_mut() }.ok_or(Error::NullArgument(name))
}

/// Checks that an output pointer is not NULL; the write happens later, only on success.
pub fn out<T>(ptr: *mut T, name: &'static str) -> Result<*mut T> {
    if ptr.is_null() {
        Err(Error::NullArgument(name))
    } else {
        Ok(ptr)
    }
}

/// A NUL-terminated path: bytes as the OS takes them, no UTF-8 requirement; empty is invalid.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string.
pub unsafe fn path(ptr: *const c_char, name: &'static str) -> Result<PathBuf> {
    if ptr.is_null() {
        return Err(Error::NullArgument(name));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    if bytes.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "`{name}` must not be empty"
        )));
    }
    Ok(PathBuf::from(OsStr::from_bytes(bytes)))
}

/// A NUL-terminated UTF-8 string (a column name, ...), borrowed; bad UTF-8 is
/// `ZENITH_ERR_INVALID_ARGUMENT`.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives `'a` unchanged.
pub unsafe fn utf8<'a>(ptr: *const c_char, name: &'static str) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(Error::NullArgument(name));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    std::str::from_utf8(bytes).map_err(|e| {
        Error::InvalidArgument(format!(
            "`{name}` is not valid UTF-8 ({e}): {:?}",
            String::from_utf8_lossy(bytes)
        ))
    })
}

/// Moves a Rust value into a new heap handle for C.
pub fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Frees a handle made by [`into_handle`]; NULL is a no-op.
///
/// # Safety
/// `ptr` is NULL or came from [`into_handle`] and is not used again.
pub unsafe fn free_handle<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: per the contract, `ptr` came from `Box::into_raw` and is freed once.
        drop(unsafe { Box::from_raw(ptr) });
    }
}

/// Copies `value` into a caller's versioned struct (one that starts with `size_t struct_size`):
/// only the first `out->struct_size` bytes are written, and `struct_size` keeps the caller's
/// value, so programs built against an older, shorter struct keep working.
///
/// Fails with `ZENITH_ERR_INVALID_ARGUMENT` when `struct_size` is smaller than a `size_t`.
///
/// # Safety
/// `out` is non-NULL and points to at least `out->struct_size` writable bytes; `T` is
/// `#[repr(C)]` and starts with a `usize` field.
pub unsafe fn write_sized<T: Copy>(out: *mut T, value: T, type_name: &'static str) -> Result<()> {
    // SAFETY: the caller owns at least `struct_size` bytes, which start with a size_t.
    let caller_size = unsafe { out.cast::<usize>().read_unaligned() };
    if caller_size < std::mem::size_of::<usize>() {
        return Err(Error::InvalidArgument(format!(
            "out->struct_size is {caller_size}; set it to sizeof({type_name})"
        )));
    }
    let len = caller_size.min(std::mem::size_of::<T>());
    // SAFETY: `len` bytes fit both `value` and the caller's storage; the first `usize` is then
    // rewritten with the caller's own size.
    unsafe {
        std::ptr::copy_nonoverlapping((&raw const value).cast::<u8>(), out.cast::<u8>(), len);
        out.cast::<usize>().write_unaligned(caller_size);
    }
    Ok(())
}

/// Writes `values` into a caller's array of `cap` elements and their count into `*out_len`.
///
/// `*out_len` is always written; when `cap` is too small the call fails with
/// `ZENITH_ERR_BUFFER_TOO_SMALL` and writes nothing to `buf` (so `buf == NULL, cap == 0` asks
/// for the count). `buf` may be NULL only when nothing is to be written.
///
/// # Safety
/// `buf` is NULL or points to `cap` writable elements; `out_len` is NULL or writable.
pub unsafe fn write_list<T: Copy>(
    values: &[T],
    buf: *mut T,
    cap: usize,
    out_len: *mut usize,
) -> Result<()> {
    let out_len = out(out_len, "out_len")?;
    // SAFETY: non-NULL and writable per the contract.
    unsafe { out_len.write(values.len()) };
    if cap < values.len() {
        return Err(Error::BufferTooSmall {
            needed: std::mem::size_of_val(values),
            given: cap.saturating_mul(std::mem::size_of::<T>()),
        });
    }
    if values.is_empty() {
        return Ok(());
    }
    let buf = out(buf, "buf")?;
    // SAFETY: `buf` holds `cap >= values.len()` writable elements per the contract.
    unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), buf, values.len()) };
    Ok(())
}

/// Writes `text` and a terminating NUL into the caller's buffer `buf` of `cap` bytes, and the
/// text's length (without the NUL) into `*out_len`. When `cap < len + 1`, only `*out_len` is
/// written and the result is [`Error::BufferTooSmall`] (so `buf == NULL, cap == 0` asks for the
/// size).
///
/// # Safety
/// `buf` is NULL or points to `cap` writable bytes; `out_len` is NULL or writable.
pub unsafe fn write_text(
    text: &str,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> Result<()> {
    let out_len = out(out_len, "out_len")?;
    // SAFETY: non-NULL and writable per the contract.
    unsafe { out_len.write(text.len()) };
    let needed = text.len() + 1;
    if cap < needed {
        return Err(Error::BufferTooSmall { needed, given: cap });
    }
    let buf = out(buf, "buf")?;
    // SAFETY: `buf` holds `cap >= text.len() + 1` writable bytes per the contract.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
        buf.add(text.len()).write(0);
    }
    Ok(())
}

/// A caller's list of `count` NUL-terminated UTF-8 strings (column names, ...), borrowed;
/// `(NULL, 0)` is `None` (no list). A NULL entry or bad UTF-8 is `ZENITH_ERR_INVALID_ARGUMENT`
/// naming the entry (`name[i]`), `NULL` with `count > 0` is `ZENITH_ERR_NULL_ARGUMENT`.
///
/// # Safety
/// `list` is NULL or points to `count` pointers, each NULL or NUL-terminated, all outliving
/// `'a` unchanged.
pub unsafe fn utf8_list<'a>(
    list: *const *const c_char,
    count: usize,
    name: &'static str,
) -> Result<Option<Vec<&'a str>>> {
    if count == 0 && list.is_null() {
        return Ok(None);
    }
    if list.is_null() {
        return Err(Error::NullArgument(name));
    }
    // SAFETY: non-NULL and `count` long per the contract.
    let pointers = unsafe { std::slice::from_raw_parts(list, count) };
    let mut items = Vec::with_capacity(count);
    for (i, &pointer) in pointers.iter().enumerate() {
        if pointer.is_null() {
            return Err(Error::InvalidArgument(format!("{name}[{i}] is NULL")));
        }
        // SAFETY: non-NULL and NUL-terminated per the contract.
        let item = unsafe { CStr::from_ptr(pointer) }
            .to_str()
            .map_err(|_| Error::InvalidArgument(format!("{name}[{i}] is not valid UTF-8")))?;
        items.push(item);
    }
    Ok(Some(items))
}
