//! Several limits at once: admitted only if every limit admits, and a denied request
//! consumes nothing from any of them.
//!
//! # Protocol
//! 1. *Peek* every limit. If any would deny, the request is denied having touched nothing
//!    — sequentially this is the only way a composite denies, so sequential behaviour is
//!    exactly "all admit, or nothing changes".
//! 2. Otherwise *reserve* each limit in order. If a racing thread made one of them deny
//!    in the meantime, *cancel* the reservations already taken, in reverse order, and
//!    deny. Cancels are exact for window counters and exact-or-conservative for GCRA (see
//!    [`crate::Reserve::cancel`]); a race can cost a spurious denial, never an
//!    over-admission, because each limit's own protocol already refuses over-admission.
//!
//! # Orderings
//! No atomics of its own: each limit's CAS protocol carries its orderings.
//!
//! # The reported decision
//! Allowed: the limit with the smallest `remaining` (ties: the longest `reset_after`).
//! Denied: the denying limit whose `retry_after` is largest (ties: the fewest
//! `remaining`); since each limit's admissibility only grows with time if nothing else
//! happens, that is exactly the first moment *all* limits admit. Remaining ties go to the
//! earliest limit. The protocol also says which member that is (its index), for callers
//! that report the deciding limit (the tables' multi-table check).
//!
//! # Costs
//! Every member is usually asked for the same cost; `Costs` lets each member have its
//! own (one request weighing differently in different tables).

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

use crate::decision::{Decision, Mode};
use crate::error::CheckError;
#[cfg(feature = "alloc")]
use crate::{error::QuotaError, limiter::Limiter, RateLimiter, Reservation, Reserve};

/// The most limits one composite may combine (reservations live on the stack, so a
/// check never allocates).
pub const MAX_LIMITS: usize = 16;

/// A limiter made of several limits that must all admit (e.g. 5/s AND 20/min).
#[cfg(feature = "alloc")]
#[derive(Debug)]
pub struct Composite {
    limits: Vec<Limiter>,
}

#[cfg(feature = "alloc")]
impl Composite {
    /// A composite of `limits` (1 to [`MAX_LIMITS`]).
    ///
    /// # Errors
    /// [`QuotaError::EmptyComposite`] or [`QuotaError::TooManyLimits`].
    pub fn new(limits: Vec<Limiter>) -> Result<Self, QuotaError> {
        if limits.is_empty() {
            return Err(QuotaError::EmptyComposite);
        }
        if limits.len() > MAX_LIMITS {
            return Err(QuotaError::TooManyLimits);
        }
        Ok(Self { limits })
    }

    /// The limits, in order.
    #[must_use]
    pub fn limits(&self) -> &[Limiter] {
        &self.limits
    }

    /// Like [`RateLimiter::check`], and also writes each limit's state into `states`
    /// (entry `i` for limit `i`; entries beyond the number of limits are left untouched,
    /// limits beyond `states.len()` are not reported). After a composite denial nothing
    /// was consumed, so every entry shows that limit's current state, and `allowed` says
    /// whether that limit alone would have admitted the request.
    ///
    /// # Errors
    /// [`CheckError::CostExceedsLimit`] if `cost` can never fit some limit.
    pub fn check_each(
        &self,
        now: u64,
        cost: u64,
        states: &mut [Decision],
    ) -> Result<Decision, CheckError> {
        self.run(now, cost, Mode::Charge, states)
    }

    /// Like [`RateLimiter::peek`], with each limit's state as in
    /// [`check_each`](Self::check_each).
    ///
    /// # Errors
    /// As for [`check_each`](Self::check_each).
    pub fn peek_each(
        &self,
        now: u64,
        cost: u64,
        states: &mut [Decision],
    ) -> Result<Decision, CheckError> {
        self.run(now, cost, Mode::Peek, states)
    }

    fn run(
        &self,
        now: u64,
        cost: u64,
        mode: Mode,
        states: &mut [Decision],
    ) -> Result<Decision, CheckError> {
        run_all(&self.limits, now, cost, mode, states)
    }
}

/// One limit inside an all-or-nothing check: peek, reserve, cancel.
pub(crate) trait Member {
    /// What `cancel` needs to give a reservation back.
    type Token: Copy;
    /// The decision without consuming anything.
    fn peek(&self, now: u64, cost: u64) -> Result<Decision, CheckError>;
    /// Consume if admitted; the token is `None` when nothing was consumed.
    fn reserve(&self, now: u64, cost: u64) -> Result<(Decision, Option<Self::Token>), CheckError>;
    /// Give a reservation back.
    fn cancel(&self, token: Self::Token);
}

#[cfg(feature = "alloc")]
impl Member for Limiter {
    type Token = Reservation;

    fn peek(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        RateLimiter::peek(self, now, cost)
    }

    fn reserve(&self, now: u64, cost: u64) -> Result<(Decision, Option<Reservation>), CheckError> {
        Reserve::reserve(self, now, cost)
    }

    fn cancel(&self, token: Reservation) {
        Reserve::cancel(self, token);
    }
}

/// What each member of a run is asked to consume: one cost for all (`u64`), or one per
/// member (`&[u64]`, indexed like the members; a missing entry is 0).
pub(crate) trait Costs: Copy {
    /// The cost member `index` is asked for.
    fn of(self, index: usize) -> u64;
    /// Whether every cost is 0 (the run only reports).
    fn all_zero(self) -> bool;
}

impl Costs for u64 {
    #[inline(always)]
    fn of(self, _: usize) -> u64 {
        self
    }

    #[inline(always)]
    fn all_zero(self) -> bool {
        self == 0
    }
}

impl Costs for &[u64] {
    #[inline(always)]
    fn of(self, index: usize) -> u64 {
        self.get(index).copied().unwrap_or(0)
    }

    fn all_zero(self) -> bool {
        self.iter().all(|&cost| cost == 0)
    }
}

/// A run's combined decision and the member that decided it (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decided {
    /// The combined decision: the deciding member's.
    pub(crate) decision: Decision,
    /// The deciding member's index (0 for an empty run).
    pub(crate) index: usize,
}

/// The composite protocol (module docs) over any members: at most [`MAX_LIMITS`].
pub(crate) fn run_all<M: Member>(
    members: &[M],
    now: u64,
    cost: u64,
    mode: Mode,
    states: &mut [Decision],
) -> Result<Decision, CheckError> {
    run_all_deciding(members, now, cost, mode, states).map(|decided| decided.decision)
}

/// [`run_all`] with any [`Costs`], also saying which member decided.
#[inline(always)] // into each caller: `run_all` keeps its code
pub(crate) fn run_all_deciding<M: Member, C: Costs>(
    members: &[M],
    now: u64,
    costs: C,
    mode: Mode,
    states: &mut [Decision],
) -> Result<Decided, CheckError> {
    let members = members.get(..MAX_LIMITS).unwrap_or(members);
    if let Some(decided) = peek_all(members, now, costs, mode, states)? {
        return Ok(decided);
    }
    // Only an admission about to be charged needs room for the reservations.
    let mut taken: [Option<M::Token>; MAX_LIMITS] = [None; MAX_LIMITS];
    reserve_all(members, now, costs, states, &mut taken)
}

/// [`run_all`], leaving in `taken[i]` the reservation member `i` holds after an
/// admission, for a caller that may give the whole charge back later (a table's
/// `check_undoable`). `taken` must hold `None` everywhere on entry; after a denial or a
/// peek it still does (nothing is held). Members beyond `taken.len()` (or
/// [`MAX_LIMITS`]) are not consulted.
pub(crate) fn run_all_keeping<M: Member>(
    members: &[M],
    now: u64,
    cost: u64,
    mode: Mode,
    states: &mut [Decision],
    taken: &mut [Option<M::Token>],
) -> Result<Decision, CheckError> {
    let members = members.get(..MAX_LIMITS).unwrap_or(members);
    let members = members.get(..taken.len()).unwrap_or(members);
    if let Some(decided) = peek_all(members, now, cost, mode, states)? {
        return Ok(decided.decision);
    }
    reserve_all(members, now, cost, states, taken).map(|decided| decided.decision)
}

/// The protocol's first phase: every member peeked. `Some(decision)` when that decides
/// (a denial, reported with every member's unchanged state; a peek; cost 0); `None` when
/// every member would admit a charge.
#[inline(always)] // into `run_all`, once per caller
fn peek_all<M: Member, C: Costs>(
    members: &[M],
    now: u64,
    costs: C,
    mode: Mode,
    states: &mut [Decision],
) -> Result<Option<Decided>, CheckError> {
    let mut verdict = Verdict::default();
    for (index, member) in members.iter().enumerate() {
        let decision = member.peek(now, costs.of(index))?;
        report(states, index, decision);
        verdict.add(index, decision);
    }
    if verdict.denied || !mode.charges() || costs.all_zero() {
        if verdict.denied {
            report_unchanged(members, now, costs, states)?;
        }
        return Ok(Some(verdict.decided()));
    }
    Ok(None)
}

/// The second phase: reserve each member in order, keeping the reservations in `taken`;
/// if one denies after all (a racing request), give back those already taken, newest
/// first, and report the denial.
#[inline(always)] // into `run_all`, once per caller
fn reserve_all<M: Member, C: Costs>(
    members: &[M],
    now: u64,
    costs: C,
    states: &mut [Decision],
    taken: &mut [Option<M::Token>],
) -> Result<Decided, CheckError> {
    let mut verdict = Verdict::default();
    for (index, member) in members.iter().enumerate() {
        let reserved = member.reserve(now, costs.of(index));
        let (decision, reservation) = match reserved {
            Ok(reserved) => reserved,
            Err(error) => {
                // Unreachable today (errors depend on the cost alone, which every peek
                // accepted), but never leave a charge behind an error.
                give_back(members, taken, index);
                return Err(error);
            }
        };
        if !decision.allowed {
            give_back(members, taken, index);
            report_unchanged(members, now, costs, states)?;
            report(states, index, decision);
            let mut denied = Verdict::default();
            denied.add(index, decision);
            return Ok(denied.decided());
        }
        if let Some(entry) = taken.get_mut(index) {
            *entry = reservation;
        }
        report(states, index, decision);
        verdict.add(index, decision);
    }
    Ok(verdict.decided())
}

/// Gives back the reservations of members `0 .. upto`, newest first, leaving `None`.
fn give_back<M: Member>(members: &[M], taken: &mut [Option<M::Token>], upto: usize) {
    for (member, token) in members.iter().zip(taken.iter_mut()).take(upto).rev() {
        if let Some(token) = token.take() {
            member.cancel(token);
        }
    }
}

/// After a denial: each entry shows the member's unchanged state; a member that would
/// have admitted is reported by a cost-0 peek (its state now), a denying one keeps its
/// own denial (which already describes the unchanged state).
fn report_unchanged<M: Member, C: Costs>(
    members: &[M],
    now: u64,
    costs: C,
    states: &mut [Decision],
) -> Result<(), CheckError> {
    for (index, (member, entry)) in members.iter().zip(states.iter_mut()).enumerate() {
        let alone = member.peek(now, costs.of(index))?;
        *entry = if alone.allowed {
            member.peek(now, 0)?
        } else {
            alone
        };
    }
    Ok(())
}

fn report(states: &mut [Decision], index: usize, decision: Decision) {
    if let Some(entry) = states.get_mut(index) {
        *entry = decision;
    }
}

/// Folds member decisions into the composite's, remembering whose it is.
#[derive(Default)]
pub(crate) struct Verdict {
    denied: bool,
    chosen: Option<(usize, Decision)>,
}

impl Verdict {
    pub(crate) fn add(&mut self, index: usize, decision: Decision) {
        let Some((_, chosen)) = self.chosen else {
            self.denied = !decision.allowed;
            self.chosen = Some((index, decision));
            return;
        };
        let replace = match (self.denied, decision.allowed) {
            // The first denial outranks any admission.
            (false, false) => true,
            (true, true) => false,
            // Among denials: the latest retry (then the fewest remaining).
            (true, false) => {
                (decision.retry_after, core::cmp::Reverse(decision.remaining))
                    > (chosen.retry_after, core::cmp::Reverse(chosen.remaining))
            }
            // Among admissions: the fewest remaining (then the longest reset).
            (false, true) => {
                (core::cmp::Reverse(decision.remaining), decision.reset_after)
                    > (core::cmp::Reverse(chosen.remaining), chosen.reset_after)
            }
        };
        if replace {
            self.chosen = Some((index, decision));
        }
        self.denied |= !decision.allowed;
    }

    pub(crate) fn decided(&self) -> Decided {
        let (index, decision) = self.chosen.unwrap_or((0, Decision::EMPTY));
        Decided { decision, index }
    }
}

#[cfg(feature = "alloc")]
impl RateLimiter for Composite {
    fn check(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.run(now, cost, Mode::Charge, &mut [])
    }

    fn peek(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.run(now, cost, Mode::Peek, &mut [])
    }
}
