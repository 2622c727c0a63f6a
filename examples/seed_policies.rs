//! The seed policies, replayed on a simulated clock.
//!
//! Run with `cargo run --release --example seed_policies`.
//!
//! Three real API rate-limit policies (ev.energy, Switch and Uphold; see the seed
//! documents) are replayed for one key each. Time is simulated: `now` is nanoseconds since
//! midnight of an imaginary day, passed explicitly to every check, so no clock is read and
//! every run prints the same thing. Each decision is printed as a row of a table, and after
//! each section the program checks the seed's promise itself (plus, for every denial, that
//! `retry_after` is exact to the nanosecond): if the semantics ever regress, the demo
//! panics instead of printing a plausible-looking table.
//!
//! A section then runs all four algorithms on one burst-then-trickle trace to show how
//! their semantics differ, and the last one replays each policy file as HTTP exchanges:
//! several keys and token kinds (ev.energy's authorisation-code users and a
//! client-credentials app sharing one limit, Switch's unrestricted personal tokens,
//! Uphold's refusal of a request without a client IP), every verdict checked against the
//! seed, with the exact headers and 429 bodies.

use ratecore::policy::{Attribute, Policy, Request};
use ratecore::{
    Algorithm, Composite, Decision, FixedWindow, Gcra, Limiter, Quota, RateLimiter,
    SlidingWindowStrict, NEVER,
};

const NS: u64 = 1;
const MS: u64 = 1_000_000 * NS;
const SECOND: u64 = 1_000 * MS;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;

/// `hh:mm:ss` of the simulated day, in nanoseconds since its midnight.
const fn at(hours: u64, minutes: u64, seconds: u64) -> u64 {
    hours * HOUR + minutes * MINUTE + seconds * SECOND
}

fn main() {
    println!("ratecore seed policies: one key each, on a simulated clock.");
    println!("Times are HH:MM:SS.mmm of a simulated day (`now` = nanoseconds since its midnight);");
    println!("durations are relative to the request's time; '-' means not applicable.");
    evenergy();
    switch();
    uphold();
    comparison();
    http_replay();
    println!();
    println!("All seed promises checked: OK.");
}

// ---------------------------------------------------------------------------------------
// The full policies, from their TOML files, as HTTP responses
// ---------------------------------------------------------------------------------------

/// Wall-clock nanoseconds at simulated midnight (2026-11-24T00:00:00Z): headers with
/// absolute times (Uphold's epoch seconds, Switch's ISO 8601) need a wall clock, which is
/// a separate input from the monotonic `now` the limiter decides with.
const WALL_AT_MIDNIGHT: u64 = 1_795_478_400 * SECOND;

/// One simulated HTTP request, the verdict the seed promises for it, and the response a
/// client would see.
struct Exchange<'a> {
    now: u64,
    method: &'a str,
    path: &'a str,
    /// What the caller knows about the request: client IP, token kind, app, user…
    attributes: Vec<Attribute<'a>>,
    /// Whether the seed says it is admitted.
    admitted: bool,
    label: &'a str,
}

impl<'a> Exchange<'a> {
    fn new(
        now: u64,
        (method, path): (&'a str, &'a str),
        attributes: &[(&'a str, &'a [u8])],
        label: &'a str,
    ) -> Self {
        Self {
            now,
            method,
            path,
            attributes: attributes
                .iter()
                .map(|&(name, value)| Attribute::new(name, value))
                .collect(),
            admitted: true,
            label,
        }
    }

    /// The seed says this one is refused.
    fn denied(self) -> Self {
        Self {
            admitted: false,
            ..self
        }
    }

    fn request(&self) -> Request<'_> {
        Request::new(self.method, self.path, &self.attributes)
    }
}

fn http_replay() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policies");
    let users = ("GET", "/v2/users/");
    // An authorisation-code token names the app and the user: one limit per pair.
    let ev = |now, user: &'static [u8], label| {
        Exchange::new(
            now,
            users,
            &[
                ("auth", b"authorization_code"),
                ("app", b"app-1"),
                ("user", user),
            ],
            label,
        )
    };
    // A client-credentials token names the app only; a request may still carry a user
    // (the account it acts on), but all of the app's requests share one limit.
    let cc = |now, user: Option<&'static [u8]>, label| {
        let mut exchange = Exchange::new(
            now,
            users,
            &[("auth", b"client_credentials"), ("app", b"app-2")],
            label,
        );
        if let Some(user) = user {
            exchange.attributes.push(Attribute::new("user", user));
        }
        exchange
    };
    let mut evenergy = vec![ev(at(11, 59, 0), b"alice", "1st of 1000 at 11:59:00")];
    evenergy.extend((1..1000).map(|_| ev(at(11, 59, 0), b"alice", "")));
    evenergy.push(ev(at(11, 59, 1), b"bob", "another user of the same app"));
    let cc_users: [Option<&'static [u8]>; 3] = [None, Some(b"carol"), Some(b"dave")];
    evenergy.push(cc(
        at(12, 10, 0),
        None,
        "client-credentials app: 1st of 1000 at 12:10:00",
    ));
    evenergy.extend((1..1000).map(|i| cc(at(12, 10, 0), cc_users[i % 3], "")));
    evenergy.push(
        cc(
            at(12, 30, 0),
            Some(b"erin"),
            "the same app for another user: its one limit is spent",
        )
        .denied(),
    );
    evenergy.push(ev(at(12, 58, 18), b"alice", "12:58:18: the seed's example 429").denied());
    evenergy.push(ev(at(12, 59, 0), b"alice", "12:59:00: admitted again"));
    evenergy.push(cc(
        at(13, 10, 0),
        None,
        "13:10:00: the client-credentials app again",
    ));
    let n = evenergy.len();
    replay(
        &format!("{root}/evenergy.toml"),
        &evenergy,
        &[0, 1000, 1001, n - 4, n - 3, n - 2, n - 1],
    );

    let forgot = ("POST", "/password/forgot");
    let up = |now, route, ip: &'static [u8], user: Option<&'static [u8]>, label| {
        let mut exchange = Exchange::new(now, route, &[("client_ip", ip)], label);
        if let Some(user) = user {
            exchange.attributes.push(Attribute::new("user", user));
        }
        exchange
    };
    let account: Option<&'static [u8]> = Some(b"foo@bar.com");
    let uphold = vec![
        up(
            at(16, 25, 0),
            forgot,
            b"198.51.100.1",
            account,
            "account, IP 1",
        ),
        up(
            at(16, 25, 1),
            forgot,
            b"198.51.100.2",
            account,
            "account, IP 2",
        ),
        up(
            at(16, 25, 2),
            forgot,
            b"198.51.100.3",
            account,
            "account, IP 3",
        ),
        up(
            at(16, 25, 3),
            forgot,
            b"198.51.100.4",
            account,
            "4th for the account in 5 min: denied",
        )
        .denied(),
        up(
            at(16, 25, 4),
            forgot,
            b"198.51.100.4",
            Some(b"bar@baz.com"),
            "another account from IP 4: its own 3",
        ),
        up(
            at(16, 25, 5),
            ("GET", "/v0/ticker"),
            b"198.51.100.4",
            None,
            "IP 4 elsewhere: only the global rule",
        ),
        Exchange::new(
            at(16, 25, 6),
            ("GET", "/v0/ticker"),
            &[],
            "no client IP: refused, never unlimited",
        )
        .denied(),
        up(
            at(16, 30, 0),
            forgot,
            b"198.51.100.4",
            account,
            "next 5-minute window",
        ),
    ];
    replay(
        &format!("{root}/uphold.toml"),
        &uphold,
        &[0, 1, 2, 3, 4, 5, 6, 7],
    );

    let readings = ("POST", "/api/readings");
    let sw = |now, route, label| {
        Exchange::new(
            now,
            route,
            &[("auth", b"client_credentials"), ("client", b"client-a")],
            label,
        )
    };
    let mut switch = vec![sw(at(12, 0, 0), readings, "1st in the second")];
    switch.extend((1..5).map(|i| sw(at(12, 0, 0) + i * 100 * MS, readings, "")));
    switch.push(sw(at(12, 0, 0) + 500 * MS, readings, "6th in one second").denied());
    for second in 1..4 {
        switch.extend((0..5).map(|_| sw(at(12, 0, second), readings, "")));
    }
    switch.push(sw(at(12, 0, 19), readings, "21st in the minute").denied());
    switch.push(sw(
        at(12, 0, 19),
        ("GET", "/api/meters"),
        "other endpoints: no limit",
    ));
    switch.push(Exchange::new(
        at(12, 0, 19),
        readings,
        &[("auth", b"personal_token"), ("client", b"client-a")],
        "a personal access token: unrestricted",
    ));
    switch.push(sw(at(12, 1, 0), readings, "next minute"));
    let n = switch.len();
    replay(
        &format!("{root}/switch.toml"),
        &switch,
        &[0, 5, n - 4, n - 3, n - 2, n - 1],
    );
}

/// The policy in `file`: in this process, or on Redis with `--redis URL` (feature
/// `redis`; decisions, headers and bodies are the same either way).
fn load_policy(file: &str) -> Policy {
    let args: Vec<String> = std::env::args().collect();
    let redis_url = args
        .iter()
        .position(|a| a == "--redis")
        .and_then(|i| args.get(i + 1));
    match redis_url {
        None => Policy::from_toml_file(file).expect("seed policy parses"),
        Some(url) => on_redis(file, url),
    }
}

#[cfg(feature = "redis")]
fn on_redis(file: &str, url: &str) -> Policy {
    use ratecore::policy::PolicySpec;
    use ratecore::redis_backend::{RedisBackend, RedisConfig};
    let text = std::fs::read_to_string(file).expect("seed policy readable");
    let spec = PolicySpec::from_toml_str(&text, file).expect("seed policy parses");
    let mut config = RedisConfig::new(url);
    // A fresh key space per run, and TTLs long enough for a simulated day replayed in
    // seconds (TTLs follow wall time).
    config.prefix = format!("ratecore-demo:{}:", ratecore::clock::unix_time_nanos());
    config.min_ttl = std::time::Duration::from_secs(600);
    config.timeout = std::time::Duration::from_secs(2);
    let backend = RedisBackend::new(config).expect("valid Redis URL");
    println!("(policy state on Redis at {url})");
    Policy::with_redis(spec, backend).expect("seed policy builds")
}

#[cfg(not(feature = "redis"))]
fn on_redis(_file: &str, _url: &str) -> Policy {
    eprintln!("--redis needs the `redis` feature: cargo run --release --features redis --example seed_policies -- --redis URL");
    std::process::exit(2);
}

/// Replays `exchanges` through the policy in `file`, printing the responses at `shown`.
fn replay(file: &str, exchanges: &[Exchange<'_>], shown: &[usize]) {
    let policy = load_policy(file);
    let name = file.rsplit('/').next().unwrap_or(file);
    section(
        &format!("HTTP replay of examples/policies/{name}"),
        "every request through the policy file; the exact status, headers and body a client sees",
    );
    let mut headers = [0u8; 1024];
    let mut body = [0u8; 1024];
    for (index, exchange) in exchanges.iter().enumerate() {
        let request = exchange.request();
        let decision = policy
            .check(&request, exchange.now, 1)
            .expect("cost 1 fits");
        // The demo checks itself: every verdict is the seed's.
        assert_eq!(
            decision.allowed(),
            exchange.admitted,
            "{name}: request #{index} at {} ({})",
            clock(exchange.now),
            exchange.label
        );
        if !shown.contains(&index) {
            continue;
        }
        let status = if decision.allowed() {
            200
        } else {
            decision.denial_status()
        };
        println!(
            "{} {} {}  ({}) -> {status}",
            clock(exchange.now),
            exchange.method,
            exchange.path,
            exchange.label
        );
        let n = decision
            .render_headers(WALL_AT_MIDNIGHT + exchange.now, &mut headers)
            .expect("1 KiB holds the headers");
        for line in String::from_utf8_lossy(&headers[..n]).split_terminator("\r\n") {
            println!("    {line}");
        }
        if !decision.allowed() {
            println!("    Content-Type: {}", decision.content_type());
            let n = decision
                .render_body(&mut body)
                .expect("1 KiB holds the body");
            for line in String::from_utf8_lossy(&body[..n]).lines() {
                println!("    | {line}");
            }
            if decision.denied_for_missing_key() {
                // Refused for what it lacks, not for its rate: waiting does not help.
                let limit = decision.deciding().expect("a limit refused it");
                println!(
                    "    (refused by {}: the request has no {})",
                    limit.name,
                    limit.key.join(", ")
                );
                continue;
            }
            // The demo checks itself: a denial's Retry-After is never early.
            let retry = decision.decision().retry_after;
            let again = policy
                .peek(&request, exchange.now + retry, 1)
                .expect("fits");
            assert!(again.allowed(), "{name}: admitted again after Retry-After");
        }
    }
}

// ---------------------------------------------------------------------------------------
// ev.energy
// ---------------------------------------------------------------------------------------

/// ev.energy: 1000 requests per *rolling* hour, per OAuth application and user.
fn evenergy() {
    section(
        "ev.energy, 1000 requests per rolling hour",
        "\"if you make 1000 requests at 11:59, you cannot make any more until 12:59\"",
    );
    let quota = Quota::per_hour(1000).expect("valid quota");
    let limiter = SlidingWindowStrict::new(quota, 60).expect("valid strict window");
    println!("limiter: SlidingWindowStrict, 1000 per 1 h, 60 sub-windows of 1 min");

    let burst_at = at(11, 59, 0);
    let mut table = DecisionTable::new();
    let mut admitted = Vec::new();
    for n in 1..=1000 {
        let d = check(&limiter, burst_at, 1);
        assert!(d.allowed, "request #{n} at 11:59 must be admitted");
        assert_eq!(d.remaining, 1000 - n, "remaining after request #{n}");
        admitted.push(burst_at);
        if n <= 3 || n > 997 {
            table.row(burst_at, n, &d);
        } else if n == 4 {
            table.note("#4 to #997 at 11:59:00.000: all admitted, remaining 996 down to 3");
        }
    }
    let open_again = at(12, 59, 0);
    let probes = [
        at(12, 0, 0),
        at(12, 30, 0),
        at(12, 58, 59),
        open_again,
        open_again,
    ];
    let mut decisions = Vec::new();
    for (i, &now) in probes.iter().enumerate() {
        let d = check(&limiter, now, 1);
        if d.allowed {
            admitted.push(now);
        }
        table.row(now, 1001 + i as u64, &d);
        decisions.push((now, d));
    }
    table.print();

    // The promise: nothing between the burst and 12:59:00, and every denial says to come
    // back at exactly 12:59:00; then the quota is back.
    for &(now, d) in &decisions[..3] {
        assert!(!d.allowed, "{} must be denied", clock(now));
        assert_eq!(
            now + d.retry_after,
            open_again,
            "a denial at {} must point at 12:59:00",
            clock(now)
        );
    }
    assert_eq!(
        decisions[2].1.retry_after, SECOND,
        "12:58:59 retries in 1 s"
    );
    assert!(decisions[3].1.allowed, "12:59:00 must be admitted");
    assert_eq!(decisions[3].1.remaining, 999);
    assert!(decisions[4].1.allowed);
    assert_eq!(decisions[4].1.remaining, 998);
    let most = most_in_any_interval(&admitted, HOUR);
    assert!(most <= 1000, "{most} admitted within one hour");
    println!(
        "checked: nothing admitted from 11:59:00 until 12:59:00 (each denial's retry_after \
         points at 12:59:00 exactly); at most {most} admitted in any 1-hour interval."
    );
}

// ---------------------------------------------------------------------------------------
// Switch
// ---------------------------------------------------------------------------------------

/// Switch, `POST /api/readings`: 5 per second AND 20 per minute, windows that reset.
fn switch() {
    section(
        "Switch POST /api/readings, 5 requests per second and 20 per minute",
        "both limits apply; a 429 says when to retry (\"Please try again in 41 second\")",
    );
    let per_second = Quota::per_second(5).expect("valid quota");
    let per_minute = Quota::per_minute(20).expect("valid quota");
    let composite = Composite::new(vec![
        Limiter::new(Algorithm::FixedWindow, per_second).expect("valid limit"),
        Limiter::new(Algorithm::FixedWindow, per_minute).expect("valid limit"),
    ])
    .expect("valid composite");
    println!("limiter: Composite of FixedWindow 5 per 1 s AND FixedWindow 20 per 1 min");

    let mut trace = Vec::new();
    // A burst of six, 100 ms apart, in the second starting at 12:00:00...
    for i in 0..6 {
        trace.push(at(12, 0, 0) + i * 100 * MS);
    }
    // ...then one request per second from 12:00:04 until the minute is spent (:19)...
    for s in 4..=19 {
        trace.push(at(12, 0, s));
    }
    // ...and again once the next minute starts.
    trace.push(at(12, 1, 0));

    let mut table = Table::new(&[
        ("time", Align::Left),
        ("#", Align::Right),
        ("verdict", Align::Left),
        ("limit", Align::Right),
        ("remaining", Align::Right),
        ("reset_after", Align::Right),
        ("retry_after", Align::Right),
        ("5/s left", Align::Right),
        ("20/min left", Align::Right),
    ]);
    let mut admitted = Vec::new();
    let mut rows = Vec::new();
    for (i, &now) in trace.iter().enumerate() {
        let mut each = [EMPTY; 2];
        let d = composite
            .check_each(now, 1, &mut each)
            .expect("cost 1 always fits");
        verify_retry_after(&composite, now, 1, &d);
        if d.allowed {
            admitted.push(now);
        }
        if now == at(12, 0, 19) {
            table.note("#22 is the minute's 21st counted request (the denied #6 consumed nothing)");
        }
        let mut cells = decision_cells(now, i as u64 + 1, &d);
        cells.push(each[0].remaining.to_string());
        cells.push(each[1].remaining.to_string());
        table.cells(cells);
        rows.push((now, d, each));
    }
    table.print();

    // The promise, as Switch's own example words it.
    let (_, sixth, each) = rows[5];
    assert!(
        !sixth.allowed,
        "the 6th request within one second is denied"
    );
    assert_eq!(sixth.limit, 5, "denied by the per-second limit");
    assert_eq!(sixth.retry_after, 500 * MS, "until the next second");
    assert_eq!(
        each[1].remaining, 15,
        "the denied 6th consumed nothing per minute"
    );
    let (when, twenty_first, each) = rows[rows.len() - 2];
    assert_eq!(when, at(12, 0, 19));
    assert!(
        !twenty_first.allowed,
        "the 21st within the minute is denied"
    );
    assert_eq!(twenty_first.limit, 20, "denied by the per-minute limit");
    assert_eq!(
        twenty_first.retry_after,
        41 * SECOND,
        "the seed's 41 seconds"
    );
    assert_eq!(
        each[0].remaining, 5,
        "the denial consumed nothing per second"
    );
    for (now, d, _) in &rows[6..rows.len() - 2] {
        assert!(d.allowed, "{} is within both limits", clock(*now));
    }
    let (_, next_minute, _) = rows[rows.len() - 1];
    assert!(next_minute.allowed, "admitted again at 12:01:00");
    assert_eq!(
        next_minute.remaining, 4,
        "the per-second limit is now the tightest"
    );
    assert!(most_in_aligned_windows(&admitted, SECOND) <= 5);
    assert!(most_in_aligned_windows(&admitted, MINUTE) <= 20);
    println!(
        "would answer the 21st: 429, Retry-After: {} -- \"Save readings API interface quota \
         exceeded. Maximum allowed is 20 requests per 1m. Please try again in {} second.\"",
        retry_after_header(&twenty_first),
        retry_after_header(&twenty_first)
    );
    println!(
        "checked: 6th in a second denied for 500 ms; 21st in the minute denied with \
         retry_after 41 s; denials consumed nothing from either limit; admitted at 12:01:00."
    );
}

// ---------------------------------------------------------------------------------------
// Uphold
// ---------------------------------------------------------------------------------------

/// Uphold: global 300 requests per 5-minute window per IP; `Retry-After` counts down to
/// the end of the window.
fn uphold() {
    section(
        "Uphold global limit, 300 requests per 5-minute window per IP",
        "Retry-After = \"how long until the rate limit window is reset\" (example: 85 s)",
    );
    let quota = Quota::new(300, 5 * MINUTE).expect("valid quota");
    let fixed = FixedWindow::new(quota).expect("valid fixed window");
    let gcra = Gcra::new(quota);
    println!(
        "one IP, two limiters fed the same trace: FixedWindow 300 per 5 min (Uphold's \
         semantics) and, for contrast, Gcra 300 per 5 min (burst 300, one every 1 s)"
    );

    let burst_at = at(16, 25, 0);
    let mut trace = vec![burst_at; 301];
    trace.extend([at(16, 25, 1), at(16, 26, 40), at(16, 28, 35), at(16, 30, 0)]);
    let mut table = Table::new(&[
        ("time", Align::Left),
        ("#", Align::Right),
        ("fixed", Align::Left),
        ("remaining", Align::Right),
        ("reset_after", Align::Right),
        ("retry_after", Align::Right),
        ("gcra", Align::Left),
        ("remaining", Align::Right),
        ("reset_after", Align::Right),
        ("retry_after", Align::Right),
    ]);
    let mut fixed_rows = Vec::new();
    let mut gcra_admitted = Vec::new();
    for (i, &now) in trace.iter().enumerate() {
        let n = i as u64 + 1;
        let f = check(&fixed, now, 1);
        let g = check(&gcra, now, 1);
        if g.allowed {
            gcra_admitted.push(now);
        }
        fixed_rows.push((now, f));
        if n <= 2 || n >= 299 {
            // Both limits are 300, so the `limit` column is left out.
            let mut cells = vec![clock(now), n.to_string()];
            cells.extend(outcome_cells(&f));
            cells.extend(outcome_cells(&g));
            table.cells(cells);
        } else if n == 3 {
            table.note("#3 to #298 at 16:25:00.000: all admitted by both");
        }
    }
    table.print();

    for (i, (now, f)) in fixed_rows.iter().enumerate() {
        assert_eq!(
            f.allowed,
            i < 300 || *now >= at(16, 30, 0),
            "fixed at #{}",
            i + 1
        );
        if !f.allowed {
            // Uphold: Retry-After and X-RateLimit-Reset both name the window's end.
            assert_eq!(now + f.retry_after, at(16, 30, 0));
            assert_eq!(f.reset_after, f.retry_after);
        }
    }
    let (_, at_16_28_35) = fixed_rows[fixed_rows.len() - 2];
    assert_eq!(
        at_16_28_35.retry_after,
        85 * SECOND,
        "the seed's Retry-After: 85"
    );
    let (_, next_window) = fixed_rows[fixed_rows.len() - 1];
    assert_eq!(next_window.remaining, 299);
    assert_eq!(next_window.reset_after, 5 * MINUTE);
    // GCRA: a burst of 300, then one per emission interval (1 s), never faster.
    let first = gcra_admitted[0];
    for (k, &t) in gcra_admitted.iter().enumerate() {
        // The n-th admission comes at least n - 300 seconds after the first.
        let n = k as u64 + 1;
        assert!(n <= 300 + (t - first) / SECOND, "GCRA ran ahead at #{n}");
    }
    println!(
        "would answer 16:28:35: 429, X-RateLimit-Remaining: 0, Retry-After: {} (the window \
         ends 16:30:00; Uphold's example says 85)",
        retry_after_header(&at_16_28_35)
    );
    println!(
        "checked: fixed window admits 300 per aligned 5-min window, every denial's \
         retry_after = reset_after = time to the window's end (85 s at 16:28:35); GCRA \
         never exceeds 300 + 1 per elapsed second."
    );
}

// ---------------------------------------------------------------------------------------
// The four algorithms side by side
// ---------------------------------------------------------------------------------------

/// One trace, four algorithms: a burst at the end of a minute, then one request every 5 s.
fn comparison() {
    section(
        "All four algorithms, 10 requests per minute",
        "one trace (12 at 09:00:50, then one every 5 s), four different promises",
    );
    let quota = Quota::per_minute(10).expect("valid quota");
    let algorithms = [
        ("GCRA", Algorithm::Gcra),
        ("fixed", Algorithm::FixedWindow),
        ("approx", Algorithm::SlidingWindow),
        ("strict", Algorithm::SlidingWindowStrict { sub_windows: 6 }),
    ];
    let limiters: Vec<Limiter> = algorithms
        .iter()
        .map(|&(_, algorithm)| Limiter::new(algorithm, quota).expect("valid limiter"))
        .collect();
    println!(
        "cells: 'ok r=N' = admitted with N remaining; 'DENY t' = denied, retry_after t. \
         strict uses 6 sub-windows of 10 s."
    );

    let mut trace = vec![at(9, 0, 50); 12];
    let mut t = at(9, 0, 55);
    while t <= at(9, 2, 0) {
        trace.push(t);
        t += 5 * SECOND;
    }

    let mut columns = vec![("time", Align::Left), ("#", Align::Right)];
    columns.extend(algorithms.iter().map(|&(name, _)| (name, Align::Left)));
    let mut table = Table::new(&columns);
    let mut admitted: Vec<Vec<u64>> = vec![Vec::new(); limiters.len()];
    let mut verdicts: Vec<Vec<bool>> = vec![Vec::new(); limiters.len()];
    for (i, &now) in trace.iter().enumerate() {
        let mut cells = vec![clock(now), (i + 1).to_string()];
        for (k, limiter) in limiters.iter().enumerate() {
            let d = check(limiter, now, 1);
            if d.allowed {
                admitted[k].push(now);
                cells.push(format!("ok r={}", d.remaining));
            } else {
                cells.push(format!("DENY {}", human(d.retry_after)));
            }
            verdicts[k].push(d.allowed);
        }
        table.cells(cells);
    }
    table.note("");
    let mut totals = vec![String::from("admitted"), String::new()];
    let mut most = vec![String::from("most in any 60 s"), String::new()];
    let mut peaks = Vec::new();
    for times in &admitted {
        let peak = most_in_any_interval(times, MINUTE);
        totals.push(times.len().to_string());
        most.push(peak.to_string());
        peaks.push(peak);
    }
    table.cells(totals);
    table.cells(most);
    table.print();

    let [gcra, fixed, approx, strict] = [peaks[0], peaks[1], peaks[2], peaks[3]];
    assert!(
        strict <= 10,
        "strict must never exceed the limit in any period"
    );
    assert!(gcra <= 20, "GCRA: at most burst + one period's worth");
    assert!(
        fixed > 10,
        "fixed windows reset at the boundary: two bursts back to back"
    );
    assert!(
        approx > 10,
        "the two-window estimate assumes evenly spread traffic"
    );
    for a in 0..verdicts.len() {
        for b in a + 1..verdicts.len() {
            assert_ne!(
                verdicts[a], verdicts[b],
                "{} and {} should decide differently on this trace",
                algorithms[a].0, algorithms[b].0
            );
        }
    }
    println!(
        "checked: strict never admits more than 10 in any 60 s; fixed ({fixed}) and approx \
         ({approx}) exceed that around the minute boundary, as their semantics allow; GCRA \
         ({gcra}) paces at one per 6 s after its burst; all four decide differently."
    );
}

// ---------------------------------------------------------------------------------------
// Checking helpers
// ---------------------------------------------------------------------------------------

/// A check of `cost` at `now` that must succeed, with its `retry_after` verified.
fn check<L: RateLimiter + ?Sized>(limiter: &L, now: u64, cost: u64) -> Decision {
    let d = limiter.check(now, cost).expect("cost fits the quota");
    verify_retry_after(limiter, now, cost, &d);
    d
}

/// A denial's `retry_after` must be exact: one nanosecond earlier the same request is still
/// denied, at `now + retry_after` it is admitted (peeks consume nothing, and limiters record
/// no time from them, so looking ahead does not disturb the replay).
fn verify_retry_after<L: RateLimiter + ?Sized>(limiter: &L, now: u64, cost: u64, d: &Decision) {
    if d.allowed {
        assert_eq!(d.retry_after, 0, "an admission has retry_after 0");
        return;
    }
    assert!(
        d.retry_after > 0,
        "a denial at {} has retry_after > 0",
        clock(now)
    );
    if d.retry_after == NEVER {
        return;
    }
    let moment = now + d.retry_after;
    let then = limiter.peek(moment, cost).expect("cost fits");
    assert!(
        then.allowed,
        "denied at {}: must be admitted after retry_after {}",
        clock(now),
        human(d.retry_after)
    );
    let just_before = limiter.peek(moment - 1, cost).expect("cost fits");
    assert!(
        !just_before.allowed,
        "denied at {}: retry_after {} must be the earliest moment",
        clock(now),
        human(d.retry_after)
    );
}

/// The most admissions in any half-open interval `[t, t + length)`; `times` ascending.
fn most_in_any_interval(times: &[u64], length: u64) -> usize {
    let mut most = 0;
    let mut start = 0;
    for (end, &t) in times.iter().enumerate() {
        while t - times[start] >= length {
            start += 1;
        }
        most = most.max(end + 1 - start);
    }
    most
}

/// The most admissions in one aligned window `[w·length, (w+1)·length)`; `times` ascending.
fn most_in_aligned_windows(times: &[u64], length: u64) -> usize {
    let mut most = 0;
    let mut run = 0;
    let mut window = None;
    for &t in times {
        if window == Some(t / length) {
            run += 1;
        } else {
            window = Some(t / length);
            run = 1;
        }
        most = most.max(run);
    }
    most
}

/// `Retry-After` in delta-seconds, rounded up: never tell a client to come back too early.
fn retry_after_header(d: &Decision) -> u64 {
    d.retry_after.div_ceil(SECOND)
}

// ---------------------------------------------------------------------------------------
// Printing helpers
// ---------------------------------------------------------------------------------------

/// A placeholder for [`Composite::check_each`]'s output slots.
const EMPTY: Decision = Decision {
    allowed: false,
    limit: 0,
    remaining: 0,
    reset_after: 0,
    retry_after: 0,
};

fn section(title: &str, promise: &str) {
    println!();
    println!("=== {title}: {promise} ===");
}

/// `HH:MM:SS.mmm` of the simulated day (more digits when `t` is not whole milliseconds).
fn clock(t: u64) -> String {
    let (h, m, s) = (t / HOUR, t % HOUR / MINUTE, t % MINUTE / SECOND);
    let sub = t % SECOND;
    if sub % MS == 0 {
        format!("{h:02}:{m:02}:{s:02}.{:03}", sub / MS)
    } else {
        format!("{h:02}:{m:02}:{s:02}.{sub:09}")
    }
}

/// A duration in human units: `500 ms`, `41 s`, `1.5 s`, `29m 00s`, `1h 00m 00s`.
fn human(d: u64) -> String {
    if d == NEVER {
        return String::from("never");
    }
    if d < SECOND {
        return if d % MS == 0 {
            format!("{} ms", d / MS)
        } else if d % 1_000 == 0 {
            format!("{} us", d / 1_000)
        } else {
            format!("{d} ns")
        };
    }
    let (h, m, s) = (d / HOUR, d % HOUR / MINUTE, d % MINUTE / SECOND);
    let sub = d % SECOND;
    let fraction = if sub == 0 {
        String::new()
    } else {
        let digits = format!("{sub:09}");
        format!(".{}", digits.trim_end_matches('0'))
    };
    if h > 0 {
        format!("{h}h {m:02}m {s:02}{fraction}s")
    } else if m > 0 {
        format!("{m}m {s:02}{fraction}s")
    } else {
        format!("{s}{fraction} s")
    }
}

/// The standard row of a decision table.
fn decision_cells(now: u64, n: u64, d: &Decision) -> Vec<String> {
    let [verdict, remaining, reset_after, retry_after] = outcome_cells(d);
    vec![
        clock(now),
        n.to_string(),
        verdict,
        d.limit.to_string(),
        remaining,
        reset_after,
        retry_after,
    ]
}

/// Verdict, remaining, reset_after and retry_after of a decision.
fn outcome_cells(d: &Decision) -> [String; 4] {
    [
        String::from(if d.allowed { "allowed" } else { "DENIED" }),
        d.remaining.to_string(),
        human(d.reset_after),
        if d.allowed {
            String::from("-")
        } else {
            human(d.retry_after)
        },
    ]
}

/// A table of single decisions with the standard columns.
struct DecisionTable(Table);

impl DecisionTable {
    fn new() -> Self {
        Self(Table::new(&[
            ("time", Align::Left),
            ("#", Align::Right),
            ("verdict", Align::Left),
            ("limit", Align::Right),
            ("remaining", Align::Right),
            ("reset_after", Align::Right),
            ("retry_after", Align::Right),
        ]))
    }

    fn row(&mut self, now: u64, n: u64, d: &Decision) {
        self.0.cells(decision_cells(now, n, d));
    }

    fn note(&mut self, text: &str) {
        self.0.note(text);
    }

    fn print(&self) {
        self.0.print();
    }
}

#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}

enum Row {
    Cells(Vec<String>),
    Note(String),
}

/// A plain-text table whose columns are as wide as their widest cell.
struct Table {
    headers: Vec<(String, Align)>,
    rows: Vec<Row>,
}

impl Table {
    fn new(headers: &[(&str, Align)]) -> Self {
        Self {
            headers: headers
                .iter()
                .map(|&(name, align)| (name.to_string(), align))
                .collect(),
            rows: Vec::new(),
        }
    }

    fn cells(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.headers.len());
        self.rows.push(Row::Cells(cells));
    }

    fn note(&mut self, text: &str) {
        self.rows.push(Row::Note(text.to_string()));
    }

    fn print(&self) {
        let mut widths: Vec<usize> = self.headers.iter().map(|(h, _)| h.len()).collect();
        for row in &self.rows {
            if let Row::Cells(cells) = row {
                for (width, cell) in widths.iter_mut().zip(cells) {
                    *width = (*width).max(cell.chars().count());
                }
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::from(" ");
            for ((cell, (_, align)), &width) in cells.iter().zip(&self.headers).zip(&widths) {
                let padded = match align {
                    Align::Left => format!(" {cell:<width$}"),
                    Align::Right => format!(" {cell:>width$}"),
                };
                out.push_str(&padded);
                out.push_str(" |");
            }
            out.pop();
            println!("{}", out.trim_end());
        };
        let headers: Vec<String> = self.headers.iter().map(|(h, _)| h.clone()).collect();
        line(&headers);
        let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
        line(&rule);
        for row in &self.rows {
            match row {
                Row::Cells(cells) => line(cells),
                Row::Note(text) if text.is_empty() => line(&rule),
                Row::Note(text) => println!("   ... {text}"),
            }
        }
    }
}
