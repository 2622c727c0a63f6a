//! Multi-threaded stress tests of keyed tables. Deterministic in what they assert: time is
//! injected (a shared atomic clock or a frozen `now`), and every assertion holds for
//! every interleaving.
//!
//! - **Churn around a watched key.** Churn threads push thousands of short-lived keys
//!   (each used a few times, sometimes revisited) through a small table (8 slots: one
//!   neighbourhood; or 64) on an advancing shared clock, forcing reclaims and, by policy,
//!   evictions, refusals or untracked admissions, while other threads hammer one watched
//!   key. The watched key's admissions must be exactly its quota (GCRA burst 1000; the
//!   watched key's admissions happen within less than one emission interval, so nothing
//!   replenishes): no churn may ever touch its state. Two variants: the watched key's
//!   requests use the shared clock too (quota 1000 per 4000 s, clock step 1 µs: churn
//!   keys never come to rest, slots change hands by policy only); or the watched key's
//!   `now` is frozen far ahead of the churn clock (quota 1000 per 10 s, churn clock step
//!   5 ms: churn keys come to rest after a few steps, so their slots are reclaimed all
//!   the time, while from the churn's point of view the watched key stays active for
//!   days). The watched key is created, with half its burst used, before the churn
//!   starts (under `Deny` it could otherwise be refused a slot forever, and a key with a
//!   single admission may legitimately be closer to rest than a busy churn key).
//!   Every churn decision must equal its key's sequential model (`tests/model/`), or the
//!   fresh decision (the key lost its slot: eviction, untracked admission, or a reclaim
//!   judged at a later `now` — documented), or a full-neighbourhood refusal under
//!   `Deny`; an update landing on another key's state would show as a decision that is
//!   none of these. The watched key is never a victim: its state is far from rest, and
//!   at most 4 churn claims are in flight, so a victim closer to rest always exists.
//!   (GCRA only: with window algorithms an exhausted key's time to rest is that of any
//!   key admitted at the same time or earlier — its last admission's release — so under
//!   `EvictClosestToRest` an exhausted watched key is a legitimate victim.)
//! - **Racing creation, frozen clock.** Threads walk the same many keys in the same order,
//!   so they race to create each new key. Per key the admissions must equal the limit
//!   exactly for single-word algorithms and composites (their binding limit first, so no
//!   reservation is ever cancelled) — unless the stats count a documented `contended`
//!   denial (2^16 lost races in one check) — and never exceed it for the strict window
//!   (which may deny spuriously under contention); each key's final state equals its
//!   model, and the stats show one slot per key and limit (no duplicate was ever
//!   created).
//!
//! Sizes are scaled down in debug builds; `cargo test --release --test table_stress`
//! runs them in full.

mod model;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Barrier;

use model::CompositeModel;
use ratecore::table::OwnedTable;
use ratecore::{Algorithm, FullPolicy, LimitSpec, Quota, Table, TableConfig};

const MS: u64 = 1_000_000;
const SECOND: u64 = 1_000 * MS;
const MINUTE: u64 = 60 * SECOND;
const T0: u64 = 1_000 * MINUTE;

const RELEASE: bool = !cfg!(debug_assertions);

fn spec(algorithm: Algorithm, quota: Quota) -> LimitSpec {
    LimitSpec { algorithm, quota }
}

// ---------------------------------------------------------------------------------------
// Churn around a watched key
// ---------------------------------------------------------------------------------------

/// Churning threads (at most 4 claims in flight: the watched key is never the only
/// live slot of a full neighbourhood).
const CHURNERS: usize = 4;
/// Threads hammering the watched key.
const WATCHERS: usize = 2;
/// The watched key's burst.
const WATCHED_BURST: u64 = 1000;

/// How the watched key's requests get their `now`.
#[derive(Clone, Copy, Debug)]
enum WatchedClock {
    /// The shared clock, like everybody (quota 1000 per 4000 s).
    Shared,
    /// Frozen at [`AHEAD`], far beyond the churn clock (quota 1000 per 10 s, so churn
    /// keys rest within milliseconds).
    Ahead,
}

/// The watched key's `now` in [`WatchedClock::Ahead`]: a million seconds on.
const AHEAD: u64 = T0 + 1_000_000 * SECOND;

impl WatchedClock {
    /// The quota period (burst [`WATCHED_BURST`]) and the churn clock step.
    const fn period_and_step(self) -> (u64, u64) {
        match self {
            Self::Shared => (4000 * SECOND, 1_000),
            Self::Ahead => (10 * SECOND, 5 * MS),
        }
    }

    fn now(self, clock: &AtomicU64) -> u64 {
        match self {
            Self::Shared => clock.load(Ordering::SeqCst),
            Self::Ahead => AHEAD,
        }
    }
}

/// What churn threads observed that the table's stats must account for.
#[derive(Default)]
struct Observed {
    /// Decisions equal to the fresh decision where the key's model differed.
    resets: AtomicU64,
    /// Full-neighbourhood refusals (`Deny`).
    refusals: AtomicU64,
    /// Churn requests made.
    requests: AtomicU64,
}

/// One churn thread: its own keys, each used 1-4 times (cost 1-3), sometimes revisited,
/// every decision checked against the key's model.
fn churn(
    table: &OwnedTable,
    limits: &[LimitSpec],
    clock: &AtomicU64,
    step: u64,
    thread: usize,
    requests: u64,
    observed: &Observed,
) {
    let mut recent: VecDeque<(u64, CompositeModel)> = VecDeque::new();
    let mut rng = 0x2545_f491_4f6c_dd1d_u64 ^ (thread as u64 + 1).wrapping_mul(0x9e37_79b9);
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut key_counter = 0u64;
    let mut done = 0u64;
    while done < requests {
        // A new key (3 in 4) or one of this thread's recent keys.
        let (id, mut model) = if recent.is_empty() || next() % 4 != 0 {
            key_counter += 1;
            (key_counter, CompositeModel::of_specs(limits))
        } else {
            let at = (next() % recent.len() as u64) as usize;
            recent.remove(at).unwrap()
        };
        let key = format!("churn-{thread}-{id}");
        for _ in 0..1 + next() % 4 {
            let cost = 1 + next() % 3;
            let now = clock.fetch_add(step, Ordering::SeqCst) + step;
            let got = table.check(key.as_bytes(), now, cost).unwrap();
            let expected = model.clone().run(now, cost, true).unwrap().decision;
            let mut fresh_model = CompositeModel::of_specs(limits);
            let fresh = fresh_model.run(now, cost, true).unwrap().decision;
            if got == expected {
                model.run(now, cost, true).unwrap();
            } else if got == fresh {
                observed.resets.fetch_add(1, Ordering::Relaxed);
                model = fresh_model;
            } else if !got.allowed && got.remaining == 0 && got.retry_after == got.reset_after {
                // A full neighbourhood refused the key (Deny): nothing consumed.
                observed.refusals.fetch_add(1, Ordering::Relaxed);
            } else {
                panic!(
                    "churn key {key} at {now} cost {cost}: table {got:?}, model {expected:?}, fresh {fresh:?}"
                );
            }
            done += 1;
        }
        recent.push_back((id, model));
        if recent.len() > 16 {
            recent.pop_front();
        }
    }
    observed.requests.fetch_add(done, Ordering::Relaxed);
}

fn watched_key_run(policy: FullPolicy, capacity: u64, mode: WatchedClock) {
    let (period, step) = mode.period_and_step();
    let limits = [spec(
        Algorithm::Gcra,
        Quota::new(WATCHED_BURST, period).unwrap(),
    )];
    let config = TableConfig::new(capacity, &limits)
        .unwrap()
        .with_policy(policy)
        .with_seed([3, 1, 4, 1]);
    let table = Table::new(config).unwrap();
    let requests: u64 = if RELEASE { 250_000 } else { 15_000 };
    let span = CHURNERS as u64 * requests * step;
    match mode {
        // All watched requests lie within the churn span: less than one emission interval.
        WatchedClock::Shared => assert!(span < period / WATCHED_BURST),
        // The churn never reaches the watched key's moment.
        WatchedClock::Ahead => assert!(T0 + span + period < AHEAD),
    }
    let clock = AtomicU64::new(T0);
    // The watched key exists, with half its burst used, before the churn starts: under
    // `Deny` it could otherwise be refused a slot forever, and with a single admission its
    // state would be closer to rest than busy churn keys' (a legitimate eviction victim).
    for _ in 0..WATCHED_BURST / 2 {
        assert!(
            table
                .check(b"watched", mode.now(&clock), 1)
                .unwrap()
                .allowed
        );
    }
    let churning = AtomicBool::new(true);
    let watched_admitted = AtomicU64::new(0);
    let observed = Observed::default();
    let start = Barrier::new(CHURNERS + WATCHERS);
    std::thread::scope(|scope| {
        for thread in 0..CHURNERS {
            let (table, clock, observed, start, churning) =
                (&table, &clock, &observed, &start, &churning);
            scope.spawn(move || {
                start.wait();
                churn(table, &limits, clock, step, thread, requests, observed);
                churning.store(false, Ordering::SeqCst);
            });
        }
        for _ in 0..WATCHERS {
            let (table, clock, start, churning, watched_admitted) =
                (&table, &clock, &start, &churning, &watched_admitted);
            scope.spawn(move || {
                start.wait();
                let mut attempts = 0u64;
                let mut admitted = 0u64;
                // Hammer while churn goes on, and at least twice the burst.
                while churning.load(Ordering::SeqCst) || attempts < 2 * WATCHED_BURST {
                    let now = mode.now(clock);
                    let d = table.check(b"watched", now, 1).unwrap();
                    admitted += u64::from(d.allowed);
                    attempts += 1;
                    if attempts % 64 == 0 {
                        std::thread::yield_now();
                    }
                }
                watched_admitted.fetch_add(admitted, Ordering::SeqCst);
            });
        }
    });
    let stats = table.stats();
    let what = format!("{policy:?}, capacity {capacity}, watched clock {mode:?}: {stats:?}");
    assert_eq!(
        WATCHED_BURST / 2 + watched_admitted.load(Ordering::SeqCst),
        WATCHED_BURST,
        "watched key admissions, {what}"
    );
    // The watched key still holds exactly its own state.
    let d = table.peek(b"watched", mode.now(&clock), 1).unwrap();
    assert!(!d.allowed && d.remaining == 0, "watched key {d:?}, {what}");
    let resets = observed.resets.load(Ordering::SeqCst);
    let refusals = observed.refusals.load(Ordering::SeqCst);
    assert!(
        resets <= stats.evictions + stats.reclaims + stats.full_allowed,
        "{resets} churn keys came back fresh without a slot changing hands, {what}"
    );
    assert!(refusals <= stats.full_denied, "{refusals} refusals, {what}");
    assert!(stats.occupied <= capacity, "{what}");
    assert_eq!(stats.contended, 0, "{what}");
    // The churn did churn: with the shared clock no churn key ever rests, so slots change
    // hands by policy only; ahead, churn keys rest after a few steps and are reclaimed.
    match mode {
        WatchedClock::Shared => {
            assert!(stats.full_neighbourhoods > 0, "{what}");
            match policy {
                FullPolicy::EvictClosestToRest => assert!(stats.evictions > 0, "{what}"),
                FullPolicy::Deny => assert!(stats.full_denied > 0, "{what}"),
                FullPolicy::Allow => assert!(stats.full_allowed > 0, "{what}"),
            }
        }
        WatchedClock::Ahead => assert!(stats.reclaims > requests, "{what}"),
    }
    eprintln!(
        "{what}; churn requests {}, resets {resets}, refusals {refusals}",
        observed.requests.load(Ordering::SeqCst)
    );
}

const POLICIES: [FullPolicy; 3] = [
    FullPolicy::EvictClosestToRest,
    FullPolicy::Deny,
    FullPolicy::Allow,
];

#[test]
fn watched_key_stays_exact_while_keys_churn_shared_clock() {
    for policy in POLICIES {
        for capacity in [8, 64] {
            watched_key_run(policy, capacity, WatchedClock::Shared);
        }
    }
}

#[test]
fn watched_key_stays_exact_while_keys_churn_and_rest() {
    for policy in POLICIES {
        for capacity in [8, 64] {
            watched_key_run(policy, capacity, WatchedClock::Ahead);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Racing creation of many keys, frozen clock
// ---------------------------------------------------------------------------------------

/// Threads racing on the same keys.
const RACERS: usize = 4;

fn racing_creation(name: &str, limits: &[LimitSpec], exact: bool) {
    let keys: usize = if RELEASE { 8192 } else { 1024 };
    // 16 slots per key: no neighbourhood ever fills (checked below via the stats).
    let config = TableConfig::new(16 * keys as u64, limits)
        .unwrap()
        .with_seed([2, 7, 1, 8]);
    let table = Table::new(config).unwrap();
    let now = T0;
    let mut model = CompositeModel::of_specs(limits);
    let mut quota = 0u64;
    while model.run(now, 1, true).unwrap().decision.allowed {
        quota += 1;
    }
    let attempts = quota + 1;
    let names: Vec<Vec<u8>> = (0..keys)
        .map(|k| format!("acct-{k}").into_bytes())
        .collect();
    let start = Barrier::new(RACERS);
    let per_thread: Vec<Vec<u64>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..RACERS)
            .map(|_| {
                let (table, names, start) = (&table, &names, &start);
                scope.spawn(move || {
                    start.wait();
                    let mut admitted = vec![0u64; names.len()];
                    // Everybody walks the keys in the same order: each new key is
                    // created by several threads at once.
                    for (k, key) in names.iter().enumerate() {
                        for _ in 0..attempts {
                            admitted[k] += u64::from(table.check(key, now, 1).unwrap().allowed);
                        }
                    }
                    admitted
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let stats = table.stats();
    // A check that keeps losing races for 2^16 attempts gives up with a `contended`
    // denial (documented, counted): only then may a single-word key fall short.
    let exact = exact && stats.contended == 0;
    let mut short = 0;
    for (k, key) in names.iter().enumerate() {
        let total: u64 = per_thread.iter().map(|t| t[k]).sum();
        assert!(
            total <= quota,
            "{name}: key {k} admitted {total} > {quota}: {stats:?}"
        );
        if exact {
            assert_eq!(total, quota, "{name}: key {k}: {stats:?}");
            let d = table.peek(key, now, 1).unwrap();
            assert_eq!(
                d,
                model.run(now, 1, false).unwrap().decision,
                "{name}: key {k}"
            );
        } else if total < quota {
            short += 1;
        }
    }
    let slots = (keys * limits.len()) as u64;
    assert_eq!(stats.occupied, slots, "{name}: {stats:?}");
    assert_eq!(
        stats.new_keys, slots,
        "{name}: a key was created twice: {stats:?}"
    );
    assert_eq!(
        (stats.evictions, stats.reclaims, stats.full_neighbourhoods),
        (0, 0, 0),
        "{name}: {stats:?}"
    );
    if short > 0 {
        eprintln!(
            "{name}: {short} of {keys} keys denied spuriously under contention (allowed): {stats:?}"
        );
    }
}

#[test]
fn racing_creation_admits_exactly_the_quota_per_key() {
    let per_minute = Quota::new(10, MINUTE).unwrap();
    racing_creation(
        "gcra",
        &[spec(
            Algorithm::Gcra,
            Quota::new(5, MINUTE).unwrap().with_burst(10).unwrap(),
        )],
        true,
    );
    racing_creation("fixed", &[spec(Algorithm::FixedWindow, per_minute)], true);
    racing_creation(
        "approx",
        &[spec(Algorithm::SlidingWindowApprox, per_minute)],
        true,
    );
    racing_creation(
        "composite",
        &[
            spec(Algorithm::Gcra, Quota::new(10, SECOND).unwrap()),
            spec(Algorithm::FixedWindow, Quota::new(30, MINUTE).unwrap()),
        ],
        true,
    );
}

#[test]
fn racing_creation_never_over_admits_strict_windows() {
    let strict = Algorithm::SlidingWindowStrict { sub_windows: 6 };
    racing_creation(
        "strict",
        &[spec(strict, Quota::new(10, MINUTE).unwrap())],
        false,
    );
    racing_creation(
        "strict composite",
        &[
            spec(strict, Quota::new(10, MINUTE).unwrap()),
            spec(Algorithm::Gcra, Quota::new(20, MINUTE).unwrap()),
        ],
        false,
    );
}

// ---------------------------------------------------------------------------------------
// Relocations all the time, watched keys exact
// ---------------------------------------------------------------------------------------

/// A nearly full table where new keys keep finding both neighbourhoods full, so resident
/// keys — the watched ones included — are relocated all the time, while watcher threads
/// hammer 64 watched keys whose admissions must stay exact.
///
/// One quota, 200 per 200 ms (emission interval T = 1 ms), 1024 slots, policy `Deny`
/// (nothing is ever evicted). Churn threads create distinct keys at a shared clock that
/// advances T / 940 per request, so about 940 churn keys are active at any time (a churn
/// key rests T after its admission and its slot is reclaimed) besides the 64 watched
/// keys: a load of about 0.98 of active keys. The watched keys are charged 100 times at
/// `T0` before the churn starts (so the churn, whose clock stays below `T0 + 100 T`, sees
/// them active throughout), and the watchers check them at a `now` frozen at `T0` (so
/// they never replenish): each must admit exactly 100 more, however often it moved.
#[test]
fn watched_keys_stay_exact_while_relocations_churn() {
    const CAPACITY: u64 = 1024;
    const WATCHED: u64 = 64;
    const T: u64 = MS;
    const BURST: u64 = 200;
    const PRECHARGED: u64 = 100;
    const STEP: u64 = T / 940;
    // The churn clock stays below T0 + 80 T < T0 + PRECHARGED T.
    let churn_per_thread: u64 = 80 * T / STEP / 2;
    let rounds = if RELEASE { 8 } else { 1 };
    let limit = spec(Algorithm::Gcra, Quota::new(BURST, BURST * T).unwrap());
    let watched = |i: u64| format!("watched-{i}").into_bytes();
    let mut relocations = 0;
    for round in 0..rounds {
        let config = TableConfig::new(CAPACITY, &[limit])
            .unwrap()
            .with_policy(FullPolicy::Deny)
            .with_seed([0x5eed, 0x7ab1e, round, 0x2]);
        let table = Table::new(config).unwrap();
        for i in 0..WATCHED {
            for _ in 0..PRECHARGED {
                assert!(table.check(&watched(i), T0, 1).unwrap().allowed);
            }
        }
        let clock = AtomicU64::new(T0);
        let admitted: Vec<AtomicU64> = (0..WATCHED).map(|_| AtomicU64::new(0)).collect();
        let churning = AtomicU64::new(2);
        let barrier = Barrier::new(4);
        let fresh = CompositeModel::fresh_check(&[limit], T0, 1);
        std::thread::scope(|scope| {
            for t in 0..2u64 {
                let (table, clock, barrier, churning) = (&table, &clock, &barrier, &churning);
                scope.spawn(move || {
                    barrier.wait();
                    for n in 0..churn_per_thread {
                        let now = clock.fetch_add(STEP, Ordering::SeqCst);
                        let key = format!("churn-{t}-{n}");
                        let d = table.check(key.as_bytes(), now, 1).unwrap();
                        // A new key: admitted fresh, or refused a slot.
                        assert!(
                            !d.allowed || (d.remaining, d.retry_after) == (fresh.remaining, 0),
                            "{d:?}"
                        );
                    }
                    churning.fetch_sub(1, Ordering::SeqCst);
                });
            }
            for _ in 0..2 {
                let (table, barrier, admitted, churning) = (&table, &barrier, &admitted, &churning);
                scope.spawn(move || {
                    barrier.wait();
                    let mut passes = 0;
                    while passes < 2 * PRECHARGED || churning.load(Ordering::SeqCst) > 0 {
                        for (i, count) in admitted.iter().enumerate() {
                            if table.check(&watched(i as u64), T0, 1).unwrap().allowed {
                                count.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        passes += 1;
                    }
                });
            }
        });
        let stats = table.stats();
        eprintln!("relocation churn, round {round}: {stats:?}");
        assert_eq!((stats.evictions, stats.contended), (0, 0), "{stats:?}");
        assert!(stats.occupied <= CAPACITY, "{stats:?}");
        for (i, count) in admitted.iter().enumerate() {
            assert_eq!(
                count.load(Ordering::Relaxed),
                BURST - PRECHARGED,
                "watched key {i}: {stats:?}"
            );
            assert!(!table.peek(&watched(i as u64), T0, 1).unwrap().allowed);
        }
        relocations += stats.relocations;
    }
    assert!(
        relocations > 100 * rounds,
        "too few relocations to mean anything: {relocations}"
    );
}
