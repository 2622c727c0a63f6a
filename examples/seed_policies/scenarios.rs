//! The seed scenarios: the limiters, the request traces and the HTTP exchanges the demo
//! replays. Shared by the demo, which tells the story, and by `tests/seed_demo.rs`, which
//! asserts each seed's promise on exactly these scenarios.

use ratecore::policy::{Attribute, Request};
use ratecore::{
    Algorithm, Composite, FixedWindow, Gcra, Limiter, Quota, RateLimiter, SlidingWindowStrict,
};

pub const NS: u64 = 1;
pub const MS: u64 = 1_000_000 * NS;
pub const SECOND: u64 = 1_000 * MS;
pub const MINUTE: u64 = 60 * SECOND;
pub const HOUR: u64 = 60 * MINUTE;

/// `hh:mm:ss` of the simulated day, in nanoseconds since its midnight.
pub const fn at(hours: u64, minutes: u64, seconds: u64) -> u64 {
    hours * HOUR + minutes * MINUTE + seconds * SECOND
}

/// The folder of the seed policy files.
pub const POLICY_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policies");

// ---------------------------------------------------------------------------------------
// ev.energy: 1000 requests per rolling hour, per OAuth application and user
// ---------------------------------------------------------------------------------------

/// ev.energy's limit for one key: a strict rolling hour of 60 one-minute sub-windows.
pub fn evenergy_limiter() -> impl RateLimiter {
    let quota = Quota::per_hour(1000).expect("valid quota");
    SlidingWindowStrict::new(quota, 60).expect("valid strict window")
}

/// The burst: 1000 requests at 11:59:00.
pub const EVENERGY_BURST_AT: u64 = at(11, 59, 0);
/// When the seed says the quota is back: one hour after the burst.
pub const EVENERGY_OPEN_AGAIN: u64 = at(12, 59, 0);
/// The requests after the burst: three before 12:59:00, two at it.
pub const EVENERGY_PROBES: [u64; 5] = [
    at(12, 0, 0),
    at(12, 30, 0),
    at(12, 58, 59),
    EVENERGY_OPEN_AGAIN,
    EVENERGY_OPEN_AGAIN,
];

// ---------------------------------------------------------------------------------------
// Switch: 5 requests per second and 20 per minute on POST /api/readings
// ---------------------------------------------------------------------------------------

/// Switch's two fixed windows, both applying.
pub fn switch_composite() -> Composite {
    let per_second = Quota::per_second(5).expect("valid quota");
    let per_minute = Quota::per_minute(20).expect("valid quota");
    Composite::new(vec![
        Limiter::new(Algorithm::FixedWindow, per_second).expect("valid limit"),
        Limiter::new(Algorithm::FixedWindow, per_minute).expect("valid limit"),
    ])
    .expect("valid composite")
}

/// A burst of six in one second, one a second until the minute is spent, one more in the
/// next minute.
pub fn switch_trace() -> Vec<u64> {
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
    trace
}

// ---------------------------------------------------------------------------------------
// Uphold: 300 requests per 5-minute window per IP
// ---------------------------------------------------------------------------------------

/// Uphold's global quota: 300 per 5 minutes.
pub fn uphold_quota() -> Quota {
    Quota::new(300, 5 * MINUTE).expect("valid quota")
}

/// Uphold's semantics (a fixed window) and, for contrast, GCRA on the same quota.
pub fn uphold_limiters() -> (FixedWindow, Gcra) {
    let quota = uphold_quota();
    (
        FixedWindow::new(quota).expect("valid fixed window"),
        Gcra::new(quota),
    )
}

/// 301 requests at 16:25:00, then four more up to the next window.
pub fn uphold_trace() -> Vec<u64> {
    let mut trace = vec![at(16, 25, 0); 301];
    trace.extend([at(16, 25, 1), at(16, 26, 40), at(16, 28, 35), at(16, 30, 0)]);
    trace
}

// ---------------------------------------------------------------------------------------
// The four algorithms side by side, 10 requests per minute
// ---------------------------------------------------------------------------------------

/// The algorithms compared, with their column names.
pub const COMPARED: [(&str, Algorithm); 4] = [
    ("GCRA", Algorithm::Gcra),
    ("fixed", Algorithm::FixedWindow),
    ("approx", Algorithm::SlidingWindowApprox),
    ("strict", Algorithm::SlidingWindowStrict { sub_windows: 6 }),
];

/// One limiter per compared algorithm, 10 per minute each.
pub fn compared_limiters() -> Vec<Limiter> {
    let quota = Quota::per_minute(10).expect("valid quota");
    COMPARED
        .iter()
        .map(|&(_, algorithm)| Limiter::new(algorithm, quota).expect("valid limiter"))
        .collect()
}

/// 12 requests at 09:00:50, then one every 5 s until 09:02:00.
pub fn comparison_trace() -> Vec<u64> {
    let mut trace = vec![at(9, 0, 50); 12];
    let mut t = at(9, 0, 55);
    while t <= at(9, 2, 0) {
        trace.push(t);
        t += 5 * SECOND;
    }
    trace
}

/// The most admissions in any half-open interval `[t, t + length)`; `times` ascending.
pub fn most_in_any_interval(times: &[u64], length: u64) -> usize {
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

// ---------------------------------------------------------------------------------------
// The full policies, from their TOML files, as HTTP exchanges
// ---------------------------------------------------------------------------------------

/// One simulated HTTP request, the verdict the seed promises for it, and the response a
/// client would see.
pub struct Exchange<'a> {
    pub now: u64,
    pub method: &'a str,
    pub path: &'a str,
    /// What the caller knows about the request: client IP, token kind, app, user…
    pub attributes: Vec<Attribute<'a>>,
    /// Whether the seed says it is admitted.
    pub admitted: bool,
    pub label: &'a str,
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

    pub fn request(&self) -> Request<'_> {
        Request::new(self.method, self.path, &self.attributes)
    }
}

/// The exchanges replayed through each policy file: (file in [`POLICY_DIR`], exchanges,
/// the indices the demo prints).
pub fn http_exchanges() -> Vec<(&'static str, Vec<Exchange<'static>>, Vec<usize>)> {
    let mut replays = Vec::new();
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
    replays.push((
        "evenergy.toml",
        evenergy,
        vec![0, 1000, 1001, n - 4, n - 3, n - 2, n - 1],
    ));

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
    replays.push(("uphold.toml", uphold, vec![0, 1, 2, 3, 4, 5, 6, 7]));

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
    replays.push((
        "switch.toml",
        switch,
        vec![0, 5, n - 4, n - 3, n - 2, n - 1],
    ));
    replays
}
