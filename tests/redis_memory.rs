//! Redis memory: what one key's state costs (`MEMORY USAGE`, per algorithm), and a server
//! out of memory under `maxmemory` with `noeviction`: every check answers through the
//! configured failure path (closed: denied; open: admitted), flagged and counted, on the
//! script and on the module.
//!
//! They need the throwaway redis-server of `tests/redis/run.sh` (the OOM test changes its
//! `maxmemory` and restores it) and skip with a notice otherwise.
#![cfg(feature = "redis")]

#[path = "redis/common.rs"]
mod common;

use ratecore::redis_backend::{FailureMode, Fault, RedisBackend, RedisEngine};
use ratecore::{Algorithm, Quota};

use common::{admin, notice, redis_url, test_config};

const T0: u64 = 1_000 * 3_600_000_000_000;

fn algorithms() -> [(&'static str, Algorithm); 4] {
    [
        ("GCRA", Algorithm::Gcra),
        ("fixed window", Algorithm::FixedWindow),
        ("approximate sliding window", Algorithm::SlidingWindowApprox),
        (
            "strict sliding window, 60 sub-windows",
            Algorithm::SlidingWindowStrict { sub_windows: 60 },
        ),
    ]
}

#[test]
fn memory_usage_per_key_per_algorithm() {
    let Some(url) = redis_url("memory_usage_per_key_per_algorithm") else {
        return;
    };
    let backend = RedisBackend::new(test_config(&url, "memory")).unwrap();
    let mut c = admin(&url);
    let mut table =
        String::from("| algorithm | value bytes | MEMORY USAGE bytes |\n|---|---|---|\n");
    for (name, algorithm) in algorithms() {
        let limiter = backend
            .limiter(name, algorithm, Quota::per_hour(1000).unwrap())
            .unwrap();
        let key = b"user-000001";
        assert!(limiter.try_check(key, T0, 1).unwrap().allowed);
        let redis_key = limiter.limit().redis_key(key);
        let len: u64 = redis::cmd("STRLEN").arg(&redis_key).query(&mut c).unwrap();
        let usage: u64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&redis_key)
            .arg("SAMPLES")
            .arg(0)
            .query(&mut c)
            .unwrap();
        assert!(len > 0 && usage >= len, "{name}: {len} bytes, {usage} used");
        table.push_str(&format!("| {name} | {len} | {usage} |\n"));
    }
    notice(&format!(
        "MEMORY USAGE of one key (key name {} bytes):\n{table}",
        backend
            .limit("GCRA", Algorithm::Gcra, Quota::per_hour(1000).unwrap())
            .unwrap()
            .redis_key(b"user-000001")
            .len()
    ));
}

#[test]
fn out_of_memory_answers_through_the_failure_path() {
    let Some(url) = redis_url("out_of_memory_answers_through_the_failure_path") else {
        return;
    };
    let mut c = admin(&url);
    let policy: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query(&mut c)
        .unwrap();
    let filler = format!("rctest-oom-filler:{}", std::process::id());
    // Just above what the server uses now, then fill: every write is refused.
    let used: String = redis::cmd("INFO").arg("memory").query(&mut c).unwrap();
    let used: u64 = used
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("noeviction")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(used + 1_000_000)
        .query(&mut c)
        .unwrap();
    let mut filled = 0;
    while redis::cmd("SETRANGE")
        .arg(format!("{filler}:{filled}"))
        .arg(100_000)
        .arg("x")
        .query::<u64>(&mut c)
        .is_ok()
    {
        filled += 1;
        assert!(filled < 1000, "maxmemory never refused a write");
    }
    let mut outcome = Vec::new();
    let mut engines = vec![RedisEngine::Script];
    if std::env::var("RATECORE_REDIS_MODULE").is_ok() {
        engines.push(RedisEngine::Module);
    }
    for engine in engines {
        for mode in [FailureMode::Closed, FailureMode::Open] {
            let mut config = test_config(&url, "oom");
            config.engine = engine;
            config.failure_mode = mode;
            let backend = RedisBackend::new(config).unwrap();
            for (name, algorithm) in algorithms() {
                let limiter = backend
                    .limiter(name, algorithm, Quota::per_hour(10).unwrap())
                    .unwrap();
                let checked = limiter.check(b"k", T0, 1).unwrap();
                outcome.push((engine, mode, name, checked));
            }
            let stats = backend.stats();
            let failed = match mode {
                FailureMode::Closed => stats.failed_closed,
                FailureMode::Open => stats.failed_open,
            };
            assert_eq!(
                (failed, stats.server_errors),
                (4, 4),
                "{engine:?} {mode:?}: {stats:?}"
            );
        }
    }
    // Restore the server before asserting, so a failure leaves it usable.
    for i in 0..filled {
        let _: () = redis::cmd("DEL")
            .arg(format!("{filler}:{i}"))
            .query(&mut c)
            .unwrap();
    }
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(0)
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg(&policy[1])
        .query(&mut c)
        .unwrap();
    for (engine, mode, name, checked) in outcome {
        assert_eq!(
            checked.fault,
            Some(Fault::Server),
            "{engine:?} {mode:?} {name}"
        );
        assert_eq!(
            checked.decision.allowed,
            mode == FailureMode::Open,
            "{engine:?} {mode:?} {name}"
        );
    }
}
