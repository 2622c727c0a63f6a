//! Keyed tables never allocate on the hot path: `check`, `peek`, `check_each`,
//! `check_undoable` / `undo` and
//! `check_key` on a *full* table — every neighbourhood holds active keys, so new keys take
//! the full-neighbourhood path of each [`FullPolicy`] (evict, deny, admit untracked) —
//! and on existing keys, at rest slots (reclaim) and impossible costs (errors), for
//! single-word, strict-window and composite tables, owned or in a caller-provided region.

use std::hint::black_box;

use ratecore::table::region::RegionTable;
use ratecore::table::TableMemory;
use ratecore::{Algorithm, Decision, FullPolicy, LimitSpec, Table, TableConfig};

use crate::measure;
use crate::support::limits::{each_algorithm, spec};

const SECOND: u64 = 1_000_000_000;
const HOUR: u64 = 3600 * SECOND;
/// Slots per limit: four overlapping neighbourhoods.
const CAPACITY: u64 = 16;

/// The tables under test: every algorithm alone, and a composite mixing a single-word
/// limit with a strict window.
fn limit_sets() -> Vec<(&'static str, Vec<LimitSpec>)> {
    let mut sets = each_algorithm(2, HOUR, 6);
    let composite = vec![
        spec(Algorithm::Gcra, 2, HOUR),
        spec(Algorithm::SlidingWindowStrict { sub_windows: 4 }, 3, HOUR),
    ];
    sets.push(("composite", composite));
    sets
}

const POLICIES: [FullPolicy; 3] = [
    FullPolicy::EvictClosestToRest,
    FullPolicy::Deny,
    FullPolicy::Allow,
];

/// Fills every slot of every limit with an active key (keys `0..`), outside any
/// measured section. Returns how many keys it took.
fn fill<M: TableMemory>(table: &Table<M>, now: u64) -> u64 {
    let slots = CAPACITY * table.config().limits().count() as u64;
    for i in 0..100_000u64 {
        if table.stats().occupied == slots {
            return i;
        }
        let _ = table.check(&i.to_le_bytes(), now + i, 1).unwrap();
    }
    panic!("table never filled: {:?}", table.stats());
}

/// Every entry point, many times, on a full table: new keys (full neighbourhoods), the
/// filled keys (updates), peeks, `check_each`, `check_key`, errors, and finally a time
/// at which everything is at rest (reclaims). Returns the number of admissions.
fn workload<M: TableMemory>(table: &Table<M>, filled: u64, now: u64) -> u64 {
    let mut admitted = 0u64;
    let mut states = [Decision::EMPTY; 3];
    for round in 0..4u64 {
        let t = now + round * SECOND;
        for i in 0..200u64 {
            // New keys: their neighbourhoods are full of active keys.
            let fresh = (1_000_000 + round * 1000 + i).to_le_bytes();
            admitted += u64::from(table.check(&fresh, t, 1).unwrap().allowed);
            admitted += u64::from(table.peek(&fresh, t, 1).unwrap().allowed);
            let each = table.check_each(&fresh, t, 1, &mut states).unwrap();
            admitted += u64::from(each.allowed);
            let keyed = table.check_key(&(round, i, "account"), t, 1).unwrap();
            admitted += u64::from(keyed.allowed);
            // Keys already in the table.
            let old = (i % filled).to_le_bytes();
            admitted += u64::from(table.check(&old, t, 1).unwrap().allowed);
            admitted += u64::from(table.peek(&old, t, 0).unwrap().allowed);
            let each = table.check_each(&old, t, 1, &mut states[..1]).unwrap();
            admitted += u64::from(each.allowed);
            // Undoable checks, their plain words and the undo.
            let (undoable, charge) = table.check_undoable(&old, t, 1, &mut []).unwrap();
            admitted += u64::from(undoable.allowed);
            if let Some(charge) = charge {
                let words = table.charge_to_words(&charge);
                table.undo(table.charge_from_words(&words).unwrap());
            }
            // Impossible costs are errors, not allocations either.
            assert!(black_box(table.check(&old, t, 1 << 40)).is_err());
            assert!(black_box(table.check_key(&i, t, u64::MAX)).is_err());
        }
    }
    // Two hours on, every slot is at rest: new keys reclaim.
    let later = now + 2 * HOUR;
    for i in 0..200u64 {
        let key = (2_000_000 + i).to_le_bytes();
        admitted += u64::from(table.check(&key, later, 1).unwrap().allowed);
    }
    admitted
}

/// Measures `workload` on a freshly filled table and checks the policy paths ran.
fn assert_full_table_does_not_allocate<M: TableMemory>(table: &Table<M>, what: &str) {
    let now = 10 * HOUR;
    let filled = fill(table, now);
    let (admitted, allocations) = measure(|| workload(table, filled, now + SECOND));
    assert_eq!(allocations, 0, "{what}: allocated {allocations} times");
    assert!(admitted > 0, "{what}");
    let stats = table.stats();
    assert!(stats.full_neighbourhoods > 0, "{what}: {stats:?}");
    assert!(stats.reclaims > 0, "{what}: {stats:?}");
    match table.config().policy() {
        FullPolicy::EvictClosestToRest => assert!(stats.evictions > 0, "{what}: {stats:?}"),
        FullPolicy::Deny => assert!(stats.full_denied > 0, "{what}: {stats:?}"),
        FullPolicy::Allow => assert!(stats.full_allowed > 0, "{what}: {stats:?}"),
    }
}

/// Every limit set under every policy: its name and its table's config.
fn full_table_configs() -> Vec<(String, TableConfig)> {
    let mut configs = Vec::new();
    for (name, limits) in limit_sets() {
        for policy in POLICIES {
            let config = TableConfig::new(CAPACITY, &limits).unwrap();
            configs.push((format!("{name} {policy:?}"), config.with_policy(policy)));
        }
    }
    configs
}

#[test]
fn owned_full_tables_never_allocate() {
    for (what, config) in full_table_configs() {
        let table = Table::new(config.with_seed([7, 7, 7, 7])).unwrap();
        assert_full_table_does_not_allocate(&table, &what);
    }
}

/// A 64-byte aligned buffer for regions.
#[repr(C, align(64))]
struct Line([u8; 64]);

#[test]
fn region_full_tables_never_allocate() {
    for (what, config) in full_table_configs() {
        let size = ratecore::table::region::region_size(&config).unwrap();
        let mut buffer: Vec<Line> = (0..size.div_ceil(64)).map(|_| Line([0; 64])).collect();
        let len = buffer.len() * 64;
        // SAFETY: Line is repr(C) of [u8; 64] with no padding, so the buffer is `len`
        // initialised bytes, uniquely borrowed for as long as `bytes` lives.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(buffer.as_mut_ptr().cast::<u8>(), len) };
        let table = RegionTable::init_in(bytes, &config).unwrap();
        assert_full_table_does_not_allocate(&table, &format!("region {what}"));
    }
}
