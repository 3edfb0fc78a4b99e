//! The epoch plan: which rows go into which batch of this rank, fixed before any batch is built.
//!
//! A plan is a pure function of (dataset layout, shuffle mode, seed, epoch, batch size, drop_last,
//! rank, world size, remainder rule, block window): the same every run and whatever the number of
//! workers.
//!
//! 1. Order every row of the dataset: as stored (`None`), by one exact permutation (`Global`), or
//!    by shuffling chunks (row groups) and then rows within windows of consecutive chunks
//!    (`Block`, for data larger than memory). Orders are evaluated lazily, position by position
//!    ([`Permutation`]): a plan costs `O(chunks)` memory and no set-up time, whatever the rows.
//! 2. Split that order between ranks: each rank takes a contiguous run of it, and every rank gets
//!    the same number of rows and so of batches. When the rows do not divide evenly, the order is
//!    padded by wrapping around (as torch's `DistributedSampler` does): it continues with its own
//!    first positions until it holds `world * ceil(rows / world)`, so every row is delivered and
//!    fewer than `world` rows are delivered twice (to different ranks). With `drop_remainder` the
//!    last `rows % world` positions are left out instead (with shuffling, different rows each
//!    epoch), and ranks are disjoint.
//! 3. Cut the rank's rows into batches of `batch_size`; the last is shorter, or dropped with
//!    `drop_last`.

use super::shuffle::{Permutation, SplitMix64};
use crate::dataset::ChunkInfo;

/// How an epoch orders rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShuffleMode {
    /// Dataset order.
    None,
    /// One exact permutation of all rows.
    Global,
    /// Chunks shuffled, then rows shuffled within windows of consecutive chunks.
    Block,
}

/// Everything besides the dataset that decides an epoch's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanParams {
    /// The order mode actually used.
    pub shuffle: ShuffleMode,
    /// User seed.
    pub seed: u64,
    /// Epoch number.
    pub epoch: u64,
    /// Rows per batch (> 0).
    pub batch_size: usize,
    /// Drop the last, short batch.
    pub drop_last: bool,
    /// This process's rank.
    pub rank: u32,
    /// Number of ranks (> rank).
    pub world_size: u32,
    /// Rows that do not divide across ranks are dropped (`true`) or padded by wrapping around.
    pub drop_remainder: bool,
    /// Chunks per shuffle window in `Block` mode (> 0).
    pub window_chunks: usize,
}

/// The rows of one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchRows {
    /// A contiguous run of global rows `start..start + len`.
    Range {
        /// First global row.
        start: u64,
        /// Number of rows.
        len: usize,
    },
    /// These global rows, in this order.
    Rows(Vec<u64>),
}

impl BatchRows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            BatchRows::Range { len, .. } => *len,
            BatchRows::Rows(rows) => rows.len(),
        }
    }

    /// True when the batch holds no row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// This rank's rows for one epoch, cut into batches.
#[derive(Debug, Clone)]
pub struct EpochPlan {
    params: PlanParams,
    order: RankOrder,
    /// Rows in the dataset: positions at or past it wrap around to the start of the order.
    total: u64,
    /// Position, in the epoch's (padded) order of all rows, of this rank's first row.
    rank_start: u64,
    rank_rows: u64,
    num_batches: u64,
}

#[derive(Debug, Clone)]
enum RankOrder {
    /// Position `p` holds row `p` (dataset order).
    Contiguous,
    /// Position `p` of the epoch's order holds row `permutation.apply(p)`.
    Global(Permutation),
    /// Position `p` falls in a window of shuffled chunks, permuted within the window.
    Block(BlockOrder),
}

/// A block shuffle, evaluated lazily: windows of `window_chunks` chunks taken in a shuffled chunk
/// order, each window's rows permuted among themselves.
#[derive(Debug, Clone)]
struct BlockOrder {
    /// First position of each window, and the total at the end.
    window_starts: Vec<u64>,
    windows: Vec<BlockWindow>,
}

#[derive(Debug, Clone)]
struct BlockWindow {
    /// (first global row, rows) of each chunk in the window, in shuffled order.
    chunks: Vec<(u64, u64)>,
    /// Offset of each chunk's first row within the window.
    chunk_offsets: Vec<u64>,
    permutation: Permutation,
}

impl BlockOrder {
    fn new(chunks: &[ChunkInfo], params: &PlanParams) -> Self {
        let mut chunk_order: Vec<usize> = (0..chunks.len()).collect();
        SplitMix64::new(params.seed, params.epoch, 1).shuffle(&mut chunk_order);
        let mut keys = SplitMix64::new(params.seed, params.epoch, 2);
        let mut window_starts = vec![0];
        let mut windows = Vec::new();
        for group in chunk_order.chunks(params.window_chunks) {
            let mut offset = 0;
            let mut members = Vec::with_capacity(group.len());
            let mut chunk_offsets = Vec::with_capacity(group.len());
            for &chunk in group {
                members.push((chunks[chunk].start, chunks[chunk].rows));
                chunk_offsets.push(offset);
                offset += chunks[chunk].rows;
            }
            windows.push(BlockWindow {
                chunks: members,
                chunk_offsets,
                permutation: Permutation::new(offset, &mut keys),
            });
            window_starts.push(window_starts.last().expect("starts with 0") + offset);
        }
        BlockOrder {
            window_starts,
            windows,
        }
    }

    fn row_at(&self, position: u64) -> u64 {
        let window = self.window_starts.partition_point(|&s| s <= position) - 1;
        let w = &self.windows[window];
        let local = w.permutation.apply(position - self.window_starts[window]);
        let member = w.chunk_offsets.partition_point(|&o| o <= local) - 1;
        let (first_row, _) = w.chunks[member];
        first_row + (local - w.chunk_offsets[member])
    }
}

impl EpochPlan {
    /// Plans an epoch over `chunks` (the dataset's non-empty chunks, in order).
    pub fn new(chunks: &[ChunkInfo], params: PlanParams) -> Self {
        assert!(
            params.batch_size > 0 && params.world_size > params.rank && params.window_chunks > 0
        );
        let total: u64 = chunks.iter().map(|c| c.rows).sum();
        let world = params.world_size as u64;
        let rank_rows = if params.drop_remainder {
            total / world
        } else {
            total.div_ceil(world)
        };
        let rank_start = rank_rows * params.rank as u64;
        let order = match params.shuffle {
            ShuffleMode::None => RankOrder::Contiguous,
            ShuffleMode::Global => {
                let mut keys = SplitMix64::new(params.seed, params.epoch, 0);
                RankOrder::Global(Permutation::new(total, &mut keys))
            }
            ShuffleMode::Block => RankOrder::Block(BlockOrder::new(chunks, &params)),
        };
        let batch_size = params.batch_size as u64;
        let num_batches = if params.drop_last {
            rank_rows / batch_size
        } else {
            rank_rows.div_ceil(batch_size)
        };
        EpochPlan {
            params,
            order,
            total,
            rank_start,
            rank_rows,
            num_batches,
        }
    }

    /// The parameters this plan was made with.
    pub fn params(&self) -> &PlanParams {
        &self.params
    }

    /// Number of batches this rank receives this epoch.
    pub fn num_batches(&self) -> u64 {
        self.num_batches
    }

    /// Rows this rank receives this epoch (including those of a dropped last batch, and any
    /// padding).
    pub fn rank_rows(&self) -> u64 {
        self.rank_rows
    }

    /// The rows of batch `index`, or `None` past the end of the epoch.
    pub fn batch(&self, index: u64) -> Option<BatchRows> {
        if index >= self.num_batches {
            return None;
        }
        let start = index * self.params.batch_size as u64;
        let len = (self.rank_rows - start).min(self.params.batch_size as u64) as usize;
        let positions = self.positions(start, len);
        Some(match &self.order {
            RankOrder::Contiguous if positions.end <= self.total => BatchRows::Range {
                start: positions.start,
                len,
            },
            // Padding wraps around to the first rows: no longer one contiguous run.
            RankOrder::Contiguous => BatchRows::Rows(positions.map(|p| p % self.total).collect()),
            RankOrder::Global(permutation) => BatchRows::Rows(
                positions
                    .map(|p| permutation.apply(p % self.total))
                    .collect(),
            ),
            RankOrder::Block(order) => {
                BatchRows::Rows(positions.map(|p| order.row_at(p % self.total)).collect())
            }
        })
    }

    /// Positions, in the epoch's padded order of all rows, of this rank's rows
    /// `start..start + len` (at or past `total`: padding, which wraps around).
    fn positions(&self, start: u64, len: usize) -> std::ops::Range<u64> {
        self.rank_start + start..self.rank_start + start + len as u64
    }

    /// For each chunk, how many of the batches `from..num_batches` read from it, and the order in
    /// which those batches first need the chunks. A chunk cache uses the counts to decode each
    /// chunk at most once and free it after its last use, and the order to decode ahead.
    pub fn chunk_usage(&self, chunks: &[ChunkInfo], from: u64) -> ChunkUsage {
        self.chunk_usage_until(chunks, from, &|| false)
            .expect("a walk that is never stopped finishes")
    }

    /// [`Self::chunk_usage`], given up (`None`) as soon as `stop` says so (asked once per batch:
    /// a shuffled epoch's walk visits every row, and its loader may be dropped meanwhile).
    pub fn chunk_usage_until(
        &self,
        chunks: &[ChunkInfo],
        from: u64,
        stop: &dyn Fn() -> bool,
    ) -> Option<ChunkUsage> {
        let mut uses = vec![0u64; chunks.len()];
        let mut first_use_order = Vec::new();
        let mut last_batch = vec![u64::MAX; chunks.len()];
        let chunk_of = |row: u64| chunks.partition_point(|c| c.start + c.rows <= row);
        let mut touch = |chunk: usize, index: u64| {
            if last_batch[chunk] != index {
                if last_batch[chunk] == u64::MAX {
                    first_use_order.push(chunk);
                }
                last_batch[chunk] = index;
                uses[chunk] += 1;
            }
        };
        for index in from..self.num_batches {
            if stop() {
                return None;
            }
            match self.batch(index).expect("index < num_batches") {
                BatchRows::Range { start, len } => {
                    if len > 0 {
                        (chunk_of(start)..=chunk_of(start + len as u64 - 1))
                            .for_each(|c| touch(c, index));
                    }
                }
                BatchRows::Rows(rows) => rows.iter().for_each(|&row| touch(chunk_of(row), index)),
            }
        }
        Some(ChunkUsage {
            uses,
            first_use_order,
        })
    }
}

/// How an epoch's remaining batches use the dataset's chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkUsage {
    /// `uses[c]`: batches that read chunk `c`.
    pub uses: Vec<u64>,
    /// Chunks in the order batches first need them (chunks never used are absent).
    pub first_use_order: Vec<usize>,
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn chunks(sizes: &[u64]) -> Vec<ChunkInfo> {
        let mut start = 0;
        sizes
            .iter()
            .enumerate()
            .map(|(i, &rows)| {
                let c = ChunkInfo {
                    source: 0,
                    index: i,
                    start,
                    rows,
                };
                start += rows;
                c
            })
            .collect()
    }

    fn params(shuffle: ShuffleMode, batch_size: usize, rank: u32, world_size: u32) -> PlanParams {
        PlanParams {
            shuffle,
            seed: 7,
            epoch: 0,
            batch_size,
            drop_last: false,
            rank,
            world_size,
            drop_remainder: false,
            window_chunks: 2,
        }
    }

    fn all_rows(plan: &EpochPlan) -> Vec<u64> {
        let mut rows = Vec::new();
        for i in 0..plan.num_batches() {
            match plan.batch(i).unwrap() {
                BatchRows::Range { start, len } => rows.extend(start..start + len as u64),
                BatchRows::Rows(r) => rows.extend_from_slice(&r),
            }
        }
        rows
    }

    #[test]
    fn every_mode_delivers_each_row_exactly_once_on_one_rank() {
        let layout = chunks(&[100, 37, 250, 1, 612]);
        for mode in [ShuffleMode::None, ShuffleMode::Global, ShuffleMode::Block] {
            let plan = EpochPlan::new(&layout, params(mode, 64, 0, 1));
            let mut rows = all_rows(&plan);
            assert_eq!(rows.len(), 1000);
            if mode == ShuffleMode::None {
                assert_eq!(rows, (0..1000).collect::<Vec<_>>());
            } else {
                assert_ne!(rows, (0..1000).collect::<Vec<_>>(), "{mode:?} shuffles");
            }
            rows.sort();
            assert_eq!(rows, (0..1000).collect::<Vec<_>>());
            assert_eq!(plan.num_batches(), 16);
            assert_eq!(plan.batch(15).unwrap().len(), 1000 - 15 * 64);
        }
    }

    #[test]
    fn ranks_dropping_the_remainder_are_disjoint_and_equal() {
        let layout = chunks(&[333, 333, 335]);
        for mode in [ShuffleMode::None, ShuffleMode::Global, ShuffleMode::Block] {
            let world = 4;
            let mut seen = HashSet::new();
            let mut counts = HashSet::new();
            for rank in 0..world {
                let mut p = params(mode, 32, rank, world);
                p.drop_remainder = true;
                let plan = EpochPlan::new(&layout, p);
                counts.insert(plan.num_batches());
                assert_eq!(plan.rank_rows(), 1001 / 4);
                for row in all_rows(&plan) {
                    assert!(seen.insert(row), "row {row} on two ranks ({mode:?})");
                }
            }
            assert_eq!(counts.len(), 1, "equal batch counts ({mode:?})");
            assert_eq!(seen.len(), 1000, "only 1001 % 4 = 1 row left out");
        }
    }

    #[test]
    fn padded_ranks_cover_every_row_and_repeat_only_the_padding() {
        // 1001 rows over 4 ranks: 251 each, 3 padding positions wrap to the order's first rows.
        let layout = chunks(&[333, 333, 335]);
        for mode in [ShuffleMode::None, ShuffleMode::Global, ShuffleMode::Block] {
            let world = 4;
            let mut delivered = Vec::new();
            let mut counts = HashSet::new();
            for rank in 0..world {
                let plan = EpochPlan::new(&layout, params(mode, 32, rank, world));
                assert_eq!(plan.rank_rows(), 251);
                counts.insert(plan.num_batches());
                let rows = all_rows(&plan);
                assert_eq!(rows.len(), 251);
                delivered.extend(rows);
            }
            assert_eq!(counts.len(), 1, "equal batch counts ({mode:?})");
            let distinct: HashSet<u64> = delivered.iter().copied().collect();
            assert_eq!(distinct.len(), 1001, "every row delivered ({mode:?})");
            assert_eq!(delivered.len(), 1004);
            // The padding repeats the first positions of the order: rank 0's first rows.
            let first = all_rows(&EpochPlan::new(&layout, params(mode, 32, 0, world)));
            assert_eq!(delivered[1001..], first[..3], "{mode:?}");
        }
    }

    #[test]
    fn padding_wraps_a_contiguous_batch_into_rows() {
        // 10 rows over 4 ranks: 3 each; rank 3 takes positions 9, 10, 11 = rows 9, 0, 1.
        let layout = chunks(&[4, 6]);
        let plan = EpochPlan::new(&layout, params(ShuffleMode::None, 8, 3, 4));
        assert_eq!(plan.batch(0), Some(BatchRows::Rows(vec![9, 0, 1])));
        let plan = EpochPlan::new(&layout, params(ShuffleMode::None, 8, 2, 4));
        assert_eq!(plan.batch(0), Some(BatchRows::Range { start: 6, len: 3 }));
        assert_eq!(plan.chunk_usage(&layout, 0).uses, vec![0, 1]);
        let wrapped = EpochPlan::new(&layout, params(ShuffleMode::None, 8, 3, 4));
        assert_eq!(wrapped.chunk_usage(&layout, 0).uses, vec![1, 1]);
    }

    #[test]
    fn an_empty_dataset_plans_no_batch() {
        for drop_remainder in [false, true] {
            let mut p = params(ShuffleMode::Global, 8, 0, 1);
            p.drop_remainder = drop_remainder;
            let plan = EpochPlan::new(&[], p);
            assert_eq!((plan.num_batches(), plan.rank_rows()), (0, 0));
        }
    }

    #[test]
    fn drop_last_drops_only_the_short_batch() {
        let layout = chunks(&[100]);
        let mut p = params(ShuffleMode::None, 30, 0, 1);
        p.drop_last = true;
        let plan = EpochPlan::new(&layout, p);
        assert_eq!(plan.num_batches(), 3);
        assert_eq!(all_rows(&plan).len(), 90);
    }

    #[test]
    fn block_shuffle_keeps_windows_together() {
        let layout = chunks(&[10; 8]);
        let plan = EpochPlan::new(&layout, params(ShuffleMode::Block, 20, 0, 1));
        // Each batch of 20 = one window of 2 chunks: its rows come from exactly 2 chunks.
        for i in 0..plan.num_batches() {
            let BatchRows::Rows(rows) = plan.batch(i).unwrap() else {
                panic!()
            };
            let chunks_touched: HashSet<u64> = rows.iter().map(|r| r / 10).collect();
            assert_eq!(chunks_touched.len(), 2);
        }
    }

    #[test]
    fn plans_are_pure_functions_of_their_inputs() {
        let layout = chunks(&[500, 500]);
        let a = EpochPlan::new(&layout, params(ShuffleMode::Global, 64, 1, 3));
        let b = EpochPlan::new(&layout, params(ShuffleMode::Global, 64, 1, 3));
        assert_eq!(all_rows(&a), all_rows(&b));
        let mut next_epoch = params(ShuffleMode::Global, 64, 1, 3);
        next_epoch.epoch = 1;
        assert_ne!(all_rows(&a), all_rows(&EpochPlan::new(&layout, next_epoch)));
    }

    #[test]
    fn chunk_uses_count_batches_per_chunk() {
        let layout = chunks(&[10, 10, 10]);
        let plan = EpochPlan::new(&layout, params(ShuffleMode::None, 15, 0, 1));
        // Batches: rows 0..15 (chunks 0,1), 15..30 (chunks 1,2).
        assert_eq!(plan.chunk_usage(&layout, 0).uses, vec![1, 2, 1]);
        assert_eq!(plan.chunk_usage(&layout, 0).first_use_order, vec![0, 1, 2]);
        assert_eq!(plan.chunk_usage(&layout, 1).uses, vec![0, 1, 1]);
        assert_eq!(plan.chunk_usage(&layout, 1).first_use_order, vec![1, 2]);
        let shuffled = EpochPlan::new(&layout, params(ShuffleMode::Global, 30, 0, 1));
        assert_eq!(shuffled.chunk_usage(&layout, 0).uses, vec![1, 1, 1]);
    }
}
