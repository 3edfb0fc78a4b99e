//! The epoch plan: which rows go into which batch, fixed before any batch is built.
//!
//! An epoch is a pure function of the dataset size and the options, so every run (and every
//! consumer of the same loader) sees the same batches in the same order.

/// One batch of the plan: a contiguous run of global row numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRange {
    /// Global row number of the first row.
    pub start: u64,
    /// Number of rows.
    pub len: usize,
}

/// The order in which an epoch delivers rows: sequential batches of `batch_size` rows, the last
/// one shorter when the row count is not a multiple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochPlan {
    num_rows: u64,
    batch_size: usize,
}

impl EpochPlan {
    /// Plans an epoch over `num_rows` rows. `batch_size` must be non-zero (options guarantee it).
    pub fn sequential(num_rows: u64, batch_size: usize) -> Self {
        assert!(batch_size > 0, "batch_size is validated by LoaderOptions");
        EpochPlan {
            num_rows,
            batch_size,
        }
    }

    /// Number of batches in the epoch.
    pub fn num_batches(&self) -> u64 {
        self.num_rows.div_ceil(self.batch_size as u64)
    }

    /// The rows of batch `index`, or `None` past the end of the epoch.
    pub fn batch(&self, index: u64) -> Option<BatchRange> {
        if index >= self.num_batches() {
            return None;
        }
        let start = index * self.batch_size as u64;
        let len = (self.num_rows - start).min(self.batch_size as u64) as usize;
        Some(BatchRange { start, len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_every_row_once_and_only_the_last_is_short() {
        for (rows, size) in [
            (0u64, 3usize),
            (1, 3),
            (9, 3),
            (10, 3),
            (10, 100),
            (1_000_003, 1024),
        ] {
            let plan = EpochPlan::sequential(rows, size);
            let mut next_row = 0;
            for i in 0..plan.num_batches() {
                let b = plan.batch(i).unwrap();
                assert_eq!(b.start, next_row);
                if i + 1 < plan.num_batches() {
                    assert_eq!(b.len, size);
                } else {
                    assert!(b.len >= 1 && b.len <= size);
                }
                next_row += b.len as u64;
            }
            assert_eq!(next_row, rows);
            assert_eq!(plan.batch(plan.num_batches()), None);
        }
    }
}
