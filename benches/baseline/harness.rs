//! How the two engines are compared: settings, the shared request timeline, paired
//! rounds, the verdict agreement check, and two-thread batches.

use std::cell::Cell;
use std::sync::Barrier;
use std::time::Instant;

use crate::common::Paired;

/// Rounds and batch sizes; `--quick` makes each case a few thousand checks.
pub struct Settings {
    pub quick: bool,
    pub rounds: usize,
    /// Checks per side, before timing, whose decisions are compared (and which warm
    /// the tables up).
    pub verify: u64,
}

impl Settings {
    pub fn batch(&self, full: usize) -> usize {
        if self.quick {
            1_000
        } else {
            full
        }
    }
}

/// Where every engine instance is in the request sequence. Each measurement takes a
/// fresh stretch, so both sides of it see the same requests at the same times and no
/// instance's clock ever goes back (instance b-new is in two measurements).
pub struct Timeline(pub Cell<u64>);

impl Timeline {
    pub fn take(&self, checks: u64) -> u64 {
        let start = self.0.get();
        self.0.set(start + checks);
        start
    }
}

/// One measured comparison, for the table.
pub struct Row {
    pub case: &'static str,
    pub baseline: &'static str,
    pub goal: Option<f64>,
    pub paired: Paired,
}

/// `rounds` paired rounds of `batch` checks; `new(k)` and `old(k)` check request `k`.
pub fn paired<RA, RB>(
    s: &Settings,
    timeline: &Timeline,
    batch: usize,
    mut new: impl FnMut(u64) -> RA,
    mut old: impl FnMut(u64) -> RB,
) -> Paired {
    // Paired runs one unrecorded warm-up round first.
    let start = timeline.take(((s.rounds + 1) * batch) as u64);
    Paired::measure(
        s.rounds,
        batch,
        |i| new(start + i as u64),
        |i| old(start + i as u64),
    )
}

/// Verdict and number of limits met, per check, of the two sides over `s.verify`
/// checks: the comparison means something only if both engines do the same work.
pub fn agreement(
    s: &Settings,
    timeline: &Timeline,
    label: &str,
    names: (&str, &str),
    mut new: impl FnMut(u64) -> (bool, usize),
    mut old: impl FnMut(u64) -> (bool, usize),
) {
    let start = timeline.take(s.verify);
    let (mut same, mut admitted, mut limits) = (0u64, [0u64; 2], [0usize; 2]);
    for k in start..start + s.verify {
        let (a, b) = (new(k), old(k));
        same += u64::from(a.0 == b.0);
        admitted[0] += u64::from(a.0);
        admitted[1] += u64::from(b.0);
        limits[0] += a.1;
        limits[1] += b.1;
    }
    let n = s.verify as f64;
    if same != s.verify {
        println!("{label}: the engines decided differently: not the same work, see below");
    }
    println!(
        "{label}: {} checks, same verdict {same}; admitted {:.1} % ({}) / {:.1} % ({}); \
         limits met per check {:.2} / {:.2}",
        s.verify,
        admitted[0] as f64 * 100.0 / n,
        names.0,
        admitted[1] as f64 * 100.0 / n,
        names.1,
        limits[0] as f64 / n,
        limits[1] as f64 / n,
    );
}

/// `batch` checks on each of two threads; the wall time both took, from a barrier. Each
/// thread runs its own copy of the closure (benches/contended.rs: a shared copy in the
/// timing thread's frame bounced its cache line under the other thread).
pub fn two_threads<F: Fn(u64, u64) + Send + Clone>(start: u64, batch: u64, check: F) -> f64 {
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let (theirs, barrier) = (check.clone(), &barrier);
        let other = s.spawn(move || {
            barrier.wait();
            hammer(start, batch, 1, &theirs);
        });
        barrier.wait();
        let started = Instant::now();
        hammer(start, batch, 0, &check);
        other.join().expect("bench thread");
        started.elapsed().as_secs_f64()
    })
}

/// One thread's loop: one call site for the check, so it is inlined here for both
/// engines alike (benches/contended.rs's `hammer`).
#[inline(never)]
fn hammer<F: Fn(u64, u64)>(start: u64, batch: u64, thread: u64, check: &F) {
    for k in start..start + batch {
        check(k, thread);
    }
}
