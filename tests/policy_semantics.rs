//! Policy semantics beyond the seeds: unlimited rules, absent attributes, all-or-nothing
//! across rules, and allocation-free checks.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ratecore::policy::{Attribute, Policy, Request};

/// Counts allocations made by the current thread while `COUNTING` is set.
struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: delegates every operation to the system allocator unchanged; the thread-local
// bookkeeping uses const-initialised `Cell`s, which never allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn allocations_during(f: impl FnOnce()) -> usize {
    ALLOCATIONS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get)
}

const SECOND: u64 = 1_000_000_000;

const POLICY: &str = r#"
[response]
headers = "ietf"
body = "text"

[table]
capacity = 1024

[[rule]]
name = "global"
[[rule.limit]]
name = "everyone"
key = "global"
limit = 100
period = "1m"

[[rule]]
name = "login"
route = "POST /login"
description = "Login"
[[rule.limit]]
name = "login-ip"
key = "client_ip"
algorithm = "fixed_window"
limit = 3
period = "1m"
[[rule.limit]]
name = "login-user"
key = "user"
algorithm = "sliding_window_strict"
sub_windows = 6
limit = 2
period = "1m"

[[rule]]
name = "health"
route = "GET /health"
unlimited = true
"#;

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

#[test]
fn policy_checks_allocate_nothing() {
    let policy = Policy::from_toml_str(POLICY, "inline").unwrap();
    let mut headers = [0u8; 512];
    let mut body = [0u8; 512];
    let users: Vec<Vec<u8>> = (0..64).map(|i| format!("user{i}").into_bytes()).collect();
    let ips: Vec<Vec<u8>> = (0..64)
        .map(|i| format!("10.0.0.{i}").into_bytes())
        .collect();
    // Sanity: the counter sees allocations.
    assert!(allocations_during(|| drop(Box::new(7u64))) >= 1);
    // A thread's first check of any policy registers it with the lock-free pointer the
    // policy is read through (at most one allocation per thread, in its life: see
    // `registration_is_once_per_thread` in tests/no_alloc/), so warm this one up first.
    let warm = [Attribute::new("client_ip", b"192.0.2.1")];
    let _ = policy.peek(&Request::new("GET", "/warm", &warm), 0, 0);
    let count = allocations_during(|| {
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
                let _ = d.render_body(&mut body);
            }
        }
    });
    assert_eq!(count, 0);
}
