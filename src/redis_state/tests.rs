//! The stored state's unit tests: layouts, the script's arguments, `apply` and the digest.

use super::*;
use crate::{FixedWindow, RateLimiter, SlidingWindowApprox};

#[test]
fn layouts_match_the_window_configs() {
    // The backend rebuilds packed words with its own copy of the layout: a word it
    // packs must mean the same to the crate's evaluate as the original state.
    for (limit, period) in [
        (1, 1 << 20),
        (5, 10_000),
        (1000, 3_600_000_000_000),
        (3, u64::MAX),
    ] {
        let quota = Quota::new(limit, period).unwrap();
        for algorithm in [Algorithm::FixedWindow, Algorithm::SlidingWindowApprox] {
            let spec = Spec::new(algorithm, &quota).unwrap();
            let in_process: Box<dyn RateLimiter> = match algorithm {
                Algorithm::FixedWindow => Box::new(FixedWindow::new(quota).unwrap()),
                _ => Box::new(SlidingWindowApprox::new(quota).unwrap()),
            };
            let now = period.saturating_mul(7).saturating_add(period / 3);
            let d = in_process.check(now, 1).unwrap();
            // The state after one admission, in our stored form, replayed.
            let start = now / period * period;
            let mut bytes = start.to_be_bytes().to_vec();
            if algorithm == Algorithm::SlidingWindowApprox {
                bytes.extend_from_slice(&0u64.to_be_bytes());
            }
            bytes.extend_from_slice(&1u64.to_be_bytes());
            let replica = spec.replica(&bytes).unwrap();
            assert_eq!(
                replica.peek(now, 0).unwrap(),
                in_process.peek(now, 0).unwrap()
            );
            assert!(d.allowed);
        }
    }
}

#[cfg(feature = "redis")]
#[test]
fn gcra_args_fold_overflow_into_max_base() {
    let quota = Quota::new(10, 100).unwrap();
    let spec = Spec::new(Algorithm::Gcra, &quota).unwrap();
    let mut args = Vec::new();
    spec.push_args(u64::MAX - 5, 1, &mut args);
    // inc = 10, max_base = MAX − 10 (now + τ − inc would overflow).
    assert_eq!(args, [1, 0, 10, 0xffff_ffff, 0xffff_fff5]);
}

/// A strict window of 4 sub-windows and a GCRA, both 3 per 4 000 ns.
fn strict_and_gcra() -> (StoredLimit, StoredLimit) {
    let quota = Quota::new(3, 4_000).unwrap();
    (
        StoredLimit::new(Algorithm::SlidingWindowStrict { sub_windows: 4 }, &quota).unwrap(),
        StoredLimit::new(Algorithm::Gcra, &quota).unwrap(),
    )
}

/// A charge of 1 at 2 500 ns on fresh keys.
fn first_charge(limits: &[StoredLimit], min_ttl_ms: u64) -> (Decision, Outcomes) {
    let mut out = Outcomes::new();
    let olds: Vec<&[u8]> = limits.iter().map(|_| &b""[..]).collect();
    let d = apply(limits, &olds, 2_500, 1, Mode::Charge, min_ttl_ms, &mut out).unwrap();
    (d, out)
}

#[test]
fn apply_writes_what_the_script_writes() {
    let (strict, gcra) = strict_and_gcra();
    // now = 2500: sub-window 2 of 1000 ns, slot 2 of 5; an empty strict value grows to
    // three slots, the first two zero (`SETRANGE` pads with zeros).
    let (d, mut out) = first_charge(&[strict, gcra], 7);
    assert!(d.allowed);
    let value = out[0].value(b"").unwrap();
    assert_eq!(value.len(), 36);
    assert!(value[..24].iter().all(|b| *b == 0));
    assert_eq!(&value[24..32], 2_500u64.to_be_bytes());
    assert_eq!(&value[32..], 1u32.to_be_bytes());
    assert_eq!(&out[0].written[..4], 2u32.to_be_bytes());
    assert_eq!(out[0].ttl_ms, 7, "at least the minimum TTL");
    // GCRA: the whole value, the new TAT.
    // (reset_after is the time until the new TAT.)
    let tat = 2_500 + out[1].decision.reset_after;
    assert_eq!(out[1].value(b"").unwrap().as_ref(), tat.to_be_bytes());
    // A peek, a zero cost or a denial writes nothing.
    for (cost, mode) in [(1, Mode::Peek), (0, Mode::Charge)] {
        let d = apply(&[gcra], &[b""], 2_500, cost, mode, 1, &mut out).unwrap();
        assert!(d.allowed);
        assert_eq!(out[0].value(b""), None);
    }
    let full = 9_999u64.to_be_bytes();
    let d = apply(&[gcra], &[&full], 2_500, 1, Mode::Charge, 1, &mut out).unwrap();
    assert!(!d.allowed);
    assert_eq!(out[0].value(&full), None);
    // A foreign value names its key; a cost above the capacity is the in-process error.
    assert_eq!(
        apply(
            &[gcra, gcra],
            &[b"", b"xyz"],
            0,
            1,
            Mode::Charge,
            1,
            &mut out
        ),
        Err(ApplyError::State(1, "GCRA state is not 8 bytes"))
    );
    assert!(matches!(
        apply(&[gcra], &[b""], 0, 4, Mode::Charge, 1, &mut out),
        Err(ApplyError::Cost(CheckError::CostExceedsLimit {
            cost: 4,
            limit: 3
        }))
    ));
}

#[test]
fn digests_tell_every_field_apart() {
    let (strict, gcra) = strict_and_gcra();
    let (d, mut out) = first_charge(&[gcra, strict], 1);
    let base = digest(&d, 2_500, &out);
    assert_eq!(base, digest(&d, 2_500, &out), "deterministic");
    assert_ne!(base, digest(&d, 2_501, &out));
    let mut other = d;
    other.remaining += 1;
    assert_ne!(base, digest(&other, 2_500, &out));
    for change in 0..4 {
        let mut changed = out.clone();
        match change {
            0 => changed[1].ttl_ms += 1,
            1 => changed[1].written[15] ^= 1,
            2 => changed[0].decision.retry_after += 1,
            _ => {
                let shorter = changed[1].written.len() - 1;
                changed[1].written.truncate(shorter);
            }
        }
        assert_ne!(base, digest(&d, 2_500, &changed), "change {change}");
    }
    // The keys' order counts.
    out.swap(0, 1);
    assert_ne!(base, digest(&d, 2_500, &out));
}

#[test]
fn rejects_foreign_layouts() {
    let quota = Quota::new(10, 100_000).unwrap();
    for algorithm in [
        Algorithm::Gcra,
        Algorithm::FixedWindow,
        Algorithm::SlidingWindowApprox,
        Algorithm::SlidingWindowStrict { sub_windows: 2 },
    ] {
        let spec = Spec::new(algorithm, &quota).unwrap();
        assert!(spec.replica(b"hello").is_err(), "{algorithm:?}");
        assert!(spec.replica(b"").is_ok());
    }
}

#[test]
fn written_bytes_are_inline_and_compare_as_slices() {
    let mut written = Written::from([1u8, 2, 3]);
    assert_eq!(&*written, [1, 2, 3]);
    written.truncate(5);
    assert_eq!(written.len(), 3, "never longer");
    written.truncate(1);
    assert_eq!(written, Written::from([1u8]), "equal by their bytes only");
    assert_eq!(alloc::format!("{written:?}"), "[1]");
    assert!(Written::none().is_empty());
    assert_eq!(Written::prefix([7; MAX_WRITTEN], 99).len(), MAX_WRITTEN);
}
