//! Builds the shipped example C plugins (examples/plugins) for tests, with the same command and
//! failure message everywhere. Included by path from the engine's and the CLI's tests (two
//! crates, one helper).

use std::path::Path;
use std::process::Command;

/// Runs `examples/plugins/build.sh` into `dir`; panics naming what the build needs when it fails.
pub fn build_example_plugins(dir: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plugins/build.sh");
    let build = Command::new(&script)
        .arg(dir)
        .output()
        .expect("run examples/plugins/build.sh");
    assert!(
        build.status.success(),
        "examples/plugins/build.sh failed (needs clang and lld: make setup):\n{}{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );
}
