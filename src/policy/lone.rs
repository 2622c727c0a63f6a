//! The check of a policy that is one limit for every request: one rule without route,
//! conditions or shadow, one limit, no overrides in force, the state in process. The
//! general check (`check`) resolves every attribute, collects the groups each rule
//! meets, runs the all-or-nothing protocol and sorts and counts what it found; with one
//! limit all of that is one table check, so this path does only what that check needs
//! and fills the verdict as the general path would. A request lacking a key attribute
//! under `on_missing = "skip"` or `"deny"` takes the general path.
//!
//! What the check reads of the policy is gathered when the policy is compiled into one
//! [`LoneLimit`], inline in the compiled policy: the table, the counters, the limit's id
//! and the key's attribute names, in a line or two. Read from the rules, groups and name
//! lists they come from, each was on a line of its own, missed on most requests.

use alloc::sync::Arc;

use arrayvec::ArrayVec;

use crate::decision::{Decision, Mode};
use crate::error::CheckError;
use crate::table::OwnedTable;

use super::compile::{Compiled, CompiledRule};
use super::decision::Verdict;
use super::metrics::{LimitCounters, Outcome};
use super::request::{KeyParts, MAX_KEY_ATTRIBUTES};
use super::{OnMissing, Request};

/// The bytes of key attribute names a [`LoneLimit`] holds inline: a policy whose only
/// limit's key names are longer in total takes the general path.
const NAME_BYTES: usize = 32;

/// What checking the policy's only limit reads, gathered at compile time: one cache
/// line.
#[derive(Debug)]
#[repr(align(64))]
pub(super) struct LoneLimit {
    table: Arc<OwnedTable>,
    counters: Arc<LimitCounters>,
    /// The limit's id.
    id: u32,
    on_missing: OnMissing,
    /// How many attributes the key has, and where each one's name ends in `names`.
    key_len: u8,
    ends: [u8; MAX_KEY_ATTRIBUTES],
    /// The key's attribute names, one after another.
    names: [u8; NAME_BYTES],
}

impl LoneLimit {
    /// The descriptor of `rules`' only limit, when the policy is one limit (module docs)
    /// whose key names fit inline.
    pub(super) fn of(
        rules: &[CompiledRule],
        attributes: &[alloc::string::String],
        counters: &[Arc<LimitCounters>],
    ) -> Option<Self> {
        let [rule] = rules else {
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
        if group.shadow || group.key.len() > MAX_KEY_ATTRIBUTES {
            return None;
        }
        let mut names = [0u8; NAME_BYTES];
        let mut ends = [0u8; MAX_KEY_ATTRIBUTES];
        let mut end = 0;
        for (slot, &attribute) in ends.iter_mut().zip(&group.key) {
            let name = attributes.get(attribute)?.as_bytes();
            let next = end + name.len();
            names.get_mut(end..next)?.copy_from_slice(name);
            end = next;
            *slot = u8::try_from(end).ok()?;
        }
        Some(Self {
            table: Arc::clone(&group.table),
            counters: Arc::clone(counters.get(*id)?),
            id: u32::try_from(*id).ok()?,
            on_missing: group.on_missing,
            key_len: u8::try_from(group.key.len()).ok()?,
            ends,
            names,
        })
    }

    /// The key's attribute names, in order.
    fn names(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let ends = self.ends.get(..usize::from(self.key_len)).unwrap_or(&[]);
        let starts = core::iter::once(0).chain(ends.iter().copied());
        starts.zip(ends).map(|(start, &end)| {
            self.names
                .get(usize::from(start)..usize::from(end))
                .unwrap_or(&[])
        })
    }
}

/// A request's key parts for the policy's only limit: the parts in use only, where a
/// [`KeyParts`] is zeroed whole on every check, lines of stack the one-limit path
/// otherwise never touches.
pub(super) type LoneKey<'r> = ArrayVec<Option<&'r [u8]>, MAX_KEY_ATTRIBUTES>;

/// A request's key for the policy's only limit.
pub(super) struct Lone<'p, 'k, 'r> {
    compiled: &'p Compiled,
    limit: &'p LoneLimit,
    /// Borrowed from the caller's frame, so that the key is not copied again on its way
    /// into the check.
    key: &'k LoneKey<'r>,
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
    /// The policy's only limit with `request`'s key, written to `key`, when the policy
    /// is one limit (module docs), no override is in force (`no_overrides`) and the
    /// request carries the key; `None` when the general path must decide. Inlined: the
    /// attributes are then read where the caller keeps them, not copied out.
    #[inline(always)]
    pub(super) fn lone<'k, 'r>(
        &self,
        no_overrides: bool,
        request: &Request<'r>,
        key: &'k mut LoneKey<'r>,
    ) -> Option<Lone<'_, 'k, 'r>> {
        let limit = self.lone.as_ref()?;
        #[cfg(feature = "redis")]
        if self.redis.is_some() {
            return None;
        }
        if !no_overrides {
            return None;
        }
        // The first attribute of each name, as resolving reads them.
        for name in limit.names() {
            let part = request
                .attributes
                .iter()
                .find(|a| a.name.as_bytes() == name)
                .map(|a| a.value);
            if part.is_none() && limit.on_missing != OnMissing::Shared {
                return None;
            }
            // At most MAX_KEY_ATTRIBUTES names (`LoneLimit::of`): never full.
            let _ = key.try_push(part);
        }
        Some(Lone {
            compiled: self,
            limit,
            key: &*key,
        })
    }
}

impl Lone<'_, '_, '_> {
    /// The limit's state after one table check of the key at `now` for `cost`.
    #[inline]
    pub(super) fn decide(&self, now: u64, cost: u64, mode: Mode) -> Result<Decision, CheckError> {
        // Hashes as the general path's key view of the same values (`KeyView`).
        let hash = self.limit.table.hash_of(&Parts(self.key));
        match self.limit.table.members(hash).next() {
            Some(member) => member.decide(now, cost, mode),
            // A table has at least one limit: never reached, and refused if it were.
            None => Ok(Decision::EMPTY),
        }
    }

    /// Records `state` in `result` as the general path would for one limit: the entry
    /// and the decision; for a charge, the offender report on a denial and the counters.
    #[inline]
    pub(super) fn settle(&self, state: Decision, mode: Mode, result: &mut Verdict) {
        result.set_lone(self.record(state, mode), state);
    }

    /// What [`settle`](Self::settle) records outside the verdict: for a charge, the
    /// offender report on a denial and the counters. Returns the limit's id, the
    /// verdict's entry.
    #[inline]
    pub(super) fn record(&self, state: Decision, mode: Mode) -> usize {
        // From a usize (`LoneLimit::of`): never truncated.
        let id = usize::try_from(self.limit.id).unwrap_or(usize::MAX);
        if !mode.charges() {
            return id;
        }
        if !state.allowed {
            let mut key = KeyParts {
                parts: [None; MAX_KEY_ATTRIBUTES],
                len: self.key.len(),
            };
            for (part, value) in key.parts.iter_mut().zip(self.key) {
                *part = *value;
            }
            self.compiled.offenders.record(id, &key);
        }
        self.limit.counters.note(if state.allowed {
            Outcome::Allowed
        } else {
            Outcome::Denied
        });
        id
    }
}

#[cfg(test)]
mod tests {
    /// The descriptor is one cache line (and `Option` adds nothing: an `Arc` is never
    /// null).
    #[test]
    fn lone_limit_is_one_line() {
        assert_eq!(core::mem::size_of::<Option<super::LoneLimit>>(), 64);
    }
}
