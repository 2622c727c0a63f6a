//! Who keeps sending while denied: 10,000 keys denied once and 3 keys denied 1,000 times
//! each, interleaved — the report names exactly those 3 with exact counts, in memory that
//! does not grow.

use ratecore::policy::{Attribute, Policy, Request, OFFENDERS};

const PER_IP: &str = "[table]\ncapacity = 32768\n[[rule]]\nname = \"api\"\n[[rule.limit]]\nname = \"per-ip\"\nkey = [\"ip\"]\non_missing = \"deny\"\nalgorithm = \"fixed_window\"\nlimit = 1\nperiod = \"1h\"\n";

fn policy() -> Policy {
    Policy::from_toml_str(PER_IP, "t.toml").unwrap()
}

fn check(policy: &Policy, ip: &str) -> bool {
    let attributes = [Attribute::new("ip", ip.as_bytes())];
    policy
        .check(&Request::new("GET", "/", &attributes), 1, 1)
        .unwrap()
        .allowed()
}

#[test]
fn repeat_offenders_are_reported_exactly_in_constant_memory() {
    let policy = policy();
    let memory = policy.memory_bytes();
    // Every key's first request is admitted; what follows is denied.
    let heavy = ["198.51.100.1", "198.51.100.2", "198.51.100.3"];
    let once: Vec<String> = (0..10_000)
        .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
        .collect();
    for ip in heavy.iter().copied().chain(once.iter().map(String::as_str)) {
        assert!(check(&policy, ip));
    }
    // The denials, shuffled with a fixed seed: 10,000 once-denied, 3 × 1000.
    let mut denials: Vec<&str> = once.iter().map(String::as_str).collect();
    for ip in heavy {
        denials.extend(std::iter::repeat_n(ip, 1000));
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..denials.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        denials.swap(i, (state >> 33) as usize % (i + 1));
    }
    for ip in &denials {
        assert!(!check(&policy, ip));
    }
    let (offenders, stats) = policy.offenders();
    assert_eq!(stats.unrecorded, 0);
    assert_eq!(stats.evicted, 0);
    let mut got: Vec<(String, u64)> = offenders
        .iter()
        .map(|o| (String::from_utf8(o.key.clone()).unwrap(), o.denials))
        .collect();
    got.sort();
    assert_eq!(
        got,
        heavy
            .iter()
            .map(|ip| (ip.to_string(), 1000))
            .collect::<Vec<_>>()
    );
    assert!(offenders
        .iter()
        .all(|o| o.rule == "api" && o.limit == "per-ip"));
    assert_eq!(policy.memory_bytes(), memory);
}

#[test]
fn the_report_holds_at_most_its_capacity_and_counts_evictions() {
    let policy = policy();
    let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
    for key in &keys {
        assert!(check(&policy, key));
    }
    // Each key denied 2 + i % 5 times, back to back.
    for (i, key) in keys.iter().enumerate() {
        for _ in 0..2 + i % 5 {
            assert!(!check(&policy, key));
        }
    }
    let (offenders, stats) = policy.offenders();
    assert_eq!(offenders.len(), OFFENDERS);
    assert_eq!(stats.evicted, 200 - OFFENDERS as u64);
    // Sorted, most denials first.
    assert!(offenders.windows(2).all(|w| w[0].denials >= w[1].denials));
    // A reload that keeps the limit keeps the report (and its counters), and a reported
    // key goes on counting in the new version.
    policy.reload_toml_str(PER_IP, "t.toml").unwrap();
    assert_eq!(policy.offenders(), (offenders.clone(), stats));
    let top = offenders[0].clone();
    assert!(!check(&policy, std::str::from_utf8(&top.key).unwrap()));
    let (after, _) = policy.offenders();
    assert_eq!(after[0].key, top.key);
    assert_eq!(after[0].denials, top.denials + 1);
    assert_eq!(after.len(), OFFENDERS);
    // One that changes the limit drops its report.
    policy
        .reload_toml_str(&PER_IP.replace("limit = 1\n", "limit = 2\n"), "t.toml")
        .unwrap();
    assert!(policy.offenders().0.is_empty());
    policy
        .reload_toml_str("[[rule]]\nname = \"x\"\n[[rule.limit]]\nkey = []\nalgorithm = \"gcra\"\nlimit = 1\nperiod = \"1s\"\n", "x.toml")
        .unwrap();
    assert!(policy.offenders().0.is_empty());
}

#[test]
fn long_and_composite_keys_are_shown_cut_and_joined() {
    let policy = Policy::from_toml_str(
        "[[rule]]\nname = \"api\"\n[[rule.limit]]\nname = \"pair\"\nkey = [\"app\", \"user\"]\non_missing = \"shared\"\nalgorithm = \"fixed_window\"\nlimit = 1\nperiod = \"1h\"\n",
        "t.toml",
    )
    .unwrap();
    let long = "u".repeat(100);
    for attributes in [
        vec![
            Attribute::new("app", b"acme"),
            Attribute::new("user", b"bob"),
        ],
        vec![Attribute::new("app", b"acme")],
        vec![
            Attribute::new("app", b"acme"),
            Attribute::new("user", long.as_bytes()),
        ],
    ] {
        for _ in 0..4 {
            let _ = policy
                .check(&Request::new("GET", "/", &attributes), 1, 1)
                .unwrap();
        }
    }
    let (offenders, _) = policy.offenders();
    let mut keys: Vec<(Vec<u8>, bool, u64)> = offenders
        .into_iter()
        .map(|o| (o.key, o.truncated, o.denials))
        .collect();
    keys.sort();
    let mut cut = b"acme/".to_vec();
    cut.extend(std::iter::repeat_n(b'u', 64 - 5));
    assert_eq!(
        keys,
        vec![
            (b"acme/".to_vec(), false, 3),
            (b"acme/bob".to_vec(), false, 3),
            (cut, true, 3),
        ]
    );
}

#[test]
fn a_key_denied_once_before_a_reload_and_once_after_is_an_offender() {
    let policy = policy();
    assert!(check(&policy, "203.0.113.5"));
    assert!(!check(&policy, "203.0.113.5"));
    assert!(
        policy.offenders().0.is_empty(),
        "denied once: a candidate only"
    );
    policy.reload_toml_str(PER_IP, "t.toml").unwrap();
    assert!(!check(&policy, "203.0.113.5"));
    let (offenders, stats) = policy.offenders();
    assert_eq!(offenders.len(), 1);
    assert_eq!(offenders[0].key, b"203.0.113.5");
    assert_eq!(offenders[0].denials, 2);
    assert_eq!(stats.unrecorded, 0);
}
