//! Policy semantics beyond the seeds: unlimited rules, absent attributes, all-or-nothing
//! across rules. (That checking this policy allocates nothing: tests/no_alloc/.)

use ratecore::policy::{Attribute, Policy, Request};

const SECOND: u64 = 1_000_000_000;

const POLICY: &str = include_str!("support/semantics_policy.toml");

#[test]
fn unlimited_rules_exempt_and_cost_nothing() {
    let policy = Policy::from_toml_str(POLICY, "inline").unwrap();
    let ip = [Attribute::new("client_ip", b"1.2.3.4")];
    let health = Request::new("GET", "/health", &ip);
    for _ in 0..500 {
        let d = policy.check(&health, SECOND, 1).unwrap();
        assert!(d.allowed());
        assert!(!d.limited());
        assert_eq!(d.exempted_by(), Some("health"));
    }
    // The global budget is untouched.
    let other = Request {
        path: "/other",
        ..health
    };
    let d = policy.check(&other, SECOND, 1).unwrap();
    assert_eq!(d.decision().remaining, 99);
}

#[test]
fn per_user_limits_skip_anonymous_requests_and_denials_consume_nothing() {
    let policy = Policy::from_toml_str(POLICY, "inline").unwrap();
    // The legacy key names (`key = "user"`) skip a limit whose attribute is absent.
    let ip = [Attribute::new("client_ip", b"10.0.0.1")];
    let anonymous = Request::new("POST", "/login", &ip);
    let d = policy.check(&anonymous, SECOND, 1).unwrap();
    assert!(d.allowed());
    assert_eq!(
        d.entries().map(|(l, _)| l.name).collect::<Vec<_>>(),
        ["everyone", "login-ip"]
    );
    assert!(!d.denied_for_missing_key());
    let login_user = |policy: &Policy| {
        policy
            .metrics()
            .find(|(l, _)| l.name == "login-user")
            .map(|(_, m)| m)
            .unwrap()
    };
    assert_eq!(login_user(&policy).skipped, 1);
    assert_eq!(login_user(&policy).checked(), 1);
    let ip_and_user = [
        Attribute::new("client_ip", b"10.0.0.1"),
        Attribute::new("user", b"alice"),
    ];
    let alice = Request::new("POST", "/login", &ip_and_user);
    assert!(policy.check(&alice, SECOND, 1).unwrap().allowed());
    assert!(policy.check(&alice, SECOND, 1).unwrap().allowed());
    // The IP has used 3: denied by login-ip; the user's strict window is full too.
    let denied = policy.check(&alice, SECOND, 1).unwrap();
    assert!(!denied.allowed());
    let mut headers = [0u8; 512];
    let n = denied.render_headers(0, &mut headers).unwrap();
    assert_eq!(
        std::str::from_utf8(&headers[..n]).unwrap(),
        "RateLimit-Policy: \"everyone\";q=100;w=60, \"login-ip\";q=3;w=60, \"login-user\";q=2;w=60\r\n\
         RateLimit: \"everyone\";r=97;t=2, \"login-ip\";r=0;t=59, \"login-user\";r=0;t=60\r\n\
         Retry-After: 60\r\n"
    );
    // Nothing was consumed by the denial: the global budget still says 97.
    let other = Request {
        method: "GET",
        path: "/x",
        ..anonymous
    };
    assert_eq!(
        policy.peek(&other, SECOND, 1).unwrap().decision().remaining,
        96
    );
}
