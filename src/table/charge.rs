//! Charges and giving them back: a keyed limit's reservation (`KeyedReservation`, taken
//! and cancelled through the composite protocol), and [`TableCharge`], what
//! [`Table::check_undoable`](super::Table::check_undoable) consumed, so that
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
//!
//! # Orderings
//! Cancelling a single-word charge is a `SeqCst` CAS on the key slot, like every slot
//! operation (Orderings in the table docs); a strict charge is given back by the ring's
//! own protocol (`sliding_strict`).

use crate::decision::Mode;
use crossbeam_utils::Backoff;

use super::keyed::{Access, KeyedLimit, Kind, MAX_ATTEMPTS};
use super::layout::{fingerprint_of, pack, state_of, tag_of};
use super::lookup::Found;
use super::{Table, TableMemory, MAX_TABLE_LIMITS};
use crate::composite::{run_all_keeping, Member};
use crate::decision::Decision;
use crate::error::CheckError;
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

/// What `cancel` needs to give a keyed charge back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyedReservation {
    pub(super) index: usize,
    pub(super) inner: Reservation,
}

impl<M: TableMemory> Table<M> {
    /// Like [`check_each`](Self::check_each) (pass `&mut []` for no states), and also
    /// returns what was consumed, as a [`TableCharge`] that [`undo`](Self::undo) gives
    /// back: `None` when nothing was (a denial, or cost 0).
    ///
    /// For a request checked against several tables: consume from each in turn, and if a
    /// later one denies, undo the earlier charges, so that a denial consumes nothing
    /// anywhere. (Peeking every table first avoids most undos; a concurrent request can
    /// still change a table between the peek and the check.)
    ///
    /// It takes the general path even for a single-limit table (no live-key fast path),
    /// since it must keep each limit's reservation.
    ///
    /// # Errors
    /// As for [`check`](Self::check).
    pub fn check_undoable(
        &self,
        key: &[u8],
        now: u64,
        cost: u64,
        states: &mut [Decision],
    ) -> Result<(Decision, Option<TableCharge>), CheckError> {
        let hash = self.hasher.hash_one(key);
        let members = self.key_members(fingerprint_of(hash));
        let mut tokens = [None; MAX_TABLE_LIMITS];
        let decision = run_all_keeping(
            members.get(..self.config.count).unwrap_or(&members),
            now,
            cost,
            Mode::Charge,
            states,
            &mut tokens,
        )?;
        let charge = tokens.iter().any(Option::is_some).then_some(TableCharge {
            table: self.identity(),
            hash,
            tokens,
        });
        Ok((decision, charge))
    }

    /// Gives back a charge [`check_undoable`](Self::check_undoable) made on this table,
    /// newest limit first, as a composite's cancel does ([`crate::Reserve::cancel`]):
    /// exact when nothing else touched the key since (but a strict window's sub-window
    /// that already held admissions keeps the undone request's time); under contention
    /// (or after the key lost its slot) only what is provably safe, possibly nothing, so
    /// it never creates over-admission. A charge made by
    /// another table is ignored. It takes the charge by value: a charge is undone once.
    /// (Its plain words, read back twice with [`charge_from_words`](Self::charge_from_words),
    /// would give the windows' cost back twice; the C ABI clears them on undo.)
    pub fn undo(&self, charge: TableCharge) {
        if charge.table != self.identity() {
            return;
        }
        let members = self.key_members(fingerprint_of(charge.hash));
        for (member, token) in members
            .iter()
            .zip(&charge.tokens)
            .take(self.config.count)
            .rev()
        {
            if let Some(token) = token {
                member.cancel(*token);
            }
        }
    }

    /// A charge as plain words, sealed with a checksum keyed by this table's hash seed
    /// (for carrying it through C; [`charge_from_words`](Self::charge_from_words) reads it
    /// back).
    #[must_use]
    pub fn charge_to_words(&self, charge: &TableCharge) -> [u64; TABLE_CHARGE_WORDS] {
        let mut words = charge.unsealed_words();
        words[TABLE_CHARGE_WORDS - 1] = self.charge_checksum(&words);
        words
    }

    /// The charge [`charge_to_words`](Self::charge_to_words) sealed, if these words are
    /// exactly that for this table; `None` for words from another table or altered in any
    /// way (short of breaking a 64-bit keyed hash).
    #[must_use]
    pub fn charge_from_words(&self, words: &[u64; TABLE_CHARGE_WORDS]) -> Option<TableCharge> {
        (words[0] == self.identity()
            && words[TABLE_CHARGE_WORDS - 1] == self.charge_checksum(words))
        .then(|| TableCharge::from_verified_words(words))
    }

    /// Checksum of a charge's words (all but the last), keyed by the table's hash seed.
    fn charge_checksum(&self, words: &[u64; TABLE_CHARGE_WORDS]) -> u64 {
        self.hasher
            .hash_one(words.get(..TABLE_CHARGE_WORDS - 1).unwrap_or(&[]))
    }

    /// This table's identity in this process: where its slots are. (A table freed and
    /// another created at the same address with the same explicit seed would accept the
    /// first one's charges: a charge is meant to be undone right after it was made.)
    fn identity(&self) -> u64 {
        self.memory.slots().as_ptr() as usize as u64
    }
}

impl Member for KeyedLimit<'_> {
    type Token = KeyedReservation;

    fn peek(&self, now: u64, cost: u64) -> Result<Decision, CheckError> {
        self.decide(now, cost, Mode::Peek)
    }

    fn reserve(&self, now: u64, cost: u64) -> Result<Access, CheckError> {
        self.access(now, cost, Mode::Charge)
    }

    fn cancel(&self, token: KeyedReservation) {
        let mut slot = self.load(token.index);
        match self.kind {
            Kind::Strict { config, .. } => {
                // Ring cells carry the generation: a reservation on a ring that changed
                // owner is simply not found.
                if tag_of(slot) == self.fingerprint {
                    config.uncharge(self.ring(token.index), token.inner);
                }
            }
            Kind::Word(word) => {
                let mut index = token.index;
                let backoff = Backoff::new();
                for _ in 0..MAX_ATTEMPTS {
                    if tag_of(slot) == self.fingerprint {
                        let Some(new_word) = word.uncharge(state_of(slot), &token.inner) else {
                            return;
                        };
                        match self.cas(index, slot, pack(self.fingerprint, new_word)) {
                            Ok(_) => return,
                            Err(actual) => slot = actual,
                        }
                        continue;
                    }
                    // Not live here: the key may have been relocated since the charge,
                    // with its state (and our charge) intact.
                    match self.find() {
                        Found::Live(found, live) => (index, slot) = (found, live),
                        Found::Claiming(_, moving) if self.is_moving(moving) => {
                            crate::sync::backoff_wait(&backoff);
                            slot = self.load(index);
                        }
                        _ => return,
                    }
                }
            }
        }
    }
}
