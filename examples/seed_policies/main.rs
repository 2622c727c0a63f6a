//! The seed policies, replayed on a simulated clock.
//!
//! Run with `cargo run --release --example seed_policies`.
//!
//! Three real API rate-limit policies (ev.energy, Switch and Uphold, as their public
//! rate-limit documentation states them) are replayed for one key each. Time is
//! simulated: `now` is nanoseconds since midnight of an imaginary day, passed explicitly
//! to every check, so no clock is read and every run prints the same thing. Each decision
//! is printed as a row of a table, and each section ends with the seed's promise and the
//! figures that show it kept. `tests/seed_demo.rs` asserts every one of those promises
//! (and, for every denial, that `retry_after` is exact to the nanosecond) on the same
//! scenarios (`scenarios.rs`), so the tables printed here are the ones the tests check.
//!
//! A section then runs all four algorithms on one burst-then-trickle trace to show how
//! their semantics differ, and the last one replays each policy file as HTTP exchanges:
//! several keys and token kinds (ev.energy's authorisation-code users and a
//! client-credentials app sharing one limit, Switch's unrestricted personal tokens,
//! Uphold's refusal of a request without a client IP), with the exact headers and 429
//! bodies.

mod scenarios;
mod table;

use ratecore::policy::Policy;
use ratecore::{Decision, RateLimiter};

use scenarios::{
    at, compared_limiters, comparison_trace, evenergy_limiter, http_exchanges,
    most_in_any_interval, switch_composite, switch_trace, uphold_limiters, uphold_trace, Exchange,
    COMPARED, EVENERGY_BURST_AT, EVENERGY_PROBES, HOUR, MINUTE, POLICY_DIR, SECOND,
};
use table::{
    clock, decision_cells, human, outcome_cells, section, Align, DecisionTable, Table,
    DECISION_COLUMNS, EMPTY, OUTCOME_COLUMNS,
};

/// Wall-clock nanoseconds at simulated midnight (2026-11-24T00:00:00Z): headers with
/// absolute times (Uphold's epoch seconds, Switch's ISO 8601) need a wall clock, which is
/// a separate input from the monotonic `now` the limiter decides with.
const WALL_AT_MIDNIGHT: u64 = 1_795_478_400 * SECOND;

fn main() {
    println!("ratecore seed policies: one key each, on a simulated clock.");
    println!("Times are HH:MM:SS.mmm of a simulated day (`now` = nanoseconds since its midnight);");
    println!("durations are relative to the request's time; '-' means not applicable.");
    evenergy();
    switch();
    uphold();
    comparison();
    for (file, exchanges, shown) in http_exchanges() {
        replay(file, &exchanges, &shown);
    }
}

/// A check of `cost` at `now`, which always fits the demo's quotas.
fn check<L: RateLimiter + ?Sized>(limiter: &L, now: u64, cost: u64) -> Decision {
    limiter.check(now, cost).expect("cost fits the quota")
}

/// `Retry-After` in delta-seconds, rounded up: never tell a client to come back too early.
fn retry_after_header(d: &Decision) -> u64 {
    d.retry_after.div_ceil(SECOND)
}

// ---------------------------------------------------------------------------------------
// ev.energy
// ---------------------------------------------------------------------------------------

/// ev.energy: 1000 requests per *rolling* hour, per OAuth application and user.
fn evenergy() {
    section(
        "ev.energy, 1000 requests per rolling hour",
        "\"if you make 1000 requests at 11:59, you cannot make any more until 12:59\"",
    );
    let limiter = evenergy_limiter();
    println!("limiter: SlidingWindowStrict, 1000 per 1 h, 60 sub-windows of 1 min");

    let mut table = DecisionTable::new();
    let mut admitted = Vec::new();
    for n in 1..=1000 {
        let d = check(&limiter, EVENERGY_BURST_AT, 1);
        admitted.push(EVENERGY_BURST_AT);
        if n <= 3 || n > 997 {
            table.row(EVENERGY_BURST_AT, n, &d);
        } else if n == 4 {
            table.note("#4 to #997 at 11:59:00.000: all admitted, remaining 996 down to 3");
        }
    }
    for (i, &now) in EVENERGY_PROBES.iter().enumerate() {
        let d = check(&limiter, now, 1);
        if d.allowed {
            admitted.push(now);
        }
        table.row(now, 1001 + i as u64, &d);
    }
    table.print();

    let most = most_in_any_interval(&admitted, HOUR);
    println!(
        "promise kept: nothing admitted from 11:59:00 until 12:59:00 (each denial's \
         retry_after points at 12:59:00 exactly); at most {most} admitted in any 1-hour \
         interval."
    );
}

// ---------------------------------------------------------------------------------------
// Switch
// ---------------------------------------------------------------------------------------

/// Switch: `POST /api/readings` is limited to 5 per second and 20 per minute.
fn switch() {
    section(
        "Switch POST /api/readings, 5 requests per second and 20 per minute",
        "both limits apply; a 429 says when to retry (\"Please try again in 41 second\")",
    );
    let composite = switch_composite();
    println!("limiter: Composite of FixedWindow 5 per 1 s AND FixedWindow 20 per 1 min");

    let mut columns = DECISION_COLUMNS.to_vec();
    columns.extend([("5/s left", Align::Right), ("20/min left", Align::Right)]);
    let mut table = Table::new(&columns);
    let trace = switch_trace();
    let mut twenty_first = EMPTY;
    for (i, &now) in trace.iter().enumerate() {
        let mut each = [EMPTY; 2];
        let d = composite
            .check_each(now, 1, &mut each)
            .expect("cost 1 always fits");
        if now == at(12, 0, 19) {
            table.note("#22 is the minute's 21st counted request (the denied #6 consumed nothing)");
            twenty_first = d;
        }
        let mut cells = decision_cells(now, i as u64 + 1, &d);
        cells.push(each[0].remaining.to_string());
        cells.push(each[1].remaining.to_string());
        table.cells(cells);
    }
    table.print();

    println!(
        "would answer the 21st: 429, Retry-After: {} -- \"Save readings API interface quota \
         exceeded. Maximum allowed is 20 requests per 1m. Please try again in {} second.\"",
        retry_after_header(&twenty_first),
        retry_after_header(&twenty_first)
    );
    println!(
        "promise kept: 6th in a second denied for 500 ms; 21st in the minute denied with \
         retry_after 41 s; denials consumed nothing from either limit; admitted at 12:01:00."
    );
}

// ---------------------------------------------------------------------------------------
// Uphold
// ---------------------------------------------------------------------------------------

/// Uphold: global 300 requests per 5-minute window per IP; `Retry-After` counts down to
/// the end of the window.
fn uphold() {
    section(
        "Uphold global limit, 300 requests per 5-minute window per IP",
        "Retry-After = \"how long until the rate limit window is reset\" (example: 85 s)",
    );
    let (fixed, gcra) = uphold_limiters();
    println!(
        "one IP, two limiters fed the same trace: FixedWindow 300 per 5 min (Uphold's \
         semantics) and, for contrast, Gcra 300 per 5 min (burst 300, one every 1 s)"
    );

    let trace = uphold_trace();
    let mut columns = vec![("time", Align::Left), ("#", Align::Right)];
    for limiter in ["fixed", "gcra"] {
        columns.push((limiter, Align::Left));
        columns.extend(OUTCOME_COLUMNS);
    }
    let mut table = Table::new(&columns);
    let mut fixed_rows = Vec::new();
    for (i, &now) in trace.iter().enumerate() {
        let n = i as u64 + 1;
        let f = check(&fixed, now, 1);
        let g = check(&gcra, now, 1);
        fixed_rows.push(f);
        if n <= 2 || n >= 299 {
            // Both limits are 300, so the `limit` column is left out.
            let mut cells = vec![clock(now), n.to_string()];
            cells.extend(outcome_cells(&f));
            cells.extend(outcome_cells(&g));
            table.cells(cells);
        } else if n == 3 {
            table.note("#3 to #298 at 16:25:00.000: all admitted by both");
        }
    }
    table.print();

    let at_16_28_35 = fixed_rows[fixed_rows.len() - 2];
    println!(
        "would answer 16:28:35: 429, X-RateLimit-Remaining: 0, Retry-After: {} (the window \
         ends 16:30:00; Uphold's example says 85)",
        retry_after_header(&at_16_28_35)
    );
    println!(
        "promise kept: fixed window admits 300 per aligned 5-min window, every denial's \
         retry_after = reset_after = time to the window's end (85 s at 16:28:35); GCRA \
         never exceeds 300 + 1 per elapsed second."
    );
}

// ---------------------------------------------------------------------------------------
// The four algorithms side by side
// ---------------------------------------------------------------------------------------

/// One trace, four algorithms: a burst at the end of a minute, then one request every 5 s.
fn comparison() {
    section(
        "All four algorithms, 10 requests per minute",
        "one trace (12 at 09:00:50, then one every 5 s), four different promises",
    );
    let limiters = compared_limiters();
    println!(
        "cells: 'ok r=N' = admitted with N remaining; 'DENY t' = denied, retry_after t. \
         strict uses 6 sub-windows of 10 s."
    );

    let mut columns = vec![("time", Align::Left), ("#", Align::Right)];
    columns.extend(COMPARED.iter().map(|&(name, _)| (name, Align::Left)));
    let mut table = Table::new(&columns);
    let mut admitted: Vec<Vec<u64>> = vec![Vec::new(); limiters.len()];
    for (i, &now) in comparison_trace().iter().enumerate() {
        let mut cells = vec![clock(now), (i + 1).to_string()];
        for (k, limiter) in limiters.iter().enumerate() {
            let d = check(limiter, now, 1);
            if d.allowed {
                admitted[k].push(now);
                cells.push(format!("ok r={}", d.remaining));
            } else {
                cells.push(format!("DENY {}", human(d.retry_after)));
            }
        }
        table.cells(cells);
    }
    table.note("");
    let mut totals = vec![String::from("admitted"), String::new()];
    let mut most = vec![String::from("most in any 60 s"), String::new()];
    let mut peaks = Vec::new();
    for times in &admitted {
        let peak = most_in_any_interval(times, MINUTE);
        totals.push(times.len().to_string());
        most.push(peak.to_string());
        peaks.push(peak);
    }
    table.cells(totals);
    table.cells(most);
    table.print();

    let [gcra, fixed, approx, _strict] = [peaks[0], peaks[1], peaks[2], peaks[3]];
    println!(
        "promises kept: strict never admits more than 10 in any 60 s; fixed ({fixed}) and \
         approx ({approx}) exceed that around the minute boundary, as their semantics allow; \
         GCRA ({gcra}) paces at one per 6 s after its burst; all four decide differently."
    );
}

// ---------------------------------------------------------------------------------------
// The full policies, from their TOML files, as HTTP responses
// ---------------------------------------------------------------------------------------
/// The policy in `file`: in this process, or on Redis with `--redis URL` (feature
/// `redis`; decisions, headers and bodies are the same either way).
fn load_policy(file: &str) -> Policy {
    let args: Vec<String> = std::env::args().collect();
    let redis_url = args
        .iter()
        .position(|a| a == "--redis")
        .and_then(|i| args.get(i + 1));
    match redis_url {
        None => Policy::from_toml_file(file).expect("seed policy parses"),
        Some(url) => on_redis(file, url),
    }
}

#[cfg(feature = "redis")]
fn on_redis(file: &str, url: &str) -> Policy {
    use ratecore::policy::PolicySpec;
    use ratecore::redis_backend::{RedisBackend, RedisConfig};
    let text = std::fs::read_to_string(file).expect("seed policy readable");
    let spec = PolicySpec::from_toml_str(&text, file).expect("seed policy parses");
    let mut config = RedisConfig::new(url);
    // A fresh key space per run, and TTLs long enough for a simulated day replayed in
    // seconds (TTLs follow wall time).
    config.prefix = format!("ratecore-demo:{}:", ratecore::clock::unix_time_nanos());
    config.min_ttl = std::time::Duration::from_secs(600);
    config.timeout = std::time::Duration::from_secs(2);
    let backend = RedisBackend::new(config).expect("valid Redis URL");
    println!("(policy state on Redis at {url})");
    Policy::with_redis(spec, backend).expect("seed policy builds")
}

#[cfg(not(feature = "redis"))]
fn on_redis(_file: &str, _url: &str) -> Policy {
    eprintln!("--redis needs the `redis` feature: cargo run --release --features redis --example seed_policies -- --redis URL");
    std::process::exit(2);
}

/// Replays `exchanges` through the policy file `name`, printing the responses at `shown`.
fn replay(name: &str, exchanges: &[Exchange<'_>], shown: &[usize]) {
    let policy = load_policy(&format!("{POLICY_DIR}/{name}"));
    section(
        &format!("HTTP replay of examples/policies/{name}"),
        "every request through the policy file; the exact status, headers and body a client sees",
    );
    let mut headers = [0u8; 1024];
    let mut body = [0u8; 1024];
    for (index, exchange) in exchanges.iter().enumerate() {
        let request = exchange.request();
        let decision = policy
            .check(&request, exchange.now, 1)
            .expect("cost 1 fits");
        if !shown.contains(&index) {
            continue;
        }
        let status = if decision.allowed() {
            200
        } else {
            decision.denial_status()
        };
        let seed = if exchange.admitted {
            "admits"
        } else {
            "refuses"
        };
        println!(
            "{} {} {}  ({}) -> {status} (the seed {seed})",
            clock(exchange.now),
            exchange.method,
            exchange.path,
            exchange.label
        );
        let n = decision
            .render_headers(WALL_AT_MIDNIGHT + exchange.now, &mut headers)
            .expect("1 KiB holds the headers");
        for line in String::from_utf8_lossy(&headers[..n]).split_terminator("\r\n") {
            println!("    {line}");
        }
        if !decision.allowed() {
            println!("    Content-Type: {}", decision.content_type());
            let n = decision
                .render_body(&mut body)
                .expect("1 KiB holds the body");
            for line in String::from_utf8_lossy(&body[..n]).lines() {
                println!("    | {line}");
            }
            if decision.denied_for_missing_key() {
                // Refused for what it lacks, not for its rate: waiting does not help.
                let limit = decision.deciding().expect("a limit refused it");
                println!(
                    "    (refused by {}: the request has no {})",
                    limit.name,
                    limit.key.join(", ")
                );
            }
        }
    }
}
