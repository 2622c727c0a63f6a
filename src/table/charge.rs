//! What [`Table::check_undoable`](super::Table::check_undoable) consumed, so that
//! [`Table::undo`](super::Table::undo) can give it back: one reservation per limit of
//! the table, plus the key's hash (so undoing needs no key) and the identity of the table
//! that made it (so a charge is never applied to another table).
//!
//! Why a table would give a charge back: a caller that checks one request against
//! several tables (an nginx location with a per-IP and a per-account zone) consumes from
//! them one after the other; when a later table denies, undoing the earlier charges keeps
//! "a denial consumes nothing" across tables too. Undo gives back only what is provably
//! safe (as the composite's cancel does): exact when nothing else touched the key since
//! (but a strict window's sub-window that already held admissions keeps the undone
//! request's time), otherwise possibly less, never more, so it never over-admits.
//!
//! A charge travels through C as [`TABLE_CHARGE_WORDS`] plain words (`to_words` /
//! `Table::charge_from_words`), sealed with a checksum keyed by the table's hash seed: a
//! charge from another table, or altered bytes, are refused rather than applied.

use super::KeyedReservation;
use super::MAX_TABLE_LIMITS;
use crate::Reservation;

/// Words in a charge's plain form: the table's identity, the key's hash, six words per
/// limit, and the checksum.
pub const TABLE_CHARGE_WORDS: usize = 2 + PER_LIMIT * MAX_TABLE_LIMITS + 1;

/// Words per limit: the slot index + 1 (0: nothing consumed), then the reservation.
const PER_LIMIT: usize = 6;

/// A charge a keyed table made for one admitted request, to give back with
/// [`Table::undo`](super::Table::undo). Valid only for the table (in the process) that
/// made it. Small (no allocation) and inert until undone: dropping it keeps the charge.
/// Neither `Copy` nor `Clone`, and `undo` takes it by value, so one charge cannot be
/// given back twice (the windows would count a second give-back).
#[derive(Debug, PartialEq, Eq)]
pub struct TableCharge {
    /// The making table's identity (the address of its slots).
    pub(super) table: u64,
    /// The key's hash in that table.
    pub(super) hash: u64,
    /// Each limit's reservation; `None` where nothing was consumed.
    pub(super) tokens: [Option<KeyedReservation>; MAX_TABLE_LIMITS],
}

impl TableCharge {
    /// The charge as plain words (for the C ABI), without the checksum, which the table
    /// adds ([`Table::charge_to_words`](super::Table::charge_to_words)).
    pub(super) fn unsealed_words(&self) -> [u64; TABLE_CHARGE_WORDS] {
        let mut words = [0; TABLE_CHARGE_WORDS];
        words[0] = self.table;
        words[1] = self.hash;
        for (limit, token) in self.tokens.iter().enumerate() {
            if let Some(token) = token {
                let at = 2 + PER_LIMIT * limit;
                // index + 1, so that 0 means "nothing consumed from this limit".
                words[at] = (token.index as u64).wrapping_add(1);
                words[at + 1] = token.inner.tag;
                words[at + 2] = token.inner.aux;
                words[at + 3] = token.inner.cost;
                words[at + 4] = token.inner.before_newest;
                words[at + 5] = token.inner.before_meta;
            }
        }
        words
    }

    /// The charge from plain words whose checksum has been verified.
    pub(super) fn from_verified_words(words: &[u64; TABLE_CHARGE_WORDS]) -> Self {
        let mut tokens = [None; MAX_TABLE_LIMITS];
        for (limit, token) in tokens.iter_mut().enumerate() {
            let at = 2 + PER_LIMIT * limit;
            if words[at] != 0 {
                *token = Some(KeyedReservation {
                    // An index beyond the table is harmless: every slot access is
                    // bounds-checked and finds nothing there.
                    index: usize::try_from(words[at] - 1).unwrap_or(usize::MAX),
                    inner: Reservation {
                        tag: words[at + 1],
                        aux: words[at + 2],
                        cost: words[at + 3],
                        before_newest: words[at + 4],
                        before_meta: words[at + 5],
                    },
                });
            }
        }
        Self {
            table: words[0],
            hash: words[1],
            tokens,
        }
    }
}
