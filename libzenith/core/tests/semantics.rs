//! The loader semantics users rely on (DESIGN.md): deterministic order for any number of
//! workers, exact permutations, disjoint equal shards, exact resume, projections, epochs, stats.

mod common;

use std::collections::HashSet;

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use common::{BASIC_ROWS, assert_basic_rows, data_file};
use zenith_core::loader::{ShardSource, ShuffleMode};
use zenith_core::{Error, Loader, LoaderOptions};

fn options(batch_size: usize, shuffle: ShuffleMode, workers: usize) -> LoaderOptions {
    let mut o = LoaderOptions::default();
    o.set_batch_size(batch_size).unwrap();
    o.set_shuffle(shuffle);
    o.set_num_workers(workers).unwrap();
    o.set_seed(1234);
    o
}

/// The ids of every batch of the rest of the epoch, batch by batch; checks each row's values.
fn drain(loader: &Loader) -> Vec<Vec<i64>> {
    let mut batches = Vec::new();
    while let Some(batch) = loader.next_batch().unwrap() {
        let ids = batch
            .data
            .column(0)
            .as_primitive::<Int64Type>()
            .values()
            .to_vec();
        for (i, &id) in ids.iter().enumerate() {
            assert_basic_rows(&batch.data.slice(i, 1), id);
        }
        batches.push(ids);
    }
    batches
}

fn open(options: &LoaderOptions) -> Loader {
    Loader::open(data_file("basic.arrow"), options).unwrap()
}

#[test]
fn order_is_identical_for_any_number_of_workers() {
    for shuffle in [ShuffleMode::None, ShuffleMode::Global, ShuffleMode::Block] {
        let reference = drain(&open(&options(333, shuffle, 0)));
        for workers in [1, 2, 4, 7] {
            let mut o = options(333, shuffle, workers);
            o.set_prefetch(3).unwrap();
            assert_eq!(
                drain(&open(&o)),
                reference,
                "{shuffle:?} with {workers} workers"
            );
        }
    }
}

#[test]
fn shuffles_are_exact_permutations_that_change_with_epoch_and_seed() {
    for shuffle in [ShuffleMode::Global, ShuffleMode::Block] {
        let loader = open(&options(1000, shuffle, 2));
        let epoch0: Vec<i64> = drain(&loader).concat();
        let mut sorted = epoch0.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            (0..BASIC_ROWS as i64).collect::<Vec<_>>(),
            "{shuffle:?}: every row once"
        );
        assert_ne!(epoch0, (0..BASIC_ROWS as i64).collect::<Vec<_>>());
        assert!(
            loader.next_batch().unwrap().is_none(),
            "the epoch stays done"
        );

        loader.set_epoch(1).unwrap();
        let epoch1 = drain(&loader).concat();
        assert_ne!(epoch0, epoch1, "{shuffle:?}: another epoch, another order");
        loader.set_epoch(0).unwrap();
        assert_eq!(
            drain(&loader).concat(),
            epoch0,
            "{shuffle:?}: epoch 0 again, same order"
        );

        let mut other_seed = options(1000, shuffle, 2);
        other_seed.set_seed(99);
        assert_ne!(drain(&open(&other_seed)).concat(), epoch0);
    }
}

#[test]
fn shards_dropping_the_remainder_are_disjoint_with_equal_batch_counts() {
    for shuffle in [ShuffleMode::None, ShuffleMode::Global, ShuffleMode::Block] {
        for world in [1u32, 2, 3, 7] {
            let mut seen = HashSet::new();
            let mut counts = HashSet::new();
            for rank in 0..world {
                let mut o = options(128, shuffle, 1);
                o.set_shard(rank, world).unwrap();
                o.set_shard_drop_remainder(true);
                let loader = open(&o);
                let batches = drain(&loader);
                assert_eq!(batches.len() as u64, loader.num_batches());
                counts.insert(batches.len());
                for id in batches.concat() {
                    assert!(seen.insert(id), "row {id} delivered to two ranks");
                }
            }
            assert_eq!(
                counts.len(),
                1,
                "{shuffle:?}, world {world}: equal batch counts"
            );
            assert_eq!(seen.len() as u64, BASIC_ROWS - BASIC_ROWS % world as u64);
        }
    }
}

#[test]
fn shards_pad_by_default_so_every_row_is_delivered_with_equal_batch_counts() {
    for shuffle in [ShuffleMode::None, ShuffleMode::Global, ShuffleMode::Block] {
        for world in [1u32, 3, 7, 9999] {
            let per_rank = BASIC_ROWS.div_ceil(world as u64);
            let mut delivered = Vec::new();
            let mut counts = HashSet::new();
            for rank in 0..world.min(8) {
                let mut o = options(128, shuffle, 1);
                o.set_shard(rank, world).unwrap();
                let loader = open(&o);
                let ids = drain(&loader).concat();
                assert_eq!(
                    ids.len() as u64,
                    per_rank,
                    "{shuffle:?}, rank {rank} of {world}"
                );
                assert_eq!(loader.num_batches(), per_rank.div_ceil(128));
                counts.insert(loader.num_batches());
                delivered.extend(ids);
            }
            assert_eq!(
                counts.len(),
                1,
                "{shuffle:?}, world {world}: equal batch counts"
            );
            if world <= 8 {
                let distinct: HashSet<i64> = delivered.iter().copied().collect();
                assert_eq!(
                    distinct.len() as u64,
                    BASIC_ROWS,
                    "every row, {shuffle:?}/{world}"
                );
                let repeated = per_rank * world as u64 - BASIC_ROWS;
                assert_eq!(delivered.len() as u64, BASIC_ROWS + repeated);
            }
        }
    }
}

#[test]
fn the_last_rank_wraps_around_to_the_first_rows() {
    // 10 000 rows over 3 ranks: 3334 each; rank 2 ends with 2 padding rows, rows 0 and 1.
    let mut o = options(1000, ShuffleMode::None, 2);
    o.set_shard(2, 3).unwrap();
    let ids = drain(&open(&o)).concat();
    assert_eq!(ids.len(), 3334);
    assert_eq!(ids[0], 6668);
    assert_eq!(ids[ids.len() - 3..], [9999, 0, 1]);
}

#[test]
fn a_world_larger_than_the_dataset_is_an_error_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ten.arrow");
    write_ipc(&path, &ids_batch(0..10, false));
    for drop_remainder in [false, true] {
        let mut o = options(4, ShuffleMode::Global, 1);
        o.set_shard(0, 12).unwrap();
        o.set_shard_drop_remainder(drop_remainder);
        let err = Loader::open(&path, &o).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
        let message = err.to_string();
        for part in ["world_size 12", "10 rows", "the loader options"] {
            assert!(message.contains(part), "{part}: {message}");
        }
        // 10 ranks of 10 rows are fine: one row each.
        o.set_shard(9, 10).unwrap();
        let loader = Loader::open(&path, &o).unwrap();
        assert_eq!(loader.num_batches(), 1);
        assert_eq!(drain_ids(&loader).len(), 1);
    }
}

#[test]
fn resume_is_exact_on_padded_and_dropping_shards() {
    for shuffle in [ShuffleMode::None, ShuffleMode::Global, ShuffleMode::Block] {
        for drop_remainder in [false, true] {
            let sharded = |workers| {
                let mut o = options(700, shuffle, workers);
                o.set_shard(2, 3).unwrap();
                o.set_shard_drop_remainder(drop_remainder);
                o
            };
            let full = drain(&open(&sharded(2)));
            let last = full.len();
            for taken in [0, 1, last - 1, last] {
                let loader = open(&sharded(2));
                for _ in 0..taken {
                    loader.next_batch().unwrap().unwrap();
                }
                let token = loader.save_state();
                for workers in [0, 3] {
                    let mut o = sharded(workers);
                    o.set_resume_state(&token).unwrap();
                    let resumed = open(&o);
                    assert_eq!(resumed.num_batches(), last as u64);
                    assert_eq!(
                        drain(&resumed),
                        full[taken..],
                        "{shuffle:?}, drop_remainder {drop_remainder}, after {taken}"
                    );
                }
                // The other remainder rule is another plan: a clear error.
                let mut other = sharded(1);
                other.set_shard_drop_remainder(!drop_remainder);
                other.set_resume_state(&token).unwrap();
                let err = Loader::open(data_file("basic.arrow"), &other).unwrap_err();
                assert!(err.to_string().contains("shard_drop_remainder"), "{err}");
            }
        }
    }
}
#[test]
fn drop_last_drops_only_the_short_batch() {
    let mut o = options(3000, ShuffleMode::Global, 2);
    o.set_drop_last(true);
    let batches = drain(&open(&o));
    assert_eq!(
        batches.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![3000, 3000, 3000]
    );
}

#[test]
fn resume_delivers_exactly_the_batches_not_yet_delivered() {
    for shuffle in [ShuffleMode::None, ShuffleMode::Global, ShuffleMode::Block] {
        let full = drain(&open(&options(700, shuffle, 2)));
        for taken in [0, 1, 5, full.len()] {
            let loader = open(&options(700, shuffle, 2));
            loader.set_epoch(0).unwrap();
            for _ in 0..taken {
                loader.next_batch().unwrap().unwrap();
            }
            let token = loader.save_state();
            drop(loader);
            for workers in [0, 3] {
                let mut o = options(700, shuffle, workers);
                o.set_resume_state(&token).unwrap();
                let resumed = open(&o);
                assert_eq!(
                    drain(&resumed),
                    full[taken..],
                    "{shuffle:?} after {taken}, {workers} workers"
                );
            }
        }
    }
}

#[test]
fn the_largest_epoch_runs_and_its_state_round_trips() {
    let loader = open(&options(1000, ShuffleMode::Global, 1));
    loader.set_epoch(u64::MAX).unwrap();
    assert_eq!(loader.stats().epoch, u64::MAX);
    let epoch = drain(&open_at_epoch(u64::MAX));
    assert_eq!(epoch.concat().len() as u64, BASIC_ROWS);
    loader.next_batch().unwrap().unwrap();
    let mut o = options(1000, ShuffleMode::Global, 1);
    o.set_resume_state(&loader.save_state()).unwrap();
    let resumed = open(&o);
    assert_eq!(resumed.stats().epoch, u64::MAX);
    assert_eq!(drain(&resumed), epoch[1..]);
    // Saved at the end of the epoch: it still loads, with nothing left to deliver.
    let mut o = options(1000, ShuffleMode::Global, 1);
    o.set_resume_state(&resumed.save_state()).unwrap();
    let done = open(&o);
    assert_eq!(done.stats().epoch, u64::MAX);
    assert!(done.next_batch().unwrap().is_none());
}

#[test]
fn resume_keeps_the_epoch() {
    let loader = open(&options(1000, ShuffleMode::Global, 1));
    loader.set_epoch(5).unwrap();
    let epoch5 = drain(&open_at_epoch(5));
    loader.next_batch().unwrap();
    let mut o = options(1000, ShuffleMode::Global, 1);
    o.set_resume_state(&loader.save_state()).unwrap();
    let resumed = open(&o);
    assert_eq!(resumed.stats().epoch, 5);
    assert_eq!(drain(&resumed), epoch5[1..]);
}

fn open_at_epoch(epoch: u64) -> Loader {
    let loader = open(&options(1000, ShuffleMode::Global, 1));
    loader.set_epoch(epoch).unwrap();
    loader
}

#[test]
fn resume_tokens_for_other_options_or_data_are_clear_errors() {
    let loader = open(&options(500, ShuffleMode::Global, 1));
    loader.next_batch().unwrap();
    let token = loader.save_state();
    let expect_mismatch = |o: &LoaderOptions, path: &str, what: &str| {
        let mut o = o.clone();
        o.set_resume_state(&token).unwrap();
        let err = Loader::open(data_file(path), &o).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
        assert!(err.to_string().contains(what), "{what}: {err}");
    };
    expect_mismatch(
        &options(501, ShuffleMode::Global, 1),
        "basic.arrow",
        "batch_size",
    );
    expect_mismatch(
        &options(500, ShuffleMode::None, 1),
        "basic.arrow",
        "shuffle",
    );
    let mut seeded = options(500, ShuffleMode::Global, 1);
    seeded.set_seed(1);
    expect_mismatch(&seeded, "basic.arrow", "seed");
    let mut sharded = options(500, ShuffleMode::Global, 1);
    sharded.set_shard(1, 2).unwrap();
    expect_mismatch(&sharded, "basic.arrow", "shard");
    expect_mismatch(
        &options(500, ShuffleMode::Global, 1),
        "dictionary.arrow",
        "another dataset",
    );
    assert!(
        LoaderOptions::default()
            .set_resume_state(b"garbage")
            .is_err()
    );
}

#[test]
fn projections_keep_the_named_columns_in_order() {
    let mut o = options(100, ShuffleMode::None, 1);
    o.set_columns(Some(vec!["name".into(), "id".into()]))
        .unwrap();
    let loader = open(&o);
    let names: Vec<String> = loader
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["name", "id"]);
    let batch = loader.next_batch().unwrap().unwrap().data;
    assert_eq!(batch.num_columns(), 2);
    assert_eq!(batch.column(1).as_primitive::<Int64Type>().value(7), 7);
    assert!(batch.column(0).is_null(3));

    let mut unknown = options(100, ShuffleMode::None, 1);
    unknown
        .set_columns(Some(vec!["id".into(), "nope".into()]))
        .unwrap();
    let err = Loader::open(data_file("basic.arrow"), &unknown).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument(_)) && err.to_string().contains("nope"),
        "{err}"
    );
}

#[test]
fn an_empty_column_list_is_an_error() {
    let mut o = LoaderOptions::default();
    let err = o.set_columns(Some(Vec::new())).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert!(
        err.to_string().contains("columns must not be empty"),
        "{err}"
    );
    o.set_columns(None).unwrap();
}

/// Writes `batch` as an Arrow IPC file (with arrow-rs's writer, not Zenith's code).
fn write_ipc(path: &std::path::Path, batch: &RecordBatch) {
    let file = std::fs::File::create(path).unwrap();
    let mut writer = arrow_ipc::writer::FileWriter::try_new(file, &batch.schema()).unwrap();
    writer.write(batch).unwrap();
    writer.finish().unwrap();
}

/// A batch of one `id` column holding `ids`; nullable (with a null at every 5th id) or not.
fn ids_batch(ids: std::ops::Range<i64>, nullable: bool) -> RecordBatch {
    let values: Vec<Option<i64>> = ids
        .map(|id| (!nullable || id % 5 != 0).then_some(id))
        .collect();
    let schema = Schema::new(vec![Field::new("id", DataType::Int64, nullable)]);
    RecordBatch::try_new(Arc::new(schema), vec![Arc::new(Int64Array::from(values))]).unwrap()
}

/// The ids of the rest of the epoch (nulls as -1).
fn drain_ids(loader: &Loader) -> Vec<i64> {
    let mut ids = Vec::new();
    while let Some(batch) = loader.next_batch().unwrap() {
        let column = batch.data.column(0).as_primitive::<Int64Type>();
        ids.extend(column.iter().map(|v| v.unwrap_or(-1)));
    }
    ids
}

#[test]
fn shards_differing_only_in_nullability_open_as_nullable_and_read_to_the_end() {
    for first_nullable in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        write_ipc(
            &dir.path().join("a.arrow"),
            &ids_batch(0..100, first_nullable),
        );
        write_ipc(
            &dir.path().join("b.arrow"),
            &ids_batch(100..200, !first_nullable),
        );
        for shuffle in [ShuffleMode::None, ShuffleMode::Global] {
            let loader = Loader::open(dir.path(), &options(30, shuffle, 2)).unwrap();
            assert!(loader.schema().field(0).is_nullable(), "nullable wins");
            let mut ids = Vec::new();
            while let Some(batch) = loader.next_batch().unwrap() {
                assert_eq!(
                    batch.data.schema(),
                    loader.schema(),
                    "batches carry the dataset's schema"
                );
                let column = batch.data.column(0).as_primitive::<Int64Type>();
                ids.extend(column.iter().map(|v| v.unwrap_or(-1)));
            }
            assert_eq!(ids.len(), 200);
            assert_eq!(
                ids.iter().filter(|&&id| id == -1).count(),
                20,
                "the nullable shard's nulls"
            );
        }
    }
}

#[test]
fn shards_differing_in_type_are_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    write_ipc(&dir.path().join("a.arrow"), &ids_batch(0..10, false));
    let other = Schema::new(vec![Field::new("id", DataType::Int32, false)]);
    let batch = RecordBatch::try_new(
        Arc::new(other),
        vec![Arc::new(arrow_array::Int32Array::from(
            (10..20).collect::<Vec<i32>>(),
        ))],
    )
    .unwrap();
    write_ipc(&dir.path().join("b.arrow"), &batch);
    let err = Loader::open(dir.path(), &LoaderOptions::default()).unwrap_err();
    assert!(matches!(err, Error::SchemaMismatch { .. }), "{err}");
}

#[test]
fn an_automatic_shuffle_over_budget_runs_as_block_and_says_so() {
    let mut o = LoaderOptions::default();
    o.set_batch_size(1000).unwrap();
    o.set_memory_budget(Some(200_000)).unwrap();
    let loader = Loader::open(data_file("parquet/basic.snappy.parquet"), &o).unwrap();
    let stats = loader.stats();
    assert_eq!(stats.shuffle_requested, None);
    assert_eq!(stats.shuffle, ShuffleMode::Block);
    assert_eq!(stats.memory_budget, 200_000);
    assert!(stats.decoded_bytes > 200_000, "{}", stats.decoded_bytes);
    let mut ids = drain(&loader).concat();
    ids.sort();
    assert!(
        ids == (0..BASIC_ROWS as i64).collect::<Vec<i64>>(),
        "basic.snappy.parquet's rows, each once"
    );

    // Within budget, the automatic shuffle is global.
    o.set_memory_budget(Some(1 << 40)).unwrap();
    let stats = Loader::open(data_file("parquet/basic.snappy.parquet"), &o)
        .unwrap()
        .stats();
    assert_eq!(
        (stats.shuffle_requested, stats.shuffle),
        (None, ShuffleMode::Global)
    );
    assert_eq!(stats.memory_budget, 1 << 40);
}

#[test]
fn an_explicit_global_shuffle_over_budget_is_an_out_of_memory_error() {
    let mut o = LoaderOptions::default();
    o.set_shuffle(ShuffleMode::Global);
    o.set_memory_budget(Some(200_000)).unwrap();
    let err = Loader::open(data_file("parquet/basic.snappy.parquet"), &o).unwrap_err();
    assert!(matches!(err, Error::OutOfMemory { .. }), "{err}");
    assert_eq!(err.kind(), zenith_core::ErrorKind::OutOfMemory);
    let message = err.to_string();
    for part in [
        "global shuffle",
        "basic.snappy.parquet",
        "memory budget (200000 bytes)",
        "memory_budget",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    // Memory-mapped Arrow IPC needs no decoding: a global shuffle of it always fits.
    let loader = Loader::open(data_file("basic.arrow"), &o).unwrap();
    assert_eq!(loader.stats().shuffle, ShuffleMode::Global);
    assert_eq!(loader.stats().shuffle_requested, Some(ShuffleMode::Global));
    // Explicit block shuffles run with windows that fit.
    o.set_shuffle(ShuffleMode::Block);
    let loader = Loader::open(data_file("parquet/basic.snappy.parquet"), &o).unwrap();
    assert_eq!(loader.stats().shuffle, ShuffleMode::Block);
}

#[test]
fn a_token_of_a_downgraded_shuffle_resumes_only_automatically_or_as_block() {
    let mut auto = LoaderOptions::default();
    auto.set_batch_size(1000).unwrap();
    auto.set_memory_budget(Some(200_000)).unwrap();
    let loader = Loader::open(data_file("parquet/basic.snappy.parquet"), &auto).unwrap();
    let full = drain(&Loader::open(data_file("parquet/basic.snappy.parquet"), &auto).unwrap());
    loader.next_batch().unwrap().unwrap();
    let token = loader.save_state();
    let mut o = auto.clone();
    o.set_resume_state(&token).unwrap();
    assert_eq!(
        drain(&Loader::open(data_file("parquet/basic.snappy.parquet"), &o).unwrap()),
        full[1..]
    );
    let mut block = o.clone();
    block.set_shuffle(ShuffleMode::Block);
    assert_eq!(
        drain(&Loader::open(data_file("parquet/basic.snappy.parquet"), &block).unwrap()),
        full[1..]
    );
    let mut strict = o.clone();
    strict.set_shuffle(ShuffleMode::Global);
    strict.set_memory_budget(Some(1 << 40)).unwrap();
    let err = Loader::open(data_file("parquet/basic.snappy.parquet"), &strict).unwrap_err();
    assert!(err.to_string().contains("shuffle"), "{err}");
}

#[test]
fn stats_count_what_was_delivered() {
    let loader = open(&options(4000, ShuffleMode::Global, 2));
    assert_eq!(loader.stats().batches_per_epoch, 3);
    drain(&loader);
    let stats = loader.stats();
    assert_eq!((stats.rows, stats.batches), (BASIC_ROWS, 3));
    assert!(
        stats.bytes > BASIC_ROWS * 8,
        "at least the id column: {}",
        stats.bytes
    );
    assert!(stats.time_to_first_batch_ns > 0);
    assert!(stats.worker_busy_ns > 0);
    assert_eq!(stats.shuffle, ShuffleMode::Global);
    assert_eq!(stats.num_workers, 2);
    assert_eq!(stats.queue_depth, 0);
    assert_eq!(stats.shuffle_requested, Some(ShuffleMode::Global));
}

#[test]
fn stats_say_which_shard_the_options_chose() {
    let mut o = options(100, ShuffleMode::Global, 1);
    o.set_shard(1, 4).unwrap();
    let stats = open(&o).stats();
    assert_eq!((stats.rank, stats.world_size), (1, 4));
    assert_eq!(stats.shard_source, ShardSource::Options);
    o.set_shard_none();
    let stats = open(&o).stats();
    assert_eq!(
        (stats.rank, stats.world_size, stats.shard_source),
        (0, 1, ShardSource::Options)
    );
}

#[test]
fn streams_continue_the_epoch_with_workers() {
    let loader = open(&options(900, ShuffleMode::Global, 3));
    let reference = drain(&open(&options(900, ShuffleMode::Global, 0)));
    assert_eq!(loader.next_batch().unwrap().unwrap().data.num_rows(), 900);
    let reader = loader.reader();
    drop(loader);
    let rest: Vec<Vec<i64>> = reader
        .map(|b| {
            b.unwrap()
                .column(0)
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    assert_eq!(rest, reference[1..]);
}
