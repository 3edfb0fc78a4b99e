//! The memory budget a loader or a dataset works within when its options set none: half of the
//! memory the kernel reports available, shared by the ranks of this node. Sizes read from files
//! (a Parquet row group, a CSV file) and the data a global shuffle holds are checked against it
//! before anything is allocated.

/// The memory budget of a loader whose options set none: half of the memory the kernel reports
/// available (`MemAvailable`, else 4 GiB), divided by the ranks sharing the node, so that the
/// loaders of one node together stay within half of it. The ranks per node come from
/// `LOCAL_WORLD_SIZE` (torchrun), else `SLURM_NTASKS_PER_NODE` (srun with `--ntasks-per-node`),
/// else 1; a value that is not a positive integer counts as 1.
pub fn default_memory_budget() -> u64 {
    let available_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_available_kib(&text));
    let half = available_kib.map_or(4 << 30, |kib| kib.saturating_mul(1024) / 2);
    (half / ranks_per_node(|name| std::env::var(name).ok())).max(1)
}

fn mem_available_kib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemAvailable:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Loaders sharing this node's memory: `LOCAL_WORLD_SIZE`, else `SLURM_NTASKS_PER_NODE`, else 1.
fn ranks_per_node(lookup: impl Fn(&str) -> Option<String>) -> u64 {
    ["LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE"]
        .iter()
        .find_map(|name| {
            lookup(name)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|&n| n > 0)
        })
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::runtime::test_env::env;

    #[test]
    fn the_default_budget_is_shared_by_the_ranks_of_a_node() {
        assert_eq!(ranks_per_node(env(&[])), 1);
        assert_eq!(ranks_per_node(env(&[("LOCAL_WORLD_SIZE", "8")])), 8);
        assert_eq!(ranks_per_node(env(&[("SLURM_NTASKS_PER_NODE", "4")])), 4);
        let both = env(&[("LOCAL_WORLD_SIZE", "2"), ("SLURM_NTASKS_PER_NODE", "4")]);
        assert_eq!(ranks_per_node(both), 2, "torchrun first");
        for bad in ["0", "x", "-3", ""] {
            assert_eq!(
                ranks_per_node(env(&[("LOCAL_WORLD_SIZE", bad)])),
                1,
                "{bad:?}"
            );
        }
        let meminfo = "MemTotal:       16000000 kB\nMemAvailable:    8000000 kB\n";
        assert_eq!(mem_available_kib(meminfo), Some(8_000_000));
        assert_eq!(mem_available_kib("MemTotal: 1 kB\n"), None);
    }
}
