//! A plain driver for profilers (`valgrind --tool=callgrind`, `perf record`): runs one
//! case's check in a loop, with nothing else around it, so instruction counts per check
//! can be read off two runs of different lengths.
//!
//! Not a benchmark: under `cargo bench` it only prints its usage. Run it directly:
//! ```sh
//! cargo bench --bench profile_driver --no-run
//! D=$(ls target/release/deps/profile_driver-* | grep -v '\.d$')
//! valgrind --tool=callgrind --toggle-collect='*profile_driver::hot*' \
//!     --callgrind-out-file=/tmp/cg.out $D rc_gcra_allow 1000000
//! ```
//! Only the measured loop ([`hot`]) is collected: instructions per check = Ir / N.
//! Cases: see [`CASES`].

mod common;

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::{Quota as GovQuota, RateLimiter as GovLimiter};
use ratecore::{Algorithm, Gcra, LimitSpec, Quota, RateLimiter, Table, TableConfig};

/// Every case the driver knows.
const CASES: &[&str] = &[
    "rc_gcra_allow",
    "rc_gcra_deny",
    "rc_gcra_allow_verdict",
    "rc_gcra_deny_verdict",
    "rc_gcra_deny_quanta",
    "gov_allow",
    "gov_deny",
    "quanta_now",
    "rc_keyed_1k",
    "gov_keyed_1k",
    "rc_policy_uphold",
];

const NOW: u64 = 1_000_000_000;

fn gov_allow() -> GovQuota {
    GovQuota::with_period(Duration::from_nanos(1))
        .expect("non-zero period")
        .allow_burst(NonZeroU32::MAX)
}

fn rc_allow() -> Quota {
    Quota::new(1 << 40, 1 << 40).expect("valid quota")
}

/// The measured loop, never inlined so a profiler can isolate it
/// (`valgrind --tool=callgrind --toggle-collect='*profile_driver::hot*'`).
#[inline(never)]
fn hot(iters: u64, mut check: impl FnMut(u64)) {
    for i in 0..iters {
        check(i);
    }
}

/// The GCRA an `allow` case never runs out of, or one of 1 per second a `deny` case
/// exhausts on its first check.
fn gcra_for(case: &str) -> Gcra {
    if case.contains("allow") {
        Gcra::new(rc_allow())
    } else {
        Gcra::new(Quota::per_second(1).expect("valid quota"))
    }
}

fn run(case: &str, iters: u64) -> bool {
    match case {
        "rc_gcra_allow" | "rc_gcra_deny" => {
            let limiter = gcra_for(case);
            hot(iters, |_| {
                common::observe(limiter.check(black_box(NOW), 1));
            });
        }
        "rc_gcra_allow_verdict" | "rc_gcra_deny_verdict" => {
            let limiter = gcra_for(case);
            hot(iters, |_| {
                black_box(limiter.check(black_box(NOW), 1).is_ok_and(|d| d.allowed));
            });
        }
        "rc_gcra_deny_quanta" => {
            // The contended bench's `deny/ratecore_quanta` body on one thread: governor's
            // clock read, then a denied check.
            let limiter = Gcra::new(Quota::per_second(1).expect("valid quota"));
            let clock = quanta::Clock::new();
            hot(iters, |_| {
                let now = clock.delta_as_nanos(0, clock.raw());
                common::observe(limiter.check(now, 1));
            });
        }
        "gov_allow" | "gov_deny" => {
            let q = if case.ends_with("allow") {
                gov_allow()
            } else {
                GovQuota::per_second(NonZeroU32::new(1).expect("non-zero"))
            };
            let limiter = GovLimiter::direct(q);
            hot(iters, |_| {
                common::observe(limiter.check());
            });
        }
        "quanta_now" => {
            let clock = quanta::Clock::new();
            hot(iters, |_| {
                black_box(clock.delta_as_nanos(0, clock.raw()));
            });
        }
        "rc_keyed_1k" | "gov_keyed_1k" => {
            let keys = 1_000u64;
            let mut rng = common::SplitMix64::new(7);
            let sequence: Vec<u64> = (0..1 << 16).map(|_| rng.below(keys)).collect();
            if case.starts_with("rc") {
                let spec = LimitSpec {
                    algorithm: Algorithm::Gcra,
                    quota: rc_allow(),
                };
                // A fixed hash seed: with a random one, keys land in other slots of their
                // neighbourhoods each run and the count moves by ±5 instructions.
                let config = TableConfig::new(2048, &[spec])
                    .expect("valid table")
                    .with_seed([1, 2, 3, 4]);
                let table = Table::new(config).expect("table");
                for key in 0..keys {
                    let _ = table.check_key(&key, NOW, 1).expect("check");
                }
                hot(iters, |i| {
                    let key = sequence[i as usize & 0xffff];
                    common::observe(table.check_key(&key, black_box(NOW), 1));
                });
            } else {
                let limiter = GovLimiter::keyed(gov_allow());
                for key in 0..keys {
                    let _ = limiter.check_key(&key);
                }
                hot(iters, |i| {
                    let key = sequence[i as usize & 0xffff];
                    common::observe(limiter.check_key(&key));
                });
            }
        }
        "rc_policy_uphold" => {
            // As `algorithms`' allow/policy_uphold_password_forgot: 1,000 (IP, account)
            // pairs, 101 ms apart, never denied.
            let (policy, pairs) = common::uphold_policy_and_pairs();
            hot(iters, |i| {
                let request = common::uphold_request(&pairs, i as usize);
                let now = NOW + i * 101_000_000;
                black_box(
                    policy
                        .check(&request, black_box(now), 1)
                        .map(|d| d.allowed()),
                )
                .ok();
            });
        }
        _ => return false,
    }
    true
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let case = args.first().map(String::as_str).unwrap_or("");
    let iters = args
        .get(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    if case.is_empty() || !run(case, iters) {
        println!(
            "profile_driver: not a benchmark. Usage: profile_driver <case> [iterations]; \
             cases: {}",
            CASES.join(", ")
        );
    }
}
