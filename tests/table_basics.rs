//! Keyed tables: per-key exactness, composite limits per key, policies, stats, regions.

use ratecore::table::region::{self, RegionTable};
use ratecore::{Algorithm, Decision, FullPolicy, LimitSpec, Quota, Table, TableConfig, TableError};

const SECOND: u64 = 1_000_000_000;
const MINUTE: u64 = 60 * SECOND;

fn spec(algorithm: Algorithm, limit: u64, period: u64) -> LimitSpec {
    LimitSpec {
        algorithm,
        quota: Quota::new(limit, period).unwrap(),
    }
}

/// A 64-byte aligned buffer for region tests.
#[repr(C, align(64))]
struct Line([u8; 64]);

/// A zeroed buffer large enough for a region of `config`.
fn region_buffer(config: &TableConfig) -> Vec<Line> {
    let bytes = region::region_size(config).unwrap();
    (0..bytes.div_ceil(64)).map(|_| Line([0; 64])).collect()
}

fn as_bytes(buffer: &mut [Line]) -> &mut [u8] {
    let len = buffer.len() * 64;
    // Test-only: a Vec<Line> is `len` contiguous, initialised bytes.
    #[allow(unsafe_code)]
    // SAFETY: Line is repr(C) of [u8; 64] with no padding, so the buffer is `len` bytes
    // of initialised u8, uniquely borrowed for the returned lifetime.
    unsafe {
        std::slice::from_raw_parts_mut(buffer.as_mut_ptr().cast::<u8>(), len)
    }
}

#[test]
fn keys_are_limited_independently() {
    let config = TableConfig::new(1024, &[spec(Algorithm::Gcra, 3, MINUTE)]).unwrap();
    let table = Table::new(config).unwrap();
    for key in [&b"10.0.0.1"[..], b"10.0.0.2", b"10.0.0.3"] {
        for _ in 0..3 {
            assert!(table.check(key, SECOND, 1).unwrap().allowed);
        }
        let denied = table.check(key, SECOND, 1).unwrap();
        assert!(!denied.allowed);
        assert_eq!(denied.retry_after, 20 * SECOND);
    }
    assert_eq!(table.stats().occupied, 3);
    assert_eq!(table.stats().new_keys, 3);
}

#[test]
fn uphold_password_forgot_per_ip_and_per_account() {
    let per_ip = Table::new(
        TableConfig::new(1024, &[spec(Algorithm::FixedWindow, 10, 10 * MINUTE)]).unwrap(),
    )
    .unwrap();
    let per_account =
        Table::new(TableConfig::new(1024, &[spec(Algorithm::FixedWindow, 3, 5 * MINUTE)]).unwrap())
            .unwrap();
    let t = 20 * MINUTE;
    // Three IPs try the same account: the account allows 3 in 5 min across IPs.
    let mut admitted = 0;
    for ip in [&b"1.1.1.1"[..], b"2.2.2.2", b"3.3.3.3", b"4.4.4.4"] {
        let ip_ok = per_ip.peek(ip, t, 1).unwrap().allowed;
        let account_ok = per_account.peek(b"foo@bar.com", t, 1).unwrap().allowed;
        if ip_ok && account_ok {
            assert!(per_ip.check(ip, t, 1).unwrap().allowed);
            assert!(per_account.check(b"foo@bar.com", t, 1).unwrap().allowed);
            admitted += 1;
        }
    }
    assert_eq!(admitted, 3);
}

#[test]
fn composite_per_key_denial_consumes_nothing() {
    let config = TableConfig::new(
        64,
        &[
            spec(Algorithm::FixedWindow, 5, SECOND),
            spec(Algorithm::FixedWindow, 20, MINUTE),
        ],
    )
    .unwrap();
    let table = Table::new(config).unwrap();
    let client = b"oauth-client-1";
    let t0 = 10 * MINUTE;
    for second in 0..4 {
        for _ in 0..5 {
            assert!(
                table
                    .check(client, t0 + second * SECOND, 1)
                    .unwrap()
                    .allowed
            );
        }
        assert!(
            !table
                .check(client, t0 + second * SECOND, 1)
                .unwrap()
                .allowed
        );
    }
    let mut states = [Decision::EMPTY; 2];
    let denied = table
        .check_each(client, t0 + 19 * SECOND, 1, &mut states)
        .unwrap();
    assert!(!denied.allowed);
    assert_eq!(denied.limit, 20);
    assert_eq!(denied.retry_after, 41 * SECOND);
    assert_eq!(
        states[0].remaining, 5,
        "per-second window untouched by the denial"
    );
    assert_eq!(states[1].remaining, 0);
}

#[test]
fn at_rest_slots_are_reclaimed_and_full_neighbourhoods_follow_policy() {
    for policy in [
        FullPolicy::EvictClosestToRest,
        FullPolicy::Deny,
        FullPolicy::Allow,
    ] {
        // 8 slots: exactly one neighbourhood.
        let config = TableConfig::new(8, &[spec(Algorithm::Gcra, 1, MINUTE)])
            .unwrap()
            .with_policy(policy)
            .with_seed([1, 2, 3, 4]);
        let table = Table::new(config).unwrap();
        for i in 0..8u64 {
            assert!(
                table
                    .check(&i.to_le_bytes(), SECOND + i, 1)
                    .unwrap()
                    .allowed
            );
        }
        let ninth = table.check(&8u64.to_le_bytes(), SECOND + 8, 1).unwrap();
        let stats = table.stats();
        assert_eq!(stats.full_neighbourhoods, 1, "{policy:?}");
        match policy {
            FullPolicy::EvictClosestToRest => {
                assert!(ninth.allowed);
                assert_eq!(stats.evictions, 1);
            }
            FullPolicy::Deny => {
                assert!(!ninth.allowed);
                assert_eq!(stats.full_denied, 1);
                // The oldest key comes to rest one minute after its request.
                assert_eq!(ninth.retry_after, MINUTE - 8);
            }
            FullPolicy::Allow => {
                assert!(ninth.allowed);
                assert_eq!(stats.full_allowed, 1);
            }
        }
        // A minute later every key is at rest: new keys reclaim losslessly.
        let later = 3 * MINUTE;
        assert!(
            table
                .check(&100u64.to_le_bytes(), later, 1)
                .unwrap()
                .allowed
        );
        assert!(table.stats().reclaims >= 1);
    }
}

#[test]
fn region_init_attach_and_share_state() {
    let config = TableConfig::new(256, &[spec(Algorithm::Gcra, 2, MINUTE)]).unwrap();
    let mut buffer = region_buffer(&config);
    let bytes = as_bytes(&mut buffer);
    let ptr = bytes.as_mut_ptr();
    let len = bytes.len();
    #[allow(unsafe_code)]
    // SAFETY: the buffer lives for the whole test and is only used through tables.
    let (a, b) = unsafe {
        let a: RegionTable<'_> = region::init(ptr, len, &config).unwrap();
        let b: RegionTable<'_> = region::attach(ptr, len).unwrap();
        (a, b)
    };
    assert!(a.check(b"k", SECOND, 1).unwrap().allowed);
    assert!(b.check(b"k", SECOND, 1).unwrap().allowed);
    assert!(!a.check(b"k", SECOND, 1).unwrap().allowed);
    assert_eq!(b.stats().occupied, 1);
    assert_eq!(b.config(), a.config());
}

#[test]
fn attaching_garbage_is_an_error() {
    let config = TableConfig::new(64, &[spec(Algorithm::Gcra, 2, MINUTE)]).unwrap();
    let mut buffer = region_buffer(&config);
    let bytes = as_bytes(&mut buffer);
    assert_eq!(
        RegionTable::attach_in(bytes).unwrap_err(),
        TableError::BadMagic
    );
    let bytes = as_bytes(&mut buffer);
    RegionTable::init_in(bytes, &config).unwrap();
    let bytes = as_bytes(&mut buffer);
    bytes[20] ^= 1; // capacity field
    assert_eq!(
        RegionTable::attach_in(bytes).unwrap_err(),
        TableError::CorruptHeader
    );
    let bytes = as_bytes(&mut buffer);
    assert!(matches!(
        RegionTable::attach_in(&mut bytes[..100]).unwrap_err(),
        TableError::RegionTooSmall { .. }
    ));
    assert_eq!(
        RegionTable::attach_in(&mut bytes[1..]).unwrap_err(),
        TableError::RegionMisaligned
    );
}

#[test]
fn evenergy_strict_window_per_app_and_user() {
    const HOUR: u64 = 3600 * SECOND;
    let strict = LimitSpec {
        algorithm: Algorithm::SlidingWindowStrict { sub_windows: 60 },
        quota: Quota::per_hour(1000).unwrap(),
    };
    let table = Table::new(TableConfig::new(4096, &[strict]).unwrap()).unwrap();
    let t = 11 * HOUR + 59 * 60 * SECOND;
    for _ in 0..1000 {
        assert!(table.check_key(&("app-1", "alice"), t, 1).unwrap().allowed);
    }
    // Another user of the same app has their own hour.
    assert!(table.check_key(&("app-1", "bob"), t, 1).unwrap().allowed);
    let denied = table
        .check_key(&("app-1", "alice"), t + HOUR - SECOND, 1)
        .unwrap();
    assert!(!denied.allowed);
    assert_eq!(denied.retry_after, SECOND);
    assert!(
        table
            .check_key(&("app-1", "alice"), t + HOUR, 1)
            .unwrap()
            .allowed
    );
}

#[test]
fn strict_rings_are_reclaimed_with_a_new_generation() {
    let strict = LimitSpec {
        algorithm: Algorithm::SlidingWindowStrict { sub_windows: 4 },
        quota: Quota::new(2, MINUTE).unwrap(),
    };
    let config = TableConfig::new(8, &[strict])
        .unwrap()
        .with_seed([9, 9, 9, 9]);
    let table = Table::new(config).unwrap();
    for i in 0..8u64 {
        assert!(table.check(&i.to_le_bytes(), SECOND, 2).unwrap().allowed);
        assert!(!table.check(&i.to_le_bytes(), SECOND, 1).unwrap().allowed);
    }
    // All 8 slots busy; two minutes later all are at rest and get reclaimed for new keys,
    // which start with a full quota (old counts belong to the old generation).
    for i in 100..108u64 {
        let d = table.check(&i.to_le_bytes(), 3 * MINUTE, 2).unwrap();
        assert!(d.allowed, "key {i}");
    }
    assert_eq!(table.stats().reclaims, 8);
    assert_eq!(table.stats().evictions, 0);
    // And a returning old key starts fresh, while the new ones stay exhausted.
    assert!(
        !table
            .check(&100u64.to_le_bytes(), 3 * MINUTE, 1)
            .unwrap()
            .allowed
    );
}

/// A key is hashed one way: `check(&[u8])`, `check_key` of the same bytes (as a slice or
/// a `Vec<u8>`) and the C ABI's (pointer, length) all reach the same counter.
#[test]
fn byte_keys_hash_the_same_through_every_entry_point() {
    let gcra = LimitSpec {
        algorithm: Algorithm::Gcra,
        quota: Quota::per_second(3).unwrap(),
    };
    let table = Table::new(TableConfig::new(1024, &[gcra]).unwrap()).unwrap();
    let key: &[u8] = b"203.0.113.9";
    assert!(table.check(key, 0, 1).unwrap().allowed);
    assert!(table.check_key(key, 0, 1).unwrap().allowed);
    assert!(table.check_key(&key.to_vec(), 0, 1).unwrap().allowed);
    let denied = table.check(key, 0, 1).unwrap();
    assert!(!denied.allowed, "three checks of one key drew on one quota");
    assert_eq!(table.slot_of(key), table.slot_of(b"203.0.113.9"));
    // A different type is a different key: `str` hashes with a terminator.
    assert!(table.check_key("203.0.113.9", 0, 1).unwrap().allowed);
}
