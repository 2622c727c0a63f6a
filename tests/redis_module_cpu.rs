//! Server CPU per check, in one run on one `redis-server`: the ratecore module, the
//! ratecore Lua script, redis-cell's `CL.THROTTLE` (when the server has it loaded), a
//! minimal GCRA Lua script as a yardstick and a bare `SET … PXAT` as the floor. Every
//! scenario runs the same number of checks over the same number of keys (round robin), at
//! the wall clock's `now`. Every scenario first runs one turn on its own keys that is not
//! recorded (a warm-up), then the scenarios take turns in ten rounds; a turn's server
//! time is the growth of its command's `calls` and `usec` in `INFO commandstats` around
//! it. Besides each scenario's time per call over all rounds, the table gives the median
//! of its per-round ratios to the module's GCRA and their range, so that one round slowed
//! by other work on the machine cannot turn the verdict.
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

/// The command's total `(calls, usec)` so far, from `INFO commandstats`.
fn totals(c: &mut redis::Connection, command: &str) -> (u64, u64) {
    let info: String = redis::cmd("INFO").arg("commandstats").query(c).unwrap();
    let Some(line) = info
        .lines()
        .find(|l| l.starts_with(&format!("cmdstat_{command}:")))
    else {
        return (0, 0);
    };
    let field = |name: &str| -> u64 {
        line.split([':', ','])
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap()
            .parse()
            .unwrap()
    };
    (field("calls"), field("usec"))
}

fn has_command(c: &mut redis::Connection, name: &str) -> bool {
    let info: redis::Value = redis::cmd("COMMAND")
        .arg("INFO")
        .arg(name)
        .query(c)
        .unwrap();
    matches!(&info, redis::Value::Array(items) if matches!(items.first(), Some(redis::Value::Array(_))))
}

/// One scenario: its checks, and what they cost the server so far.
struct Scenario<'a> {
    name: &'static str,
    command: &'static str,
    check: Box<dyn FnMut(u64) -> bool + 'a>,
    calls: u64,
    usec: u64,
    admitted: u64,
    /// Server µs per call in each recorded round.
    rounds: Vec<f64>,
}

impl<'a> Scenario<'a> {
    fn new(name: &'static str, command: &'static str, check: impl FnMut(u64) -> bool + 'a) -> Self {
        Self {
            name,
            command,
            check: Box::new(check),
            calls: 0,
            usec: 0,
            admitted: 0,
            rounds: Vec::new(),
        }
    }

    /// Runs checks `from..to` and, unless `warm_up`, records their server time as a round.
    fn run(&mut self, c: &mut redis::Connection, from: u64, to: u64, warm_up: bool) {
        let (calls, usec) = totals(c, self.command);
        let mut admitted = 0;
        for i in from..to {
            admitted += u64::from((self.check)(i));
        }
        let (calls_after, usec_after) = totals(c, self.command);
        if warm_up {
            return;
        }
        let (calls, usec) = (calls_after - calls, usec_after - usec);
        self.admitted += admitted;
        self.calls += calls;
        self.usec += usec;
        self.rounds.push(usec as f64 / calls.max(1) as f64);
    }

    /// The median and the range of this scenario's per-round ratios to `base`'s.
    fn ratios(&self, base: &Self) -> (f64, f64, f64) {
        let mut ratios: Vec<f64> = self
            .rounds
            .iter()
            .zip(&base.rounds)
            .map(|(ours, theirs)| ours / theirs.max(f64::MIN_POSITIVE))
            .collect();
        ratios.sort_by(f64::total_cmp);
        let n = ratios.len();
        if n == 0 {
            return (f64::NAN, f64::NAN, f64::NAN);
        }
        let median = if n % 2 == 1 {
            ratios[n / 2]
        } else {
            (ratios[n / 2 - 1] + ratios[n / 2]) / 2.0
        };
        (median, ratios[0], ratios[n - 1])
    }

    fn usec_per_call(&self) -> f64 {
        self.usec as f64 / self.calls.max(1) as f64
    }
}

/// A scenario calling the server directly, on a connection of its own: `call` gets the
/// connection, the key of check `i` (the test's prefix, the scenario's `tag`, then one of
/// 10 000 keys round robin) and `i`, and says whether the check was admitted.
fn direct<'a>(
    (url, prefix, tag): (&str, &str, &'static [u8]),
    name: &'static str,
    command: &'static str,
    mut call: impl FnMut(&mut redis::Connection, Vec<u8>, u64) -> bool + 'a,
) -> Scenario<'a> {
    let mut connection = common::admin(url);
    let prefix = prefix.to_owned();
    Scenario::new(name, command, move |i| {
        let mut key = prefix.as_bytes().to_vec();
        key.extend_from_slice(tag);
        key.extend_from_slice(format!("{{k{}}}", i % KEYS).as_bytes());
        call(&mut connection, key, i)
    })
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
    for i in 0..checks.min(KEYS) {
        let _ = warm.try_check(&key(i), now(), 1).unwrap();
    }
    let mut scenarios = Vec::new();
    for (name, engine, algorithm) in [
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
        let limiter = engine.limiter(name, algorithm, quota).unwrap();
        let command = if std::ptr::eq(engine, &module) {
            "ratecore.check"
        } else {
            "evalsha"
        };
        scenarios.push(Scenario::new(name, command, move |i| {
            limiter.try_check(&key(i), now(), 1).unwrap().allowed
        }));
    }
    for (name, engine) in [
        ("module: composite GCRA + strict (2 keys)", &module),
        ("Lua script: composite GCRA + strict (2 keys)", &script),
    ] {
        let both = composite(engine, Algorithm::Gcra, strict);
        let command = if std::ptr::eq(engine, &module) {
            "ratecore.check"
        } else {
            "evalsha"
        };
        scenarios.push(Scenario::new(name, command, move |i| {
            both.try_check_each(&key(i), now(), 1, &mut [])
                .unwrap()
                .allowed
        }));
    }
    if has_command(&mut c, "CL.THROTTLE") {
        scenarios.push(direct(
            (&url, &prefix, b"cell:"),
            "redis-cell 0.2.2: CL.THROTTLE (GCRA)",
            "cl.throttle",
            |c, key, _| {
                let reply: Vec<i64> = redis::cmd("CL.THROTTLE")
                    .arg(key)
                    .arg(LIMIT - 1)
                    .arg(LIMIT)
                    .arg(PERIOD / 1_000_000_000)
                    .arg(1)
                    .query(c)
                    .unwrap();
                reply[0] == 0
            },
        ));
    } else {
        println!("redis-cell: not loaded; compared with the yardstick alone");
    }
    let yardstick = redis::Script::new(YARDSTICK);
    let interval_ms = PERIOD as f64 / 1e6 / LIMIT as f64;
    let tau_ms = interval_ms * LIMIT as f64;
    scenarios.push(direct(
        (&url, &prefix, b"yard:"),
        "yardstick: minimal GCRA Lua script",
        "evalsha",
        move |c, key, _| {
            let reply: Vec<i64> = yardstick
                .key(key)
                .arg(now() / 1_000_000)
                .arg(interval_ms)
                .arg(tau_ms)
                .invoke(c)
                .unwrap();
            reply[0] == 1
        },
    ));
    // The floor of any limiter that stores a state with an expiry: one 8-byte SET with
    // an absolute expiry, which the module's check does besides reading, deciding,
    // replicating and replying.
    scenarios.push(direct(
        (&url, &prefix, b"floor:"),
        "floor: one 8-byte SET with an expiry",
        "set",
        |c, key, i| {
            redis::cmd("SET")
                .arg(key)
                .arg(&i.to_be_bytes()[..])
                .arg("PXAT")
                .arg(now() / 1_000_000 + 10)
                .query::<()>(c)
                .unwrap();
            true
        },
    ));

    // A warm-up turn per scenario on its own keys (the keys of the last round), then
    // interleaved rounds, so that a change in the machine's load weighs on every
    // scenario alike.
    const ROUNDS: u64 = 10;
    let last = checks * (ROUNDS - 1) / ROUNDS;
    for scenario in &mut scenarios {
        scenario.run(&mut c, last, checks, true);
    }
    for round in 0..ROUNDS {
        let (from, to) = (checks * round / ROUNDS, checks * (round + 1) / ROUNDS);
        for scenario in &mut scenarios {
            scenario.run(&mut c, from, to, false);
        }
    }

    let base = &scenarios[0];
    println!(
        "| scenario | command | calls | admitted | server µs per call \
         | vs module GCRA: median of {ROUNDS} rounds | range |"
    );
    println!("|---|---|---|---|---|---|---|");
    for s in &scenarios {
        let (median, low, high) = s.ratios(base);
        println!(
            "| {} | `{}` | {} | {} | {:.2} | {median:.2}x | {low:.2}–{high:.2} |",
            s.name,
            s.command.to_ascii_uppercase(),
            s.calls,
            s.admitted,
            s.usec_per_call(),
        );
    }
    if let Some(cell) = scenarios.iter().find(|s| s.command == "cl.throttle") {
        let (median, low, high) = base.ratios(cell);
        println!(
            "module GCRA / redis-cell per round: median {median:.2}, range {low:.2}–{high:.2}"
        );
    }
}
