//! The one decision type every algorithm returns.

/// A duration or moment that never comes: the answer when the moment a request could be
/// admitted (or the state fully replenishes) lies beyond `u64::MAX` nanoseconds.
pub const NEVER: u64 = u64::MAX;

/// The verdict on one request, with the state a client needs to pace itself.
///
/// All durations are relative, in nanoseconds from the `now` the check used; absolute
/// times (epoch seconds, ISO 8601) are produced only when rendering headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use = "a decision says whether the request is admitted"]
pub struct Decision {
    /// Whether the request is admitted (and its cost consumed).
    pub allowed: bool,
    /// The capacity the request was measured against: the quota's limit (its burst for
    /// GCRA).
    pub limit: u64,
    /// Requests of cost 1 that would still be admitted right now, after this decision.
    pub remaining: u64,
    /// Nanoseconds until the state is fully replenished (GCRA, strict window) or the
    /// current window ends (fixed window; approximate window: until no counted request
    /// weighs anymore). [`NEVER`] if that moment is not representable.
    pub reset_after: u64,
    /// 0 when allowed. Otherwise the nanoseconds until the earliest moment the same
    /// request would be admitted if nothing else happens; [`NEVER`] if that moment is not
    /// representable.
    pub retry_after: u64,
}

impl Default for Decision {
    /// A placeholder (denied, everything 0), e.g. to fill the `states` buffer that
    /// [`crate::Composite::check_each`] writes into.
    fn default() -> Self {
        Self::EMPTY
    }
}

impl Decision {
    /// A placeholder decision: denied, everything 0.
    pub const EMPTY: Self = Self {
        allowed: false,
        limit: 0,
        remaining: 0,
        reset_after: 0,
        retry_after: 0,
    };

    /// `retry_after` as a [`core::time::Duration`].
    #[must_use]
    pub fn retry_after_duration(&self) -> core::time::Duration {
        core::time::Duration::from_nanos(self.retry_after)
    }

    /// `reset_after` as a [`core::time::Duration`].
    #[must_use]
    pub fn reset_after_duration(&self) -> core::time::Duration {
        core::time::Duration::from_nanos(self.reset_after)
    }
}

/// Whether a check consumes what it admits or only reports what it would decide: every
/// internal layer passes it down, named rather than as a `bool`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Consume the cost on admission (a check).
    Charge,
    /// Consume nothing (a peek).
    Peek,
}

impl Mode {
    /// Whether this check consumes.
    #[inline(always)]
    #[must_use]
    pub const fn charges(self) -> bool {
        matches!(self, Self::Charge)
    }
}

/// The pure result of evaluating one request against one state word: the decision, and
/// the word to store when the request is admitted with a cost above 0.
///
/// Not part of the API: public only for the crate's model and loom tests, which check the
/// lock-free protocols against this pure step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[doc(hidden)]
pub struct Outcome {
    /// The decision.
    pub decision: Decision,
    /// The state word to publish, if the request consumes quota.
    pub new_word: Option<u64>,
}
