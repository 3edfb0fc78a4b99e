//! The header's functions == the `zenith_*` functions `libzenith.so` exports, and the library
//! exports nothing else (DESIGN.md, C ABI house style items 1 and 14).

use std::collections::BTreeSet;

use zenith_abi_check::{exported_symbols, header, library_path};

#[test]
fn header_functions_equal_exported_functions() {
    let declared: BTreeSet<&str> = header::FUNCTIONS.iter().copied().collect();
    assert!(
        !declared.is_empty(),
        "bindgen saw no zenith_* function in zenith.h"
    );
    let symbols = exported_symbols();
    let exported: BTreeSet<&str> = symbols
        .iter()
        .filter(|(kind, name)| *kind == 'T' && name.starts_with("zenith_"))
        .map(|(_, name)| name.as_str())
        .collect();

    let missing: Vec<_> = declared.difference(&exported).collect();
    let extra: Vec<_> = exported.difference(&declared).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "zenith.h and {} disagree\n  declared in the header but not exported: {missing:?}\n  \
         exported but not declared in the header: {extra:?}\n(run `make header` if the header \
         is stale, `make build` if the library is)",
        library_path().display()
    );
}

#[test]
fn library_exports_only_zenith_symbols() {
    let foreign: Vec<_> = exported_symbols()
        .into_iter()
        .filter(|(_, name)| !name.starts_with("zenith_"))
        .collect();
    assert!(
        foreign.is_empty(),
        "{} defines dynamic symbols without the zenith_ prefix: {foreign:?}",
        library_path().display()
    );
}
