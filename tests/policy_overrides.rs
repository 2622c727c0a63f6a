//! Per-client overrides ("we can arrange a more appropriate limit"): from TOML and at
//! run time, what a key keeps when its quota changes (per algorithm), the bound that a
//! change never admits more in a window than the larger quota, other keys untouched,
//! and what a reload does to overrides.

use ratecore::policy::{Attribute, OverrideQuota, Policy, PolicyError, Request};

const SECOND: u64 = 1_000_000_000;

/// One rule limiting each app to 1000 requests per hour with `algorithm`.
fn per_app(algorithm: &str, overrides: &str) -> Policy {
    let text = format!(
        "[table]\ncapacity = 1024\n[[rule]]\nname = \"api\"\n[[rule.limit]]\nname = \"per-app\"\nkey = [\"app\"]\non_missing = \"deny\"\nalgorithm = \"{algorithm}\"\nlimit = 1000\nperiod = \"1h\"\n{overrides}"
    );
    Policy::from_toml_str(&text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn app_request<'a>(attributes: &'a [Attribute<'a>]) -> Request<'a> {
    Request::new("GET", "/", attributes)
}

/// Sends `n` requests of `app` at `now`; returns how many were admitted.
fn send(policy: &Policy, app: &str, now: u64, n: u64) -> u64 {
    let attributes = [Attribute::new("app", app.as_bytes())];
    (0..n)
        .filter(|_| {
            policy
                .check(&app_request(&attributes), now, 1)
                .unwrap()
                .allowed()
        })
        .count() as u64
}

/// A run-time override to `limit` (no burst of its own).
fn limit_of(limit: u64) -> OverrideQuota {
    OverrideQuota::Limit { limit, burst: None }
}

/// Sets `app`'s override of the `per-app` limit.
fn set_app(policy: &Policy, app: &[u8], quota: OverrideQuota) {
    policy
        .set_override("api", "per-app", "app", app, quota)
        .unwrap();
}

/// Removes `app`'s override of the `per-app` limit; whether there was one.
fn remove_app(policy: &Policy, app: &[u8]) -> bool {
    policy
        .remove_override("api", "per-app", "app", app)
        .unwrap()
}

/// What a cost-0 peek says is left for `app` at `now`.
fn remaining(policy: &Policy, app: &str, now: u64) -> (u64, u64) {
    let attributes = [Attribute::new("app", app.as_bytes())];
    let d = policy.peek(&app_request(&attributes), now, 0).unwrap();
    (d.decision().remaining, d.decision().limit)
}

#[test]
fn overrides_from_toml_select_by_attribute() {
    let policy = per_app(
        "fixed_window",
        "[[rule.limit.override]]\nattribute = \"app\"\nvalue = \"acme\"\nlimit = 5000\n\
         [[rule.limit.override]]\nattribute = \"client\"\nvalue = \"c-42\"\nunlimited = true\n\
         [[rule.limit.override]]\nattribute = \"tier\"\nvalue = \"gold\"\nlimit = 2000\n",
    );
    assert_eq!(send(&policy, "acme", 1, 6000), 5000);
    assert_eq!(send(&policy, "other", 1, 1500), 1000);
    // Headers and decisions report the client's own quota.
    let acme = [Attribute::new("app", b"acme")];
    let d = policy.peek(&app_request(&acme), 1, 0).unwrap();
    assert_eq!(d.decision().limit, 5000);

    // An unlimited override: the limit does not apply, counted as skipped.
    let c42 = [
        Attribute::new("app", b"x"),
        Attribute::new("client", b"c-42"),
    ];
    for _ in 0..3000 {
        let d = policy.check(&app_request(&c42), 1, 1).unwrap();
        assert!(d.allowed() && !d.limited());
    }
    // A tier: the first override attribute that matches wins (app before tier).
    let gold = [Attribute::new("app", b"y"), Attribute::new("tier", b"gold")];
    let admitted = (0..2500)
        .filter(|_| policy.check(&app_request(&gold), 1, 1).unwrap().allowed())
        .count();
    assert_eq!(admitted, 2000);
    let acme_gold = [
        Attribute::new("app", b"acme"),
        Attribute::new("tier", b"gold"),
    ];
    let d = policy.peek(&app_request(&acme_gold), 1, 0).unwrap();
    assert_eq!(d.decision().limit, 5000);

    let (_, metrics) = policy.metrics().next().unwrap();
    assert_eq!(metrics.skipped, 3000);
    assert_eq!(metrics.allowed, 5000 + 1000 + 2000);
    assert_eq!(policy.overrides().len(), 3);
}

/// Windows count requests: a key raised from 1000 to 5000 after using 900 has 4100 left,
/// in process, for every window algorithm.
#[test]
fn a_raised_window_key_keeps_what_it_consumed() {
    for algorithm in ["fixed_window", "sliding_window", "sliding_window_strict"] {
        let policy = per_app(algorithm, "");
        assert_eq!(send(&policy, "acme", 1, 900), 900, "{algorithm}");
        assert_eq!(remaining(&policy, "acme", 1), (100, 1000), "{algorithm}");
        set_app(&policy, b"acme", limit_of(5000));
        assert_eq!(remaining(&policy, "acme", 1), (4100, 5000), "{algorithm}");
        assert_eq!(send(&policy, "acme", 1, 5000), 4100, "{algorithm}");
        // Removed again: the key is over its own quota, and stays denied.
        assert!(remove_app(&policy, b"acme"));
        assert!(!remove_app(&policy, b"acme"));
        assert_eq!(remaining(&policy, "acme", 1), (0, 1000), "{algorithm}");
        assert_eq!(send(&policy, "acme", 2, 10), 0, "{algorithm}");
    }
}

/// Lowered below what it used, a window key is denied until its window releases enough:
/// within one window it is never admitted more than the larger of its two quotas.
#[test]
fn a_lowered_window_key_never_exceeds_the_larger_quota() {
    for algorithm in ["fixed_window", "sliding_window", "sliding_window_strict"] {
        let policy = per_app(algorithm, "");
        let mut admitted = send(&policy, "acme", 1, 900);
        let lower = limit_of(500);
        set_app(&policy, b"acme", lower);
        assert_eq!(remaining(&policy, "acme", 1), (0, 500), "{algorithm}");
        // Toggle between the two quotas within the window: at most 1000 in all.
        for round in 0..10u64 {
            let now = 1 + round * 60 * SECOND;
            admitted += send(&policy, "acme", now, 200);
            if round % 2 == 0 {
                remove_app(&policy, b"acme");
            } else {
                set_app(&policy, b"acme", lower);
            }
        }
        assert_eq!(admitted, 1000, "{algorithm}");
    }
}

/// GCRA keeps the time a key owes: 900 of 1000 per hour used is 54 minutes owed; at 5000
/// per hour (burst 5000) those 54 minutes are 4500 requests' worth, so 500 remain, and
/// the rest come back at the new rate.
#[test]
fn a_raised_gcra_key_keeps_the_time_it_owes() {
    let policy = per_app("gcra", "");
    assert_eq!(send(&policy, "acme", 0, 900), 900);
    assert_eq!(remaining(&policy, "acme", 0), (100, 1000));
    set_app(&policy, b"acme", limit_of(5000));
    assert_eq!(remaining(&policy, "acme", 0), (500, 5000));
    assert_eq!(send(&policy, "acme", 0, 1000), 500);
    // One new request every 0.72 s at the new rate.
    assert_eq!(send(&policy, "acme", 720_000_000, 10), 1);

    // Lowered, the debt is worth fewer requests: never a gain.
    let policy = per_app("gcra", "");
    assert_eq!(send(&policy, "acme", 0, 100), 100);
    set_app(&policy, b"acme", limit_of(100));
    // 100 requests at 3.6 s each owe 360 s; at 36 s per request that is 10 requests of a
    // burst of 100: 90 remain, so 190 in all — within the larger quota's 1000.
    assert_eq!(remaining(&policy, "acme", 0), (90, 100));
    assert_eq!(send(&policy, "acme", 0, 1000), 90);
}

#[test]
fn changing_one_override_leaves_every_other_key_alone() {
    let policy = per_app("fixed_window", "");
    assert_eq!(send(&policy, "other", 1, 700), 700);
    for limit in [5000, 2000, 3000] {
        set_app(&policy, b"acme", limit_of(limit));
        assert_eq!(remaining(&policy, "other", 1), (300, 1000));
    }
    set_app(&policy, b"acme", OverrideQuota::Unlimited);
    assert_eq!(remaining(&policy, "other", 1), (300, 1000));
    assert_eq!(send(&policy, "other", 1, 400), 300);
}

#[test]
fn bad_overrides_are_refused_with_a_typed_error() {
    let policy = per_app("fixed_window", "");
    let quota = limit_of(10);
    assert!(matches!(
        policy.set_override("api", "nope", "app", b"a", quota),
        Err(PolicyError::UnknownLimit { .. })
    ));
    assert!(matches!(
        policy.set_override("api", "per-app", "a b", b"a", quota),
        Err(PolicyError::AttributeName(_))
    ));
    let zero = limit_of(0);
    assert!(matches!(
        policy.set_override("api", "per-app", "app", b"a", zero),
        Err(PolicyError::Override { .. })
    ));
    let burst = OverrideQuota::Limit {
        limit: 10,
        burst: Some(20),
    };
    let error = policy
        .set_override("api", "per-app", "app", b"a", burst)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "rule \"api\", limit \"per-app\": override: burst only applies to algorithm = \"gcra\""
    );
    assert!(policy.overrides().is_empty());

    let text = |o: &str| {
        format!(
            "[[rule]]\nname = \"api\"\n[[rule.limit]]\nkey = []\nalgorithm = \"fixed_window\"\nlimit = 10\nperiod = \"1m\"\n[[rule.limit.override]]\n{o}"
        )
    };
    let cases = [
        (
            "attribute = \"app\"\nvalue = \"a\"\n",
            "bad.toml:9:13: rule[0].limit[0].override[0].limit: an override has a limit, or unlimited = true (one of the two)",
        ),
        (
            "attribute = \"app\"\nvalue = \"a\"\nlimit = 5\nunlimited = true\n",
            "bad.toml:9:13: rule[0].limit[0].override[0].limit: an override has a limit, or unlimited = true (one of the two)",
        ),
        (
            "attribute = \"app\"\nvalue = \"a\"\nlimit = 5\nburst = 9\n",
            "bad.toml:12:9: rule[0].limit[0].override[0].burst: burst only applies to algorithm = \"gcra\"",
        ),
        (
            "attribute = \"app\"\nvalue = \"a\"\nlimit = 0\n",
            "bad.toml:11:9: rule[0].limit[0].override[0].limit: limit must be at least 1",
        ),
        (
            "attribute = \"a/b\"\nvalue = \"a\"\nlimit = 5\n",
            "bad.toml:9:13: rule[0].limit[0].override[0].attribute: bad attribute name \"a/b\": use ASCII letters, digits, '_', '-', '.' or ':'",
        ),
        (
            "attribute = \"app\"\nvalue = \"a\"\nunlimited = true\nburst = 3\n",
            "bad.toml:12:9: rule[0].limit[0].override[0].burst: an unlimited override has no burst",
        ),
    ];
    for (o, expected) in cases {
        let e = Policy::from_toml_str(&text(o), "bad.toml").unwrap_err();
        assert_eq!(e.to_string(), expected, "{o}");
    }

    // A count wider than the state word leaves room for beside its window numbers
    // cannot share the key's word: an approximate window of 1 s keeps 14 bits a count.
    let narrow = Policy::from_toml_str(
        "[[rule]]\nname = \"api\"\n[[rule.limit]]\nname = \"l\"\nkey = []\nalgorithm = \"sliding_window\"\nlimit = 10\nperiod = \"1s\"\n",
        "t.toml",
    )
    .unwrap();
    let fits = limit_of(16_383);
    narrow.set_override("api", "l", "app", b"a", fits).unwrap();
    let too_wide = limit_of(16_384);
    assert!(matches!(
        narrow.set_override("api", "l", "app", b"b", too_wide),
        Err(PolicyError::Override { .. })
    ));
}

#[test]
fn a_reload_replaces_the_overrides_with_the_files_and_counts_the_dropped() {
    let file_override =
        "[[rule.limit.override]]\nattribute = \"app\"\nvalue = \"acme\"\nlimit = 5000\n";
    let policy = per_app("sliding_window_strict", file_override);
    assert_eq!(send(&policy, "acme", 1, 1200), 1200);
    set_app(&policy, b"beta", limit_of(2000));
    set_app(&policy, b"gamma", OverrideQuota::Unlimited);
    assert_eq!(policy.overrides().len(), 3);
    let text = format!(
        "[table]\ncapacity = 1024\n[[rule]]\nname = \"api\"\n[[rule.limit]]\nname = \"per-app\"\nkey = [\"app\"]\non_missing = \"deny\"\nalgorithm = \"sliding_window_strict\"\nlimit = 1000\nperiod = \"1h\"\n{file_override}"
    );
    let report = policy.reload_toml_str(&text, "test.toml").unwrap();
    assert_eq!((report.kept, report.fresh, report.dropped), (1, 0, 0));
    assert_eq!(report.overrides_dropped, 2);
    assert_eq!(policy.overrides().len(), 1);
    // The limit is unchanged, so acme keeps its 1200 of 5000.
    assert_eq!(remaining(&policy, "acme", 2), (3800, 5000));
    assert_eq!(remaining(&policy, "beta", 2), (1000, 1000));
}

#[test]
fn overrides_cost_their_entries_not_tables() {
    let policy = per_app("fixed_window", "");
    let tables = policy.memory_bytes();
    for i in 0..10_000u32 {
        let app = format!("app-{i}");
        set_app(&policy, app.as_bytes(), limit_of(1 + u64::from(i % 7)));
    }
    let with = policy.memory_bytes();
    let per_override = (with - tables) / 10_000;
    assert!(
        (32..400).contains(&per_override),
        "{per_override} bytes each"
    );
    // 7 distinct override quotas, and no table was added.
    assert_eq!(send(&policy, "app-3", 1, 10), 4);
    assert_eq!(send(&policy, "app-4", 1, 10), 5);
}

/// The seeds' "more appropriate limit": ev.energy's file raises one integration's
/// client-credentials app to 5000 per rolling hour, Uphold's one partner address to 3000
/// per 5 minutes; everyone else keeps the published limits.
#[test]
fn the_seed_policies_carry_an_override_example() {
    let seed = |name: &str| {
        Policy::from_toml_file(format!(
            "{}/examples/policies/{name}.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let evenergy = seed("evenergy");
    let count = |policy: &Policy, attributes: &[Attribute<'_>], n: usize| {
        (0..n)
            .filter(|_| {
                policy
                    .check(&Request::new("GET", "/v2/users/", attributes), 1, 1)
                    .unwrap()
                    .allowed()
            })
            .count()
    };
    let fleet = [
        Attribute::new("auth", b"client_credentials"),
        Attribute::new("app", b"fleet-integration"),
    ];
    let other = [
        Attribute::new("auth", b"client_credentials"),
        Attribute::new("app", b"other"),
    ];
    assert_eq!(count(&evenergy, &fleet, 5100), 5000);
    assert_eq!(count(&evenergy, &other, 1100), 1000);
    let uphold = seed("uphold");
    let partner = [Attribute::new("client_ip", b"203.0.113.7")];
    let anyone = [Attribute::new("client_ip", b"203.0.113.8")];
    assert_eq!(count(&uphold, &partner, 3100), 3000);
    assert_eq!(count(&uphold, &anyone, 400), 300);
}

/// Many overrides at once: all of them published together, or none when one is invalid
/// (the set in force stays exactly as it was).
#[test]
fn a_batch_of_overrides_is_all_or_nothing() {
    use ratecore::policy::Override;
    let policy = per_app("fixed_window", "");
    let raised = |app: usize| Override {
        attribute: "app".into(),
        value: format!("app-{app}").into_bytes(),
        quota: limit_of(2_000 + app as u64),
    };
    let batch: Vec<Override> = (0..5_000).map(raised).collect();
    let set = policy
        .set_overrides(batch.iter().map(|o| ("api", "per-app", o)))
        .unwrap();
    assert_eq!(set, 5_000);
    assert_eq!(policy.overrides().len(), 5_000);
    for app in [0, 1, 2_500, 4_999] {
        assert_eq!(
            remaining(&policy, &format!("app-{app}"), SECOND),
            (2_000 + app as u64, 2_000 + app as u64)
        );
    }
    assert_eq!(remaining(&policy, "app-5000", SECOND), (1_000, 1_000));

    // One bad entry in the middle: nothing of the batch is applied.
    let before = policy.overrides();
    let mut bad: Vec<Override> = (5_000..6_000).map(raised).collect();
    bad[500].quota = limit_of(0);
    let err = policy
        .set_overrides(bad.iter().map(|o| ("api", "per-app", o)))
        .unwrap_err();
    assert!(matches!(err, PolicyError::Override { .. }), "{err}");
    let unknown = policy
        .set_overrides(bad.iter().take(10).map(|o| ("api", "nope", o)))
        .unwrap_err();
    assert!(matches!(unknown, PolicyError::UnknownLimit { .. }));
    let mut after = policy.overrides();
    let mut before = before;
    before.sort_by(|a, b| a.2.value.cmp(&b.2.value));
    after.sort_by(|a, b| a.2.value.cmp(&b.2.value));
    assert_eq!(after, before);
    assert_eq!(remaining(&policy, "app-5000", SECOND), (1_000, 1_000));
    // An empty batch changes nothing.
    assert_eq!(policy.set_overrides(std::iter::empty()).unwrap(), 0);
}
