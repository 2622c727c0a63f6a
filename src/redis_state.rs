//! The state the Redis backend stores, and one check applied to it: the pure half shared
//! by the Redis client (feature `redis`: the Lua script's arguments, and the replay that
//! turns its reply into the crate's own [`Decision`]) and the Redis module (`module/` in
//! the repository), which runs [`apply`] inside the server.
//!
//! Each (limit, key) pair is one Redis string of big-endian fields:
//!
//! | algorithm | value (big-endian) |
//! |---|---|
//! | GCRA | TAT (8 bytes) |
//! | fixed window | window start (8), count (8) |
//! | approximate window | window start (8), previous count (8), current count (8) |
//! | strict window | up to `N + 1` slots of newest admission (8) and count (4) |
//!
//! Nothing here touches the network, so all of it is unit-tested without Redis. The API
//! is public for the module crate, not for applications, and hidden from the docs.

use crate::decision::Mode;
use alloc::boxed::Box;
#[cfg(feature = "redis")]
use alloc::vec::Vec;
use arrayvec::ArrayVec;
use core::cell::Cell;

use crate::algorithm::packing::Layout;
use crate::algorithm::sliding_strict::{Cell as SlotCell, PrivateSlot, StrictConfig};
use crate::algorithm::Algorithm;
use crate::algorithm::WordLimit;
use crate::composite::{run_all, Member, Verdict};
use crate::decision::Decision;
use crate::error::{CheckError, QuotaError};
use crate::quota::Quota;
use crate::Reservation;

mod written;
pub use written::{Written, MAX_WRITTEN};

/// One outcome per limit of a check, inline: [`apply`] fills it.
pub type Outcomes = ArrayVec<KeyOutcome, { crate::composite::MAX_LIMITS }>;

/// The replicas of one check, inline.
type Replicas = ArrayVec<Replica, { crate::composite::MAX_LIMITS }>;

/// ceil(2^64 ns / 10^6): the longest TTL the script ever sets, in ms.
pub(crate) const MAX_TTL_MS: u64 = 18_446_744_073_710;

/// Bytes per strict-window slot in the stored string: newest (8) and count (4).
pub(crate) const SLOT_BYTES: usize = 12;

/// One limit's algorithm as the backend runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Spec {
    Gcra {
        word: WordLimit,
        interval: u64,
        tolerance: u64,
        burst: u64,
    },
    Fixed {
        word: WordLimit,
        layout: Layout,
        limit: u64,
        period: u64,
    },
    Approx {
        word: WordLimit,
        layout: Layout,
        limit: u64,
        period: u64,
    },
    Strict {
        config: StrictConfig,
        slots: u64,
        granule: u64,
        limit: u64,
        period: u64,
    },
}

impl Spec {
    /// The parameters for `algorithm` on `quota`, validated exactly as the in-process
    /// limiters validate them (same constructors, same errors).
    pub(crate) fn new(algorithm: Algorithm, quota: &Quota) -> Result<Self, QuotaError> {
        let limit = quota.limit();
        let period = quota.period();
        match algorithm {
            Algorithm::SlidingWindowStrict { sub_windows } => {
                let config = StrictConfig::new(quota, sub_windows)?;
                Ok(Self::Strict {
                    config,
                    slots: u64::from(sub_windows) + 1,
                    granule: period.div_ceil(u64::from(sub_windows)),
                    limit,
                    period,
                })
            }
            _ => {
                // The client replays the stored (start, counts) in the crate's own word,
                // laid out with counters as wide as the window numbers allow: a policy's
                // override may have counted past this limit on the same key, and the
                // replay must read that count, not wrap it. (Redis stores the counts
                // whole, so the layout never reaches the server.)
                let Some(word) = WordLimit::new_wide(algorithm, quota)? else {
                    return Err(QuotaError::ZeroSubWindows);
                };
                // The same layouts the wide window configs build (their constructors just
                // succeeded with these very arguments, so these succeed too).
                let layout = |counters| {
                    Layout::widest(limit, counters, u64::MAX / period)
                        .ok_or(QuotaError::StateTooWide)
                };
                Ok(match word {
                    WordLimit::Gcra(_) => Self::Gcra {
                        word,
                        interval: quota.emission_interval(),
                        // Cannot overflow: Quota validated burst × interval.
                        tolerance: quota.burst() * quota.emission_interval(),
                        burst: quota.burst(),
                    },
                    WordLimit::FixedWindow(_) => Self::Fixed {
                        word,
                        layout: layout(1)?,
                        limit,
                        period,
                    },
                    WordLimit::SlidingWindowApprox(_) => Self::Approx {
                        word,
                        layout: layout(2)?,
                        limit,
                        period,
                    },
                })
            }
        }
    }

    /// The most one request may cost (burst for GCRA, else the limit).
    pub(crate) const fn capacity(&self) -> u64 {
        match self {
            Self::Gcra { burst, .. } => *burst,
            Self::Fixed { limit, .. } | Self::Approx { limit, .. } | Self::Strict { limit, .. } => {
                *limit
            }
        }
    }

    /// The same error the in-process limiter returns for a cost that can never fit.
    pub(crate) const fn check_cost(&self, cost: u64) -> Result<(), CheckError> {
        let limit = self.capacity();
        if cost > limit {
            Err(CheckError::CostExceedsLimit { cost, limit })
        } else {
            Ok(())
        }
    }

    /// Appends this limit's argument block (module docs of `check.lua`) for a request of
    /// `cost` (at most the capacity) at `now`.
    #[cfg(feature = "redis")]
    pub(crate) fn push_args(&self, now: u64, cost: u64, args: &mut Vec<u64>) {
        fn push64(args: &mut Vec<u64>, v: u64) {
            args.push(v >> 32);
            args.push(v & 0xffff_ffff);
        }
        match *self {
            Self::Gcra {
                interval,
                tolerance,
                ..
            } => {
                // Cannot overflow: cost <= burst and burst × interval fits.
                let inc = cost * interval;
                // new_tat = base + inc is admitted iff it fits in a u64 and
                // new_tat − now <= τ, i.e. base <= min(MAX − inc, now + τ − inc).
                let max_base = (u64::MAX - inc).min(now.saturating_add(tolerance - inc));
                args.push(1);
                push64(args, inc);
                push64(args, max_base);
            }
            Self::Fixed { limit, period, .. } => {
                args.push(2);
                push64(args, now / period * period);
                push64(args, limit - cost);
                push64(args, cost);
                push64(args, period);
            }
            Self::Approx { limit, period, .. } => {
                let start = now / period * period;
                let budget = u128::from(limit - cost) * u128::from(period);
                args.push(3);
                push64(args, start);
                push64(args, period);
                push64(args, period - (now - start));
                push64(args, (budget >> 64) as u64);
                push64(args, budget as u64);
                push64(args, cost);
            }
            Self::Strict {
                slots,
                granule,
                limit,
                period,
                ..
            } => {
                let sub_window = now / granule;
                args.push(4);
                args.push(slots);
                args.push(sub_window % slots);
                push64(args, sub_window * granule);
                push64(args, period);
                args.push(limit);
                args.push(cost);
            }
        }
    }

    /// The client-side replica of the state the script read.
    pub(crate) fn replica(&self, old: &[u8]) -> Result<Replica, &'static str> {
        match *self {
            Self::Gcra { word, .. } => {
                let tat = match old.len() {
                    0 => 0,
                    8 => be64(old, 0),
                    _ => return Err("GCRA state is not 8 bytes"),
                };
                Ok(Replica::Word {
                    limit: word,
                    word: Cell::new(tat),
                })
            }
            Self::Fixed {
                word,
                layout,
                period,
                ..
            }
            | Self::Approx {
                word,
                layout,
                period,
                ..
            } => {
                let (counters, errors) = if matches!(self, Self::Fixed { .. }) {
                    (1, FIXED_ERRORS)
                } else {
                    (2, APPROX_ERRORS)
                };
                Ok(Replica::Word {
                    limit: word,
                    word: Cell::new(pack_window(old, layout, period, counters, errors)?),
                })
            }
            Self::Strict { config, slots, .. } => {
                if old.len() % SLOT_BYTES != 0 || old.len() / SLOT_BYTES > slots as usize {
                    return Err("strict-window state has the wrong length");
                }
                let empty = SlotCell {
                    newest: 0,
                    generation: 0,
                    count: 0,
                };
                let ring: Box<[PrivateSlot]> = (0..config.slot_count())
                    .map(|_| PrivateSlot::new(empty))
                    .collect();
                for (slot, bytes) in ring.iter().zip(old.chunks_exact(SLOT_BYTES)) {
                    // Any 32-bit count is a state some quota wrote: a policy's override
                    // may have counted past this limit on the same key. An all-zero slot
                    // is the empty cell the ring starts with.
                    slot.set(SlotCell {
                        newest: be64(bytes, 0),
                        generation: 0,
                        count: be32(bytes, 8),
                    });
                }
                Ok(Replica::Strict { config, ring })
            }
        }
    }

    /// What the script must have written for `replica` after the check (`""` if
    /// nothing), and the TTL in ms it must have set (0 if nothing): the state's rest
    /// moment minus `now`, rounded up, at least `min_ttl`.
    pub(crate) fn expected_write(
        &self,
        replica: &Replica,
        old: &[u8],
        charged: bool,
        now: u64,
        min_ttl: u64,
    ) -> (Written, u64) {
        if !charged {
            return (Written::none(), 0);
        }
        let ttl = |rest: Option<u64>| match rest {
            None => MAX_TTL_MS.max(min_ttl).max(1),
            Some(rest) => rest
                .saturating_sub(now)
                .div_ceil(1_000_000)
                .max(min_ttl)
                .max(1),
        };
        match (self, replica) {
            (Self::Gcra { .. }, Replica::Word { word, .. }) => {
                let tat = word.get();
                (Written::from(tat.to_be_bytes()), ttl(Some(tat)))
            }
            (
                Self::Fixed { layout, period, .. } | Self::Approx { layout, period, .. },
                Replica::Word { word, .. },
            ) => {
                let counters = if matches!(self, Self::Fixed { .. }) {
                    1
                } else {
                    2
                };
                let (out, rest) = unpack_window(word.get(), *layout, *period, counters);
                (out, ttl(rest))
            }
            (Self::Strict { period, .. }, Replica::Strict { ring, .. }) => {
                // The slot whose bytes changed is the one charged (a private ring changes
                // in one slot); its newest is the effective time, the latest admission in
                // the ring, so the newest cell is looked at first.
                let differs = |index: usize, cell: SlotCell| {
                    let before = old
                        .get(index * SLOT_BYTES..(index + 1) * SLOT_BYTES)
                        .map_or((0, 0), |b| (be64(b, 0), be32(b, 8)));
                    ((cell.newest, cell.count) != before && cell.count > 0).then_some((index, cell))
                };
                let newest = ring
                    .iter()
                    .map(PrivateSlot::get)
                    .enumerate()
                    .max_by_key(|(_, cell)| cell.newest);
                let changed = newest
                    .and_then(|(index, cell)| differs(index, cell))
                    .or_else(|| {
                        ring.iter()
                            .enumerate()
                            .find_map(|(index, slot)| differs(index, slot.get()))
                    });
                let Some((index, cell)) = changed else {
                    return (Written::none(), 0);
                };
                let mut out = [0; 4 + SLOT_BYTES];
                out[..4].copy_from_slice(&(index as u32).to_be_bytes());
                out[4..12].copy_from_slice(&cell.newest.to_be_bytes());
                out[12..].copy_from_slice(&cell.count.to_be_bytes());
                (Written::from(out), ttl(cell.newest.checked_add(*period)))
            }
            _ => (Written::none(), 0),
        }
    }
}

/// A limit's state, rebuilt on the client from the bytes the script read, and run
/// through the crate's own algorithm code.
#[derive(Debug)]
pub(crate) enum Replica {
    /// A single-word algorithm and its word.
    Word { limit: WordLimit, word: Cell<u64> },
    /// A strict window and its ring.
    Strict {
        config: StrictConfig,
        ring: Box<[PrivateSlot]>,
    },
}

impl Member for Replica {
    type Token = Reservation;

    fn peek(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        match self {
            Self::Word { limit, word } => limit.evaluate(word.get(), now, cost).map(|o| o.decision),
            Self::Strict { config, ring } => config
                .check_ring(ring, 0, now, cost, Mode::Peek)
                .map(|r| r.0),
        }
    }

    fn reserve(&self, now: u64, cost: u64) -> Result<(Decision, Option<Reservation>), CheckError> {
        match self {
            Self::Word { limit, word } => {
                let old = word.get();
                let outcome = limit.evaluate(old, now, cost)?;
                let reservation = outcome.new_word.map(|new| {
                    word.set(new);
                    Reservation::word(new, old, cost)
                });
                Ok((outcome.decision, reservation))
            }
            Self::Strict { config, ring } => config.check_ring(ring, 0, now, cost, Mode::Charge),
        }
    }

    fn cancel(&self, token: Reservation) {
        match self {
            Self::Word { limit, word } => {
                if let Some(new) = limit.uncharge(word.get(), &token) {
                    word.set(new);
                }
            }
            Self::Strict { config, ring } => config.uncharge(ring, token),
        }
    }
}

/// Replays one check on the replicas: a single limit exactly as its in-process
/// `check`/`peek` does, several as [`crate::Composite`] does.
pub(crate) fn replay(
    replicas: &[Replica],
    now: u64,
    cost: u64,
    mode: Mode,
    states: &mut [Decision],
) -> Result<Decision, CheckError> {
    if let [single] = replicas {
        let decision = if mode.charges() {
            single.reserve(now, cost)?.0
        } else {
            single.peek(now, cost)?
        };
        if let Some(entry) = states.first_mut() {
            *entry = decision;
        }
        Ok(decision)
    } else {
        run_all(replicas, now, cost, mode, states)
    }
}

/// The composite protocol's common case on private replicas: when every limit admits,
/// reserving each in order reports exactly what [`run_all`]'s second phase reports (its
/// first phase, the peeks, changes nothing), at half the walks over a strict window's
/// ring. `None` when one denies: the replicas then hold a partial charge, and the caller
/// starts over on fresh ones with the whole protocol.
fn reserve_each(
    replicas: &[Replica],
    now: u64,
    cost: u64,
    states: &mut [Decision],
) -> Result<Option<Decision>, CheckError> {
    let mut verdict = Verdict::default();
    for (index, (replica, state)) in replicas.iter().zip(states.iter_mut()).enumerate() {
        let (decision, _) = replica.reserve(now, cost)?;
        if !decision.allowed {
            return Ok(None);
        }
        *state = decision;
        verdict.add(index, decision);
    }
    Ok(Some(verdict.decided().decision))
}

/// One limit as it is stored: an algorithm on a quota, validated exactly as the in-process
/// limiter's constructor validates it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredLimit {
    spec: Spec,
}

impl StoredLimit {
    /// `algorithm` on `quota`.
    ///
    /// # Errors
    /// Exactly the error the in-process limiter's constructor returns.
    pub fn new(algorithm: Algorithm, quota: &Quota) -> Result<Self, QuotaError> {
        Spec::new(algorithm, quota).map(|spec| Self { spec })
    }

    /// The most one request may cost: the burst for GCRA, else the limit.
    #[must_use]
    pub const fn capacity(&self) -> u64 {
        self.spec.capacity()
    }

    /// The stored limit of a validated spec (the Redis client's limits hold one).
    #[cfg(feature = "redis")]
    pub(crate) const fn of(spec: Spec) -> Self {
        Self { spec }
    }
}

/// What one check does to one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyOutcome {
    /// This limit's decision, as [`crate::Composite::check_each`] reports it.
    pub decision: Decision,
    /// What the Lua script reports as written: the whole value, or for a strict window
    /// the slot's index (4 bytes) and its 12 bytes; empty when nothing is written.
    pub written: Written,
    /// The TTL to set with the write, in ms (0 when nothing is written).
    pub ttl_ms: u64,
    /// Whether `written` is a strict window's slot rather than the whole value.
    slot: bool,
}

impl KeyOutcome {
    /// Whether the write is one strict-window slot (the script's `SETRANGE`) rather than
    /// a whole value (its `SET`).
    #[must_use]
    pub const fn writes_slot(&self) -> bool {
        self.slot
    }

    /// The key's whole new value given its value before the check (`old`), or `None`
    /// when the check writes nothing to it: `written` itself for a whole value, else
    /// (a strict window's slot) a copy of `old` with the slot replaced.
    #[must_use]
    pub fn value<'a>(&'a self, old: &[u8]) -> Option<alloc::borrow::Cow<'a, [u8]>> {
        if self.written.is_empty() {
            return None;
        }
        if !self.slot {
            return Some(alloc::borrow::Cow::Borrowed(&self.written));
        }
        // `SETRANGE` of the slot at its offset: the Lua script's write.
        let index = be32(&self.written, 0) as usize;
        let mut value = old.to_vec();
        let end = (index + 1) * SLOT_BYTES;
        if value.len() < end {
            value.resize(end, 0);
        }
        value[index * SLOT_BYTES..end].copy_from_slice(self.written.get(4..)?);
        Some(alloc::borrow::Cow::Owned(value))
    }
}

/// Why a check could not be applied to the stored values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyError {
    /// The key at this index holds a value of another layout (a foreign key).
    State(usize, &'static str),
    /// The cost can never fit one of the limits.
    Cost(CheckError),
    /// No limit, more than [`crate::composite::MAX_LIMITS`], or values not one per limit.
    Limits,
}

/// Applies one check of `cost` at `now` to the stored values `olds` (one per limit, empty
/// for a missing key) — all or nothing, decided by the crate's own algorithm code exactly
/// as the client replays the Lua script's answer. Charges only when `mode` charges, the
/// cost is not zero and every limit admits; then every limit's key gets a new value and a
/// TTL of the time until its state is at rest (ms, rounded up, at least `min_ttl_ms`).
///
/// Returns the combined decision and fills `out` with one outcome per limit.
///
/// # Errors
/// [`ApplyError`]; nothing is to be written then.
pub fn apply(
    limits: &[StoredLimit],
    olds: &[&[u8]],
    now: u64,
    cost: u64,
    mode: Mode,
    min_ttl_ms: u64,
    out: &mut Outcomes,
) -> Result<Decision, ApplyError> {
    out.clear();
    if limits.is_empty()
        || limits.len() > crate::composite::MAX_LIMITS
        || limits.len() != olds.len()
    {
        return Err(ApplyError::Limits);
    }
    for limit in limits {
        limit.spec.check_cost(cost).map_err(ApplyError::Cost)?;
    }
    // Filled in place: the list is over a kilobyte, and a check is a few thousand
    // instructions.
    let build = |replicas: &mut Replicas| {
        replicas.clear();
        for (index, (limit, old)) in limits.iter().zip(olds).enumerate() {
            let replica = limit
                .spec
                .replica(old)
                .map_err(|why| ApplyError::State(index, why))?;
            // Cannot overflow: at most MAX_LIMITS limits, checked above.
            replicas.push(replica);
        }
        Ok(())
    };
    let mut replicas = Replicas::new();
    build(&mut replicas)?;
    let mut states = [Decision::default(); crate::composite::MAX_LIMITS];
    let states = &mut states[..limits.len()];
    let optimistic = limits.len() > 1 && mode.charges() && cost > 0;
    let admitted = if optimistic {
        reserve_each(&replicas, now, cost, states).map_err(ApplyError::Cost)?
    } else {
        None
    };
    let decision = match admitted {
        Some(decision) => decision,
        None => {
            if optimistic {
                // The replicas hold a partial charge: the protocol starts over on fresh ones.
                build(&mut replicas)?;
            }
            replay(&replicas, now, cost, mode, states).map_err(ApplyError::Cost)?
        }
    };
    let charged = mode.charges() && cost > 0 && decision.allowed;
    let min_ttl_ms = min_ttl_ms.clamp(1, MAX_TTL_MS);
    for (((limit, replica), old), state) in limits.iter().zip(&replicas).zip(olds).zip(&*states) {
        let (written, ttl_ms) = limit
            .spec
            .expected_write(replica, old, charged, now, min_ttl_ms);
        // Cannot overflow: at most MAX_LIMITS limits, checked above.
        out.push(KeyOutcome {
            decision: *state,
            written,
            ttl_ms,
            slot: matches!(limit.spec, Spec::Strict { .. }),
        });
    }
    Ok(decision)
}

/// A 64-bit digest of everything one check decided and wrote: the combined decision,
/// `now`, and per key its decision, TTL and written bytes. The module replies with it
/// instead of the fields (`RATECORE.CHECK … DIGEST`); the client computes it from its own
/// replay, so a reply that disagrees on any field is detected without sending the
/// fields. Not cryptographic: it guards against disagreeing builds, not against a
/// server forging replies.
#[must_use]
pub fn digest(decision: &Decision, now: u64, outcomes: &[KeyOutcome]) -> u64 {
    struct Mix(u64);
    impl Mix {
        fn word(&mut self, w: u64) {
            self.0 = (self.0 ^ w)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .rotate_left(29);
        }
        fn decision(&mut self, d: &Decision) {
            for w in [
                u64::from(d.allowed),
                d.limit,
                d.remaining,
                d.reset_after,
                d.retry_after,
            ] {
                self.word(w);
            }
        }
    }
    let mut mix = Mix(0x7261_7465_636f_7265);
    mix.decision(decision);
    mix.word(now);
    for outcome in outcomes {
        mix.decision(&outcome.decision);
        mix.word(outcome.ttl_ms);
        mix.word(outcome.written.len() as u64);
        for chunk in outcome.written.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            mix.word(u64::from_be_bytes(buf));
        }
    }
    mix.0 ^ (mix.0 >> 32)
}

/// A foreign fixed window's errors: the wrong length, counts out of range.
const FIXED_ERRORS: [&str; 2] = [
    "fixed-window state is not 16 bytes",
    "fixed-window state out of range",
];
/// The same for an approximate sliding window.
const APPROX_ERRORS: [&str; 2] = [
    "sliding-window state is not 24 bytes",
    "sliding-window state out of range",
];

/// A fixed (`counters` 1) or approximate (2) window's stored window start and counts,
/// checked and packed into the crate's state word (0 for a missing key).
fn pack_window(
    old: &[u8],
    layout: Layout,
    period: u64,
    counters: usize,
    [wrong_length, out_of_range]: [&'static str; 2],
) -> Result<u64, &'static str> {
    if old.is_empty() {
        return Ok(0);
    }
    if old.len() != 8 * (1 + counters) {
        return Err(wrong_length);
    }
    let start = be64(old, 0);
    // Oldest count first: the previous window's, then the current one's.
    let (first, second) = (be64(old, 8), be64(old, 16));
    let room = layout.max_count();
    if start % period != 0 || first > room || second > room {
        return Err(out_of_range);
    }
    Ok(if counters == 1 {
        layout.pack1(start / period, first)
    } else {
        layout.pack2(start / period, first, second)
    })
}

/// The stored value of a window's packed `word` with `counters` counts (the inverse of
/// `pack_window`: the start, then the oldest count first), and the moment its state is
/// at rest (the end of its last window; `None` past `u64::MAX`).
fn unpack_window(word: u64, layout: Layout, period: u64, counters: u32) -> (Written, Option<u64>) {
    let window = layout.window(word, counters);
    let mut out = [0; MAX_WRITTEN];
    out[..8].copy_from_slice(&(window * period).to_be_bytes());
    for (index, field) in (0..counters).rev().zip(out[8..].chunks_exact_mut(8)) {
        field.copy_from_slice(&layout.counter(word, index).to_be_bytes());
    }
    let out = Written::prefix(out, 8 * (1 + counters as usize));
    let rest = window
        .checked_add(u64::from(counters))
        .and_then(|w| w.checked_mul(period));
    (out, rest)
}

fn be64(bytes: &[u8], at: usize) -> u64 {
    let mut buf = [0u8; 8];
    if let Some(src) = bytes.get(at..at + 8) {
        buf.copy_from_slice(src);
    }
    u64::from_be_bytes(buf)
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    let mut buf = [0u8; 4];
    if let Some(src) = bytes.get(at..at + 4) {
        buf.copy_from_slice(src);
    }
    u32::from_be_bytes(buf)
}

#[cfg(test)]
mod tests;
