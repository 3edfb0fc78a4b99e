//! What the environment decides when the options do not: rank and world size (`RANK`/
//! `WORLD_SIZE`, `SLURM_PROCID`/`SLURM_NTASKS`) and the default memory budget's share of the node
//! (`LOCAL_WORLD_SIZE`, `SLURM_NTASKS_PER_NODE`), each reported in the stats.
//!
//! This binary holds one test on purpose: it sets environment variables, which every loader the
//! process opens would see.

mod common;

use common::data_file;
use zenith_core::loader::{ShardSource, ShuffleMode, default_memory_budget};
use zenith_core::{Error, Loader, LoaderOptions};

const VARIABLES: [&str; 6] = [
    "RANK",
    "WORLD_SIZE",
    "SLURM_PROCID",
    "SLURM_NTASKS",
    "LOCAL_WORLD_SIZE",
    "SLURM_NTASKS_PER_NODE",
];

/// Sets exactly `pairs` among [`VARIABLES`] (the others are removed).
fn environment(pairs: &[(&str, &str)]) {
    for name in VARIABLES {
        match pairs.iter().find(|(k, _)| *k == name) {
            // SAFETY: this binary's only test runs on one thread, and no loader is open (their
            // worker threads never read the environment anyway).
            Some((_, value)) => unsafe { std::env::set_var(name, value) },
            // SAFETY: as above.
            None => unsafe { std::env::remove_var(name) },
        }
    }
}

fn shard_of(options: &LoaderOptions) -> (u32, u32, ShardSource, u64) {
    let loader = Loader::open(data_file("basic.arrow"), options).unwrap();
    let s = loader.stats();
    (s.rank, s.world_size, s.shard_source, loader.num_batches())
}

#[test]
fn the_environment_shards_and_budgets_visibly_and_options_override_it() {
    let mut o = LoaderOptions::default();
    o.set_batch_size(1000).unwrap();
    o.set_shuffle(ShuffleMode::None);

    environment(&[]);
    assert_eq!(shard_of(&o), (0, 1, ShardSource::None, 10));

    environment(&[("RANK", "1"), ("WORLD_SIZE", "2")]);
    assert_eq!(shard_of(&o), (1, 2, ShardSource::TorchEnv, 5));

    environment(&[("SLURM_PROCID", "2"), ("SLURM_NTASKS", "4")]);
    assert_eq!(shard_of(&o), (2, 4, ShardSource::SlurmEnv, 3));

    // torchrun's variables win over SLURM's (torchrun under srun).
    environment(&[
        ("RANK", "1"),
        ("WORLD_SIZE", "2"),
        ("SLURM_PROCID", "2"),
        ("SLURM_NTASKS", "4"),
    ]);
    assert_eq!(shard_of(&o), (1, 2, ShardSource::TorchEnv, 5));

    // A rank-0-only evaluation loader under torchrun reads everything when it says so.
    let mut everything = o.clone();
    everything.set_shard_none();
    assert_eq!(shard_of(&everything), (0, 1, ShardSource::Options, 10));
    let mut explicit = o.clone();
    explicit.set_shard(0, 1).unwrap();
    assert_eq!(shard_of(&explicit), (0, 1, ShardSource::Options, 10));
    explicit.set_shard_from_env();
    assert_eq!(shard_of(&explicit), (1, 2, ShardSource::TorchEnv, 5));

    // A world from the environment larger than the dataset: the error says where it came from.
    environment(&[("RANK", "0"), ("WORLD_SIZE", "10001")]);
    let err = Loader::open(data_file("basic.arrow"), &o).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert!(err.to_string().contains("RANK/WORLD_SIZE"), "{err}");

    // The default memory budget is the node's, shared by its ranks.
    environment(&[]);
    let alone = default_memory_budget();
    environment(&[("LOCAL_WORLD_SIZE", "8")]);
    let shared = default_memory_budget();
    // MemAvailable moves between the two reads: compare with a tolerance of 1/8 of the share.
    let expected = alone / 8;
    assert!(
        shared.abs_diff(expected) <= expected / 8,
        "{shared} is not about {alone} / 8"
    );
    environment(&[("SLURM_NTASKS_PER_NODE", "4")]);
    let expected = alone / 4;
    let slurm = default_memory_budget();
    assert!(
        slurm.abs_diff(expected) <= expected / 8,
        "{slurm} vs {alone} / 4"
    );
    environment(&[("LOCAL_WORLD_SIZE", "8")]);
    let loader = Loader::open(data_file("basic.parquet"), &LoaderOptions::default()).unwrap();
    let budget = loader.stats().memory_budget;
    assert!(
        budget.abs_diff(alone / 8) <= alone / 64,
        "{budget} vs {alone} / 8"
    );
    environment(&[]);
}
