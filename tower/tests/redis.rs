//! The layer in Redis mode (feature `redis`), over real HTTP on 127.0.0.1 against the
//! throwaway redis-server of `tests/redis/run.sh`: the same statuses, headers and bodies
//! as the in-process layer for the same requests; and Redis stopped mid-test, where fail
//! closed answers the policy's status within the timeout and fail open calls the handler
//! without rate-limit headers, both flagged in the decision and counted.
//!
//! Skips with a notice without `RATECORE_REDIS_URL` (and, for the outage test,
//! `RATECORE_REDIS_CONF` / `RATECORE_REDIS_PIDFILE`).
#![cfg(feature = "redis")]

mod common;
#[path = "../../tests/redis/common.rs"]
mod redis_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::Router;
use common::{client, send, ManualClock, SECOND};
use hyper::{Method, StatusCode};
use ratecore::policy::{Policy, PolicySpec};
use ratecore::redis_backend::{FailureMode, RedisBackend};
use ratecore_tower::{Fault, RateLimitDecision, RateLimitLayer, Redis};

/// Tests that stop the server (or need it running) take this.
async fn server_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Per client IP, GCRA `per_ip` a minute; per user, a fixed window of 4 a minute; an
/// unlimited health check.
fn policy_toml(per_ip: u64) -> String {
    format!(
        "[response]\nheaders = \"uphold\"\nbody = \"problem+json\"\nstatus = 503\n\
         [[rule]]\nname = \"api\"\n{}{}\
         [[rule]]\nname = \"health\"\nroute = \"GET /health\"\nunlimited = true\n",
        common::limit_block("per-ip", "client_ip", "deny", "gcra", per_ip, "1m"),
        common::limit_block("per-user-window", "user", "skip", "fixed_window", 4, "1m")
    )
}

/// When (the clock's reading), which path, which request headers.
type Step = (u64, &'static str, &'static [(&'static str, &'static str)]);

fn spec() -> PolicySpec {
    PolicySpec::from_toml_str(&policy_toml(3), "redis.toml").unwrap()
}

/// A handler that answers with the decision's fault, as the request carried it.
fn echo_fault() -> Router {
    Router::new().fallback(|request: Request| async move {
        let decision = request.extensions().get::<RateLimitDecision>().cloned();
        format!("{:?}", decision.and_then(|d| d.fault))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_mode_answers_as_in_process() {
    let Some(backend) = redis_common::redis_backend("redis_mode_answers_as_in_process", "tower")
    else {
        return;
    };
    let _guard = server_lock().await;
    let remote = Arc::new(Policy::with_redis(spec(), backend.clone()).unwrap());
    let local = Arc::new(Policy::new(spec()).unwrap());
    // One clock for both: the Redis layer decides on its Unix reading, the in-process
    // one on its monotonic reading; both are on whole days, so windows align alike.
    let clock = ManualClock::at(0);
    let redis_addr = common::serve(
        echo_fault().layer(RateLimitLayer::with_backend(Redis::new(remote)).clock(clock.clone())),
    )
    .await;
    let local_addr =
        common::serve(echo_fault().layer(RateLimitLayer::new(local).clock(clock.clone()))).await;
    let client = client();
    let steps: [Step; 9] = [
        (0, "/a", &[]),
        (0, "/a", &[("x-user", "u1")]),
        (SECOND, "/b", &[]),
        (SECOND, "/b", &[]),
        (2 * SECOND, "/health", &[]),
        (20 * SECOND, "/a", &[]),
        (20 * SECOND, "/a", &[]),
        (61 * SECOND, "/a", &[]),
        (200 * SECOND, "/a", &[]),
    ];
    let mut statuses = Vec::new();
    for (at, path, headers) in steps {
        clock.set(at);
        let remote = send(&client, redis_addr, Method::GET, path, headers).await;
        let local = send(&client, local_addr, Method::GET, path, headers).await;
        assert_eq!(remote.status, local.status, "{path} at {at}");
        let rate_headers = |seen: &common::Seen| {
            let mut pairs: Vec<(String, String)> = seen
                .headers
                .iter()
                .filter(|(name, _)| name.as_str() != "date")
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
                .collect();
            pairs.sort();
            pairs
        };
        assert_eq!(
            rate_headers(&remote),
            rate_headers(&local),
            "{path} at {at}"
        );
        assert_eq!(remote.body, local.body, "{path} at {at}");
        statuses.push(remote.status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 503, 200, 200, 503, 200, 200]);
    let stats = backend.stats();
    assert_eq!(stats.checks, stats.decided, "{stats:?}");
    assert_eq!(stats.failed_closed + stats.failed_open, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_mid_test_fails_closed_or_open() {
    let Some((url, conf, pidfile)) =
        redis_common::managed_server("redis_stopped_mid_test_fails_closed_or_open")
    else {
        return;
    };
    let _guard = server_lock().await;
    let timeout = Duration::from_millis(200);
    let backend = |mode| {
        let mut config = redis_common::test_config(&url, "tower-outage");
        config.failure_mode = mode;
        config.timeout = timeout;
        config.reconnect_backoff = Duration::from_millis(50);
        RedisBackend::new(config).unwrap()
    };
    let (closed, open) = (backend(FailureMode::Closed), backend(FailureMode::Open));
    let clock = ManualClock::at(0);
    let layer = |backend: &RedisBackend| {
        let policy = Arc::new(Policy::with_redis(spec(), backend.clone()).unwrap());
        RateLimitLayer::with_backend(Redis::new(policy)).clock(clock.clone())
    };
    let closed_addr = common::serve(echo_fault().layer(layer(&closed))).await;
    let open_addr = common::serve(echo_fault().layer(layer(&open))).await;
    let client = client();
    for addr in [closed_addr, open_addr] {
        let seen = send(&client, addr, Method::GET, "/", &[]).await;
        assert_eq!(seen.status, StatusCode::OK);
        assert_eq!(seen.header("x-ratelimit-remaining"), Some("2"));
        assert_eq!(&seen.body[..], b"None");
    }

    redis_common::kill_server(&url, &pidfile);
    for _ in 0..3 {
        clock.set(clock.now() + 3600 * SECOND);
        let started = Instant::now();
        let seen = send(&client, closed_addr, Method::GET, "/", &[]).await;
        let took = started.elapsed();
        assert_eq!(
            seen.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "the policy's status"
        );
        // The failure decision's wait (the backend's default failure_retry_after: 1 s).
        assert_eq!(seen.header("retry-after"), Some("1"));
        assert_eq!(
            seen.header("content-type"),
            Some("application/problem+json")
        );
        // Within the timeout plus a margin generous enough for a loaded machine (the
        // requirement, not a speed figure).
        assert!(took < timeout + Duration::from_secs(1), "{took:?}");

        let seen = send(&client, open_addr, Method::GET, "/", &[]).await;
        assert_eq!(seen.status, StatusCode::OK);
        let rate_limit_headers = seen
            .headers
            .keys()
            .filter(|name| name.as_str().contains("rate") || name.as_str() == "retry-after")
            .count();
        assert_eq!(rate_limit_headers, 0, "{:?}", seen.headers);
        let fault = String::from_utf8_lossy(&seen.body).into_owned();
        assert!(
            [
                format!("{:?}", Some(Fault::Unavailable)),
                format!("{:?}", Some(Fault::Timeout))
            ]
            .contains(&fault),
            "{fault}"
        );
    }
    assert_eq!(closed.stats().failed_closed, 3, "{:?}", closed.stats());
    assert_eq!(open.stats().failed_open, 3, "{:?}", open.stats());

    redis_common::restart_server(&url, &conf);
    for addr in [closed_addr, open_addr] {
        let mut seen = send(&client, addr, Method::GET, "/", &[]).await;
        // Until Redis decides again: a deadline for a loaded machine, not a speed figure.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if &seen.body[..] == b"None" {
                break;
            }
            // Within the reconnect backoff the backend still answers with failures.
            tokio::time::sleep(Duration::from_millis(20)).await;
            seen = send(&client, addr, Method::GET, "/", &[]).await;
        }
        assert_eq!(seen.status, StatusCode::OK);
        assert_eq!(&seen.body[..], b"None", "a real decision after the restart");
        assert!(seen.header("x-ratelimit-remaining").is_some());
    }
    let stats = closed.stats();
    assert_eq!(
        stats.checks,
        stats.decided + stats.failed_closed,
        "{stats:?}"
    );
    assert_eq!(stats.inconsistent, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_on_one_key_admit_exactly_the_quota_on_redis() {
    let test = "concurrent_clients_on_one_key_admit_exactly_the_quota_on_redis";
    let Some(backend) = redis_common::redis_backend(test, "tower-concurrent") else {
        return;
    };
    let _guard = server_lock().await;
    // GCRA 3/min per IP with burst 3, widened to 50: every client is 127.0.0.1.
    let spec = PolicySpec::from_toml_str(&policy_toml(50), "redis.toml").unwrap();
    let policy = Arc::new(Policy::with_redis(spec, backend.clone()).unwrap());
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // A frozen clock: nothing is replenished while the clients race.
    let layer = RateLimitLayer::with_backend(Redis::new(policy)).clock(ManualClock::at(0));
    let addr = common::serve(common::counted(&calls).layer(layer)).await;
    let admitted = common::race_clients(addr, 16, 20, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(admitted, 50);
    assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 50);
    let stats = backend.stats();
    assert_eq!((stats.checks, stats.decided), (320, 320), "{stats:?}");
}
