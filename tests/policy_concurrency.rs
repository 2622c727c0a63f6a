//! A policy shared by threads: ev.energy's client-credentials clients share one limit per
//! application, so however many threads send an app's requests, exactly 1000 are
//! admitted in the rolling hour — and the limit's counters account for every request.

use std::sync::Barrier;
use std::thread;

use ratecore::policy::{Attribute, Policy, Request};

const SECOND: u64 = 1_000_000_000;
const HOUR: u64 = 3600 * SECOND;

fn evenergy() -> Policy {
    Policy::from_toml_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/policies/evenergy.toml"
    ))
    .unwrap()
}

/// `threads` threads each send `attempts` client-credentials requests of app `acme`,
/// spread over the first 59 minutes (every request inside one rolling hour), each
/// thread naming a different user (client-credentials requests share the app's limit
/// whatever else they carry). Returns how many were admitted.
fn hammer(policy: &Policy, threads: usize, attempts: u64) -> u64 {
    let barrier = Barrier::new(threads);
    thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let user = format!("user-{t}");
                    let attributes = [
                        Attribute::new("auth", b"client_credentials"),
                        Attribute::new("app", b"acme"),
                        Attribute::new("user", user.as_bytes()),
                    ];
                    let request = Request::new("GET", "/v2/users/", &attributes);
                    barrier.wait();
                    (0..attempts)
                        .filter(|i| {
                            let now = 1 + i * (59 * 60 * SECOND) / attempts;
                            policy.check(&request, now, 1).unwrap().allowed()
                        })
                        .count() as u64
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

#[test]
fn client_credentials_app_admits_exactly_1000_across_8_threads() {
    let policy = evenergy();
    let admitted = hammer(&policy, 8, 250);
    assert_eq!(admitted, 1000);

    // One more request within the rolling hour, from any thread: denied, with the
    // app's limit named as the decider.
    let attributes = [
        Attribute::new("auth", b"client_credentials"),
        Attribute::new("app", b"acme"),
    ];
    let request = Request::new("GET", "/v2/users/", &attributes);
    let denied = policy.check(&request, HOUR - 1, 1).unwrap();
    assert!(!denied.allowed());
    let deciding = denied.deciding().unwrap();
    assert_eq!(
        (deciding.rule, deciding.name),
        ("client-credentials", "per-app")
    );

    // Every request is accounted for exactly once.
    let (limit, metrics) = policy.metrics().find(|(l, _)| l.name == "per-app").unwrap();
    assert_eq!(limit.rule, "client-credentials");
    assert_eq!(metrics.allowed, 1000);
    assert_eq!(metrics.denied, 8 * 250 - 1000 + 1);
    assert_eq!(metrics.checked(), 8 * 250 + 1);
    let (_, user_limit) = policy
        .metrics()
        .find(|(l, _)| l.name == "per-app-user")
        .unwrap();
    assert_eq!(
        user_limit.checked(),
        0,
        "authorization-code limit untouched"
    );

    // Another app has its own limit.
    let other = [
        Attribute::new("auth", b"client_credentials"),
        Attribute::new("app", b"other"),
    ];
    let request = Request::new("GET", "/v2/users/", &other);
    assert!(policy.check(&request, HOUR - 1, 1).unwrap().allowed());
}
