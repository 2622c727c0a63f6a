//! The three seed policies, loaded from their TOML files and replayed request by request
//! on a simulated clock: decisions, headers and 429 bodies byte for byte.

use ratecore::policy::{Policy, PolicyDecision, Request};

const SECOND: u64 = 1_000_000_000;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;

/// Monotonic time and wall time are separate inputs: the simulated monotonic clock
/// starts at 0 when the wall clock reads this (2026-11-24T11:00:00Z).
const WALL_AT_ZERO: u64 = 1_795_518_000 * SECOND;

fn policy(name: &str) -> Policy {
    Policy::from_toml_file(format!("examples/policies/{name}.toml")).unwrap()
}

fn headers(decision: &PolicyDecision<'_>, now: u64) -> String {
    let mut buffer = [0u8; 1024];
    let n = decision
        .render_headers(WALL_AT_ZERO + now, &mut buffer)
        .unwrap();
    String::from_utf8(buffer[..n].to_vec()).unwrap()
}

fn body(decision: &PolicyDecision<'_>) -> String {
    let mut buffer = [0u8; 1024];
    let n = decision.render_body(&mut buffer).unwrap();
    String::from_utf8(buffer[..n].to_vec()).unwrap()
}

#[test]
fn evenergy_1000_at_11_59_then_nothing_until_12_59() {
    let policy = policy("evenergy");
    let alice = Request {
        method: "GET",
        path: "/v2/users/",
        app: Some(b"app-1"),
        user: Some(b"alice"),
        ..Request::default()
    };
    let t0 = 59 * MINUTE; // 11:59:00 wall time
    for i in 0..1000 {
        let d = policy.check(&alice, t0, 1).unwrap();
        assert!(d.allowed(), "request {i}");
        if i == 579 {
            assert_eq!(
                headers(&d, t0),
                "x-ratelimit-limit: 1000\r\nx-ratelimit-remaining: 420\r\n"
            );
        }
    }
    // Another user of the same application has a limit of their own.
    let bob = Request {
        user: Some(b"bob"),
        ..alice
    };
    assert!(policy.check(&bob, t0, 1).unwrap().allowed());
    // 12:58:18: denied, retry in 42 s — the seed's example response, byte for byte.
    let at = t0 + HOUR - 42 * SECOND;
    let denied = policy.check(&alice, at, 1).unwrap();
    assert!(!denied.allowed());
    assert_eq!(denied.denial_status(), 429);
    assert_eq!(
        headers(&denied, at),
        "x-ratelimit-limit: 1000\r\nx-ratelimit-remaining: 0\r\nretry-after: 42\r\n"
    );
    assert_eq!(denied.content_type(), "application/problem+json");
    assert_eq!(
        body(&denied),
        "{\n    \"type\": \"https://api.ev.energy/v2/problems/rate-limit-exceeded/\",\n    \"status\": 429,\n    \"title\": \"Too many requests\",\n    \"detail\": \"Request was rate limited. Try again in 42 seconds\"\n}\n"
    );
    let at = t0 + HOUR - SECOND; // 12:58:59
    let denied = policy.check(&alice, at, 1).unwrap();
    assert!(headers(&denied, at).ends_with("retry-after: 1\r\n"));
    let at_12_59 = policy.check(&alice, t0 + HOUR, 1).unwrap();
    assert!(at_12_59.allowed());
    assert_eq!(
        headers(&at_12_59, t0 + HOUR),
        "x-ratelimit-limit: 1000\r\nx-ratelimit-remaining: 999\r\n"
    );
}

fn uphold_request<'a>(
    method: &'a str,
    path: &'a str,
    ip: &'a [u8],
    user: Option<&'a [u8]>,
) -> Request<'a> {
    Request {
        method,
        path,
        client_ip: Some(ip),
        user,
        ..Request::default()
    }
}

#[test]
fn uphold_password_forgot_per_account_across_ips_and_per_ip() {
    let policy = policy("uphold");
    let t = 20 * MINUTE; // windows aligned: 11:20:00, a 5-minute boundary
    let account = Some(&b"foo@bar.com"[..]);
    let ips: [&[u8]; 4] = [
        b"198.51.100.1",
        b"198.51.100.2",
        b"198.51.100.3",
        b"198.51.100.4",
    ];
    for ip in &ips[..3] {
        let d = policy
            .check(
                &uphold_request("POST", "/password/forgot", ip, account),
                t,
                1,
            )
            .unwrap();
        assert!(d.allowed());
    }
    // The fourth IP is fresh, but the account has used its 3 per 5 minutes.
    let denied = policy
        .check(
            &uphold_request("POST", "/password/forgot", ips[3], account),
            t + 10 * SECOND,
            1,
        )
        .unwrap();
    assert!(!denied.allowed());
    let deciding = denied.deciding().unwrap();
    assert_eq!(deciding.name, "password-forgot-per-user");
    assert_eq!(
        headers(&denied, t + 10 * SECOND),
        format!(
            "X-RateLimit-Limit: 3\r\nX-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: {}\r\nRetry-After: 290\r\n",
            (WALL_AT_ZERO + t + 5 * MINUTE) / SECOND
        )
    );
    // Per IP: 10 per 10 minutes, whatever the accounts.
    let ip = b"203.0.113.9";
    for i in 0..10u32 {
        let user = format!("user{i}@example.com");
        let d = policy
            .check(
                &uphold_request("POST", "/password/forgot", ip, Some(user.as_bytes())),
                t,
                1,
            )
            .unwrap();
        assert!(d.allowed(), "request {i}");
    }
    let denied = policy
        .check(
            &uphold_request("POST", "/password/forgot", ip, Some(b"new@example.com")),
            t,
            1,
        )
        .unwrap();
    assert!(!denied.allowed());
    assert_eq!(denied.deciding().unwrap().name, "password-forgot-per-ip");
    // The denial consumed nothing: the new account still has all 3.
    let other_ip = policy
        .check(
            &uphold_request(
                "POST",
                "/password/forgot",
                b"203.0.113.10",
                Some(b"new@example.com"),
            ),
            t,
            1,
        )
        .unwrap();
    assert!(other_ip.allowed());
}

#[test]
fn uphold_global_300_per_5_minutes_with_epoch_reset() {
    let policy = policy("uphold");
    let ip = b"192.0.2.7";
    let t = 25 * MINUTE; // 11:25:00
    for i in 0..300 {
        let d = policy
            .check(
                &uphold_request("GET", "/v0/ticker", ip, None),
                t + i * SECOND / 2,
                1,
            )
            .unwrap();
        assert!(d.allowed(), "request {i}");
        if i == 0 {
            assert_eq!(
                headers(&d, t),
                format!(
                    "X-RateLimit-Limit: 300\r\nX-RateLimit-Remaining: 299\r\nX-RateLimit-Reset: {}\r\n",
                    (WALL_AT_ZERO + t + 5 * MINUTE) / SECOND
                )
            );
        }
    }
    // 300 used by 11:27:29.5; the window resets at 11:30:00.
    let at = t + 215 * SECOND; // 11:28:35
    let denied = policy
        .check(&uphold_request("GET", "/v0/ticker", ip, None), at, 1)
        .unwrap();
    assert_eq!(
        headers(&denied, at),
        format!(
            "X-RateLimit-Limit: 300\r\nX-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: {}\r\nRetry-After: 85\r\n",
            (WALL_AT_ZERO + t + 5 * MINUTE) / SECOND
        )
    );
    // Endpoint rules count separately but the global rule applies to them too.
    let card = policy
        .check(
            &uphold_request("POST", "/cards/c1/transactions", ip, None),
            at,
            1,
        )
        .unwrap();
    assert!(!card.allowed());
    assert_eq!(card.deciding().unwrap().name, "global-per-ip");
    assert!(policy
        .check(
            &uphold_request("GET", "/v0/ticker", ip, None),
            t + 5 * MINUTE,
            1
        )
        .unwrap()
        .allowed());
}

#[test]
fn switch_sixth_in_a_second_and_twenty_first_in_a_minute() {
    let policy = policy("switch");
    let readings = Request {
        method: "POST",
        path: "/api/readings",
        client: Some(b"client-a"),
        ..Request::default()
    };
    let t = 60 * MINUTE; // 12:00:00
    for _ in 0..5 {
        assert!(policy.check(&readings, t, 1).unwrap().allowed());
    }
    let sixth = policy.check(&readings, t + 300_000_000, 1).unwrap();
    assert!(!sixth.allowed());
    assert_eq!(
        headers(&sixth, t + 300_000_000),
        "X-Rate-Limit-Limit: 5\r\nX-Rate-Limit-Remaining: 0\r\nX-Rate-Limit-Reset: 2026-11-24T12:00:01Z\r\nRetry-After: 1\r\n"
    );
    for second in 1..4 {
        for _ in 0..5 {
            assert!(policy
                .check(&readings, t + second * SECOND, 1)
                .unwrap()
                .allowed());
        }
    }
    let at = t + 19 * SECOND;
    let twenty_first = policy.check(&readings, at, 1).unwrap();
    assert!(!twenty_first.allowed());
    assert_eq!(
        headers(&twenty_first, at),
        "X-Rate-Limit-Limit: 20\r\nX-Rate-Limit-Remaining: 0\r\nX-Rate-Limit-Reset: 2026-11-24T12:01:00Z\r\nRetry-After: 41\r\n"
    );
    assert_eq!(twenty_first.content_type(), "text/plain; charset=utf-8");
    assert_eq!(
        body(&twenty_first),
        "Save readings API interface quota exceeded. Maximum allowed is 20 requests per 1m. Please try again in 41 second."
    );
    // Other endpoints are never limited, and carry no rate-limit headers.
    for _ in 0..1000 {
        let other = policy
            .check(
                &Request {
                    method: "GET",
                    path: "/api/meters",
                    ..readings
                },
                at,
                1,
            )
            .unwrap();
        assert!(other.allowed());
        assert!(!other.limited());
        assert_eq!(headers(&other, at), "");
    }
    assert!(policy.check(&readings, t + MINUTE, 1).unwrap().allowed());
}
