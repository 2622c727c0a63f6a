//! Failure behaviour of the Redis backend: Redis refused, hung, paused, killed and
//! restarted, or holding foreign values — errors surface as the configured fail-closed
//! (default) or fail-open decisions, flagged and counted; the backend recovers by itself;
//! nothing panics.
//!
//! The first three tests need no Redis (a refused setup, a refused port, a fake server
//! that never answers).
//! The others need the throwaway redis-server of `tests/redis/run.sh` (they kill and
//! restart it, so they also need `RATECORE_REDIS_CONF` and `RATECORE_REDIS_PIDFILE`);
//! they skip with a notice otherwise. They run one at a time (they disturb the server).
#![cfg(feature = "redis")]

#[path = "redis/common.rs"]
mod common;

use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use common::{managed_server, server_answers, wait_until};
use ratecore::redis_backend::{
    FailureMode, Fault, RedisBackend, RedisCheckError, RedisConfig, RedisEngine, RedisLimiter,
    RedisSetupError, MAX_WAIT_CONNECTIONS,
};
use ratecore::{Algorithm, Decision, Quota};

const SECOND: u64 = 1_000_000_000;

/// Tests that disturb (or depend on an undisturbed) server take this.
fn server_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// For a test that disturbs the managed server but needs no way to restart it: the
/// server's URL (`None`: skip, there is none), once the server answers, and the
/// [`server_lock`] held for the test.
fn answering_server(test: &str) -> Option<(String, MutexGuard<'static, ()>)> {
    let (url, _, _) = managed_server(test)?;
    let guard = server_lock();
    wait_until("redis-server answers", Duration::from_secs(10), || {
        server_answers(&url)
    });
    Some((url, guard))
}

fn limiter(backend: &RedisBackend) -> RedisLimiter {
    backend
        .limiter("f", Algorithm::Gcra, Quota::per_hour(3).unwrap())
        .unwrap()
}

fn config(url: &str, mode: FailureMode) -> RedisConfig {
    let mut config = RedisConfig::new(url);
    config.prefix = common::unique_prefix("failures");
    config.failure_mode = mode;
    config.timeout = Duration::from_millis(200);
    config.reconnect_backoff = Duration::from_millis(50);
    config.min_ttl = Duration::from_secs(600);
    config.engine = common::engine();
    config.pipelined = common::pipelined();
    config
}

fn assert_failure(decision: Decision, mode: FailureMode, capacity: u64) {
    let wait = SECOND; // RedisConfig's default failure_retry_after
    let expected = match mode {
        FailureMode::Closed => Decision {
            allowed: false,
            limit: capacity,
            remaining: 0,
            reset_after: wait,
            retry_after: wait,
        },
        FailureMode::Open => Decision {
            allowed: true,
            limit: capacity,
            remaining: 0,
            reset_after: wait,
            retry_after: 0,
        },
    };
    assert_eq!(decision, expected);
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A configuration the backend cannot work with is refused when the backend is made,
/// with an error that says why, before any connection is attempted.
#[test]
fn unusable_configurations_are_refused() {
    let refused = |change: fn(&mut RedisConfig)| {
        let mut config = RedisConfig::new("redis://127.0.0.1:1/");
        change(&mut config);
        RedisBackend::new(config).map(drop).unwrap_err()
    };
    assert_eq!(
        refused(|c| c.timeout = Duration::ZERO),
        RedisSetupError::ZeroTimeout
    );
    let too_many = refused(|c| c.wait_connections = MAX_WAIT_CONNECTIONS + 1);
    assert_eq!(
        too_many,
        RedisSetupError::TooManyWaitConnections(MAX_WAIT_CONNECTIONS + 1)
    );
    assert!(too_many.to_string().contains("at most 1024"), "{too_many}");
    assert!(matches!(
        refused(|c| c.url = String::from("http://nowhere")),
        RedisSetupError::Url(_)
    ));
    // The bounds themselves are taken.
    let mut config = RedisConfig::new("redis://127.0.0.1:1/");
    for n in [0, MAX_WAIT_CONNECTIONS] {
        config.wait_connections = n;
        assert!(RedisBackend::new(config.clone()).is_ok(), "{n}");
    }
}

#[test]
fn refused_connections_give_the_configured_failure_decision() {
    let url = format!("redis://127.0.0.1:{}/", free_port());
    for mode in [FailureMode::Closed, FailureMode::Open] {
        // A backoff long enough that the next two checks fall within it even on a
        // loaded machine (the stats below tell whether they tried to connect).
        let backoff = Duration::from_millis(500);
        let mut cfg = config(&url, mode);
        cfg.reconnect_backoff = backoff;
        let backend = RedisBackend::new(cfg).unwrap();
        let limiter = limiter(&backend);
        let checked = limiter.check(b"k", 5 * SECOND, 1).unwrap();
        assert_eq!(checked.fault, Some(Fault::Unavailable));
        assert_failure(checked.decision, mode, 3);
        // Within the reconnect backoff: fails without trying (counted as skipped).
        match limiter.try_check(b"k", 5 * SECOND, 1) {
            Err(RedisCheckError::Backend(e)) => assert_eq!(e.fault, Fault::Unavailable),
            other => panic!("expected a backend error, got {other:?}"),
        }
        // A composite fills every state with the failure decision.
        let composite = common::composite(
            &backend,
            &[
                ("a", Algorithm::FixedWindow, Quota::per_second(7).unwrap()),
                (
                    "b",
                    Algorithm::SlidingWindowApprox,
                    Quota::per_minute(9).unwrap(),
                ),
            ],
        );
        let mut states = [Decision::EMPTY; 2];
        let checked = composite
            .check_each(b"k", 5 * SECOND, 1, &mut states)
            .unwrap();
        assert!(checked.fault.is_some());
        assert_failure(checked.decision, mode, 7);
        assert_failure(states[0], mode, 7);
        assert_failure(states[1], mode, 9);
        // After the backoff it tries again (and fails again).
        thread::sleep(backoff + Duration::from_millis(30));
        let checked = limiter.check(b"k", 5 * SECOND, 1).unwrap();
        assert_eq!(checked.fault, Some(Fault::Unavailable));
        // Caller bugs stay errors, whatever the failure mode.
        assert!(matches!(
            limiter.check(b"k", 5 * SECOND, 4),
            Err(RedisCheckError::Cost(_))
        ));
        let stats = backend.stats();
        assert_eq!(stats.checks, 4, "{stats:?}");
        assert_eq!(stats.decided, 0);
        assert_eq!(stats.connects, 0);
        assert_eq!(stats.unavailable, 4);
        assert_eq!(stats.skipped, 2);
        let (fails, other) = match mode {
            FailureMode::Closed => (stats.failed_closed, stats.failed_open),
            FailureMode::Open => (stats.failed_open, stats.failed_closed),
        };
        assert_eq!((fails, other), (3, 0), "{stats:?}");
        assert!(backend.ping().is_err());
    }
}

#[test]
fn a_server_that_never_answers_times_out() {
    // Accepts connections and never replies.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let held = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut streams = Vec::new();
            for stream in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                streams.push(stream);
            }
        })
    };
    let url = format!("redis://127.0.0.1:{port}/");
    let mut config = config(&url, FailureMode::Closed);
    config.timeout = Duration::from_millis(100);
    let backend = RedisBackend::new(config).unwrap();
    let limiter = limiter(&backend);
    let started = Instant::now();
    let checked = limiter.check(b"k", SECOND, 1).unwrap();
    let waited = started.elapsed();
    assert_eq!(checked.fault, Some(Fault::Timeout));
    assert_failure(checked.decision, FailureMode::Closed, 3);
    assert!(waited >= Duration::from_millis(90), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    assert_eq!(backend.stats().timeouts, 1);
    stop.store(true, Ordering::Relaxed);
    let _ = std::net::TcpStream::connect(("127.0.0.1", port));
    held.join().unwrap();
}

#[test]
fn killing_and_restarting_redis_mid_test() {
    let Some((url, conf, pidfile)) = managed_server("killing_and_restarting_redis_mid_test") else {
        return;
    };
    let _guard = server_lock();
    let closed = RedisBackend::new(config(&url, FailureMode::Closed)).unwrap();
    let open = RedisBackend::new(config(&url, FailureMode::Open)).unwrap();
    let (closed_limiter, open_limiter) = (limiter(&closed), limiter(&open));
    let now = 1_700_000_000_000_000_000u64;
    for _ in 0..3 {
        assert_eq!(closed_limiter.check(b"k", now, 1).unwrap().fault, None);
    }
    let denied = closed_limiter.check(b"k", now, 1).unwrap();
    assert_eq!(denied.fault, None);
    assert!(!denied.decision.allowed);

    // Clients keep checking from several threads throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let decided = Arc::new(AtomicU64::new(0));
    let faults = Arc::new(AtomicU64::new(0));
    let hammers: Vec<_> = (0..4)
        .map(|i| {
            let (stop, decided, faults) = (stop.clone(), decided.clone(), faults.clone());
            let limiter = closed_limiter.clone();
            thread::spawn(move || {
                let key = format!("hammer-{i}");
                let mut t = now;
                while !stop.load(Ordering::Relaxed) {
                    t += SECOND;
                    let checked = limiter.check(key.as_bytes(), t, 1).unwrap();
                    if checked.fault.is_some() {
                        assert!(!checked.decision.allowed);
                        faults.fetch_add(1, Ordering::Relaxed);
                        thread::sleep(Duration::from_millis(5));
                    } else {
                        decided.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    wait_until("the hammers run", Duration::from_secs(5), || {
        decided.load(Ordering::Relaxed) > 20
    });

    // Kill -9: no goodbye.
    let pid: libc::pid_t = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    let killed = unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(killed, 0, "kill -9 {pid}");
    wait_until("redis-server is gone", Duration::from_secs(5), || {
        !server_answers(&url)
    });
    let faults_before = faults.load(Ordering::Relaxed);

    for _ in 0..3 {
        let checked = closed_limiter.check(b"k", now, 1).unwrap();
        assert!(matches!(
            checked.fault,
            Some(Fault::Unavailable | Fault::Timeout)
        ));
        assert_failure(checked.decision, FailureMode::Closed, 3);
        let checked = open_limiter.check(b"k", now, 1).unwrap();
        assert!(checked.fault.is_some());
        assert_failure(checked.decision, FailureMode::Open, 3);
        assert!(matches!(
            closed_limiter.try_check(b"k", now, 1),
            Err(RedisCheckError::Backend(_))
        ));
    }
    wait_until("the hammers see the outage", Duration::from_secs(5), || {
        faults.load(Ordering::Relaxed) > faults_before + 4
    });

    // Restart the same server (same port, no persistence: all states are gone).
    let status = Command::new("redis-server").arg(&conf).status().unwrap();
    assert!(status.success(), "restarting redis-server failed");
    wait_until("redis-server is back", Duration::from_secs(10), || {
        server_answers(&url)
    });

    // The same backends recover by themselves.
    for limiter in [&closed_limiter, &open_limiter] {
        wait_until("the backend recovers", Duration::from_secs(5), || {
            limiter.check(b"recovery", now, 0).unwrap().fault.is_none()
        });
    }
    // Fresh state after the restart: three admissions again, then a denial.
    for remaining in [2, 1, 0] {
        let checked = closed_limiter.check(b"k", now, 1).unwrap();
        assert_eq!(checked.fault, None);
        assert!(checked.decision.allowed);
        assert_eq!(checked.decision.remaining, remaining);
    }
    assert!(!closed_limiter.check(b"k", now, 1).unwrap().decision.allowed);
    let decided_after = decided.load(Ordering::Relaxed);
    wait_until("the hammers recover", Duration::from_secs(5), || {
        decided.load(Ordering::Relaxed) > decided_after + 20
    });
    stop.store(true, Ordering::Relaxed);
    for hammer in hammers {
        hammer.join().expect("no client thread panicked");
    }

    let stats = closed.stats();
    eprintln!("after kill/restart: {stats:?}");
    assert!(stats.failed_closed >= 3, "{stats:?}");
    assert!(stats.unavailable + stats.timeouts >= 3, "{stats:?}");
    assert!(stats.connects >= 2, "reconnected: {stats:?}");
    // The module needs no script: only the script's runs reload it.
    assert!(
        stats.script_loads >= 1 || common::engine() == RedisEngine::Module,
        "reloaded after NOSCRIPT: {stats:?}"
    );
    assert_eq!(stats.inconsistent, 0);
    assert_eq!(stats.failed_open, 0);
    assert!(open.stats().failed_open >= 3);
}

#[test]
fn a_paused_redis_times_out_then_recovers() {
    let Some((url, _guard)) = answering_server("a_paused_redis_times_out_then_recovers") else {
        return;
    };
    let backend = RedisBackend::new(config(&url, FailureMode::Closed)).unwrap();
    let limiter = limiter(&backend);
    let now = 1_700_000_000_000_000_000u64;
    assert_eq!(limiter.check(b"k", now, 1).unwrap().fault, None);
    // Every client's commands wait for 1.5 s: slower than the 200 ms timeout.
    let mut admin = common::admin(&url);
    redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1500)
        .arg("ALL")
        .query::<()>(&mut admin)
        .unwrap();
    let started = Instant::now();
    let checked = limiter.check(b"k", now, 1).unwrap();
    assert_eq!(checked.fault, Some(Fault::Timeout));
    assert_failure(checked.decision, FailureMode::Closed, 3);
    assert!(started.elapsed() < Duration::from_millis(1200));
    assert!(backend.stats().timeouts >= 1);
    // Once the pause is over, the next check is decided again, on a new pooled
    // connection (the timed-out one may still receive its late reply, so it was
    // dropped); a pipelined check's connection keeps matching replies to requests and
    // is kept.
    wait_until("the pause ends", Duration::from_secs(5), || {
        limiter.check(b"k", now, 1).unwrap().fault.is_none()
    });
    let decision = limiter.try_peek(b"k", now, 0).unwrap();
    // One admission before the pause, one after; the one that timed out may or may not
    // have been applied by the server when it woke up.
    assert!(decision.remaining <= 1, "{decision:?}");
    let stats = backend.stats();
    assert!(stats.connects >= 2 || common::pipelined(), "{stats:?}");
    assert_eq!(stats.inconsistent, 0);
}

#[test]
fn foreign_values_and_lost_scripts() {
    let Some((url, _guard)) = answering_server("foreign_values_and_lost_scripts") else {
        return;
    };
    let backend = RedisBackend::new(config(&url, FailureMode::Closed)).unwrap();
    let mut admin = common::admin(&url);
    let now = 1_700_000_000_000_000_000u64;
    for algorithm in common::each_algorithm(3) {
        let limiter = backend
            .limiter("foreign", algorithm, Quota::per_second(5).unwrap())
            .unwrap();
        // A string of another layout is never reinterpreted.
        let key = limiter.limit().redis_key(b"taken");
        redis::cmd("SET")
            .arg(&key)
            .arg("not a ratecore state")
            .query::<()>(&mut admin)
            .unwrap();
        let checked = limiter.check(b"taken", now, 1).unwrap();
        assert_eq!(checked.fault, Some(Fault::Server), "{algorithm:?}");
        assert!(!checked.decision.allowed);
        match limiter.try_check(b"taken", now, 1) {
            Err(RedisCheckError::Backend(e)) => {
                assert_eq!(e.fault, Fault::Server);
                assert!(e.message.contains("another layout"), "{}", e.message);
            }
            other => panic!("expected a server error, got {other:?}"),
        }
        // Another type: WRONGTYPE.
        let key = limiter.limit().redis_key(b"hash");
        redis::cmd("HSET")
            .arg(&key)
            .arg("f")
            .arg("v")
            .query::<()>(&mut admin)
            .unwrap();
        assert_eq!(
            limiter.check(b"hash", now, 1).unwrap().fault,
            Some(Fault::Server)
        );
        // The connection stayed usable.
        assert_eq!(limiter.check(b"fine", now, 1).unwrap().fault, None);
    }
    // Scripts flushed (as after a restart or failover): reloaded on NOSCRIPT.
    let loads = backend.stats().script_loads;
    redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query::<()>(&mut admin)
        .unwrap();
    let limiter = limiter(&backend);
    assert_eq!(limiter.check(b"after-flush", now, 1).unwrap().fault, None);
    let stats = backend.stats();
    let reloads = u64::from(common::engine() != RedisEngine::Module);
    assert_eq!(stats.script_loads, loads + reloads, "{stats:?}");
    assert_eq!(
        stats.connects, 1,
        "server errors keep the connection: {stats:?}"
    );
    assert_eq!(stats.server_errors, 12, "{stats:?}");
    assert_eq!(stats.failed_closed, 8, "{stats:?}");
}

/// `wait_replicas` on a server with no replica: every write falls short, so every charge
/// answers the failure decision with `Fault::Replication`, counted; peeks (no write) and
/// the server's state stay usable.
#[test]
fn too_few_replicas_is_a_replication_fault() {
    let Some(url) = common::redis_url("too_few_replicas_is_a_replication_fault") else {
        return;
    };
    let _lock = server_lock();
    for mode in [FailureMode::Closed, FailureMode::Open] {
        let mut config = config(&url, mode);
        config.wait_replicas = 1;
        config.wait_timeout = Duration::from_millis(10);
        let backend = RedisBackend::new(config).unwrap();
        let limiter = limiter(&backend);
        let checked = limiter.check(b"k", SECOND, 1).unwrap();
        assert_eq!(checked.fault, Some(Fault::Replication), "{mode:?}");
        assert_failure(checked.decision, mode, 3);
        assert!(matches!(
            limiter.try_check(b"k", SECOND, 1),
            Err(RedisCheckError::Backend(e)) if e.fault == Fault::Replication
        ));
        // The writes happened (a charge without an admission, never the reverse).
        let peeked = limiter.try_peek(b"k", SECOND, 1).unwrap();
        assert_eq!(peeked.remaining, 0, "{mode:?}");
        let stats = backend.stats();
        assert_eq!(stats.replication, 2, "{stats:?}");
    }
}
