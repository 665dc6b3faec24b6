//! SplitMix64: a small, fast, seedable generator, so that a testnet run is the same for the
//! same `--seed` on every machine and every version of its dependencies.

/// A seeded pseudo-random sequence.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// The sequence for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An index in `0..n` drawn with weight 1/(rank+1) (Zipf): a few popular items, a long
    /// tail, as listening is.
    pub fn zipf(&mut self, n: usize) -> usize {
        let total: f64 = (1..=n).map(|k| 1.0 / k as f64).sum();
        let mut x = self.unit() * total;
        for k in 0..n {
            x -= 1.0 / (k + 1) as f64;
            if x <= 0.0 {
                return k;
            }
        }
        n - 1
    }

    /// 32 random bytes.
    pub fn seed32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_bounds_hold() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let (x, y) = (a.below(10), b.below(10));
            assert!(x < 10 && x == y);
            let (x, y) = (a.zipf(5), b.zipf(5));
            assert!(x < 5 && x == y);
        }
        assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
    }

    #[test]
    fn zipf_favours_the_first_items() {
        let mut r = Rng::new(1);
        let mut counts = [0u32; 8];
        for _ in 0..8000 {
            counts[r.zipf(8)] += 1;
        }
        assert!(counts[0] > counts[3] && counts[3] > counts[7], "{counts:?}");
    }
}
