//! Exact division of any `u64` by a divisor fixed at construction, without a `div`
//! instruction: the hot paths divide by the same quota constant on every check (GCRA's
//! emission interval, a window's length), and a 64-bit `div` costs 15–40 cycles where two
//! multiplications cost about 4.
//!
//! Method (as in the `strength_reduce` crate, and Granlund & Montgomery 1994): with
//! `m = ⌈2^128 / d⌉` for a divisor `d` that is not a power of two, `⌊n·m / 2^128⌋ = ⌊n / d⌋`
//! for every `n < 2^64`. Proof: `m·d = 2^128 + e` with `0 < e < d`, so
//! `n·m / 2^128 = n/d + n·e / (d·2^128)`, and the second term is below `2^-64 ≤ 1/d`, less
//! than the gap between `n/d` and the next integer. Powers of two are a shift.
//!
//! Hand-written rather than taken from `strength_reduce` because the limiters' configs
//! are built in `const fn`s and derive `Eq`/`Hash`, which that crate's type supports
//! neither of; the arithmetic is the same ten lines.

use core::num::NonZeroU64;

/// A divisor prepared for exact, `div`-free division of `u64`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Divisor {
    /// `⌈2^128 / d⌉` in two halves (keeping the type 8-byte aligned, so configs that
    /// embed it stay small), or 0 when `d` is a power of two (then `shift` is used).
    multiplier_high: u64,
    multiplier_low: u64,
    /// `log2(d)` when `d` is a power of two.
    shift: u32,
}

impl Divisor {
    /// Prepares `divisor`.
    #[must_use]
    pub const fn new(divisor: NonZeroU64) -> Self {
        let divisor = divisor.get();
        if divisor.is_power_of_two() {
            return Self {
                multiplier_high: 0,
                multiplier_low: 0,
                shift: divisor.trailing_zeros(),
            };
        }
        // d ≥ 3 here, so ⌊(2^128 − 1) / d⌋ + 1 = ⌈2^128 / d⌉ (d does not divide 2^128)
        // and fits a u128.
        let multiplier = u128::MAX / divisor as u128 + 1;
        Self {
            multiplier_high: (multiplier >> 64) as u64,
            multiplier_low: multiplier as u64,
            shift: 0,
        }
    }

    /// Prepares `divisor`, reading 0 as 1: for configs whose quota already guarantees a
    /// non-zero divisor, so construction stays total without a panic path.
    #[must_use]
    pub const fn of_validated(divisor: u64) -> Self {
        Self::new(match NonZeroU64::new(divisor) {
            Some(divisor) => divisor,
            None => NonZeroU64::MIN,
        })
    }

    /// `⌊numerator / divisor⌋`, exactly.
    #[inline]
    #[must_use]
    pub const fn divide(&self, numerator: u64) -> u64 {
        if self.multiplier_high == 0 && self.multiplier_low == 0 {
            return numerator >> self.shift;
        }
        let n = numerator as u128;
        // The top 128 bits of the 192-bit product n·m, from two 64×64→128 products:
        // n·m_high ≤ (2^64 − 1)² = 2^128 − 2^65 + 1 and the carried-in high half of
        // n·m_low is < 2^64, so the sum cannot overflow.
        let high = n * self.multiplier_high as u128;
        let low = (n * self.multiplier_low as u128) >> 64;
        ((high + low) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::Divisor;
    use core::num::NonZeroU64;

    fn prepared(d: u64) -> Divisor {
        Divisor::new(NonZeroU64::new(d).unwrap())
    }

    #[test]
    fn matches_div_at_the_edges() {
        let divisors = [
            1,
            2,
            3,
            5,
            7,
            10,
            1_000_000_000,
            3_600_000_000_000,
            (1 << 32) - 1,
            1 << 32,
            (1 << 32) + 1,
            (1 << 63) - 1,
            1 << 63,
            (1 << 63) + 1,
            u64::MAX - 1,
            u64::MAX,
        ];
        for &d in &divisors {
            let prepared = prepared(d);
            for &n in &[0, 1, d - 1, d, d.wrapping_add(1), u64::MAX - 1, u64::MAX] {
                assert_eq!(prepared.divide(n), n / d, "{n} / {d}");
            }
            for k in [1u64, 2, 3, 1000, u64::MAX / d] {
                let n = d.saturating_mul(k);
                assert_eq!(prepared.divide(n), n / d, "{n} / {d}");
                assert_eq!(prepared.divide(n - 1), (n - 1) / d, "{} / {d}", n - 1);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]
        #[test]
        fn matches_div_everywhere(d in 1u64.., n: u64, small_d in 1u64..100_000, small_n in 0u64..1 << 40) {
            proptest::prop_assert_eq!(prepared(d).divide(n), n / d);
            proptest::prop_assert_eq!(prepared(small_d).divide(n), n / small_d);
            proptest::prop_assert_eq!(prepared(d).divide(small_n), small_n / d);
            proptest::prop_assert_eq!(prepared(small_d).divide(small_n), small_n / small_d);
        }
    }
}
