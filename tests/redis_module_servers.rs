//! The ratecore Redis module on servers these tests start themselves:
//! - its writes reach replicas and the AOF as effects: a replica and a primary restarted
//!   from its AOF hold the same values with the same absolute expiries, without deciding
//!   again (they receive `SET ... PXAT`, never the command);
//! - a backend left to detect uses the module, and the Lua script on the same state once
//!   the module is unloaded;
//! - its writes raise the keyspace events the script's writes raise.
//!
//! Starts primaries (AOF on, `appendfsync always`) and a replica on 127.0.0.1 with the
//! module from `RATECORE_REDIS_MODULE` (an absolute path to the built `.so`;
//! `tests/redis/run.sh` sets it); skips with a notice without it.
#![cfg(feature = "redis")]

#[path = "redis/common.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ratecore::redis_backend::{RedisBackend, RedisEngine};
use ratecore::{Algorithm, Limiter, Quota, RateLimiter};
use redis::Commands;

/// A redis-server child process, killed on drop (and then its own scratch directory, if
/// it has one, removed).
struct Server {
    child: Child,
    port: u16,
    scratch: Option<ScratchDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(module: &Path, dir: &Path, extra: &[&str]) -> Self {
        // Each start its own run of candidate ports: tests run in parallel threads of one
        // process, and two servers must not pick (and share) the same port.
        static STARTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let start = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) * 50;
        for attempt in 0..50u16 {
            let port = 20_000
                + u16::try_from(
                    (std::process::id() as u64 * 7919 + (start + u64::from(attempt)) * 104_729)
                        % 40_000,
                )
                .unwrap();
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                continue;
            }
            let mut child = Command::new("redis-server")
                .args([
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--save",
                    "",
                ])
                .arg("--dir")
                .arg(dir)
                .arg("--loadmodule")
                .arg(module)
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server runs");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if let Ok(mut c) = connect(port) {
                    if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                        return Self {
                            child,
                            port,
                            scratch: None,
                        };
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("could not start redis-server");
    }

    /// A server with the module and `extra` arguments, alone in a scratch directory named
    /// after `test`; `None` (skip the test) without a built module.
    fn alone(test: &str, extra: &[&str]) -> Option<Self> {
        let module = module_path()?;
        let dir = ScratchDir::new(test);
        let mut server = Self::start(&module, &dir, extra);
        server.scratch = Some(dir);
        Some(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn connection(&self) -> redis::Connection {
        connect(self.port).expect("connect")
    }
}

fn connect(port: u16) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let c = client.get_connection_with_timeout(Duration::from_secs(5))?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(c)
}

fn module_path() -> Option<PathBuf> {
    match std::env::var_os("RATECORE_REDIS_MODULE") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => {
            common::notice(
                "skipped redis_module_servers: RATECORE_REDIS_MODULE is not set (run tests/redis/run.sh)",
            );
            None
        }
    }
}

/// Every key under `prefix`: its value and absolute expiry (ms).
fn snapshot(c: &mut redis::Connection, prefix: &str) -> Vec<(Vec<u8>, Vec<u8>, i64)> {
    let mut keys: Vec<Vec<u8>> = c.keys(format!("{prefix}*")).expect("KEYS");
    keys.sort();
    keys.into_iter()
        .map(|key| {
            let value: Vec<u8> = c.get(&key).expect("GET");
            let at: i64 = redis::cmd("PEXPIRETIME")
                .arg(&key)
                .query(c)
                .expect("PEXPIRETIME");
            (key, value, at)
        })
        .collect()
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A fresh directory for this test's servers, under the system's temporary directory,
/// removed on drop: declared before the servers that use it, it outlives them.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "ratecore-module-{test}-{}-{}",
            std::process::id(),
            ratecore::clock::unix_time_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl std::ops::Deref for ScratchDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn replica_and_aof_restart_reach_the_same_state() {
    let Some(module) = module_path() else {
        return;
    };
    let dir = ScratchDir::new("repl");
    let (primary_dir, replica_dir) = (dir.join("primary"), dir.join("replica"));
    std::fs::create_dir_all(&primary_dir).unwrap();
    std::fs::create_dir_all(&replica_dir).unwrap();
    let aof = ["--appendonly", "yes", "--appendfsync", "always"];
    let primary = Server::start(&module, &primary_dir, &aof);
    let replica_of = primary.port.to_string();
    let replica = Server::start(
        &module,
        &replica_dir,
        &["--replicaof", "127.0.0.1", &replica_of],
    );
    let mut rc = replica.connection();
    wait_for("the replica's link", || {
        let info: String = redis::cmd("INFO").arg("replication").query(&mut rc).ok()?;
        info.contains("master_link_status:up").then_some(())
    });

    // Checks on every algorithm and a composite, with real time (so that expiries lie
    // in the future) and a mirror in process for one key; each charge waits for the
    // replica (its `WAIT` sent with the check).
    let mut config = common::test_config(&primary.url(), "replication");
    config.engine = RedisEngine::Module;
    config.wait_replicas = 1;
    config.wait_timeout = Duration::from_secs(5);
    let prefix = config.prefix.clone();
    let backend = RedisBackend::new(config).unwrap();
    let quota = Quota::new(5, 60_000_000_000).unwrap();
    let algorithms = common::each_algorithm(6);
    let limits: Vec<_> = algorithms
        .iter()
        .enumerate()
        .map(|(i, a)| backend.limit(&format!("a{i}"), *a, quota).unwrap())
        .collect();
    let composite = backend.composite(limits.clone()).unwrap();
    let mirror = Limiter::new(algorithms[3], quota).unwrap();
    let strict = backend.limiter("a3", algorithms[3], quota).unwrap();
    let start = ratecore::clock::unix_time_nanos();
    for i in 0..40u64 {
        let now = start + i * 1_700_000_000;
        let key = format!("user-{}", i % 3);
        let _ = composite
            .try_check_each(key.as_bytes(), now, 1, &mut [])
            .unwrap();
        assert_eq!(
            strict.try_check(b"mirror", now, 1).unwrap(),
            mirror.check(now, 1).unwrap()
        );
    }
    assert_eq!(backend.stats().script_checks, 0);
    assert_eq!(backend.stats().replication, 0);

    // The script with its `WAIT` on a server that forgot the script: the pair is sent
    // again after the load.
    let mut pc = primary.connection();
    let mut config = common::test_config(&primary.url(), "replication");
    config.prefix.clone_from(&prefix);
    config.engine = RedisEngine::Script;
    config.wait_replicas = 1;
    config.wait_timeout = Duration::from_secs(5);
    let scripted = RedisBackend::new(config).unwrap();
    let limiter = scripted.limiter("script", Algorithm::Gcra, quota).unwrap();
    redis::cmd("SCRIPT").arg("FLUSH").exec(&mut pc).unwrap();
    let loads = scripted.stats().script_loads;
    assert!(limiter.try_check(b"reloaded", start, 1).unwrap().allowed);
    let stats = scripted.stats();
    assert_eq!((stats.script_loads, stats.replication), (loads + 1, 0));

    let acked: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut pc).unwrap();
    assert_eq!(acked, 1);
    let before = snapshot(&mut pc, &prefix);
    assert!(before.len() >= 13, "{}", before.len());
    assert!(before.iter().all(|(_, _, at)| *at > 0), "every key expires");
    assert_eq!(snapshot(&mut rc, &prefix), before, "the replica's state");
    // The replica applied effects: it never ran the module's command.
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut rc)
        .unwrap();
    assert!(!stats.contains("ratecore"), "{stats}");
    drop(replica);

    // The AOF holds effects only, and a restart from it reaches the same state.
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut pc);
    drop(primary);
    let mut aof_text = Vec::new();
    for entry in std::fs::read_dir(primary_dir.join("appendonlydir")).unwrap() {
        aof_text.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let aof_text = String::from_utf8_lossy(&aof_text);
    assert!(aof_text.contains("PXAT"));
    assert!(!aof_text.to_ascii_uppercase().contains("RATECORE.CHECK"));
    let restarted = Server::start(&module, &primary_dir, &aof);
    let mut c = restarted.connection();
    assert_eq!(
        snapshot(&mut c, &prefix),
        before,
        "the state after an AOF restart"
    );
    // And the restarted server goes on deciding from it.
    let mut config = common::test_config(&restarted.url(), "replication");
    config.prefix = prefix;
    config.engine = RedisEngine::Module;
    let backend = RedisBackend::new(config).unwrap();
    let strict = backend.limiter("a3", algorithms[3], quota).unwrap();
    for i in 40..60u64 {
        let now = start + i * 1_700_000_000;
        assert_eq!(
            strict.try_check(b"mirror", now, 1).unwrap(),
            mirror.check(now, 1).unwrap()
        );
    }
}

/// Detection: a backend left to detect uses the module while the server has it, and the
/// Lua script on the same state once the module is unloaded; decisions stay the
/// in-process ones throughout.
#[test]
fn detection_follows_the_module() {
    let Some(server) = Server::alone("detect", &["--enable-module-command", "yes"]) else {
        return;
    };
    let mut config = common::test_config(&server.url(), "detect");
    config.engine = RedisEngine::Detect;
    let backend = RedisBackend::new(config).unwrap();
    let quota = Quota::new(5, 1_000_000).unwrap();
    let algorithm = Algorithm::SlidingWindowStrict { sub_windows: 4 };
    let remote = backend.limiter("d", algorithm, quota).unwrap();
    let local = Limiter::new(algorithm, quota).unwrap();
    let mut now = 1_000_000_000u64;
    // Twenty checks 70 µs apart, each answered as in process.
    let mut twenty_checks = || {
        for _ in 0..20 {
            now += 70_000;
            assert_eq!(
                remote.try_check(b"k", now, 1).unwrap(),
                local.check(now, 1).unwrap()
            );
        }
    };
    twenty_checks();
    assert_eq!(
        (backend.stats().module_checks, backend.stats().script_checks),
        (20, 0)
    );
    let mut c = server.connection();
    let _: () = redis::cmd("MODULE")
        .arg("UNLOAD")
        .arg("ratecore")
        .query(&mut c)
        .unwrap();
    twenty_checks();
    let stats = backend.stats();
    assert_eq!(
        (stats.module_checks, stats.script_checks),
        (20, 20),
        "{stats:?}"
    );
    assert_eq!(stats.inconsistent, 0);
}

/// Keyspace events: a module write raises what the script's `SET … PX` raises (`set`,
/// then `expire`), for every written key.
#[test]
fn writes_raise_the_scripts_keyspace_events() {
    let Some(server) = Server::alone("events", &["--notify-keyspace-events", "KEA"]) else {
        return;
    };
    let client = redis::Client::open(server.url()).unwrap();
    let mut subscriber = client.get_connection().unwrap();
    let mut pubsub = subscriber.as_pubsub();
    pubsub.psubscribe("__keyevent@0__:*").unwrap();
    pubsub
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut events = |engine| {
        let mut config = common::test_config(&server.url(), "events");
        config.engine = engine;
        let prefix = config.prefix.clone();
        let backend = RedisBackend::new(config).unwrap();
        let quota = Quota::new(5, 1_000_000_000).unwrap();
        let strict = Algorithm::SlidingWindowStrict { sub_windows: 3 };
        let both = common::composite(
            &backend,
            &[("g", Algorithm::Gcra, quota), ("s", strict, quota)],
        );
        assert!(
            both.try_check_each(b"k", 1_000, 1, &mut [])
                .unwrap()
                .allowed
        );
        let mut seen = Vec::new();
        while seen.len() < 4 {
            let message = pubsub.get_message().expect("an event");
            let key: String = message.get_payload().unwrap();
            if key.starts_with(&prefix) {
                let channel = message.get_channel_name().to_owned();
                seen.push((channel, key[prefix.len()..].to_owned()));
            }
        }
        seen
    };
    let script = events(RedisEngine::Script);
    let module = events(RedisEngine::Module);
    assert_eq!(module, script);
    assert_eq!(module[0].0, "__keyevent@0__:set");
    assert_eq!(module[1].0, "__keyevent@0__:expire");
}
