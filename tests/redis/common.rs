//! Shared by the `redis_*` test binaries: where the test Redis is, unique key prefixes,
//! and backends configured for tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ratecore::redis_backend::{RedisBackend, RedisConfig, RedisEngine};

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
    config
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

/// A plain connection for inspecting or disturbing the server.
pub fn admin(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .expect("url")
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("connect to the test Redis")
}
