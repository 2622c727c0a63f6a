//! Several clients — threads of one process, and several processes — against one Redis
//! and one key admit exactly what the quota allows: never more (the script is atomic),
//! and, with every request arriving at the same caller time, never less.
//!
//! The multi-process test re-runs this test binary as children (`child_worker`, which
//! does nothing unless `RATECORE_REDIS_CHILD` is set).
//!
//! Needs a real redis-server (`tests/redis/run.sh`); skips with a notice without
//! `RATECORE_REDIS_URL`.
#![cfg(feature = "redis")]

#[path = "redis/common.rs"]
mod common;
#[path = "support/race.rs"]
mod race;

use std::process::{Child, Command, Stdio};

use ratecore::redis_backend::{RedisBackend, RedisConfig};
use ratecore::{Algorithm, Quota};

const SECOND: u64 = 1_000_000_000;

fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::Gcra => "gcra",
        Algorithm::FixedWindow => "fixed",
        Algorithm::SlidingWindowApprox => "approx",
        Algorithm::SlidingWindowStrict { .. } => "strict",
    }
}

fn algorithm_named(name: &str) -> Algorithm {
    common::each_algorithm(10)
        .into_iter()
        .find(|a| algorithm_name(*a) == name)
        .expect("known algorithm")
}

/// `threads` threads, each sending `attempts` checks of cost 1 for `key` at `now`;
/// returns how many were admitted. Every check must be decided by Redis.
fn hammer(
    backend: &RedisBackend,
    algorithm: Algorithm,
    quota: Quota,
    key: &str,
    now: u64,
    threads: usize,
    attempts: usize,
) -> usize {
    let limiter = backend.limiter("shared", algorithm, quota).unwrap();
    let admitted = race::race(threads, |_, start| {
        start.wait();
        (0..attempts)
            .filter(|_| {
                limiter
                    .try_check(key.as_bytes(), now, 1)
                    .expect("Redis decides")
                    .allowed
            })
            .count()
    });
    admitted.into_iter().sum()
}

#[test]
fn threads_admit_exactly_the_quota() {
    let Some(url) = common::redis_url("threads_admit_exactly_the_quota") else {
        return;
    };
    let backend = common::backend(&url, "threads");
    for algorithm in common::each_algorithm(10) {
        let quota = Quota::new(100, 3600 * SECOND).unwrap();
        // Several rounds on one key, each two periods later (when even the approximate
        // window's previous count no longer weighs): every round admits exactly the
        // limit again.
        for round in 0..3u64 {
            let now = 1_700_000_000_000_000_000 + round * 2 * 3600 * SECOND;
            let admitted = hammer(&backend, algorithm, quota, "one-key", now, 8, 40);
            assert_eq!(admitted, 100, "{algorithm:?}, round {round}");
        }
    }
    // A composite (5/s and 8/min) under contention: exactly the tighter limit.
    let strict = Algorithm::SlidingWindowStrict { sub_windows: 6 };
    let composite = common::composite(
        &backend,
        &[
            ("per-second", Algorithm::Gcra, Quota::per_second(5).unwrap()),
            ("per-minute", strict, Quota::per_minute(8).unwrap()),
        ],
    );
    let now = 1_700_000_000_000_000_000u64;
    let admitted: usize = race::race(6, |_, _| {
        (0..10)
            .filter(|_| {
                composite
                    .try_check_each(b"client", now, 1, &mut [])
                    .unwrap()
                    .allowed
            })
            .count()
    })
    .into_iter()
    .sum();
    assert_eq!(admitted, 5);
    // One second later the per-second limit allows 5 more, but the per-minute one only
    // 3: denials consumed nothing from it.
    let admitted = (0..20)
        .filter(|_| {
            composite
                .try_check_each(b"client", now + SECOND, 1, &mut [])
                .unwrap()
                .allowed
        })
        .count();
    assert_eq!(admitted, 3);
    let stats = backend.stats();
    assert_eq!(stats.checks, stats.decided, "{stats:?}");
}

/// The backend each process of the multi-process tests uses: keys under `prefix`.
fn process_backend(url: &str, prefix: &str) -> RedisBackend {
    let mut config = RedisConfig::new(url);
    config.prefix = prefix.to_owned();
    config.timeout = std::time::Duration::from_secs(5);
    config.engine = common::engine();
    config.pipelined = common::pipelined();
    RedisBackend::new(config).unwrap()
}

/// This test binary again, running only the test `worker`, told what to do by `spec` in
/// the environment variable `var`.
fn spawn_child(worker: &str, var: &str, spec: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([worker, "--exact", "--nocapture", "--test-threads=1"])
        .env(var, spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the test binary as a child")
}

/// The admissions a child printed; it must have succeeded.
fn child_admitted(child: Child) -> usize {
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "child failed: {:?}", output.status);
    let stdout = String::from_utf8_lossy(&output.stdout);
    // libtest may print the count on its "test child_worker ..." line.
    let (_, after) = stdout
        .split_once("RATECORE_CHILD_ADMITTED=")
        .unwrap_or_else(|| panic!("child printed no count: {stdout}"));
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse::<usize>().unwrap()
}

/// A child worker's run: when `var` is set (by [`spawn_child`]), its `|`-separated words
/// go to `work`, and the admissions it returns are printed for [`child_admitted`].
/// Outside a child, nothing.
fn run_child<const N: usize>(var: &str, work: impl FnOnce([&str; N]) -> usize) {
    let Ok(spec) = std::env::var(var) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let words = parts
        .try_into()
        .unwrap_or_else(|_| panic!("bad {var} {spec:?}"));
    println!("RATECORE_CHILD_ADMITTED={}", work(words));
}

/// Run by `processes_admit_exactly_the_quota` in child processes.
#[test]
fn child_worker() {
    let var = "RATECORE_REDIS_CHILD";
    run_child(var, |[url, prefix, algorithm, now, threads, attempts]| {
        hammer(
            &process_backend(url, prefix),
            algorithm_named(algorithm),
            Quota::new(100, 3600 * SECOND).unwrap(),
            "one-key",
            now.parse().unwrap(),
            threads.parse().unwrap(),
            attempts.parse().unwrap(),
        )
    });
}

#[test]
fn processes_admit_exactly_the_quota() {
    let Some(url) = common::redis_url("processes_admit_exactly_the_quota") else {
        return;
    };
    for algorithm in common::each_algorithm(10) {
        let prefix = common::unique_prefix("processes");
        let now = 1_700_000_000_000_000_000u64;
        // Three child processes of 3 threads × 30 attempts, and this process with
        // 3 threads × 30: 360 attempts at one key for a quota of 100.
        let spec = format!("{url}|{prefix}|{}|{now}|3|30", algorithm_name(algorithm));
        let children: Vec<_> = (0..3)
            .map(|_| spawn_child("child_worker", "RATECORE_REDIS_CHILD", &spec))
            .collect();
        let mut admitted = hammer(
            &process_backend(&url, &prefix),
            algorithm,
            Quota::new(100, 3600 * SECOND).unwrap(),
            "one-key",
            now,
            3,
            30,
        );
        admitted += children.into_iter().map(child_admitted).sum::<usize>();
        assert_eq!(admitted, 100, "{algorithm:?} across 4 processes");
    }
}

/// ev.energy's policy on Redis: a client-credentials app's requests, sent by
/// `threads` threads of this process, each thread naming its own user. Returns how many
/// were admitted.
fn hammer_policy(url: &str, prefix: &str, now: u64, threads: usize, attempts: usize) -> usize {
    use ratecore::policy::{Policy, PolicySpec};
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/policies/evenergy.toml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let spec = PolicySpec::from_toml_str(&text, path).unwrap();
    let mut config = common::test_config(url, "policy");
    config.prefix = prefix.to_owned();
    let policy = Policy::with_redis(spec, RedisBackend::new(config).unwrap()).unwrap();
    let user = format!("user-{}", std::process::id());
    let admitted = race::hammer_app(threads, attempts as u64, &user, |request, _| {
        let decision = policy.check(request, now, 1).unwrap();
        assert_eq!(decision.fault(), None, "Redis decides");
        decision.allowed()
    });
    admitted as usize
}

/// Run by `evenergy_client_credentials_app_across_4_processes` in child processes.
#[test]
fn policy_child_worker() {
    let var = "RATECORE_REDIS_POLICY_CHILD";
    run_child(var, |[url, prefix, now, threads, attempts]| {
        let (now, threads, attempts) = (now.parse(), threads.parse(), attempts.parse());
        hammer_policy(
            url,
            prefix,
            now.unwrap(),
            threads.unwrap(),
            attempts.unwrap(),
        )
    });
}

/// ev.energy's client-credentials clients share one limit per app: 4 processes sharing
/// one Redis through `Policy::with_redis` admit exactly 1000 of the app's requests in
/// the rolling hour, whichever process sends them.
#[test]
fn evenergy_client_credentials_app_across_4_processes() {
    let Some(url) = common::redis_url("evenergy_client_credentials_app_across_4_processes") else {
        return;
    };
    let prefix = common::unique_prefix("policy-processes");
    let now = 1_700_000_000_000_000_000u64;
    // Three children and this process, 2 threads × 200 attempts each: 1600 attempts.
    let spec = format!("{url}|{prefix}|{now}|2|200");
    let children: Vec<_> = (0..3)
        .map(|_| spawn_child("policy_child_worker", "RATECORE_REDIS_POLICY_CHILD", &spec))
        .collect();
    let mut admitted = hammer_policy(&url, &prefix, now, 2, 200);
    admitted += children.into_iter().map(child_admitted).sum::<usize>();
    assert_eq!(admitted, 1000, "one app's limit across 4 processes");
}
