//! xorshift64*: the one small, seeded generator fdir uses where it needs
//! arbitrary but repeatable choices — the self-test's fault injector, the
//! spawn storm of `fdir-testee`, the random cases of tests. Never for secrets
//! (keys come from the kernel).

/// The generator's state. A seed of 0 would stay 0: seed it with an odd
/// number (`Rng(seed | 1)`).
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next number of the sequence.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        let n = u64::try_from(n).unwrap_or(u64::MAX).max(1);
        usize::try_from(self.next() % n).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_xorshift64_star_and_stays_in_range() {
        let mut r = Rng(1);
        // The first output of xorshift64* from 1, worked out by hand.
        assert_eq!(r.next(), 0x47e4_ce4b_896c_dd1d);
        let mut r = Rng(0x5eed | 1);
        assert!((0..1000).all(|_| r.below(7) < 7));
        assert_eq!(Rng(3).below(0), 0);
    }
}
