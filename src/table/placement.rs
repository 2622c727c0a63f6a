//! Where a new key goes: an empty slot (its first neighbourhood while that is at most half
//! full, else the less loaded one), else a slot at rest or an abandoned claim; when every
//! slot is active, the eviction victim (the slot closest to rest), and the
//! [`FullPolicy`] answer when nothing can be evicted or moved (see the table docs,
//! "Placement" and "Rest, reclaim, eviction").

use super::config::FullPolicy;
use super::keyed::{Access, KeyedLimit};
use super::layout::{claim_is_stale, neighbourhood_order, tag_of, CLAIMING, NEIGHBOURHOOD};
use super::relocation::ABANDONED_MOVE_NANOS;
use super::stats;
use crate::decision::Decision;

/// A first neighbourhood with at least this many empty slots takes a new key even if
/// the second has more.
pub(super) const ROOMY: usize = NEIGHBOURHOOD / 2;

/// Which kind of slot a claim takes over.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Takeover {
    Empty,
    AtRest,
    Abandoned,
    Evicted,
    /// Freed by moving its key to its other neighbourhood (already counted).
    Relocated,
}

/// Where a new key may go.
pub(super) enum Pick {
    /// This slot (index, value seen), of this kind.
    Take(usize, u128, Takeover),
    /// Every slot of both neighbourhoods is active (or claimed): the active slot closest
    /// to rest, if any, and the time until it rests.
    Full {
        victim: Option<(usize, u128)>,
        wait: u64,
    },
    /// Our own key showed up: look it up again.
    Present,
}

impl<'t> KeyedLimit<'t> {
    /// Where a new key should go at `now`: an empty slot of the less loaded neighbourhood
    /// (the first on a tie); else a slot at rest or an abandoned claim; else [`Pick::Full`]
    /// with the active slot closest to rest and the time until it rests.
    pub(super) fn pick_slot(&self, now: u64) -> Pick {
        // Pass 1: loads only. Count each neighbourhood's empty slots.
        let mask = self.mask();
        let mut empties = [(0usize, None::<(usize, u128)>); 2];
        for (&start, (count, first)) in self.starts().iter().zip(empties.iter_mut()) {
            // Lookup order: the first empty slot is the one closest to our home.
            for index in neighbourhood_order(start, mask, self.fingerprint) {
                let slot = self.load(index);
                let tag = tag_of(slot);
                if tag == 0 {
                    *count += 1;
                    first.get_or_insert((index, slot));
                } else if tag & !CLAIMING == self.fingerprint {
                    // Our key appeared (created or moved in since `find`): look again.
                    return Pick::Present;
                }
            }
        }
        let [(first_count, first_empty), (second_count, second_empty)] = empties;
        // The first neighbourhood while it is at most half full (lookups scan it first,
        // so most keys stay one scan away); past that the less loaded one (two-choice
        // balance, which is what lets the table run nearly full).
        let empty = if first_count < ROOMY && second_count > first_count {
            second_empty
        } else {
            first_empty.or(second_empty)
        };
        if let Some((index, slot)) = empty {
            return Pick::Take(index, slot, Takeover::Empty);
        }
        // Pass 2: every slot is taken. A slot at rest or an abandoned claim, else the
        // active slot closest to rest.
        let mut closest: Option<(usize, u128, u64)> = None;
        for index in self.union() {
            let slot = self.load(index);
            let tag = tag_of(slot);
            if tag == 0 {
                // Freed since pass 1.
                return Pick::Take(index, slot, Takeover::Empty);
            }
            if tag & !CLAIMING == self.fingerprint {
                return Pick::Present;
            }
            if tag & CLAIMING != 0 {
                // Someone else's claim (or move): never a victim unless abandoned — a
                // move only long after its time (see `MOVE_PATIENCE`).
                let stale = if self.is_moving(slot) {
                    claim_is_stale(slot, now.saturating_sub(ABANDONED_MOVE_NANOS))
                } else {
                    claim_is_stale(slot, now)
                };
                if stale {
                    return Pick::Take(index, slot, Takeover::Abandoned);
                }
                continue;
            }
            let to_rest = self.time_to_rest(index, slot, now);
            if to_rest == 0 {
                return Pick::Take(index, slot, Takeover::AtRest);
            }
            if closest.is_none_or(|(_, _, best)| to_rest < best) {
                closest = Some((index, slot, to_rest));
            }
        }
        Pick::Full {
            victim: closest.map(|(index, slot, _)| (index, slot)),
            wait: closest.map_or(1, |(_, _, t)| t.max(1)),
        }
    }

    /// A full neighbourhood under policy `Deny` or `Allow`.
    pub(super) fn refuse_or_admit_untracked(&self, fresh: Decision, wait: u64) -> Access {
        if self.policy == FullPolicy::Allow {
            self.counters.bump(stats::FULL_ALLOWED);
            return (fresh, None);
        }
        self.counters.bump(stats::FULL_DENIED);
        (
            Decision {
                allowed: false,
                limit: fresh.limit,
                remaining: 0,
                reset_after: wait,
                retry_after: wait,
            },
            None,
        )
    }
}
