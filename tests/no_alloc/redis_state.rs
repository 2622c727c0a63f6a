//! The Redis module's check never allocates for single-word limits: `apply` (what
//! `RATECORE.CHECK` runs on the values it read), the new value of each key and the
//! reply's digest, for GCRA, fixed and approximate windows alone and together, charges
//! and peeks, admissions and denials. A strict window's ring is built on the heap (up to
//! 4 097 slots), so it is not part of this promise.

use std::hint::black_box;

use ratecore::redis_state::{apply, digest, Outcomes, StoredLimit, MAX_WRITTEN};
use ratecore::{Algorithm, Mode, Quota};

use crate::assert_no_alloc;

const SECOND: u64 = 1_000_000_000;

#[test]
fn module_checks_of_single_word_limits_never_allocate() {
    let quota = Quota::new(5, SECOND).unwrap();
    let limits: Vec<StoredLimit> = [
        Algorithm::Gcra,
        Algorithm::FixedWindow,
        Algorithm::SlidingWindowApprox,
    ]
    .into_iter()
    .map(|algorithm| StoredLimit::new(algorithm, &quota).unwrap())
    .collect();
    for set in [&limits[..1], &limits[1..2], &limits[2..], &limits[..]] {
        // The keys' stored values, as the server holds them between checks.
        let mut stored = [[0u8; MAX_WRITTEN]; 3];
        let mut lengths = [0usize; 3];
        let mut out = Outcomes::new();
        let (mut admitted, mut denied, mut now) = (0, 0, 10 * SECOND);
        for i in 0..5_000u64 {
            now += (i % 7) * SECOND / 40;
            let mode = if i % 5 == 0 { Mode::Peek } else { Mode::Charge };
            let decision = assert_no_alloc("a module check", || {
                let olds: [&[u8]; 3] = std::array::from_fn(|k| &stored[k][..lengths[k]]);
                let olds = &olds[..set.len()];
                let decision = apply(set, olds, now, 1 + i % 2, mode, 1, &mut out).unwrap();
                black_box(digest(&decision, now, &out));
                // The new values, as the module writes them.
                let mut new = [[0u8; MAX_WRITTEN]; 3];
                let mut new_lengths = lengths;
                for (k, (outcome, old)) in out.iter().zip(olds).enumerate() {
                    if let Some(value) = outcome.value(old) {
                        new[k][..value.len()].copy_from_slice(&value);
                        new_lengths[k] = value.len();
                    } else {
                        new[k] = stored[k];
                    }
                }
                (decision, new, new_lengths)
            });
            let (decision, new, new_lengths) = decision;
            (stored, lengths) = (new, new_lengths);
            if decision.allowed {
                admitted += 1;
            } else {
                denied += 1;
            }
        }
        assert!(
            admitted > 100 && denied > 100,
            "{admitted} admitted, {denied} denied"
        );
    }
}
