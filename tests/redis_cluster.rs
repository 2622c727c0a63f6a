//! The Redis backend on a real Redis Cluster of 3 primaries and 3 replicas
//! (`tests/redis/cluster.sh`, a 1 s `cluster-node-timeout`): keys of one request key share
//! a slot, checks are routed by slot, admission counts are exact across clients, a primary
//! killed mid-run gives the configured failure decisions and then recovery, and the
//! over-admission that asynchronous replication allows across the failover is measured —
//! and removed by `wait_replicas`.
//!
//! They need `RATECORE_REDIS_CLUSTER_NODES` and `RATECORE_REDIS_CLUSTER_DIR` (set by
//! `tests/redis/cluster.sh`) and skip with a notice otherwise. They run one at a time
//! (they kill nodes).
#![cfg(feature = "redis")]

#[path = "redis/cluster_nodes.rs"]
mod cluster_nodes;
#[path = "redis/common.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ratecore::redis_backend::{FailureMode, RedisBackend};
use ratecore::{Algorithm, Quota};

use cluster_nodes::{
    assert_engine_used, assert_race_never_over_admitted, checks_follow_ask_during_a_slot_migration,
    cluster, config, connect, failover_loses_little, failover_with_wait_loses_nothing,
    hourly_limiter, ip_and_account, keyslot, port_of, primary_of, Clients, HOUR, RACE_ACCOUNTS,
    RACE_IP, T0,
};
use common::unique_prefix;

#[test]
fn keys_of_one_request_key_share_a_slot_and_keys_spread_over_primaries() {
    let Some((nodes, _, _serial)) = cluster("keys_share_a_slot") else {
        return;
    };
    let backend = RedisBackend::new(config(&nodes, "slots", FailureMode::Closed)).unwrap();
    let quota = Quota::per_hour(10).unwrap();
    let gcra = backend.limit("a{b}", Algorithm::Gcra, quota).unwrap();
    let strict = backend
        .limit(
            "minute",
            Algorithm::SlidingWindowStrict { sub_windows: 6 },
            quota,
        )
        .unwrap();
    let mut primaries = std::collections::BTreeSet::new();
    for key in [
        &b"user-1"[..],
        b"",
        b"{",
        b"}",
        b"a}b{c",
        b"%7B",
        b"ip:10.0.0.1",
    ] {
        let a = gcra.redis_key(key);
        let b = strict.redis_key(key);
        assert_eq!(keyslot(&nodes, &a), keyslot(&nodes, &b), "{key:?}");
        primaries.insert(primary_of(&nodes, keyslot(&nodes, &a)));
    }
    // Different request keys: different slots (and here, more than one primary).
    assert!(primaries.len() > 1, "{primaries:?}");
    // Keys whose bytes differ only in braces or escapes never share a tag.
    assert_ne!(gcra.redis_key(b"{"), gcra.redis_key(b"%7B"));
    // A composite on one key is one check on one primary.
    let composite = backend.composite(vec![gcra, strict]).unwrap();
    // The quota of 10 admits ten, then denies.
    for i in 0..=10 {
        let checked = composite.check(b"user-1", T0 + i, 1).unwrap();
        assert!(checked.fault.is_none(), "{checked:?}");
        assert_eq!(checked.decision.allowed, i < 10, "{i}: {checked:?}");
    }
    assert_engine_used(&backend);
}

#[test]
fn admission_counts_are_exact_across_clients() {
    let Some((nodes, _, _serial)) = cluster("exact_counts") else {
        return;
    };
    let prefix = unique_prefix("exact");
    let limit = 40;
    let keys: Vec<Vec<u8>> = (0..12)
        .map(|i| format!("client-{i}").into_bytes())
        .collect();
    // Three clients (backends with their own pools), each from two threads.
    let admitted: Vec<Arc<AtomicU64>> = keys.iter().map(|_| Arc::default()).collect();
    let mut threads = Vec::new();
    for client in 0..3 {
        let mut cfg = config(&nodes, "exact", FailureMode::Closed);
        cfg.prefix.clone_from(&prefix);
        let backend = RedisBackend::new(cfg).unwrap();
        for thread in 0..2 {
            let quota = Quota::per_hour(limit).unwrap();
            let limiter = backend.limiter("fixed", Algorithm::FixedWindow, quota);
            let limiter = limiter.unwrap();
            let keys = keys.clone();
            let admitted = admitted.clone();
            threads.push(thread::spawn(move || {
                for round in 0..(limit as usize / 2 + 5) {
                    for (key, count) in keys.iter().zip(&admitted) {
                        let now = T0 + (client * 1000 + thread * 100 + round) as u64;
                        let decision = limiter.try_check(key, now, 1).unwrap();
                        if decision.allowed {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
    }
    for t in threads {
        t.join().unwrap();
    }
    // 3 clients × 2 threads × 25 attempts per key: exactly `limit` admitted for each.
    for (key, count) in keys.iter().zip(&admitted) {
        assert_eq!(count.load(Ordering::Relaxed), limit, "{key:?}");
    }
}
#[test]
fn a_cross_slot_denial_consumes_nothing() {
    let Some((nodes, _, _serial)) = cluster("cross_slot") else {
        return;
    };
    let (backend, ip, account) = ip_and_account(config(&nodes, "cross", FailureMode::Closed), 3, 2);
    let (ip_key, account_key) = (&b"10.0.0.1"[..], &b"acct-7"[..]);
    assert_ne!(
        keyslot(&nodes, &ip.redis_key(ip_key)),
        keyslot(&nodes, &account.redis_key(account_key))
    );
    let pair = [(&ip, ip_key), (&account, account_key)];
    let mut states = [ratecore::Decision::EMPTY; 2];
    for i in 0..2 {
        let checked = backend
            .try_check_limits(&pair, T0 + i, 1, &mut states)
            .unwrap();
        assert!(checked.allowed);
        assert_eq!(
            checked.remaining,
            1 - i,
            "the most restrictive: the account's"
        );
        assert_eq!((states[0].remaining, states[1].remaining), (2 - i, 1 - i));
    }
    // The account denies: the IP's limit keeps its one remaining request.
    let denied = backend
        .try_check_limits(&pair, T0 + 2, 1, &mut states)
        .unwrap();
    assert!(!denied.allowed);
    assert!(!states[1].allowed);
    let ip_alone = [(&ip, ip_key)];
    assert!(
        backend
            .try_check_limits(&ip_alone, T0 + 3, 1, &mut [])
            .unwrap()
            .allowed
    );
    assert!(
        !backend
            .try_check_limits(&ip_alone, T0 + 4, 1, &mut [])
            .unwrap()
            .allowed
    );
    assert_engine_used(&backend);
}

#[test]
fn racing_cross_slot_checks_never_over_admit() {
    let Some((nodes, _, _serial)) = cluster("cross_slot_race") else {
        return;
    };
    let (backend, ip, account) =
        ip_and_account(config(&nodes, "cross-race", FailureMode::Closed), 30, 8);
    let per_account: Vec<AtomicU64> = RACE_ACCOUNTS.iter().map(|_| AtomicU64::new(0)).collect();
    thread::scope(|scope| {
        for t in 0..6u64 {
            let (backend, ip, account, per_account) = (&backend, &ip, &account, &per_account);
            scope.spawn(move || {
                for i in 0..20u64 {
                    let which = ((t + i) % 3) as usize;
                    let pair = [(ip, RACE_IP), (account, RACE_ACCOUNTS[which])];
                    let decision = backend
                        .try_check_limits(&pair, T0 + t * 100 + i, 1, &mut [])
                        .unwrap();
                    if decision.allowed {
                        per_account[which].fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_race_never_over_admitted("blocking", &backend, &ip, &per_account);
}

/// [`checks_follow_ask_during_a_slot_migration`] on the blocking transport.
#[test]
fn checks_with_wait_follow_ask_during_a_slot_migration() {
    checks_follow_ask_during_a_slot_migration("ask", |limiter, key, now| {
        limiter.check(key, now, 1).unwrap()
    });
}

#[test]
fn a_killed_primary_gives_configured_decisions_then_recovers() {
    failover_loses_little("failover", Clients::Threads);
}

#[test]
fn wait_replicas_loses_no_admission_across_a_failover() {
    failover_with_wait_loses_nothing("failover_wait", Clients::Threads);
}

/// `INFO commandstats` calls and microseconds of the check commands, summed over the
/// primaries.
fn server_time(nodes: &[String]) -> (u64, u64) {
    let (mut calls, mut usec) = (0, 0);
    for url in nodes {
        let Some(mut c) = connect(port_of(url)) else {
            continue;
        };
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut c)
            .unwrap_or_default();
        for line in info.lines().filter(|l| {
            l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_ratecore.check:")
        }) {
            for field in line.split([':', ',']) {
                if let Some(v) = field.strip_prefix("calls=") {
                    calls += v.parse::<u64>().unwrap_or(0);
                }
                if let Some(v) = field.strip_prefix("usec=") {
                    usec += v.parse::<u64>().unwrap_or(0);
                }
            }
        }
    }
    (calls, usec)
}

/// Throughput on the cluster: GCRA 100/s, 10 000 keys round robin (spread over the three
/// primaries' slots), 1.5 s per row, `now` from the wall clock; blocking threads, then
/// (feature `redis-tokio`) async tasks.
///
/// `bash tests/redis/cluster.sh cargo test --release --features redis-tokio --test
/// redis_cluster cluster_throughput -- --ignored --nocapture`
#[test]
#[ignore = "a measurement: run by hand (see the Redis docs)"]
fn cluster_throughput() {
    let Some((nodes, _, _serial)) = cluster("cluster_throughput") else {
        return;
    };
    let mut cfg = config(&nodes, "throughput", FailureMode::Closed);
    cfg.min_ttl = Duration::from_millis(1);
    let backend = RedisBackend::new(cfg).unwrap();
    let limiter = backend
        .limiter("bench", Algorithm::Gcra, Quota::per_second(100).unwrap())
        .unwrap();
    let keys: Vec<Vec<u8>> = (0..10_000)
        .map(|i| format!("key-{i}").into_bytes())
        .collect();
    println!("| clients | checks/s | Redis µs per check | ceiling of 3 primaries, checks/s |");
    println!("|---|---|---|---|");
    let pace = Duration::from_millis(1500);
    for threads in [1, 4, 16] {
        let clients = format!("{threads} thread{}", if threads == 1 { "" } else { "s" });
        throughput_row(&nodes, &clients, || {
            let total = AtomicU64::new(0);
            let started = Instant::now();
            thread::scope(|scope| {
                for t in 0..threads {
                    let (limiter, keys, total) = (&limiter, &keys, &total);
                    scope.spawn(move || {
                        let mut i = t * 7919;
                        while started.elapsed() < pace {
                            let now = ratecore::clock::unix_time_nanos();
                            let checked = limiter.check(&keys[i % keys.len()], now, 1).unwrap();
                            assert!(checked.fault.is_none(), "{checked:?}");
                            i += 1;
                        }
                        total.fetch_add((i - t * 7919) as u64, Ordering::Relaxed);
                    });
                }
            });
            total.into_inner()
        });
    }
    // The async transport: 64 tasks on a runtime of two threads, one multiplexed
    // connection per node.
    #[cfg(feature = "redis-tokio")]
    throughput_row(&nodes, "64 async tasks", || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let keys = Arc::new(keys.clone());
        let started = Instant::now();
        runtime.block_on(async {
            let tasks: Vec<_> = (0..64)
                .map(|t| {
                    let (limiter, keys) = (limiter.clone(), Arc::clone(&keys));
                    tokio::spawn(async move {
                        let mut i = t * 7919;
                        while started.elapsed() < pace {
                            let now = ratecore::clock::unix_time_nanos();
                            let key = &keys[i % keys.len()];
                            let checked = limiter.check_async(key, now, 1).await.unwrap();
                            assert!(checked.fault.is_none(), "{checked:?}");
                            i += 1;
                        }
                        (i - t * 7919) as u64
                    })
                })
                .collect();
            let mut total = 0;
            for task in tasks {
                total += task.await.unwrap();
            }
            total
        })
    });
}

/// Prints one row of [`cluster_throughput`]: `run` makes checks for 1.5 s and returns
/// how many.
fn throughput_row(nodes: &[String], clients: &str, run: impl FnOnce() -> u64) {
    let (calls0, usec0) = server_time(nodes);
    let started = Instant::now();
    let checks = run();
    let elapsed = started.elapsed().as_secs_f64();
    let (calls1, usec1) = server_time(nodes);
    let per_call = (usec1 - usec0) as f64 / (calls1 - calls0).max(1) as f64;
    println!(
        "| {clients} | {:.0} | {per_call:.1} | {:.0} |",
        checks as f64 / elapsed,
        3.0 * 1e6 / per_call
    );
}

/// A check with `WAIT 1` on the blocking cluster transport, in one round trip: wall time
/// per check of the backend's own check, and of the same module command and `WAIT` sent
/// both ways with the `redis` crate's cluster connection to the key's primary — as one
/// transaction routed by `CLUSTER COUNTKEYSINSLOT` (what the backend sends), and one
/// after the other (two round trips). Batches of 200 alternate, 2 000 checks per way.
///
/// `RATECORE_REDIS_URL="" RATECORE_CLUSTER_MODULE=target/release/libratecore_redis_module.so
/// RATECORE_REDIS_ENGINE=module bash tests/redis/cluster.sh cargo test --release --features
/// redis --test redis_cluster check_and_wait_round_trips -- --ignored --nocapture`
#[test]
#[ignore = "a measurement: run by hand (see the Redis docs)"]
fn check_and_wait_round_trips() {
    if let Some((nodes, _, _serial)) = cluster("check_and_wait_round_trips") {
        round_trips(&nodes);
    }
}

/// [`check_and_wait_round_trips`] on the cluster of `nodes`.
fn round_trips(nodes: &[String]) {
    use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
    use redis::ConnectionLike;

    let cfg = config(nodes, "round_trips", FailureMode::Closed);
    let limiter = hourly_limiter(cfg, 1, Algorithm::Gcra, 1_000_000);
    let key = limiter.limit().redis_key(b"k");
    let slot = keyslot(nodes, &key);
    let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
        slot,
        SlotAddr::Master,
    )));
    let client = redis::cluster::ClusterClient::new(nodes.to_vec()).unwrap();
    let mut raw = client.get_connection().unwrap();
    let check = |now: u64| {
        let mut c = redis::cmd("RATECORE.CHECK");
        c.arg(1)
            .arg(&key)
            .arg("GCRA")
            .arg(1_000_000)
            .arg(HOUR)
            .arg(1_000_000);
        c.arg("NOW").arg(now);
        c
    };
    let mut wait = redis::cmd("WAIT");
    wait.arg(1).arg(100);
    let (mut backend_ns, mut one_ns, mut two_ns) = (0u128, 0u128, 0u128);
    let mut now = T0;
    for _ in 0..10 {
        let started = Instant::now();
        for _ in 0..200 {
            now += 1;
            let checked = limiter.check(b"k", now, 1).unwrap();
            assert!(checked.fault.is_none(), "{checked:?}");
        }
        backend_ns += started.elapsed().as_nanos();
        let started = Instant::now();
        for _ in 0..200 {
            now += 1;
            let mut packed = Vec::new();
            let mut count = redis::cmd("CLUSTER");
            count.arg("COUNTKEYSINSLOT").arg(slot);
            for part in [
                &redis::cmd("MULTI"),
                &count,
                &check(now),
                &redis::cmd("EXEC"),
                &wait,
            ] {
                part.write_packed_command(&mut packed);
            }
            let replies = raw.req_packed_commands(&packed, 3, 2).unwrap();
            assert_eq!(replies[1], redis::Value::Int(1), "{replies:?}");
        }
        one_ns += started.elapsed().as_nanos();
        let started = Instant::now();
        for _ in 0..200 {
            now += 1;
            raw.route_command(&check(now), route.clone()).unwrap();
            let waited = raw.route_command(&wait, route.clone()).unwrap();
            assert_eq!(waited, redis::Value::Int(1));
        }
        two_ns += started.elapsed().as_nanos();
    }
    let per_check = |ns: u128| ns as f64 / 2_000.0 / 1_000.0;
    println!("| check with WAIT 1 | µs per check |");
    println!("|---|---|");
    println!("| the backend's check | {:.1} |", per_check(backend_ns));
    println!(
        "| one round trip (transaction) | {:.1} |",
        per_check(one_ns)
    );
    println!("| two round trips | {:.1} |", per_check(two_ns));
    println!(
        "two round trips / one: {:.2}",
        two_ns as f64 / one_ns as f64
    );
}
