//! The Redis Cluster of `tests/redis/cluster.sh` for the `redis_cluster*` test binaries:
//! its nodes (which primary serves a slot, killing and restarting a node), backends
//! configured for it, and a failover run: a primary killed while fail-closed and
//! fail-open clients check, from threads or from async tasks.
//!
//! Tests need `RATECORE_REDIS_CLUSTER_NODES` and `RATECORE_REDIS_CLUSTER_DIR` (set by
//! `tests/redis/cluster.sh`) and skip with a notice otherwise. They take the cluster one at
//! a time (they kill nodes).
#![allow(dead_code)]

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use ratecore::redis_backend::{
    FailureMode, Fault, RedisBackend, RedisConfig, RedisDecision, RedisEngine, RedisLimit,
    RedisLimiter,
};
use ratecore::{Algorithm, Quota};

use super::common::{self, notice, unique_prefix, wait_until};

pub const HOUR: u64 = 3_600_000_000_000;
pub const T0: u64 = 1_000 * HOUR;

pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The cluster's node URLs, its directory, and this test's turn on it (tests take the
/// cluster one at a time), or `None` (with a notice).
pub fn cluster(test: &str) -> Option<(Vec<String>, String, MutexGuard<'static, ()>)> {
    match (
        std::env::var("RATECORE_REDIS_CLUSTER_NODES"),
        std::env::var("RATECORE_REDIS_CLUSTER_DIR"),
    ) {
        (Ok(nodes), Ok(dir)) if !nodes.is_empty() => {
            let nodes = nodes.split(',').map(String::from).collect();
            Some((nodes, dir, serial()))
        }
        _ => {
            notice(&format!(
                "skipped {test}: RATECORE_REDIS_CLUSTER_NODES is not set (run tests/redis/cluster.sh)"
            ));
            None
        }
    }
}

pub fn config(nodes: &[String], test: &str, mode: FailureMode) -> RedisConfig {
    let mut config = RedisConfig::cluster(nodes.iter().cloned());
    config.prefix = unique_prefix(test);
    config.timeout = Duration::from_millis(500);
    config.min_ttl = Duration::from_secs(600);
    config.failure_mode = mode;
    config.engine = common::engine();
    config.pipelined = common::pipelined();
    config
}

/// Asserts that `backend`'s checks ran on the engine this run expects: the module when
/// forced (`RATECORE_REDIS_ENGINE=module`) or detected on nodes started with it
/// (`RATECORE_CLUSTER_MODULE`), else the script.
pub fn assert_engine_used(backend: &RedisBackend) {
    let loaded = std::env::var("RATECORE_CLUSTER_MODULE").is_ok_and(|m| !m.is_empty());
    let module = match common::engine() {
        RedisEngine::Module => true,
        RedisEngine::Script => false,
        _ => loaded,
    };
    let stats = backend.stats();
    let (used, unused) = if module {
        (stats.module_checks, stats.script_checks)
    } else {
        (stats.script_checks, stats.module_checks)
    };
    assert!(
        used > 0 && unused == 0,
        "module expected: {module}; {stats:?}"
    );
}

pub fn port_of(url: &str) -> u16 {
    url.trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port in the node URL")
}

pub fn connect(port: u16) -> Option<redis::Connection> {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .ok()?
        .get_connection_with_timeout(Duration::from_millis(300))
        .ok()
}

/// A live node's view: `CLUSTER KEYSLOT key`.
pub fn keyslot(nodes: &[String], key: &[u8]) -> u16 {
    let mut c = live(nodes);
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query(&mut c)
        .expect("CLUSTER KEYSLOT")
}

pub fn live(nodes: &[String]) -> redis::Connection {
    nodes
        .iter()
        .find_map(|url| connect(port_of(url)))
        .expect("a live cluster node")
}

/// The port of the primary serving `slot`, as the live nodes' majority sees it now.
pub fn primary_of(nodes: &[String], slot: u16) -> u16 {
    let mut c = live(nodes);
    let text: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query(&mut c)
        .expect("CLUSTER NODES");
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
            continue;
        }
        let serves = fields[8..].iter().any(|range| {
            let mut ends = range.split('-').map(|e| e.parse::<u16>().ok());
            match (ends.next().flatten(), ends.next()) {
                (Some(a), None) => a == slot,
                (Some(a), Some(Some(b))) => (a..=b).contains(&slot),
                _ => false,
            }
        });
        if serves {
            let port = fields[1]
                .split('@')
                .next()
                .and_then(|a| a.rsplit(':').next());
            return port.and_then(|p| p.parse().ok()).expect("a node address");
        }
    }
    panic!("no primary serves slot {slot}");
}

pub fn kill(dir: &str, port: u16) {
    let pid = std::fs::read_to_string(format!("{dir}/node-{port}.pid")).expect("pid file");
    let status = Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .expect("run kill");
    assert!(status.success());
    wait_until("the node is gone", Duration::from_secs(5), || {
        connect(port).is_none()
    });
}

/// Restarts a killed node from its config: it rejoins as a replica of its promoted
/// replica; waits until it is in sync and its primary's writes reach it, so the next test
/// starts with 3 + 3 again.
pub fn restart(nodes: &[String], dir: &str, port: u16) {
    let status = Command::new("redis-server")
        .arg(format!("{dir}/node-{port}.conf"))
        .status()
        .expect("run redis-server");
    assert!(status.success());
    wait_until(
        "the node rejoined as a synced replica",
        Duration::from_secs(30),
        || {
            let Some(mut c) = connect(port) else {
                return false;
            };
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query(&mut c)
                .unwrap_or_default();
            info.contains("role:slave") && info.contains("master_link_status:up")
        },
    );
    // A replica fresh from a full sync may not be sent its primary's writes until it
    // first acknowledges the stream (its acknowledgements come once a second), and until
    // then every `WAIT` there times out: the next test starts once a write on the primary
    // reached the replica.
    let primary = master_port(port);
    let probe = (0..)
        .map(|i| format!("ratecore-restart-probe-{i}"))
        .find(|key| primary_of(nodes, keyslot(nodes, key.as_bytes())) == primary)
        .expect("a key the primary serves");
    wait_until(
        "a write on the primary reached the restarted replica",
        Duration::from_secs(30),
        || {
            connect(primary).is_some_and(|mut c| {
                let set = redis::cmd("SET")
                    .arg(&probe)
                    .arg(1)
                    .arg("PX")
                    .arg(1000)
                    .exec(&mut c);
                let waited = redis::cmd("WAIT").arg(1).arg(100).query::<u64>(&mut c);
                set.is_ok() && waited.is_ok_and(|replicas| replicas >= 1)
            })
        },
    );
    wait_until(
        "every node sees the cluster ok",
        Duration::from_secs(30),
        || {
            nodes.iter().all(|url| {
                connect(port_of(url)).is_some_and(|mut c| {
                    redis::cmd("CLUSTER")
                        .arg("INFO")
                        .query::<String>(&mut c)
                        .is_ok_and(|info| info.contains("cluster_state:ok"))
                })
            })
        },
    );
}

/// A limiter of `limit` requests an hour with `algorithm`, on a backend of `cfg` that
/// sends `WAIT wait_replicas` (100 ms) after each write.
pub fn hourly_limiter(
    mut cfg: RedisConfig,
    wait_replicas: u32,
    algorithm: Algorithm,
    limit: u64,
) -> RedisLimiter {
    cfg.wait_replicas = wait_replicas;
    cfg.wait_timeout = Duration::from_millis(100);
    RedisBackend::new(cfg)
        .unwrap()
        .limiter("limit", algorithm, Quota::per_hour(limit).unwrap())
        .unwrap()
}

/// The port of the primary the replica on `port` replicates.
fn master_port(port: u16) -> u16 {
    let mut c = connect(port).expect("a live replica");
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query(&mut c)
        .expect("INFO replication");
    info.lines()
        .find_map(|line| line.strip_prefix("master_port:"))
        .and_then(|p| p.trim().parse().ok())
        .expect("a master_port in INFO replication")
}

/// A backend on `config` with two limits a request checks together: per IP, a fixed
/// window of `ip_limit` an hour; per account, a strict window of `account_limit` an hour.
pub fn ip_and_account(
    config: RedisConfig,
    ip_limit: u64,
    account_limit: u64,
) -> (RedisBackend, RedisLimit, RedisLimit) {
    let backend = RedisBackend::new(config).unwrap();
    let per_hour = |limit| Quota::per_hour(limit).unwrap();
    let strict = Algorithm::SlidingWindowStrict { sub_windows: 4 };
    let ip = backend.limit("ip", Algorithm::FixedWindow, per_hour(ip_limit));
    let account = backend.limit("account", strict, per_hour(account_limit));
    (backend, ip.unwrap(), account.unwrap())
}

/// The IP and accounts of the racing cross-slot checks, on `ip_and_account(_, 30, 8)`.
pub const RACE_IP: &[u8] = b"10.0.0.9";
pub const RACE_ACCOUNTS: [&[u8]; 3] = [b"acct-a", b"acct-b", b"acct-c"];

/// After racing cross-slot checks (`what`) on [`RACE_IP`] and [`RACE_ACCOUNTS`] that
/// admitted `per_account[i]` for account `i`: never over-admission, and the IP holds
/// every admission plus only the charges an undo had to keep.
pub fn assert_race_never_over_admitted(
    what: &str,
    backend: &RedisBackend,
    ip: &RedisLimit,
    per_account: &[AtomicU64],
) {
    let admitted: Vec<u64> = per_account
        .iter()
        .map(|a| a.load(Ordering::Relaxed))
        .collect();
    let total: u64 = admitted.iter().sum();
    let stats = backend.stats();
    notice(&format!(
        "racing {what} cross-slot checks: admitted {admitted:?} (total {total}); charges undone {}, kept {}",
        stats.undone, stats.undo_kept
    ));
    // Each account at most its limit, the IP at most its own.
    assert!(admitted.iter().all(|&a| a <= 8), "{admitted:?}");
    assert!(total <= 30);
    let stored = 30
        - backend
            .try_peek_limits(&[(ip, RACE_IP)], T0 + 1000, 0, &mut [])
            .unwrap()
            .remaining;
    assert!(stored >= total, "{stored} stored, {total} admitted");
    assert!(
        stored <= total + stats.undo_kept,
        "{stored} stored, {total} admitted, {stats:?}"
    );
}

/// What one client saw across a failover.
#[derive(Debug, Default)]
pub struct Run {
    /// Admissions Redis decided (no fault).
    pub admitted: u64,
    /// Failure decisions, and whether each was the configured one.
    pub faults: u64,
    pub wrong_failure_decisions: u64,
    /// Decisions after the first fault that Redis made again.
    pub recovered: u64,
    /// The last fault seen, and how many of the run's tasks (one for a thread) had not
    /// been decided by Redis again since their first fault when the run stopped.
    pub last_fault: Option<Fault>,
    pub not_recovered: u64,
}

/// What the checking clients share with the test: when to stop, and how many of them
/// (threads or tasks) Redis has decided for again since their first fault.
#[derive(Default)]
struct Progress {
    stop: AtomicBool,
    recovered: AtomicUsize,
}

impl Run {
    /// Counts one check's outcome (a limit no run reaches: Redis always admits).
    fn record(&mut self, checked: &RedisDecision, mode: FailureMode, progress: &Progress) {
        match checked.fault {
            None => {
                assert!(checked.decision.allowed, "{checked:?}");
                self.admitted += 1;
                if self.faults > 0 {
                    self.recovered += 1;
                    if self.recovered == 1 {
                        progress.recovered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Some(fault) => {
                self.faults += 1;
                self.last_fault = Some(fault);
                if checked.decision.allowed != (mode == FailureMode::Open) {
                    self.wrong_failure_decisions += 1;
                }
            }
        }
    }

    #[cfg(feature = "redis-tokio")]
    fn add(&mut self, other: &Self) {
        self.admitted += other.admitted;
        self.faults += other.faults;
        self.wrong_failure_decisions += other.wrong_failure_decisions;
        self.recovered += other.recovered;
        self.last_fault = other.last_fault.or(self.last_fault);
        self.not_recovered += other.not_recovered;
    }

    /// The run as it stopped.
    fn finish(mut self) -> Self {
        self.not_recovered = u64::from(self.recovered == 0);
        self
    }
}

/// Who checks during a failover: one thread per client (the blocking methods), or
/// tasks on one multi-threaded tokio runtime per client (the async methods).
#[derive(Clone, Copy, Debug)]
pub enum Clients {
    Threads,
    #[cfg(feature = "redis-tokio")]
    Tasks(usize),
}

const FAILOVER_KEY: &[u8] = b"failover-key";

/// Runs checks from `limiter` (cost 1) until `stop`, at most one per 200 µs.
fn hammer(limiter: &RedisLimiter, mode: FailureMode, progress: &Progress) -> Run {
    let mut run = Run::default();
    let mut now = T0;
    while !progress.stop.load(Ordering::Relaxed) {
        now += 1;
        let checked = limiter.check(FAILOVER_KEY, now, 1).unwrap();
        run.record(&checked, mode, progress);
        thread::sleep(Duration::from_micros(200));
    }
    run.finish()
}

/// [`hammer`] from one async task.
#[cfg(feature = "redis-tokio")]
async fn hammer_async(limiter: RedisLimiter, mode: FailureMode, progress: Arc<Progress>) -> Run {
    let mut run = Run::default();
    let mut now = T0;
    while !progress.stop.load(Ordering::Relaxed) {
        now += 1;
        let checked = limiter.check_async(FAILOVER_KEY, now, 1).await.unwrap();
        run.record(&checked, mode, &progress);
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    run.finish()
}

/// One client's checks until `stop`, as `clients` says.
fn client(
    clients: Clients,
    limiter: &RedisLimiter,
    mode: FailureMode,
    progress: &Arc<Progress>,
) -> Run {
    match clients {
        Clients::Threads => hammer(limiter, mode, progress),
        #[cfg(feature = "redis-tokio")]
        Clients::Tasks(tasks) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime");
            runtime.block_on(async {
                let handles: Vec<_> = (0..tasks)
                    .map(|_| {
                        tokio::spawn(hammer_async(limiter.clone(), mode, Arc::clone(progress)))
                    })
                    .collect();
                let mut run = Run::default();
                for handle in handles {
                    run.add(&handle.await.expect("a hammering task"));
                }
                run
            })
        }
    }
}

/// Kills the primary serving the failover key's slot mid-run, with one fail-closed and
/// one fail-open client checking all along; returns what they saw and how many admissions
/// the promoted replica holds.
pub fn failover_run(
    nodes: &[String],
    dir: &str,
    test: &str,
    wait_replicas: u32,
    clients: Clients,
) -> (Vec<Run>, u64) {
    let prefix = unique_prefix(test);
    let key = FAILOVER_KEY;
    let limit = 1_000_000;
    let mut limiters = Vec::new();
    for mode in [FailureMode::Closed, FailureMode::Open] {
        let mut cfg = config(nodes, test, mode);
        cfg.prefix.clone_from(&prefix);
        // Async tasks run on a runtime of their own: a backend's pipelined blocking
        // checks (the probe below) would share its connection across two runtimes.
        cfg.pipelined &= matches!(clients, Clients::Threads);
        let limiter = hourly_limiter(cfg, wait_replicas, Algorithm::FixedWindow, limit);
        limiters.push((mode, limiter));
    }
    let redis_key = limiters[0].1.limit().redis_key(key);
    let victim = primary_of(nodes, keyslot(nodes, &redis_key));
    let progress = Arc::new(Progress::default());
    let threads: Vec<_> = limiters
        .iter()
        .cloned()
        .map(|(mode, limiter)| {
            let progress = Arc::clone(&progress);
            thread::spawn(move || client(clients, &limiter, mode, &progress))
        })
        .collect();
    thread::sleep(Duration::from_millis(400));
    kill(dir, victim);
    let killed = Instant::now();
    // Recovery: the replica is promoted within a few node timeouts.
    let probe = &limiters[0].1;
    let mut n = T0 + HOUR / 2;
    let mut last = None;
    while let Err(e) = probe.try_peek(key, n, 1) {
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "Redis did not decide again within 20 s: {e}"
        );
        if last.as_ref() != Some(&e) {
            notice(&format!("during the failover: {e}"));
            last = Some(e);
        }
        n += 1;
        thread::sleep(Duration::from_millis(20));
    }
    let recovery = killed.elapsed();
    // The killed node comes back as the promoted one's replica (so `WAIT 1` can be met
    // again, and the next test has 3 + 3 nodes); the clients keep checking meanwhile,
    // until Redis decides again for every one of them.
    restart(nodes, dir, victim);
    let hammers = limiters.len()
        * match clients {
            Clients::Threads => 1,
            #[cfg(feature = "redis-tokio")]
            Clients::Tasks(tasks) => tasks,
        };
    // On a timeout, what each client saw and its backend's counters say which faults
    // kept a client from being decided again.
    let deadline = Instant::now() + Duration::from_secs(20);
    while progress.recovered.load(Ordering::Relaxed) < hammers {
        if Instant::now() >= deadline {
            progress.stop.store(true, Ordering::Relaxed);
            let runs: Vec<Run> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            let stats: Vec<_> = limiters
                .iter()
                .map(|(mode, limiter)| (*mode, limiter.backend().stats()))
                .collect();
            panic!(
                "timed out: {} of {hammers} clients decided by Redis again within 20 s; {runs:?}; {stats:?}",
                progress.recovered.load(Ordering::Relaxed)
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    progress.stop.store(true, Ordering::Relaxed);
    let runs: Vec<Run> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let stored = limit
        - probe
            .try_peek(key, T0 + HOUR / 2, 1)
            .expect("the promoted replica answers")
            .remaining;
    notice(&format!(
        "failover ({clients:?}, wait_replicas {wait_replicas}): killed primary {victim}, Redis decided again after {recovery:?}; {runs:?}; admissions stored {stored}"
    ));
    // The cluster is whole again: the promoted primary decides every check and stores
    // every admission it reports (checked without `WAIT`, whose short timeout a loaded
    // machine can miss).
    let mut cfg = config(nodes, test, FailureMode::Closed);
    cfg.prefix.clone_from(&prefix);
    let after = hourly_limiter(cfg, 0, Algorithm::FixedWindow, limit);
    let peek = || {
        after
            .try_peek(key, T0 + HOUR / 2, 1)
            .expect("the promoted primary answers")
    };
    let before = peek().remaining;
    for _ in 0..5 {
        let checked = after.check(key, T0 + HOUR / 2, 1).unwrap();
        assert_eq!(checked.fault, None, "{checked:?}");
        assert!(checked.decision.allowed, "{checked:?}");
    }
    assert_eq!(peek().remaining, before - 5, "five admissions stored");
    (runs, stored)
}

/// The failover test named `test`: a [`failover_run`] on the cluster, and what every
/// client's run must show (admissions before and after the failover, only configured
/// decisions during it). Returns the runs, the admissions and those stored, or `None`
/// without a cluster.
fn checked_failover(
    test: &str,
    wait_replicas: u32,
    clients: Clients,
) -> Option<(Vec<Run>, u64, u64)> {
    let (nodes, dir, _serial) = cluster(test)?;
    let (runs, stored) = failover_run(&nodes, &dir, test, wait_replicas, clients);
    for run in &runs {
        assert!(run.admitted > 0, "{run:?}");
        assert_eq!(run.wrong_failure_decisions, 0, "{run:?}");
        assert!(run.recovered > 0, "{run:?}");
    }
    let admitted = runs.iter().map(|r| r.admitted).sum();
    Some((runs, admitted, stored))
}

/// A failover without `WAIT` (test `test`): every client noticed it. Admissions the old
/// primary acknowledged but had not yet sent to its replica are forgotten, and the same
/// quota can be admitted again: the loss is measured and printed, not asserted, since
/// asynchronous replication bounds it by nothing (usually none here; a loaded machine once
/// lost nearly every admission made before the kill). Nor can a client's admissions after
/// its first fault be counted on: a timeout before the kill counts as a fault, and the
/// killed node, restarted with its old view of the slots, can accept a write from a client
/// still routed to it before it learns it was demoted. `failover_with_wait_loses_nothing`
/// asserts the bound `WAIT` gives.
pub fn failover_loses_little(test: &str, clients: Clients) {
    let Some((runs, admitted, stored)) = checked_failover(test, 0, clients) else {
        return;
    };
    for run in &runs {
        assert!(run.faults > 0, "the failover went unnoticed: {run:?}");
    }
    let lost = admitted.saturating_sub(stored);
    notice(&format!(
        "failover ({clients:?}) without WAIT: {admitted} admitted, {stored} stored, {lost} lost (over-admission)"
    ));
}

/// A failover with `wait_replicas = 1` (test `test`): every admission was on the replica
/// before it was reported, so none is lost. (A write whose `WAIT` fell short answered with
/// the failure decision yet may be stored: a charge without an admission, never the
/// reverse.)
pub fn failover_with_wait_loses_nothing(test: &str, clients: Clients) {
    let Some((_, admitted, stored)) = checked_failover(test, 1, clients) else {
        return;
    };
    assert!(stored >= admitted, "{admitted} admitted, {stored} stored");
}

/// During a slot migration, a check of a key the source does not hold is redirected with
/// `ASK`: with `wait_replicas`, the check and its `WAIT` run on the target, after the
/// `ASKING` the connection sends (which holds through the blocking transport's
/// transaction), and every later check finds the state there. On the script, the target
/// starts without it: the client's load goes to the slot's owner, so the first check
/// there is sent again with the script's body.
/// (Test `test`; `check` makes a check of cost 1, on the blocking or the async transport.)
pub fn checks_follow_ask_during_a_slot_migration(
    test: &str,
    check: impl Fn(&RedisLimiter, &[u8], u64) -> RedisDecision,
) {
    let Some((nodes, _, _serial)) = cluster(test) else {
        return;
    };
    let mut cfg = config(&nodes, test, FailureMode::Closed);
    // An async check's runtime is the test's, not the pipelined driver's.
    cfg.pipelined = false;
    let limiter = hourly_limiter(cfg, 1, Algorithm::Gcra, 10);
    let redis_key = limiter.limit().redis_key(b"moving");
    let slot = keyslot(&nodes, &redis_key);
    let source = primary_of(&nodes, slot);
    let target = [0, 8000, 16000]
        .map(|slot| primary_of(&nodes, slot))
        .into_iter()
        .find(|&port| port != source)
        .expect("another primary");
    let node = |port| connect(port).expect("a live primary");
    redis::cmd("SCRIPT")
        .arg("FLUSH")
        .exec(&mut node(target))
        .expect("SCRIPT FLUSH");
    let id = |port| -> String {
        redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut node(port))
            .expect("CLUSTER MYID")
    };
    let (source_id, target_id) = (id(source), id(target));
    let set_slot = |port, state: &[&str]| {
        redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg(state)
            .exec(&mut connect(port).ok_or((redis::ErrorKind::IoError, "a dead primary"))?)
    };
    /// Gives the slot back to its owner alone when dropped, a failed check's panic
    /// included, so that later tests find a stable cluster.
    struct Stable<F: Fn(u16, &[&str]) -> redis::RedisResult<()>>(F, [u16; 2]);
    impl<F: Fn(u16, &[&str]) -> redis::RedisResult<()>> Drop for Stable<F> {
        fn drop(&mut self) {
            for port in self.1 {
                let _ = (self.0)(port, &["STABLE"]);
            }
        }
    }
    set_slot(target, &["IMPORTING", &source_id]).expect("CLUSTER SETSLOT IMPORTING");
    let stable = Stable(set_slot, [source, target]);
    (stable.0)(source, &["MIGRATING", &target_id]).expect("CLUSTER SETSLOT MIGRATING");
    let checks: Vec<_> = (1..=3)
        .map(|i| check(&limiter, b"moving", T0 + i))
        .collect();
    // The state is on the target; then it goes, and the slot is its owner's alone again.
    let mut at_target = node(target);
    let held: Vec<redis::Value> = redis::pipe()
        .cmd("ASKING")
        .ignore()
        .cmd("EXISTS")
        .arg(&redis_key)
        .cmd("ASKING")
        .ignore()
        .cmd("DEL")
        .arg(&redis_key)
        .query(&mut at_target)
        .expect("the key on the target");
    drop(stable);
    for (i, checked) in (1..).zip(&checks) {
        assert_eq!(checked.fault, None, "{i}: {checked:?}");
        assert_eq!(checked.decision.remaining, 10 - i, "{i}: {checked:?}");
    }
    assert_eq!(held, [redis::Value::Int(1), redis::Value::Int(1)]);
    assert_engine_used(limiter.backend());
}
