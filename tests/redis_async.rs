//! The async transport (feature `redis-tokio`) against the blocking one: for the same
//! scripted request sequences — every algorithm and composites, forward and backward
//! time, costs from 0 to beyond the capacity, checks and peeks — run from 64 tasks at
//! once on one multiplexed connection, the async checks return the decisions, per-limit
//! states and errors the blocking backend returns for the same sequences. Then Redis is
//! killed and restarted under async load: during the outage every check answers the
//! configured failure decision, after the restart real decisions again, and the counters
//! account for every check exactly.
//!
//! Needs the throwaway redis-server of `tests/redis/run.sh`; skips with a notice
//! without `RATECORE_REDIS_URL`. Deterministic sequences (a fixed-seed generator).
#![cfg(feature = "redis-tokio")]

#[path = "redis/common.rs"]
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{kill_server, managed_server, restart_server, wait_until};
use ratecore::redis_backend::{
    FailureMode, Fault, RedisBackend, RedisCheckError, RedisConfig, RedisEngine, RedisLimit,
    RedisLimiter,
};
use ratecore::{Algorithm, Decision, Limiter, Quota, RateLimiter};

const SECOND: u64 = 1_000_000_000;
const TASKS: usize = 64;

/// The kill test stops the server: no other test of this binary may run meanwhile.
async fn server_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// A small deterministic generator (xorshift64*), one per sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One request of a sequence.
#[derive(Clone, Copy, Debug)]
struct Step {
    now: u64,
    cost: u64,
    peek: bool,
}

/// A sequence for limits of `period` and `capacity` (the smallest of a composite).
fn sequence(seed: u64, start: u64, period: u64, capacity: u64, len: usize) -> Vec<Step> {
    let mut rng = Rng(seed | 1);
    let mut now = start;
    (0..len)
        .map(|_| {
            now = match rng.below(10) {
                0..=2 => now,
                3..=5 => now.saturating_add(rng.below(period / 8 + 1)),
                6 => now.saturating_add(period / 3),
                7 => now.saturating_sub(rng.below(period / 4 + 1)),
                8 => now.saturating_add(period.saturating_mul(2)),
                _ => now.saturating_add(1),
            };
            let cost = match rng.below(12) {
                0 => 0,
                1 => 2.min(capacity),
                2 => capacity,
                3 => capacity + 1,
                _ => 1,
            };
            Step {
                now,
                cost,
                peek: rng.below(10) == 0,
            }
        })
        .collect()
}

/// The limits of each scenario: every algorithm alone, and composites.
fn scenarios() -> Vec<Vec<(Algorithm, Quota)>> {
    let strict = |sub_windows| Algorithm::SlidingWindowStrict { sub_windows };
    vec![
        vec![(
            Algorithm::Gcra,
            Quota::per_second(5).unwrap().with_burst(8).unwrap(),
        )],
        vec![(Algorithm::FixedWindow, Quota::per_minute(10).unwrap())],
        vec![(
            Algorithm::SlidingWindowApprox,
            Quota::per_minute(20).unwrap(),
        )],
        vec![(strict(6), Quota::per_minute(7).unwrap())],
        vec![
            (Algorithm::Gcra, Quota::per_second(3).unwrap()),
            (strict(10), Quota::per_minute(12).unwrap()),
        ],
        vec![
            (Algorithm::FixedWindow, Quota::per_second(4).unwrap()),
            (
                Algorithm::SlidingWindowApprox,
                Quota::per_minute(9).unwrap(),
            ),
            (Algorithm::Gcra, Quota::per_hour(50).unwrap()),
        ],
    ]
}

fn limits_of(backend: &RedisBackend, scenario: &[(Algorithm, Quota)]) -> Vec<RedisLimit> {
    scenario
        .iter()
        .enumerate()
        .map(|(i, (algorithm, quota))| {
            backend
                .limit(&format!("limit-{i}"), *algorithm, *quota)
                .unwrap()
        })
        .collect()
}

/// What one request returned: the decision and each limit's state, or the error.
type Outcome = Result<(Decision, Vec<Decision>), RedisCheckError>;

/// One task's work: a scenario on one key.
struct Job {
    scenario: usize,
    key: Vec<u8>,
    steps: Vec<Step>,
}

fn jobs() -> Vec<Job> {
    let scenarios = scenarios();
    let starts = [0, 1_700_000_000_000_000_000, u64::MAX - 100 * SECOND];
    (0..TASKS)
        .map(|task| {
            let scenario = task % scenarios.len();
            let limits = &scenarios[scenario];
            let period = limits.iter().map(|(_, q)| q.period()).min().unwrap();
            let capacity = limits
                .iter()
                .map(|(a, q)| common::capacity(*a, q))
                .min()
                .unwrap();
            let seed = 0x5eed_a000 + task as u64;
            Job {
                scenario,
                key: format!("task-{task}").into_bytes(),
                steps: sequence(seed, starts[task % starts.len()], period, capacity, 150),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_checks_match_blocking_ones_from_64_tasks() {
    let Some(url) = common::redis_url("async_checks_match_blocking_ones_from_64_tasks") else {
        return;
    };
    let _guard = server_lock().await;
    let blocking = common::backend(&url, "blocking");
    let asynchronous = common::backend(&url, "async");
    let scenarios = Arc::new(scenarios());
    let jobs = Arc::new(jobs());

    // Every sequence at once on the async transport (one multiplexed connection)...
    let tasks: Vec<_> = (0..jobs.len())
        .map(|index| {
            let (backend, scenarios, jobs) =
                (asynchronous.clone(), scenarios.clone(), jobs.clone());
            tokio::spawn(async move {
                let job = &jobs[index];
                let limits = limits_of(&backend, &scenarios[job.scenario]);
                let pairs: Vec<(&RedisLimit, &[u8])> =
                    limits.iter().map(|l| (l, job.key.as_slice())).collect();
                let mut outcomes: Vec<Outcome> = Vec::new();
                for step in &job.steps {
                    let mut states = vec![Decision::EMPTY; pairs.len()];
                    let result = if step.peek {
                        backend
                            .try_peek_limits_async(&pairs, step.now, step.cost, &mut states)
                            .await
                    } else {
                        backend
                            .try_check_limits_async(&pairs, step.now, step.cost, &mut states)
                            .await
                    };
                    outcomes.push(result.map(|d| (d, states)));
                }
                outcomes
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("no task panicked"));
    }

    // ...and the same sequences one after another on the blocking pool.
    let mut decisions = 0;
    for (job, outcomes) in jobs.iter().zip(&results) {
        let limits = limits_of(&blocking, &scenarios[job.scenario]);
        let pairs: Vec<(&RedisLimit, &[u8])> =
            limits.iter().map(|l| (l, job.key.as_slice())).collect();
        for (index, (step, actual)) in job.steps.iter().zip(outcomes).enumerate() {
            let mut states = vec![Decision::EMPTY; pairs.len()];
            let expected: Outcome = if step.peek {
                blocking.try_peek_limits(&pairs, step.now, step.cost, &mut states)
            } else {
                blocking.try_check_limits(&pairs, step.now, step.cost, &mut states)
            }
            .map(|d| (d, states));
            assert!(
                !matches!(expected, Err(RedisCheckError::Backend(_))),
                "{expected:?}"
            );
            assert_eq!(
                &expected, actual,
                "scenario {} key {:?} request {index} {step:?}",
                job.scenario, job.key
            );
            decisions += usize::from(expected.is_ok());
        }
    }
    let (a, b) = (asynchronous.stats(), blocking.stats());
    eprintln!("async: {a:?}\nblocking: {b:?}");
    assert!(decisions > TASKS * 100, "{decisions}");
    assert_eq!((a.checks, a.decided), (b.checks, b.decided));
    assert_eq!(a.inconsistent, 0);
    assert_eq!(a.connects, 1, "one multiplexed connection: {a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_script_is_reloaded() {
    let Some(url) = common::redis_url("a_flushed_script_is_reloaded") else {
        return;
    };
    let _guard = server_lock().await;
    // About the script: on the script whatever engine the other tests run on.
    let mut config = common::test_config(&url, "flushed");
    config.engine = RedisEngine::Script;
    let backend = RedisBackend::new(config).unwrap();
    let limiter = backend
        .limiter("f", Algorithm::Gcra, Quota::per_hour(3).unwrap())
        .unwrap();
    let now = 1_700_000_000_000_000_000;
    let flush = || {
        redis::cmd("SCRIPT")
            .arg("FLUSH")
            .exec(&mut common::admin(&url))
            .unwrap();
    };
    flush();
    assert_eq!(limiter.check_async(b"k", now, 1).await.unwrap().fault, None);
    flush();
    let checked = limiter.check_async(b"k", now, 1).await.unwrap();
    assert_eq!(checked.fault, None);
    assert_eq!(checked.decision.remaining, 1);
    assert!(backend.ping_async().await.is_ok());
    let stats = backend.stats();
    assert_eq!(stats.script_loads, 2, "first use, then after the flush");
    assert_eq!((stats.checks, stats.decided), (2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composites_and_limiters_match_blocking_ones() {
    let Some(url) = common::redis_url("composites_and_limiters_match_blocking_ones") else {
        return;
    };
    let _guard = server_lock().await;
    let (blocking, asynchronous) = (
        common::backend(&url, "handles-blocking"),
        common::backend(&url, "handles-async"),
    );
    let composite = |backend: &RedisBackend| {
        backend
            .composite(limits_of(backend, &scenarios()[4]))
            .unwrap()
    };
    let limiter = |backend: &RedisBackend| {
        backend
            .limiter(
                "single",
                Algorithm::FixedWindow,
                Quota::per_minute(4).unwrap(),
            )
            .unwrap()
    };
    let (bc, ac) = (composite(&blocking), composite(&asynchronous));
    let (bl, al) = (limiter(&blocking), limiter(&asynchronous));
    for step in sequence(0x5eed_c001, 1_700_000_000_000_000_000, SECOND, 3, 200) {
        let (mut b, mut a) = ([Decision::EMPTY; 2], [Decision::EMPTY; 2]);
        let (now, cost) = (step.now, step.cost);
        // The same four calls in the step's mode: the composite and the limiter, each
        // blocking and async.
        let (blocking_each, async_each, blocking_one, async_one) = if step.peek {
            (
                bc.peek_each(b"k", now, cost, &mut b),
                ac.peek_each_async(b"k", now, cost, &mut a).await,
                bl.peek(b"k", now, cost),
                al.peek_async(b"k", now, cost).await,
            )
        } else {
            (
                bc.check_each(b"k", now, cost, &mut b),
                ac.check_each_async(b"k", now, cost, &mut a).await,
                bl.check(b"k", now, cost),
                al.check_async(b"k", now, cost).await,
            )
        };
        assert_eq!(blocking_each, async_each);
        assert_eq!(blocking_one, async_one);
        assert_eq!(a, b, "{step:?}");
    }
    let (a, b) = (asynchronous.stats(), blocking.stats());
    assert_eq!((a.checks, a.decided), (b.checks, b.decided));
    assert_eq!(a.checks, a.decided);
}

fn outage_config(url: &str, mode: FailureMode) -> RedisConfig {
    let mut config = common::test_config(url, "outage");
    config.failure_mode = mode;
    config.timeout = Duration::from_millis(200);
    config.reconnect_backoff = Duration::from_millis(50);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_redis_times_out_then_recovers() {
    let Some(url) = common::redis_url("a_paused_redis_times_out_then_recovers") else {
        return;
    };
    let _guard = server_lock().await;
    let backend = RedisBackend::new(outage_config(&url, FailureMode::Closed)).unwrap();
    let limiter = backend
        .limiter("paused", Algorithm::Gcra, Quota::per_hour(3).unwrap())
        .unwrap();
    let now = 1_700_000_000_000_000_000u64;
    assert_eq!(limiter.check_async(b"k", now, 1).await.unwrap().fault, None);
    // Every client's commands wait for 1.5 s: slower than the 200 ms timeout.
    redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1500)
        .arg("ALL")
        .exec(&mut common::admin(&url))
        .unwrap();
    // 64 checks at once, all on the paused connection: each answers within its timeout.
    let started = Instant::now();
    let checks: Vec<_> = (0..TASKS)
        .map(|i| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let key = format!("paused-{i}");
                limiter.check_async(key.as_bytes(), now, 1).await.unwrap()
            })
        })
        .collect();
    for check in checks {
        let checked = check.await.unwrap();
        assert_eq!(checked.fault, Some(Fault::Timeout));
        assert!(!checked.decision.allowed);
    }
    // The requirement (each check bounded by the timeout), with a margin generous
    // enough for a loaded machine; the pause itself lasts 1.5 s.
    assert!(started.elapsed() < Duration::from_millis(1200));
    let stats = backend.stats();
    assert_eq!(stats.timeouts, TASKS as u64, "{stats:?}");
    assert_eq!(stats.failed_closed, TASKS as u64, "{stats:?}");
    // Once the pause is over, checks are decided again on the same connection: the
    // late replies of the timed-out checks were matched to them and discarded.
    // (Probing with cost 0 charges nothing, even when a probe's reply comes late.)
    while limiter
        .check_async(b"probe", now, 0)
        .await
        .unwrap()
        .fault
        .is_some()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let checked = limiter.check_async(b"k", now, 1).await.unwrap();
    assert_eq!(checked.fault, None);
    assert!(checked.decision.allowed);
    assert_eq!(
        checked.decision.remaining, 1,
        "one admission before the pause"
    );
    let stats = backend.stats();
    assert_eq!(stats.connects, 1, "{stats:?}");
    assert_eq!(stats.inconsistent, 0);
}

/// The `WAIT` tests' set-up: a backend with `wait_replicas = 1` and a 100 ms
/// `wait_timeout` on the standalone server, which has no replica, so every `WAIT` takes
/// its whole 100 ms on the server. 16 tasks make 8 checks each on one key, every
/// answer passing `expect`. Returns the backend, its limiter and the first check's `now`.
async fn checks_with_wait(
    url: &str,
    test: &str,
    timeout: Duration,
    wait_connections: usize,
    expect: fn(Option<Fault>) -> bool,
) -> (RedisBackend, RedisLimiter, u64) {
    let mut config = common::test_config(url, test);
    config.timeout = timeout;
    config.wait_replicas = 1;
    config.wait_timeout = Duration::from_millis(100);
    config.wait_connections = wait_connections;
    let backend = RedisBackend::new(config).unwrap();
    let quota = Quota::per_hour(1_000_000).unwrap();
    let limiter = backend.limiter(test, Algorithm::Gcra, quota).unwrap();
    let now = 1_700_000_000_000_000_000u64;
    let tasks: Vec<_> = (0..16u64)
        .map(|task| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                for i in 0..8 {
                    let checked = limiter
                        .check_async(b"k", now + task * 8 + i, 1)
                        .await
                        .unwrap();
                    assert!(expect(checked.fault), "{checked:?}");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (backend, limiter, now)
}

/// A `WAIT` holds back every later command of its connection. On the connection every
/// check shares (`wait_connections = 0`), 16 tasks' checks with `WAIT`, 100 ms each on
/// the server, arrive faster than the server serves them (10 a second), and checks time
/// out. Such a timeout replaces the connection, so the checks that gave up (which the
/// server would still run) hold nothing back: once the load stops, the next check is
/// answered by the server (its `WAIT` fell short: a replication fault) instead of timing
/// out behind a backlog of over ten seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_out_checks_with_wait_do_not_hold_back_later_ones() {
    let Some(url) = common::redis_url("timed_out_checks_with_wait_do_not_hold_back_later_ones")
    else {
        return;
    };
    let _guard = server_lock().await;
    let answered_or_timed_out = |f| matches!(f, Some(Fault::Replication | Fault::Timeout));
    let (backend, limiter, now) = checks_with_wait(
        &url,
        "wait-backlog",
        Duration::from_millis(300),
        0,
        answered_or_timed_out,
    )
    .await;
    let loaded = backend.stats();
    common::notice(&format!(
        "checks with WAIT and no replica, 16 tasks: {} answered, {} timed out, {} connects",
        loaded.replication, loaded.timeouts, loaded.connects
    ));
    assert!(loaded.timeouts > 0, "the backlog formed: {loaded:?}");
    let checked = limiter.check_async(b"k", now + 1000, 1).await.unwrap();
    let stats = backend.stats();
    assert_eq!(
        checked.fault,
        Some(Fault::Replication),
        "{checked:?}; {stats:?}"
    );
    assert!(stats.connects > 1, "{stats:?}");
}

/// With wait lines (the default), checks with `WAIT` do not hold each other back: 16
/// tasks' `WAIT`s run at once, and every one of the 128 checks is answered by the server
/// (a replication fault) within its 1 s timeout. On one shared connection they would
/// take 12.8 s, one after another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_with_wait_run_at_once_on_their_own_lines() {
    let Some(url) = common::redis_url("checks_with_wait_run_at_once_on_their_own_lines") else {
        return;
    };
    let _guard = server_lock().await;
    let answered = |f| f == Some(Fault::Replication);
    let lines = RedisConfig::new(url.as_str()).wait_connections;
    let (backend, limiter, now) =
        checks_with_wait(&url, "wait-lines", Duration::from_secs(1), lines, answered).await;
    let stats = backend.stats();
    assert_eq!((stats.replication, stats.timeouts), (128, 0), "{stats:?}");
    // One connection per line at most, opened when first needed, and the main one
    // (engine detection).
    assert!(stats.connects <= lines as u64 + 1, "{stats:?}");
    // A peek (no `WAIT`) uses the main connection; every charge was stored.
    let peek = limiter.peek_async(b"k", now + 200, 0).await.unwrap();
    assert_eq!(peek.fault, None);
    assert_eq!(peek.decision.remaining, 1_000_000 - 128, "{peek:?}");
}

/// What every task counted.
#[derive(Default)]
struct Tally {
    checks: AtomicU64,
    decided: AtomicU64,
    faults: AtomicU64,
    /// The longest a check took, in µs (a failure must answer within the timeout).
    slowest_fault_us: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_and_restarting_redis_under_async_load() {
    let Some((url, conf, pidfile)) =
        managed_server("killing_and_restarting_redis_under_async_load")
    else {
        return;
    };
    let _guard = server_lock().await;
    let closed = RedisBackend::new(outage_config(&url, FailureMode::Closed)).unwrap();
    let open = RedisBackend::new(outage_config(&url, FailureMode::Open)).unwrap();
    let quota = Quota::per_hour(3).unwrap();
    let limiter = closed.limiter("k", Algorithm::Gcra, quota).unwrap();
    let open_limiter = open.limiter("k", Algorithm::Gcra, quota).unwrap();
    let now = 1_700_000_000_000_000_000u64;
    // Each task checks one key an hour apart (of its own time): every real decision is
    // the one a fresh limiter gives.
    let real = Limiter::new(Algorithm::Gcra, quota)
        .unwrap()
        .check(now, 1)
        .unwrap();
    let failure = Decision {
        allowed: false,
        limit: 3,
        remaining: 0,
        reset_after: SECOND,
        retry_after: SECOND,
    };

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (limiter, stop, tally) = (limiter.clone(), stop.clone(), tally.clone());
            tokio::spawn(async move {
                let key = format!("load-{task}");
                let mut t = now;
                while !stop.load(Ordering::Relaxed) {
                    t += 3600 * SECOND;
                    let started = Instant::now();
                    let checked = limiter.check_async(key.as_bytes(), t, 1).await.unwrap();
                    tally.checks.fetch_add(1, Ordering::Relaxed);
                    match checked.fault {
                        None => {
                            assert_eq!(checked.decision, real);
                            tally.decided.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(fault) => {
                            assert!(matches!(fault, Fault::Unavailable | Fault::Timeout));
                            assert_eq!(checked.decision, failure);
                            tally.faults.fetch_add(1, Ordering::Relaxed);
                            let took = u64::try_from(started.elapsed().as_micros()).unwrap();
                            tally.slowest_fault_us.fetch_max(took, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                }
            })
        })
        .collect();
    let decided = |tally: &Tally| tally.decided.load(Ordering::Relaxed);
    let faults = |tally: &Tally| tally.faults.load(Ordering::Relaxed);
    wait_until("the tasks run", Duration::from_secs(10), || {
        decided(&tally) > 1000
    });

    kill_server(&url, &pidfile);
    let before = faults(&tally);
    wait_until(
        "every task sees the outage",
        Duration::from_secs(10),
        || faults(&tally) > before + 4 * TASKS as u64,
    );
    for _ in 0..3 {
        let checked = open_limiter.check_async(b"open", now, 1).await.unwrap();
        assert!(checked.fault.is_some());
        assert_eq!(
            checked.decision,
            Decision {
                allowed: true,
                retry_after: 0,
                ..failure
            }
        );
        assert!(matches!(
            limiter
                .backend()
                .try_check_limits_async(&[(limiter.limit(), b"x".as_slice())], now, 1, &mut [])
                .await,
            Err(RedisCheckError::Backend(_))
        ));
    }

    restart_server(&url, &conf);
    let after = decided(&tally);
    wait_until("the tasks recover", Duration::from_secs(10), || {
        decided(&tally) > after + 1000
    });
    // Fresh state after the restart: three admissions, then a denial.
    for remaining in [2, 1, 0] {
        let checked = limiter.check_async(b"fresh", now, 1).await.unwrap();
        assert_eq!(checked.fault, None);
        assert_eq!(checked.decision.remaining, remaining);
    }
    let denied = limiter.check_async(b"fresh", now, 1).await.unwrap();
    assert_eq!(denied.fault, None);
    assert!(!denied.decision.allowed);

    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("no task panicked");
    }
    let stats = closed.stats();
    eprintln!(
        "after kill/restart under async load: {stats:?}; slowest failure {} µs",
        tally.slowest_fault_us.load(Ordering::Relaxed)
    );
    // Every check is accounted for: the tasks', the three `try_` checks during the
    // outage (faults, not failure decisions) and the four after the restart.
    let (checks, decided, faults) = (
        tally.checks.load(Ordering::Relaxed),
        decided(&tally),
        faults(&tally),
    );
    assert_eq!(checks, decided + faults);
    assert_eq!(stats.checks, checks + 3 + 4);
    assert_eq!(stats.decided, decided + 4);
    assert_eq!(stats.failed_closed, faults);
    assert_eq!(stats.timeouts + stats.unavailable, faults + 3);
    assert_eq!(stats.failed_open, 0);
    assert_eq!(stats.inconsistent, 0);
    assert!(stats.connects >= 2, "reconnected: {stats:?}");
    // The script is loaded again after the restart (the module needs no loading).
    assert!(
        stats.script_loads >= 2
            || (common::engine() != RedisEngine::Script && stats.module_checks > 0),
        "reloaded after the restart: {stats:?}"
    );
    assert_eq!(open.stats().failed_open, 3);
    // A failure answers within the timeout, plus a margin generous enough for a loaded
    // machine (the requirement, not a speed figure).
    assert!(
        tally.slowest_fault_us.load(Ordering::Relaxed) < 200_000 + 1_000_000,
        "a failure took longer than the timeout allows"
    );
}

/// A policy exercising every phase of a check (the file says how).
const POLICY: &str = include_str!("support/phases_policy.toml");

fn redis_policy(url: &str, test: &str) -> ratecore::policy::Policy {
    let spec = ratecore::policy::PolicySpec::from_toml_str(POLICY, "async.toml").unwrap();
    ratecore::policy::Policy::with_redis(spec, common::backend(url, test)).unwrap()
}

/// Everything a decision shows a caller: fields, entries, headers, body.
fn shown(d: &ratecore::policy::PolicyDecision<'_>) -> String {
    let mut headers = [0u8; 2048];
    let mut body = [0u8; 2048];
    let h = d
        .render_headers(1_795_518_000 * SECOND, &mut headers)
        .unwrap();
    let b = if d.allowed() {
        0
    } else {
        d.render_body(&mut body).unwrap()
    };
    format!(
        "{:?} {:?} {:?} {:?} {:?}\n{}{}",
        d.decision(),
        d.entries().collect::<Vec<_>>(),
        d.fault(),
        d.exempted_by(),
        d.denied_for_missing_key(),
        String::from_utf8_lossy(&headers[..h]),
        String::from_utf8_lossy(&body[..b]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_policy_checks_match_blocking_ones() {
    let Some(url) = common::redis_url("async_policy_checks_match_blocking_ones") else {
        return;
    };
    let _guard = server_lock().await;
    let blocking = redis_policy(&url, "policy-blocking");
    let asynchronous = redis_policy(&url, "policy-async");
    let routes = [
        ("POST", "/login"),
        ("GET", "/api/items"),
        ("GET", "/health"),
        ("GET", "/other"),
    ];
    let mut rng = Rng(0x5eed_b001);
    let mut now = 1_700_000_000_000_000_000u64;
    let (mut allowed, mut denied) = (0, 0);
    for index in 0..600 {
        now += rng.below(400_000_000);
        let (method, path) = routes[rng.below(4) as usize];
        let ip = format!("10.0.0.{}", rng.below(3));
        let user = format!("u{}", rng.below(3));
        let app = format!("a{}", rng.below(2));
        let mut attributes = vec![ratecore::policy::Attribute::new("client_ip", ip.as_bytes())];
        if rng.below(5) != 0 {
            attributes.push(ratecore::policy::Attribute::new("user", user.as_bytes()));
        }
        if rng.below(4) != 0 {
            attributes.push(ratecore::policy::Attribute::new("app", app.as_bytes()));
        }
        let request = ratecore::policy::Request::new(method, path, &attributes);
        let cost = if rng.below(20) == 0 { 3 } else { 1 };
        let peek = rng.below(10) == 0;
        let (expected, actual) = if peek {
            (
                blocking.peek(&request, now, cost),
                asynchronous.peek_async(&request, now, cost).await,
            )
        } else {
            (
                blocking.check(&request, now, cost),
                asynchronous.check_async(&request, now, cost).await,
            )
        };
        match (expected, actual) {
            (Ok(e), Ok(a)) => {
                assert_eq!(e.fault(), None);
                assert_eq!(shown(&e), shown(&a), "request {index}: {request:?}");
                if e.allowed() {
                    allowed += 1;
                } else {
                    denied += 1;
                }
            }
            (e, a) => assert_eq!(e.err(), a.err(), "request {index}: {request:?}"),
        }
    }
    assert!(
        allowed > 100 && denied > 50,
        "{allowed} allowed, {denied} denied"
    );
    let metrics =
        |policy: &ratecore::policy::Policy| format!("{:?}", policy.metrics().collect::<Vec<_>>());
    assert_eq!(metrics(&blocking), metrics(&asynchronous));
}
