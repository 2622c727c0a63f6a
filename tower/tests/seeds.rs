//! Each seed over real HTTP, on an injected clock: every response's status, rate-limit
//! headers (names compared case-insensitively, as HTTP/1 sends them in lower case;
//! values byte for byte, in order), content type and denial body are exactly what
//! `PolicyDecision::render_headers` and `render_body` produce for the same request at
//! the same time on a second copy of the policy, from both of the layer's body modes (each
//! request goes to a server of each). Scenarios that need an hour run here,
//! where time is an input.

#[path = "../examples/seed_server/app.rs"]
#[allow(dead_code)]
mod app;
mod common;

use std::net::SocketAddr;

use common::{client, send, HttpClient, ManualClock, Seen, HOUR, MINUTE, SECOND, WALL_AT_ZERO};
use hyper::{Method, StatusCode};
use ratecore::policy::{Attribute, Policy, PolicyDecision, Request};

const fn at(hours: u64, minutes: u64, seconds: u64) -> u64 {
    hours * HOUR + minutes * MINUTE + seconds * SECOND
}

struct Harness {
    clock: ManualClock,
    /// The default layers, and lean ones (no decision extension, the inner body type).
    addrs: [SocketAddr; 2],
    client: HttpClient,
    /// The same policy file, checked directly with the same requests and times.
    reference: Policy,
    seed: &'static str,
}

impl Harness {
    async fn new(seed: &'static str) -> Self {
        let clock = ManualClock::at(0);
        let serve = |lean| common::serve(app::app(clock.clone(), lean).unwrap());
        Self {
            addrs: [serve(false).await, serve(true).await],
            clock,
            client: client(),
            reference: Policy::from_toml_file(app::policy_file(seed)).unwrap(),
            seed,
        }
    }

    /// Sends `method /seed{path}` at `now` with `headers` over HTTP to both servers,
    /// checks `attributes` (what the layer should extract from it) on the reference
    /// policy at the same time, asserts that each response agrees with it byte for byte,
    /// and returns whether it was admitted and the default layer's response.
    async fn exchange(
        &self,
        now: u64,
        (method, path): (Method, &str),
        headers: &[(&str, &str)],
        attributes: &[(&str, &[u8])],
    ) -> (bool, Seen) {
        self.clock.set(now);
        let uri = format!("/{}{path}", self.seed);
        let lean = send(&self.client, self.addrs[1], method.clone(), &uri, headers).await;
        let seen = send(&self.client, self.addrs[0], method.clone(), &uri, headers).await;
        let attributes: Vec<Attribute<'_>> = attributes
            .iter()
            .map(|&(n, v)| Attribute::new(n, v))
            .collect();
        let decision = self
            .reference
            .check(&Request::new(method.as_str(), path, &attributes), now, 1)
            .unwrap();
        for (seen, mode) in [(&seen, "default"), (&lean, "lean")] {
            let context = format!("{} {method} {path} at {now} ns ({mode})", self.seed);
            agree(&decision, now, seen, &context);
        }
        (decision.allowed(), seen)
    }
}

/// Asserts that `seen` is what the reference policy renders for `decision` at `now`.
fn agree(decision: &PolicyDecision<'_>, now: u64, seen: &Seen, context: &str) {
    let status = if decision.allowed() {
        200
    } else {
        decision.denial_status()
    };
    assert_eq!(seen.status.as_u16(), status, "{context}");

    let mut block = [0u8; 1024];
    let len = decision
        .render_headers(WALL_AT_ZERO + now, &mut block)
        .unwrap();
    let rendered: Vec<(String, Vec<u8>)> = std::str::from_utf8(&block[..len])
        .unwrap()
        .split_terminator("\r\n")
        .map(|line| {
            let (name, value) = line.split_once(": ").unwrap();
            (name.to_ascii_lowercase(), value.as_bytes().to_vec())
        })
        .collect();
    let names: Vec<&str> = rendered.iter().map(|(n, _)| n.as_str()).collect();
    let received: Vec<(String, Vec<u8>)> = seen
        .headers
        .iter()
        .filter(|(n, _)| names.contains(&n.as_str()) || is_rate_limit_header(n.as_str()))
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    assert_eq!(received, rendered, "{context}: headers");

    if !decision.allowed() {
        let mut body = [0u8; 1024];
        let len = decision.render_body(&mut body).unwrap();
        assert_eq!(
            seen.header("content-type"),
            Some(decision.content_type()),
            "{context}"
        );
        assert_eq!(&seen.body[..], &body[..len], "{context}: body");
    }
}

fn is_rate_limit_header(name: &str) -> bool {
    ["x-ratelimit-", "x-rate-limit-", "ratelimit", "retry-after"]
        .iter()
        .any(|p| name.starts_with(p))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evenergy_rolling_hour() {
    let h = Harness::new("evenergy").await;
    let users = || (Method::GET, "/v2/users/");
    let alice_http = [("authorization", "Bearer ev-alice")];
    let alice: &[(&str, &[u8])] = &[
        ("auth", b"authorization_code"),
        ("app", b"app-1"),
        ("user", b"alice"),
    ];
    for n in 0..1000 {
        let (admitted, _) = h.exchange(at(11, 59, 0), users(), &alice_http, alice).await;
        assert!(admitted, "request {n}");
    }
    let (admitted, seen) = h.exchange(at(11, 59, 0), users(), &alice_http, alice).await;
    assert!(!admitted);
    assert_eq!(seen.header("retry-after"), Some("3600"));
    // ev.energy's own words: 1000 at 11:59 leave nothing until 12:59.
    let (admitted, seen) = h
        .exchange(at(12, 58, 59), users(), &alice_http, alice)
        .await;
    assert!(!admitted);
    assert_eq!(seen.header("retry-after"), Some("1"));
    assert_eq!(seen.status, StatusCode::TOO_MANY_REQUESTS);
    let (admitted, _) = h.exchange(at(12, 59, 0), users(), &alice_http, alice).await;
    assert!(admitted);
    // A client-credentials app: one limit for the app.
    let app_http = [("authorization", "Bearer ev-app-2")];
    let app: &[(&str, &[u8])] = &[("auth", b"client_credentials"), ("app", b"app-2")];
    let (admitted, seen) = h.exchange(at(12, 59, 0), users(), &app_http, app).await;
    assert!(admitted);
    assert_eq!(seen.header("x-ratelimit-remaining"), Some("999"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uphold_per_account_and_per_ip() {
    let h = Harness::new("uphold").await;
    let forgot = || (Method::POST, "/password/forgot");
    let account = b"foo@bar.com";
    let ips = [
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.3",
        "198.51.100.4",
    ];
    for (second, ip) in ips.iter().enumerate() {
        let http = [("x-forwarded-for", *ip), ("x-account", "foo@bar.com")];
        let attributes: &[(&str, &[u8])] = &[("client_ip", ip.as_bytes()), ("user", account)];
        let (admitted, _) = h
            .exchange(at(16, 25, second as u64), forgot(), &http, attributes)
            .await;
        assert_eq!(admitted, second < 3, "the account's request {second}");
    }
    let ip4: &[(&str, &[u8])] = &[("client_ip", b"198.51.100.4")];
    let (admitted, seen) = h
        .exchange(
            at(16, 25, 5),
            (Method::GET, "/v0/ticker"),
            &[("x-forwarded-for", "198.51.100.4")],
            ip4,
        )
        .await;
    assert!(admitted);
    assert_eq!(
        seen.header("x-ratelimit-remaining"),
        Some("299"),
        "the denial consumed nothing"
    );
    let http = [
        ("x-forwarded-for", "198.51.100.4"),
        ("x-account", "foo@bar.com"),
    ];
    let attributes: &[(&str, &[u8])] = &[("client_ip", b"198.51.100.4"), ("user", account)];
    let (admitted, _) = h.exchange(at(16, 30, 0), forgot(), &http, attributes).await;
    assert!(admitted, "the next 5-minute window");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_per_second_and_per_minute() {
    let h = Harness::new("switch").await;
    let readings = || (Method::POST, "/api/readings");
    let http = [("authorization", "Bearer sw-client-a")];
    let client: &[(&str, &[u8])] = &[("auth", b"client_credentials"), ("client", b"client-a")];
    let start = at(12, 0, 0);
    for i in 0..5 {
        let (admitted, _) = h
            .exchange(start + i * SECOND / 10, readings(), &http, client)
            .await;
        assert!(admitted);
    }
    let (admitted, seen) = h
        .exchange(start + SECOND / 2, readings(), &http, client)
        .await;
    assert!(!admitted, "6th in one second");
    assert_eq!(seen.header("retry-after"), Some("1"));
    for second in 1..4 {
        for _ in 0..5 {
            let (admitted, _) = h
                .exchange(start + second * SECOND, readings(), &http, client)
                .await;
            assert!(admitted);
        }
    }
    let (admitted, seen) = h.exchange(at(12, 0, 19), readings(), &http, client).await;
    assert!(!admitted, "21st in one minute");
    assert_eq!(
        &seen.body[..],
        b"Save readings API interface quota exceeded. Maximum allowed is 20 requests per 1m. Please try again in 41 second."
    );
    let token = [("authorization", "Bearer sw-personal")];
    let personal: &[(&str, &[u8])] = &[("auth", b"personal_token"), ("client", b"client-a")];
    let (admitted, seen) = h
        .exchange(at(12, 0, 19), readings(), &token, personal)
        .await;
    assert!(admitted);
    assert!(!seen
        .headers
        .keys()
        .any(|n| is_rate_limit_header(n.as_str())));
    let (admitted, _) = h.exchange(at(12, 1, 0), readings(), &http, client).await;
    assert!(admitted, "the next minute");
}
