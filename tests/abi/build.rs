//! Builds the two independent views of the C ABI that the tests compare:
//!
//! * bindgen (libclang) reads `include/zenith.h` as C11 and writes Rust declarations of its
//!   structs, functions and macros to `$OUT_DIR/bindings.rs`. While it works, its callbacks record
//!   what it saw (every struct field, `zenith_*` function and `ZENITH_*` macro); from that record
//!   this script writes `$OUT_DIR/header_items.rs`, tables the tests iterate over, so an item
//!   added to the header is checked without editing the tests.
//! * gcc compiles `c/layout.c`, which reports `sizeof`, `_Alignof` and `offsetof` as the C
//!   compiler lays the structs out: the ground truth.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bindgen::callbacks::{FieldInfo, IntKind, ItemInfo, ItemKind, ParseCallbacks};

/// What bindgen saw in the header, filled in by its callbacks.
#[derive(Debug, Default)]
struct Seen {
    /// Struct name → its fields, in declaration order.
    structs: BTreeMap<String, Vec<String>>,
    /// `zenith_*` function names.
    functions: BTreeSet<String>,
    /// `ZENITH_*` integer macro names.
    macros: BTreeSet<String>,
}

/// Records items into the shared [`Seen`]; bindgen owns the callbacks, so the record is shared.
#[derive(Debug)]
struct Recorder(Arc<Mutex<Seen>>);

impl ParseCallbacks for Recorder {
    // Called for every field of every struct bindgen generates (only allowlisted ones).
    fn field_visibility(&self, info: FieldInfo<'_>) -> Option<bindgen::FieldVisibilityKind> {
        let mut seen = self.0.lock().unwrap();
        let fields = seen.structs.entry(info.type_name.to_owned()).or_default();
        if !fields.iter().any(|f| f == info.field_name) {
            fields.push(info.field_name.to_owned());
        }
        None
    }

    // Called for every function parsed, including ones outside the allowlist: filter here.
    fn generated_name_override(&self, item: ItemInfo<'_>) -> Option<String> {
        if item.kind == ItemKind::Function && item.name.starts_with("zenith_") {
            self.0
                .lock()
                .unwrap()
                .functions
                .insert(item.name.to_owned());
        }
        None
    }

    // Called for every integer macro, system headers' included. `ZENITH_*` ones become `i64`
    // constants so the tests compare them without casts (bindgen would pick u32 or i32).
    fn int_macro(&self, name: &str, _value: i64) -> Option<IntKind> {
        if !name.starts_with("ZENITH_") {
            return None;
        }
        self.0.lock().unwrap().macros.insert(name.to_owned());
        Some(IntKind::I64)
    }
}

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let include_dir = manifest_dir.join("../../include");
    let header = include_dir.join("zenith.h");
    let helper = manifest_dir.join("c/layout.c");
    println!("cargo:rerun-if-changed={}", header.display());
    println!("cargo:rerun-if-changed={}", helper.display());
    println!("cargo:rerun-if-changed=build.rs");

    let seen = Arc::new(Mutex::new(Seen::default()));
    bindgen::Builder::default()
        .header(header.to_str().expect("UTF-8 path"))
        // An explicit language and standard: the header promises C11, and without `-x c` a `.h`
        // file could be parsed under another language mode.
        .clang_args(["-x", "c", "-std=c11"])
        // Only the library's own items and the Arrow and DLPack items it embeds, not stdint.h's.
        .allowlist_item("zenith_.*|Arrow.*|ZENITH_.*|DL.*|kDL.*|DLPACK_.*")
        .parse_callbacks(Box::new(Recorder(Arc::clone(&seen))))
        .generate()
        .expect("bindgen failed to parse include/zenith.h")
        .write_to_file(out_dir.join("bindings.rs"))
        .expect("cannot write bindings.rs");

    let seen = seen.lock().unwrap();
    std::fs::write(out_dir.join("header_items.rs"), header_items(&seen))
        .expect("cannot write header_items.rs");

    cc::Build::new()
        .file(&helper)
        .include(&include_dir)
        .std("c11")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .compile("zenith_abi_layout");
}

/// Rust source for the tables in `src/lib.rs`'s `header` module. The layout rows are computed
/// by rustc from bindgen's types (`size_of`, `align_of`, `offset_of!`), in the same
/// `(type, what)` shape as the C helper's rows.
fn header_items(seen: &Seen) -> String {
    let mut s = String::new();
    s.push_str("/// Every `zenith_*` function declared in the header, sorted.\n");
    s.push_str("pub const FUNCTIONS: &[&str] = &[\n");
    for f in &seen.functions {
        writeln!(s, "    {f:?},").unwrap();
    }
    s.push_str("];\n\n");

    // Naming bindgen's constants (not copying the values seen by the callback) also checks
    // that bindgen emitted each one.
    s.push_str("/// Every integer `ZENITH_*` macro in the header, with bindgen's value, sorted.\n");
    s.push_str("pub const MACROS: &[(&str, i64)] = &[\n");
    for m in &seen.macros {
        writeln!(s, "    ({m:?}, bindings::{m}),").unwrap();
    }
    s.push_str("];\n\n");

    s.push_str(
        "/// The layout of bindgen's struct types: sizeof, alignof and each field's offset.\n",
    );
    s.push_str("pub const LAYOUT: &[LayoutRow] = &[\n");
    for (ty, fields) in &seen.structs {
        writeln!(
            s,
            "    LayoutRow::new({ty:?}, \"sizeof\", ::std::mem::size_of::<bindings::{ty}>()),"
        )
        .unwrap();
        writeln!(
            s,
            "    LayoutRow::new({ty:?}, \"alignof\", ::std::mem::align_of::<bindings::{ty}>()),"
        )
        .unwrap();
        for f in fields {
            writeln!(
                s,
                "    LayoutRow::new({ty:?}, {f:?}, ::std::mem::offset_of!(bindings::{ty}, {f})),"
            )
            .unwrap();
        }
    }
    s.push_str("];\n");
    s
}
