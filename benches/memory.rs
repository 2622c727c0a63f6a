//! Memory per live key: ratecore's keyed table against governor's keyed state store
//! (DashMap), at 1,000,000 live keys, measured two ways in one process:
//! - a counting global allocator (live heap bytes, exact), and
//! - the resident set size (`/proc/self/statm`) before and after.
//!
//! ratecore's table memory is fixed at creation, so the figures are "bytes per slot" and
//! "bytes per live key" at a given load (live keys / slots). This bench also sweeps the
//! load of one table with every key active (none at rest) and reports, at each load, how
//! many keys were relocated (moved, state intact, to their other neighbourhood to make
//! room) and how many met two full neighbourhoods and were forced to evict a live key:
//! the highest load with no forced eviction bounds the table's design load (0.9).
//!
//! Not a criterion benchmark (nothing is timed). Run:
//! `cargo bench --bench memory`.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};

use governor::{Quota as GovQuota, RateLimiter as GovLimiter};
use ratecore::{Algorithm, LimitSpec, Quota, Table, TableConfig};

/// The system allocator, counting live and peak heap bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn record_alloc(size: usize) {
    // Relaxed: statistics read by the same thread after the work is done.
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees hold; the counters have no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            record_alloc(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            record_alloc(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from this allocator, i.e. from `System`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; `ptr` came from `System` with `layout`.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            record_alloc(new_size);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

fn reset_peak() {
    PEAK.store(live(), Ordering::Relaxed);
}

fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}

fn rss() -> i64 {
    common::rss_bytes().map_or(0, |b| b as i64)
}

const NOW: u64 = 1_000_000_000;

fn gcra_spec() -> LimitSpec {
    // 1 per hour: after one check a key stays active (not at rest) for an hour.
    LimitSpec {
        algorithm: Algorithm::Gcra,
        quota: Quota::per_hour(1).expect("valid quota"),
    }
}

/// ratecore at `keys` live keys in a table of `capacity` slots. Returns the measured heap
/// bytes per slot and per key checked.
fn ratecore(keys: u64, capacity: u64) -> (f64, f64) {
    let config = TableConfig::new(capacity, &[gcra_spec()]).expect("valid table");
    let (heap0, rss0) = (live(), rss());
    reset_peak();
    let table = Table::new(config).expect("table");
    let (heap1, rss1) = (live(), rss());
    for key in 0..keys {
        let _ = table.check_key(&key, NOW, 1).expect("check");
    }
    let (heap2, rss2) = (live(), rss());
    let stats = table.stats();
    let slots = config.capacity();
    let heap = (heap2 - heap0) as f64;
    println!(
        "ratecore  keys {keys:>9}  slots {slots:>9}  load {:.3}  heap {:>11} B at creation, \
         +{} B while filling (peak {} B)  => {:.2} B/slot, {:.2} B per key checked, \
         {:.2} B per key still tracked (heap); RSS +{} B => {:.2} B per key checked (RSS); \
         tracked (occupied) {}, relocations {}, forced evictions {}",
        keys as f64 / slots as f64,
        heap1 - heap0,
        heap2 - heap1,
        peak() - heap0,
        heap / slots as f64,
        heap / keys as f64,
        heap / stats.occupied.max(1) as f64,
        rss2 - rss0,
        (rss2 - rss0) as f64 / keys as f64,
        stats.occupied,
        stats.relocations,
        stats.evictions,
    );
    let _ = rss1;
    drop(table);
    (heap / slots as f64, heap / keys as f64)
}

/// governor's default keyed limiter (DashMap) at `keys` live keys. Returns its measured
/// heap bytes per live key.
fn governor(keys: u64) -> f64 {
    let quota = GovQuota::per_hour(NonZeroU32::new(1).expect("non-zero"));
    let (heap0, rss0) = (live(), rss());
    reset_peak();
    let limiter = GovLimiter::keyed(quota);
    let heap_empty = live() - heap0;
    for key in 0..keys {
        let _ = limiter.check_key(&key);
    }
    let (heap1, rss1) = (live(), rss());
    let peak_fill = peak() - heap0;
    limiter.retain_recent();
    limiter.shrink_to_fit();
    let heap2 = live();
    let held = limiter.len();
    println!(
        "governor  keys {keys:>9}  (holds {held})  heap {} B empty, {} B filled (peak {} B) => \
         {:.2} B/live key (heap); after retain_recent + shrink_to_fit {:.2} B/live key; \
         RSS +{} B => {:.2} B/live key (RSS)",
        heap_empty,
        heap1 - heap0,
        peak_fill,
        (heap1 - heap0) as f64 / keys as f64,
        (heap2 - heap0) as f64 / keys as f64,
        rss1 - rss0,
        (rss1 - rss0) as f64 / keys as f64,
    );
    drop(limiter);
    (heap1 - heap0) as f64 / keys as f64
}

/// Fills one table of `capacity` slots with active keys, reporting forced evictions at
/// each load checkpoint.
fn load_sweep(capacity: u64) {
    let config = TableConfig::new(capacity, &[gcra_spec()]).expect("valid table");
    let table = Table::new(config).expect("table");
    let slots = config.capacity();
    println!("load sweep: one table of {slots} slots (16 B each), every key active (GCRA 1/h)");
    println!(
        "  load   live keys   B/live key   relocations   full neighbourhoods   forced evictions   (% of keys)"
    );
    let mut key = 0u64;
    for load in [
        0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.40, 0.50, 0.60, 0.70, 0.75, 0.80, 0.85, 0.875, 0.90,
        0.925, 0.95, 1.0,
    ] {
        let target = (slots as f64 * load) as u64;
        while key < target {
            let _ = table.check_key(&key, NOW, 1).expect("check");
            key += 1;
        }
        let s = table.stats();
        println!(
            "  {load:<5}  {key:>10}   {:>10.2}   {:>11}   {:>19}   {:>16}   ({:.4} %)",
            16.0 / load,
            s.relocations,
            s.full_neighbourhoods,
            s.evictions,
            100.0 * s.evictions as f64 / key as f64,
        );
    }
}

fn main() {
    let keys: u64 = if common::bench_mode() {
        1_000_000
    } else {
        10_000
    };
    println!("memory per live key (heap via a counting allocator; RSS via /proc/self/statm)");
    // The keyed bench's sizing: capacity = next_pow2(ceil(keys / 0.75)).
    let sized = ((keys as f64 / 0.75).ceil() as u64).next_power_of_two();
    ratecore(keys, sized);
    // The densest power-of-two table that holds every key.
    let (per_slot, dense_per_key) = ratecore(keys, keys.next_power_of_two());
    let governor_per_key = governor(keys);
    // The design load (0.9) is where the table holds keys without forced evictions (the
    // sweep below); a table's bytes per live key there are its measured bytes per slot
    // over 0.9.
    let design = per_slot / 0.9;
    println!(
        "ratio (heap per live key, ratecore / governor): {:.3} at the design load 0.9 \
         ({design:.2} B vs {governor_per_key:.2} B; target <= 18 B{}); {:.3} in the dense \
         table ({dense_per_key:.2} B)",
        design / governor_per_key,
        if design <= 18.0 { ": met" } else { ": NOT met" },
        dense_per_key / governor_per_key,
    );
    println!();
    load_sweep(keys.next_power_of_two());
}
