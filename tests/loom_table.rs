//! Loom model checks of the keyed table's slot protocols: claim, reclaim, eviction, and
//! the strict window's generations.
//!
//! Build and run with the crate's loom cfg, in a target directory of its own:
//!
//! ```text
//! RUSTFLAGS="--cfg ratecore_loom" CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=3 \
//!     cargo test --release --test loom_table
//! ```
//!
//! Under `cfg(ratecore_loom)` a table's 128-bit slots are loom mutexes (`src/sync.rs`:
//! the same linearizable load / compare-exchange as the real instruction), its fences and
//! counters are loom's, and only owned tables ([`Table::new`]) exist. Every model but the
//! relocation races uses an 8-slot table — exactly one neighbourhood (both of a key's
//! neighbourhoods are the whole table) — with a fixed hash seed (loom replays each
//! execution, so hashing must be deterministic), and asserts after every explored
//! interleaving:
//!
//! - **claim race**: two threads create the same new key in an empty table: exactly one
//!   live copy results (`occupied == 1`), and exactly the quota is admitted;
//! - **reclaim race** (single-word and strict): key X's slot is at rest for a new key Y,
//!   while X is updated at the same `now`, which makes it active again. Exactly one of the
//!   two may win the slot (never both: that would lose X's new state), a loser is refused
//!   (policy `Deny`, the rest of the neighbourhood is active), and afterwards X's state
//!   holds exactly X's charges and Y's exactly Y's: no update landed on the other key. For
//!   the strict window this is the generation protocol (charge, fence, re-read the key
//!   slot / claim, fence, re-read the ring): both racers may lose (a spurious denial),
//!   never both win, and a loser's charge is taken back;
//! - **evict race** (`EvictClosestToRest`): the key closest to rest is updated while a
//!   new key evicts it: every key's state afterwards is either exactly its own charges or
//!   fresh (evicted), and the new key's never shows the victim's update.
//!
//! - **relocation races** (32-slot table, two neighbourhoods of 8 per key): new key `g`'s
//!   neighbourhoods are full, so it fits only by moving resident `k` from its first
//!   neighbourhood to its second. (i) `k` is updated meanwhile: `k` keeps exactly its
//!   charges and has one live copy, `g` is admitted fresh; (ii) two threads create `g`
//!   at once, both able to move `k`: one live copy of `g`, one admission for a quota of
//!   1, `k` moved once with its state; (iii) `h` (same neighbourhoods as `g`) reclaims
//!   `k`'s slot at a `now` when `k` is at rest while `g` moves it: exactly one of them
//!   gets the slot, `k` is moved intact or reclaimed (lossless), never duplicated.
//! - **undo race**: a `check_undoable` charge is undone while another thread checks the
//!   same key: the undo never takes back the other thread's charge; the windows end with
//!   exactly the charges kept, GCRA with at most the undone one left in place.
//!
//! The claim races run because a thread that finds its key mid-claim yields to loom while
//! it waits (`sync::backoff_wait`); the strict-window reclaim and evict races guard the
//! fix that makes a stale updater refuse to overwrite a ring cell of a newer generation.
//!
//! Loom regards `SeqCst` loads and read-modify-writes as `AcqRel`, and a slot emulated by
//! a mutex orders more than the hardware CAS does, so these models check the protocols'
//! interleavings (who wins, what is undone), not their fences; the fences' role is argued
//! in `src/table/mod.rs` and exercised by `tests/table_stress.rs` on real hardware.
#![cfg(ratecore_loom)]

#[macro_use]
#[path = "support/loom_models.rs"]
mod loom_models;

#[path = "model/mod.rs"]
mod model;
mod relocation;

use relocation::within;

use loom::sync::Arc;
use loom::thread;

use model::CompositeModel;
use ratecore::table::OwnedTable;
use ratecore::{Algorithm, Decision, FullPolicy, LimitSpec, Quota, Table, TableConfig, TableStats};

const SECOND: u64 = 1_000_000_000;

fn spec(algorithm: Algorithm, limit: u64, period: u64) -> LimitSpec {
    LimitSpec {
        algorithm,
        quota: Quota::new(limit, period).unwrap(),
    }
}

/// A strict window of two sub-windows.
fn strict_spec(limit: u64, period: u64) -> LimitSpec {
    spec(
        Algorithm::SlidingWindowStrict { sub_windows: 2 },
        limit,
        period,
    )
}

fn is_strict(limit: LimitSpec) -> bool {
    matches!(limit.algorithm, Algorithm::SlidingWindowStrict { .. })
}

/// The decision `model` gives after the `(now, cost)` checks in `history`, for a peek.
fn model_peek(limit: LimitSpec, history: &[(u64, u64)], now: u64, cost: u64) -> Decision {
    let mut model = CompositeModel::of_specs(&[limit]);
    for &(t, c) in history {
        model.run(t, c, true).unwrap();
    }
    model.run(now, cost, false).unwrap().decision
}

/// Asserts a peek of `name` at `now` answers as the model of `limit` after `history`.
fn assert_peek(
    table: &OwnedTable,
    limit: LimitSpec,
    name: &[u8],
    history: &[(u64, u64)],
    now: u64,
    context: &str,
) {
    assert_eq!(
        table.peek(name, now, 1).unwrap(),
        model_peek(limit, history, now, 1),
        "{} {context}",
        String::from_utf8_lossy(name)
    );
}

/// A table of `capacity` slots with a fixed seed.
fn seeded_table(capacity: u64, limit: LimitSpec, policy: FullPolicy) -> OwnedTable {
    let config = TableConfig::new(capacity, &[limit])
        .unwrap()
        .with_policy(policy)
        .with_seed([0x10, 0x0f, 0xab, 0x1e]);
    Table::new(config).unwrap()
}

/// An 8-slot table (one neighbourhood) with a fixed seed.
fn table(limit: LimitSpec, policy: FullPolicy) -> OwnedTable {
    seeded_table(8, limit, policy)
}

fn key(name: &str) -> Vec<u8> {
    name.as_bytes().to_vec()
}

/// Checks on another loom thread; the table is shared by `Arc`.
fn spawn_check(
    table: &Arc<OwnedTable>,
    name: &'static str,
    now: u64,
) -> thread::JoinHandle<Decision> {
    let table = Arc::clone(table);
    thread::spawn(move || table.check(&key(name), now, 1).unwrap())
}

// ---------------------------------------------------------------------------------------
// Claim race
// ---------------------------------------------------------------------------------------

/// Two threads create the same new key in an empty table.
fn claim_race(limit: LimitSpec) {
    let table = Arc::new(table(limit, FullPolicy::Deny));
    let other = spawn_check(&table, "new-key", 5 * SECOND);
    let mine = table.check(&key("new-key"), 5 * SECOND, 1).unwrap();
    let theirs = other.join().unwrap();
    // Quota 1: exactly one admission (a strict window may deny both spuriously).
    let strict = is_strict(limit);
    assert!(
        (mine.allowed ^ theirs.allowed) || (strict && !mine.allowed && !theirs.allowed),
        "{mine:?} {theirs:?}"
    );
    let stats = table.stats();
    // Exactly one live copy, created once (a backed-out claim is not a new key).
    assert_eq!((stats.occupied, stats.new_keys), (1, 1), "{stats:?}");
    let admitted = u64::from(mine.allowed) + u64::from(theirs.allowed);
    let history: Vec<(u64, u64)> = (admitted == 1)
        .then_some((5 * SECOND, 1))
        .into_iter()
        .collect();
    assert_peek(&table, limit, &key("new-key"), &history, 5 * SECOND, "");
}

loom_models! {
    claim_race_creates_one_live_copy => claim_race(spec(Algorithm::Gcra, 1, SECOND));
    claim_race_strict_creates_one_live_copy => claim_race(strict_spec(1, SECOND));
}

// ---------------------------------------------------------------------------------------
// Reclaim races
// ---------------------------------------------------------------------------------------

/// Fills the 8-slot table: X charged at 1 s (at rest long before 10 s), seven keys
/// charged at 10 s (active until after 10 s). Returns their names.
const FILLERS: [&str; 7] = ["k1", "k2", "k3", "k4", "k5", "k6", "k7"];

fn fill_with_x_at_rest(table: &OwnedTable) {
    assert!(table.check(&key("x"), SECOND, 1).unwrap().allowed);
    for name in FILLERS {
        assert!(table.check(&key(name), 10 * SECOND, 1).unwrap().allowed);
    }
    assert_eq!(table.stats().occupied, 8);
}

/// X is updated at 10 s (active again) while Y, new, wants a slot at 10 s, when X's slot
/// is at rest unless X's update got there first.
fn reclaim_race(limit: LimitSpec) {
    let x_at = 10 * SECOND;
    let y_at = 10 * SECOND;
    let table = Arc::new(table(limit, FullPolicy::Deny));
    fill_with_x_at_rest(&table);
    let y_thread = spawn_check(&table, "y", y_at);
    let x = table.check(&key("x"), x_at, 1).unwrap();
    let y = y_thread.join().unwrap();

    // Never both: X's slot cannot hold X's new charge and Y at once.
    assert!(!(x.allowed && y.allowed), "x {x:?} y {y:?}");
    if x.allowed {
        assert_eq!(x, CompositeModel::fresh_check(&[limit], x_at, 1));
    }
    if y.allowed {
        assert_eq!(y, CompositeModel::fresh_check(&[limit], y_at, 1));
    }
    // Each key's state holds exactly its own admitted charges (or none, absent).
    let x_history: Vec<(u64, u64)> = [(SECOND, 1)]
        .into_iter()
        .chain(x.allowed.then_some((x_at, 1)))
        .collect();
    let y_history: Vec<(u64, u64)> = y.allowed.then_some((y_at, 1)).into_iter().collect();
    let race = format!("x {x:?} y {y:?}");
    assert_peek(&table, limit, &key("x"), &x_history, y_at, &race);
    assert_peek(&table, limit, &key("y"), &y_history, y_at, &race);
    for name in FILLERS {
        assert_peek(&table, limit, &key(name), &[(y_at, 1)], y_at, "");
    }
    let stats = table.stats();
    assert_eq!(stats.occupied, 8, "{stats:?}");
    // Y's reclaim is counted; more reclaims are legitimate: a strict key's slot is at rest
    // (an empty ring) between its claim and its first charge, so a retrying racer may
    // take it back, after which the claimant retries.
    assert!(stats.reclaims >= u64::from(y.allowed), "{stats:?}");
    assert_eq!((stats.evictions, stats.full_allowed), (0, 0), "{stats:?}");
}

loom_models! {
    reclaim_race_single_word => reclaim_race(spec(Algorithm::Gcra, 2, SECOND));
    reclaim_race_single_word_fixed_window => reclaim_race(spec(Algorithm::FixedWindow, 2, SECOND));
    reclaim_race_strict_generations => reclaim_race(strict_spec(2, SECOND));
}

// ---------------------------------------------------------------------------------------
// Evict race
// ---------------------------------------------------------------------------------------

/// Eight active keys; `v` (the closest to rest) is updated while `n`, new, evicts.
fn evict_race(limit: LimitSpec) {
    let table = Arc::new(table(limit, FullPolicy::EvictClosestToRest));
    // v at 1 s is closest to rest; the others at 2 s.
    assert!(table.check(&key("v"), SECOND, 1).unwrap().allowed);
    for name in FILLERS {
        assert!(table.check(&key(name), 2 * SECOND, 1).unwrap().allowed);
    }
    let now = 3 * SECOND;
    let n_thread = spawn_check(&table, "n", now);
    let v = table.check(&key("v"), now, 1).unwrap();
    let n = n_thread.join().unwrap();

    let fresh = CompositeModel::fresh_check(&[limit], now, 1);
    // Admitted fresh; a strict window may also deny spuriously under contention.
    let strict = is_strict(limit);
    assert!(n == fresh || (strict && !n.allowed), "n {n:?}");
    let mut continuing = CompositeModel::of_specs(&[limit]);
    continuing.run(SECOND, 1, true).unwrap();
    let v_continuing = continuing.run(now, 1, true).unwrap().decision;
    // Admitted on its own state, or fresh after losing its slot; a strict window may
    // also deny spuriously under contention (then v charged nothing).
    assert!(
        v == v_continuing || v == fresh || (strict && !v.allowed),
        "v {v:?}"
    );

    // Every key holds exactly its own charges, or nothing (evicted).
    let v_history: Vec<(u64, u64)> = if !v.allowed {
        vec![(SECOND, 1)]
    } else if v == v_continuing {
        vec![(SECOND, 1), (now, 1)]
    } else {
        vec![(now, 1)]
    };
    let legal = |name: &str, history: &[(u64, u64)]| {
        let got = table.peek(&key(name), now, 1).unwrap();
        let own = model_peek(limit, history, now, 1);
        let empty = model_peek(limit, &[], now, 1);
        assert!(
            got == own || got == empty,
            "{name}: {got:?}, own {own:?}, fresh {empty:?}; v {v:?} n {n:?}"
        );
        got == own
    };
    let mut live = 0;
    let n_history: Vec<(u64, u64)> = n.allowed.then_some((now, 1)).into_iter().collect();
    let n_live = legal("n", &n_history);
    live += u32::from(n_live);
    live += u32::from(legal("v", &v_history));
    for name in FILLERS {
        live += u32::from(legal(name, &[(2 * SECOND, 1)]));
    }
    let stats = table.stats();
    assert_eq!(stats.occupied, 8, "{stats:?}");
    assert!(live >= 7, "{live} keys hold their state: {stats:?}");
    assert!((1..=2).contains(&stats.evictions), "{stats:?}");
    assert_eq!(stats.full_neighbourhoods, stats.evictions, "{stats:?}");
    // n was admitted: its state may only be gone if v, retrying, evicted it in turn.
    assert!(
        n_live || stats.evictions == 2,
        "n's admission was lost without an eviction: v {v:?}, {stats:?}"
    );
    if !strict {
        // A single-word key's slot holds its charged state from its claim on: never at
        // rest here.
        assert_eq!(stats.reclaims, 0, "{stats:?}");
    }
}

loom_models! {
    evict_race_single_word => evict_race(spec(Algorithm::Gcra, 2, 10 * SECOND));
    evict_race_strict => evict_race(strict_spec(2, 10 * SECOND));
}

// ---------------------------------------------------------------------------------------
// Relocation races
// ---------------------------------------------------------------------------------------

/// Keys for the relocation models in a 32-slot table: `g` (new) and `h` (spare) have the
/// same two neighbourhoods A and B, which the setup fills with `k` — at A's first slot,
/// A being `k`'s *first* neighbourhood, its second disjoint from A and B — and 15
/// fillers with the neighbourhoods of `g`. So `g` (or `h`) fits only by moving `k`.
struct Relocation {
    g: String,
    h: String,
    k: String,
    fillers: Vec<String>,
}

const RELOCATION_CAPACITY: u64 = 32;

/// Found once (hashing only, no atomics) and reused by every loom execution.
static RELOCATION_KEYS: std::sync::OnceLock<Relocation> = std::sync::OnceLock::new();

fn relocation_keys(table: &OwnedTable) -> &'static Relocation {
    RELOCATION_KEYS.get_or_init(|| {
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("ASCII key names");
        let g = "g".to_string();
        let mut keys = relocation::relocation_keys(table, g.as_bytes(), "key-", 16);
        let h = text(keys.same.pop().expect("16 keys"));
        Relocation {
            g,
            h,
            k: text(keys.k),
            fillers: keys.same.into_iter().map(text).collect(),
        }
    })
}

/// A 32-slot table set up as [`relocation_keys`] describes: `k` charged once at `k_at`,
/// every filler once at `fill_at`.
fn relocation_table(
    limit: LimitSpec,
    policy: FullPolicy,
    k_at: u64,
    fill_at: u64,
) -> (Arc<OwnedTable>, &'static Relocation) {
    let table = seeded_table(RELOCATION_CAPACITY, limit, policy);
    let keys = relocation_keys(&table);
    let [a, _] = table.neighbourhoods_of(keys.g.as_bytes());
    assert!(table.check(keys.k.as_bytes(), k_at, 1).unwrap().allowed);
    // In g's first neighbourhood (at k's home offset, the table being empty).
    assert!(table
        .slot_of(keys.k.as_bytes())
        .is_some_and(|s| within(s, a)));
    for name in &keys.fillers {
        assert!(table.check(name.as_bytes(), fill_at, 1).unwrap().allowed);
    }
    let stats = table.stats();
    assert_eq!((stats.occupied, stats.relocations), (16, 0), "{stats:?}");
    (Arc::new(table), keys)
}

/// After a relocation race in which `g` got a slot: 17 live keys, created once each,
/// `k` moved once, nothing evicted and no neighbourhood found full. `context` ends the
/// failure message.
fn assert_moved_once(stats: &TableStats, context: &str) {
    assert_eq!(
        (stats.occupied, stats.relocations, stats.new_keys),
        (17, 1, 17),
        "{stats:?} {context}"
    );
    assert_eq!(
        (stats.evictions, stats.full_neighbourhoods),
        (0, 0),
        "{stats:?} {context}"
    );
}

fn spawn_check_owned(
    table: &Arc<OwnedTable>,
    name: &str,
    now: u64,
) -> thread::JoinHandle<Decision> {
    let table = Arc::clone(table);
    let name = name.to_string();
    thread::spawn(move || table.check(name.as_bytes(), now, 1).unwrap())
}

/// `g` checked on another thread while `name` is checked on this one, both at `now`:
/// the other thread's decision, then this one's.
fn check_against_g(
    table: &Arc<OwnedTable>,
    keys: &Relocation,
    name: &str,
    now: u64,
) -> (Decision, Decision) {
    let other = spawn_check_owned(table, &keys.g, now);
    let here = table.check(name.as_bytes(), now, 1).unwrap();
    (other.join().unwrap(), here)
}

/// `loom::model` with room for the setup: filling 16 slots of a 32-slot table is more
/// than loom's default 1,000 branch points, although it runs on one thread.
fn relocation_model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.max_branches = 20_000;
    builder.check(f);
}

/// (i) `g`'s check moves `k` while `k` itself is checked: `k` keeps exactly its charges
/// (the state travels with it; an update racing the freeze retries on the moved slot),
/// there is one live copy of it, and `g` gets the freed slot.
fn relocation_vs_update(limit: LimitSpec) {
    let now = 3 * SECOND;
    let (table, keys) = relocation_table(limit, FullPolicy::Deny, SECOND, 2 * SECOND);
    let (g, k) = check_against_g(&table, keys, &keys.k, now);

    let mut k_model = CompositeModel::of_specs(&[limit]);
    k_model.run(SECOND, 1, true).unwrap();
    assert_eq!(
        k,
        k_model.run(now, 1, true).unwrap().decision,
        "k lost state"
    );
    assert_eq!(g, CompositeModel::fresh_check(&[limit], now, 1));
    let k_history = [(SECOND, 1), (now, 1)];
    assert_peek(&table, limit, keys.k.as_bytes(), &k_history, now, "");
    assert_peek(&table, limit, keys.g.as_bytes(), &[(now, 1)], now, "");
    for name in &keys.fillers {
        assert_peek(&table, limit, name.as_bytes(), &[(2 * SECOND, 1)], now, "");
    }
    // k now lives in its second neighbourhood, once.
    let [_, k_second] = table.neighbourhoods_of(keys.k.as_bytes());
    let k_slot = table.slot_of(keys.k.as_bytes()).unwrap();
    assert!(within(k_slot, k_second), "k at {k_slot}");
    let stats = table.stats();
    assert_moved_once(&stats, "");
    assert_eq!(stats.reclaims, 0, "{stats:?}");
}

#[test]
fn relocation_races_an_update_of_the_moved_key() {
    relocation_model(|| relocation_vs_update(spec(Algorithm::Gcra, 3, 10 * SECOND)));
}

/// (ii) Two threads create the same new key `g`, whose neighbourhoods are full: each may
/// move `k`; exactly one copy of `g` results, holding every admitted charge, and `k` is
/// moved once with its state.
fn relocation_vs_claim(limit: LimitSpec) {
    let now = 3 * SECOND;
    let (table, keys) = relocation_table(limit, FullPolicy::Deny, SECOND, 2 * SECOND);
    let (theirs, mine) = check_against_g(&table, keys, &keys.g, now);

    // Quota 1: exactly one admission.
    assert!(mine.allowed ^ theirs.allowed, "{mine:?} {theirs:?}");
    assert_peek(&table, limit, keys.g.as_bytes(), &[(now, 1)], now, "");
    assert_peek(&table, limit, keys.k.as_bytes(), &[(SECOND, 1)], now, "");
    let stats = table.stats();
    assert_moved_once(&stats, &format!("mine {mine:?} theirs {theirs:?}"));
}

#[test]
fn relocation_races_a_claim_of_the_same_new_key() {
    relocation_model(|| relocation_vs_claim(spec(Algorithm::Gcra, 1, 10 * SECOND)));
}

/// (iii) `g` (at 10.5 s, when every key is active) moves `k` while `h` (at 11.2 s, when
/// `k` is at rest and the fillers are not) reclaims `k`'s slot. (The two `now`s are
/// closer than `STALE_CLAIM_NANOS`: further apart, `h` rightly takes a move's claims
/// over as abandoned.) Exactly one of them gets the
/// slot; `k` is either moved with its state or reclaimed (lossless at rest), never both
/// and never duplicated; the loser is refused (policy `Deny`).
fn relocation_vs_reclaim(limit: LimitSpec) {
    let (g_at, h_at) = (10 * SECOND + SECOND / 2, 11 * SECOND + SECOND / 5);
    let (table, keys) = relocation_table(limit, FullPolicy::Deny, SECOND, 5 * SECOND);
    let h_thread = spawn_check_owned(&table, &keys.h, h_at);
    let g = table.check(keys.g.as_bytes(), g_at, 1).unwrap();
    let h = h_thread.join().unwrap();

    assert!(g.allowed ^ h.allowed, "g {g:?} h {h:?}");
    let stats = table.stats();
    let k_slot = table.slot_of(keys.k.as_bytes());
    if g.allowed {
        assert_eq!(g, CompositeModel::fresh_check(&[limit], g_at, 1));
        let [_, k_second] = table.neighbourhoods_of(keys.k.as_bytes());
        assert!(
            k_slot.is_some_and(|s| within(s, k_second)),
            "k at {k_slot:?}"
        );
        assert_eq!((stats.relocations, stats.occupied), (1, 17), "{stats:?}");
    } else {
        assert_eq!(h, CompositeModel::fresh_check(&[limit], h_at, 1));
        // k was reclaimed at rest; a move of it may have been undone.
        assert_eq!(k_slot, None, "{stats:?}");
        assert_eq!((stats.relocations, stats.occupied), (0, 16), "{stats:?}");
        assert!(stats.reclaims >= 1, "{stats:?}");
    }
    // Whatever happened to k, it answers as its (at-rest) model at h's time.
    assert_peek(&table, limit, keys.k.as_bytes(), &[(SECOND, 1)], h_at, "");
    for name in &keys.fillers {
        assert_peek(&table, limit, name.as_bytes(), &[(5 * SECOND, 1)], g_at, "");
    }
    assert_eq!(
        (
            stats.evictions,
            stats.full_neighbourhoods,
            stats.full_denied,
            stats.stale_claims
        ),
        (0, 1, 1, 0),
        "{stats:?}"
    );
    assert_eq!(stats.new_keys, stats.occupied + stats.reclaims, "{stats:?}");
}

#[test]
fn relocation_races_a_reclaim_of_the_source() {
    // 1 per 10 s: k (charged at 1 s) rests at 11 s, the fillers (5 s) at 15 s.
    relocation_model(|| relocation_vs_reclaim(spec(Algorithm::Gcra, 1, 10 * SECOND)));
}

// ---------------------------------------------------------------------------------------
// Strict reclaim with room elsewhere
// ---------------------------------------------------------------------------------------

/// A strict key `k` at rest (charged at 1 s) is checked at 10 s while `g`, new, whose two
/// neighbourhoods are full (k and 15 active fillers), reclaims k's slot. Unlike the
/// 8-slot `reclaim_race`, k's *second* neighbourhood is empty, so k can claim a new slot
/// after losing its old one. The reclaimer gives the slot back when it finds k's ring
/// charged; k must not be left live in two slots (its charges split between them): a
/// second check of k would then land on the stale copy.
fn strict_reclaim_with_room(limit: LimitSpec) {
    let (table, keys) = relocation_table(limit, FullPolicy::Deny, SECOND, 10 * SECOND);
    let at = 10 * SECOND;
    let g_thread = spawn_check_owned(&table, &keys.g, at);
    // Two checks in a row: the second would land on a stale copy if the first left one.
    let k = table.check(keys.k.as_bytes(), at, 1).unwrap();
    let k2 = table.check(keys.k.as_bytes(), at, 1).unwrap();
    let g = g_thread.join().unwrap();
    assert!(k.allowed && k2.allowed, "k {k:?} {k2:?} g {g:?}");
    // One live copy each: 15 fillers, k, and g if it was admitted.
    let stats = table.stats();
    assert_eq!(
        stats.occupied,
        16 + u64::from(g.allowed),
        "k {k:?} g {g:?} {stats:?}"
    );
    let k_history = [(SECOND, 1), (at, 1), (at, 1)];
    let race = format!("k {k:?} {k2:?} g {g:?}");
    assert_peek(&table, limit, keys.k.as_bytes(), &k_history, at, &race);
    // The limit (2) is reached on k's one state.
    assert!(!table.check(keys.k.as_bytes(), at, 1).unwrap().allowed);
}

#[test]
fn strict_reclaim_never_leaves_two_copies() {
    // The duplicate this guards against needs 4 preemptions (k charges; g freezes and
    // reads the ring; k finishes and checks again; g gives back), one more than CI's
    // default bound, so this model sets its own.
    let mut builder = loom::model::Builder::new();
    builder.max_branches = 20_000;
    builder.preemption_bound = Some(4);
    builder.check(|| strict_reclaim_with_room(strict_spec(2, SECOND)));
}

// ---------------------------------------------------------------------------------------
// Undo race
// ---------------------------------------------------------------------------------------

/// A charge made by `check_undoable` is undone while another thread checks the same key
/// at the same `now` (limit 3, the key charged once before). The undo never gives back
/// the other thread's charge (no over-admission): afterwards the key holds at least the
/// first charge and the other thread's, and, for the counting algorithms (windows, whose
/// undo subtracts what is left of its own charge), exactly those. GCRA gives back only an
/// untouched charge, so a charge the other thread stacked on may stay (a spurious denial
/// later, never an extra admission).
fn undo_race(limit: LimitSpec) {
    let table = Arc::new(table(limit, FullPolicy::Deny));
    let now = 5 * SECOND;
    assert!(table.check(&key("k"), now, 1).unwrap().allowed);
    let other = spawn_check(&table, "k", now);
    let (mine, charge) = table.check_undoable(&key("k"), now, 1, &mut []).unwrap();
    assert_eq!(charge.is_some(), mine.allowed, "{mine:?}");
    if let Some(charge) = charge {
        table.undo(charge);
    }
    let theirs = other.join().unwrap();
    // Limit 3 with one charge before: both later checks fit, so neither may be denied
    // (the strict window may deny spuriously under contention, which consumes nothing).
    let strict = is_strict(limit);
    assert!(
        strict || (mine.allowed && theirs.allowed),
        "{mine:?} {theirs:?}"
    );
    let kept = 1 + u64::from(theirs.allowed);
    let used = 3 - table.peek(&key("k"), now, 0).unwrap().remaining;
    if matches!(limit.algorithm, Algorithm::Gcra) {
        assert!(
            used == kept || (mine.allowed && used == kept + 1),
            "used {used}, kept {kept}: {mine:?} {theirs:?}"
        );
    } else {
        assert_eq!(used, kept, "{mine:?} {theirs:?}");
    }
}

loom_models! {
    undo_race_gcra => undo_race(spec(Algorithm::Gcra, 3, SECOND));
    undo_race_fixed_window => undo_race(spec(Algorithm::FixedWindow, 3, SECOND));
    undo_race_approximate_window => undo_race(spec(Algorithm::SlidingWindowApprox, 3, SECOND));
    undo_race_strict_window => undo_race(strict_spec(3, SECOND));
}
