//! The committed `include/zenith.h` must be exactly what the pinned cbindgen generates from the
//! sources. Run with `ZENITH_BLESS=1` (or `make header`) to regenerate it after changing the ABI.

use std::path::PathBuf;

#[test]
fn committed_header_matches_generated() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let header_path = crate_dir.join("../include/zenith.h");
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
