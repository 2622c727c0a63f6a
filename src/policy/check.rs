//! One check: which rules apply, which keys the request carries, then the real limits'
//! all-or-nothing protocol, the shadow limits' (module docs), and the counters.

use crate::decision::Mode;
use alloc::sync::Arc;
use arrayvec::ArrayVec;

use crate::composite::Member;
use crate::composite::{run_all, MAX_LIMITS};
use crate::decision::Decision;
use crate::error::CheckError;
use crate::table::{KeyedLimit, MAX_TABLE_LIMITS};

use super::compile::{Compiled, Version};
use super::compile::{CompiledRule, Group};
use super::decision::{Entry, PolicyDecision, Verdict};
use super::lone::LoneKey;
use super::metrics::Outcome;
use super::overrides::OverrideEntry;
use super::overrides::OverrideSet;
use super::request::{resolve, KeyParts, KeyView, Resolved, MAX_KEY_ATTRIBUTES};
use super::{OnMissing, Policy, Request, SplitPath};

/// A group of limits the request meets, with its key (`None`: a key attribute is missing
/// and the group denies such requests).
#[derive(Clone, Copy)]
pub(super) struct Met<'p> {
    pub(super) group: &'p Group,
    /// The request's key's hash in the group's table (`None`: a key attribute is
    /// missing and the group denies such requests). The key's parts are looked up again
    /// where needed ([`Group::key_of`]): keeping them here made every check copy them.
    pub(super) key: Option<u64>,
    /// The override each of the group's limits runs with for this request, if any.
    pub(super) overrides: [Option<&'p OverrideEntry>; MAX_TABLE_LIMITS],
}

impl Met<'_> {
    /// Whether the group's limit `index` does not apply to this request's key (an
    /// unlimited override).
    pub(super) fn exempt(&self, index: usize) -> bool {
        self.key.is_some()
            && self
                .overrides
                .get(index)
                .copied()
                .flatten()
                .is_some_and(OverrideEntry::unlimited)
    }
}

/// Up to [`MAX_LIMITS`] groups, in policy order (the policy has at most that many limits,
/// so at most that many groups).
pub(super) struct MetList<'p> {
    items: ArrayVec<Met<'p>, MAX_LIMITS>,
    /// A group did not fit: impossible for a policy that built (it bounds what one
    /// request can meet), and refused rather than let through if it ever happened.
    overflow: bool,
}

impl<'p> MetList<'p> {
    pub(super) const fn new() -> Self {
        Self {
            items: ArrayVec::new_const(),
            overflow: false,
        }
    }

    fn push(&mut self, met: Met<'p>) {
        if self.items.try_push(met).is_err() {
            self.overflow = true;
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = Met<'p>> + '_ {
        self.items.iter().copied()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Each limit's state, in the order the backend checked them.
pub(super) type States = ArrayVec<Decision, MAX_LIMITS>;

/// A request's path, split the first time a rule's route needs it: a policy whose rules
/// have no routes never splits it.
struct LazyPath<'a> {
    raw: &'a str,
    split: Option<SplitPath<'a>>,
}

impl<'a> LazyPath<'a> {
    const fn new(raw: &'a str) -> Self {
        Self { raw, split: None }
    }

    fn get(&mut self) -> &SplitPath<'a> {
        let raw = self.raw;
        self.split.get_or_insert_with(|| SplitPath::new(raw))
    }
}

impl CompiledRule {
    fn applies(&self, method: &str, path: &mut LazyPath<'_>, resolved: &Resolved<'_>) -> bool {
        self.route
            .as_ref()
            .is_none_or(|route| route.matches_split(method, path.get()))
            && self.conditions.iter().all(|c| c.holds(resolved))
    }
}

impl Group {
    /// The hash of the request's key in this group's table; `None` when a key attribute
    /// is missing and the group does not share a counter among such requests. Equal to
    /// hashing [`key_of`](Self::key_of)'s parts, read in place.
    fn key_hash(&self, resolved: &Resolved<'_>) -> Option<u64> {
        if self.on_missing != OnMissing::Shared
            && self
                .key
                .iter()
                .any(|&attribute| resolved.get(attribute).copied().flatten().is_none())
        {
            return None;
        }
        Some(self.table.hash_of(&KeyView {
            attributes: &self.key,
            resolved,
        }))
    }

    /// The request's key for this group; `None` when a key attribute is missing and the
    /// group does not share a counter among such requests.
    pub(super) fn key_of<'r>(&self, resolved: &Resolved<'r>) -> Option<KeyParts<'r>> {
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
        self.run(request, now, cost, Mode::Charge)
    }

    /// [`check`](Self::check), handing the decision to `read` where it was made instead of
    /// returning it: the decision holds every applicable limit's state (about a
    /// kilobyte), and returning it copies it. For a caller that only reads the decision
    /// (renders headers, takes a snapshot). Allocation-free (in process).
    ///
    /// ```
    /// use ratecore::policy::{Policy, Request};
    /// let policy = Policy::from_toml_str(
    ///     "[table]\ncapacity = 64\n[[rule]]\nname = \"all\"\n[[rule.limit]]\nname = \"burst\"\n\
    ///      key = []\nalgorithm = \"gcra\"\nlimit = 2\nperiod = \"1m\"\n",
    ///     "policy.toml",
    /// )?;
    /// let request = Request::new("GET", "/", &[]);
    /// let remaining = policy.check_with(&request, 0, 1, |d| d.decision().remaining)?;
    /// assert_eq!(remaining, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As for [`check`](Self::check); `read` is not called then.
    // Inlined into the caller, `read`'s answer is built where the caller keeps it
    // instead of being copied out of this frame. The one-limit check runs here, in a
    // frame of a few words; the decision (about a kilobyte) is built out of line once
    // the table has answered, so the table's check runs that much higher on the stack.
    #[inline(always)]
    pub fn check_with<R>(
        &self,
        request: &Request<'_>,
        now: u64,
        cost: u64,
        read: impl FnOnce(&PolicyDecision<'_>) -> R,
    ) -> Result<R, CheckError> {
        let version = self.current.load();
        let mut key = LoneKey::new();
        let Some(lone) = version
            .compiled
            .lone(version.no_overrides, request, &mut key)
        else {
            return Self::read_general(version, request, now, cost, read);
        };
        let state = lone.decide(now, cost, Mode::Charge)?;
        let id = lone.record(state, Mode::Charge);
        Ok(Self::read_lone(version, id, state, read))
    }

    /// `read` on the decision of a policy's only limit, `id`, in `state` (see
    /// [`check_with`](Self::check_with)).
    #[inline(never)]
    fn read_lone<R>(
        version: arc_swap::Guard<Arc<Version>>,
        id: usize,
        state: Decision,
        read: impl FnOnce(&PolicyDecision<'_>) -> R,
    ) -> R {
        // Written in place: a verdict built first would be copied into the decision whole.
        let mut decision = PolicyDecision::new(version, Verdict::blank());
        decision.parts_mut().1.set_lone(id, state);
        read(&decision)
    }

    /// `read` on the general check's decision (see [`check_with`](Self::check_with)).
    #[inline(never)]
    fn read_general<R>(
        version: arc_swap::Guard<Arc<Version>>,
        request: &Request<'_>,
        now: u64,
        cost: u64,
        read: impl FnOnce(&PolicyDecision<'_>) -> R,
    ) -> Result<R, CheckError> {
        let mut decision = PolicyDecision::new(version, Verdict::blank());
        let (version, verdict) = decision.parts_mut();
        Self::decide_general(version, request, now, cost, Mode::Charge, verdict)?;
        Ok(read(&decision))
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
        self.run(request, now, cost, Mode::Peek)
    }

    fn run(
        &self,
        request: &Request<'_>,
        now: u64,
        cost: u64,
        mode: Mode,
    ) -> Result<PolicyDecision<'_>, CheckError> {
        let mut decision = self.undecided();
        Self::decide_into(&mut decision, request, now, cost, mode)?;
        Ok(decision)
    }

    /// An empty decision on the version in force. Lock-free (module Orderings of the
    /// arc-swap crate): the decision keeps that version alive.
    #[inline(always)]
    fn undecided(&self) -> PolicyDecision<'_> {
        // `decide_into` writes the decision.
        PolicyDecision::new(self.current.load(), Verdict::blank())
    }

    /// Fills `decision` in place: the verdict is about a kilobyte, and building it
    /// elsewhere and moving it in copied it once more per check.
    #[inline(always)]
    fn decide_into(
        decision: &mut PolicyDecision<'_>,
        request: &Request<'_>,
        now: u64,
        cost: u64,
        mode: Mode,
    ) -> Result<(), CheckError> {
        let (version, verdict) = decision.parts_mut();
        let compiled = &version.compiled;
        let mut key = LoneKey::new();
        if let Some(lone) = compiled.lone(version.no_overrides, request, &mut key) {
            let state = lone.decide(now, cost, mode)?;
            lone.settle(state, mode, verdict);
            return Ok(());
        }
        Self::decide_general(version, request, now, cost, mode, verdict)
    }

    /// The check of any policy (every rule that applies, all-or-nothing), into `verdict`:
    /// what [`decide_into`](Self::decide_into) and [`check_with`](Self::check_with) run
    /// when the one-limit check does not apply.
    #[inline(always)]
    fn decide_general(
        version: &Version,
        request: &Request<'_>,
        now: u64,
        cost: u64,
        mode: Mode,
        verdict: &mut Verdict,
    ) -> Result<(), CheckError> {
        verdict.unlimited();
        let compiled = &version.compiled;
        compiled.run(&version.overrides, request, now, cost, mode, verdict)
    }
}

/// What collecting found for one request: the groups it meets (real and shadow, in
/// policy order) and the limits met but not applied (a missing key attribute under
/// "skip", or an unlimited override), for their counters.
pub(super) struct Collected<'p> {
    pub(super) real: MetList<'p>,
    pub(super) shadow: MetList<'p>,
    /// A policy that built meets at most MAX_LIMITS limits, so pushes never fail; one
    /// that did would go uncounted only.
    pub(super) skipped: ArrayVec<usize, MAX_LIMITS>,
}

impl Collected<'_> {
    pub(super) const fn new() -> Self {
        Self {
            real: MetList::new(),
            shadow: MetList::new(),
            skipped: ArrayVec::new_const(),
        }
    }
}

impl Compiled {
    /// The general check, for every policy but one limit (`lone`). Out of line: its
    /// frame (the resolved attributes, the groups met, every limit's state: kilobytes)
    /// would otherwise be the one-limit path's too, whose few stack writes would then
    /// land on lines far apart.
    #[inline(never)]
    fn run(
        &self,
        overrides: &OverrideSet,
        request: &Request<'_>,
        now: u64,
        cost: u64,
        mode: Mode,
        result: &mut Verdict,
    ) -> Result<(), CheckError> {
        let mut resolved = Resolved::new();
        let mut found = Collected::new();
        if !self.prepare(overrides, request, &mut resolved, &mut found, result) {
            return Ok(());
        }
        let mut states = States::new();
        let real = Call::new(&found.real, &resolved, now, cost, mode);
        let answer = self.execute_set(real, &mut states)?;
        self.settle_real(real, &states, answer, result);
        if let Some(shadow) = Self::shadow_call(&found, &resolved, real, result) {
            if self.execute_set(shadow, &mut states).is_err() {
                // A cost some shadow limit can never fit is its denial, never an error: a
                // shadow limit must not change the real answer.
                self.never_fits(shadow, &mut states);
            }
            result.set_shadow(self, &found.shadow, &states);
        }
        self.count(&found, mode, result);
        Ok(())
    }

    /// Resolves the request's attributes and collects the groups it meets (see
    /// [`collect`](Self::collect)); `false` when that already decided the check.
    #[inline(always)]
    pub(super) fn prepare<'p, 'r>(
        &'p self,
        overrides: &'p OverrideSet,
        request: &Request<'r>,
        resolved: &mut Resolved<'r>,
        found: &mut Collected<'p>,
        result: &mut Verdict,
    ) -> bool {
        resolve(&self.attributes, &self.attribute_keys, request, resolved);
        self.collect(overrides, request, resolved, found, result)
    }

    /// Finds the groups `request` meets (one pass over the rules, the path split at most once)
    /// into `found`. `false` when the check is already decided in `result`: an
    /// unlimited rule exempts the request, or the request meets more groups than a
    /// policy that built allows (refused). Collecting has no side effects, so an
    /// unlimited rule found after some limits were collected still answers "unlimited"
    /// before anything is checked.
    #[inline(always)]
    pub(super) fn collect<'p>(
        &'p self,
        overrides: &'p OverrideSet,
        request: &Request<'_>,
        resolved: &Resolved<'_>,
        found: &mut Collected<'p>,
        result: &mut Verdict,
    ) -> bool {
        let any_overrides = !overrides.is_empty();
        let mut path = LazyPath::new(request.path);
        for (index, rule) in self.rules.iter().enumerate() {
            if !rule.applies(request.method, &mut path, resolved) {
                continue;
            }
            if rule.unlimited {
                result.exempt(index);
                return false;
            }
            for group in &rule.groups {
                let key = group.key_hash(resolved);
                if key.is_none() && group.on_missing == OnMissing::Skip {
                    for &id in &group.ids {
                        let _ = found.skipped.try_push(id);
                    }
                    continue;
                }
                let mut selected = [None; MAX_TABLE_LIMITS];
                if any_overrides && key.is_some() {
                    for (slot, &id) in selected.iter_mut().zip(&group.ids) {
                        *slot = overrides.of(id).and_then(|o| o.select(request, resolved));
                    }
                }
                let met = Met {
                    group,
                    key,
                    overrides: selected,
                };
                for (index, &id) in group.ids.iter().enumerate() {
                    if met.exempt(index) {
                        let _ = found.skipped.try_push(id);
                    }
                }
                let list = if group.shadow {
                    &mut found.shadow
                } else {
                    &mut found.real
                };
                list.push(met);
            }
        }
        if found.real.overflow || found.shadow.overflow {
            result.refuse();
            return false;
        }
        true
    }

    /// Records the real limits' states in `result` and, for a denied charge, the
    /// deciding limit's key in the report of who keeps sending while denied.
    #[inline(always)]
    pub(super) fn settle_real(
        &self,
        real: Call<'_>,
        states: &States,
        answer: Answer,
        result: &mut Verdict,
    ) {
        result.set_real(self, real.met, states, answer);
        if real.mode.charges() && !result.allowed() {
            let keyed = result.deciding_limit().and_then(|id| {
                real.met
                    .iter()
                    .find(|m| m.group.ids.contains(&id))
                    .and_then(|m| Some((id, m.group.key_of(real.resolved)?)))
            });
            if let Some((id, key)) = keyed {
                self.offenders.record(id, &key);
            }
        }
    }

    /// The shadow limits' call, if the request meets any: charged only for a request the
    /// real limits admitted.
    #[inline(always)]
    pub(super) fn shadow_call<'a>(
        found: &'a Collected<'a>,
        resolved: &'a Resolved<'a>,
        real: Call<'_>,
        result: &Verdict,
    ) -> Option<Call<'a>> {
        let mode = if real.mode.charges() && result.allowed() {
            Mode::Charge
        } else {
            Mode::Peek
        };
        (!found.shadow.is_empty())
            .then(|| Call::new(&found.shadow, resolved, real.now, real.cost, mode))
    }

    /// Counts a charged check's outcome in every applicable limit's metrics.
    #[inline(always)]
    pub(super) fn count(&self, found: &Collected<'_>, mode: Mode, result: &Verdict) {
        if mode.charges() {
            for entry in result.all_entries() {
                self.note(entry);
            }
            for &id in &found.skipped {
                if let Some(counters) = self.counters.get(id) {
                    counters.note(Outcome::Skipped);
                }
            }
        }
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
    fn execute_set(&self, call: Call<'_>, states: &mut States) -> Result<Answer, CheckError> {
        if call.all_keyed() {
            return self.execute(call, states);
        }
        let answer = self.execute(call.peek(call.cost), states)?;
        let mut now_states = States::new();
        self.execute(call.peek(0), &mut now_states)?;
        keep_unchanged_where_allowed(states, now_states);
        Ok(answer)
    }

    /// Runs the all-or-nothing protocol over the keyed groups of `call.met`, setting
    /// `states` to each limit's state in order (groups without a key are left out). The
    /// combined decision is the backend's; on Redis, with the fault when it could not
    /// decide.
    fn execute(&self, call: Call<'_>, states: &mut States) -> Result<Answer, CheckError> {
        states.clear();
        #[cfg(feature = "redis")]
        if let Some(backend) = &self.redis {
            return super::redis::execute(backend, call, states);
        }
        if let Some(member) = Self::only_member(call.met) {
            // One limit: its own check is the protocol's answer (as a table of one limit
            // decides), without the peek that decides among several.
            let _ = states.try_push(member.decide(call.now, call.cost, call.mode)?);
            return Ok(Answer::default());
        }
        // In process the keys were hashed when collected; only Redis needs their parts.
        let mut members = ArrayVec::new();
        if !Self::members(call.met, &mut members) {
            // Unreachable for a policy that built (it bounds how many limits one request
            // meets): refused with nothing consumed, never checked in part.
            return Ok(Answer::default());
        }
        for _ in &members {
            // As long as `members`: never full.
            let _ = states.try_push(Decision::EMPTY);
        }
        // The combined decision is the verdict's to make (`Verdict::set_real`), from `states`.
        let _ = run_all(&members, call.now, call.cost, call.mode, states)?;
        Ok(Answer::default())
    }

    /// The table member, with its override's parameters, when `met` is one keyed group of
    /// one limit that no unlimited override exempts: what [`members`](Self::members)
    /// would list alone, without filling a list.
    #[inline]
    fn only_member<'t>(met: &MetList<'t>) -> Option<KeyedLimit<'t>> {
        let [m] = met.items.as_slice() else {
            return None;
        };
        if m.group.ids.len() != 1 {
            return None;
        }
        let member = m.group.table.members(m.key?).next()?;
        match m.overrides.first().copied().flatten() {
            None => Some(member),
            Some(o) => o.table_limit.as_ref().map(|limit| member.with_limit(limit)),
        }
    }

    /// Appends the table members of `met`'s keyed groups to `members` in order, each
    /// with its override's parameters, leaving out those an unlimited override exempts;
    /// `false` if they are more than [`MAX_LIMITS`]. Filled in place: returned by value,
    /// the list was copied once more on every check.
    #[inline]
    fn members<'t>(met: &MetList<'t>, members: &mut ArrayVec<KeyedLimit<'t>, MAX_LIMITS>) -> bool {
        for m in met.iter() {
            let Some(hash) = m.key else { continue };
            for (index, member) in m.group.table.members(hash).enumerate() {
                let member = match m.overrides.get(index).copied().flatten() {
                    None => member,
                    Some(o) => match &o.table_limit {
                        Some(limit) => member.with_limit(limit),
                        None => continue,
                    },
                };
                if members.try_push(member).is_err() {
                    return false;
                }
            }
        }
        true
    }

    /// The states of an all-or-nothing set (the shadow limits) that a `cost` some member
    /// can never fit denies, as a composite denial reports them: a limit the cost can
    /// never fit is denied with `retry_after = NEVER`, one that would deny it reports that
    /// denial, and one that would admit it reports its unchanged state. Nothing consumed.
    fn never_fits(&self, call: Call<'_>, states: &mut States) {
        let mut unchanged = States::new();
        // A cost of 0 fits every limit: never an error.
        let _ = self.execute(call.peek(0), &mut unchanged);
        states.clear();
        #[cfg(feature = "redis")]
        if let Some(backend) = &self.redis {
            super::redis::peek_each(backend, call, states);
        }
        #[cfg(feature = "redis")]
        let in_process = self.redis.is_none();
        #[cfg(not(feature = "redis"))]
        let in_process = true;
        if in_process {
            let mut members = ArrayVec::new();
            // Too many (unreachable for a policy that built): those that fit are reported.
            let _ = Self::members(call.met, &mut members);
            for member in members {
                let _ = states.try_push(member.peek(call.now, call.cost).unwrap_or(NEVER_FITS));
            }
        }
        merge_never_fits(states, &unchanged);
    }
}

/// One pass of the all-or-nothing protocol over a set of limits (the real ones, or the
/// shadow ones): which, for which request's attributes, at what time and cost, charged
/// or peeked. Every backend's step takes it whole.
#[derive(Clone, Copy)]
pub(super) struct Call<'a> {
    pub(super) met: &'a MetList<'a>,
    pub(super) resolved: &'a Resolved<'a>,
    pub(super) now: u64,
    pub(super) cost: u64,
    pub(super) mode: Mode,
}

impl<'a> Call<'a> {
    pub(super) const fn new(
        met: &'a MetList<'a>,
        resolved: &'a Resolved<'a>,
        now: u64,
        cost: u64,
        mode: Mode,
    ) -> Self {
        Self {
            met,
            resolved,
            now,
            cost,
            mode,
        }
    }

    /// The same limits peeked at `cost`: nothing consumed.
    pub(super) const fn peek(self, cost: u64) -> Self {
        Self {
            cost,
            mode: Mode::Peek,
            ..self
        }
    }

    /// Whether every group has its key (none denies for a missing key attribute).
    pub(super) fn all_keyed(&self) -> bool {
        self.met.iter().all(|m| m.key.is_some())
    }
}

/// For a set denied for a missing key attribute: a limit that would have admitted
/// reports its state now (`now_states`, a cost-0 peek).
pub(super) fn keep_unchanged_where_allowed(states: &mut States, now_states: States) {
    for (state, unchanged) in states.iter_mut().zip(now_states) {
        if state.allowed {
            *state = unchanged;
        }
    }
}

/// Fills in each limit's answer to a cost the set can never fit from its unchanged
/// state (see `never_fits`).
pub(super) fn merge_never_fits(states: &mut States, unchanged: &States) {
    for (state, unchanged) in states.iter_mut().zip(unchanged.iter().copied()) {
        *state = match (state.allowed, state.retry_after == crate::NEVER) {
            (true, _) => unchanged,
            (false, true) => Decision {
                allowed: false,
                retry_after: crate::NEVER,
                ..unchanged
            },
            (false, false) => *state,
        };
    }
}

/// A limit's answer to a cost it can never fit, before its fields are filled in from its
/// unchanged state.
pub(super) const NEVER_FITS: Decision = Decision {
    retry_after: crate::NEVER,
    ..Decision::EMPTY
};

/// What the backend said beyond the per-limit states.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Answer {
    /// Why Redis could not decide, with the decision its failure mode answered.
    #[cfg(feature = "redis")]
    pub(super) fault: Option<(crate::redis_backend::Fault, Decision)>,
}
