//! # ratecore
//!
//! An embeddable rate-limiter core. Four algorithms — GCRA, fixed window, approximate
//! sliding window and strict sliding window — run on a lock-free, allocation-free hot path
//! and return one [`Decision`] type whose every field is exact and documented.
//!
//! ## Time is an input
//! Every check takes `now`: nanoseconds (`u64`) since an epoch the caller chooses, read from a
//! monotonic clock. The hot path never reads a clock itself, so tests inject time, fuzzers
//! drive it and servers pass their own cached time. [`clock`] (feature `std`) offers a
//! ready-made monotonic clock for callers who do not care.
//!
//! A `now` earlier than the time a limiter's state already records is clamped to that time:
//! time going backwards never refunds quota. All arithmetic is checked or saturating; a
//! moment that would lie beyond `u64::MAX` nanoseconds is reported as [`NEVER`].
//!
//! ## Example
//! ```
//! use ratecore::{Gcra, Quota, RateLimiter};
//!
//! let quota = Quota::per_second(5).unwrap();
//! let limiter = Gcra::new(quota);
//! let now = 1_000_000_000; // nanoseconds, from your monotonic clock
//! for _ in 0..5 {
//!     assert!(limiter.check(now, 1).unwrap().allowed);
//! }
//! let denied = limiter.check(now, 1).unwrap();
//! assert!(!denied.allowed);
//! assert_eq!(denied.retry_after, 200_000_000); // one emission interval: 200 ms
//! ```
//!
//! ## Features
//! - `std` (default): [`clock`] and `std::error::Error` impls. Implies `alloc`.
//! - `alloc`: owned strict-window rings ([`SlidingWindowStrict::new`]), [`Limiter`] and
//!   [`Composite`]. Without it the core is plain `no_std`: the single-word limiters and
//!   [`SlidingWindowStrict::with_storage`] over a caller-provided slot array.
//!
//! ## Platform
//! Requires native 64-bit atomics (`target_has_atomic = "64"`).
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;

mod sync;

pub mod algorithm;
pub mod decision;
pub mod error;
pub mod quota;

pub use algorithm::{fixed_window, gcra, sliding_approx, sliding_strict};
pub mod http;

pub mod composite;
#[cfg(feature = "alloc")]
pub mod limiter;
#[cfg(feature = "std")]
pub mod policy;
#[cfg(feature = "redis")]
pub mod redis_backend;
#[cfg(feature = "alloc")]
#[doc(hidden)]
pub mod redis_state;
pub mod table;

#[cfg(feature = "std")]
pub mod clock;

pub use decision::{Decision, Mode, NEVER};
pub use error::{CheckError, Fault, QuotaError};
pub use fixed_window::FixedWindow;
pub use gcra::Gcra;
pub use quota::Quota;
pub use sliding_approx::SlidingWindowApprox;
/// The earlier name of [`SlidingWindowApprox`], which let the approximate window pass for
/// the exact one ([`SlidingWindowStrict`]).
#[deprecated(note = "renamed `SlidingWindowApprox` (the exact window is `SlidingWindowStrict`)")]
pub type SlidingWindow = SlidingWindowApprox;
pub use sliding_strict::{SlidingWindowStrict, Slot};

pub use algorithm::Algorithm;
#[cfg(feature = "alloc")]
pub use composite::Composite;
#[cfg(feature = "alloc")]
pub use limiter::Limiter;
pub use table::{FullPolicy, LimitSpec, Table, TableConfig, TableError, TableStats};

/// What every limiter offers: a check that may consume quota, and a peek that never does.
///
/// Implementations are lock-free and allocation-free, and are shared across threads by
/// `&self`.
pub trait RateLimiter {
    /// Decides whether a request of weight `cost` arriving at `now` (nanoseconds) is
    /// admitted, and consumes `cost` from the quota if it is. A `cost` of 0 is a peek: it
    /// reports the current state and never changes it.
    ///
    /// # Errors
    /// [`CheckError::CostExceedsLimit`] when `cost` can never fit (more than the limit, or
    /// the burst for GCRA): such a request would be denied forever, which is a caller bug
    /// rather than a rate-limit decision.
    fn check(&self, now: u64, cost: u64) -> Result<Decision, CheckError>;

    /// The decision [`check`](Self::check) would return at `now`, without consuming
    /// anything.
    ///
    /// # Errors
    /// As for [`check`](Self::check).
    fn peek(&self, now: u64, cost: u64) -> Result<Decision, CheckError>;
}

/// A reservation that [`Reserve::reserve`] took and that [`Reserve::cancel`] gives back.
///
/// Used by [`Composite`] to make "all limits admit, or none is charged" hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[doc(hidden)]
pub struct Reservation {
    /// Algorithm-specific: the state word written (single-word algorithms) or the
    /// effective time written into the cell (strict window).
    pub(crate) tag: u64,
    /// Algorithm-specific: the state word before (single-word algorithms) or the cell's
    /// index and the ring's generation (strict window).
    pub(crate) aux: u64,
    /// The cost charged.
    pub(crate) cost: u64,
    /// Strict window only (0 otherwise): the charged cell as it was before, its newest
    /// time and its generation and count, so that a charge that opened its sub-window's
    /// cell, with nothing touching it since, is undone exactly (as a single word is, by
    /// restoring `aux`).
    pub(crate) before_newest: u64,
    /// See `before_newest`: `generation << 32 | count`.
    pub(crate) before_meta: u64,
}

impl Reservation {
    /// A single-word algorithm's charge: `written` replaced `before`.
    pub(crate) const fn word(written: u64, before: u64, cost: u64) -> Self {
        Self {
            tag: written,
            aux: before,
            cost,
            before_newest: 0,
            before_meta: 0,
        }
    }
}

/// Two-phase admission used by composites: take a reservation, and give it back when
/// another limit denies.
#[doc(hidden)]
pub trait Reserve: RateLimiter {
    /// Like [`RateLimiter::check`], but also returns what is needed to undo the charge.
    /// The reservation is `None` when nothing was charged (denied, or cost 0).
    fn reserve(&self, now: u64, cost: u64) -> Result<(Decision, Option<Reservation>), CheckError>;

    /// Gives back a reservation taken by [`reserve`](Self::reserve) on this same limiter.
    ///
    /// Exact when nothing else touched the state since (but a strict window's sub-window
    /// that already held admissions keeps this one's time, so they are released at most
    /// one sub-window late); under contention it gives back only what is provably safe
    /// to give back (never creating over-admission), so a race can at worst leave a
    /// denied request's cost charged.
    fn cancel(&self, reservation: Reservation);
}
