//! Differential tests of the Redis backend: for the same request sequences (caller-supplied
//! time, forward and backward steps, huge jumps, times near `u64::MAX`, costs from 0 to
//! beyond the capacity), the in-process limiters and the Redis backend must return the
//! same `Decision`s field by field — or the same `CheckError` — for every algorithm and
//! for composite quotas; and every write must set the TTL "time until at rest".
//!
//! Needs a real redis-server (`tests/redis/run.sh`); skips with a notice without
//! `RATECORE_REDIS_URL`. Deterministic: proptest runs from fixed seeds.
#![cfg(feature = "redis")]

#[path = "redis/common.rs"]
mod common;
mod support;

use std::time::Duration;

use common::capacity;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use ratecore::redis_backend::{RedisBackend, RedisCheckError, RedisSetupError, RedisStats};
use ratecore::{Algorithm, CheckError, Composite, Decision, Limiter, Quota, RateLimiter};
use redis::Commands;
use support::gen::{advance, run_cases, step, CostSpec, Step, StepMix};

const SECOND: u64 = 1_000_000_000;
const HOUR: u64 = 3_600 * SECOND;

/// `(limit, period, burst)`.
type QuotaParams = (u64, u64, Option<u64>);

/// [`support::gen::quota_params`], each with a burst: mostly none, sometimes small,
/// rarely anything.
fn quota_params() -> impl Strategy<Value = QuotaParams> {
    let burst = prop_oneof![
        4 => Just(None),
        2 => (0..=5u64).prop_map(Some),
        1 => any::<u64>().prop_map(Some),
    ];
    (support::gen::quota_params(), burst).prop_map(|((l, p), b)| (l, p, b))
}

fn algorithm() -> impl Strategy<Value = Algorithm> {
    prop_oneof![
        Just(Algorithm::Gcra),
        Just(Algorithm::FixedWindow),
        Just(Algorithm::SlidingWindowApprox),
        prop_oneof![1..=4u32, 5..=64u32, Just(0u32), Just(5000u32)]
            .prop_map(|sub_windows| Algorithm::SlidingWindowStrict { sub_windows }),
    ]
}

/// How time moves: the single-limiter differential tests' mix, but never `MaxTiny` and
/// never aligned to the limiter's own sub-windows.
const STEPS: StepMix = StepMix {
    align_from: 1,
    max_tiny: 0,
    ..StepMix::BOUNDARIES
};

fn start_time() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => Just(0u64),
        3 => 0..=1_000_000u64,
        // Today's Unix time in ns: beyond 2^53.
        3 => 1_700_000_000_000_000_000..=1_800_000_000_000_000_000u64,
        2 => any::<u64>(),
        1 => (u64::MAX - 1_000_000)..=u64::MAX,
    ]
}

/// A request: how time moves, its cost relative to the capacity, check or peek.
#[derive(Clone, Copy, Debug)]
struct Request {
    step: Step,
    cost: CostSpec,
    peek: bool,
}

fn request() -> impl Strategy<Value = Request> {
    let cost = prop_oneof![
        2 => Just(CostSpec::Zero),
        10 => Just(CostSpec::One),
        4 => any::<u16>().prop_map(CostSpec::Fraction),
        1 => Just(CostSpec::Full),
        1 => any::<u8>().prop_map(CostSpec::Over),
    ];
    (step(STEPS), cost, prop::bool::weighted(0.1)).prop_map(|(step, cost, peek)| Request {
        step,
        cost,
        peek,
    })
}

fn build_quota(limit: u64, period: u64, burst: Option<u64>) -> Option<Quota> {
    let quota = Quota::new(limit, period).ok()?;
    match burst {
        None => Some(quota),
        Some(b) => quota.with_burst(b).ok(),
    }
}

fn redis_result<T>(result: Result<T, RedisCheckError>) -> Result<Result<T, CheckError>, String> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(RedisCheckError::Cost(e)) => Ok(Err(e)),
        Err(e) => Err(format!("Redis backend failed: {e}")),
    }
}

/// `cases` random cases (from `seed`): `limits` (one limit's or a composite's), a start
/// and `requests` requests, each case run by `run` on a backend of the test's own (keys
/// under its name). Returns the backend's statistics afterwards; `None` when no Redis is
/// configured (the test is skipped).
fn run_streams<L: Strategy>(
    test: &str,
    cases: u32,
    seed: u64,
    limits: L,
    requests: std::ops::Range<usize>,
    run: impl Fn(&RedisBackend, L::Value, u64, &[Request], u64) -> Result<(), TestCaseError>,
) -> Option<RedisStats> {
    let backend = common::redis_backend(test, test)?;
    let requests = prop::collection::vec(request(), requests);
    run_cases(
        cases,
        seed,
        (limits, start_time(), requests),
        |(limits, start, requests), case| run(&backend, limits, start, &requests, case),
    );
    Some(backend.stats())
}

fn run_single(
    backend: &RedisBackend,
    (algorithm, (limit, period, burst)): (Algorithm, QuotaParams),
    start: u64,
    requests: &[Request],
    case: u64,
) -> Result<(), TestCaseError> {
    let Some(quota) = build_quota(limit, period, burst) else {
        return Ok(());
    };
    let local = Limiter::new(algorithm, quota);
    let remote = backend.limiter("single", algorithm, quota);
    let (local, remote) = match (local, remote) {
        (Ok(l), Ok(r)) => (l, r),
        (Err(a), Err(RedisSetupError::Quota(b))) => {
            prop_assert_eq!(a, b);
            return Ok(());
        }
        (a, b) => {
            return Err(TestCaseError::fail(format!(
                "construction differs: {a:?} vs {b:?}"
            )))
        }
    };
    let key = format!("case-{case}");
    let cap = capacity(algorithm, &quota);
    let mut now = start;
    for (index, request) in requests.iter().enumerate() {
        now = advance(now, request.step, period, 1);
        let cost = request.cost.resolve(cap);
        let (expected, actual) = if request.peek {
            (
                local.peek(now, cost),
                redis_result(remote.try_peek(key.as_bytes(), now, cost)),
            )
        } else {
            (
                local.check(now, cost),
                redis_result(remote.try_check(key.as_bytes(), now, cost)),
            )
        };
        let actual = actual.map_err(TestCaseError::fail)?;
        prop_assert_eq!(
            expected,
            actual,
            "request {} ({:?}) at now={} cost={} for {:?} {:?}",
            index,
            request,
            now,
            cost,
            algorithm,
            quota
        );
    }
    Ok(())
}

#[test]
fn single_limits_match_in_process() {
    let limits = (algorithm(), quota_params());
    let test = "single_limits_match_in_process";
    let Some(stats) = run_streams(test, 400, 0x5eed_0001, limits, 1..40, run_single) else {
        return;
    };
    assert_eq!(stats.inconsistent, 0, "{stats:?}");
    assert_eq!(stats.checks, stats.decided, "{stats:?}");
    eprintln!("single limits: {stats:?}");
}

/// Every algorithm, many requests, realistic quotas: the long-run streams a proptest
/// case is too short for.
#[test]
fn long_streams_match_in_process() {
    let quota = (1..=50u64, 1_000..=1_000_000u64).prop_map(|(l, p)| (l, p.max(l), None));
    let limits = (algorithm(), quota);
    let test = "long_streams_match_in_process";
    run_streams(test, 12, 0x5eed_0002, limits, 300..400, run_single);
}

fn run_composite(
    backend: &RedisBackend,
    limits: Vec<(Algorithm, QuotaParams)>,
    start: u64,
    requests: &[Request],
    case: u64,
) -> Result<(), TestCaseError> {
    let mut locals = Vec::new();
    let mut remotes = Vec::new();
    for (index, (algorithm, (limit, period, burst))) in limits.iter().enumerate() {
        let Some(quota) = build_quota(*limit, *period, *burst) else {
            return Ok(());
        };
        let (Ok(local), Ok(remote)) = (
            Limiter::new(*algorithm, quota),
            backend.limit(&format!("m{index}"), *algorithm, quota),
        ) else {
            return Ok(());
        };
        locals.push(local);
        remotes.push(remote);
    }
    let unit = limits.iter().map(|(_, (_, p, _))| *p).min().unwrap_or(1);
    let cap = remotes
        .iter()
        .map(|r| capacity(r.algorithm(), r.quota()))
        .min()
        .unwrap_or(1);
    let local = Composite::new(locals).unwrap();
    let remote = backend.composite(remotes).unwrap();
    let key = format!("composite-{case}");
    let mut now = start;
    for (index, request) in requests.iter().enumerate() {
        now = advance(now, request.step, unit, 1);
        let cost = request.cost.resolve(cap);
        let mut expected_states = [Decision::EMPTY; 4];
        let mut actual_states = [Decision::EMPTY; 4];
        let (expected, actual) = if request.peek {
            (
                local.peek_each(now, cost, &mut expected_states),
                redis_result(remote.try_peek_each(key.as_bytes(), now, cost, &mut actual_states)),
            )
        } else {
            (
                local.check_each(now, cost, &mut expected_states),
                redis_result(remote.try_check_each(key.as_bytes(), now, cost, &mut actual_states)),
            )
        };
        let actual = actual.map_err(TestCaseError::fail)?;
        let context = format!("request {index} ({request:?}) at now={now} cost={cost}");
        prop_assert_eq!(expected, actual, "{}", context);
        if expected.is_ok() {
            prop_assert_eq!(expected_states, actual_states, "{}", context);
        }
    }
    Ok(())
}

#[test]
fn composites_match_in_process() {
    let limits = prop::collection::vec((algorithm(), support::gen::valid_quota_params()), 2..=4);
    let test = "composites_match_in_process";
    let Some(stats) = run_streams(test, 250, 0x5eed_0003, limits, 1..40, run_composite) else {
        return;
    };
    assert_eq!(stats.inconsistent, 0, "{stats:?}");
    eprintln!("composites: {stats:?}");
}

/// "5/s and 20/min" style composites with realistic quotas and many requests, so that
/// denials by one limit (which must consume nothing from the others) are frequent.
#[test]
fn realistic_composites_match_in_process() {
    let limits = (algorithm(), algorithm(), algorithm()).prop_map(move |(a, b, c)| {
        vec![
            (a, (5, SECOND, None)),
            (b, (20, 60 * SECOND, None)),
            (c, (3, SECOND / 2, Some(4))),
        ]
    });
    let test = "realistic_composites_match_in_process";
    run_streams(test, 16, 0x5eed_0004, limits, 200..300, run_composite);
}

/// The ev.energy example, on Redis: 1000/hour strict, 1000 requests at 11:59:00 → a
/// request at 12:58:59 is denied with retry_after = 1 s, one at 12:59:00 is admitted.
#[test]
fn strict_window_seed_example() {
    let Some(backend) = common::redis_backend("strict_window_seed_example", "seed") else {
        return;
    };
    let limiter = backend
        .limiter(
            "hourly",
            Algorithm::SlidingWindowStrict { sub_windows: 60 },
            Quota::per_hour(1000).unwrap(),
        )
        .unwrap();
    // 11:59:00 on some day, in Unix nanoseconds (beyond 2^53).
    let t0 = 1_735_732_740_000_000_000u64;
    for _ in 0..1000 {
        assert!(limiter.try_check(b"ev", t0, 1).unwrap().allowed);
    }
    let denied = limiter.try_check(b"ev", t0 + HOUR - SECOND, 1).unwrap();
    assert!(!denied.allowed);
    assert_eq!(denied.retry_after, SECOND);
    assert!(limiter.try_check(b"ev", t0 + HOUR, 1).unwrap().allowed);
}

/// Policy-style checks: one request against limits keyed on different identities (per
/// IP and per user), all in one script call, matching an in-process composite of
/// separate limiters.
#[test]
fn multi_key_checks_match_in_process() {
    let Some(backend) = common::redis_backend("multi_key_checks_match_in_process", "multikey")
    else {
        return;
    };
    let per_ip = backend
        .limit("ip", Algorithm::Gcra, Quota::new(10, 10 * SECOND).unwrap())
        .unwrap();
    let per_user = backend
        .limit(
            "user",
            Algorithm::SlidingWindowStrict { sub_windows: 5 },
            Quota::new(3, 5 * SECOND).unwrap(),
        )
        .unwrap();
    // In process: one limiter per (limit, identity).
    let users = [b"alice".as_slice(), b"bob".as_slice()];
    let ip = b"10.0.0.1".as_slice();
    let local_ip = Limiter::new(Algorithm::Gcra, Quota::new(10, 10 * SECOND).unwrap()).unwrap();
    let local_users: Vec<Limiter> = users
        .iter()
        .map(|_| {
            Limiter::new(
                Algorithm::SlidingWindowStrict { sub_windows: 5 },
                Quota::new(3, 5 * SECOND).unwrap(),
            )
            .unwrap()
        })
        .collect();
    // A composite over borrowed limiters is not offered in process; replay the
    // composite protocol by hand: peek both, then charge both only if both admit.
    let mut now = 1_700_000_000_000_000_000u64;
    for i in 0..200u64 {
        now += (i * 7_919_000_000) % (3 * SECOND);
        let u = (i % 2) as usize;
        let user_local = &local_users[u];
        let mut states = [Decision::EMPTY; 2];
        let actual = backend
            .try_check_limits(&[(&per_ip, ip), (&per_user, users[u])], now, 1, &mut states)
            .unwrap();
        let ip_alone = local_ip.peek(now, 1).unwrap();
        let user_alone = user_local.peek(now, 1).unwrap();
        if ip_alone.allowed && user_alone.allowed {
            let a = local_ip.check(now, 1).unwrap();
            let b = user_local.check(now, 1).unwrap();
            assert!(actual.allowed);
            assert_eq!(states, [a, b], "request {i}");
        } else {
            assert!(!actual.allowed);
            let show = |alone: Decision, limiter: &Limiter| {
                if alone.allowed {
                    limiter.peek(now, 0).unwrap()
                } else {
                    alone
                }
            };
            assert_eq!(
                states,
                [show(ip_alone, &local_ip), show(user_alone, user_local)],
                "request {i}"
            );
        }
    }
    // Two limits of one check on the same Redis key are refused.
    assert!(matches!(
        backend.try_check_limits(&[(&per_ip, ip), (&per_ip, ip)], now, 1, &mut []),
        Err(RedisCheckError::Limits(_))
    ));
}

/// TTLs: every write sets "time until at rest" (ms, rounded up, at least the floor), and
/// idle keys vanish.
#[test]
fn ttls_are_time_to_rest_and_keys_vanish() {
    let Some(url) = common::redis_url("ttls_are_time_to_rest_and_keys_vanish") else {
        return;
    };
    let mut config = common::test_config(&url, "ttl");
    config.min_ttl = Duration::from_millis(1);
    let backend = RedisBackend::new(config).unwrap();
    let mut admin = common::admin(&url);
    let ms = 1_000_000u64;
    let now = 1_700_000_000_123_456_789u64;
    // (algorithm, quota, expected TTL in ms after one admission at `now`)
    let period = 10_000 * ms + 1; // 10 s + 1 ns
    let window_start = now / period * period;
    let cases = [
        // GCRA 10 per period: new TAT = now + T, T = ceil(period / 10) = 1 s + 1 ns.
        (Algorithm::Gcra, (1000 * ms + 1).div_ceil(ms)),
        // Fixed: until the window ends.
        (
            Algorithm::FixedWindow,
            (window_start + period - now).div_ceil(ms),
        ),
        // Approximate: until the end of the next window.
        (
            Algorithm::SlidingWindowApprox,
            (window_start + 2 * period - now).div_ceil(ms),
        ),
        // Strict: until the admission is released (now + period).
        (
            Algorithm::SlidingWindowStrict { sub_windows: 10 },
            period.div_ceil(ms),
        ),
    ];
    for (algorithm, expected_ms) in cases {
        let limiter = backend
            .limiter("ttl", algorithm, Quota::new(10, period).unwrap())
            .unwrap();
        assert!(limiter.try_check(b"k", now, 1).unwrap().allowed);
        let key = limiter.limit().redis_key(b"k");
        let pttl: i64 = admin.pttl(&key).unwrap();
        let pttl = u64::try_from(pttl).unwrap();
        assert!(
            pttl <= expected_ms && pttl + 2_000 > expected_ms,
            "{algorithm:?}: PTTL {pttl} ms, expected {expected_ms} ms"
        );
        // A denial or a peek leaves the TTL alone (nothing is written).
        let _ = limiter.try_peek(b"k", now, 1).unwrap();
    }
    // Short periods: the keys are gone once the state is at rest.
    let mut keys = Vec::new();
    for algorithm in common::each_algorithm(4) {
        let limiter = backend
            .limiter("short", algorithm, Quota::new(5, 20 * ms).unwrap())
            .unwrap();
        assert!(limiter.try_check(b"k", now, 1).unwrap().allowed);
        let key = limiter.limit().redis_key(b"k");
        let exists: bool = admin.exists(&key).unwrap();
        assert!(exists);
        keys.push(key);
    }
    std::thread::sleep(Duration::from_millis(200));
    for key in keys {
        let exists: bool = admin.exists(&key).unwrap();
        assert!(
            !exists,
            "{} should have expired",
            String::from_utf8_lossy(&key)
        );
    }
}
