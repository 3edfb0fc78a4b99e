//! Fuzzes the host's check of a WASM plugin's output (plugin ABI v1): the input is all of guest
//! memory, with the `zn_output` struct at offset 0 pointing at a descriptor array the fuzzer
//! writes too. The check must refuse every descriptor that points outside memory, overlaps
//! another buffer or breaks the Arrow layout as a `Malformed` result, and what it accepts must
//! be a valid record batch (fully validated here again). A panic, an abort or an allocation the
//! fuzzer's limits refuse is a crash.
#![no_main]

use arrow_array::Array;
use zenith_engine::FailureKind;
use zenith_engine::stage::abi::{OUTPUT_SIZE, read_output};

/// Larger guest memories add nothing the checks treat differently.
const MAX_MEMORY: usize = 1 << 20;

libfuzzer_sys::fuzz_target!(|memory: &[u8]| {
    if memory.len() < OUTPUT_SIZE || memory.len() > MAX_MEMORY {
        return;
    }
    match read_output(memory, 0) {
        Ok(batch) => {
            for column in batch.columns() {
                assert_eq!(column.len(), batch.num_rows());
                column
                    .to_data()
                    .validate_full()
                    .expect("an accepted output is a valid Arrow array");
            }
        }
        Err(error) => assert_eq!(error.kind, FailureKind::Malformed, "{error}"),
    }
});
