//! The policy layer on Redis: the three seed policies, built with `Policy::with_redis`,
//! answer every request of a replay exactly as the in-process policy does — decisions,
//! per-limit states, headers and bodies byte for byte.
//!
//! Needs a real redis-server (`tests/redis/run.sh`); skips with a notice without
//! `RATECORE_REDIS_URL`.
#![cfg(feature = "redis")]

#[path = "redis/common.rs"]
mod common;
// Only the HTTP exchanges are replayed here.
#[allow(dead_code)]
#[path = "../examples/seed_policies/scenarios.rs"]
mod scenarios;
#[path = "support/seed_replay.rs"]
mod seed_replay;

use ratecore::policy::{Attribute, Policy, PolicyDecision, PolicySpec, Request};

const SECOND: u64 = 1_000_000_000;
const WALL: u64 = 1_795_518_000 * SECOND;

fn both(name: &str, test: &str) -> Option<(Policy, Policy)> {
    let url = common::redis_url(test)?;
    let path = format!("examples/policies/{name}.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let local = Policy::from_toml_str(&text, &path).unwrap();
    let spec = PolicySpec::from_toml_str(&text, &path).unwrap();
    let remote = Policy::with_redis(spec, common::backend(&url, test)).unwrap();
    Some((local, remote))
}

fn rendered(d: &PolicyDecision<'_>, now: u64) -> (String, String) {
    let mut headers = [0u8; 1024];
    let mut body = [0u8; 1024];
    let h = d.render_headers(WALL + now, &mut headers).unwrap();
    let b = if d.allowed() {
        0
    } else {
        d.render_body(&mut body).unwrap()
    };
    (
        String::from_utf8_lossy(&headers[..h]).into_owned(),
        String::from_utf8_lossy(&body[..b]).into_owned(),
    )
}

fn compare(local: &Policy, remote: &Policy, request: &Request<'_>, now: u64) -> bool {
    let l = local.check(request, now, 1).unwrap();
    let r = remote.check(request, now, 1).unwrap();
    assert_eq!(r.fault(), None, "Redis decided");
    assert_eq!(l.decision(), r.decision(), "{request:?} at {now}");
    assert_eq!(
        l.entries().collect::<Vec<_>>(),
        r.entries().collect::<Vec<_>>()
    );
    assert_eq!(rendered(&l, now), rendered(&r, now));
    assert_eq!(l.exempted_by(), r.exempted_by());
    assert_eq!(l.denied_for_missing_key(), r.denied_for_missing_key());
    l.allowed()
}

/// Sends `n` requests (`send(i)` builds the `i`-th and [`compare`]s it) and asserts that
/// some were denied: the replay reaches the limits.
fn assert_replay_reaches_limits(n: u64, send: impl Fn(u64) -> bool) {
    let denied = (0..n).filter(|&i| !send(i)).count();
    assert!(denied > 0, "the replay reaches the limits");
}

#[test]
fn switch_on_redis_matches_in_process() {
    let Some((local, remote)) = both("switch", "policy_switch") else {
        return;
    };
    assert_replay_reaches_limits(40, |i| {
        // Client-credentials applications; every eleventh request uses a personal
        // token instead (unlimited, no Redis call).
        let auth: &[u8] = if i % 11 == 10 {
            b"personal_token"
        } else {
            b"client_credentials"
        };
        let client: &[u8] = if i % 7 == 0 { b"client-b" } else { b"client-a" };
        let attributes = [
            Attribute::new("auth", auth),
            Attribute::new("client", client),
        ];
        let request = Request::new(
            if i % 5 == 4 { "GET" } else { "POST" },
            if i % 5 == 4 {
                "/api/meters"
            } else {
                "/api/readings"
            },
            &attributes,
        );
        compare(&local, &remote, &request, 3600 * SECOND + i * 300_000_000)
    });
}

#[test]
fn uphold_on_redis_matches_in_process() {
    let Some((local, remote)) = both("uphold", "policy_uphold") else {
        return;
    };
    let ips: [&[u8]; 3] = [b"198.51.100.1", b"198.51.100.2", b"198.51.100.3"];
    let users: [&[u8]; 2] = [b"foo@bar.com", b"baz@bar.com"];
    assert_replay_reaches_limits(60, |i| {
        // Every thirteenth request lacks its IP (refused: on_missing = "deny"), every
        // fifth its account (the per-account limit is skipped).
        let mut attributes = Vec::new();
        if i % 13 != 12 {
            attributes.push(Attribute::new("client_ip", ips[(i % 3) as usize]));
        }
        if i % 5 != 4 {
            attributes.push(Attribute::new("user", users[(i / 7 % 2) as usize]));
        }
        let request = Request::new("POST", "/password/forgot", &attributes);
        compare(&local, &remote, &request, 1200 * SECOND + i * 7 * SECOND)
    });
}

#[test]
fn evenergy_on_redis_matches_in_process() {
    let Some((local, remote)) = both("evenergy", "policy_evenergy") else {
        return;
    };
    let alice = [
        Attribute::new("auth", b"authorization_code"),
        Attribute::new("app", b"app-1"),
        Attribute::new("user", b"alice"),
    ];
    let request = Request::new("GET", "/v2/users/", &alice);
    let t0 = 59 * 60 * SECOND;
    for _ in 0..1000 {
        assert!(compare(&local, &remote, &request, t0));
    }
    assert!(!compare(
        &local,
        &remote,
        &request,
        t0 + 3600 * SECOND - 42 * SECOND
    ));
    assert!(compare(&local, &remote, &request, t0 + 3600 * SECOND));
    // A client-credentials application: one limit for the app, whatever user its
    // requests name.
    let users: [Option<&[u8]>; 3] = [None, Some(b"alice"), Some(b"bob")];
    let t1 = t0 + 2 * 3600 * SECOND;
    for i in 0..1001usize {
        let mut attributes = vec![
            Attribute::new("auth", b"client_credentials"),
            Attribute::new("app", b"app-2"),
        ];
        if let Some(user) = users[i % 3] {
            attributes.push(Attribute::new("user", user));
        }
        let request = Request::new("GET", "/v2/users/", &attributes);
        assert_eq!(
            compare(&local, &remote, &request, t1),
            i < 1000,
            "request {i}"
        );
    }
}

/// Overrides and reloads on Redis: a raised key keeps what it consumed (the override runs
/// on the limit's own Redis key), exactly as in process; a reload keeps using the same
/// backend and keys.
#[test]
fn overrides_and_reloads_on_redis_match_in_process() {
    use ratecore::policy::{Attribute, OverrideQuota};
    let Some(url) = common::redis_url("policy_overrides") else {
        return;
    };
    for algorithm in [
        "fixed_window",
        "sliding_window",
        "sliding_window_strict",
        "gcra",
    ] {
        let text = format!(
            "[[rule]]\nname = \"api\"\n[[rule.limit]]\nname = \"per-app\"\nkey = [\"app\"]\non_missing = \"deny\"\nalgorithm = \"{algorithm}\"\nlimit = 100\nperiod = \"1h\"\n[[rule.limit.override]]\nattribute = \"tier\"\nvalue = \"gold\"\nunlimited = true\n"
        );
        let local = Policy::from_toml_str(&text, "t.toml").unwrap();
        let spec = PolicySpec::from_toml_str(&text, "t.toml").unwrap();
        let remote = Policy::with_redis(spec, common::backend(&url, "policy_overrides")).unwrap();
        let acme = [Attribute::new("app", b"acme")];
        let request = Request::new("GET", "/", &acme);
        let start = 1_700_000_000 * SECOND;
        for i in 0..90 {
            assert!(compare(&local, &remote, &request, start + i));
        }
        let raised = OverrideQuota::Limit {
            limit: 500,
            burst: None,
        };
        for policy in [&local, &remote] {
            policy
                .set_override("api", "per-app", "app", b"acme", raised)
                .unwrap();
        }
        let mut admitted = 0;
        for i in 0..500 {
            admitted += usize::from(compare(&local, &remote, &request, start + 100 + i));
        }
        let expected = if algorithm == "gcra" { 50 } else { 410 };
        assert_eq!(admitted, expected, "{algorithm}");
        // Unlimited by tier, on both.
        let gold = [
            Attribute::new("app", b"acme"),
            Attribute::new("tier", b"gold"),
        ];
        let d = remote
            .check(&Request::new("GET", "/", &gold), start + 700, 1)
            .unwrap();
        assert!(d.allowed() && !d.limited());
        // A reload with the same limit keeps the state (on Redis, the same keys).
        for policy in [&local, &remote] {
            let report = policy.reload_toml_str(&text, "t.toml").unwrap();
            assert_eq!(
                (report.kept, report.overrides_dropped),
                (1, 1),
                "{algorithm}"
            );
        }
        assert!(
            !compare(&local, &remote, &request, start + 800),
            "{algorithm}"
        );
    }
}

/// A cost some shadow limit can never fit: that limit is denied with `retry_after =
/// NEVER`, the shadow limit the cost fits reports its unchanged state, the real answer is
/// untouched, and nothing shadow is charged — on Redis exactly as in process.
#[test]
fn shadow_cost_that_never_fits_on_redis_matches_in_process() {
    let Some(url) = common::redis_url("policy_shadow_cost") else {
        return;
    };
    let text = "[[rule]]\nname = \"real\"\n[[rule.limit]]\nname = \"big\"\nkey = [\"ip\"]\non_missing = \"deny\"\nalgorithm = \"fixed_window\"\nlimit = 100\nperiod = \"1m\"\n\n[[rule]]\nname = \"trial\"\nshadow = true\n[[rule.limit]]\nname = \"small\"\nkey = [\"ip\"]\non_missing = \"deny\"\nalgorithm = \"gcra\"\nlimit = 3\nperiod = \"1m\"\n[[rule.limit]]\nname = \"wide\"\nkey = [\"ip\"]\non_missing = \"deny\"\nalgorithm = \"sliding_window\"\nlimit = 50\nperiod = \"1m\"\n";
    let local = Policy::from_toml_str(text, "t.toml").unwrap();
    let spec = PolicySpec::from_toml_str(text, "t.toml").unwrap();
    let remote = Policy::with_redis(spec, common::backend(&url, "policy_shadow_cost")).unwrap();
    let ip = [Attribute::new("ip", b"198.51.100.9")];
    let request = Request::new("GET", "/", &ip);
    let start = 1_700_000_000 * SECOND;
    for policy in [&local, &remote] {
        let d = policy.check(&request, start, 10).unwrap();
        assert!(d.allowed(), "a shadow limit never changes the real answer");
        assert_eq!(d.decision().remaining, 90);
        let shadow: Vec<_> = d.shadow_entries().map(|(l, s)| (l.name, s)).collect();
        assert_eq!(shadow.len(), 2);
        let (name, small) = shadow[0];
        assert_eq!(name, "small");
        assert!(!small.allowed);
        assert_eq!(small.retry_after, ratecore::NEVER);
        assert_eq!(small.limit, 3, "the limit's own fields, not a placeholder");
        let (name, wide) = shadow[1];
        assert_eq!(name, "wide");
        assert!(wide.allowed, "the cost fits it: its unchanged state");
        assert_eq!(wide.remaining, 50, "nothing charged");
        assert_eq!(d.shadow_denied().map(|(l, _)| l.name), Some("small"));
    }
    // The same per-limit states on both, request after request.
    for i in 1..5 {
        let l = local.check(&request, start + i, 10).unwrap();
        let r = remote.check(&request, start + i, 10).unwrap();
        assert_eq!(l.decision(), r.decision());
        assert_eq!(
            l.shadow_entries().collect::<Vec<_>>(),
            r.shadow_entries().collect::<Vec<_>>()
        );
    }
}

/// The demo's HTTP exchanges on Redis (what `seed_policies --redis URL` replays): every
/// verdict is the seed's, and a denial's `Retry-After` is never early.
#[test]
fn the_demo_http_exchanges_on_redis_get_the_seed_verdicts() {
    let Some(url) = common::redis_url("policy_demo") else {
        return;
    };
    seed_replay::assert_seed_exchanges(|file| {
        let text = std::fs::read_to_string(file).expect("seed policy readable");
        let spec = PolicySpec::from_toml_str(&text, file).expect("seed policy parses");
        Policy::with_redis(spec, common::backend(&url, "policy_demo")).expect("builds")
    });
}
