//! Seeded, platform-independent randomness for epoch orders.
//!
//! The generator, the shuffle and the permutation are written here rather than taken from a crate
//! so that an order (and so a resume token) means the same thing in every build, on every
//! platform, forever.

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

/// A keyed pseudo-random permutation of `0..n`, evaluated one position at a time.
///
/// A balanced Feistel network over the smallest even bit width covering `n`, with cycle walking
/// (re-encrypting until the value falls below `n`; the domain is under `4n`, so under 4 steps on
/// average) is a bijection of `0..n`. A global shuffle uses it instead of materialising a
/// permutation: no `O(rows)` set-up before the first batch and no `O(rows)` memory, however large
/// the dataset. The permutation is drawn from a keyed family rather than uniformly from all `n!`
/// orders; for shuffling training data the difference is not observable.
#[derive(Debug, Clone)]
pub struct Permutation {
    n: u64,
    half_bits: u32,
    keys: [u64; FEISTEL_ROUNDS],
}

const FEISTEL_ROUNDS: usize = 6;

impl Permutation {
    /// A permutation of `0..n` keyed by `rng`.
    pub fn new(n: u64, rng: &mut SplitMix64) -> Self {
        let bits = if n <= 1 {
            2
        } else {
            64 - (n - 1).leading_zeros()
        };
        let half_bits = bits.div_ceil(2).max(1);
        let keys = std::array::from_fn(|_| rng.next_u64());
        Permutation { n, half_bits, keys }
    }

    /// The image of `i` (`i < n`).
    pub fn apply(&self, i: u64) -> u64 {
        debug_assert!(i < self.n);
        let mut x = i;
        loop {
            x = self.encrypt(x);
            if x < self.n {
                return x;
            }
        }
    }

    fn encrypt(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut left, mut right) = (x >> self.half_bits, x & mask);
        for key in self.keys {
            let round = mix(right ^ key) & mask;
            (left, right) = (right, left ^ round);
        }
        (left << self.half_bits) | right
    }
}

/// SplitMix64's finaliser: a fast, well-spread 64-bit mixing function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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
    fn permutations_are_bijections_for_every_size() {
        for n in [1u64, 2, 3, 5, 16, 17, 1000, 4097, 65_537] {
            let p = Permutation::new(n, &mut SplitMix64::new(9, 0, 0));
            let mut seen = vec![false; n as usize];
            for i in 0..n {
                let j = p.apply(i) as usize;
                assert!(!seen[j], "n={n}: {j} hit twice");
                seen[j] = true;
            }
        }
    }

    #[test]
    fn permutations_scatter_neighbours() {
        // Consecutive positions land far apart and spread over the whole range.
        let n = 100_000;
        let p = Permutation::new(n, &mut SplitMix64::new(3, 1, 0));
        let mut buckets = [0u32; 10];
        let mut adjacent = 0;
        for i in 0..n {
            let j = p.apply(i);
            buckets[(j * 10 / n) as usize] += 1;
            if i > 0 && p.apply(i - 1).abs_diff(j) <= 1 {
                adjacent += 1;
            }
        }
        assert!(
            buckets.iter().all(|&b| (9_000..11_000).contains(&b)),
            "{buckets:?}"
        );
        assert!(adjacent < 10, "{adjacent} neighbours stayed neighbours");
        let first: Vec<u64> = (0..8).map(|i| p.apply(i)).collect();
        assert_eq!(first, PINNED_IMAGES);
    }

    const PINNED_IMAGES: [u64; 8] = [82406, 47693, 69352, 65659, 97, 72021, 96675, 81789];

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
