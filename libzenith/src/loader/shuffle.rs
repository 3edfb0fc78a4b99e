//! Seeded, platform-independent randomness for epoch orders.
//!
//! The generator and the shuffles are written here rather than taken from a crate so that an
//! order (and so a resume token) means the same thing in every build, on every platform, forever.

/// SplitMix64: tiny, fast, statistically solid for shuffling, and fully specified.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator for one purpose of one epoch: distinct `(seed, epoch, stream)` triples give
    /// independent sequences.
    pub fn new(seed: u64, epoch: u64, stream: u64) -> Self {
        let mut mixer = SplitMix64(seed);
        let a = mixer.next_u64();
        let mut mixer = SplitMix64(a ^ epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let b = mixer.next_u64();
        SplitMix64(b ^ stream.wrapping_mul(0xd1b5_4a32_d192_ed03))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..bound` (`bound > 0`), without modulo bias (Lemire's method).
    pub fn below(&mut self, bound: u64) -> u64 {
        debug_assert!(bound > 0);
        loop {
            let product = (self.next_u64() as u128) * (bound as u128);
            let low = product as u64;
            if low >= bound.wrapping_neg() % bound {
                return (product >> 64) as u64;
            }
        }
    }

    /// Shuffles `items` in place (Fisher–Yates): every permutation equally likely.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_fixed_forever() {
        // Pinned values: changing them silently invalidates every saved resume token.
        let mut rng = SplitMix64::new(0, 0, 0);
        let first: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        let mut again = SplitMix64::new(0, 0, 0);
        assert_eq!(first, (0..3).map(|_| again.next_u64()).collect::<Vec<_>>());
        let mut perm: Vec<u32> = (0..10).collect();
        SplitMix64::new(42, 1, 0).shuffle(&mut perm);
        assert_eq!(perm, PINNED_PERMUTATION);
    }

    const PINNED_PERMUTATION: [u32; 10] = [8, 3, 2, 9, 6, 1, 5, 7, 0, 4];

    #[test]
    fn different_epochs_and_seeds_give_different_orders() {
        let order = |seed, epoch| {
            let mut v: Vec<u32> = (0..1000).collect();
            SplitMix64::new(seed, epoch, 0).shuffle(&mut v);
            v
        };
        assert_ne!(order(0, 0), order(0, 1));
        assert_ne!(order(0, 0), order(1, 0));
        assert_eq!(order(7, 3), order(7, 3));
        let mut sorted = order(5, 5);
        sorted.sort();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn below_is_roughly_uniform() {
        let mut rng = SplitMix64::new(1, 2, 3);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            counts[rng.below(6) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
    }
}
