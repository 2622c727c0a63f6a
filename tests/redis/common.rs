//! Shared by the `redis_*` test binaries: where the test Redis is, unique key prefixes,
//! and backends configured for tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ratecore::redis_backend::{RedisBackend, RedisComposite, RedisConfig, RedisEngine};
use ratecore::{Algorithm, Quota};

/// Every algorithm, the strict window in `sub_windows` sub-windows.
pub const fn each_algorithm(sub_windows: u32) -> [Algorithm; 4] {
    [
        Algorithm::Gcra,
        Algorithm::FixedWindow,
        Algorithm::SlidingWindowApprox,
        Algorithm::SlidingWindowStrict { sub_windows },
    ]
}

/// The most one request may cost under `algorithm` and `quota`: GCRA's burst, else the
/// limit.
pub fn capacity(algorithm: Algorithm, quota: &Quota) -> u64 {
    if algorithm == Algorithm::Gcra {
        quota.burst()
    } else {
        quota.limit()
    }
}

/// The test Redis's URL, or `None` (with a notice) when the tests run without one.
pub fn redis_url(test: &str) -> Option<String> {
    match std::env::var("RATECORE_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            notice(&format!(
                "skipped {test}: RATECORE_REDIS_URL is not set (run tests/redis/run.sh for a real redis-server)"
            ));
            None
        }
    }
}

/// Prints `message` past libtest's output capture (which only intercepts `eprintln!`),
/// so that skipped tests say so in a plain `cargo test` run.
pub fn notice(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

/// A key prefix no other test (or earlier run) uses.
pub fn unique_prefix(test: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(
        "rctest:{}:{}:{}:{}:",
        std::process::id(),
        ratecore::clock::unix_time_nanos(),
        test,
        n
    )
}

/// A config for tests: unique prefix, generous timeout, and a TTL floor long enough that
/// keys never expire while a test replays caller time far faster than wall time.
pub fn test_config(url: &str, test: &str) -> RedisConfig {
    let mut config = RedisConfig::new(url);
    config.prefix = unique_prefix(test);
    config.timeout = Duration::from_secs(5);
    config.min_ttl = Duration::from_secs(600);
    config.engine = engine();
    config.pipelined = pipelined();
    config
}

/// Whether blocking checks run pipelined (`RATECORE_REDIS_PIPELINED=1`, with feature
/// `redis-tokio`): `tests/redis/run.sh` runs the blocking suites in both modes.
pub fn pipelined() -> bool {
    std::env::var("RATECORE_REDIS_PIPELINED").is_ok_and(|v| v == "1")
}

/// The engine the tests run on, from `RATECORE_REDIS_ENGINE` (`module`, `script`; else
/// detected): `tests/redis/run.sh` runs the suites on each.
pub fn engine() -> RedisEngine {
    match std::env::var("RATECORE_REDIS_ENGINE").as_deref() {
        Ok("module") => RedisEngine::Module,
        Ok("script") => RedisEngine::Script,
        _ => RedisEngine::Detect,
    }
}

pub fn backend(url: &str, test: &str) -> RedisBackend {
    RedisBackend::new(test_config(url, test)).expect("valid config")
}

/// A backend on the test Redis (with [`backend`]'s config for `prefix`), or `None` (with
/// [`redis_url`]'s notice for `test`) when the tests run without one.
pub fn redis_backend(test: &str, prefix: &str) -> Option<RedisBackend> {
    Some(backend(&redis_url(test)?, prefix))
}

/// A composite on `backend` of `limits`, each `(name, algorithm, quota)`.
pub fn composite(backend: &RedisBackend, limits: &[(&str, Algorithm, Quota)]) -> RedisComposite {
    let limits = limits
        .iter()
        .map(|&(name, algorithm, quota)| backend.limit(name, algorithm, quota).unwrap())
        .collect();
    backend.composite(limits).unwrap()
}

/// A plain connection for inspecting or disturbing the server.
pub fn admin(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .expect("url")
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("connect to the test Redis")
}

/// The throwaway server's URL, config and pid file (tests that stop and restart it), or
/// `None` (with a notice).
pub fn managed_server(test: &str) -> Option<(String, String, String)> {
    let url = redis_url(test)?;
    match (
        std::env::var("RATECORE_REDIS_CONF"),
        std::env::var("RATECORE_REDIS_PIDFILE"),
    ) {
        (Ok(conf), Ok(pidfile)) => Some((url, conf, pidfile)),
        _ => {
            notice(&format!(
                "skipped {test}: RATECORE_REDIS_CONF / RATECORE_REDIS_PIDFILE not set (run tests/redis/run.sh)"
            ));
            None
        }
    }
}

/// Polls `done` every 20 ms; fails the test if it is still false after `deadline`.
pub fn wait_until(what: &str, deadline: Duration, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(
            started.elapsed() < deadline,
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a fresh connection gets an answer to `PING` within 200 ms.
pub fn server_answers(url: &str) -> bool {
    redis::Client::open(url)
        .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
        .is_ok()
}

/// Kills the throwaway server with SIGKILL (no goodbye to its clients) and waits until
/// it no longer answers.
pub fn kill_server(url: &str, pidfile: &str) {
    let pid = std::fs::read_to_string(pidfile).expect("the server's pid file");
    let status = std::process::Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -9 {}", pid.trim());
    wait_until("redis-server is gone", Duration::from_secs(5), || {
        !server_answers(url)
    });
}

/// Starts the throwaway server again from its config (same port, no persistence: every
/// state is gone) and waits until it answers.
pub fn restart_server(url: &str, conf: &str) {
    let status = std::process::Command::new("redis-server")
        .arg(conf)
        .status()
        .expect("run redis-server");
    assert!(status.success(), "restarting redis-server failed");
    wait_until("redis-server is back", Duration::from_secs(10), || {
        server_answers(url)
    });
}
