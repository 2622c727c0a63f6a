//! The policy engine of this tree against an earlier revision's (`ratecore_old`; by
//! default 79e601f, the last commit with the fixed-identity policies), in one process:
//! interleaved paired rounds (benches/common's `Paired`), every case running the same
//! requests at the same `now` sequence through both engines.
//!
//! Not a cargo bench of this crate: the old engine is another revision of this very
//! package, so `benches/baseline/run.sh` builds this file in a generated project that
//! depends on both. Usage: `policy [--quick] <new tree> <old tree>`, or
//! `policy --profile <a1|a2|b|b-plain> <new|old> <checks> <new tree> <old tree>`: one
//! side of one case in a bare loop (`hot`), for a profiler (benches/README.md).
//!
//! Cases:
//! - a: the Uphold policy (each tree's `examples/policies/uphold.toml`), 1,000 (IP,
//!   account) pairs 101 ms apart as benches/common's `uphold_request`: its one endpoint,
//!   then a mix of the policy's endpoints and unlimited ones.
//! - b: 20 rules (16 limits, 4 exemptions) over 10 attributes (`big_new.toml`), 100,000
//!   overrides on one limit; against the same policy without overrides and against the
//!   closest policy the old engine can express (`big_old.toml`).
//! - c: case a's mix on two threads at once (per-limit counters, shared, included).

#[path = "../common/mod.rs"]
mod common;
mod harness;
mod requests;

use std::cell::Cell;
use std::time::Instant;

use common::Paired;
use harness::{agreement, paired, two_threads, Row, Settings, Timeline};
use ratecore::policy::{Attribute, Override, OverrideQuota, Policy};
use ratecore_old::policy::{Policy as OldPolicy, Request as OldRequest};
use requests::{
    big_clients, big_mix, big_now, forgot_entries, new_requests, uphold_attributes, uphold_mix,
    uphold_now, uphold_old_request, uphold_pairs, uphold_path, BigClient, Entry,
};

/// Case b's policy for the new engine.
const BIG_NEW: &str = include_str!("big_new.toml");
/// The closest policy to [`BIG_NEW`] the old engine can express.
const BIG_OLD: &str = include_str!("big_old.toml");

/// 100,000 overrides on `per-api-key`: the even API keys `ak-000000` … `ak-199998` get
/// 1,000 per second instead of 100, set one by one at run time as an operator would.
fn set_overrides(policy: &Policy) -> f64 {
    let started = Instant::now();
    let overrides: Vec<Override> = (0..200_000u32)
        .step_by(2)
        .map(|n| Override {
            attribute: "api_key".to_owned(),
            value: format!("ak-{n:06}").into_bytes(),
            quota: OverrideQuota::Limit {
                limit: 1_000,
                burst: None,
            },
        })
        .collect();
    let set = policy
        .set_overrides(overrides.iter().map(|o| ("per-api-key", "per-api-key", o)))
        .expect("overrides");
    assert_eq!(set, 100_000);
    started.elapsed().as_secs_f64()
}

/// The measured loop of `--profile`, never inlined so a profiler can isolate it
/// (`valgrind --tool=callgrind --toggle-collect='*policy::hot*'`), as in
/// benches/profile_driver.rs. Checks `start..start + checks`, after `start` unmeasured
/// ones have warmed the tables up as the timed runs' verification does.
#[inline(never)]
fn hot<R>(start: u64, checks: u64, check: impl Fn(u64) -> R) {
    for k in start..start + checks {
        common::observe(check(k));
    }
}

/// One side of one case, as `main` sets it up, in `hot`.
fn profile(case: &str, side: &str, checks: u64, new_tree: &str, old_tree: &str) {
    let warm = 8_000;
    let run = |check: &dyn Fn(u64)| {
        for k in 0..warm {
            check(k);
        }
        hot(warm, checks, check);
    };
    match case {
        "a1" | "a2" => {
            let pairs = uphold_pairs();
            let attributes = uphold_attributes(&pairs);
            let entries: Vec<Entry> = if case == "a1" {
                forgot_entries()
            } else {
                uphold_mix()
            };
            let n = entries.len() as u64;
            if side == "new" {
                let policy =
                    Policy::from_toml_file(uphold_path(new_tree)).expect("new uphold policy");
                let requests = new_requests(&entries, &attributes);
                run(&|k| {
                    common::observe(policy.check(&requests[(k % n) as usize], uphold_now(k), 1))
                });
            } else {
                let policy =
                    OldPolicy::from_toml_file(uphold_path(old_tree)).expect("old uphold policy");
                let requests: Vec<OldRequest<'_>> = entries
                    .iter()
                    .map(|e| uphold_old_request(&pairs, e))
                    .collect();
                run(&|k| {
                    common::observe(policy.check(&requests[(k % n) as usize], uphold_now(k), 1))
                });
            }
        }
        "b" | "b-plain" => {
            let clients = big_clients();
            let entries = big_mix();
            let n = entries.len() as u64;
            if side == "new" {
                let policy = Policy::from_toml_str(BIG_NEW, "big-new").expect("big new policy");
                if case == "b" {
                    set_overrides(&policy);
                }
                let attributes: Vec<Vec<Attribute<'_>>> =
                    clients.iter().map(BigClient::attributes).collect();
                let requests = new_requests(&entries, &attributes);
                run(&|k| common::observe(policy.check(&requests[(k % n) as usize], big_now(k), 1)));
            } else {
                let policy = OldPolicy::from_toml_str(BIG_OLD, "big-old").expect("big old policy");
                let requests: Vec<OldRequest<'_>> = entries
                    .iter()
                    .map(|e| clients[e.client].old_request(e))
                    .collect();
                run(&|k| common::observe(policy.check(&requests[(k % n) as usize], big_now(k), 1)));
            }
        }
        _ => {
            eprintln!("unknown case {case:?} (a1, a2, b, b-plain)");
            std::process::exit(2);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, case, side, checks, new_tree, old_tree] = args.as_slice() {
        if flag == "--profile" {
            let checks = checks.parse().expect("number of checks");
            profile(case, side, checks, new_tree, old_tree);
            return;
        }
    }
    let quick = args.iter().any(|a| a == "--quick");
    let trees: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let [new_tree, old_tree] = trees.as_slice() else {
        eprintln!("usage: policy [--quick] <new tree> <old tree> (benches/baseline/run.sh)");
        std::process::exit(2);
    };
    let s = Settings {
        quick,
        rounds: if quick { 3 } else { 301 },
        verify: if quick { 1_000 } else { 8_000 },
    };
    let started = Instant::now();
    let timeline = Timeline(Cell::new(0));
    let mut rows = Vec::new();

    // Case a: the Uphold policy.
    {
        let new = Policy::from_toml_file(uphold_path(new_tree)).expect("new uphold policy");
        let old = OldPolicy::from_toml_file(uphold_path(old_tree)).expect("old uphold policy");
        let pairs = uphold_pairs();
        let attributes = uphold_attributes(&pairs);
        let old_request = |entry| uphold_old_request(&pairs, entry);
        // a1: benches/common's `uphold_request`, 101 ms apart.
        let forgot = forgot_entries();
        let mix = uphold_mix();
        for (case, entries) in [
            ("a1 Uphold, POST /password/forgot", &forgot),
            ("a2 Uphold, endpoint mix", &mix),
        ] {
            let new_requests = new_requests(&entries, &attributes);
            let old_requests: Vec<OldRequest<'_>> = entries.iter().map(old_request).collect();
            let n = new_requests.len() as u64;
            let check_new = |k: u64| new.check(&new_requests[(k % n) as usize], uphold_now(k), 1);
            let check_old = |k: u64| old.check(&old_requests[(k % n) as usize], uphold_now(k), 1);
            agreement(
                &s,
                &timeline,
                case,
                ("new", "old"),
                |k| check_new(k).map_or((false, 0), |d| (d.allowed(), d.entries().count())),
                |k| check_old(k).map_or((false, 0), |d| (d.allowed(), d.entries().count())),
            );
            let p = paired(&s, &timeline, s.batch(10_000), check_new, check_old);
            rows.push(Row {
                case,
                baseline: "old",
                goal: Some(1.1),
                paired: p,
            });
        }

        // Case c: a2's mix on two threads, thread t taking entries 2k + t (the even
        // pairs on one, the odd on the other: same tables and counters, other keys).
        let new_requests = new_requests(&mix, &attributes);
        let old_requests: Vec<OldRequest<'_>> = mix.iter().map(old_request).collect();
        let n = new_requests.len() as u64;
        let index = move |k: u64, thread: u64| ((2 * k + thread) % n) as usize;
        let (new, old) = (&new, &old);
        let (new_requests, old_requests) = (&new_requests, &old_requests);
        let check_new = move |k: u64, t: u64| {
            common::observe(new.check(&new_requests[index(k, t)], uphold_now(k), 1));
        };
        let check_old = move |k: u64, t: u64| {
            common::observe(old.check(&old_requests[index(k, t)], uphold_now(k), 1));
        };
        let batch = s.batch(10_000);
        let start = timeline.take(((s.rounds + 1) * batch) as u64);
        let (next_new, next_old) = (Cell::new(start), Cell::new(start));
        let run = |next: &Cell<u64>, check: &dyn Fn(u64) -> f64| {
            let k = next.get();
            next.set(k + batch as u64);
            check(k)
        };
        let p = Paired::interleave(
            s.rounds,
            batch,
            || run(&next_new, &|k| two_threads(k, batch as u64, check_new)),
            || run(&next_old, &|k| two_threads(k, batch as u64, check_old)),
        );
        rows.push(Row {
            case: "c  Uphold mix, 2 threads (ns per check per thread)",
            baseline: "old",
            goal: None,
            paired: p,
        });
    }

    // Case b: 20 rules, 10 attributes, 100,000 overrides.
    {
        let new = Policy::from_toml_str(BIG_NEW, "big-new").expect("big new policy");
        let plain = Policy::from_toml_str(BIG_NEW, "big-new").expect("big new policy");
        let old = OldPolicy::from_toml_str(BIG_OLD, "big-old").expect("big old policy");
        let seconds = set_overrides(&new);
        println!(
            "b: {} overrides set in {seconds:.2} s; policy memory (tables and overrides) \
             {:.1} MiB, {:.1} MiB without overrides",
            new.overrides().len(),
            new.memory_bytes() as f64 / (1 << 20) as f64,
            plain.memory_bytes() as f64 / (1 << 20) as f64,
        );
        let clients = big_clients();
        let attributes: Vec<Vec<Attribute<'_>>> =
            clients.iter().map(BigClient::attributes).collect();
        let entries = big_mix();
        let new_requests = new_requests(&entries, &attributes);
        let old_requests: Vec<OldRequest<'_>> = entries
            .iter()
            .map(|e| clients[e.client].old_request(e))
            .collect();
        let n = new_requests.len() as u64;
        let check_new = |k: u64| new.check(&new_requests[(k % n) as usize], big_now(k), 1);
        let check_plain = |k: u64| plain.check(&new_requests[(k % n) as usize], big_now(k), 1);
        let check_old = |k: u64| old.check(&old_requests[(k % n) as usize], big_now(k), 1);
        let verdict_new =
            |k: u64| check_new(k).map_or((false, 0), |d| (d.allowed(), d.entries().count()));
        let verdict_plain =
            |k: u64| check_plain(k).map_or((false, 0), |d| (d.allowed(), d.entries().count()));
        let verdict_old =
            |k: u64| check_old(k).map_or((false, 0), |d| (d.allowed(), d.entries().count()));
        let label = "b  20 rules, 100k overrides";
        agreement(
            &s,
            &timeline,
            label,
            ("new", "old"),
            verdict_new,
            verdict_old,
        );
        agreement(
            &s,
            &timeline,
            label,
            ("new", "new without overrides"),
            verdict_new,
            verdict_plain,
        );
        let batch = s.batch(5_000);
        let p = paired(&s, &timeline, batch, check_new, check_old);
        rows.push(Row {
            case: "b1 20 rules, 10 attributes, 100k overrides",
            baseline: "old, closest policy",
            goal: Some(1.2),
            paired: p,
        });
        let p = paired(&s, &timeline, batch, check_new, check_plain);
        rows.push(Row {
            case: "b2 20 rules, 10 attributes, 100k overrides",
            baseline: "new, no overrides",
            goal: Some(1.2),
            paired: p,
        });
        let p = paired(&s, &timeline, batch, check_plain, check_old);
        rows.push(Row {
            case: "b3 20 rules, 10 attributes, no overrides",
            baseline: "old, closest policy",
            goal: None,
            paired: p,
        });
    }

    println!();
    if s.quick {
        println!(
            "(--quick: {} rounds of 1,000 checks; no verdicts)",
            s.rounds
        );
    }
    println!(
        "{:<52} {:<20} {:>10} {:>10} {:>22}  goal",
        "case", "baseline", "base ns", "new ns", "ratio (quartiles)"
    );
    for row in &rows {
        let p = &row.paired;
        let goal = match (row.goal, s.quick) {
            (None, _) => "-".to_owned(),
            (Some(g), true) => format!("<= {g}"),
            (Some(g), false) if p.median <= g => format!("<= {g}: met"),
            (Some(g), false) => format!("<= {g}: NOT met"),
        };
        println!(
            "{:<52} {:<20} {:>10.1} {:>10.1} {:>8.3} ({:.3}–{:.3})  {goal}",
            row.case,
            row.baseline,
            p.per_call_ns.1,
            p.per_call_ns.0,
            p.median,
            p.quartiles.0,
            p.quartiles.1,
        );
    }
    println!(
        "({} rounds per case; ns per check = median batch time / batch; ratio = median of \
         the per-round ratios new / baseline; {:.0} s in all)",
        s.rounds,
        started.elapsed().as_secs_f64()
    );
}
