//! The ratecore Redis module against the in-process limiters and the Lua script:
//! - differential: the module, the Lua script and the in-process limiters return the same
//!   decisions, field by field, for the same scripted sequences (caller's `now`), for
//!   every algorithm and for composites;
//! - rollout: Lua and module checks alternating on one key give the in-process decisions;
//! - malformed arguments: random argument vectors get an error reply (or a well-formed
//!   reply when they happen to be valid) and the server keeps serving;
//! - the commands' declared keys and flags, peeks that write nothing, the server clock.
//!
//! Needs a real redis-server with the module loaded (`tests/redis/run.sh`); skips with a
//! notice without `RATECORE_REDIS_URL`, or when the server has no module. Deterministic:
//! proptest runs from fixed seeds.
#![cfg(feature = "redis")]

#[path = "redis/common.rs"]
mod common;
mod support;

use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use ratecore::redis_backend::{
    RedisBackend, RedisCheckError, RedisComposite, RedisConfig, RedisEngine,
};
use ratecore::{Algorithm, CheckError, Composite, Decision, Limiter, Quota};
use support::gen::{advance, config, cost_spec, run_cases, step, CostSpec, Step, StepMix};

/// The test Redis's URL when it has the module.
fn module_url(test: &str) -> Option<String> {
    let url = common::redis_url(test)?;
    let mut admin = common::admin(&url);
    let info: redis::Value = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("RATECORE.CHECK")
        .query(&mut admin)
        .expect("COMMAND INFO");
    if !matches!(&info, redis::Value::Array(items) if matches!(items.first(), Some(redis::Value::Array(_))))
    {
        common::notice(&format!(
            "skipped {test}: the test Redis has no ratecore module (run tests/redis/run.sh)"
        ));
        return None;
    }
    Some(url)
}

fn backend_on(url: &str, prefix: &str, engine: RedisEngine) -> RedisBackend {
    let mut config: RedisConfig = common::test_config(url, "module");
    config.prefix = String::from(prefix);
    config.engine = engine;
    RedisBackend::new(config).expect("valid config")
}

fn algorithm() -> impl Strategy<Value = Algorithm> {
    prop_oneof![
        Just(Algorithm::Gcra),
        Just(Algorithm::FixedWindow),
        Just(Algorithm::SlidingWindowApprox),
        prop_oneof![1..=4u32, 5..=64u32]
            .prop_map(|sub_windows| Algorithm::SlidingWindowStrict { sub_windows }),
    ]
}

/// A quota from [`support::gen::valid_quota_params`].
fn quota() -> impl Strategy<Value = Quota> {
    support::gen::valid_quota_params().prop_map(|(limit, period, burst)| {
        let quota = Quota::new(limit, period).expect("valid quota");
        burst
            .and_then(|b| quota.with_burst(b).ok())
            .unwrap_or(quota)
    })
}

fn start_time() -> impl Strategy<Value = u64> {
    prop_oneof![
        2 => 0..=1_000_000u64,
        3 => 1_700_000_000_000_000_000..=1_800_000_000_000_000_000u64,
        1 => any::<u64>(),
        1 => (u64::MAX - 1_000_000)..=u64::MAX,
    ]
}

const MIX: StepMix = StepMix {
    align_from: 1,
    max_tiny: 0,
    ..StepMix::BOUNDARIES
};

/// How time moves, the cost, and whether the request is a peek.
type Request = (Step, CostSpec, bool);

fn request() -> impl Strategy<Value = Request> {
    (step(MIX), cost_spec(10, 4), prop::bool::weighted(0.1))
}

/// One engine's answer: a decision and the per-limit states, or the cost error.
type Answer = Result<(Decision, Vec<Decision>), CheckError>;

fn remote(
    composite: &RedisComposite,
    key: &[u8],
    now: u64,
    cost: u64,
    peek: bool,
    limits: usize,
) -> Result<Answer, String> {
    let mut states = vec![Decision::EMPTY; limits];
    let result = if peek {
        composite.try_peek_each(key, now, cost, &mut states)
    } else {
        composite.try_check_each(key, now, cost, &mut states)
    };
    match result {
        Ok(decision) => Ok(Ok((decision, states))),
        Err(RedisCheckError::Cost(e)) => Ok(Err(e)),
        Err(e) => Err(format!("Redis failed: {e}")),
    }
}

fn local(composite: &Composite, now: u64, cost: u64, peek: bool, limits: usize) -> Answer {
    let mut states = vec![Decision::EMPTY; limits];
    let result = if peek {
        composite.peek_each(now, cost, &mut states)
    } else {
        composite.check_each(now, cost, &mut states)
    };
    result.map(|decision| (decision, states))
}

/// Runs `requests` on the in-process composite and on each `(backend, key)` in turn
/// (`alternate`: request `i` goes to engine `i % 2` only, on one shared key), comparing
/// every answer with the in-process one.
fn run_case(
    engines: &[&RedisBackend],
    alternate: bool,
    limits: &[(Algorithm, Quota)],
    start: u64,
    requests: &[Request],
    key: &str,
) -> Result<(), TestCaseError> {
    let locals = limits
        .iter()
        .map(|(a, q)| Limiter::new(*a, *q).expect("valid limit"))
        .collect();
    let in_process = Composite::new(locals).expect("valid composite");
    let composites: Vec<RedisComposite> = engines
        .iter()
        .map(|backend| {
            let limits = limits
                .iter()
                .enumerate()
                .map(|(i, (a, q))| backend.limit(&format!("l{i}"), *a, *q).expect("valid"))
                .collect();
            backend.composite(limits).expect("valid composite")
        })
        .collect();
    let unit = limits.iter().map(|(_, q)| q.period()).min().unwrap_or(1);
    let capacity = limits
        .iter()
        .map(|(a, q)| common::capacity(*a, q))
        .min()
        .unwrap_or(1);
    let mut now = start;
    for (index, (step, cost, peek)) in requests.iter().enumerate() {
        now = advance(now, *step, unit, 1);
        let cost = cost.resolve(capacity);
        let expected = local(&in_process, now, cost, *peek, limits.len());
        for (engine, composite) in composites.iter().enumerate() {
            if alternate && index % engines.len() != engine {
                continue;
            }
            let actual = remote(composite, key.as_bytes(), now, cost, *peek, limits.len())
                .map_err(TestCaseError::fail)?;
            prop_assert_eq!(
                &expected,
                &actual,
                "engine {} request {} at now={} cost={} peek={} for {:?}",
                engine,
                index,
                now,
                cost,
                peek,
                limits
            );
        }
    }
    Ok(())
}

fn assert_clean(backend: &RedisBackend, engine: &str) {
    let stats = backend.stats();
    assert_eq!(stats.inconsistent, 0, "{engine}: {stats:?}");
    assert_eq!(stats.checks, stats.decided, "{engine}: {stats:?}");
}

/// `cases` random cases (from `seed`) of `limits` limits (a composite when more than one)
/// and `requests` requests each, each run by [`run_case`] on `engines` on a key of its own.
fn run_engines(
    engines: &[&RedisBackend],
    alternate: bool,
    cases: u32,
    seed: u64,
    limits: std::ops::RangeInclusive<usize>,
    requests: std::ops::Range<usize>,
) {
    let strategy = (
        prop::collection::vec((algorithm(), quota()), limits),
        start_time(),
        prop::collection::vec(request(), requests),
    );
    run_cases(cases, seed, strategy, |(limits, start, requests), case| {
        let key = format!("case-{case}");
        run_case(engines, alternate, &limits, start, &requests, &key)
    });
}

/// Module, Lua script and in-process limiters: the same decisions for the same
/// sequences, one limit or a composite of up to four (each engine on its own keys).
#[test]
fn module_script_and_in_process_agree() {
    let Some(url) = module_url("module_script_and_in_process_agree") else {
        return;
    };
    let prefix = common::unique_prefix("three-way");
    let module = backend_on(&url, &format!("{prefix}module:"), RedisEngine::Module);
    let script = backend_on(&url, &format!("{prefix}script:"), RedisEngine::Script);
    run_engines(&[&module, &script], false, 300, 0x5eed_00d1, 1..=4, 1..40);
    assert_clean(&module, "module");
    assert_clean(&script, "script");
    assert_eq!(module.stats().script_checks, 0);
    assert_eq!(script.stats().module_checks, 0);
    assert!(module.stats().module_checks > 1000, "{:?}", module.stats());
}

/// A rollout: clients of the script and of the module share one key, checks alternate,
/// and every decision is the in-process one.
#[test]
fn rollout_alternates_script_and_module_on_one_key() {
    let Some(url) = module_url("rollout_alternates_script_and_module_on_one_key") else {
        return;
    };
    let prefix = common::unique_prefix("rollout");
    let module = backend_on(&url, &prefix, RedisEngine::Module);
    let script = backend_on(&url, &prefix, RedisEngine::Script);
    run_engines(&[&script, &module], true, 200, 0x5eed_00d2, 1..=3, 2..60);
    assert_clean(&module, "module");
    assert_clean(&script, "script");
}

/// Detection: a backend left to detect uses the module on a server that has it.
#[test]
fn detection_picks_the_module() {
    let Some(url) = module_url("detection_picks_the_module") else {
        return;
    };
    let backend = backend_on(&url, &common::unique_prefix("detect"), RedisEngine::Detect);
    let limiter = backend
        .limiter("d", Algorithm::Gcra, Quota::per_second(5).unwrap())
        .unwrap();
    for now in 0..10 {
        assert!(limiter.try_check(b"k", now, 1).unwrap().allowed || now >= 5);
    }
    let stats = backend.stats();
    assert_eq!(
        (stats.module_checks, stats.script_checks),
        (10, 0),
        "{stats:?}"
    );
}

fn query(connection: &mut redis::Connection, args: &[Vec<u8>]) -> redis::RedisResult<redis::Value> {
    let mut cmd = redis::cmd("RATECORE.CHECK");
    cmd.arg(&args[1..]);
    if let Some(name) = args.first() {
        cmd = redis::cmd(std::str::from_utf8(name).unwrap_or("RATECORE.CHECK"));
        cmd.arg(&args[1..]);
    }
    cmd.query(connection)
}

/// One argument of a random vector: mostly plausible words and numbers.
fn token() -> impl Strategy<Value = Vec<u8>> {
    let word = prop::sample::select(vec![
        "GCRA",
        "FIXED",
        "APPROX",
        "STRICT",
        "NOW",
        "TIME",
        "COST",
        "MINTTL",
        "gcra",
        "now",
        "0",
        "1",
        "2",
        "3",
        "16",
        "17",
        "-1",
        "+1",
        " 1",
        "1.5",
        "",
        "4294967296",
        "18446744073709551615",
        "18446744073709551616",
        "99999999999999999999999",
    ])
    .prop_map(|w| w.as_bytes().to_vec());
    prop_oneof![
        6 => word,
        2 => any::<u64>().prop_map(|n| n.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..12),
    ]
}

/// The error reply of `RATECORE.CHECK` with the space-separated `args` (the call must
/// fail).
fn check_error(connection: &mut redis::Connection, args: &str) -> String {
    redis::cmd("RATECORE.CHECK")
        .arg(args.split(' ').collect::<Vec<_>>())
        .query::<redis::Value>(connection)
        .unwrap_err()
        .to_string()
}

/// Random argument vectors: an error reply or a well-formed reply, never a crash; the
/// server answers `PING` after each.
#[test]
fn malformed_arguments_get_error_replies() {
    let Some(url) = module_url("malformed_arguments_get_error_replies") else {
        return;
    };
    let prefix = common::unique_prefix("fuzz");
    let cell = std::cell::RefCell::new(common::admin(&url));
    let mut runner = TestRunner::new(config(3000, 0x5eed_00d3));
    let strategy = (
        prop::sample::select(vec!["RATECORE.CHECK", "RATECORE.PEEK"]),
        prop_oneof![Just(b"1".to_vec()), Just(b"2".to_vec()), token()],
        prop::collection::vec(token(), 0..16),
    );
    let (errors, replies) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    runner
        .run(&strategy, |(name, numkeys, rest)| {
            let connection = &mut *cell.borrow_mut();
            let mut args = vec![name.as_bytes().to_vec(), numkeys.clone()];
            // Keys (when numkeys parses) get the test's prefix, so no other data is hit.
            let keys = std::str::from_utf8(&numkeys)
                .ok()
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0)
                .min(rest.len());
            for (index, arg) in rest.iter().enumerate() {
                if index < keys {
                    let mut key = prefix.as_bytes().to_vec();
                    key.extend_from_slice(arg);
                    args.push(key);
                } else {
                    args.push(arg.clone());
                }
            }
            match query(connection, &args) {
                Err(e) if e.code().is_some() => errors.set(errors.get() + 1),
                Err(e) => return Err(TestCaseError::fail(format!("{args:?}: {e}"))),
                Ok(redis::Value::Array(items)) => {
                    prop_assert_eq!(items.len(), 7, "{:?}", args);
                    replies.set(replies.get() + 1);
                }
                Ok(other) => return Err(TestCaseError::fail(format!("{args:?}: {other:?}"))),
            }
            let pong: String = redis::cmd("PING")
                .query(connection)
                .map_err(|e| TestCaseError::fail(format!("after {args:?}: {e}")))?;
            prop_assert_eq!(pong, "PONG");
            Ok(())
        })
        .unwrap();
    let (errors, replies) = (errors.get(), replies.get());
    eprintln!("malformed arguments: {errors} error replies, {replies} valid checks");
    assert!(errors > 1000);
    let mut connection = cell.into_inner();

    // A foreign value, another type, a repeated key: error replies, nothing changed.
    let key = format!("{prefix}foreign");
    let hash = format!("{prefix}hash");
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("hello")
        .query(&mut connection)
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(&hash)
        .arg("a")
        .arg("b")
        .query(&mut connection)
        .unwrap();
    for (line, expected) in [
        (format!("1 {key} GCRA 1 1000 1 NOW 5"), "another layout"),
        (format!("1 {hash} FIXED 1 1000 NOW 5"), "WRONGTYPE"),
        (
            format!("2 {key} {key} FIXED 1 1000 FIXED 1 1000 NOW 5"),
            "repeats key 1",
        ),
    ] {
        let e = check_error(&mut connection, &line);
        assert!(e.contains(expected), "{line}: {e}");
    }
    let value: String = redis::cmd("GET").arg(&key).query(&mut connection).unwrap();
    assert_eq!(value, "hello");

    // A panic inside the module (a module built with its `test-hooks` feature panics on
    // request): an error reply, and the server keeps serving.
    if std::env::var("RATECORE_REDIS_MODULE_HOOKS").as_deref() == Ok("1") {
        let e = check_error(
            &mut connection,
            "1 k GCRA 1 1000 1 NOW 5 RATECORE-TEST-PANIC",
        );
        assert!(e.contains("internal error"), "{e}");
        let pong: String = redis::cmd("PING").query(&mut connection).unwrap();
        assert_eq!(pong, "PONG");
    }
}

/// Keys are declared (`COMMAND GETKEYS`, so Cluster can route), the flags are right,
/// a peek writes nothing, and `TIME` uses the server's clock (whole ms on Redis 7.0).
#[test]
fn keys_flags_peeks_and_the_server_clock() {
    let Some(url) = module_url("keys_flags_peeks_and_the_server_clock") else {
        return;
    };
    let prefix = common::unique_prefix("flags");
    let mut c = common::admin(&url);
    let keys: Vec<String> = redis::cmd("COMMAND")
        .arg("GETKEYS")
        .arg(
            "RATECORE.CHECK 2 {a}x {a}y GCRA 1 1000 1 STRICT 5 100 4 NOW 1"
                .split(' ')
                .collect::<Vec<_>>(),
        )
        .query(&mut c)
        .unwrap();
    assert_eq!(keys, ["{a}x", "{a}y"]);
    let info: redis::Value = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("RATECORE.CHECK")
        .arg("RATECORE.PEEK")
        .query(&mut c)
        .unwrap();
    let text = format!("{info:?}");
    for flag in ["write", "denyoom", "readonly", "movablekeys"] {
        assert!(text.contains(flag), "{flag} missing from {text}");
    }

    let key = format!("{prefix}k");
    let peek: redis::Value = redis::cmd("RATECORE.PEEK")
        .arg(1)
        .arg(&key)
        .arg(
            "GCRA 5 1000000000 5 NOW 1000"
                .split(' ')
                .collect::<Vec<_>>(),
        )
        .query(&mut c)
        .unwrap();
    let redis::Value::Array(items) = peek else {
        panic!("{peek:?}")
    };
    assert_eq!(items[..5], [1, 5, 4, 200_000_000, 0].map(redis::Value::Int));
    let exists: u32 = redis::cmd("EXISTS").arg(&key).query(&mut c).unwrap();
    assert_eq!(exists, 0, "a peek wrote");

    let before = ratecore::clock::unix_time_nanos() / 1_000_000 * 1_000_000;
    let checked: redis::Value = redis::cmd("RATECORE.CHECK")
        .arg(1)
        .arg(&key)
        .arg("GCRA 5 1000000000 5 TIME".split(' ').collect::<Vec<_>>())
        .query(&mut c)
        .unwrap();
    let after = ratecore::clock::unix_time_nanos();
    let redis::Value::Array(items) = checked else {
        panic!("{checked:?}")
    };
    let redis::Value::Int(now) = items[5] else {
        panic!("{items:?}")
    };
    let now = u64::try_from(now).unwrap();
    assert_eq!(now % 1_000_000, 0, "whole milliseconds");
    assert!(
        (before..=after).contains(&now),
        "{before} <= {now} <= {after}"
    );
    let pttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut c).unwrap();
    assert!((1..=200).contains(&pttl), "{pttl}");
}
