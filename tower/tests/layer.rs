//! The layer in an axum server on 127.0.0.1, with a real HTTP client and an injected
//! clock: concurrency, which address is the client, the decision handlers see, and
//! requests that can never fit.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::Request;
use axum::Router;
use common::{client, counted, limit_block, policy, race_clients, send, ManualClock};
use hyper::{Method, StatusCode};
use ratecore_tower::{LimitName, RateLimitDecision, RateLimitLayer};

/// Per client IP: `limit` per hour, except 1.2.3.4 (7) and 6.6.6.6 (9), so the limit a
/// response reports names the key the layer used.
fn per_ip(limit: u64) -> String {
    format!(
        "[response]\nheaders = \"uphold\"\n[[rule]]\nname = \"global\"\n{}\
         [[rule.limit.override]]\nattribute = \"client_ip\"\nvalue = \"1.2.3.4\"\nlimit = 7\n\
         [[rule.limit.override]]\nattribute = \"client_ip\"\nvalue = \"6.6.6.6\"\nlimit = 9\n",
        limit_block("per-ip", "client_ip", "deny", "fixed_window", limit, "1h")
    )
}

/// The limit a response reports, so the key the layer used.
async fn limit_seen(layer: RateLimitLayer, headers: &[(&str, &str)]) -> String {
    let calls = Arc::new(AtomicUsize::new(0));
    let addr = common::serve(counted(&calls).layer(layer)).await;
    let seen = send(&client(), addr, Method::GET, "/", headers).await;
    assert_eq!(seen.status, StatusCode::OK);
    seen.header("x-ratelimit-limit").unwrap_or("-").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_on_one_key_admit_exactly_the_quota() {
    let quota = 50;
    let policy = policy(&per_ip(quota as u64));
    let calls = Arc::new(AtomicUsize::new(0));
    // A frozen clock: nothing is replenished while the clients race.
    let layer = RateLimitLayer::new(policy).clock(ManualClock::at(0));
    let addr = common::serve(counted(&calls).layer(layer)).await;
    let admitted = race_clients(addr, 16, 20, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(admitted, quota);
    assert_eq!(
        calls.load(Ordering::Relaxed),
        quota,
        "a denial never reaches the handler"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_forwarding_headers_are_ignored_from_untrusted_peers() {
    let spoofs: [&[(&str, &str)]; 3] = [
        &[("x-forwarded-for", "1.2.3.4")],
        &[("x-forwarded-for", "6.6.6.6, 1.2.3.4")],
        &[("forwarded", "for=1.2.3.4")],
    ];
    for headers in spoofs {
        // No trusted proxies: the peer (127.0.0.1, limit 3) is the client.
        let layer = RateLimitLayer::new(policy(&per_ip(3))).clock(ManualClock::at(0));
        assert_eq!(limit_seen(layer, headers).await, "3", "{headers:?}");
        // Another proxy is trusted, not this peer.
        let layer = RateLimitLayer::new(policy(&per_ip(3)))
            .clock(ManualClock::at(0))
            .trusted_proxies(["10.0.0.0/8".parse().unwrap()]);
        assert_eq!(limit_seen(layer, headers).await, "3", "{headers:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_trusted_proxy_the_rightmost_untrusted_address_is_the_client() {
    let cases: [(&[(&str, &str)], &str); 7] = [
        (&[("x-forwarded-for", "6.6.6.6, 1.2.3.4")], "7"),
        (&[("x-forwarded-for", "1.2.3.4, 6.6.6.6")], "9"),
        (&[("x-forwarded-for", "6.6.6.6, 1.2.3.4, 127.0.0.1")], "7"),
        (
            &[("forwarded", "for=6.6.6.6, for=\"1.2.3.4:4711\";proto=https")],
            "7",
        ),
        // Forwarded wins over X-Forwarded-For.
        (
            &[("forwarded", "for=6.6.6.6"), ("x-forwarded-for", "1.2.3.4")],
            "9",
        ),
        // Malformed: the peer, 127.0.0.1.
        (&[("x-forwarded-for", "6.6.6.6, bogus")], "3"),
        (&[("forwarded", "for=unknown")], "3"),
    ];
    for (headers, limit) in cases {
        let layer = RateLimitLayer::new(policy(&per_ip(3)))
            .clock(ManualClock::at(0))
            .trusted_proxies(["127.0.0.1/32".parse().unwrap()]);
        assert_eq!(limit_seen(layer, headers).await, limit, "{headers:?}");
    }
}

/// Ten per minute per API key, and a shadow rule of one per minute.
fn shadowed() -> String {
    format!(
        "[response]\nheaders = \"ietf\"\n[[rule]]\nname = \"api\"\n{}\
         [[rule]]\nname = \"trial\"\nshadow = true\n{}",
        limit_block("per-key", "api_key", "deny", "fixed_window", 10, "1m"),
        limit_block("tighter", "api_key", "deny", "fixed_window", 1, "1m")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_see_the_decision() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let store = Arc::clone(&seen);
    let router = Router::new().fallback(move |request: Request| {
        store
            .lock()
            .unwrap()
            .push(request.extensions().get::<RateLimitDecision>().cloned());
        async { "ok" }
    });
    let layer = RateLimitLayer::new(policy(&shadowed()))
        .clock(ManualClock::at(0))
        .header(
            hyper::header::HeaderName::from_static("x-api-key"),
            "api_key",
        );
    let addr = common::serve(router.layer(layer)).await;
    let client = client();
    for _ in 0..2 {
        let response = send(&client, addr, Method::GET, "/", &[("x-api-key", "k1")]).await;
        assert_eq!(response.status, StatusCode::OK);
    }
    let seen = seen.lock().unwrap();
    let name = |rule: &str, limit: &str| {
        Arc::new(LimitName {
            rule: rule.into(),
            limit: limit.into(),
        })
    };
    let second = seen[1].clone().expect("the extension is set");
    assert_eq!(
        second,
        RateLimitDecision {
            allowed: true,
            limited: true,
            limit: 10,
            remaining: 8,
            reset_after: std::time::Duration::from_secs(60),
            retry_after: std::time::Duration::ZERO,
            deciding: Some(name("api", "per-key")),
            shadow_denied: Some(name("trial", "tighter")),
            exempted_by: None,
            fault: None,
        }
    );
    assert_eq!(seen[0].as_ref().unwrap().shadow_denied, None);
}

/// Whether a handler behind a layer with `decision_extension(on)` sees the decision, and
/// the rate-limit headers its response gets.
async fn extension_seen(on: bool) -> (bool, Option<String>) {
    let seen = Arc::new(std::sync::Mutex::new(None));
    let store = Arc::clone(&seen);
    let router = Router::new().fallback(move |request: Request| {
        let decision = request.extensions().get::<RateLimitDecision>().is_some();
        *store.lock().unwrap() = Some(decision);
        async { "ok" }
    });
    let layer = RateLimitLayer::new(policy(&per_ip(3)))
        .clock(ManualClock::at(0))
        .decision_extension(on);
    let addr = common::serve(router.layer(layer)).await;
    let response = send(&client(), addr, Method::GET, "/", &[]).await;
    assert_eq!(response.status, StatusCode::OK);
    let remaining = response.header("x-ratelimit-remaining").map(str::to_owned);
    let seen = seen.lock().unwrap().expect("the handler was called");
    (seen, remaining)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_decision_extension_is_on_by_default_and_can_be_turned_off() {
    let remaining = Some("2".to_owned());
    assert_eq!(extension_seen(true).await, (true, remaining.clone()));
    assert_eq!(extension_seen(false).await, (false, remaining));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cost_that_can_never_fit_is_refused_without_retry_after() {
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = RateLimitLayer::new(policy(&per_ip(3)))
        .clock(ManualClock::at(0))
        .cost(|parts| if parts.uri.path() == "/batch" { 100 } else { 1 });
    let addr = common::serve(counted(&calls).layer(layer)).await;
    let client = client();
    let seen = send(&client, addr, Method::POST, "/batch", &[]).await;
    assert_eq!(seen.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(seen.header("retry-after"), None);
    assert_eq!(seen.header("x-ratelimit-limit"), None);
    assert_eq!(
        seen.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        &seen.body[..],
        b"cost 100 exceeds the limit 3: the request could never be admitted\n"
    );
    assert_eq!(calls.load(Ordering::Relaxed), 0);
    // Other requests are unaffected, and the refusal consumed nothing.
    let seen = send(&client, addr, Method::GET, "/", &[]).await;
    assert_eq!(seen.header("x-ratelimit-remaining"), Some("2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_closure_and_unlimited_requests() {
    let policy = policy(&format!(
        "[response]\nheaders = \"evenergy\"\n\
         [[rule]]\nname = \"staff\"\nwhen = {{ auth = \"staff\" }}\nunlimited = true\n\
         [[rule]]\nname = \"apps\"\n{}",
        limit_block("per-app", "app", "skip", "gcra", 5, "1s")
    ));
    let layer = RateLimitLayer::new(policy)
        .clock(ManualClock::at(0))
        .credentials(|parts| {
            let mut credentials = ratecore_tower::Credentials::new();
            match parts.headers.get("authorization").map(|v| v.as_bytes()) {
                Some(b"Bearer staff") => credentials.push("auth", "staff"),
                Some(b"Bearer app-1") => credentials.push("app", "app-1"),
                _ => {}
            }
            credentials
        });
    let calls = Arc::new(AtomicUsize::new(0));
    let addr = common::serve(counted(&calls).layer(layer)).await;
    let client = client();
    let seen = send(
        &client,
        addr,
        Method::GET,
        "/",
        &[("authorization", "Bearer app-1")],
    )
    .await;
    assert_eq!(seen.header("x-ratelimit-remaining"), Some("4"));
    for auth in ["Bearer staff", "Bearer unknown"] {
        let seen = send(&client, addr, Method::GET, "/", &[("authorization", auth)]).await;
        assert_eq!(seen.status, StatusCode::OK);
        assert_eq!(
            seen.header("x-ratelimit-limit"),
            None,
            "{auth}: no limit, no headers"
        );
    }
}
