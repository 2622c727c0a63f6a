//! The policy's verdict on one request: every applicable limit's state, which limit
//! decided (module docs, "Which limit decides"), what shadow limits would have done, and
//! the headers and body to answer with.

use alloc::string::String;

use crate::composite::MAX_LIMITS;
use crate::decision::Decision;
use crate::http::{self, BodyStyle, BufferTooSmall, HeaderInput, QuotaReport};

use alloc::sync::Arc;
use arrayvec::ArrayVec;
use core::marker::PhantomData;

use super::check::{Answer, MetList};
use super::compile::{Compiled, Version};
use super::{Body, Policy};

/// Which limit an entry of a [`PolicyDecision`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitRef<'p> {
    /// The limit's index in policy order (rules in order, each rule's limits in order).
    pub id: usize,
    /// The rule.
    pub rule: &'p str,
    /// The rule's description for plain-text bodies.
    pub description: &'p str,
    /// The limit's name.
    pub name: &'p str,
    /// The attributes it keys on.
    pub key: &'p [String],
    /// The limit's period, in nanoseconds.
    pub period: u64,
    /// Whether it is a shadow limit.
    pub shadow: bool,
}

/// One limit's state in a decision.
#[derive(Clone, Copy, Debug)]
pub(super) struct Entry {
    /// The limit's id.
    pub(super) limit: usize,
    pub(super) state: Decision,
    /// Denied because the request lacks a key attribute (`on_missing = "deny"`).
    pub(super) missing: bool,
}

/// What a request without limits gets.
const UNLIMITED: Decision = Decision {
    allowed: true,
    limit: u64::MAX,
    remaining: u64::MAX,
    reset_after: 0,
    retry_after: 0,
};

/// What a check found, before it is tied to the version it ran on.
///
/// In declaration order (`repr(C)`), the list last: a check writes the fields before it
/// and the list's length and first entry, which are then a few adjacent lines of its
/// frame rather than lines on either side of the list's kilobyte.
#[derive(Clone, Debug)]
#[repr(C)]
pub(super) struct Verdict {
    decision: Decision,
    real: usize,
    deciding: Option<usize>,
    shadow_deciding: Option<usize>,
    exempted_by: Option<usize>,
    #[cfg(feature = "redis")]
    fault: Option<crate::redis_backend::Fault>,
    /// Real limits in `..real`, shadow limits after, each in policy order.
    entries: ArrayVec<Entry, MAX_LIMITS>,
}

/// The policy's verdict on one request, with every applicable limit's state. It keeps
/// the policy version it was taken on alive, so it stays valid across a reload.
// In declaration order (`repr(C)`): the version next to the verdict's first fields.
#[derive(Debug)]
#[must_use]
#[repr(C)]
pub struct PolicyDecision<'p> {
    compiled: arc_swap::Guard<Arc<Version>>,
    verdict: Verdict,
    policy: PhantomData<&'p Policy>,
}

/// The entry that decides among `entries` (module docs, "Which limit decides"): on a
/// denial the latest `retry_after`, on an admission the fewest `remaining` then the
/// longest `reset_after`; ties go to the first.
fn pick(entries: &[Entry]) -> Option<usize> {
    let denied = entries.iter().any(|e| !e.state.allowed);
    let mut best: Option<(usize, &Decision)> = None;
    for (index, entry) in entries.iter().enumerate() {
        let state = &entry.state;
        if denied && state.allowed {
            continue;
        }
        let better = best.is_none_or(|(_, b)| {
            if denied {
                state.retry_after > b.retry_after
            } else {
                (core::cmp::Reverse(state.remaining), state.reset_after)
                    > (core::cmp::Reverse(b.remaining), b.reset_after)
            }
        });
        if better {
            best = Some((index, state));
        }
    }
    best.map(|(index, _)| index)
}

impl Verdict {
    /// A verdict on a request no limit applies to, until the check finds some.
    #[cfg(feature = "redis-tokio")]
    pub(super) const fn new() -> Self {
        let mut verdict = Self::blank();
        verdict.decision = UNLIMITED;
        verdict
    }

    /// A verdict whose decision is still to be written: a check writes it first thing
    /// (the general path) or last (one limit). Its fields are zeros, which need no
    /// constant read from memory as the unlimited decision does, on every check.
    pub(super) const fn blank() -> Self {
        Self {
            decision: Decision::EMPTY,
            entries: ArrayVec::new_const(),
            real: 0,
            deciding: None,
            shadow_deciding: None,
            exempted_by: None,
            #[cfg(feature = "redis")]
            fault: None,
        }
    }

    /// The verdict on a request no limit applies to, until the check finds some.
    pub(super) fn unlimited(&mut self) {
        self.decision = UNLIMITED;
    }

    /// A request the policy cannot account for (see `MetList`'s overflow): refused, with
    /// nothing consumed.
    pub(super) fn refuse(&mut self) {
        self.decision = Decision::EMPTY;
    }

    /// The id of the limit that decided, if any real limit applied.
    pub(super) fn deciding_limit(&self) -> Option<usize> {
        self.entries.get(self.deciding?).map(|e| e.limit)
    }

    pub(super) fn exempt(&mut self, rule: usize) {
        self.exempted_by = Some(rule);
    }

    /// Appends the entries of `met`'s limits: keyed groups' states from `states` in
    /// order; a group without a key denies as its `on_missing = "deny"` says.
    fn append(&mut self, compiled: &Compiled, met: &MetList<'_>, states: &[Decision]) {
        let start = self.entries.len();
        let mut next = 0;
        for m in met.iter() {
            for (index, &id) in m.group.ids.iter().enumerate() {
                if m.exempt(index) {
                    continue;
                }
                let meta = compiled.limits.get(id);
                let state = match m.key {
                    Some(_) => {
                        next += 1;
                        states.get(next - 1).copied().unwrap_or(Decision::EMPTY)
                    }
                    None => {
                        let period = meta.map_or(0, |m| m.quota.period());
                        Decision {
                            allowed: false,
                            limit: meta.map_or(0, |m| m.capacity()),
                            remaining: 0,
                            reset_after: period,
                            retry_after: period,
                        }
                    }
                };
                // At most MAX_LIMITS limits met (`MetList`): a push never fails.
                let _ = self.entries.try_push(Entry {
                    limit: id,
                    state,
                    missing: m.key.is_none(),
                });
            }
        }
        // Groups gather a rule's limits by key, which can reorder them: back to policy
        // order (limit ids), which entries and "Which limit decides" are defined in.
        if let Some(appended) = self.entries.get_mut(start..) {
            if !appended.is_sorted_by_key(|e| e.limit) {
                appended.sort_unstable_by_key(|e| e.limit);
            }
        }
    }

    /// The real limits' entries and the combined decision.
    pub(super) fn set_real(
        &mut self,
        compiled: &Compiled,
        met: &MetList<'_>,
        states: &[Decision],
        answer: Answer,
    ) {
        self.append(compiled, met, states);
        self.real = self.entries.len();
        let real = self.entries.get(..self.real).unwrap_or(&[]);
        self.deciding = pick(real);
        if let Some(index) = self.deciding {
            self.decision = real.get(index).map_or(UNLIMITED, |e| e.state);
        }
        #[cfg(feature = "redis")]
        if let Some((fault, decision)) = answer.fault {
            self.fault = Some(fault);
            self.decision = decision;
        }
        let _ = answer;
    }

    /// The entry of a policy's only limit (`lone`), `id`, and the decision: what
    /// [`set_real`](Self::set_real) records for one keyed limit.
    pub(super) fn set_lone(&mut self, id: usize, state: Decision) {
        self.entries.clear();
        // Empty: the push cannot fail.
        let _ = self.entries.try_push(Entry {
            limit: id,
            state,
            missing: false,
        });
        self.real = 1;
        self.deciding = Some(0);
        self.decision = state;
    }

    /// The shadow limits' entries.
    pub(super) fn set_shadow(
        &mut self,
        compiled: &Compiled,
        met: &MetList<'_>,
        states: &[Decision],
    ) {
        self.append(compiled, met, states);
        let shadow = self.entries.get(self.real..).unwrap_or(&[]);
        self.shadow_deciding = pick(shadow)
            .filter(|&i| shadow.get(i).is_some_and(|e| !e.state.allowed))
            .map(|i| i + self.real);
    }

    pub(super) fn all_entries(&self) -> &[Entry] {
        &self.entries
    }

    pub(super) const fn allowed(&self) -> bool {
        self.decision.allowed
    }
}

impl PolicyDecision<'_> {
    /// The version and the verdict, to fill the verdict in place.
    pub(super) fn parts_mut(&mut self) -> (&Version, &mut Verdict) {
        (&self.compiled, &mut self.verdict)
    }

    pub(super) fn new(compiled: arc_swap::Guard<Arc<Version>>, verdict: Verdict) -> Self {
        Self {
            compiled,
            verdict,
            policy: PhantomData,
        }
    }

    /// Whether the request is admitted.
    #[must_use]
    pub const fn allowed(&self) -> bool {
        self.verdict.decision.allowed
    }

    /// Why the Redis backend could not decide (the failure mode answered instead), if
    /// so.
    #[cfg(feature = "redis")]
    #[must_use]
    pub const fn fault(&self) -> Option<crate::redis_backend::Fault> {
        self.verdict.fault
    }

    /// Whether any real limit applied (false: unlimited, no headers).
    #[must_use]
    pub const fn limited(&self) -> bool {
        self.verdict.real > 0
    }

    /// The combined decision (the deciding limit's).
    pub const fn decision(&self) -> &Decision {
        &self.verdict.decision
    }

    /// The HTTP status to answer with on denial: the policy's configured status
    /// (default 429).
    #[must_use]
    pub fn denial_status(&self) -> u16 {
        self.compiled.response.status
    }

    fn entry_ref(&self, entry: &Entry) -> Option<(LimitRef<'_>, Decision)> {
        Some((self.compiled.limit_ref(entry.limit)?, entry.state))
    }

    /// Every applicable real limit and its state, in policy order.
    pub fn entries(&self) -> impl Iterator<Item = (LimitRef<'_>, Decision)> + '_ {
        self.listed(0..self.verdict.real)
    }

    /// Every applicable shadow limit and its state (`allowed == false`: it would have
    /// denied), in policy order.
    pub fn shadow_entries(&self) -> impl Iterator<Item = (LimitRef<'_>, Decision)> + '_ {
        self.listed(self.verdict.real..self.verdict.entries.len())
    }

    /// The entries at `range` (the real ones come first, then the shadow ones).
    fn listed(
        &self,
        range: core::ops::Range<usize>,
    ) -> impl Iterator<Item = (LimitRef<'_>, Decision)> + '_ {
        let entries = self.verdict.entries.get(range).unwrap_or_default();
        entries.iter().filter_map(|e| self.entry_ref(e))
    }

    /// The limit that decided, if any real limit applied.
    #[must_use]
    pub fn deciding(&self) -> Option<LimitRef<'_>> {
        let entry = self.verdict.entries.get(self.verdict.deciding?)?;
        self.compiled.limit_ref(entry.limit)
    }

    /// The id of the limit that decided ([`LimitRef::id`]), if any real limit applied:
    /// [`deciding`](Self::deciding) without reading the limit's names.
    #[must_use]
    pub fn deciding_id(&self) -> Option<usize> {
        self.verdict.deciding_limit()
    }

    /// The serial of the compiled policy the decision was taken on: a policy and each
    /// reload of it get one no other compiled policy of the process had, and an
    /// override change keeps it. Limit ids and names are fixed for one serial, so a
    /// cache of names keyed by the serial and a limit's id never reports a renamed or
    /// renumbered limit.
    #[must_use]
    pub fn policy_serial(&self) -> u64 {
        self.compiled.serial
    }

    /// Whether the request was denied because it lacks an attribute a limit keys on
    /// (`on_missing = "deny"`).
    #[must_use]
    pub fn denied_for_missing_key(&self) -> bool {
        !self.allowed()
            && self
                .verdict
                .deciding
                .and_then(|i| self.verdict.entries.get(i))
                .is_some_and(|e| e.missing)
    }

    /// The shadow limit that would have denied the request (chosen among several as a
    /// real denial is), if any.
    #[must_use]
    pub fn shadow_denied(&self) -> Option<(LimitRef<'_>, Decision)> {
        let entry = self.verdict.entries.get(self.verdict.shadow_deciding?)?;
        self.entry_ref(entry)
    }

    /// The unlimited rule that exempted the request, if one did.
    #[must_use]
    pub fn exempted_by(&self) -> Option<&str> {
        let rule = self.compiled.spec.get(self.verdict.exempted_by?)?;
        Some(&rule.name)
    }

    /// Renders the policy's rate-limit headers (nothing when no real limit applied).
    ///
    /// # Errors
    /// [`BufferTooSmall`] with the length needed.
    pub fn render_headers(
        &self,
        unix_now_nanos: u64,
        out: &mut [u8],
    ) -> Result<usize, BufferTooSmall> {
        if !self.limited() {
            return Ok(0);
        }
        self.with_header_input(unix_now_nanos, |style, input| {
            http::render_headers(style, input, out)
        })
    }

    /// The same headers as [`render_headers`](Self::render_headers), as values described
    /// one by one ([`http::render_header_values`]): for a caller that adds headers one at
    /// a time. Returns how many there are (none when no real limit applied).
    ///
    /// # Errors
    /// [`BufferTooSmall`] with the length needed.
    pub fn render_header_values(
        &self,
        unix_now_nanos: u64,
        out: &mut [u8],
        values: &mut [http::HeaderValue; http::MAX_HEADER_VALUES],
    ) -> Result<usize, BufferTooSmall> {
        if !self.limited() {
            return Ok(0);
        }
        self.with_header_input(unix_now_nanos, |style, input| {
            http::render_header_values(style, input, out, values)
        })
    }

    /// Runs `render` on the renderers' view of this decision: the combined decision and,
    /// for the IETF fields, every applicable quota.
    #[inline]
    fn with_header_input<R>(
        &self,
        unix_now_nanos: u64,
        render: impl FnOnce(http::HeaderStyle, &HeaderInput<'_>) -> R,
    ) -> R {
        let style = self.compiled.response.headers;
        if style != http::HeaderStyle::Ietf {
            // Only the IETF fields list every quota; the other styles report the combined
            // decision alone.
            let input = HeaderInput {
                decision: self.verdict.decision,
                quotas: &[],
                unix_now_nanos,
            };
            return render(style, &input);
        }
        self.with_ietf_input(unix_now_nanos, |input| render(style, input))
    }

    /// [`with_header_input`](Self::with_header_input) for the IETF fields, which list
    /// every quota. Out of line: the list of reports (about a kilobyte) would otherwise
    /// be in the frame of every style's rendering, and push its stack deeper.
    #[inline(never)]
    fn with_ietf_input<R>(&self, unix: u64, render: impl FnOnce(&HeaderInput<'_>) -> R) -> R {
        let mut reports = [QuotaReport {
            name: "",
            period: 1,
            decision: Decision::EMPTY,
        }; MAX_LIMITS];
        let mut len = 0;
        for (report, (limit, decision)) in reports.iter_mut().zip(self.entries()) {
            *report = QuotaReport {
                name: limit.name,
                period: limit.period,
                decision,
            };
            len += 1;
        }
        let input = HeaderInput {
            decision: self.verdict.decision,
            quotas: reports.get(..len).unwrap_or(&[]),
            unix_now_nanos: unix,
        };
        render(&input)
    }

    /// The header vocabulary the decision's headers are rendered in.
    #[must_use]
    pub fn header_style(&self) -> http::HeaderStyle {
        self.compiled.response.headers
    }

    /// The `Content-Type` of the 429 body.
    #[must_use]
    pub fn content_type(&self) -> &'static str {
        self.body_style().content_type()
    }

    /// Renders the 429 body (call on denial).
    ///
    /// # Errors
    /// [`BufferTooSmall`] with the length needed.
    pub fn render_body(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let period = self.deciding().map_or(0, |l| l.period);
        http::render_body(&self.body_style(), &self.verdict.decision, period, out)
    }

    fn body_style(&self) -> BodyStyle<'_> {
        match &self.compiled.response.body {
            Body::ProblemJson { type_uri, title } => BodyStyle::ProblemJson {
                type_uri,
                title,
                status: self.compiled.response.status,
            },
            Body::PlainText => BodyStyle::PlainText {
                subject: self.deciding().map_or("API", |l| l.description),
            },
        }
    }
}
