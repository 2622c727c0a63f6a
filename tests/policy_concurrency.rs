//! A policy shared by threads: ev.energy's client-credentials clients share one limit per
//! application, so however many threads send an app's requests, exactly 1000 are
//! admitted in the rolling hour — and the limit's counters account for every request.

#[path = "support/race.rs"]
mod race;

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
    race::hammer_app(threads, attempts, "user", |request, i| {
        let now = 1 + i * (59 * 60 * SECOND) / attempts;
        policy.check(request, now, 1).unwrap().allowed()
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

/// Version A: one limit; version B: the same limit and another rule. Both keep `shared`
/// unchanged, so reloads between them must keep its exact state.
const VERSION_A: &str = "[table]\ncapacity = 1024\n[[rule]]\nname = \"api\"\n[[rule.limit]]\nname = \"shared\"\nkey = [\"app\"]\non_missing = \"deny\"\nalgorithm = \"fixed_window\"\nlimit = 3000\nperiod = \"1h\"\n";

/// A request of app `acme` (to `GET /`), on the versions' shared limit.
const ACME: Request<'static> = Request::new("GET", "/", &[Attribute::new("app", b"acme")]);

fn version_b() -> String {
    format!(
        "{VERSION_A}[[rule]]\nname = \"extra\"\n[[rule.limit]]\nname = \"per-user\"\nkey = [\"user\"]\non_missing = \"skip\"\nalgorithm = \"gcra\"\nlimit = 1000000\nperiod = \"1s\"\n"
    )
}

#[test]
fn reloads_under_load_keep_unchanged_limits_exact() {
    let policy = Policy::from_toml_str(VERSION_A, "a.toml").unwrap();
    let b = version_b();
    let checkers = 3;
    let attempts = 2000u64;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (admitted, reloads) = thread::scope(|scope| {
        let reloader = scope.spawn(|| {
            let mut reloads = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (text, origin) = if reloads % 2 == 0 {
                    (b.as_str(), "b.toml")
                } else {
                    (VERSION_A, "a.toml")
                };
                let report = policy.reload_toml_str(text, origin).unwrap();
                assert_eq!(report.kept, 1, "{report:?}");
                // A malformed version is refused and the one in force keeps answering.
                let error = policy
                    .reload_toml_str("[[rule]]\nname = 3\n", "bad.toml")
                    .unwrap_err();
                assert!(error.to_string().starts_with("bad.toml:2:8: "), "{error}");
                reloads += 1;
            }
            reloads
        });
        let admitted = race::race(checkers, |t, _| {
            let user = format!("user-{t}");
            let attributes = [
                Attribute::new("app", b"acme"),
                Attribute::new("user", user.as_bytes()),
            ];
            let request = Request::new("GET", "/", &attributes);
            let mut admitted = 0u64;
            for i in 0..attempts {
                let d = policy.check(&request, 1 + i, 1).unwrap();
                // Wholly one version or the other: `shared`, then maybe `per-user`.
                let names: Vec<&str> = d.entries().map(|(l, _)| l.name).collect();
                assert!(
                    names == ["shared"] || names == ["shared", "per-user"],
                    "{names:?}"
                );
                admitted += u64::from(d.allowed());
            }
            admitted
        });
        let admitted: u64 = admitted.into_iter().sum();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (admitted, reloader.join().unwrap())
    });
    assert!(reloads > 0);
    // 6000 attempts at one key of 3000 per hour: exactly 3000, however many reloads.
    assert_eq!(admitted, 3000, "after {reloads} reloads");
    let d = policy.peek(&ACME, 10, 0).unwrap();
    assert_eq!(d.decision().remaining, 0);
}

#[test]
fn a_decision_outlives_the_version_it_was_taken_on() {
    let policy = Policy::from_toml_str(VERSION_A, "a.toml").unwrap();
    let before = policy.check(&ACME, 1, 1).unwrap();
    // A new version with nothing in common: the old table is dropped by the policy...
    let report = policy
        .reload_toml_str(
            "[[rule]]\nname = \"other\"\n[[rule.limit]]\nkey = []\nalgorithm = \"gcra\"\nlimit = 5\nperiod = \"1s\"\n",
            "c.toml",
        )
        .unwrap();
    assert_eq!((report.kept, report.fresh, report.dropped), (0, 1, 1));
    // ...but the decision taken on it still reads its names and renders its headers.
    assert_eq!(before.deciding().unwrap().name, "shared");
    let mut headers = [0u8; 256];
    let n = before.render_headers(0, &mut headers).unwrap();
    assert!(std::str::from_utf8(&headers[..n])
        .unwrap()
        .contains("\"shared\""));
    let after = policy.check(&ACME, 1, 1).unwrap();
    assert_eq!(after.deciding().unwrap().name, "other-global");
}

#[test]
fn overrides_change_while_threads_check() {
    use ratecore::policy::OverrideQuota;
    let policy = Policy::from_toml_str(VERSION_A, "a.toml").unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (admitted, other) = thread::scope(|scope| {
        let toggler = scope.spawn(|| {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let quota = OverrideQuota::Limit {
                    limit: 1000 + (n % 4) * 1000,
                    burst: None,
                };
                policy
                    .set_override("api", "shared", "app", b"acme", quota)
                    .unwrap();
                if n % 3 == 0 {
                    policy
                        .remove_override("api", "shared", "app", b"acme")
                        .unwrap();
                }
                n += 1;
            }
        });
        let send = |app: &'static [u8]| {
            let policy = &policy;
            scope.spawn(move || {
                let attributes = [Attribute::new("app", app)];
                let request = Request::new("GET", "/", &attributes);
                (0..6000u64)
                    .filter(|i| policy.check(&request, 1 + i, 1).unwrap().allowed())
                    .count() as u64
            })
        };
        let (a, b, c) = (send(b"acme"), send(b"acme"), send(b"beta"));
        let admitted = a.join().unwrap() + b.join().unwrap();
        let other = c.join().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        toggler.join().unwrap();
        (admitted, other)
    });
    // Never more than the largest quota acme ever had, within the window.
    assert!(admitted <= 4000, "{admitted}");
    assert!(admitted >= 1000, "{admitted}");
    // Another key is untouched by the changes.
    assert_eq!(other, 3000);
}

/// A decision can be handed to another thread (an async task may carry it across an
/// await), and a policy shared by reference.
#[test]
fn decisions_are_send_and_policies_are_sync() {
    fn send<T: Send>() {}
    fn sync<T: Sync + Send>() {}
    send::<ratecore::policy::PolicyDecision<'static>>();
    sync::<Policy>();
    sync::<ratecore::policy::PolicyView>();
}

/// Limits of one rule on one key share a table: a change to one starts both afresh, and
/// the report says so; the unchanged one keeps its counters.
#[test]
fn a_reload_reports_what_kept_its_state() {
    let text = |b: u64| {
        format!(
            "[[rule]]\nname = \"r\"\n[[rule.limit]]\nname = \"a\"\nkey = [\"ip\"]\non_missing = \"skip\"\nalgorithm = \"fixed_window\"\nlimit = 10\nperiod = \"1h\"\n[[rule.limit]]\nname = \"b\"\nkey = [\"ip\"]\non_missing = \"skip\"\nalgorithm = \"fixed_window\"\nlimit = {b}\nperiod = \"1h\"\n"
        )
    };
    let policy = Policy::from_toml_str(&text(20), "t.toml").unwrap();
    let attributes = [Attribute::new("ip", b"1.2.3.4")];
    let request = Request::new("GET", "/", &attributes);
    for _ in 0..3 {
        assert!(policy.check(&request, 1, 1).unwrap().allowed());
    }
    let report = policy.reload_toml_str(&text(20), "t.toml").unwrap();
    assert_eq!((report.kept, report.fresh, report.dropped), (2, 0, 0));
    let report = policy.reload_toml_str(&text(30), "t.toml").unwrap();
    assert_eq!((report.kept, report.fresh, report.dropped), (0, 2, 1));
    let admitted = (0..20)
        .filter(|_| policy.check(&request, 1, 1).unwrap().allowed())
        .count();
    assert_eq!(admitted, 10, "a's state started afresh with b's table");
    let (_, a) = policy.metrics().next().unwrap();
    assert_eq!(a.allowed, 13, "a's counters were kept");
}
