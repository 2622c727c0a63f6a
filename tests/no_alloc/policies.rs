//! Policy checks never allocate: `Policy::check` and `Policy::peek` — with attributes
//! (repeated names, names no rule reads), conditions of every kind, composite keys,
//! `on_missing` skip / shared / deny, shadow limits (denying, denying for a missing key,
//! a cost they can never fit), unlimited rules, admissions, denials and cost errors —
//! and rendering the decision's headers and 429 body into fixed buffers (and into ones
//! too small), on the three seed policies in `examples/policies/` and on one policy
//! built to exercise everything at once.
//!
//! Each measured run also records which paths it took (on the stack), and the test
//! asserts every path it claims was taken.

use std::hint::black_box;

use ratecore::http::HeaderStyle;
use ratecore::policy::{
    Attribute, Body, Condition, LimitRule, OnMissing, OverrideQuota, Policy, PolicyDecision,
    PolicySpec, Request, ResponseSpec, Route, Rule, Test,
};
use ratecore::{Algorithm, FullPolicy, Quota};

use crate::support::XorShift;
use crate::{assert_no_alloc, measure};

const SECOND: u64 = 1_000_000_000;
/// Wall-clock time for the headers that carry absolute resets.
const WALL: u64 = 1_795_518_000 * SECOND;

/// Which paths a measured run took: plain counters on the stack.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    checks: u64,
    allowed: u64,
    denied: u64,
    denied_for_missing_key: u64,
    exempted: u64,
    unlimited: u64,
    shadow_denied: u64,
    errors: u64,
    bodies: u64,
    too_small: u64,
    /// Decisions read where they were made (`Policy::check_with`).
    read_in_place: u64,
}

impl Seen {
    /// Asserts that every one of `paths` (the fields' names, separated by spaces) was
    /// taken.
    fn assert_took(&self, paths: &str) {
        for path in paths.split_whitespace() {
            let count = match path {
                "allowed" => self.allowed,
                "denied" => self.denied,
                "denied_for_missing_key" => self.denied_for_missing_key,
                "exempted" => self.exempted,
                "unlimited" => self.unlimited,
                "shadow_denied" => self.shadow_denied,
                "errors" => self.errors,
                "bodies" => self.bodies,
                "too_small" => self.too_small,
                "read_in_place" => self.read_in_place,
                other => panic!("no path named {other}"),
            };
            assert!(count > 0, "{path} never taken: {self:?}");
        }
    }
}

/// Up to six attributes a request may carry: name and index into the value pool.
type AttributeSlots<'a> = [Attribute<'a>; 6];

/// What [`drive`] sends: `rounds` requests from the `seed`ed stream, times advancing by
/// up to `step`, methods and paths from `routes`, attributes named `names` with values
/// from `values`.
struct Traffic<'a> {
    seed: u64,
    rounds: u64,
    step: u64,
    routes: &'a [(&'a str, &'a str)],
    names: &'a [&'a str],
    values: &'a [Vec<u8>],
}

impl<'a> Traffic<'a> {
    /// 20,000 requests.
    fn new(
        seed: u64,
        step: u64,
        routes: &'a [(&'a str, &'a str)],
        names: &'a [&'a str],
        values: &'a [Vec<u8>],
    ) -> Self {
        Self {
            seed,
            rounds: 20_000,
            step,
            routes,
            names,
            values,
        }
    }
}

/// [`drive`] under [`assert_no_alloc`], named `what`; returns what it saw.
fn drive_without_alloc(what: &str, policy: &Policy, traffic: &Traffic<'_>) -> Seen {
    let mut seen = Seen::default();
    assert_no_alloc(what, || drive(policy, traffic, &mut seen));
    seen
}

/// Sends the `traffic` to `policy`: method, path and attributes drawn from its pools
/// (each attribute present or not, sometimes named twice), times mostly advancing and
/// sometimes frozen, costs 0 to 3, one in five a peek and one in five a check read where
/// it was made (`check_with`); every decision's headers and (on denial) body rendered
/// into fixed buffers, and now and then into buffers too small. Records what it saw in
/// `seen`; allocates nothing.
fn drive(policy: &Policy, traffic: &Traffic<'_>, seen: &mut Seen) {
    let Traffic {
        seed,
        rounds,
        step,
        routes,
        names,
        values,
    } = *traffic;
    let mut rng = XorShift(seed | 1);
    let mut now = SECOND;
    for _ in 0..rounds {
        if rng.index(4) != 0 {
            now += rng.next() % step;
        }
        let (method, path) = routes[rng.index(routes.len())];
        let mut slots: AttributeSlots<'_> = [Attribute::new("", b""); 6];
        let mut len = 0;
        for &name in names {
            if rng.index(5) != 0 {
                slots[len] = Attribute::new(name, &values[rng.index(values.len())]);
                len += 1;
            }
        }
        // Sometimes a name twice (the first counts) or an attribute no rule reads.
        if len > 0 && len < slots.len() && rng.index(6) == 0 {
            slots[len] = Attribute::new(slots[0].name, &values[rng.index(values.len())]);
            len += 1;
        }
        if len < slots.len() && rng.index(6) == 0 {
            slots[len] = Attribute::new("unread", b"x");
            len += 1;
        }
        let request = Request::new(method, path, &slots[..len]);
        let cost = [0, 1, 1, 1, 1, 2, 3][rng.index(7)];
        let short = rng.index(8) == 0;
        seen.checks += 1;
        let answer = match rng.index(5) {
            0 => policy
                .peek(&request, now, cost)
                .map(|decision| look(&decision, now, short, seen)),
            1 => policy.check_with(&request, now, cost, |decision| {
                seen.read_in_place += 1;
                look(decision, now, short, seen);
            }),
            _ => policy
                .check(&request, now, cost)
                .map(|decision| look(&decision, now, short, seen)),
        };
        if let Err(error) = answer {
            black_box(error);
            seen.errors += 1;
        }
    }
}

/// Reads everything `decision` offers into `seen` and fixed buffers, decided at `now`;
/// when `short`, renders into buffers too small as well.
fn look(decision: &PolicyDecision<'_>, now: u64, short: bool, seen: &mut Seen) {
    let mut headers = [0u8; 1024];
    let mut body = [0u8; 1024];
    let mut tiny = [0u8; 8];
    if decision.allowed() {
        seen.allowed += 1;
    } else {
        seen.denied += 1;
    }
    seen.denied_for_missing_key += u64::from(decision.denied_for_missing_key());
    seen.exempted += u64::from(decision.exempted_by().is_some());
    seen.unlimited += u64::from(!decision.limited());
    seen.shadow_denied += u64::from(decision.shadow_denied().is_some());
    black_box(decision.entries().count() + decision.shadow_entries().count());
    black_box(decision.deciding());
    black_box(decision.decision());
    let n = decision
        .render_headers(WALL + now, &mut headers)
        .expect("1 KiB holds every header block here");
    black_box(&headers[..n]);
    if !decision.allowed() {
        let n = decision
            .render_body(&mut body)
            .expect("1 KiB holds every body here");
        black_box(&body[..n]);
        black_box(decision.content_type());
        black_box(decision.denial_status());
        seen.bodies += 1;
    }
    if short {
        let headers_short = decision.render_headers(WALL + now, &mut tiny).is_err();
        let body_short = decision.render_body(&mut tiny).is_err();
        seen.too_small += u64::from(headers_short || body_short);
    }
}

/// Values for the attributes: a few distinct ones, so that keys repeat and fill up.
fn values(prefix: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{prefix}{i}").into_bytes())
        .collect()
}

/// [`values`], then `extra` (the values conditions name, some twice to weigh them).
fn values_and(prefix: &str, n: usize, extra: &[&str]) -> Vec<Vec<u8>> {
    let mut pool = values(prefix, n);
    pool.extend(extra.iter().map(|v| v.as_bytes().to_vec()));
    pool
}

fn seed_policy(name: &str) -> Policy {
    warmed(
        Policy::from_toml_file(format!(
            "{}/examples/policies/{name}.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
}

/// The first check a thread makes registers the thread with the lock-free pointer to the
/// policy's version in force: one allocation per thread, once in its life, never per
/// check. Made here, on the thread that measures, before it measures; the registration
/// itself is proven single by `registration_is_once_per_thread`.
fn warmed(policy: Policy) -> Policy {
    let _ = policy.peek(&Request::new("GET", "/", &[]), 0, 0);
    policy
}

#[test]
fn registration_is_once_per_thread() {
    let policy = Policy::from_toml_file(format!(
        "{}/examples/policies/uphold.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    std::thread::spawn(move || {
        let request = Request::new("GET", "/", &[]);
        let (_, first) = measure(|| policy.peek(&request, 0, 0).map(|d| d.allowed()));
        assert!(first <= 1, "the first check allocated {first} times");
        let (_, later) = measure(|| {
            for now in 0..1000 {
                black_box(policy.peek(&request, now, 1).map(|d| d.allowed()).ok());
            }
        });
        assert_eq!(later, 0);
    })
    .join()
    .unwrap();
}

#[test]
fn evenergy_checks_never_allocate() {
    let policy = seed_policy("evenergy");
    // The seed's own values, plus others no condition names.
    let grants = ["authorization_code", "client_credentials"];
    let pool = values_and("id-", 3, &[grants, grants].concat());
    let routes = [("GET", "/v2/users/"), ("POST", "/v2/chargers/1/commands")];
    let traffic = Traffic::new(1, SECOND, &routes, &["auth", "app", "user"], &pool);
    let seen = drive_without_alloc("evenergy checks", &policy, &traffic);
    seen.assert_took("allowed denied denied_for_missing_key unlimited bodies too_small");
    let view = policy.view();
    assert_no_alloc("evenergy metrics", || {
        black_box(view.metrics().map(|(_, m)| m.checked()).sum::<u64>())
    });
}

#[test]
fn switch_checks_never_allocate() {
    let policy = seed_policy("switch");
    let grants = ["personal_token", "client_credentials", "client_credentials"];
    let pool = values_and("client-", 2, &grants);
    let routes = [
        ("POST", "/api/readings"),
        ("POST", "/api/readings?source=meter"),
        ("GET", "/api/readings"),
        ("GET", "/api/devices"),
    ];
    let traffic = Traffic::new(2, SECOND / 20, &routes, &["auth", "client"], &pool);
    let seen = drive_without_alloc("switch checks", &policy, &traffic);
    seen.assert_took("allowed denied denied_for_missing_key exempted unlimited bodies");
}

#[test]
fn uphold_checks_never_allocate() {
    let policy = seed_policy("uphold");
    let pool = values("10.0.0.", 3);
    let routes = [
        ("POST", "/oauth2/token"),
        ("POST", "/password/forgot"),
        ("POST", "/users"),
        ("POST", "/cards/c1/transactions"),
        ("POST", "/cards/c1/transactions/t9/commit"),
        ("GET", "/me"),
    ];
    let traffic = Traffic::new(3, SECOND, &routes, &["client_ip", "user"], &pool);
    let seen = drive_without_alloc("uphold checks", &policy, &traffic);
    seen.assert_took("allowed denied denied_for_missing_key bodies");
}

fn limit(
    name: &str,
    key: &[&str],
    on_missing: OnMissing,
    algorithm: Algorithm,
    quota: Quota,
) -> LimitRule {
    LimitRule {
        name: name.to_string(),
        key: key.iter().map(|k| k.to_string()).collect(),
        on_missing,
        algorithm,
        quota,
        shadow: false,
        overrides: Vec::new(),
    }
}

/// `limit` as a shadow limit: measured and reported, never denying.
fn shadow(limit: LimitRule) -> LimitRule {
    LimitRule {
        shadow: true,
        ..limit
    }
}

fn condition(attribute: &str, test: Test) -> Condition {
    Condition {
        attribute: attribute.to_string(),
        test,
    }
}

fn rule(
    name: &str,
    route: Option<&str>,
    conditions: Vec<Condition>,
    limits: Vec<LimitRule>,
) -> Rule {
    Rule {
        name: name.to_string(),
        route: route.map(|r| Route::parse(r).unwrap()),
        conditions,
        description: Some(format!("The {name} API")),
        unlimited: limits.is_empty(),
        limits,
    }
}

/// Every feature at once: routes and conditions of the five kinds, unlimited rules,
/// empty and composite keys, the three `on_missing`, the four algorithms, four limits on
/// one key, shadow limits that deny, deny for a missing key, skip, and one whose capacity
/// a cost of 2 exceeds; a cost of 3 exceeds a real limit's (an error).
fn everything() -> Policy {
    let policy = everything_unwarmed();
    // Overrides on values the requests carry: raised, lowered, unlimited, by two
    // attributes (the lookup order), set at run time like an operator would.
    let to = |limit| OverrideQuota::Limit { limit, burst: None };
    for (attribute, value, quota) in [
        ("app", "v0", to(200)),
        ("app", "v1", to(2)),
        ("tier", "gold", OverrideQuota::Unlimited),
    ] {
        policy
            .set_override("global", "per-app", attribute, value.as_bytes(), quota)
            .unwrap();
    }
    warmed(policy)
}

fn everything_unwarmed() -> Policy {
    use OnMissing::{Deny, Shared, Skip};
    let per_second = |n| Quota::new(n, SECOND).unwrap();
    let (gcra, fixed, approx) = (
        Algorithm::Gcra,
        Algorithm::FixedWindow,
        Algorithm::SlidingWindowApprox,
    );
    let strict = Algorithm::SlidingWindowStrict { sub_windows: 4 };
    let set = |vs: &[&str]| vs.iter().map(|v| v.as_bytes().to_vec()).collect();
    let spec = PolicySpec {
        rules: vec![
            rule("health", Some("GET /health"), Vec::new(), Vec::new()),
            rule(
                "internal",
                None,
                vec![condition("tier", Test::Equals(b"internal".to_vec()))],
                Vec::new(),
            ),
            rule(
                "global",
                None,
                vec![condition("app", Test::Present)],
                vec![
                    limit(
                        "all",
                        &[],
                        Skip,
                        gcra,
                        per_second(50).with_burst(80).unwrap(),
                    ),
                    limit("per-app", &["app"], Deny, fixed, per_second(20)),
                    limit(
                        "per-app-user",
                        &["app", "user"],
                        Shared,
                        strict,
                        per_second(6),
                    ),
                    limit("per-user", &["user"], Skip, approx, per_second(4)),
                    shadow(limit(
                        "dry-app-user",
                        &["app", "user"],
                        Shared,
                        gcra,
                        per_second(3),
                    )),
                ],
            ),
            rule(
                "writes",
                Some("POST /items/:id"),
                vec![
                    condition("auth", Test::In(set(&["token", "session"]))),
                    condition("tier", Test::NotIn(set(&["gold", "internal"]))),
                ],
                vec![
                    // Four limits on one key: one table, one composite per key.
                    limit("w-gcra", &["user", "app"], Deny, gcra, per_second(5)),
                    limit("w-fixed", &["user", "app"], Deny, fixed, per_second(8)),
                    limit("w-approx", &["user", "app"], Deny, approx, per_second(9)),
                    limit("w-strict", &["user", "app"], Deny, strict, per_second(10)),
                ],
            ),
            rule(
                "anonymous",
                Some("ALL /items/*"),
                vec![condition("user", Test::Absent)],
                vec![
                    limit("per-ip", &["ip"], Deny, fixed, per_second(2)),
                    shadow(limit("dry-ip-tight", &["ip"], Shared, fixed, per_second(1))),
                    shadow(limit(
                        "dry-tenant",
                        &["tenant"],
                        Deny,
                        strict,
                        per_second(2),
                    )),
                    shadow(limit("dry-tier", &["tier"], Skip, gcra, per_second(2))),
                ],
            ),
        ],
        capacity: 1024,
        when_full: FullPolicy::EvictClosestToRest,
        response: ResponseSpec {
            headers: HeaderStyle::Ietf,
            body: Body::PlainText,
            status: 429,
        },
    };
    Policy::new(spec).unwrap()
}

#[test]
fn a_policy_using_everything_never_allocates() {
    let policy = everything();
    let pool = values_and("v", 3, &["token", "session", "gold", "internal", ""]);
    let routes = [
        ("GET", "/health"),
        ("POST", "/items/42"),
        ("post", "/items/42/"),
        ("GET", "/items"),
        ("DELETE", "/items/7/parts"),
        ("GET", "/other"),
    ];
    let names = ["auth", "app", "user", "tier", "ip", "tenant"];
    let traffic = Traffic {
        rounds: 40_000,
        ..Traffic::new(4, SECOND / 8, &routes, &names, &pool)
    };
    let seen = drive_without_alloc("checks on the everything policy", &policy, &traffic);
    seen.assert_took("allowed denied denied_for_missing_key exempted unlimited shadow_denied");
    seen.assert_took("errors bodies too_small read_in_place");
    // Every limit was reached, and the shadow and skip paths were counted.
    let counted = policy.metrics().all(|(_, m)| m.checked() > 0);
    assert!(counted, "{:?}", policy.metrics().collect::<Vec<_>>());
    assert!(policy.metrics().any(|(_, m)| m.shadow_denied > 0));
    assert!(policy.metrics().any(|(_, m)| m.skipped > 0));
    let mut out = [0u8; 16 * 1024];
    let view = policy.view();
    let n = assert_no_alloc("metrics rendering", || {
        black_box(view.metrics().map(|(_, m)| m.checked()).sum::<u64>());
        policy.render_metrics(&mut out).unwrap()
    });
    assert!(n > 0);
    let mut tiny = [0u8; 16];
    assert_no_alloc("metrics rendering into a small buffer", || {
        policy.render_metrics(&mut tiny).unwrap_err()
    });
}

/// A policy of one limit for every request, the shape `Policy::check` decides with one
/// table check: admissions, denials, shared missing keys, costs it can never fit, the
/// offender report and the counters.
#[test]
fn one_limit_checks_never_allocate() {
    let toml = "[table]\ncapacity = 64\n[[rule]]\nname = \"all\"\n[[rule.limit]]\n\
                name = \"per-ip\"\nkey = [\"client_ip\"]\non_missing = \"shared\"\n\
                algorithm = \"gcra\"\nlimit = 2\nperiod = \"1s\"\n";
    let policy = warmed(Policy::from_toml_str(toml, "inline").unwrap());
    let pool = values("10.0.0.", 3);
    let traffic = Traffic::new(4, SECOND / 4, &[("GET", "/")], &["client_ip"], &pool);
    let seen = drive_without_alloc("one-limit checks", &policy, &traffic);
    seen.assert_took("allowed denied errors bodies too_small read_in_place");
    assert!(!policy.offenders().0.is_empty(), "denials were recorded");
}

/// A shadow limit the cost can never fit answers without an error, and without
/// allocating; so does a real limit's cost error.
#[test]
fn impossible_costs_never_allocate() {
    let policy = everything();
    let anonymous = [Attribute::new("ip", b"10.1.1.1")];
    let request = Request::new("GET", "/items", &anonymous);
    let decision = assert_no_alloc("a cost only shadow limits cannot fit", || {
        policy.check(&request, SECOND, 2).unwrap()
    });
    assert!(decision.shadow_denied().is_some());
    let user = [
        Attribute::new("auth", b"token"),
        Attribute::new("user", b"u"),
        Attribute::new("app", b"a"),
    ];
    let request = Request::new("POST", "/items/1", &user);
    let error = assert_no_alloc("a cost no real limit can fit", || {
        policy.check(&request, SECOND, 1_000).unwrap_err()
    });
    black_box(error);
}

/// The policy of tests/policy_semantics.rs (a global limit, two limits on one route, an
/// unlimited route): checks, headers and bodies over allowed, denied and exempt requests.
#[test]
fn semantics_policy_checks_never_allocate() {
    let policy = warmed(
        Policy::from_toml_str(include_str!("../support/semantics_policy.toml"), "inline").unwrap(),
    );
    let mut headers = [0u8; 512];
    let mut body = [0u8; 512];
    let users = values("user", 64);
    let ips = values("10.0.0.", 64);
    let mut denied = 0;
    assert_no_alloc("the semantics policy's checks", || {
        for i in 0..10_000u64 {
            let attributes = [
                Attribute::new("client_ip", &ips[(i % 64) as usize]),
                Attribute::new("user", &users[(i % 7) as usize]),
            ];
            let request = Request::new(
                if i % 3 == 0 { "POST" } else { "GET" },
                if i % 3 == 0 { "/login" } else { "/health" },
                &attributes,
            );
            let d = policy.check(&request, i * SECOND / 10, 1).unwrap();
            let _ = d.render_headers(i, &mut headers);
            if !d.allowed() {
                denied += 1;
                let _ = d.render_body(&mut body);
            }
        }
    });
    assert!(denied > 0, "the loop reached the denial path");
}
