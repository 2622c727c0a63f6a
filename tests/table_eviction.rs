//! Reclaim, eviction and memory of keyed tables.
//!
//! - **Reclaim loses nothing.** Tiny tables (8 to 32 slots) see a stream of rounds; each
//!   round uses at most 8 keys (a neighbourhood's size) drawn from a pool of 5 per slot, at
//!   increasing times within its first half period, and the next round starts two
//!   periods later, when every earlier key is at rest. Keys therefore keep taking each
//!   other's slots (reclaims), and every decision must equal that of a
//!   `HashMap<key, reference model>` (`tests/model/`), field by field, for every
//!   algorithm and a composite; no eviction and no full neighbourhood may occur.
//! - **Forced eviction follows the policy and is counted.** One neighbourhood (8 slots)
//!   full of active keys, then a new key, under each [`FullPolicy`] and algorithm:
//!   `EvictClosestToRest` admits it and evicts a key whose state is soonest at rest; the
//!   evicted key comes back *fresh* (documented: its state is lost, and counted in
//!   `evictions`). `Deny` refuses it with `retry_after` = `reset_after` = the time until
//!   the soonest slot comes to rest, exactly (at that moment the key is admitted by
//!   reclaim), and loses nothing. `Allow` admits it untracked, again and again. Every
//!   event is counted (`full_neighbourhoods`, `evictions`, `full_denied`,
//!   `full_allowed`).
//! - **Two neighbourhoods.** A key may live in either of its two neighbourhoods; the
//!   policy applies only when both are full of active keys and no resident key can move
//!   (16-slot table: the two halves). A relocation moves a resident key, with exactly its
//!   state, from its first neighbourhood to its second and is counted (`relocations`);
//!   strict windows never move. At the design load, 0.9, no key is evicted (2^16 slots,
//!   always-active keys, fixed seed).
//! - **Memory stays flat.** RSS (from `/proc/self/statm`) after creating and warming a
//!   table of 2^20 slots, and after pushing 10 M further distinct keys through it
//!   (1 M in debug builds; `RATECORE_RSS_KEYS` overrides), grows by less than 4 MiB.
//!
//! Everything is deterministic: times are injected, keys come from a fixed xorshift
//! sequence, and the hash seed is fixed.

mod model;
mod relocation;
mod support;

use std::collections::HashMap;
use std::sync::Mutex;

use model::CompositeModel;
use ratecore::table::{OwnedTable, NEIGHBOURHOOD};
use ratecore::{Algorithm, Decision, FullPolicy, LimitSpec, Quota, Table, TableConfig, TableStats};
use support::limits::{each_algorithm, spec};
use support::XorShift;

const SECOND: u64 = 1_000_000_000;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;
/// A start time aligned to the hour (windows start there).
const T0: u64 = 100 * HOUR;

/// The memory test measures the whole process: it must not run beside the others.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn table(capacity: u64, limits: &[LimitSpec], policy: FullPolicy) -> OwnedTable {
    let config = TableConfig::new(capacity, limits)
        .unwrap()
        .with_policy(policy)
        .with_seed([0xe71c, 0x7, 0x10, 0x5eed]);
    Table::new(config).unwrap()
}

// ---------------------------------------------------------------------------------------
// Reclaim of at-rest slots is lossless
// ---------------------------------------------------------------------------------------

/// Every algorithm alone (limit 3 per second; GCRA with a burst of 5), and a composite.
fn limit_sets() -> Vec<(&'static str, Vec<LimitSpec>)> {
    let mut sets = each_algorithm(3, SECOND, 4);
    let gcra_burst = LimitSpec {
        algorithm: Algorithm::Gcra,
        quota: Quota::new(3, SECOND).unwrap().with_burst(5).unwrap(),
    };
    sets[0] = ("gcra", vec![gcra_burst]);
    let composite = vec![
        spec(Algorithm::FixedWindow, 2, SECOND / 4),
        spec(Algorithm::SlidingWindowStrict { sub_windows: 8 }, 5, SECOND),
    ];
    sets.push(("composite", composite));
    sets
}

#[test]
fn reclaiming_at_rest_slots_loses_nothing() {
    let _serial = serial();
    const PERIOD: u64 = SECOND; // the longest period of every limit set
    let rounds = if cfg!(debug_assertions) { 150 } else { 600 };
    for (name, limits) in limit_sets() {
        for capacity in [8u64, 16, 32] {
            let table = table(capacity, &limits, FullPolicy::default());
            let mut models: HashMap<u64, CompositeModel> = HashMap::new();
            let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ capacity);
            let mut checked = 0u64;
            // Five keys per slot: keys rarely find their old slot still theirs.
            let pool = 5 * capacity;
            for round in 0..rounds {
                let start = T0 + 2 * PERIOD * round;
                // At most a neighbourhood's worth of distinct keys this round.
                let mut keys: Vec<u64> = Vec::new();
                let distinct = 1 + rng.below(NEIGHBOURHOOD as u64);
                while (keys.len() as u64) < distinct {
                    let k = rng.below(pool);
                    if !keys.contains(&k) {
                        keys.push(k);
                    }
                }
                // Increasing times within the first half period.
                let mut times: Vec<u64> = (0..12).map(|_| start + rng.below(PERIOD / 2)).collect();
                times.sort_unstable();
                for now in times {
                    let k = keys[rng.below(keys.len() as u64) as usize];
                    let model = models
                        .entry(k)
                        .or_insert_with(|| CompositeModel::of_specs(&limits));
                    let capacity_of_first = limits[0].quota.burst();
                    let cost = match rng.below(10) {
                        0 => 0,
                        1 => capacity_of_first + 1,
                        2 => 2,
                        _ => 1,
                    };
                    let key = format!("user-{k}");
                    let mut states = [Decision::EMPTY; 2];
                    let (got, want, call) = match rng.below(4) {
                        0 => (
                            table.peek(key.as_bytes(), now, cost),
                            model.run(now, cost, false),
                            "peek",
                        ),
                        1 => {
                            let got = table.check_each(
                                key.as_bytes(),
                                now,
                                cost,
                                &mut states[..limits.len()],
                            );
                            let want = model.run(now, cost, true);
                            if let (Ok(_), Ok(outcome)) = (&got, &want) {
                                assert_eq!(&states[..limits.len()], &outcome.states[..], "{name} cap {capacity} round {round} key {k} now {now} cost {cost}");
                            }
                            (got, want, "check_each")
                        }
                        _ => (
                            table.check(key.as_bytes(), now, cost),
                            model.run(now, cost, true),
                            "check",
                        ),
                    };
                    match (got, want) {
                        (Ok(d), Ok(outcome)) => assert_eq!(
                            d, outcome.decision,
                            "{name} cap {capacity} round {round}: {call} key {k} now {now} cost {cost}"
                        ),
                        (Err(e), Err(allowed)) => assert!(allowed.contains(&e), "{name}: {e:?} not in {allowed:?}"),
                        (got, want) => panic!("{name} cap {capacity} round {round}: {call} key {k}: table {got:?}, model {want:?}"),
                    }
                    checked += 1;
                }
            }
            let stats = table.stats();
            assert_eq!(
                (
                    stats.evictions,
                    stats.full_neighbourhoods,
                    stats.full_denied,
                    stats.contended
                ),
                (0, 0, 0, 0),
                "{name} cap {capacity}: {stats:?}"
            );
            assert!(
                stats.reclaims > rounds,
                "{name} cap {capacity}: too few reclaims to mean anything: {stats:?}"
            );
            let slots = capacity * limits.len() as u64;
            assert!(stats.occupied <= slots, "{name} cap {capacity}: {stats:?}");
            assert_eq!(
                stats.new_keys,
                stats.occupied + stats.reclaims,
                "{name} cap {capacity}: {stats:?}"
            );
            assert!(checked > 0);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Forced eviction: each policy, each algorithm
// ---------------------------------------------------------------------------------------

/// One limit of 1 per minute for each algorithm: a key with one admission is active,
/// and its time to rest is its `reset_after`.
fn single_limits() -> Vec<(&'static str, LimitSpec)> {
    let sets = each_algorithm(1, MINUTE, 4);
    sets.into_iter()
        .map(|(name, limits)| (name, limits[0]))
        .collect()
}

fn key(i: u64) -> Vec<u8> {
    format!("ip-10.0.0.{i}").into_bytes()
}

/// Whether `i` is tracked: its single admission shows (a peek denies), where an absent
/// key would be fresh (a peek admits).
fn tracked(table: &OwnedTable, i: u64, now: u64) -> bool {
    !table.peek(&key(i), now, 1).unwrap().allowed
}

/// An 8-slot table (one neighbourhood) holding keys `0..8`, admitted one second apart
/// from `T0`, and their models. Returns the table, models and the time after filling.
fn full_table(limit: LimitSpec, policy: FullPolicy) -> (OwnedTable, Vec<CompositeModel>, u64) {
    let table = table(8, &[limit], policy);
    let mut models = Vec::new();
    for i in 0..8u64 {
        let mut model = CompositeModel::of_specs(&[limit]);
        let now = T0 + i * SECOND;
        let d = table.check(&key(i), now, 1).unwrap();
        assert_eq!(d, model.run(now, 1, true).unwrap().decision);
        assert!(d.allowed);
        models.push(model);
    }
    let stats = table.stats();
    assert_eq!(
        (stats.occupied, stats.full_neighbourhoods),
        (8, 0),
        "{stats:?}"
    );
    (table, models, T0 + 8 * SECOND)
}

/// `(full_neighbourhoods, evictions, full_denied, full_allowed, occupied)`: what the full
/// policies count, and the live keys.
/// Asserts that `key(k)`'s check at `now` is a fresh key's first admission under `limit`
/// (`what`: the case, and why).
fn assert_fresh(table: &OwnedTable, limit: LimitSpec, k: u64, now: u64, what: &str) {
    let fresh = CompositeModel::fresh_check(&[limit], now, 1);
    assert_eq!(table.check(&key(k), now, 1).unwrap(), fresh, "{what}");
}

fn full_counts(stats: &TableStats) -> (u64, u64, u64, u64, u64) {
    (
        stats.full_neighbourhoods,
        stats.evictions,
        stats.full_denied,
        stats.full_allowed,
        stats.occupied,
    )
}

/// Nanoseconds until each old key is at rest at `now` (its model's `reset_after`).
fn rest_times(models: &[CompositeModel], now: u64) -> Vec<u64> {
    models
        .iter()
        .map(|m| m.peek_decision(now, 0).reset_after)
        .collect()
}

#[test]
fn evict_closest_to_rest_admits_the_new_key_and_counts_it() {
    let _serial = serial();
    for (name, limit) in single_limits() {
        let (table, models, now) = full_table(limit, FullPolicy::EvictClosestToRest);
        let rest = rest_times(&models, now);
        let soonest = *rest.iter().min().unwrap();
        assert!(soonest > 0, "{name}: every old key must be active");

        let newcomer = 100;
        assert_fresh(&table, limit, newcomer, now, name);
        let stats = table.stats();
        assert_eq!(full_counts(&stats), (1, 1, 0, 0, 8), "{name}: {stats:?}");
        assert!(
            tracked(&table, newcomer, now),
            "{name}: the new key is tracked"
        );

        // Exactly one old key lost its slot, and it was one closest to rest.
        let evicted: Vec<u64> = (0..8).filter(|&i| !tracked(&table, i, now)).collect();
        assert_eq!(evicted.len(), 1, "{name}: evicted {evicted:?}");
        let victim = evicted[0];
        assert_eq!(
            rest[victim as usize], soonest,
            "{name}: victim {victim}, rest times {rest:?}"
        );
        for i in (0..8).filter(|&i| i != victim) {
            let want = models[i as usize].peek_decision(now, 1);
            assert_eq!(
                table.peek(&key(i), now, 1).unwrap(),
                want,
                "{name}: key {i} kept its state"
            );
        }

        // Documented: the evicted key comes back fresh (its model would deny), which
        // evicts again.
        let what = format!("{name}: the evicted key starts fresh");
        assert_fresh(&table, limit, victim, now, &what);
        assert!(!models[victim as usize].peek_decision(now, 1).allowed);
        let stats = table.stats();
        assert_eq!(
            (stats.full_neighbourhoods, stats.evictions, stats.new_keys),
            (2, 2, 10),
            "{name}: {stats:?}"
        );
    }
}

#[test]
fn deny_refuses_until_the_soonest_slot_rests_and_loses_nothing() {
    let _serial = serial();
    for (name, limit) in single_limits() {
        let (table, mut models, now) = full_table(limit, FullPolicy::Deny);
        let soonest = *rest_times(&models, now).iter().min().unwrap();
        assert!(soonest > 1, "{name}");

        let newcomer = 100;
        let denied = table.check(&key(newcomer), now, 1).unwrap();
        let want = Decision {
            allowed: false,
            limit: 1,
            remaining: 0,
            reset_after: soonest,
            retry_after: soonest,
        };
        assert_eq!(denied, want, "{name}");
        let stats = table.stats();
        assert_eq!(full_counts(&stats), (1, 0, 1, 0, 8), "{name}: {stats:?}");

        // One nanosecond early: still full, and the answer counts down exactly.
        let early = table.check(&key(newcomer), now + soonest - 1, 1).unwrap();
        assert_eq!((early.allowed, early.retry_after), (false, 1), "{name}");
        assert_eq!(table.stats().full_denied, 2, "{name}");

        // On time: a slot is at rest and is reclaimed (losslessly) for the new key.
        let on_time = now + soonest;
        assert_fresh(&table, limit, newcomer, on_time, name);
        let stats = table.stats();
        assert_eq!(
            (stats.reclaims, stats.evictions, stats.full_denied),
            (1, 0, 2),
            "{name}: {stats:?}"
        );

        // Nothing was lost: every old key answers as its model, reclaimed or not — except
        // that a key whose at-rest slot was reclaimed may now be refused a slot (the
        // neighbourhood is full again), a denial that loses nothing either.
        for (i, model) in models.iter_mut().enumerate() {
            let got = table.check(&key(i as u64), on_time, 1).unwrap();
            let want = model.run(on_time, 1, true).unwrap().decision;
            assert!(
                got == want || (!got.allowed && want.allowed),
                "{name}: key {i}: table {got:?}, model {want:?}"
            );
        }
    }
}

#[test]
fn allow_admits_untracked_and_counts_it() {
    let _serial = serial();
    for (name, limit) in single_limits() {
        let (table, models, now) = full_table(limit, FullPolicy::Allow);
        let newcomer = 100;
        // Untracked: admitted every time, although its limit is 1.
        for n in 1..=3u64 {
            assert_fresh(&table, limit, newcomer, now, name);
            let stats = table.stats();
            assert_eq!(full_counts(&stats), (n, 0, 0, n, 8), "{name}: {stats:?}");
        }
        for (i, model) in models.iter().enumerate() {
            let want = model.peek_decision(now, 1);
            assert_eq!(
                table.peek(&key(i as u64), now, 1).unwrap(),
                want,
                "{name}: key {i}"
            );
        }
    }
}

#[test]
fn composite_tables_apply_the_policy_per_limit() {
    let _serial = serial();
    let limits = [
        spec(Algorithm::Gcra, 1, MINUTE),
        spec(Algorithm::SlidingWindowStrict { sub_windows: 6 }, 2, HOUR),
    ];
    for policy in [
        FullPolicy::EvictClosestToRest,
        FullPolicy::Deny,
        FullPolicy::Allow,
    ] {
        let table = table(8, &limits, policy);
        for i in 0..8u64 {
            assert!(table.check(&key(i), T0 + i * SECOND, 1).unwrap().allowed);
        }
        let now = T0 + 8 * SECOND;
        let fresh = CompositeModel::of_specs(&limits).run(now, 1, true).unwrap();
        let mut states = [Decision::EMPTY; 2];
        let got = table.check_each(&key(100), now, 1, &mut states).unwrap();
        let stats = table.stats();
        match policy {
            FullPolicy::EvictClosestToRest => {
                assert_eq!(got, fresh.decision);
                assert_eq!(&states[..], &fresh.states[..]);
                // Each limit's slot array is full: each evicts.
                assert_eq!(
                    (stats.full_neighbourhoods, stats.evictions),
                    (2, 2),
                    "{stats:?}"
                );
            }
            FullPolicy::Deny => {
                // The first limit's neighbourhood refuses; nothing is taken anywhere.
                assert!(!got.allowed);
                assert_eq!(got.retry_after, MINUTE - 8 * SECOND);
                assert_eq!(
                    (stats.full_neighbourhoods, stats.full_denied),
                    (1, 1),
                    "{stats:?}"
                );
                assert_eq!(stats.occupied, 16);
            }
            FullPolicy::Allow => {
                assert_eq!(got, fresh.decision);
                assert_eq!(
                    (stats.full_neighbourhoods, stats.full_allowed),
                    (2, 2),
                    "{stats:?}"
                );
                assert_eq!(stats.occupied, 16);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Memory stays flat
// ---------------------------------------------------------------------------------------

/// Resident set size of this process, in bytes.
#[cfg(target_os = "linux")]
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("statm's second field");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap()
}

#[test]
#[cfg(target_os = "linux")]
fn memory_stays_flat_over_millions_of_distinct_keys() {
    let _serial = serial();
    let keys: u64 = std::env::var("RATECORE_RSS_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) {
            1_000_000
        } else {
            10_000_000
        });
    const CAPACITY: u64 = 1 << 20;
    // One admission keeps a key active for 2 s. Time advances by 1 µs per key in even
    // blocks (the table turns over in about 1 s: keys are still active when their slots
    // are needed, so they are evicted) and by 4 µs per key in odd blocks (about 4 s: keys
    // are at rest by then, so their slots are reclaimed).
    let table = table(
        CAPACITY,
        &[spec(Algorithm::Gcra, 1, 2 * SECOND)],
        FullPolicy::default(),
    );
    let key_of = |i: u64| {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&i.to_le_bytes());
        bytes[8..].copy_from_slice(b"distinct");
        bytes
    };
    let mut now = T0;
    let warm_up = CAPACITY;
    for i in 0..warm_up {
        now += 1_000;
        assert!(table.check(&key_of(i), now, 1).unwrap().allowed);
    }
    let block = (keys / 10).max(1);
    let before = rss();
    let mut admitted = 0u64;
    for i in 0..keys {
        now += if (i / block) % 2 == 0 { 1_000 } else { 4_000 };
        admitted += u64::from(table.check(&key_of(warm_up + i), now, 1).unwrap().allowed);
    }
    let after = rss();
    assert_eq!(
        admitted, keys,
        "every new key is admitted (evicting if need be)"
    );
    let stats = table.stats();
    assert_eq!(stats.new_keys, warm_up + keys, "{stats:?}");
    assert!(stats.occupied <= CAPACITY, "{stats:?}");
    assert_eq!(
        stats.new_keys,
        stats.occupied + stats.reclaims + stats.evictions,
        "{stats:?}"
    );
    if keys >= 1_000_000 {
        assert!(stats.evictions > 0 && stats.reclaims > 0, "{stats:?}");
    }
    let growth = after.saturating_sub(before);
    eprintln!(
        "RSS {} KiB before, {} KiB after {keys} distinct keys (growth {} KiB); {stats:?}",
        before / 1024,
        after / 1024,
        growth / 1024
    );
    assert!(
        growth < 4 << 20,
        "RSS grew by {growth} bytes over {keys} distinct keys"
    );
}

// ---------------------------------------------------------------------------------------
// Two neighbourhoods: full means both full; relocation; design load
// ---------------------------------------------------------------------------------------

/// A 16-slot table: a key's two neighbourhoods are the two halves, i.e. the whole table,
/// so 16 active keys all fit (balanced placement) and the 17th meets the policy — no key
/// can move to make room.
#[test]
fn both_neighbourhoods_full_apply_the_policy() {
    let _serial = serial();
    for (name, limit) in single_limits() {
        let table = table(16, &[limit], FullPolicy::Deny);
        for i in 0..16u64 {
            assert!(table.check(&key(i), T0, 1).unwrap().allowed, "{name} {i}");
        }
        let stats = table.stats();
        assert_eq!(
            (stats.occupied, stats.full_neighbourhoods, stats.relocations),
            (16, 0, 0),
            "{name}: {stats:?}"
        );
        let denied = table.check(&key(100), T0 + SECOND, 1).unwrap();
        assert!(!denied.allowed, "{name}");
        // Until the soonest key rests (a minute from its admission; two windows for the
        // approximate window's estimate).
        assert!(denied.retry_after >= MINUTE - SECOND, "{name}: {denied:?}");
        let stats = table.stats();
        assert_eq!(
            (
                stats.full_neighbourhoods,
                stats.full_denied,
                stats.relocations
            ),
            (1, 1, 0),
            "{name}: {stats:?}"
        );
        for i in 0..16u64 {
            assert!(tracked(&table, i, T0 + SECOND), "{name}: key {i} kept");
        }
    }
}

/// Keys of a 32-slot table (seed of [`table`]): `g` new; `k` and 15 fillers as
/// [`relocation::relocation_keys`] describes.
fn relocation_scenario(table: &OwnedTable) -> (Vec<u8>, Vec<u8>, Vec<Vec<u8>>) {
    let g = b"newcomer".to_vec();
    let keys = relocation::relocation_keys(table, &g, "client-", 15);
    (g, keys.k, keys.same)
}

/// A resident key is moved to its second neighbourhood to make room, with exactly its
/// state; the move is counted; no key loses anything. Strict windows never move (their
/// ring belongs to the slot), so there the policy applies.
#[test]
fn relocation_moves_a_key_with_its_exact_state() {
    let _serial = serial();
    for (name, limit) in single_limits() {
        let strict = matches!(limit.algorithm, Algorithm::SlidingWindowStrict { .. });
        let table = table(32, &[limit], FullPolicy::EvictClosestToRest);
        let (g, k, fillers) = relocation_scenario(&table);
        let [k_first, k_second] = table.neighbourhoods_of(&k);
        let mut k_model = CompositeModel::of_specs(&[limit]);
        assert_eq!(
            table.check(&k, T0, 1).unwrap(),
            k_model.run(T0, 1, true).unwrap().decision
        );
        // In its first neighbourhood (at its home offset, the table being empty).
        let k_slot = table.slot_of(&k).unwrap();
        assert!(relocation::within(k_slot, k_first), "{name}: k at {k_slot}");
        for (i, filler) in fillers.iter().enumerate() {
            let now = T0 + (i as u64 + 1) * SECOND;
            assert!(table.check(filler, now, 1).unwrap().allowed, "{name}");
        }
        let now = T0 + 20 * SECOND;
        let fresh = CompositeModel::fresh_check(&[limit], now, 1);
        assert_eq!(table.check(&g, now, 1).unwrap(), fresh, "{name}");
        let stats = table.stats();
        if strict {
            // No move: k (closest to rest) is evicted.
            assert_eq!(
                (stats.relocations, stats.evictions),
                (0, 1),
                "{name}: {stats:?}"
            );
            continue;
        }
        assert_eq!(
            (
                stats.relocations,
                stats.evictions,
                stats.full_neighbourhoods
            ),
            (1, 0, 0),
            "{name}: {stats:?}"
        );
        assert_eq!(
            (stats.occupied, stats.new_keys, stats.reclaims),
            (17, 17, 0),
            "{name}: {stats:?}"
        );
        let moved_to = table.slot_of(&k).unwrap();
        assert!(
            relocation::within(moved_to, k_second),
            "{name}: k at {moved_to}"
        );
        assert_eq!(table.slot_of(&g), Some(k_slot), "{name}: g took k's slot");
        // k's state moved exactly: peeks and the next check agree with its model.
        assert_eq!(
            table.peek(&k, now, 1).unwrap(),
            k_model.peek_decision(now, 1),
            "{name}"
        );
        assert_eq!(
            table.check(&k, now, 1).unwrap(),
            k_model.run(now, 1, true).unwrap().decision,
            "{name}"
        );
        for filler in &fillers {
            assert!(!table.peek(filler, now, 1).unwrap().allowed, "{name}");
        }
    }
}

/// The design load: a table of 2^16 slots filled to 0.9 with distinct, always-active
/// keys (GCRA 1 per hour, fixed seed) — no key meets full neighbourhoods, none is
/// evicted, and every one is still tracked (its next request is denied).
#[test]
fn design_load_of_0_9_evicts_nothing() {
    let _serial = serial();
    const SLOTS: u64 = 1 << 16;
    let keys = SLOTS * 9 / 10;
    let table = table(
        SLOTS,
        &[spec(Algorithm::Gcra, 1, HOUR)],
        FullPolicy::EvictClosestToRest,
    );
    for i in 0..keys {
        assert!(table.check_key(&i, T0, 1).unwrap().allowed);
    }
    let stats = table.stats();
    eprintln!("load 0.9 of {SLOTS} slots: {stats:?}");
    assert_eq!(
        (stats.evictions, stats.full_neighbourhoods, stats.reclaims),
        (0, 0, 0),
        "{stats:?}"
    );
    assert_eq!((stats.occupied, stats.new_keys), (keys, keys), "{stats:?}");
    assert!(
        stats.relocations > 0,
        "the load needs relocations: {stats:?}"
    );
    for i in 0..keys {
        assert!(
            !table.check_key(&i, T0 + SECOND, 1).unwrap().allowed,
            "key {i}"
        );
    }
}
