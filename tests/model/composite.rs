//! Several limits at once, naively: peek them all; apply all only if all admit.

use core::cmp::Reverse;

use ratecore::{CheckError, Decision, LimitSpec};

use super::{AnyModel, Model, QuotaParams};

/// Reference composite: all limits admit, or nothing changes anywhere.
#[derive(Clone, Debug)]
pub struct CompositeModel {
    /// The limits, in order.
    pub limits: Vec<AnyModel>,
}

/// A composite's verdict: the reported decision and each limit's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompositeOutcome {
    /// The combined decision.
    pub decision: Decision,
    /// Entry `i`: limit `i`'s state as documented for `check_each`/`peek_each`.
    pub states: Vec<Decision>,
}

/// The most restrictive decision: among denials the largest `retry_after` (then the
/// fewest `remaining`); among admissions the fewest `remaining` (then the longest
/// `reset_after`). Remaining ties go to the earliest limit.
pub fn most_restrictive(decisions: &[Decision]) -> Decision {
    let mut denied = decisions.iter().filter(|d| !d.allowed).peekable();
    if denied.peek().is_some() {
        let mut best = *denied.next().unwrap();
        for d in denied {
            if (d.retry_after, Reverse(d.remaining)) > (best.retry_after, Reverse(best.remaining)) {
                best = *d;
            }
        }
        best
    } else {
        let mut best = decisions[0];
        for d in &decisions[1..] {
            if (Reverse(d.remaining), d.reset_after) > (Reverse(best.remaining), best.reset_after) {
                best = *d;
            }
        }
        best
    }
}

impl CompositeModel {
    /// A composite of `limits` (at least one).
    pub fn new(limits: Vec<AnyModel>) -> Self {
        assert!(!limits.is_empty());
        Self { limits }
    }

    /// The models of a table's limits, in order: what the table keeps for each key.
    pub fn of_specs(limits: &[LimitSpec]) -> Self {
        let model = |s: &LimitSpec| AnyModel::new(s.algorithm, QuotaParams::of(&s.quota));
        Self::new(
            limits
                .iter()
                .map(|s| model(s).expect("a valid spec"))
                .collect(),
        )
    }

    /// The decision a new key of a table of `limits` gets for one check of `cost` at
    /// `now`: a fresh model's.
    pub fn fresh_check(limits: &[LimitSpec], now: u64, cost: u64) -> Decision {
        Self::of_specs(limits)
            .run(now, cost, true)
            .expect("a cost the limits fit")
            .decision
    }

    /// The decision a peek of `cost` at `now` gets, as a plain [`Decision`].
    pub fn peek_decision(&self, now: u64, cost: u64) -> Decision {
        self.clone()
            .run(now, cost, false)
            .expect("a cost the limits fit")
            .decision
    }

    /// The limits whose capacity `cost` exceeds: any of their errors is acceptable.
    pub fn cost_errors(&self, cost: u64) -> Vec<CheckError> {
        self.limits
            .iter()
            .filter(|l| cost > l.capacity())
            .map(|l| CheckError::CostExceedsLimit {
                cost,
                limit: l.capacity(),
            })
            .collect()
    }

    /// One request; `commit` = check (consume if all admit), else peek.
    pub fn run(
        &mut self,
        now: u64,
        cost: u64,
        commit: bool,
    ) -> Result<CompositeOutcome, Vec<CheckError>> {
        let errors = self.cost_errors(cost);
        if !errors.is_empty() {
            return Err(errors);
        }
        let alone: Vec<Decision> = self
            .limits
            .iter()
            .map(|l| l.peek(now, cost).unwrap())
            .collect();
        let decision = most_restrictive(&alone);
        if alone.iter().all(|d| d.allowed) {
            if commit {
                for (limit, expected) in self.limits.iter_mut().zip(&alone) {
                    let got = limit.check(now, cost).unwrap();
                    assert_eq!(got, *expected, "model bug: check differs from peek");
                }
            }
            Ok(CompositeOutcome {
                decision,
                states: alone,
            })
        } else {
            // Nothing consumed: each limit's current state; a limit that alone would have
            // admitted shows its state as a cost-0 look, a denying one its own denial.
            let states = self
                .limits
                .iter()
                .zip(&alone)
                .map(|(l, d)| {
                    if d.allowed {
                        l.peek(now, 0).unwrap()
                    } else {
                        *d
                    }
                })
                .collect();
            Ok(CompositeOutcome { decision, states })
        }
    }
}
