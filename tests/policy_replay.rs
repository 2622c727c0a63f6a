//! The three seed policies, loaded from their TOML files and replayed request by request
//! on a simulated clock: decisions, headers and 429 bodies byte for byte — including the
//! seed clauses that depend on the token kind (ev.energy's client-credentials apps,
//! Switch's personal tokens) and what a request lacking a key attribute gets.

use ratecore::policy::{Attribute, LimitMetrics, Policy, PolicyDecision, Request};

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

/// Asserts that `denied` refuses a request missing limit `name`'s key, and that limit
/// decides.
fn assert_missing_key_denial(denied: &PolicyDecision<'_>, name: &str) {
    assert!(!denied.allowed());
    assert!(denied.denied_for_missing_key());
    assert_eq!(denied.deciding().unwrap().name, name);
}

/// ev.energy's published answer to a request over a limit of 1000, `retry` seconds
/// before it may retry, byte for byte.
fn assert_evenergy_denial(denied: &PolicyDecision<'_>, at: u64, retry: u64) {
    assert!(!denied.allowed());
    assert_eq!(denied.denial_status(), 429);
    assert_eq!(
        headers(denied, at),
        format!("x-ratelimit-limit: 1000\r\nx-ratelimit-remaining: 0\r\nretry-after: {retry}\r\n")
    );
    assert_eq!(denied.content_type(), "application/problem+json");
    assert_eq!(
        body(denied),
        format!("{{\n    \"type\": \"https://api.ev.energy/v2/problems/rate-limit-exceeded/\",\n    \"status\": 429,\n    \"title\": \"Too many requests\",\n    \"detail\": \"Request was rate limited. Try again in {retry} seconds\"\n}}\n")
    );
}

/// An ev.energy authorisation-code token's attributes: one limit per (app, user).
fn authorization_code<'a>(app: &'a [u8], user: &'a [u8]) -> [Attribute<'a>; 3] {
    [
        Attribute::new("auth", b"authorization_code"),
        Attribute::new("app", app),
        Attribute::new("user", user),
    ]
}

#[test]
fn evenergy_1000_at_11_59_then_nothing_until_12_59() {
    let policy = policy("evenergy");
    let alice_token = authorization_code(b"app-1", b"alice");
    let alice = Request::new("GET", "/v2/users/", &alice_token);
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
    let bob_token = authorization_code(b"app-1", b"bob");
    let bob = Request::new("GET", "/v2/users/", &bob_token);
    assert!(policy.check(&bob, t0, 1).unwrap().allowed());
    // 12:58:18: denied, retry in 42 s — the seed's example response, byte for byte.
    let at = t0 + HOUR - 42 * SECOND;
    let denied = policy.check(&alice, at, 1).unwrap();
    assert_evenergy_denial(&denied, at, 42);
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

/// An Uphold request's attributes: the client IP and, where the endpoint names one, the
/// account.
fn uphold_attributes<'a>(ip: &'a [u8], user: Option<&'a [u8]>) -> Vec<Attribute<'a>> {
    let mut attributes = vec![Attribute::new("client_ip", ip)];
    if let Some(user) = user {
        attributes.push(Attribute::new("user", user));
    }
    attributes
}

/// Checks an Uphold request at `now`.
fn uphold_check<'p>(
    policy: &'p Policy,
    (method, path): (&str, &str),
    ip: &[u8],
    user: Option<&[u8]>,
    now: u64,
) -> PolicyDecision<'p> {
    let attributes = uphold_attributes(ip, user);
    policy
        .check(&Request::new(method, path, &attributes), now, 1)
        .unwrap()
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
        let d = uphold_check(&policy, ("POST", "/password/forgot"), ip, account, t);
        assert!(d.allowed());
    }
    // The fourth IP is fresh, but the account has used its 3 per 5 minutes.
    let denied = uphold_check(
        &policy,
        ("POST", "/password/forgot"),
        ips[3],
        account,
        t + 10 * SECOND,
    );
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
        let d = uphold_check(
            &policy,
            ("POST", "/password/forgot"),
            ip,
            Some(user.as_bytes()),
            t,
        );
        assert!(d.allowed(), "request {i}");
    }
    let denied = uphold_check(
        &policy,
        ("POST", "/password/forgot"),
        ip,
        Some(b"new@example.com"),
        t,
    );
    assert!(!denied.allowed());
    assert_eq!(denied.deciding().unwrap().name, "password-forgot-per-ip");
    // The denial consumed nothing: the new account still has all 3.
    let other_ip = uphold_check(
        &policy,
        ("POST", "/password/forgot"),
        b"203.0.113.10",
        Some(b"new@example.com"),
        t,
    );
    assert!(other_ip.allowed());
}

#[test]
fn uphold_global_300_per_5_minutes_with_epoch_reset() {
    let policy = policy("uphold");
    let ip = b"192.0.2.7";
    let t = 25 * MINUTE; // 11:25:00
    for i in 0..300 {
        let d = uphold_check(&policy, ("GET", "/v0/ticker"), ip, None, t + i * SECOND / 2);
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
    let denied = uphold_check(&policy, ("GET", "/v0/ticker"), ip, None, at);
    assert_eq!(
        headers(&denied, at),
        format!(
            "X-RateLimit-Limit: 300\r\nX-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: {}\r\nRetry-After: 85\r\n",
            (WALL_AT_ZERO + t + 5 * MINUTE) / SECOND
        )
    );
    // Endpoint rules count separately but the global rule applies to them too.
    let card = uphold_check(&policy, ("POST", "/cards/c1/transactions"), ip, None, at);
    assert!(!card.allowed());
    assert_eq!(card.deciding().unwrap().name, "global-per-ip");
    assert!(uphold_check(&policy, ("GET", "/v0/ticker"), ip, None, t + 5 * MINUTE).allowed());
}

#[test]
fn switch_sixth_in_a_second_and_twenty_first_in_a_minute() {
    let policy = policy("switch");
    // An application authenticating with the client-credentials flow.
    let client_a = [
        Attribute::new("auth", b"client_credentials"),
        Attribute::new("client", b"client-a"),
    ];
    let readings = Request::new("POST", "/api/readings", &client_a);
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

// ---------------------------------------------------------------------------------------
// Seed clauses the attribute model makes expressible: token kinds and missing attributes
// ---------------------------------------------------------------------------------------

/// Checks (or, with `commit` false, peeks) a request carrying `attributes` at `now`.
fn decide<'p>(
    policy: &'p Policy,
    (method, path): (&str, &str),
    attributes: &[(&str, &[u8])],
    now: u64,
    commit: bool,
) -> PolicyDecision<'p> {
    let attributes: Vec<Attribute<'_>> = attributes
        .iter()
        .map(|&(name, value)| Attribute::new(name, value))
        .collect();
    let request = Request::new(method, path, &attributes);
    if commit {
        policy.check(&request, now, 1).unwrap()
    } else {
        policy.peek(&request, now, 1).unwrap()
    }
}

fn check<'p>(
    policy: &'p Policy,
    route: (&str, &str),
    attributes: &[(&str, &[u8])],
    now: u64,
) -> PolicyDecision<'p> {
    decide(policy, route, attributes, now, true)
}

/// The counters of the limit named `name`.
fn metrics(policy: &Policy, name: &str) -> LimitMetrics {
    policy
        .metrics()
        .find(|(limit, _)| limit.name == name)
        .map(|(_, m)| m)
        .unwrap_or_else(|| panic!("no limit {name:?}"))
}

const EV_USERS: (&str, &str) = ("GET", "/v2/users/");

/// ev.energy's public rate-limit documentation: for clients using the "client
/// credentials" method, "all your requests will share the same limits" — 1000 per
/// rolling hour for the application, whatever user a request names, if any.
#[test]
fn evenergy_client_credentials_app_shares_one_limit_per_rolling_hour() {
    let policy = policy("evenergy");
    let cc: &[u8] = b"client_credentials";
    let users: [Option<&[u8]>; 3] = [None, Some(b"alice"), Some(b"bob")];
    let app_request = |i: usize, now: u64| {
        let mut attributes: Vec<(&str, &[u8])> = vec![("auth", cc), ("app", b"app-9")];
        if let Some(user) = users[i % 3] {
            attributes.push(("user", user));
        }
        check(&policy, EV_USERS, &attributes, now)
    };
    // 1000 requests from 11:00:00, one every 3 s (the last at 11:49:57), a third of them
    // naming no user and the others alice or bob: one count for the app.
    for i in 0..1000usize {
        let now = i as u64 * 3 * SECOND;
        let d = app_request(i, now);
        assert!(d.allowed(), "request {i}");
        assert_eq!(d.decision().remaining, 999 - i as u64, "request {i}");
        let deciding = d.deciding().unwrap();
        assert_eq!(
            (deciding.rule, deciding.name, deciding.key),
            ("client-credentials", "per-app", &["app".to_string()][..])
        );
        if i == 0 {
            assert_eq!(
                headers(&d, now),
                "x-ratelimit-limit: 1000\r\nx-ratelimit-remaining: 999\r\n"
            );
        }
    }
    // 11:55:00: the 1,001st is refused, whoever it names. The first minute's 20 requests
    // (11:00:00 to 11:00:57) leave the rolling hour together once the last of them is an
    // hour old: at 12:00:57, in 357 s.
    let at = 55 * MINUTE;
    for user in [None, Some(&b"alice"[..]), Some(b"carol")] {
        let mut attributes: Vec<(&str, &[u8])> = vec![("auth", cc), ("app", b"app-9")];
        if let Some(user) = user {
            attributes.push(("user", user));
        }
        let denied = check(&policy, EV_USERS, &attributes, at);
        assert!(!denied.allowed(), "{user:?}");
        assert!(!denied.denied_for_missing_key());
        assert_eq!(denied.deciding().unwrap().name, "per-app");
        assert_evenergy_denial(&denied, at, 357);
    }
    // Exact: one nanosecond before 12:00:57 still refused, at 12:00:57 admitted (the
    // denials consumed nothing).
    let open = HOUR + 57 * SECOND;
    let app: &[(&str, &[u8])] = &[("auth", cc), ("app", b"app-9")];
    assert!(!decide(&policy, EV_USERS, app, open - 1, false).allowed());
    let again = check(&policy, EV_USERS, app, open);
    assert!(again.allowed());
    assert_eq!(
        again.decision().remaining,
        19,
        "20 left the hour, 1 came in"
    );
    // Another application has its own limit; so has each authorisation-code user of the
    // same application.
    let other_app = check(&policy, EV_USERS, &[("auth", cc), ("app", b"app-10")], at);
    assert_eq!(other_app.decision().remaining, 999);
    let alice = check(
        &policy,
        EV_USERS,
        &[
            ("auth", b"authorization_code"),
            ("app", b"app-9"),
            ("user", b"alice"),
        ],
        at,
    );
    assert!(alice.allowed());
    assert_eq!(alice.decision().remaining, 999);
    assert_eq!(alice.deciding().unwrap().rule, "authorization-code");
    // A client-credentials request without its application is refused, not let through.
    let no_app = check(&policy, EV_USERS, &[("auth", cc)], at);
    assert_missing_key_denial(&no_app, "per-app");
}

/// ev.energy: for the "authorisation code" method, "each user will have their own rate
/// limit" — one per (OAuth application, user).
#[test]
fn evenergy_authorization_code_limits_each_app_and_user_pair() {
    let policy = policy("evenergy");
    let ac: &[u8] = b"authorization_code";
    let t = 10 * MINUTE;
    let pair = |app: &'static [u8], user: &'static [u8]| -> [(&'static str, &'static [u8]); 3] {
        [
            ("auth", b"authorization_code"),
            ("app", app),
            ("user", user),
        ]
    };
    for i in 0..1000u64 {
        let d = check(&policy, EV_USERS, &pair(b"app-1", b"alice"), t);
        assert_eq!(d.decision().remaining, 999 - i);
    }
    let denied = check(&policy, EV_USERS, &pair(b"app-1", b"alice"), t);
    assert!(!denied.allowed());
    let deciding = denied.deciding().unwrap();
    assert_eq!(
        (deciding.rule, deciding.name),
        ("authorization-code", "per-app-user")
    );
    assert_eq!(deciding.key, ["app".to_string(), "user".to_string()]);
    assert_eq!(
        headers(&denied, t),
        "x-ratelimit-limit: 1000\r\nx-ratelimit-remaining: 0\r\nretry-after: 3600\r\n"
    );
    // The same user with another application, and another user of the same one.
    for (app, user) in [(&b"app-2"[..], &b"alice"[..]), (b"app-1", b"bob")] {
        let d = check(&policy, EV_USERS, &pair(app, user), t);
        assert!(d.allowed());
        assert_eq!(d.decision().remaining, 999);
    }
    // An authorisation-code request that names no user is refused, naming the limit.
    let no_user = check(&policy, EV_USERS, &[("auth", ac), ("app", b"app-2")], t);
    assert_missing_key_denial(&no_user, "per-app-user");
    assert_eq!(
        headers(&no_user, t),
        "x-ratelimit-limit: 1000\r\nx-ratelimit-remaining: 0\r\nretry-after: 3600\r\n"
    );
    // A request with neither token kind meets no rule of this policy.
    let anonymous = check(&policy, EV_USERS, &[("app", b"app-1")], t);
    assert!(anonymous.allowed());
    assert!(!anonymous.limited());
    assert_eq!(headers(&anonymous, t), "");
}

const READINGS: (&str, &str) = ("POST", "/api/readings");

/// Switch's public rate-limiting documentation: a personal access token's limit "is
/// unrestricted at the moment"; client-credentials applications get 5 per second and
/// 20 per minute on POST /api/readings; the limit is for client-credentials tokens only.
#[test]
fn switch_personal_tokens_unrestricted_client_credentials_limited() {
    let policy = policy("switch");
    let t = 60 * MINUTE; // 12:00:00
    let personal: &[(&str, &[u8])] = &[("auth", b"personal_token"), ("client", b"client-a")];
    let app: &[(&str, &[u8])] = &[("auth", b"client_credentials"), ("client", b"client-a")];
    for _ in 0..1000 {
        let d = check(&policy, READINGS, personal, t);
        assert!(d.allowed());
        assert!(!d.limited());
        assert_eq!(d.exempted_by(), Some("personal-token"));
        assert_eq!(headers(&d, t), "");
    }
    // Exempt requests count nowhere: the application's budget is whole.
    assert_eq!(metrics(&policy, "per-second").checked(), 0);
    for i in 0..5u64 {
        let d = check(&policy, READINGS, app, t + i * 100_000_000);
        assert!(d.allowed());
        assert_eq!(d.exempted_by(), None);
        assert_eq!(d.decision().remaining, 4 - i);
    }
    let sixth = check(&policy, READINGS, app, t + 500_000_000);
    assert!(!sixth.allowed());
    assert_eq!(sixth.deciding().unwrap().name, "per-second");
    assert_eq!(
        headers(&sixth, t + 500_000_000),
        "X-Rate-Limit-Limit: 5\r\nX-Rate-Limit-Remaining: 0\r\nX-Rate-Limit-Reset: 2026-11-24T12:00:01Z\r\nRetry-After: 1\r\n"
    );
    assert_eq!(
        body(&sixth),
        "Save readings API interface quota exceeded. Maximum allowed is 5 requests per 1s. Please try again in 1 second."
    );
    for second in 1..4 {
        for _ in 0..5 {
            assert!(check(&policy, READINGS, app, t + second * SECOND).allowed());
        }
    }
    let at = t + 19 * SECOND;
    let twenty_first = check(&policy, READINGS, app, at);
    assert!(!twenty_first.allowed());
    assert_eq!(twenty_first.deciding().unwrap().name, "per-minute");
    assert_eq!(
        headers(&twenty_first, at),
        "X-Rate-Limit-Limit: 20\r\nX-Rate-Limit-Remaining: 0\r\nX-Rate-Limit-Reset: 2026-11-24T12:01:00Z\r\nRetry-After: 41\r\n"
    );
    // Even now, with the application's minute spent, personal tokens pass on the same
    // endpoint, and so do requests with neither token kind: save-readings does not
    // apply to them (nor counts them).
    let before = metrics(&policy, "per-minute");
    for attributes in [
        personal,
        &[("client", b"client-a")],
        &[("auth", b"password"), ("client", b"client-a")],
        &[],
    ] {
        let d = check(&policy, READINGS, attributes, at);
        assert!(d.allowed(), "{attributes:?}");
        assert!(!d.limited(), "{attributes:?}");
        assert_eq!(headers(&d, at), "", "{attributes:?}");
    }
    assert_eq!(metrics(&policy, "per-minute"), before);
    // A client-credentials request that names no client is refused: the longest of the
    // two periods decides.
    let no_client = check(&policy, READINGS, &[("auth", b"client_credentials")], at);
    assert_missing_key_denial(&no_client, "per-minute");
    assert_eq!(
        headers(&no_client, at),
        "X-Rate-Limit-Limit: 20\r\nX-Rate-Limit-Remaining: 0\r\nX-Rate-Limit-Reset: 2026-11-24T12:01:19Z\r\nRetry-After: 60\r\n"
    );
    assert!(check(&policy, READINGS, app, t + MINUTE).allowed());
}

/// A limit of Uphold's table: (limit name, limit, window).
type UpholdLimit = (&'static str, u64, u64);

/// Uphold's table, a row an endpoint: its route, its per-IP limit and its per-account
/// limit, if any.
#[rustfmt::skip]
const UPHOLD_ROWS: [((&str, &str), UpholdLimit, Option<UpholdLimit>); 6] = [
    (("GET", "/v0/ticker"),                        ("global-per-ip", 300, 5 * MINUTE),                  None),
    (("POST", "/cards/c1/transactions"),           ("card-transactions-per-ip", 300, 5 * MINUTE),       None),
    (("POST", "/cards/c1/transactions/t1/commit"), ("card-transaction-commit-per-ip", 300, 5 * MINUTE), None),
    (("POST", "/oauth2/token"),                    ("oauth2-token-per-ip", 10, MINUTE),                 Some(("oauth2-token-per-user", 10, MINUTE))),
    (("POST", "/password/forgot"),                 ("password-forgot-per-ip", 10, 10 * MINUTE),         Some(("password-forgot-per-user", 3, 5 * MINUTE))),
    (("POST", "/users"),                           ("users-per-ip", 10, 10 * MINUTE),                   None),
];

/// Uphold's public rate-limit documentation, row by row, for requests that carry their
/// client IP: the behaviour the earlier identity model had, unchanged.
#[test]
fn uphold_every_endpoint_per_ip_and_per_account_with_an_ip() {
    let policy = policy("uphold");
    let t = 20 * MINUTE; // 11:20:00: every window starts here
                         // A denial at `t` by a limit of `limit` per `window`.
    let denial_headers = |limit: u64, window: u64| {
        format!(
            "X-RateLimit-Limit: {limit}\r\nX-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: {}\r\nRetry-After: {}\r\n",
            (WALL_AT_ZERO + t + window) / SECOND,
            window / SECOND
        )
    };
    for (r, (route, (ip_name, ip_limit, ip_window), per_user)) in
        UPHOLD_ROWS.into_iter().enumerate()
    {
        // This row's route at `t`, from `ip` for `account`.
        let check = |ip: &[u8], account: &[u8]| uphold_check(&policy, route, ip, Some(account), t);
        // Per IP: a fresh IP, a different account on every request.
        let ip = format!("198.51.100.{r}");
        let accounts: Vec<String> = (0..=ip_limit)
            .map(|i| format!("{r}-{i}@example.com"))
            .collect();
        for account in &accounts[..ip_limit as usize] {
            let d = check(ip.as_bytes(), account.as_bytes());
            assert!(d.allowed(), "{ip_name}");
            let mut names: Vec<&str> = d.entries().map(|(l, _)| l.name).collect();
            names.dedup();
            let mut expected = vec!["global-per-ip", ip_name];
            expected.extend(per_user.map(|(name, ..)| name));
            expected.dedup();
            assert_eq!(names, expected);
        }
        let denied = check(ip.as_bytes(), accounts[ip_limit as usize].as_bytes());
        assert!(!denied.allowed(), "{ip_name}");
        assert!(!denied.denied_for_missing_key());
        // The card rules' 300 per 5 minutes runs out with the global one: equal waits,
        // and the first in policy order reports.
        let deciding = if ip_limit == 300 {
            "global-per-ip"
        } else {
            ip_name
        };
        assert_eq!(denied.deciding().unwrap().name, deciding);
        assert_eq!(
            headers(&denied, t),
            denial_headers(ip_limit, ip_window),
            "{ip_name}"
        );
        // Per account: the same account from fresh IPs.
        let Some((user_name, user_limit, user_window)) = per_user else {
            continue;
        };
        let account = format!("account-{r}@example.com");
        for i in 0..user_limit {
            let ip = format!("203.0.{r}.{i}");
            let d = check(ip.as_bytes(), account.as_bytes());
            assert!(d.allowed(), "{user_name} {i}");
        }
        let denied = check(b"192.0.2.200", account.as_bytes());
        assert!(!denied.allowed(), "{user_name}");
        assert_eq!(denied.deciding().unwrap().name, user_name);
        assert_eq!(headers(&denied, t), denial_headers(user_limit, user_window));
        // Without an account, only the per-IP limits apply: the account limit is
        // skipped, and counted so.
        let skipped = metrics(&policy, user_name).skipped;
        let anonymous = uphold_check(&policy, route, b"192.0.2.201", None, t);
        assert!(anonymous.allowed());
        assert_eq!(
            anonymous.entries().map(|(l, _)| l.name).collect::<Vec<_>>(),
            ["global-per-ip", ip_name]
        );
        assert_eq!(metrics(&policy, user_name).skipped, skipped + 1);
    }
}

/// Uphold: a request whose client IP is unknown is refused (`on_missing = "deny"`) by the
/// per-IP limits rather than let through unlimited; the denial names the limit and
/// consumes nothing.
#[test]
fn uphold_requests_without_an_ip_are_refused_naming_the_limit() {
    let policy = policy("uphold");
    let t = 20 * MINUTE + 6 * SECOND; // 11:20:06
    let denied = check(&policy, ("GET", "/v0/ticker"), &[], t);
    assert!(!denied.allowed());
    assert!(denied.limited());
    assert!(denied.denied_for_missing_key());
    let deciding = denied.deciding().unwrap();
    assert_eq!((deciding.rule, deciding.name), ("global", "global-per-ip"));
    assert_eq!(deciding.key, ["client_ip".to_string()]);
    // The denial reports the limit's period as the wait.
    assert_eq!(denied.decision().retry_after, 5 * MINUTE);
    assert_eq!(
        headers(&denied, t),
        format!(
            "X-RateLimit-Limit: 300\r\nX-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: {}\r\nRetry-After: 300\r\n",
            (WALL_AT_ZERO + t + 5 * MINUTE) / SECOND
        )
    );
    assert_eq!(
        body(&denied),
        "{\n    \"type\": \"about:blank\",\n    \"status\": 429,\n    \"title\": \"Too Many Requests\",\n    \"detail\": \"Request was rate limited. Try again in 300 seconds\"\n}\n"
    );
    assert_eq!(metrics(&policy, "global-per-ip").denied, 1);
    // Waiting does not help: still refused a period later.
    assert!(check(&policy, ("GET", "/v0/ticker"), &[], t + 5 * MINUTE).denied_for_missing_key());

    // On POST /password/forgot two per-IP limits refuse it; the longer wait decides. The
    // account named is not charged.
    let account: &[(&str, &[u8])] = &[("user", b"foo@bar.com")];
    let forgot = ("POST", "/password/forgot");
    for _ in 0..5 {
        let denied = check(&policy, forgot, account, t);
        assert_missing_key_denial(&denied, "password-forgot-per-ip");
        assert_eq!(denied.decision().retry_after, 10 * MINUTE);
    }
    for i in 0..3u8 {
        let ip = [b'1', b'0', b'.', b'0' + i];
        let d = uphold_check(&policy, forgot, &ip, Some(b"foo@bar.com"), t);
        assert!(d.allowed(), "account request {i}");
        assert!(!d.denied_for_missing_key());
    }
    let fourth = uphold_check(&policy, forgot, b"10.9", Some(b"foo@bar.com"), t);
    assert!(!fourth.allowed());
    assert!(!fourth.denied_for_missing_key());
    assert_eq!(fourth.deciding().unwrap().name, "password-forgot-per-user");
}
