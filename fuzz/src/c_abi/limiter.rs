//! Limiter handles: new, check / peek (each), limit count, free.

use std::ptr;

use ratecore::{Composite, Decision, Limiter, RateLimiter};
use ratecore_ffi::{
    ratecore_limiter, ratecore_limiter_check, ratecore_limiter_check_each, ratecore_limiter_free,
    ratecore_limiter_limit_count, ratecore_limiter_new, ratecore_limiter_peek,
    ratecore_limiter_peek_each, ratecore_quota,
};

use super::args::{spec_of, RawQuota, SliceArg};
use super::call::Call;
use super::{
    assert_decided, free_call, handle_arg, judge_decision, out_ptr, slice_ptr, states_arg, Arena,
    Faults, LimiterHandle, LimiterMirror, S, SENTINEL,
};

/// Makes one limiter call and checks it against the Rust API.
#[allow(clippy::too_many_lines)]
pub(super) fn step(arena: &mut Arena, call: &Call) {
    match call {
        Call::LimiterNew { quotas, arg, out } => {
            let mut buf: Vec<ratecore_quota> = quotas.iter().take(20).map(RawQuota::c).collect();
            let given = buf.clone();
            buf.push(ratecore_quota::default());
            let (qp, qlen) = slice_ptr(&mut buf, *arg);
            let mut slot = [ptr::dangling_mut::<ratecore_limiter>(); 2];
            let op = out_ptr(&mut slot, *out);
            // SAFETY: every pointer is NULL, misaligned inside a live buffer, or valid for
            // the length passed (a huge length is rejected before any read).
            let status = unsafe { ratecore_limiter_new(qp, qlen, op) };
            let mut faults = Faults::default();
            faults.out(*out);
            if given.len() <= 16 || *arg != SliceArg::Exact {
                faults.slice(*arg, qlen, 8);
            }
            if !faults.0.is_empty() && qlen > 16 {
                // Too many quotas may be reported before the pointer is looked at.
                faults.0.push(S::TooManyLimits);
            }
            let fine = faults.judge(status, "limiter_new");
            let written = slot[0] != ptr::dangling_mut() || slot[1] != ptr::dangling_mut();
            if !fine || status != S::Ok {
                assert!(
                    !written,
                    "limiter_new wrote its output with status {status:?}"
                );
            }
            if !fine {
                return;
            }
            let quotas: &[ratecore_quota] = if *arg == SliceArg::NullEmpty {
                &[]
            } else {
                &given
            };
            let expected: Result<LimiterMirror, S> = (|| {
                if quotas.len() > 16 {
                    return Err(S::TooManyLimits);
                }
                if quotas.is_empty() {
                    return Err(S::NoLimits);
                }
                let mut limiters = Vec::new();
                for q in quotas {
                    let spec = spec_of(q)?;
                    limiters.push(Limiter::new(spec.algorithm, spec.quota)?);
                }
                Ok(if limiters.len() == 1 {
                    LimiterMirror::Single(limiters.pop().expect("one"))
                } else {
                    LimiterMirror::Composite(Composite::new(limiters)?)
                })
            })();
            match expected {
                Ok(mirror) => {
                    assert_eq!(status, S::Ok, "limiter_new for {quotas:?}");
                    arena.limiters.push(LimiterHandle {
                        ptr: slot[0],
                        mirror,
                    });
                }
                Err(e) => assert_eq!(status, e, "limiter_new for {quotas:?}"),
            }
        }
        Call::LimiterDecide { decide } => {
            let (now, cost) = (decide.now.get(), decide.cost.get());
            let (target, hp, mut faults) = handle_arg(&arena.limiters, decide.handle, |h| h.ptr);
            faults.out(decide.out);
            let mut slot = [SENTINEL; 2];
            let op = out_ptr(&mut slot, decide.out);
            let (status, states) = match &decide.each {
                None => {
                    // SAFETY: handle live (or NULL / misaligned), output valid or faulty.
                    let status = unsafe {
                        if decide.commit {
                            ratecore_limiter_check(hp, now, cost, op)
                        } else {
                            ratecore_limiter_peek(hp, now, cost, op)
                        }
                    };
                    (status, None)
                }
                Some((len, sarg)) => {
                    let (states, sp, slen, effective) = states_arg(*len, *sarg, &mut faults);
                    // SAFETY: as above; the states buffer is valid for `slen` or faulty.
                    let status = unsafe {
                        if decide.commit {
                            ratecore_limiter_check_each(hp, now, cost, sp, slen, op)
                        } else {
                            ratecore_limiter_peek_each(hp, now, cost, sp, slen, op)
                        }
                    };
                    (status, Some((states, effective)))
                }
            };
            if !judge_decision(&faults, status, "limiter_decide", &slot, states.as_ref()) {
                return;
            }
            let (_, h) = target.expect("no faults: a live handle");
            let count = h.mirror.count();
            if let Some((_, len)) = &states {
                if *len < count {
                    assert_eq!(status, S::BufferTooSmall);
                    return;
                }
            }
            let mut each_states = vec![Decision::EMPTY; count];
            let expected = match (&h.mirror, decide.commit) {
                (LimiterMirror::Single(l), true) => {
                    l.check(now, cost).inspect(|d| each_states[0] = *d)
                }
                (LimiterMirror::Single(l), false) => {
                    l.peek(now, cost).inspect(|d| each_states[0] = *d)
                }
                (LimiterMirror::Composite(c), true) => c.check_each(now, cost, &mut each_states),
                (LimiterMirror::Composite(c), false) => c.peek_each(now, cost, &mut each_states),
            };
            match expected {
                Ok(d) => match states {
                    Some((states, len)) => {
                        let written = (slot[0], &states[..count]);
                        assert_decided("limiter", status, written, (d, &each_states));
                        assert!(states[count..].iter().all(|d| *d == SENTINEL));
                        assert!(len >= count);
                    }
                    None => assert_decided("limiter", status, (slot[0], &[]), (d, &[])),
                },
                Err(e) => assert_eq!(status, S::from(e)),
            }
        }
        Call::LimiterCount { handle, out } => {
            let (target, hp, mut faults) = handle_arg(&arena.limiters, *handle, |h| h.ptr);
            let mut slot = [usize::MAX; 2];
            let op = out_ptr(&mut slot, *out);
            // SAFETY: handle live (or NULL / misaligned), output valid or faulty.
            let status = unsafe { ratecore_limiter_limit_count(hp, op) };
            faults.out(*out);
            if faults.judge(status, "limiter_limit_count") {
                assert_eq!(status, S::Ok);
                assert_eq!(slot[0], target.expect("live").1.mirror.count());
            } else {
                assert_eq!(slot, [usize::MAX; 2]);
            }
        }
        Call::LimiterFree { handle } => free_call(
            &mut arena.limiters,
            *handle,
            |h| h.ptr,
            ratecore_limiter_free,
        ),
        _ => unreachable!("not a limiter call: {call:?}"),
    }
}
