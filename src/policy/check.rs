//! One check: which rules apply, which keys the request carries, then the real limits'
//! all-or-nothing protocol, the shadow limits' (module docs), and the counters.

use crate::composite::{run_all, MAX_LIMITS};
use crate::decision::Decision;
use crate::error::CheckError;
use crate::table::KeyedLimit;

use super::decision::{Entry, PolicyDecision};
use super::metrics::Outcome;
use super::request::{resolve, KeyParts, Resolved, MAX_KEY_ATTRIBUTES};
use super::{CompiledRule, Group, OnMissing, Policy, Request, SplitPath};

/// A group of limits the request meets, with its key (`None`: a key attribute is missing
/// and the group denies such requests).
#[derive(Clone, Copy)]
pub(super) struct Met<'p, 'r> {
    pub(super) group: &'p Group,
    pub(super) key: Option<KeyParts<'r>>,
}

/// Up to [`MAX_LIMITS`] groups, in policy order (the policy has at most that many limits,
/// so at most that many groups).
pub(super) struct MetList<'p, 'r> {
    items: [Option<Met<'p, 'r>>; MAX_LIMITS],
    len: usize,
}

impl<'p, 'r> MetList<'p, 'r> {
    const fn new() -> Self {
        Self {
            items: [None; MAX_LIMITS],
            len: 0,
        }
    }

    fn push(&mut self, met: Met<'p, 'r>) {
        if let Some(item) = self.items.get_mut(self.len) {
            *item = Some(met);
            self.len += 1;
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = Met<'p, 'r>> + '_ {
        self.items.iter().take(self.len).flatten().copied()
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl CompiledRule {
    fn applies(&self, method: &str, path: &SplitPath<'_>, resolved: &Resolved<'_>) -> bool {
        self.route
            .as_ref()
            .is_none_or(|route| route.matches_split(method, path))
            && self.conditions.iter().all(|c| c.holds(resolved))
    }
}

impl Group {
    /// The request's key for this group; `None` when a key attribute is missing and the
    /// group does not share a counter among such requests.
    fn key_of<'r>(&self, resolved: &Resolved<'r>) -> Option<KeyParts<'r>> {
        let mut key = KeyParts {
            parts: [None; MAX_KEY_ATTRIBUTES],
            len: self.key.len(),
        };
        for (part, &attribute) in key.parts.iter_mut().zip(&self.key) {
            *part = resolved.get(attribute).copied().flatten();
            if part.is_none() && self.on_missing != OnMissing::Shared {
                return None;
            }
        }
        Some(key)
    }
}

impl Policy {
    /// Decides `request` at `now` (monotonic nanoseconds) with `cost`, and counts the
    /// outcome in the limits' metrics. Allocation-free (in process).
    ///
    /// # Errors
    /// [`CheckError::CostExceedsLimit`] if `cost` can never fit some applicable
    /// (non-shadow) limit.
    pub fn check(
        &self,
        request: &Request<'_>,
        now: u64,
        cost: u64,
    ) -> Result<PolicyDecision<'_>, CheckError> {
        self.run(request, now, cost, true)
    }

    /// The decision [`check`](Self::check) would return, consuming and counting nothing.
    ///
    /// # Errors
    /// As for [`check`](Self::check).
    pub fn peek(
        &self,
        request: &Request<'_>,
        now: u64,
        cost: u64,
    ) -> Result<PolicyDecision<'_>, CheckError> {
        self.run(request, now, cost, false)
    }

    fn run(
        &self,
        request: &Request<'_>,
        now: u64,
        cost: u64,
        commit: bool,
    ) -> Result<PolicyDecision<'_>, CheckError> {
        let mut result = PolicyDecision::new(self);
        // One pass over the rules, the path split and the attributes resolved once.
        // Collecting has no side effects, so an unlimited rule found after some limits
        // were collected still answers "unlimited" before anything is checked.
        let resolved = resolve(&self.attributes, request);
        let path = SplitPath::new(request.path);
        let (mut real, mut shadow) = (MetList::new(), MetList::new());
        let mut skipped = [0usize; MAX_LIMITS];
        let mut skipped_len = 0;
        for (index, rule) in self.rules.iter().enumerate() {
            if !rule.applies(request.method, &path, &resolved) {
                continue;
            }
            if rule.unlimited {
                result.exempt(index);
                return Ok(result);
            }
            for group in &rule.groups {
                let key = group.key_of(&resolved);
                if key.is_none() && group.on_missing == OnMissing::Skip {
                    for (slot, &id) in skipped.iter_mut().skip(skipped_len).zip(&group.ids) {
                        *slot = id;
                        skipped_len += 1;
                    }
                    continue;
                }
                let list = if group.shadow { &mut shadow } else { &mut real };
                list.push(Met { group, key });
            }
        }

        let mut states = [Decision::EMPTY; MAX_LIMITS];
        let answer = self.execute_set(&real, now, cost, commit, &mut states)?;
        result.set_real(&real, &states, answer);

        if !shadow.is_empty() {
            let charge = commit && result.allowed();
            match self.execute_set(&shadow, now, cost, charge, &mut states) {
                Ok(_) => result.set_shadow(&shadow, Some(&states)),
                // A cost no shadow limit can ever fit is its denial, never an error: a
                // shadow limit must not change the real answer.
                Err(_) => result.set_shadow(&shadow, None),
            }
        }

        if commit {
            for entry in result.all_entries() {
                self.note(entry);
            }
            for &id in skipped.iter().take(skipped_len) {
                if let Some(counters) = self.counters.get(id) {
                    counters.note(Outcome::Skipped);
                }
            }
        }
        Ok(result)
    }

    fn note(&self, entry: &Entry) {
        let Some(counters) = self.counters.get(entry.limit) else {
            return;
        };
        let shadow = self.limits.get(entry.limit).is_some_and(|m| m.shadow);
        counters.note(match (entry.state.allowed, shadow) {
            (true, _) => Outcome::Allowed,
            (false, false) => Outcome::Denied,
            (false, true) => Outcome::ShadowDenied,
        });
    }

    /// [`execute`](Self::execute) over one all-or-nothing set (the real limits, or the
    /// shadow ones). A set holding a limit that denies the request for a missing key
    /// attribute denies: the others are only peeked, so nothing is consumed, and each
    /// reports its unchanged state, as a composite denial does (a limit that would have
    /// admitted shows its state now: a cost-0 peek).
    fn execute_set(
        &self,
        met: &MetList<'_, '_>,
        now: u64,
        cost: u64,
        commit: bool,
        states: &mut [Decision; MAX_LIMITS],
    ) -> Result<Answer, CheckError> {
        if met.iter().all(|m| m.key.is_some()) {
            return self.execute(met, now, cost, commit, states);
        }
        let answer = self.execute(met, now, cost, false, states)?;
        let mut now_states = [Decision::EMPTY; MAX_LIMITS];
        self.execute(met, now, 0, false, &mut now_states)?;
        for (state, unchanged) in states.iter_mut().zip(now_states) {
            if state.allowed {
                *state = unchanged;
            }
        }
        Ok(answer)
    }

    /// Runs the all-or-nothing protocol over the keyed groups of `met`, writing each
    /// limit's state to `states` in order (groups without a key are left out). The
    /// combined decision is the backend's; on Redis, with the fault when it could not
    /// decide.
    fn execute(
        &self,
        met: &MetList<'_, '_>,
        now: u64,
        cost: u64,
        commit: bool,
        states: &mut [Decision; MAX_LIMITS],
    ) -> Result<Answer, CheckError> {
        #[cfg(feature = "redis")]
        if let Some(backend) = &self.redis {
            return super::redis::execute(backend, met, now, cost, commit, states);
        }
        let Some(first) = met.iter().find(|m| m.key.is_some()) else {
            return Ok(Answer::default());
        };
        let mut members: [KeyedLimit<'_>; MAX_LIMITS] =
            [first.group.table.placeholder(); MAX_LIMITS];
        let mut len = 0;
        for m in met.iter() {
            let (Some(key), Some(out)) = (m.key, members.get_mut(len..)) else {
                continue;
            };
            let hash = m.group.table.hash_of(&key);
            len += m.group.table.members_into(hash, out);
        }
        let members = members.get(..len).unwrap_or(&[]);
        let states = states.get_mut(..len).unwrap_or(&mut []);
        run_all(members, now, cost, commit, states)?;
        Ok(Answer::default())
    }
}

/// What the backend said beyond the per-limit states.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Answer {
    /// Why Redis could not decide, with the decision its failure mode answered.
    #[cfg(feature = "redis")]
    pub(super) fault: Option<(crate::redis_backend::Fault, Decision)>,
}
