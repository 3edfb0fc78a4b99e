//! The ABI check for libzenith (DESIGN.md, "C ABI house style", item 14).
//!
//! Three views of the C ABI are compared by the tests in `tests/`:
//!
//! * [`bindings`]: what `include/zenith.h` declares, as bindgen reads it in C11 mode, and
//!   [`header`]: tables of those items generated alongside it;
//! * [`c_layout`]: the struct layouts the C compiler actually produces (`c/layout.c`);
//! * the built `libzenith.so` ([`exported_symbols`]) and the `zenith` crate's Rust types and
//!   constants.
//!
//! Run it with `cargo test --release --workspace` after `make build`; `ZENITH_LIB_DIR` names the
//! directory of `libzenith.so` (default: the workspace's `target/release`).

use std::collections::BTreeSet;
use std::ffi::{CStr, c_char};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Rust declarations bindgen generated from `include/zenith.h`.
#[allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code
)]
#[allow(clippy::all)]
pub mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

/// Tables of what bindgen saw in the header (written by `build.rs`): [`header::FUNCTIONS`],
/// [`header::MACROS`] and [`header::LAYOUT`].
pub mod header {
    use super::{LayoutRow, bindings};

    include!(concat!(env!("OUT_DIR"), "/header_items.rs"));
}

/// One fact about a struct's layout: `what` is `"sizeof"`, `"alignof"`, or a field name (the
/// row then holds the field's offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LayoutRow {
    /// The struct's name as bindgen and the C helper spell it, e.g. `"ArrowSchema"`.
    pub type_name: &'static str,
    /// `"sizeof"`, `"alignof"` or a field name.
    pub what: &'static str,
    /// Bytes.
    pub value: usize,
}

impl LayoutRow {
    /// A row; `const` so `build.rs` can emit the bindgen table as a constant.
    pub const fn new(type_name: &'static str, what: &'static str, value: usize) -> Self {
        Self {
            type_name,
            what,
            value,
        }
    }
}

/// The C helper's row, as `c/layout.c` declares it.
#[repr(C)]
struct CLayoutRow {
    type_name: *const c_char,
    what: *const c_char,
    value: usize,
}

unsafe extern "C" {
    /// Defined in `c/layout.c`: a static table and its length.
    fn abi_layout_rows(len: *mut usize) -> *const CLayoutRow;
}

/// The layout of every public struct as the C compiler sees it: the ground truth.
pub fn c_layout() -> Vec<LayoutRow> {
    let mut len = 0;
    // SAFETY: the helper writes `len` and returns a static array of that many rows whose
    // strings are static NUL-terminated literals.
    let rows = unsafe { std::slice::from_raw_parts(abi_layout_rows(&mut len), len) };
    // SAFETY: as above, the strings live for the whole program.
    let text = |p: *const c_char| unsafe { CStr::from_ptr(p) }.to_str().unwrap();
    rows.iter()
        .map(|r| LayoutRow::new(text(r.type_name), text(r.what), r.value))
        .collect()
}

/// The shared library under test: `$ZENITH_LIB_DIR/libzenith.so`, by default in the
/// workspace's `target/release`.
pub fn library_path() -> PathBuf {
    let dir = std::env::var_os("ZENITH_LIB_DIR").map_or_else(
        || {
            // This crate lives at <workspace>/tests/abi.
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2);
            workspace.unwrap().join("target/release")
        },
        PathBuf::from,
    );
    dir.join("libzenith.so")
}

/// The dynamic symbols `libzenith.so` defines, from `nm -D --defined-only`, as
/// `(type letter, name)` pairs (`T` for functions in the text section).
///
/// Panics when the library is missing: a skipped ABI check would look like a passing one.
pub fn exported_symbols() -> BTreeSet<(char, String)> {
    let lib = library_path();
    assert!(
        lib.is_file(),
        "{} does not exist: run `make build` first (or set ZENITH_LIB_DIR to the directory \
         holding libzenith.so)",
        lib.display()
    );
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&lib)
        .output()
        .expect("cannot run nm (binutils)");
    assert!(
        out.status.success(),
        "nm -D --defined-only {} failed: {}",
        lib.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    // Lines are "<address> <type> <name>"; absolute symbols may have no address.
    String::from_utf8(out.stdout)
        .expect("nm printed non-UTF-8")
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace().rev();
            let name = words.next()?;
            let kind = words.next()?.chars().next()?;
            Some((kind, name.to_owned()))
        })
        .collect()
}
