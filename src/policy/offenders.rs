//! Who keeps sending while denied: per-key denial counts for the keys denied more than
//! once, in constant memory.
//!
//! A denial's key (the deciding limit's key) is first remembered as a *candidate* (a
//! 64-bit fingerprint in a 4-way set-associative table); its second denial while still
//! remembered promotes it to the *offenders* table with the count 2, exact from then on.
//! Keys denied once — most clients that hit a limit and back off — stay candidates and
//! are forgotten as others arrive. The offenders table holds [`OFFENDERS`] keys; when
//! it is full, the one with the fewest denials makes room (counted in
//! [`OffenderStats::evicted`]).
//!
//! Recording never waits: it takes the recorder's lock only if it is free, and a denial
//! that finds it taken is counted in [`OffenderStats::unrecorded`] instead. Counts are
//! exact whenever nothing was unrecorded.
//!
//! The fingerprint hash has fixed keys so that the report is reproducible; a client that
//! crafts collisions can at worst keep itself out of the report, never out of its
//! limits.
//!
//! A reload hands the report over: a key's fingerprint hashes its limit's identity
//! (everything that makes a limit the same across versions: rule, name, key, missing-key
//! handling, algorithm, quota, shadow flag), not its position, so the candidates and the
//! offenders of every unchanged limit carry on counting in the new version. Those of
//! changed or removed limits are dropped. A denial recorded on the old version after the
//! hand-over (by a check that started before the reload) is not carried.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::request::KeyParts;

/// How many repeat offenders are tracked.
pub const OFFENDERS: usize = 64;
/// Key bytes kept per offender (the key's parts joined by `/`, cut at this length).
pub const OFFENDER_KEY_BYTES: usize = 64;
const CANDIDATE_SETS: usize = 1024;
const WAYS: usize = 4;

#[derive(Clone, Copy)]
struct Entry {
    fingerprint: u64,
    limit: usize,
    denials: u64,
    key: [u8; OFFENDER_KEY_BYTES],
    key_len: usize,
    truncated: bool,
}

const EMPTY: Entry = Entry {
    fingerprint: 0,
    limit: 0,
    denials: 0,
    key: [0; OFFENDER_KEY_BYTES],
    key_len: 0,
    truncated: false,
};

struct State {
    offenders: [Entry; OFFENDERS],
    /// Candidate fingerprints (0: empty), `WAYS` per set, replaced round-robin.
    candidates: [[u64; WAYS]; CANDIDATE_SETS],
    next_way: [u8; CANDIDATE_SETS],
    evicted: u64,
}

/// The recorder of one policy version (a reload hands its state to the next).
pub(super) struct Offenders {
    hasher: ahash::RandomState,
    /// Each limit's identity ([`Offenders::identity`]), by limit id.
    identities: Vec<u64>,
    state: Mutex<State>,
    /// Denials that found the recorder busy. Relaxed: a statistic.
    unrecorded: AtomicU64,
}

impl core::fmt::Debug for Offenders {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Offenders").finish_non_exhaustive()
    }
}

/// One key that kept sending while denied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offender {
    /// The rule of the limit that denied it.
    pub rule: alloc::string::String,
    /// The limit.
    pub limit: alloc::string::String,
    /// The key: its attributes' values joined by `/` (an absent one, under
    /// `on_missing = "shared"`, as empty), at most [`OFFENDER_KEY_BYTES`] bytes.
    pub key: Vec<u8>,
    /// Whether `key` was cut short.
    pub truncated: bool,
    /// Denials counted (exact when [`OffenderStats::unrecorded`] is 0).
    pub denials: u64,
}

/// The recorder's own counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OffenderStats {
    /// Offenders dropped to make room for new ones.
    pub evicted: u64,
    /// Denials not recorded because another thread was recording.
    pub unrecorded: u64,
}

/// The recorder's fixed hash keys (module docs: a reproducible report).
fn fixed_hasher() -> ahash::RandomState {
    ahash::RandomState::with_seeds(
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    )
}

impl Offenders {
    /// A limit's identity: a hash of what makes it the same limit across versions.
    pub(super) fn identity(what: &impl core::hash::Hash) -> u64 {
        fixed_hasher().hash_one(what)
    }

    /// An empty recorder for limits with these identities (by limit id).
    pub(super) fn new(identities: Vec<u64>) -> Self {
        Self {
            hasher: fixed_hasher(),
            identities,
            state: Mutex::new(State {
                offenders: [EMPTY; OFFENDERS],
                candidates: [[0; WAYS]; CANDIDATE_SETS],
                next_way: [0; CANDIDATE_SETS],
                evicted: 0,
            }),
            unrecorded: AtomicU64::new(0),
        }
    }

    /// Records a denial of `key` by limit `limit`. Never waits, never allocates.
    pub(super) fn record(&self, limit: usize, key: &KeyParts<'_>) {
        let identity = self.identities.get(limit).copied().unwrap_or_default();
        // Never 0, which marks an empty way.
        let fingerprint = self.hasher.hash_one((identity, key)) | 1;
        match self.state.try_lock() {
            Ok(mut state) => state.record(fingerprint, limit, key),
            // Busy (or poisoned by a panic elsewhere: skip rather than depend on the
            // half-written state). Relaxed: a statistic.
            Err(_) => {
                self.unrecorded.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Takes over `previous`'s state (module docs): its candidates, its counters, and the
    /// offenders of the limits that have the same identity here, under their ids here.
    pub(super) fn carry_from(&self, previous: &Self) {
        let old = match previous.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut new = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        new.candidates = old.candidates;
        new.next_way = old.next_way;
        new.evicted = old.evicted;
        let carried = old
            .offenders
            .iter()
            .filter(|e| e.denials > 0)
            .filter_map(|e| {
                let identity = previous.identities.get(e.limit)?;
                let limit = self.identities.iter().position(|i| i == identity)?;
                Some(Entry { limit, ..*e })
            });
        for (slot, entry) in new.offenders.iter_mut().zip(carried) {
            *slot = entry;
        }
        // Relaxed: a statistic.
        self.unrecorded.store(
            previous.unrecorded.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
    }

    /// The offenders, most denials first, as `(limit id, …)`, and the stats.
    pub(super) fn report(&self) -> (Vec<(usize, Offender)>, OffenderStats) {
        let state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut list: Vec<(usize, Offender)> = state
            .offenders
            .iter()
            .filter(|e| e.denials > 0)
            .map(|e| {
                (
                    e.limit,
                    Offender {
                        rule: alloc::string::String::new(),
                        limit: alloc::string::String::new(),
                        key: e.key.get(..e.key_len).unwrap_or(&[]).to_vec(),
                        truncated: e.truncated,
                        denials: e.denials,
                    },
                )
            })
            .collect();
        list.sort_by(|a, b| {
            b.1.denials
                .cmp(&a.1.denials)
                .then_with(|| a.1.key.cmp(&b.1.key))
        });
        let stats = OffenderStats {
            evicted: state.evicted,
            // Relaxed: a statistic.
            unrecorded: self.unrecorded.load(Ordering::Relaxed),
        };
        (list, stats)
    }
}

impl State {
    fn record(&mut self, fingerprint: u64, limit: usize, key: &KeyParts<'_>) {
        if let Some(entry) = self
            .offenders
            .iter_mut()
            .find(|e| e.denials > 0 && e.fingerprint == fingerprint)
        {
            entry.denials = entry.denials.saturating_add(1);
            return;
        }
        let set_index = (fingerprint >> 1) as usize % CANDIDATE_SETS;
        let Some(set) = self.candidates.get_mut(set_index) else {
            return;
        };
        if let Some(way) = set.iter_mut().find(|w| **w == fingerprint) {
            // The second denial while remembered: an offender from now on.
            *way = 0;
            self.promote(fingerprint, limit, key);
            return;
        }
        let next = self.next_way.get(set_index).copied().unwrap_or(0);
        if let Some(way) = set.get_mut(usize::from(next) % WAYS) {
            *way = fingerprint;
        }
        if let Some(n) = self.next_way.get_mut(set_index) {
            *n = (next + 1) % WAYS as u8;
        }
    }

    fn promote(&mut self, fingerprint: u64, limit: usize, key: &KeyParts<'_>) {
        let slot = match self.offenders.iter().position(|e| e.denials == 0) {
            Some(free) => free,
            None => {
                self.evicted += 1;
                self.offenders
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, e)| e.denials)
                    .map_or(0, |(i, _)| i)
            }
        };
        let Some(entry) = self.offenders.get_mut(slot) else {
            return;
        };
        *entry = Entry {
            fingerprint,
            limit,
            denials: 2,
            ..EMPTY
        };
        let mut len = 0;
        for (index, part) in key.parts().iter().enumerate() {
            let separator: &[u8] = if index == 0 { b"" } else { b"/" };
            for &b in separator.iter().chain(part.unwrap_or(&[]).iter()) {
                match entry.key.get_mut(len) {
                    Some(out) => {
                        *out = b;
                        len += 1;
                    }
                    None => entry.truncated = true,
                }
            }
        }
        entry.key_len = len;
    }
}
