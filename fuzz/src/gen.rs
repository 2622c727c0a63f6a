//! Building blocks for structured inputs: numbers biased towards edges, quotas, time
//! steps and costs.

use arbitrary::Arbitrary;
use ratecore::{Algorithm, Quota, QuotaError};

/// A `u64` drawn so that edge values (0, 1, powers of two, values near `u64::MAX`) are
/// common.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Num {
    /// 0 to 255.
    Tiny(u8),
    /// 0 to 65535.
    Small(u16),
    /// `2^(shift % 64)`, minus one if `minus`.
    Pow2 {
        /// The exponent (taken modulo 64).
        shift: u8,
        /// Subtract one.
        minus: bool,
    },
    /// Whole seconds, in nanoseconds.
    Seconds(u16),
    /// `u64::MAX - x`.
    NearMax(u16),
    /// Anything.
    Any(u64),
}

impl Num {
    /// The value.
    #[must_use]
    pub fn get(self) -> u64 {
        match self {
            Self::Tiny(v) => u64::from(v),
            Self::Small(v) => u64::from(v),
            Self::Pow2 { shift, minus } => (1u64 << (shift % 64)) - u64::from(minus),
            Self::Seconds(s) => u64::from(s) * 1_000_000_000,
            Self::NearMax(x) => u64::MAX - u64::from(x),
            Self::Any(v) => v,
        }
    }
}

/// Which algorithm a quota runs.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlgoSpec {
    /// GCRA.
    Gcra,
    /// Fixed window.
    Fixed,
    /// Approximate sliding window.
    Approx,
    /// Strict sliding window with this many sub-windows (0 and > 4096 are rejected).
    Strict(u16),
}

impl AlgoSpec {
    /// The algorithm; `max_sub_windows` bounds the strict window's ring (0 keeps it).
    #[must_use]
    pub fn algorithm(self, max_sub_windows: u32) -> Algorithm {
        match self {
            Self::Gcra => Algorithm::Gcra,
            Self::Fixed => Algorithm::FixedWindow,
            Self::Approx => Algorithm::SlidingWindowApprox,
            Self::Strict(n) => {
                let n = u32::from(n);
                let sub_windows = if max_sub_windows == 0 {
                    n
                } else {
                    n % (max_sub_windows + 1)
                };
                Algorithm::SlidingWindowStrict { sub_windows }
            }
        }
    }
}

/// A quota: limit, period, optional GCRA burst, algorithm.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaSpec {
    /// Requests per period.
    pub limit: Num,
    /// Period, nanoseconds.
    pub period: Num,
    /// `with_burst` argument, if any.
    pub burst: Option<Num>,
    /// The algorithm.
    pub algorithm: AlgoSpec,
}

/// A quota spec resolved to numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolvedQuota {
    /// Requests per period.
    pub limit: u64,
    /// Period, nanoseconds.
    pub period: u64,
    /// `with_burst` argument, if any.
    pub burst: Option<u64>,
    /// The algorithm.
    pub algorithm: Algorithm,
}

impl QuotaSpec {
    /// The numbers; `max_sub_windows` as for [`AlgoSpec::algorithm`].
    #[must_use]
    pub fn resolve(&self, max_sub_windows: u32) -> ResolvedQuota {
        ResolvedQuota {
            limit: self.limit.get(),
            period: self.period.get(),
            burst: self.burst.map(Num::get),
            algorithm: self.algorithm.algorithm(max_sub_windows),
        }
    }
}

impl ResolvedQuota {
    /// `Quota::new(limit, period)`, then `with_burst` if a burst is given.
    ///
    /// # Errors
    /// Whatever ratecore rejects.
    pub fn quota(&self) -> Result<Quota, QuotaError> {
        let quota = Quota::new(self.limit, self.period)?;
        match self.burst {
            Some(burst) => quota.with_burst(burst),
            None => Ok(quota),
        }
    }

    /// The Rust expression that builds this quota (for reproducers).
    #[must_use]
    pub fn expr(&self) -> String {
        let mut s = format!("Quota::new({}, {})", self.limit, self.period);
        if let Some(burst) = self.burst {
            s.push_str(&format!(".and_then(|q| q.with_burst({burst}))"));
        }
        s
    }
}

/// How `now` moves before an operation.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Same moment.
    Same,
    /// A few nanoseconds on.
    Tick(u8),
    /// Up to 65 µs on.
    Forward(u16),
    /// Up to 4.3 × 10^15 ns (50 days) on.
    ForwardFar(u32),
    /// A few nanoseconds back.
    BackTick(u8),
    /// Up to 4.3 s back.
    Back(u32),
    /// To the next multiple of an interesting modulus (a period or a sub-window length),
    /// then `delta` nanoseconds off it.
    Boundary {
        /// Which modulus.
        which: u8,
        /// Offset from the boundary.
        delta: i8,
    },
    /// `times` moduli on, then `delta` off.
    Skip {
        /// Which modulus.
        which: u8,
        /// How many.
        times: u8,
        /// Offset.
        delta: i8,
    },
    /// Just below `u64::MAX`.
    NearMax(u16),
    /// Anywhere.
    Absolute(u64),
}

impl Step {
    /// The moment after `now`, given the interesting moduli (none: treated as 1).
    #[must_use]
    pub fn apply(self, now: u64, moduli: &[u64]) -> u64 {
        let modulus = |which: u8| {
            if moduli.is_empty() {
                1
            } else {
                moduli[usize::from(which) % moduli.len()].max(1)
            }
        };
        let offset = |t: u64, delta: i8| {
            if delta >= 0 {
                t.saturating_add(delta.unsigned_abs().into())
            } else {
                t.saturating_sub(delta.unsigned_abs().into())
            }
        };
        match self {
            Self::Same => now,
            Self::Tick(n) => now.saturating_add(n.into()),
            Self::Forward(n) => now.saturating_add(n.into()),
            Self::ForwardFar(n) => now.saturating_add(u64::from(n) * 1_000_000),
            Self::BackTick(n) => now.saturating_sub(n.into()),
            Self::Back(n) => now.saturating_sub(n.into()),
            Self::Boundary { which, delta } => {
                let m = modulus(which);
                let next = (now / m).checked_add(1).and_then(|k| k.checked_mul(m));
                offset(next.unwrap_or(u64::MAX), delta)
            }
            Self::Skip {
                which,
                times,
                delta,
            } => {
                let span = modulus(which).saturating_mul(times.into());
                offset(now.saturating_add(span), delta)
            }
            Self::NearMax(x) => u64::MAX - u64::from(x),
            Self::Absolute(t) => t,
        }
    }
}

/// A request's cost.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cost {
    /// 0: a look that never consumes.
    Zero,
    /// 1.
    One,
    /// A small cost.
    Small(u8),
    /// Exactly the capacity.
    Capacity,
    /// Just above the capacity (never fits).
    AboveCapacity(u8),
    /// Anything.
    Any(u64),
}

impl Cost {
    /// The cost, given the limiter's capacity.
    #[must_use]
    pub fn get(self, capacity: u64) -> u64 {
        match self {
            Self::Zero => 0,
            Self::One => 1,
            Self::Small(n) => n.into(),
            Self::Capacity => capacity,
            Self::AboveCapacity(n) => capacity.saturating_add(1 + u64::from(n)),
            Self::Any(n) => n,
        }
    }
}

/// The interesting moduli of a quota: its period and, for a strict window, its
/// sub-window length.
#[must_use]
pub fn moduli_of(quota: &ResolvedQuota) -> Vec<u64> {
    let mut out = vec![quota.period.max(1)];
    if let Algorithm::SlidingWindowStrict { sub_windows } = quota.algorithm {
        if sub_windows > 0 {
            out.push(quota.period.div_ceil(u64::from(sub_windows)).max(1));
        }
    }
    out
}
