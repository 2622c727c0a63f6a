//! Server CPU per check, in one run on one `redis-server`: the ratecore module, the
//! ratecore Lua script, redis-cell's `CL.THROTTLE` (when the server has it loaded) and a
//! minimal GCRA Lua script as a yardstick. Each scenario runs the same number of checks
//! over the same keys (round robin), after `CONFIG RESETSTAT`, and reads the command's
//! `usec_per_call` from `INFO commandstats`.
//!
//! A measurement, not a test: `#[ignore]`d, run by `tests/redis/cpu.sh`, which builds and
//! loads the modules and prints this table. `RATECORE_CPU_CHECKS` sets the checks per
//! scenario (default 30 000).
#![cfg(feature = "redis")]

#[path = "redis/common.rs"]
mod common;

use ratecore::redis_backend::{RedisBackend, RedisComposite, RedisEngine};
use ratecore::{Algorithm, Quota};

const KEYS: u64 = 10_000;
/// 100 per second per key (GCRA burst 100): with 10 000 keys round robin, most checks
/// are admitted and write, the common and the costlier path.
const LIMIT: u64 = 100;
const PERIOD: u64 = 1_000_000_000;

/// A minimal GCRA in Lua (ms, doubles): the least a script-based limiter does per check.
const YARDSTICK: &str = r"
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
local now, t, tau = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if tat < now then tat = now end
local new = tat + t
if new - now > tau then return {0, new - now - tau} end
redis.call('SET', KEYS[1], new, 'PX', math.ceil(new - now))
return {1, 0}
";

fn usec_per_call(c: &mut redis::Connection, command: &str) -> (u64, f64) {
    let info: String = redis::cmd("INFO").arg("commandstats").query(c).unwrap();
    let line = info
        .lines()
        .find(|l| l.starts_with(&format!("cmdstat_{command}:")))
        .unwrap_or_else(|| panic!("no stats for {command}: {info}"));
    let field = |name: &str| {
        line.split([':', ','])
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_owned()
    };
    (
        field("calls").parse().unwrap(),
        field("usec_per_call").parse().unwrap(),
    )
}

fn has_command(c: &mut redis::Connection, name: &str) -> bool {
    let info: redis::Value = redis::cmd("COMMAND")
        .arg("INFO")
        .arg(name)
        .query(c)
        .unwrap();
    matches!(&info, redis::Value::Array(items) if matches!(items.first(), Some(redis::Value::Array(_))))
}

struct Row {
    scenario: &'static str,
    command: &'static str,
    calls: u64,
    usec: f64,
    admitted: u64,
}

fn measure(
    c: &mut redis::Connection,
    scenario: &'static str,
    command: &'static str,
    checks: u64,
    mut check: impl FnMut(u64) -> bool,
) -> Row {
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(c).unwrap();
    let mut admitted = 0;
    for i in 0..checks {
        admitted += u64::from(check(i));
    }
    let (calls, usec) = usec_per_call(c, command);
    Row {
        scenario,
        command,
        calls,
        usec,
        admitted,
    }
}

fn composite(backend: &RedisBackend, a: Algorithm, b: Algorithm) -> RedisComposite {
    let quota = Quota::new(LIMIT, PERIOD).unwrap();
    backend
        .composite(vec![
            backend.limit("c0", a, quota).unwrap(),
            backend.limit("c1", b, quota).unwrap(),
        ])
        .unwrap()
}

#[test]
#[ignore = "a measurement: run by tests/redis/cpu.sh"]
fn server_cpu_per_check() {
    let Some(url) = common::redis_url("server_cpu_per_check") else {
        return;
    };
    let checks: u64 = std::env::var("RATECORE_CPU_CHECKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000);
    let mut c = common::admin(&url);
    assert!(
        has_command(&mut c, "RATECORE.CHECK"),
        "the server has no ratecore module"
    );
    let prefix = common::unique_prefix("cpu");
    let backend = |engine| {
        let mut config = common::test_config(&url, "cpu");
        config.prefix = prefix.clone();
        config.min_ttl = std::time::Duration::from_millis(1);
        config.engine = engine;
        RedisBackend::new(config).unwrap()
    };
    let module = backend(RedisEngine::Module);
    let script = backend(RedisEngine::Script);
    let quota = Quota::new(LIMIT, PERIOD).unwrap();
    let strict = Algorithm::SlidingWindowStrict { sub_windows: 60 };
    let key = |i: u64| format!("{{k{}}}", i % KEYS).into_bytes();
    let now = ratecore::clock::unix_time_nanos;
    // Warm-up, not recorded: the server's key table grows to the key count first, so no
    // scenario pays for its rehashing.
    let warm = module.limiter("warm-up", Algorithm::Gcra, quota).unwrap();
    for i in 0..checks {
        let _ = warm.try_check(&key(i), now(), 1).unwrap();
    }
    let mut rows = Vec::new();
    for (scenario, engine, algorithm) in [
        ("module: GCRA", &module, Algorithm::Gcra),
        ("module: fixed window", &module, Algorithm::FixedWindow),
        (
            "module: approximate sliding window",
            &module,
            Algorithm::SlidingWindowApprox,
        ),
        (
            "module: strict sliding window, 60 sub-windows",
            &module,
            strict,
        ),
        ("Lua script: GCRA", &script, Algorithm::Gcra),
        (
            "Lua script: strict sliding window, 60 sub-windows",
            &script,
            strict,
        ),
    ] {
        let limiter = engine.limiter(scenario, algorithm, quota).unwrap();
        let command = if std::ptr::eq(engine, &module) {
            "ratecore.check"
        } else {
            "evalsha"
        };
        rows.push(measure(&mut c, scenario, command, checks, |i| {
            limiter.try_check(&key(i), now(), 1).unwrap().allowed
        }));
    }
    for (scenario, engine) in [
        ("module: composite GCRA + strict (2 keys)", &module),
        ("Lua script: composite GCRA + strict (2 keys)", &script),
    ] {
        let both = composite(engine, Algorithm::Gcra, strict);
        let command = if std::ptr::eq(engine, &module) {
            "ratecore.check"
        } else {
            "evalsha"
        };
        rows.push(measure(&mut c, scenario, command, checks, |i| {
            both.try_check_each(&key(i), now(), 1, &mut [])
                .unwrap()
                .allowed
        }));
    }
    let mut cell_c = common::admin(&url);
    if has_command(&mut c, "CL.THROTTLE") {
        rows.push(measure(
            &mut c,
            "redis-cell 0.2.2: CL.THROTTLE (GCRA)",
            "cl.throttle",
            checks,
            |i| {
                let mut k = prefix.as_bytes().to_vec();
                k.extend_from_slice(b"cell:");
                k.extend_from_slice(&key(i));
                let reply: Vec<i64> = redis::cmd("CL.THROTTLE")
                    .arg(k)
                    .arg(LIMIT - 1)
                    .arg(LIMIT)
                    .arg(PERIOD / 1_000_000_000)
                    .arg(1)
                    .query(&mut cell_c)
                    .unwrap();
                reply[0] == 0
            },
        ));
    } else {
        eprintln!("redis-cell: not loaded (see tests/redis/cpu.sh's output for why)");
    }
    let yardstick = redis::Script::new(YARDSTICK);
    let mut y = common::admin(&url);
    let interval_ms = PERIOD as f64 / 1e6 / LIMIT as f64;
    let tau_ms = interval_ms * LIMIT as f64;
    rows.push(measure(
        &mut c,
        "yardstick: minimal GCRA Lua script",
        "evalsha",
        checks,
        |i| {
            let mut k = prefix.as_bytes().to_vec();
            k.extend_from_slice(b"yard:");
            k.extend_from_slice(&key(i));
            let reply: Vec<i64> = yardstick
                .key(k)
                .arg(now() / 1_000_000)
                .arg(interval_ms)
                .arg(tau_ms)
                .invoke(&mut y)
                .unwrap();
            reply[0] == 1
        },
    ));

    let base = rows[0].usec;
    println!("| scenario | command | calls | admitted | server µs per call | vs module GCRA |");
    println!("|---|---|---|---|---|---|");
    for row in &rows {
        println!(
            "| {} | `{}` | {} | {} | {:.2} | {:.2}x |",
            row.scenario,
            row.command.to_ascii_uppercase(),
            row.calls,
            row.admitted,
            row.usec,
            row.usec / base
        );
    }
}
