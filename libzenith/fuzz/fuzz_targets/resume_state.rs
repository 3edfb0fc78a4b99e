//! Fuzzes resume tokens: decoding and validation of the bytes as given, then the same bytes
//! made to pass the envelope checks (size, magic, version, this fixture dataset's fingerprint,
//! all columns, a valid checksum) so that the fuzzer's field values reach a loader that resumes
//! from them: it must deliver exactly the plan's remaining rows, or refuse the token cleanly.
#![no_main]

#[path = "common.rs"]
mod common;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use zenith_core::LoaderOptions;
use zenith_core::dataset::source::HeldBatches;
use zenith_core::dataset::{Dataset, Fnv64, Format};
use zenith_core::loader::plan::EpochPlan;
use zenith_core::loader::{RESUME_STATE_SIZE, ResumeState, ShuffleMode};

/// 100 rows (ids 0..100) in chunks of 30, 45 and 25 rows.
fn dataset() -> &'static Arc<Dataset> {
    static DATASET: OnceLock<Arc<Dataset>> = OnceLock::new();
    DATASET.get_or_init(|| {
        let batches: Vec<RecordBatch> = [(0, 30), (30, 75), (75, 100)]
            .into_iter()
            .map(|(from, to)| {
                let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(from..to));
                RecordBatch::try_from_iter([("id", ids)]).unwrap()
            })
            .collect();
        let source = HeldBatches::new(Path::new("/fuzz/ids.arrow"), batches[0].schema(), batches);
        let dataset = Dataset::from_sources(
            Path::new("/fuzz"),
            vec![Arc::new(source)],
            &[Format::ArrowIpcFile],
            None,
        )
        .unwrap();
        Arc::new(dataset)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::quiet_caught_panics();
    // As given: rejected, or a state that encodes back to the very same bytes (a token of an
    // older version encodes as the current version, with the same meaning).
    if let Ok(state) = ResumeState::decode(data) {
        let encoded = state.encode();
        assert_eq!(ResumeState::decode(&encoded).expect("re-encoded"), state);
        if encoded[4..6] == data[4..6] {
            assert_eq!(encoded, data);
        }
    }

    let dataset = dataset();
    let mut token = vec![0u8; RESUME_STATE_SIZE];
    let n = data.len().min(RESUME_STATE_SIZE);
    token[..n].copy_from_slice(&data[..n]);
    token[..4].copy_from_slice(b"ZNRS");
    // The current version (2: flags for drop_last and drop_remainder).
    token[4..6].copy_from_slice(&2u16.to_le_bytes());
    token[6..14].copy_from_slice(&dataset.fingerprint().to_le_bytes());
    token[14..22].copy_from_slice(&0u64.to_le_bytes());
    let body = RESUME_STATE_SIZE - 8;
    let mut hash = Fnv64::default();
    hash.write(&token[..body]);
    let checksum = hash.finish().to_le_bytes();
    token[body..].copy_from_slice(&checksum);
    let state = match ResumeState::decode(&token) {
        Ok(state) => state,
        Err(error) => return common::check(error),
    };
    assert_eq!(state.encode(), token);

    // A loader whose options agree with the token (a global shuffle may resume a block one).
    let params = &state.params;
    let mut options = LoaderOptions::default();
    if options.set_batch_size(params.batch_size).is_err()
        || options.set_shard(params.rank, params.world_size).is_err()
    {
        return;
    }
    options.set_seed(params.seed);
    options.set_drop_last(params.drop_last);
    options.set_shard_drop_remainder(params.drop_remainder);
    options.set_num_workers(0).unwrap();
    let global_for_block = data.first().is_some_and(|b| b & 1 == 1);
    options.set_shuffle(match params.shuffle {
        ShuffleMode::Block if global_for_block => ShuffleMode::Global,
        mode => mode,
    });
    options.set_resume_state(&token).unwrap();
    let loader = match zenith_core::Loader::from_dataset(dataset.clone(), &options) {
        Ok(loader) => loader,
        Err(error) => return common::check(error),
    };

    // Exactly the plan's batches from the token's position on.
    let plan = EpochPlan::new(dataset.chunks(), params.clone());
    let first = state.batches_delivered.min(plan.num_batches());
    let expected: Vec<u64> = (first..plan.num_batches())
        .map(|i| plan.batch(i).unwrap().len() as u64)
        .collect();
    let mut delivered = Vec::new();
    while let Some(batch) = loader.next_batch().unwrap_or_else(|e| panic!("{e}")) {
        assert_eq!(batch.epoch, params.epoch);
        delivered.push(batch.data.num_rows() as u64);
    }
    assert_eq!(delivered, expected);
    let saved = ResumeState::decode(&loader.save_state()).expect("a saved token decodes");
    assert_eq!(saved.batches_delivered, plan.num_batches());
});
