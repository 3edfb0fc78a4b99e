//! The committed `include/zenith.h` must be exactly what the pinned cbindgen generates from the
//! sources. Run with `ZENITH_BLESS=1` (or `make header`) to regenerate it after changing the ABI.

use std::path::PathBuf;

#[test]
fn committed_header_matches_generated() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let header_path = crate_dir.join("../../include/zenith.h");
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("header is UTF-8");

    if std::env::var_os("ZENITH_BLESS").is_some_and(|v| !v.is_empty()) {
        std::fs::write(&header_path, &generated).expect("write include/zenith.h");
        return;
    }
    let committed = std::fs::read_to_string(&header_path).unwrap_or_default();
    if committed != generated {
        let first_diff = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(committed.lines().count().min(generated.lines().count()));
        panic!(
            "include/zenith.h is out of date (first difference at line {}); run `make header` and commit it",
            first_diff + 1
        );
    }
}

/// House style rule 1: everything the header declares is `zenith_`/`ZENITH_`-prefixed, except the
/// canonical Arrow C Data/Stream/Device and DLPack definitions it carries for interoperability.
#[test]
fn every_name_the_header_declares_is_prefixed() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let header = std::fs::read_to_string(crate_dir.join("../../include/zenith.h")).unwrap();
    let foreign = |name: &str| {
        // `ArrowDeviceType`: the Arrow C Device Data Interface's typedef.
        name.starts_with("ARROW_")
            || name.starts_with("Arrow")
            || name.starts_with("DLPACK_")
            || name.starts_with("DL")
    };
    let mut offenders = Vec::new();
    for line in header.lines() {
        let name = if let Some(rest) = line.strip_prefix("#define ") {
            rest.split_whitespace().next()
        } else if line.starts_with("typedef ") && line.ends_with(';') && !line.contains('(') {
            line.trim_end_matches(';').split_whitespace().last()
        } else if let Some(rest) = line.strip_prefix("} ") {
            rest.strip_suffix(';')
        } else {
            None
        };
        if let Some(name) = name {
            let name = name.trim_start_matches('*');
            if !(name.starts_with("zenith_") || name.starts_with("ZENITH_") || foreign(name)) {
                offenders.push(name.to_string());
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "unprefixed names in zenith.h: {offenders:?}"
    );
}
