//! `algorithms`: every limiter, driven sequentially, against the naive reference models.
//!
//! An input is 1 to 3 arbitrary quotas (limit, period, burst, algorithm) and a sequence
//! of operations (a time step — forward, backward, to a window boundary, near
//! `u64::MAX` — a cost — 0, 1, the capacity, above it, anything — and check or peek).
//! - quota construction must succeed or fail exactly as the model's validity rules say;
//! - each limiter's constructor must fail exactly when (and as) the model's does;
//! - one quota: `Limiter`, the algorithm's own type (and, for the strict window, a ring
//!   over caller storage) must return the model's `Result<Decision, CheckError>`, field
//!   by field, at every step;
//! - two or three quotas: `Composite::check_each` / `peek_each` must return the
//!   composite model's decision and per-limit states (and leave extra entries alone).
//!
//! Nothing may panic (the fuzz build has overflow checks on).

use std::fmt;

use arbitrary::Arbitrary;
use ratecore::{
    Algorithm, CheckError, Composite, Decision, FixedWindow, Gcra, Limiter, QuotaError,
    RateLimiter, SlidingWindowApprox, SlidingWindowStrict, Slot,
};

use crate::gen::{moduli_of, Cost, Num, QuotaSpec, ResolvedQuota, Step};
use crate::model::{expected_quota, AnyModel, CompositeModel, Model, QuotaParams};

/// At most this many operations run per input.
pub const MAX_OPS: usize = 400;

/// What one operation does.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `check`.
    Check,
    /// `peek`.
    Peek,
    /// `check_each` (composites; `check` otherwise).
    CheckEach,
    /// `peek_each` (composites; `peek` otherwise).
    PeekEach,
}

impl Kind {
    fn commits(self) -> bool {
        matches!(self, Self::Check | Self::CheckEach)
    }
}

/// One operation.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op {
    /// How time moves first.
    pub step: Step,
    /// The cost.
    pub cost: Cost,
    /// What is called.
    pub kind: Kind,
}

/// A fuzz input: quotas and operations.
#[derive(Arbitrary, Clone, PartialEq, Eq)]
pub struct Case {
    /// The first 1 to 3 are used (none: nothing happens).
    pub quotas: Vec<QuotaSpec>,
    /// The first `now`.
    pub start: Num,
    /// The operations (the first [`MAX_OPS`]).
    pub ops: Vec<Op>,
}

/// One resolved call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    /// `now`.
    pub now: u64,
    /// `cost`.
    pub cost: u64,
    /// What is called.
    pub kind: Kind,
}

/// A case with every number resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// The quotas.
    pub quotas: Vec<ResolvedQuota>,
    /// The calls.
    pub calls: Vec<Call>,
}

fn capacity_of(q: &ResolvedQuota) -> u64 {
    match q.algorithm {
        Algorithm::Gcra => q.burst.unwrap_or(q.limit),
        _ => q.limit,
    }
}

impl Case {
    /// The concrete quotas and calls.
    #[must_use]
    pub fn resolve(&self) -> Program {
        let quotas: Vec<ResolvedQuota> = self.quotas.iter().take(3).map(|q| q.resolve(0)).collect();
        let moduli: Vec<u64> = quotas.iter().flat_map(moduli_of).collect();
        let capacity = quotas.iter().map(capacity_of).min().unwrap_or(1);
        let mut now = self.start.get();
        let calls = self
            .ops
            .iter()
            .take(MAX_OPS)
            .map(|op| {
                now = op.step.apply(now, &moduli);
                Call {
                    now,
                    cost: op.cost.get(capacity),
                    kind: op.kind,
                }
            })
            .collect();
        Program { quotas, calls }
    }
}

/// The params the model is built from, once the quota is known to be valid.
fn params(q: &ResolvedQuota) -> Result<QuotaParams, QuotaError> {
    let expected = expected_quota(q.limit, q.period, q.burst);
    let actual = q.quota();
    match (&expected, &actual) {
        (Ok(e), Ok(a)) => assert_eq!(
            (a.limit(), a.period(), a.burst()),
            (e.limit, e.period, e.burst),
            "quota fields differ for {q:?}"
        ),
        (Err(e), Err(a)) => assert_eq!(e, a, "quota errors differ for {q:?}"),
        _ => panic!("quota validity differs for {q:?}: model {expected:?}, ratecore {actual:?}"),
    }
    expected
}

/// The algorithm's own limiter type behind the trait, plus (strict window) one over
/// caller storage.
fn direct(q: &ResolvedQuota) -> Result<Vec<Box<dyn RateLimiter>>, QuotaError> {
    let quota = q.quota()?;
    Ok(match q.algorithm {
        Algorithm::Gcra => vec![Box::new(Gcra::new(quota))],
        Algorithm::FixedWindow => vec![Box::new(FixedWindow::new(quota)?)],
        Algorithm::SlidingWindowApprox => vec![Box::new(SlidingWindowApprox::new(quota)?)],
        Algorithm::SlidingWindowStrict { sub_windows } => {
            let boxed = SlidingWindowStrict::new(quota, sub_windows)?;
            let len = boxed.config().slot_count();
            let storage: Vec<Slot> = (0..len).map(|_| Slot::new()).collect();
            let stored = SlidingWindowStrict::with_storage(quota, sub_windows, storage)?;
            // A ring of the wrong length is a typed error, never a panic later.
            let short: Vec<Slot> = (0..len - 1).map(|_| Slot::new()).collect();
            assert_eq!(
                SlidingWindowStrict::with_storage(quota, sub_windows, short).err(),
                Some(QuotaError::StorageLength {
                    expected: len,
                    actual: len - 1
                })
            );
            vec![Box::new(boxed), Box::new(stored)]
        }
    })
}

/// What every decision must satisfy whatever the model says.
pub fn sane(d: &Decision) {
    if d.allowed {
        assert_eq!(d.retry_after, 0, "allowed with a retry_after: {d:?}");
    } else {
        assert!(d.retry_after > 0, "denied with retry_after 0: {d:?}");
    }
    assert!(d.remaining <= d.limit, "remaining above limit: {d:?}");
}

/// Runs one input.
pub fn run(case: &Case) {
    let program = case.resolve();
    if program.quotas.is_empty() {
        return;
    }
    let mut models = Vec::new();
    let mut limiters = Vec::new();
    let mut directs = Vec::new();
    for q in &program.quotas {
        let Ok(p) = params(q) else {
            return;
        };
        let model = AnyModel::new(q.algorithm, p);
        let quota = q.quota().expect("validated above");
        let limiter = Limiter::new(q.algorithm, quota);
        let own = direct(q);
        match (&model, &limiter, &own) {
            (Ok(_), Ok(_), Ok(_)) => {}
            (Err(m), Err(l), Err(d)) => {
                assert_eq!(m, l, "constructor errors differ for {q:?}");
                assert_eq!(m, d, "constructor errors differ for {q:?}");
                return;
            }
            _ => panic!(
                "constructor validity differs for {q:?}: model {:?}, Limiter {:?}, own type {:?}",
                model.as_ref().err(),
                limiter.as_ref().err(),
                own.as_ref().err()
            ),
        }
        models.push(model.expect("checked"));
        limiters.push(limiter.expect("checked"));
        directs.push(own.expect("checked"));
    }
    if models.len() == 1 {
        let mut model = models.pop().expect("one");
        let limiter = limiters.pop().expect("one");
        let own = directs.pop().expect("one");
        for call in &program.calls {
            let want = if call.kind.commits() {
                model.check(call.now, call.cost)
            } else {
                model.peek(call.now, call.cost)
            };
            let impls =
                std::iter::once(&limiter as &dyn RateLimiter).chain(own.iter().map(|b| &**b));
            for (index, imp) in impls.enumerate() {
                let got = if call.kind.commits() {
                    imp.check(call.now, call.cost)
                } else {
                    imp.peek(call.now, call.cost)
                };
                assert_eq!(
                    got, want,
                    "implementation {index} differs from the model at {call:?}"
                );
            }
            if let Ok(d) = &want {
                sane(d);
            }
        }
    } else {
        let n = models.len();
        let mut model = CompositeModel::new(models);
        let composite = Composite::new(limiters).expect("1 to 3 limits");
        let sentinel = Decision {
            allowed: true,
            limit: 0xdead,
            remaining: 0xbeef,
            reset_after: 1,
            retry_after: 2,
        };
        for call in &program.calls {
            let want = model.run(call.now, call.cost, call.kind.commits());
            let mut states = [sentinel; 4];
            let got = match call.kind {
                Kind::Check => composite.check(call.now, call.cost),
                Kind::Peek => composite.peek(call.now, call.cost),
                Kind::CheckEach => composite.check_each(call.now, call.cost, &mut states),
                Kind::PeekEach => composite.peek_each(call.now, call.cost, &mut states),
            };
            match (&got, &want) {
                (Ok(d), Ok(outcome)) => {
                    assert_eq!(
                        *d, outcome.decision,
                        "composite decision differs at {call:?}"
                    );
                    sane(d);
                    if matches!(call.kind, Kind::CheckEach | Kind::PeekEach) {
                        assert_eq!(
                            &states[..n],
                            &outcome.states[..],
                            "states differ at {call:?}"
                        );
                    }
                }
                (Err(e), Err(acceptable)) => assert!(
                    acceptable.contains(e),
                    "composite error {e:?} not among {acceptable:?} at {call:?}"
                ),
                _ => panic!("composite result {got:?}, model {want:?} at {call:?}"),
            }
            assert!(
                states[n..].iter().all(|s| *s == sentinel),
                "entries beyond the limits were written"
            );
        }
    }
}

fn algorithm_expr(a: Algorithm) -> String {
    format!("Algorithm::{a:?}")
}

fn result_expr(r: &Result<Decision, CheckError>) -> String {
    match r {
        Ok(d) => format!("Ok({d:?})"),
        Err(e) => format!("Err(CheckError::{e:?})"),
    }
}

impl fmt::Debug for Case {
    /// A reproducer: the ratecore calls this input makes, with what the model expects.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let program = self.resolve();
        writeln!(f, "// fuzz/algorithms reproducer")?;
        let mut models = Vec::new();
        for (i, q) in program.quotas.iter().enumerate() {
            let expected = expected_quota(q.limit, q.period, q.burst);
            writeln!(f, "let quota{i} = {}; // model: {expected:?}", q.expr())?;
            let Ok(p) = expected else { return Ok(()) };
            let model = AnyModel::new(q.algorithm, p);
            writeln!(
                f,
                "let limiter{i} = Limiter::new({}, quota{i}.unwrap()); // model: {:?}",
                algorithm_expr(q.algorithm),
                model.as_ref().err()
            )?;
            let Ok(model) = model else { return Ok(()) };
            models.push(model);
        }
        if models.is_empty() {
            return Ok(());
        }
        if models.len() == 1 {
            let mut model = models.pop().expect("one");
            writeln!(f, "let limiter = limiter0.unwrap();")?;
            for call in &program.calls {
                let (name, want) = if call.kind.commits() {
                    ("check", model.check(call.now, call.cost))
                } else {
                    ("peek", model.peek(call.now, call.cost))
                };
                writeln!(
                    f,
                    "assert_eq!(limiter.{name}({}, {}), {});",
                    call.now,
                    call.cost,
                    result_expr(&want)
                )?;
            }
            return Ok(());
        }
        let n = models.len();
        let names: Vec<String> = (0..n).map(|i| format!("limiter{i}.unwrap()")).collect();
        writeln!(
            f,
            "let limiter = Composite::new(vec![{}]).unwrap();",
            names.join(", ")
        )?;
        writeln!(f, "let mut states = [Decision::EMPTY; {n}];")?;
        let mut model = CompositeModel::new(models);
        for call in &program.calls {
            let want = model.run(call.now, call.cost, call.kind.commits());
            let name = match call.kind {
                Kind::Check => "check",
                Kind::Peek => "peek",
                Kind::CheckEach => "check_each",
                Kind::PeekEach => "peek_each",
            };
            let states_arg = if matches!(call.kind, Kind::CheckEach | Kind::PeekEach) {
                ", &mut states"
            } else {
                ""
            };
            match &want {
                Ok(o) => {
                    writeln!(
                        f,
                        "assert_eq!(limiter.{name}({}, {}{states_arg}), Ok({:?}));",
                        call.now, call.cost, o.decision
                    )?;
                    if !states_arg.is_empty() {
                        writeln!(f, "assert_eq!(states, {:?});", o.states)?;
                    }
                }
                Err(errors) => writeln!(
                    f,
                    "assert!(limiter.{name}({}, {}{states_arg}).is_err()); // one of {errors:?}",
                    call.now, call.cost
                )?,
            }
        }
        Ok(())
    }
}
