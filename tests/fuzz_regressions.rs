//! Crashes found by the fuzz targets in `fuzz/`, replayed as ordinary tests.
//!
//! Each test inlines the (minimised) input of one crash, written with the public API,
//! and names the target and artifact it came from. `cargo +nightly fuzz fmt <target>
//! <artifact>` prints any input as the calls it makes; see `fuzz/README.md`.
//!
//! Each test is a crash the fuzzers found, minimised and inlined; all are fixed.

use ratecore::decision::Outcome;
use ratecore::fixed_window::FixedWindowConfig;
use ratecore::sliding_approx::SlidingWindowConfig;
use ratecore::table::region::RegionTable;
use ratecore::{Algorithm, CheckError, Decision, FullPolicy, LimitSpec, Quota, TableConfig};

/// Where a version-2 region's slots start (as in version 1) (`src/table/region.rs`, "Layout").
const SLOTS_OFFSET: usize = 896;

/// One 64-byte line: a `Vec` of them is a 64-byte-aligned buffer, as regions need.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// A 64-byte-aligned buffer of at least `len` zero bytes.
fn aligned(len: usize) -> Vec<Line> {
    vec![Line([0; 64]); len.div_ceil(64)]
}

/// 1 per 2^62 ns: `u64::MAX / period` is 3, so window number 4 is out of range.
const OUT_OF_RANGE_QUOTA: Quota = match Quota::new(1, 1 << 62) {
    Ok(quota) => quota,
    Err(_) => panic!("valid quota"),
};

/// Times across the whole range for the out-of-range window words.
const OUT_OF_RANGE_NOWS: [u64; 3] = [0, 1 << 62, u64::MAX];

/// A pure evaluator's outcome at each of [`OUT_OF_RANGE_NOWS`], for limit 1, is sane.
fn assert_sane_at_out_of_range_nows(evaluate: impl Fn(u64) -> Result<Outcome, CheckError>) {
    for now in OUT_OF_RANGE_NOWS {
        assert_sane(&evaluate(now).unwrap().decision, 1);
    }
}

/// What every decision must satisfy, whatever state it was computed from.
fn assert_sane(d: &Decision, limit: u64) {
    assert_eq!(d.limit, limit, "{d:?}");
    assert!(d.remaining <= d.limit, "{d:?}");
    assert_eq!(d.allowed, d.retry_after == 0, "{d:?}");
}

/// `region_attach`, artifact `minimized-from-1d1a966f…` (Planted): a region's slot holds
/// an approximate-window state word whose window number (65287) lies beyond the last
/// window the `u64` time range has for this period (4095). The region docs promise that
/// every slot value is a state the algorithms handle ("a nonsense state can only deny or
/// admit, never crash"), but `SlidingWindowConfig::view` computes `stored * period`
/// unchecked: an overflow panic in debug builds (a wrapped window start in release).
#[test]

fn region_slot_with_out_of_range_approx_window_does_not_panic() {
    let quota = Quota::new(251, 4_503_599_627_370_496).unwrap();
    let spec = LimitSpec {
        algorithm: Algorithm::SlidingWindowApprox,
        quota,
    };
    let config = TableConfig::new(255, &[spec])
        .unwrap()
        .with_policy(FullPolicy::EvictClosestToRest)
        .with_seed([
            216_174_683_622_128_314,
            13_402_712_492_933_727_395,
            13_455_272_147_882_261_178,
            8_411_240_565_227_305_658,
        ]);
    let size = ratecore::table::region::region_size(&config).unwrap();
    let mut lines = aligned(size);
    // SAFETY: `lines` owns `lines.len() * 64 >= size` initialised bytes (a `Line` is 64
    // bytes without padding); the slice borrows it mutably for its whole use.
    let region = unsafe { std::slice::from_raw_parts_mut(lines.as_mut_ptr().cast::<u8>(), size) };
    {
        let table = RegionTable::init_in(region, &config).unwrap();
        let first = table.check_key(&b"k\x02"[..], 255, 251).unwrap();
        assert!(first.allowed);
    }
    // Plant the state word into the one occupied key slot (tag in the high 64 bits).
    let capacity = usize::try_from(config.capacity()).unwrap();
    let occupied: Vec<usize> = (0..capacity)
        .filter(|i| {
            let at = SLOTS_OFFSET + 16 * i;
            region[at + 8..at + 16] != [0; 8]
        })
        .collect();
    assert_eq!(occupied.len(), 1);
    let at = SLOTS_OFFSET + 16 * occupied[0];
    region[at..at + 8].copy_from_slice(&4_278_714_113_u64.to_le_bytes());
    let table = RegionTable::attach_in(region).unwrap();
    let d = table.check_key(&b"k\x02"[..], 255, 251).unwrap();
    assert_sane(&d, 251);
}

/// The same class of state for the fixed window, through its public pure evaluator
/// (documented "Pure; never panics"): a word whose window number (4) is beyond
/// `u64::MAX / period` (3). Passes since durations are measured from the caller's `now`
/// (the window start is no longer computed); kept so it stays that way.
#[test]
fn fixed_window_evaluate_of_out_of_range_window_does_not_panic() {
    let config = FixedWindowConfig::new(&OUT_OF_RANGE_QUOTA).unwrap();
    // One counter bit (limit 1) under the window number: window 4, count 0.
    let word = 4 << 1;
    assert_sane_at_out_of_range_nows(|now| config.evaluate(word, now, 1));
}

/// The region crash at its root, through the approximate window's public pure evaluator
/// (two counter bits under the window number 4, beyond `u64::MAX / period` = 3).
#[test]

fn sliding_window_evaluate_of_out_of_range_window_does_not_panic() {
    let config = SlidingWindowConfig::new(&OUT_OF_RANGE_QUOTA).unwrap();
    let word = 4 << 2;
    assert_sane_at_out_of_range_nows(|now| {
        let _ = config.is_at_rest(word, now);
        config.evaluate(word, now, 1)
    });
}
