//! Checks per second against a local Redis: an ignored test that prints a table.
//!
//! ```text
//! bash tests/redis/run.sh    # runs it in release mode after the tests, or by hand:
//! RATECORE_REDIS_URL=redis://127.0.0.1:6379/ \
//!     cargo test --release --features redis-tokio --test redis_bench -- --ignored --nocapture --test-threads=1
//! ```
//!
//! For context it also measures the floor any one-round-trip limiter (`redis-cell`'s
//! `CL.THROTTLE`, or ours) sits on: a `PING`, and an `EVALSHA` of a script that does
//! nothing but read one key.
#![cfg(feature = "redis")]

#[path = "redis/common.rs"]
mod common;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ratecore::clock::unix_time_nanos;
use ratecore::redis_backend::{RedisBackend, RedisConfig};
use ratecore::{Algorithm, Quota};

const RUN: Duration = Duration::from_millis(1500);
const KEYS: u64 = 10_000;

/// Runs `op` on `threads` threads for `RUN`; returns (ops/s, p50 µs, p99 µs).
fn measure(threads: usize, op: impl Fn(u64) + Send + Sync + 'static) -> (f64, f64, f64) {
    let op = Arc::new(op);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let op = Arc::clone(&op);
            thread::spawn(move || {
                let mut latencies = Vec::new();
                let mut i = t as u64 * 7919;
                let begin = Instant::now();
                while begin.elapsed() < RUN {
                    let one = Instant::now();
                    op(i);
                    latencies.push(one.elapsed());
                    i += 1;
                }
                latencies
            })
        })
        .collect();
    let latencies: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    summarize(latencies, started.elapsed().as_secs_f64())
}

/// `(operations per second, median µs, p99 µs)` of `latencies` measured over `elapsed`
/// seconds.
fn summarize(mut latencies: Vec<Duration>, elapsed: f64) -> (f64, f64, f64) {
    latencies.sort_unstable();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q) as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    (latencies.len() as f64 / elapsed, pick(0.5), pick(0.99))
}

/// Resets the server's command statistics.
fn reset_server_stats(admin: &mut redis::Connection) {
    redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query::<()>(admin)
        .unwrap();
}

/// The server's own time per call of `command` since the last reset, in µs.
fn server_usec_per_call(admin: &mut redis::Connection, command: &str) -> f64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query(admin).unwrap();
    let prefix = format!("cmdstat_{command}:");
    info.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|l| {
            l.split(',')
                .find_map(|f| f.strip_prefix("usec_per_call="))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(f64::NAN)
}

/// This process's CPU time so far, user and system, all threads: `/proc/self/stat`, in
/// ticks of Linux's fixed `USER_HZ` (100 per second).
#[cfg(feature = "redis-tokio")]
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name's closing parenthesis, field 3 (the state) comes first:
    // utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

/// The server process's CPU time so far, user and system (`INFO cpu`).
#[cfg(feature = "redis-tokio")]
fn server_cpu_seconds(admin: &mut redis::Connection) -> f64 {
    let info: String = redis::cmd("INFO").arg("cpu").query(admin).unwrap();
    info.lines()
        .filter_map(|l| {
            l.strip_prefix("used_cpu_sys:")
                .or_else(|| l.strip_prefix("used_cpu_user:"))
        })
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum()
}

fn report(
    admin: &mut redis::Connection,
    command: &str,
    name: &str,
    threads: usize,
    (rate, p50, p99): (f64, f64, f64),
) {
    let server = server_usec_per_call(admin, command);
    println!(
        "| {name:<44} | {threads:>7} | {rate:>10.0} | {p50:>8.1} | {p99:>8.1} | {server:>10.1} |"
    );
    reset_server_stats(admin);
}

/// What a benchmark runs on: the server's URL, a backend on the engine
/// `RATECORE_REDIS_ENGINE` names under a fresh prefix (answering `PING`) and its
/// configuration, and an admin connection whose command statistics start from zero.
/// `None` (the benchmark is skipped) without a server.
struct Bench {
    url: String,
    // Read by the async benchmark only (feature `redis-tokio`).
    #[cfg_attr(not(feature = "redis-tokio"), allow(dead_code))]
    config: RedisConfig,
    backend: RedisBackend,
    admin: redis::Connection,
}

fn bench(test: &str, prefix: &str) -> Option<Bench> {
    let url = common::redis_url(test)?;
    let mut config = RedisConfig::new(url.as_str());
    config.prefix = common::unique_prefix(prefix);
    config.timeout = Duration::from_secs(2);
    config.engine = common::engine();
    let backend = RedisBackend::new(config.clone()).unwrap();
    backend.ping().unwrap();
    let mut admin = common::admin(&url);
    reset_server_stats(&mut admin);
    Some(Bench {
        url,
        config,
        backend,
        admin,
    })
}

#[test]
#[ignore = "benchmark: run by tests/redis/run.sh in release mode"]
fn checks_per_second() {
    let Some(mut bench) = bench("checks_per_second", "bench") else {
        return;
    };
    println!();
    println!("| scenario (10 000 keys, round robin)          | threads |  checks/s  | p50 (µs) | p99 (µs) | server µs/call |");
    println!("|----------------------------------------------|---------|------------|----------|----------|------------|");

    {
        let b = bench.backend.clone();
        report(
            &mut bench.admin,
            "ping",
            "PING (round-trip floor)",
            1,
            measure(1, move |_| b.ping().unwrap()),
        );
    }
    {
        let client = redis::Client::open(bench.url.as_str()).unwrap();
        let script = Arc::new(redis::Script::new("return redis.call('GET', KEYS[1])"));
        let connections: Vec<_> = (0..1)
            .map(|_| std::sync::Mutex::new(client.get_connection().unwrap()))
            .collect();
        let connections = Arc::new(connections);
        report(
            &mut bench.admin,
            "evalsha",
            "EVALSHA of a one-GET script (Lua floor)",
            1,
            measure(1, move |i| {
                let mut c = connections[0].lock().unwrap();
                let _: Option<Vec<u8>> = script
                    .key(format!("bench-floor:{}", i % KEYS))
                    .invoke(&mut *c)
                    .unwrap();
            }),
        );
    }
    let second = 1_000_000_000u64;
    let scenarios: [(&str, Algorithm, Quota); 4] = [
        (
            "GCRA 100/s",
            Algorithm::Gcra,
            Quota::per_second(100).unwrap(),
        ),
        (
            "fixed window 100/s",
            Algorithm::FixedWindow,
            Quota::per_second(100).unwrap(),
        ),
        (
            "approximate sliding window 100/s",
            Algorithm::SlidingWindowApprox,
            Quota::per_second(100).unwrap(),
        ),
        (
            "strict sliding window 1000/h, 60 sub-windows",
            Algorithm::SlidingWindowStrict { sub_windows: 60 },
            Quota::per_hour(1000).unwrap(),
        ),
    ];
    for (name, algorithm, quota) in scenarios {
        let limiter = bench.backend.limiter("bench", algorithm, quota).unwrap();
        let result = measure(1, move |i| {
            let key = (i % KEYS).to_be_bytes();
            let checked = limiter.check(&key, unix_time_nanos(), 1).unwrap();
            assert!(checked.fault.is_none());
        });
        report(&mut bench.admin, "evalsha", name, 1, result);
    }
    let strict = Algorithm::SlidingWindowStrict { sub_windows: 60 };
    let composite = common::composite(
        &bench.backend,
        &[
            ("c1", Algorithm::Gcra, Quota::per_second(5).unwrap()),
            ("c2", strict, Quota::new(20, 60 * second).unwrap()),
        ],
    );
    {
        let composite = composite.clone();
        report(
            &mut bench.admin,
            "evalsha",
            "composite: GCRA 5/s + strict 20/min",
            1,
            measure(1, move |i| {
                let key = (i % KEYS).to_be_bytes();
                let checked = composite.check(&key, unix_time_nanos(), 1).unwrap();
                assert!(checked.fault.is_none());
            }),
        );
    }
    for threads in [2, 4, 8, 16] {
        let limiter = bench
            .backend
            .limiter("bench-mt", Algorithm::Gcra, Quota::per_second(100).unwrap())
            .unwrap();
        report(
            &mut bench.admin,
            "evalsha",
            "GCRA 100/s",
            threads,
            measure(threads, move |i| {
                let key = (i % KEYS).to_be_bytes();
                let checked = limiter.check(&key, unix_time_nanos(), 1).unwrap();
                assert!(checked.fault.is_none());
            }),
        );
    }
    {
        let limiter = bench
            .backend
            .limiter(
                "bench-one",
                Algorithm::Gcra,
                Quota::per_second(100).unwrap(),
            )
            .unwrap();
        report(
            &mut bench.admin,
            "evalsha",
            "GCRA 100/s, one hot key",
            8,
            measure(8, move |_| {
                let checked = limiter.check(b"hot", unix_time_nanos(), 1).unwrap();
                assert!(checked.fault.is_none());
            }),
        );
    }
    let stats = bench.backend.stats();
    println!();
    println!("{stats:?}");
    assert_eq!(stats.inconsistent, 0);
    assert_eq!(stats.checks, stats.decided);
}

/// Runs `op` from `tasks` tasks on a `workers`-thread tokio runtime for `RUN`; returns
/// (ops/s, p50 µs, p99 µs).
#[cfg(feature = "redis-tokio")]
fn measure_async<F, Fut>(workers: usize, tasks: usize, op: F) -> (f64, f64, f64)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    let op = Arc::new(op);
    let (latencies, elapsed) = runtime.block_on(async move {
        let started = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let op = Arc::clone(&op);
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut i = t as u64 * 7919;
                    while started.elapsed() < RUN {
                        let one = Instant::now();
                        op(i).await;
                        latencies.push(one.elapsed());
                        i += 1;
                    }
                    latencies
                })
            })
            .collect();
        let mut latencies = Vec::new();
        for handle in handles {
            latencies.extend(handle.await.unwrap());
        }
        (latencies, started.elapsed().as_secs_f64())
    });
    summarize(latencies, elapsed)
}

/// The async transport (feature `redis-tokio`): 64 tasks on one multiplexed connection
/// against the blocking backend on one connection, and against the server's ceiling for
/// the script (10^6 / its `usec_per_call`, measured during the same row). Three rounds,
/// the rows interleaved so that each round's ratios compare neighbours in time; the
/// summary gives the median round's ratios.
#[cfg(feature = "redis-tokio")]
#[test]
#[ignore = "benchmark: run by tests/redis/run.sh in release mode"]
fn async_checks_per_second() {
    let Some(bench) = bench("async_checks_per_second", "bench-async") else {
        return;
    };
    let (config, backend, mut admin) = (bench.config, bench.backend, bench.admin);
    let quota = Quota::per_second(100).unwrap();
    reset_server_stats(&mut admin);
    println!();
    println!("| GCRA 100/s, 10 000 keys round robin | round | tasks | checks/s | p50 (µs) | p99 (µs) | server µs/call | server ceiling checks/s | client CPU µs/check | server CPU µs/check |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    // The command the server ran: the module's, or the script's.
    let command = if config.engine == ratecore::redis_backend::RedisEngine::Module {
        "ratecore.check"
    } else {
        "evalsha"
    };
    println!("engine: {command}");
    // Each row also reports the CPU time the client process and the server process spent
    // per check: what bounds the rate on a machine whose cores other work shares.
    let mut row = |name: &str,
                   round: usize,
                   tasks: usize,
                   run: &mut dyn FnMut() -> (f64, f64, f64)| {
        let (client_cpu, server_cpu) = (process_cpu_seconds(), server_cpu_seconds(&mut admin));
        let started = Instant::now();
        let (rate, p50, p99) = run();
        let checks = rate * started.elapsed().as_secs_f64();
        let client_cpu = (process_cpu_seconds() - client_cpu) * 1e6 / checks;
        let server_cpu = (server_cpu_seconds(&mut admin) - server_cpu) * 1e6 / checks;
        let server = server_usec_per_call(&mut admin, command);
        let ceiling = 1e6 / server;
        println!(
            "| {name} | {round} | {tasks} | {rate:.0} | {p50:.1} | {p99:.1} | {server:.1} | {ceiling:.0} | {client_cpu:.1} | {server_cpu:.1} |"
        );
        reset_server_stats(&mut admin);
        (rate, ceiling)
    };
    // (async / blocking, async / ceiling) per round, for one and two runtime threads.
    let mut ratios: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
    for round in 1..=3 {
        let limiter = backend.limiter("blocking", Algorithm::Gcra, quota).unwrap();
        let (blocking, _) = row("blocking, one connection", round, 1, &mut || {
            let limiter = limiter.clone();
            measure(1, move |i| {
                let key = (i % KEYS).to_be_bytes();
                let checked = limiter.check(&key, unix_time_nanos(), 1).unwrap();
                assert!(checked.fault.is_none());
            })
        });
        // Blocking checks from 16 threads, pipelined on one multiplexed connection.
        let mut pipelined = config.clone();
        pipelined.pipelined = true;
        let shared = RedisBackend::new(pipelined).unwrap();
        let limiter = shared.limiter("pipelined", Algorithm::Gcra, quota).unwrap();
        row(
            "blocking, 16 threads pipelined on one connection",
            round,
            16,
            &mut || {
                let limiter = limiter.clone();
                measure(16, move |i| {
                    let key = (i % KEYS).to_be_bytes();
                    let checked = limiter.check(&key, unix_time_nanos(), 1).unwrap();
                    assert!(checked.fault.is_none());
                })
            },
        );
        assert_eq!(
            shared.stats().connects,
            1,
            "one connection: {:?}",
            shared.stats()
        );
        // The runtime's threads share the machine's cores with redis-server: one and
        // two. Each runtime gets its own backend: a multiplexed connection is driven by
        // a task on the runtime that opened it.
        for (workers, ratios) in [1, 2].into_iter().zip(ratios.iter_mut()) {
            let backend = RedisBackend::new(config.clone()).unwrap();
            let limiter = backend.limiter("async", Algorithm::Gcra, quota).unwrap();
            let (asynchronous, ceiling) = row(
                &format!("async, one multiplexed connection, {workers} runtime thread(s)"),
                round,
                64,
                &mut || {
                    let limiter = limiter.clone();
                    measure_async(workers, 64, move |i| {
                        let limiter = limiter.clone();
                        async move {
                            let key = (i % KEYS).to_be_bytes();
                            let checked = limiter.check_async(&key, unix_time_nanos(), 1).await;
                            assert!(checked.unwrap().fault.is_none());
                        }
                    })
                },
            );
            ratios.push((asynchronous / blocking, asynchronous / ceiling));
            let stats = backend.stats();
            assert_eq!(stats.inconsistent, 0);
            assert_eq!(stats.checks, stats.decided, "{stats:?}");
        }
    }
    println!();
    for (workers, mut rounds) in [1, 2].into_iter().zip(ratios) {
        rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (vs_blocking, vs_ceiling) = rounds[rounds.len() / 2];
        println!(
            "{workers} runtime thread(s), median round: async / blocking {vs_blocking:.2}x (goal >= 5x); async / server ceiling {:.0}% (goal >= 80%)",
            100.0 * vs_ceiling
        );
    }
    let stats = backend.stats();
    println!("{stats:?}");
    assert_eq!(stats.inconsistent, 0);
    assert_eq!(stats.checks, stats.decided);
}
