//! The check of a policy that is one limit for every request: one rule without route,
//! conditions or shadow, one limit, no overrides in force, the state in process. The
//! general check (`check`) resolves every attribute, collects the groups each rule
//! meets, runs the all-or-nothing protocol and sorts and counts what it found; with one
//! limit all of that is one table check, so this path does only what that check needs
//! and fills the verdict as the general path would. A request lacking a key attribute
//! under `on_missing = "skip"` or `"deny"` takes the general path.

use arrayvec::ArrayVec;

use crate::decision::{Decision, Mode};
use crate::error::CheckError;

use super::compile::{Compiled, Group};
use super::decision::Verdict;
use super::metrics::Outcome;
use super::overrides::OverrideSet;
use super::request::{KeyParts, MAX_KEY_ATTRIBUTES};
use super::{OnMissing, Request};

/// A request's key for the policy's only limit.
pub(super) struct Lone<'p, 'r> {
    compiled: &'p Compiled,
    group: &'p Group,
    /// The limit's id.
    id: usize,
    /// The parts in use only: a [`KeyParts`] is zeroed whole and copied on every check,
    /// lines of stack the one-limit path otherwise never touches.
    key: ArrayVec<Option<&'r [u8]>, MAX_KEY_ATTRIBUTES>,
}

/// Hashes as the [`KeyParts`] of the same values: each part in order.
struct Parts<'k, 'r>(&'k [Option<&'r [u8]>]);

impl core::hash::Hash for Parts<'_, '_> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        for part in self.0 {
            part.hash(state);
        }
    }
}

impl Compiled {
    /// The policy's only limit, when every request meets it and nothing else: the group
    /// holding it and its id.
    #[inline]
    fn lone_limit(&self) -> Option<(&Group, usize)> {
        let [rule] = self.rules.as_slice() else {
            return None;
        };
        if rule.route.is_some() || !rule.conditions.is_empty() || rule.unlimited {
            return None;
        }
        let [group] = rule.groups.as_slice() else {
            return None;
        };
        let [id] = group.ids.as_slice() else {
            return None;
        };
        #[cfg(feature = "redis")]
        if self.redis.is_some() {
            return None;
        }
        (!group.shadow).then_some((group, *id))
    }

    /// The policy's only limit with `request`'s key, when the policy is one limit
    /// (module docs), no override is in force and the request carries the key; `None`
    /// when the general path must decide. Inlined with [`key_parts`](Self::key_parts):
    /// the key is then read where the caller keeps it, not copied out.
    #[inline(always)]
    pub(super) fn lone<'r>(
        &self,
        overrides: &OverrideSet,
        request: &Request<'r>,
    ) -> Option<Lone<'_, 'r>> {
        let (group, id) = self.lone_limit()?;
        if !overrides.is_empty() {
            return None;
        }
        let key = self.key_parts(group, request)?;
        Some(Lone {
            compiled: self,
            group,
            id,
            key,
        })
    }

    /// `group`'s key read from `request` (the first attribute of each name, as
    /// resolving reads them); `None` when an attribute is missing and the group does not
    /// share a counter among such requests.
    #[inline(always)]
    fn key_parts<'r>(
        &self,
        group: &Group,
        request: &Request<'r>,
    ) -> Option<ArrayVec<Option<&'r [u8]>, MAX_KEY_ATTRIBUTES>> {
        let mut key = ArrayVec::new();
        // A key has at most MAX_KEY_ATTRIBUTES attributes (the policy is refused
        // otherwise): `take` only keeps the push from ever failing.
        for &attribute in group.key.iter().take(MAX_KEY_ATTRIBUTES) {
            let name = self.attributes.get(attribute)?;
            let part = request.attribute(name);
            if part.is_none() && group.on_missing != OnMissing::Shared {
                return None;
            }
            key.push(part);
        }
        Some(key)
    }
}

impl Lone<'_, '_> {
    /// The limit's state after one table check of the key at `now` for `cost`.
    #[inline]
    pub(super) fn decide(&self, now: u64, cost: u64, mode: Mode) -> Result<Decision, CheckError> {
        // Hashes as the general path's key view of the same values (`KeyView`).
        let hash = self.group.table.hash_of(&Parts(&self.key));
        match self.group.table.members(hash).next() {
            Some(member) => member.decide(now, cost, mode),
            // A table has at least one limit: never reached, and refused if it were.
            None => Ok(Decision::EMPTY),
        }
    }

    /// Records `state` in `result` as the general path would for one limit: the entry
    /// and the decision; for a charge, the offender report on a denial and the counters.
    #[inline]
    pub(super) fn settle(&self, state: Decision, mode: Mode, result: &mut Verdict) {
        result.set_lone(self.id, state);
        if !mode.charges() {
            return;
        }
        if !state.allowed {
            let mut key = KeyParts {
                parts: [None; MAX_KEY_ATTRIBUTES],
                len: self.key.len(),
            };
            for (part, value) in key.parts.iter_mut().zip(&self.key) {
                *part = *value;
            }
            self.compiled.offenders.record(self.id, &key);
        }
        if let Some(counters) = self.compiled.counters.get(self.id) {
            counters.note(if state.allowed {
                Outcome::Allowed
            } else {
                Outcome::Denied
            });
        }
    }
}
