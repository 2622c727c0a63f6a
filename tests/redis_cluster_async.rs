//! The async transport (feature `redis-tokio`) on the Redis Cluster of
//! `tests/redis/cluster.sh`: for one scripted sequence of checks and peeks — every
//! algorithm, composites in one slot and checks across slots, forward and backward time,
//! costs beyond the capacity — the async checks return the decisions, per-limit states
//! and errors of the blocking ones; many tasks on one key admit exactly the quota;
//! racing cross-slot checks never over-admit; and a primary killed under async load gives
//! the configured failure decisions, then Redis decides again (with `wait_replicas`, no
//! admission is lost).
//!
//! Skips with a notice without the cluster (see `tests/redis/cluster_nodes.rs`).
#![cfg(feature = "redis-tokio")]

#[path = "redis/cluster_nodes.rs"]
mod cluster_nodes;
#[path = "redis/common.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ratecore::redis_backend::{FailureMode, RedisBackend, RedisConfig, RedisLimit, RedisStats};
use ratecore::{Algorithm, Decision, Quota};

use cluster_nodes::{
    assert_engine_used, assert_race_never_over_admitted, checks_follow_ask_during_a_slot_migration,
    cluster, config, failover_loses_little, failover_with_wait_loses_nothing, ip_and_account,
    Clients, RACE_ACCOUNTS, RACE_IP, T0,
};
use common::notice;

const TASKS: usize = 64;
const SECOND: u64 = 1_000_000_000;

/// A fail-closed backend's config for `test`, never pipelined: a backend's pipelined
/// blocking checks and its async ones from a runtime of the test's would share one
/// connection across two runtimes.
fn async_config(nodes: &[String], test: &str) -> RedisConfig {
    RedisConfig {
        pipelined: false,
        ..config(nodes, test, FailureMode::Closed)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// One limit per algorithm (5 a minute), on `backend`.
fn limits(backend: &RedisBackend) -> Vec<RedisLimit> {
    let quota = Quota::per_minute(5).unwrap();
    [
        Algorithm::Gcra,
        Algorithm::FixedWindow,
        Algorithm::SlidingWindowApprox,
        Algorithm::SlidingWindowStrict { sub_windows: 4 },
    ]
    .into_iter()
    .enumerate()
    .map(|(i, algorithm)| backend.limit(&format!("l{i}"), algorithm, quota).unwrap())
    .collect()
}

/// One step of the scripted sequence.
struct Step {
    /// Which limits on which keys: one limit; two on one key (one slot); or two on
    /// different keys (across slots).
    members: Vec<(usize, &'static [u8])>,
    now: u64,
    cost: u64,
    charge: bool,
}

/// Step `step` of the scripted sequence.
fn step(step: u64) -> Step {
    const KEYS: [&[u8]; 5] = [b"user-0", b"user-1", b"user-2", b"", b"a{b}%"];
    let key = |n: u64| KEYS[(n % KEYS.len() as u64) as usize];
    let limit = (step % 4) as usize;
    let members = match step % 3 {
        0 => vec![(limit, key(step))],
        1 => vec![(limit, key(step)), ((limit + 1) % 4, key(step))],
        _ => vec![(limit, key(step)), ((limit + 2) % 4, key(step + 1))],
    };
    // Mostly forward in irregular steps, sometimes back a few seconds.
    let now = if step % 11 == 10 {
        T0 + step * 3 * SECOND - 5 * SECOND
    } else {
        T0 + step * 3 * SECOND + step % 7
    };
    // Costs 0 to 2, and now and then 7: beyond every limit's capacity.
    let cost = if step % 17 == 16 { 7 } else { step % 3 };
    Step {
        members,
        now,
        cost,
        charge: step % 5 != 4,
    }
}

/// The (limit, key) pairs of a step's members.
fn pairs<'a>(
    limits: &'a [RedisLimit],
    members: &[(usize, &'a [u8])],
) -> Vec<(&'a RedisLimit, &'a [u8])> {
    members.iter().map(|&(l, key)| (&limits[l], key)).collect()
}

#[test]
fn async_checks_decide_as_blocking_ones_on_the_cluster() {
    let Some((nodes, _, _serial)) = cluster("async_differential") else {
        return;
    };
    let blocking = RedisBackend::new(async_config(&nodes, "diff-blocking"));
    let asynchronous = RedisBackend::new(async_config(&nodes, "diff-async"));
    let (blocking, asynchronous) = (blocking.unwrap(), asynchronous.unwrap());
    let (blocking_limits, async_limits) = (limits(&blocking), limits(&asynchronous));
    let runtime = runtime();
    let mut admitted = 0;
    for n in 0..240 {
        let Step {
            members,
            now,
            cost,
            charge,
        } = step(n);
        let expected_pairs = pairs(&blocking_limits, &members);
        let async_pairs = pairs(&async_limits, &members);
        let mut expected_states = vec![Decision::EMPTY; members.len()];
        let mut states = vec![Decision::EMPTY; members.len()];
        let (expected, got) = if charge {
            let got = asynchronous.try_check_limits_async(&async_pairs, now, cost, &mut states);
            (
                blocking.try_check_limits(&expected_pairs, now, cost, &mut expected_states),
                runtime.block_on(got),
            )
        } else {
            let got = asynchronous.try_peek_limits_async(&async_pairs, now, cost, &mut states);
            (
                blocking.try_peek_limits(&expected_pairs, now, cost, &mut expected_states),
                runtime.block_on(got),
            )
        };
        assert_eq!(got, expected, "step {n}: {members:?} at {now}, cost {cost}");
        assert_eq!(states, expected_states, "step {n}");
        admitted += u64::from(got.is_ok_and(|d| d.allowed && charge && cost > 0));
    }
    let stats = asynchronous.stats();
    notice(&format!(
        "async differential on the cluster: 240 steps, {admitted} charged admissions; {stats:?}"
    ));
    // The sequence admits and denies, in one slot and across slots.
    assert!(admitted > 20 && admitted < 200, "{admitted}");
    // Across slots a check is a call per slot to peek, then one per slot to charge.
    assert!(stats.checks > 300, "{stats:?}");
    // The same counts, but for script loads: a node loads the script for whichever
    // backend reaches it first.
    let unloaded = |stats| RedisStats {
        script_loads: 0,
        ..stats
    };
    assert_eq!(unloaded(stats), unloaded(blocking.stats()));
    assert_engine_used(&asynchronous);
}

#[test]
fn many_tasks_on_one_key_admit_exactly_the_quota() {
    let Some((nodes, _, _serial)) = cluster("async_exact") else {
        return;
    };
    let backend = RedisBackend::new(async_config(&nodes, "async-exact")).unwrap();
    let quota = Quota::per_hour(100).unwrap();
    let limiter = backend
        .limiter("fixed", Algorithm::FixedWindow, quota)
        .unwrap();
    let admitted = Arc::new(AtomicU64::new(0));
    runtime().block_on(async {
        let tasks: Vec<_> = (0..TASKS as u64)
            .map(|task| {
                let (limiter, admitted) = (limiter.clone(), Arc::clone(&admitted));
                tokio::spawn(async move {
                    for i in 0..4 {
                        let now = T0 + task * 10 + i;
                        let checked = limiter.check_async(b"hot", now, 1).await.unwrap();
                        assert!(checked.fault.is_none(), "{checked:?}");
                        admitted.fetch_add(u64::from(checked.decision.allowed), Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    // 64 tasks × 4 attempts on one multiplexed connection per node: exactly 100.
    assert_eq!(admitted.load(Ordering::Relaxed), 100);
    let stats = backend.stats();
    assert_eq!((stats.checks, stats.decided), (256, 256), "{stats:?}");
    assert_engine_used(&backend);
}

#[test]
fn async_cross_slot_checks_consume_nothing_on_denial_and_never_over_admit() {
    let Some((nodes, _, _serial)) = cluster("async_cross_slot") else {
        return;
    };
    let (backend, ip, account) = ip_and_account(async_config(&nodes, "async-cross"), 30, 8);
    let runtime = runtime();
    // One account: eight admitted, then the account denies and the IP keeps its 22.
    let pair = [(&ip, &b"10.0.0.1"[..]), (&account, &b"acct-1"[..])];
    let mut states = [Decision::EMPTY; 2];
    for i in 0..10 {
        let checked =
            runtime.block_on(backend.try_check_limits_async(&pair, T0 + i, 1, &mut states));
        assert_eq!(checked.unwrap().allowed, i < 8, "{i}");
    }
    let ip_alone = [(&ip, &b"10.0.0.1"[..])];
    let peek = runtime.block_on(backend.try_peek_limits_async(&ip_alone, T0 + 20, 0, &mut []));
    assert_eq!(
        peek.unwrap().remaining,
        30 - 8,
        "the denials consumed nothing"
    );
    // Racing tasks over three accounts and one IP.
    let per_account: Arc<Vec<AtomicU64>> =
        Arc::new(RACE_ACCOUNTS.iter().map(|_| AtomicU64::new(0)).collect());
    runtime.block_on(async {
        let tasks: Vec<_> = (0..TASKS as u64)
            .map(|t| {
                let which = (t % 3) as usize;
                let (backend, ip, account) = (backend.clone(), ip.clone(), account.clone());
                let per_account = Arc::clone(&per_account);
                tokio::spawn(async move {
                    let pair = [(&ip, RACE_IP), (&account, RACE_ACCOUNTS[which])];
                    let decision = backend
                        .try_check_limits_async(&pair, T0 + t, 1, &mut [])
                        .await
                        .unwrap();
                    per_account[which].fetch_add(u64::from(decision.allowed), Ordering::Relaxed);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    assert_race_never_over_admitted("async", &backend, &ip, &per_account);
}

/// `checks_follow_ask_during_a_slot_migration` on the async transport.
#[test]
fn async_checks_with_wait_follow_ask_during_a_slot_migration() {
    let runtime = runtime();
    checks_follow_ask_during_a_slot_migration("async_ask", |limiter, key, now| {
        runtime.block_on(limiter.check_async(key, now, 1)).unwrap()
    });
}

#[test]
fn a_killed_primary_under_async_load_gives_configured_decisions_then_recovers() {
    failover_loses_little("failover_async", Clients::Tasks(16));
}

#[test]
fn async_wait_replicas_loses_no_admission_across_a_failover() {
    failover_with_wait_loses_nothing("failover_async_wait", Clients::Tasks(16));
}

/// Checks with `WAIT 1` from 64 tasks on one key's shard: on 16 wait lines, then on the
/// connection every check shares (`wait_connections = 0`), alternating, 1.5 s each.
/// Prints checks per second and the checks that failed (timeouts or `WAIT` falling
/// short) for each. Measures; asserts nothing.
#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn wait_lines_throughput() {
    let Some((nodes, _, _serial)) = cluster("wait_lines_throughput") else {
        return;
    };
    let runtime = runtime();
    println!("| checks with WAIT 1, 64 tasks | checks/s | failed |");
    println!("|---|---|---|");
    for round in 0..2 {
        for lines in [16, 0] {
            let mut cfg = async_config(&nodes, "wait-lines");
            cfg.wait_replicas = 1;
            cfg.wait_timeout = std::time::Duration::from_millis(200);
            cfg.wait_connections = lines;
            let backend = RedisBackend::new(cfg).unwrap();
            let limiter = backend
                .limiter(
                    "bench",
                    Algorithm::Gcra,
                    Quota::per_second(1_000_000).unwrap(),
                )
                .unwrap();
            let started = std::time::Instant::now();
            let pace = std::time::Duration::from_millis(1500);
            let checks = runtime.block_on(async {
                let tasks: Vec<_> = (0..TASKS as u64)
                    .map(|task| {
                        let limiter = limiter.clone();
                        tokio::spawn(async move {
                            let mut n = 0u64;
                            while started.elapsed() < pace {
                                let now = T0 + task * 1_000_000 + n;
                                limiter.check_async(b"hot", now, 1).await.unwrap();
                                n += 1;
                            }
                            n
                        })
                    })
                    .collect();
                let mut total = 0;
                for task in tasks {
                    total += task.await.unwrap();
                }
                total
            });
            let per_second = checks as f64 / started.elapsed().as_secs_f64();
            let stats = backend.stats();
            println!(
                "| {lines} wait lines (round {}) | {per_second:.0} | {} |",
                round + 1,
                stats.checks - stats.decided
            );
        }
    }
}
