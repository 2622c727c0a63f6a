//! The policy layer on Redis: the three seed policies, built with `Policy::with_redis`,
//! answer every request of a replay exactly as the in-process policy does — decisions,
//! per-limit states, headers and bodies byte for byte.
//!
//! Needs a real redis-server (`tests/redis/run.sh`); skips with a notice without
//! `RATECORE_REDIS_URL`.
#![cfg(feature = "redis")]

#[path = "redis/common.rs"]
mod common;

use ratecore::policy::{Policy, PolicyDecision, PolicySpec, Request};

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
    l.allowed()
}

#[test]
fn switch_on_redis_matches_in_process() {
    let Some((local, remote)) = both("switch", "policy_switch") else {
        return;
    };
    let mut denied = 0;
    for i in 0..40u64 {
        let request = Request {
            method: if i % 5 == 4 { "GET" } else { "POST" },
            path: if i % 5 == 4 {
                "/api/meters"
            } else {
                "/api/readings"
            },
            client: Some(if i % 7 == 0 { b"client-b" } else { b"client-a" }),
            ..Request::default()
        };
        if !compare(&local, &remote, &request, 3600 * SECOND + i * 300_000_000) {
            denied += 1;
        }
    }
    assert!(denied > 0, "the replay reaches the limits");
}

#[test]
fn uphold_on_redis_matches_in_process() {
    let Some((local, remote)) = both("uphold", "policy_uphold") else {
        return;
    };
    let ips: [&[u8]; 3] = [b"198.51.100.1", b"198.51.100.2", b"198.51.100.3"];
    let users: [&[u8]; 2] = [b"foo@bar.com", b"baz@bar.com"];
    let mut denied = 0;
    for i in 0..60u64 {
        let request = Request {
            method: "POST",
            path: "/password/forgot",
            client_ip: Some(ips[(i % 3) as usize]),
            user: Some(users[(i / 7 % 2) as usize]),
            ..Request::default()
        };
        if !compare(&local, &remote, &request, 1200 * SECOND + i * 7 * SECOND) {
            denied += 1;
        }
    }
    assert!(denied > 0, "the replay reaches the limits");
}

#[test]
fn evenergy_on_redis_matches_in_process() {
    let Some((local, remote)) = both("evenergy", "policy_evenergy") else {
        return;
    };
    let request = Request {
        method: "GET",
        path: "/v2/users/",
        app: Some(b"app-1"),
        user: Some(b"alice"),
        ..Request::default()
    };
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
}
