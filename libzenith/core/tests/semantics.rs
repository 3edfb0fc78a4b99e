//! The loader semantics users rely on (DESIGN.md): deterministic order for any number of
//! workers, exact permutations, disjoint equal shards, exact resume, projections, epochs, stats.

mod common;

use std::collections::HashSet;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use common::{BASIC_ROWS, assert_basic_rows, data_file};
use zenith_core::loader::ShuffleMode;
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
fn shards_are_disjoint_with_equal_batch_counts() {
    for shuffle in [ShuffleMode::None, ShuffleMode::Global, ShuffleMode::Block] {
        for world in [1u32, 2, 3, 7] {
            let mut seen = HashSet::new();
            let mut counts = HashSet::new();
            for rank in 0..world {
                let mut o = options(128, shuffle, 1);
                o.set_shard(rank, world).unwrap();
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
