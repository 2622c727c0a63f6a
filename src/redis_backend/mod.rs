//! The same quotas, algorithms and [`Decision`]s on a shared Redis (feature `redis`).
//!
//! When one API runs on several hosts, per-host limits multiply the real limit by the host
//! count. [`RedisBackend`] keeps every limit's state in one Redis, so all hosts draw from
//! the same quota — with the same four algorithms and the same decisions, to the
//! nanosecond, as the in-process limiters: a user switches backend without changing
//! quotas, headers or tests.
//!
//! ```no_run
//! use ratecore::redis_backend::{RedisBackend, RedisConfig};
//! use ratecore::{Algorithm, Quota};
//!
//! let backend = RedisBackend::new(RedisConfig::new("redis://127.0.0.1:6379/"))?;
//! let login = backend.limiter("login", Algorithm::Gcra, Quota::per_minute(10)?)?;
//! let now = ratecore::clock::unix_time_nanos(); // one epoch shared by every host
//! let checked = login.check(b"user-42", now, 1)?;
//! if checked.fault.is_some() {
//!     // Redis was down or slow: `checked.decision` is the configured failure decision.
//! }
//! let allowed = checked.decision.allowed;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The module or the script
//! A server that has the ratecore Redis module (the `ratecore-redis-module` crate, see
//! `docs/redis.md`) runs each check as one `RATECORE.CHECK` (or `RATECORE.PEEK`): the
//! crate's own algorithm code inside the server, on the same keys and values as the
//! script. [`RedisConfig::engine`] chooses: detected by default (`COMMAND INFO` on first
//! use and after the server went away), or forced to either. The module's short reply
//! (`DIGEST`: the verdict, the values read and a digest of its fields, writes and TTLs)
//! is verified by the same replay as the script's, which also computes the digest;
//! [`RedisStats::module_checks`] and [`RedisStats::script_checks`] count which ran.
//! The rest of this section describes the script.
//!
//! # One script per check
//! Every check — one limit or a composite of up to [`MAX_LIMITS`] — is one `EVALSHA` of
//! one Lua script (`check.lua` beside this file), so it is atomic on the server and costs
//! one round trip. The script is loaded with `SCRIPT LOAD` the first time a server answers
//! `NOSCRIPT` (first use, or after a restart) and then invoked by its SHA1; reloads are
//! counted ([`RedisStats::script_loads`]).
//!
//! The script *decides* (every limit admits?) and *charges* (writes each new state) — all
//! or nothing, so a composite denial consumes nothing from any limit. It reads and decides
//! every limit before its first write, and Redis refuses an out-of-memory write only as a
//! script's first one, so a failing check changes nothing. Peeks run the same script with
//! charging off. Its reply carries
//! the state it read. From that state the client computes the [`Decision`]'s fields with
//! the very functions the in-process limiters run (the single-word `WordLimit`,
//! [`crate::algorithm::sliding_strict::StrictConfig`], and the composite protocol of
//! [`crate::composite`]), and cross-checks the script: its verdict, the exact bytes it
//! wrote and the TTL it set must be what the crate's own algorithm produces from that
//! state. A mismatch is a typed error ([`Fault::Inconsistent`]), never a silently
//! different decision. So the decisions are identical *by construction* for the fields
//! the client computes, and by differential test (`tests/redis_differential.rs`) for the
//! transition the script computes.
//!
//! # Time: the caller's `now`
//! The script uses the `now` the caller passes, like every limiter in this crate, not the
//! server's `TIME`. Decisions are then deterministic and identical to the in-process
//! limiters for the same request sequence, tests inject time, and the decision's relative
//! durations are relative to a clock the caller knows. The price: every host must pass
//! `now` on **one shared epoch** — e.g. [`crate::clock::unix_time_nanos`] on
//! NTP-synchronised hosts, not a per-process monotonic clock. A host whose clock lags sees
//! time going backwards, which the algorithms clamp (stricter, never a refund); a host
//! ahead advances the shared state early by its skew.
//!
//! Using `TIME` inside the script would remove skew between hosts, but it gives
//! microseconds (not nanoseconds), makes decisions depend on when the command happens to
//! run (not reproducible, not comparable with the in-process limiter, not testable with
//! injected time), and reports durations relative to a clock the caller cannot read. It
//! is therefore not what this client does. The module offers it to other callers
//! (`RATECORE.CHECK … TIME`: the server's clock, whole milliseconds on Redis 7.0).
//!
//! # Exact 64-bit arithmetic in Lua
//! Redis Lua numbers are doubles: integers are exact only up to 2^53, and nanosecond
//! timestamps (~1.8·10^18 today) are not. So nothing 64-bit is ever a Lua number:
//! - every `u64` travels as two 32-bit halves (hi, lo) and is stored as 8 big-endian
//!   bytes; the script compares, adds (with an overflow flag) and subtracts such pairs
//!   exactly;
//! - every division the algorithms need depends on `now` and the quota only (window
//!   start `now / period · period`, the sub-window and its slot, GCRA's admission bound
//!   `min(u64::MAX − n·T, now + τ − n·T)`, the approximate window's budget
//!   `(limit − n) · period`), so the client computes it and passes the result;
//! - the approximate window's test `previous · weight + current · period ≤ budget` is a
//!   128-bit comparison: the script multiplies in 16-bit limbs (every partial sum stays
//!   below 2^36);
//! - the TTL (nanoseconds to milliseconds, rounded up) is an exact long division by 10^6
//!   of the (hi, lo) pair, with the double quotient corrected by its remainder.
//!
//! So the whole `u64` range of times, periods and limits is supported — no input is
//! rejected for its size, and none is silently rounded. The differential tests drive
//! times near `u64::MAX`, huge periods and backwards steps through both implementations.
//!
//! # State and keys
//! Each (limit, key) pair is one Redis string, `prefix + name + ":" + tag + ":" + key`,
//! where `tag` is 8 hex digits identifying the algorithm, quota and state layout (a
//! changed quota starts from fresh state instead of misreading the old one):
//!
//! | algorithm | value (big-endian) |
//! |---|---|
//! | GCRA | TAT (8 bytes) |
//! | fixed window | window start (8), count (8) |
//! | approximate window | window start (8), previous count (8), current count (8) |
//! | strict window | `N + 1` slots of newest admission (8) and count (4), updated in place with `SETRANGE` |
//!
//! A value of any other shape (a foreign key) is an error reply, never reinterpreted.
//! Keys are binary-safe.
//!
//! # Redis Cluster
//! With [`RedisConfig::cluster`] both transports route each check to the primary of its
//! keys' hash slot (explicitly, by the first key: the module's `RATECORE.CHECK` starts
//! with the key count, where the `redis` crate would look for a key) and follow `MOVED`
//! and `ASK`. Keys then end in a hash tag holding the request key (`prefix + name + ":" +
//! tag + ":{" + key + "}"`, with `%`, `{` and `}` escaped), so the limits of one request
//! key share a slot and stay one atomic call. A check whose keys fall in several slots
//! runs check-then-commit across slots with a compare-and-set undo: never over-admission,
//! but not atomic (a concurrent request can see a transient charge).
//! [`RedisConfig::wait_replicas`] makes every write reach replicas before its admission
//! is reported, so a failover loses none. Details, guarantees and figures:
//! `docs/redis.md`.
//!
//! # TTLs: idle keys vanish
//! Every write sets the key's TTL to the time until the state is at rest — GCRA: until the
//! new TAT; fixed window: until the window ends; approximate window: until the end of the
//! window after the current one (when its count stops weighing); strict window: until
//! the newest admission is released (newest + period) — in milliseconds, rounded up, at
//! least [`RedisConfig::min_ttl`] (default 1 ms). Denials write nothing and leave the TTL
//! alone. An expired key is exactly a fresh state, which is lossless because the state was
//! at rest — *if* the callers' `now` advances at the speed of wall time. A caller whose
//! `now` runs slower than real time (a simulation, a test replaying hours in
//! milliseconds) must raise `min_ttl` above the lag, or keys may vanish while still
//! active in caller time. (A key that vanished at rest and is then checked with a `now`
//! *earlier* than the last one starts fresh — the same as a keyed table reclaiming a slot
//! at rest.)
//!
//! # Failures
//! Redis unreachable or a connection dropped ([`Fault::Unavailable`]), no reply within
//! [`RedisConfig::timeout`] (applied to connecting and to every socket read and write;
//! [`Fault::Timeout`]), an error reply ([`Fault::Server`]; out of memory among them), a
//! reply the algorithm disagrees with ([`Fault::Inconsistent`]) or a write too few
//! replicas acknowledged ([`Fault::Replication`], with
//! [`RedisConfig::wait_replicas`]) is a [`Fault`]:
//! - the `try_*` methods return it as [`RedisCheckError::Backend`];
//! - the other methods answer with the [`FailureMode`]'s decision — closed (default):
//!   denied, `remaining` 0, `retry_after` = `reset_after` =
//!   [`RedisConfig::failure_retry_after`]; open: allowed, `remaining` 0 — flagged with
//!   [`RedisDecision::fault`] so callers can tell it from a real decision.
//!
//! Every fault and every failure decision is counted in atomic counters
//! ([`RedisBackend::stats`]). The backend reconnects by itself: a connection that failed
//! is dropped (with every idle one opened before it, when the error says the server went
//! away), and the next check opens a new one. After a failed connect, checks within
//! [`RedisConfig::reconnect_backoff`] fail at once instead of each waiting for a timeout;
//! the first check after it tries again. A check whose connection broke after sending may
//! or may not have been applied by the server; it is never retried (a retry could charge
//! twice). Redis restarted without persistence forgets all states (everyone starts
//! fresh) and its scripts (reloaded on `NOSCRIPT`).
//!
//! # Transports
//! The blocking methods use pooled blocking connections ([`redis::Connection`]): a check
//! takes an idle one or opens one, so threads run checks in parallel; at most
//! [`RedisConfig::max_idle_connections`] are kept idle. Each pooled connection carries
//! one check at a time. With [`RedisConfig::pipelined`] (feature `redis-tokio`), blocking
//! checks instead share the async transport's one multiplexed connection, driven by a
//! runtime thread the backend owns: every thread's checks are pipelined on one socket,
//! with the async transport's behaviour described next.
//!
//! With feature `redis-tokio`, the `*_async` methods
//! ([`check_limits_async`](RedisBackend::check_limits_async),
//! [`RedisLimiter::check_async`], [`crate::policy::Policy::check_async`] for a policy
//! built with `with_redis`, …) send the same call (the module's command, or the script's,
//! chosen as [`RedisConfig::engine`] says) with the same arguments on one
//! [`redis::aio::MultiplexedConnection`] shared by every task, which pipelines their
//! checks on one socket (on a cluster, one [`redis::cluster_async::ClusterConnection`]:
//! one multiplexed connection per node); the reply goes through the same replay and
//! verification, and faults, failure decisions, counters, the reconnect backoff and the
//! cross-slot protocol are the blocking ones. With [`RedisConfig::wait_replicas`], the
//! check and its `WAIT` are sent together on the same connection (as the blocking
//! transport sends them), since `WAIT` counts the writes of the connection it arrives
//! on. While the server waits for replicas it answers nothing else on that connection,
//! so checks with `WAIT` go on [`RedisConfig::wait_connections`] lines of their own, one
//! check at a time each. A whole async check (across slots: each slot's call), connect
//! included, takes at most [`RedisConfig::timeout`].
//! A connection the server (on a cluster: a node) went away from is replaced by the next
//! check, and so is every line's (one task connects while the others wait, within their
//! timeout; a cluster's slot map is then read afresh). A check that timed out keeps the
//! connection, whose replies stay matched to their requests, except a check with `WAIT`
//! on the shared connection (`wait_connections = 0`), whose timeout replaces it so that
//! the server drops the checks queued behind its `WAIT`. The futures run on a
//! tokio runtime with time enabled, and the connection is driven by a task on the
//! runtime that opened it: use one backend from one runtime (a backend whose runtime
//! shut down answers its next check with an [`Fault::Unavailable`] fault, then
//! reconnects).
//!
//! # Cost
//! One round trip and one script per check — the same round-trip count as a native
//! module such as redis-cell's `CL.THROTTLE`. Measured by `tests/redis/run.sh`, which
//! runs `RATECORE_REDIS_ENGINE=script cargo test --release --features redis --test
//! redis_bench -- --ignored --nocapture` (the script) against a local `redis-server`
//! 7.0.15 (Debian 12) on a 2-core machine;
//! 1.5 s per scenario, `now` from the wall clock, 10 000 keys round robin; "Redis µs" is
//! the server's own time per call from `INFO commandstats`:
//!
//! | scenario | threads | checks/s | p50 µs | p99 µs | Redis µs |
//! |---|---|---|---|---|---|
//! | `PING` (round-trip floor) | 1 | 128 072 | 7.3 | 8.4 | 0.1 |
//! | `EVALSHA` of a one-`GET` script (Lua floor) | 1 | 108 003 | 8.6 | 18.4 | 1.1 |
//! | GCRA | 1 | 52 870 | 16.9 | 41.6 | 8.3 |
//! | fixed window | 1 | 48 372 | 19.0 | 44.5 | 9.8 |
//! | approximate sliding window | 1 | 40 136 | 22.8 | 46.5 | 13.9 |
//! | strict sliding window, 60 sub-windows | 1 | 27 146 | 34.8 | 88.7 | 22.6 |
//! | composite: GCRA + strict (2 keys) | 1 | 27 823 | 34.2 | 74.6 | 22.7 |
//! | GCRA | 4 | 41 389 | 69.9 | 342.5 | 9.7 |
//! | GCRA | 16 | 40 239 | 318.8 | 3 993.8 | 9.7 |
//! | GCRA, one hot key (mostly denials) | 8 | 52 933 | 119.7 | 392.9 | 5.6 |
//!
//! One thread is bound by the round trip plus the script; more threads by the two cores
//! that the client and the single-threaded server share, so the figures fall with any
//! other load on those cores.
//!
//! What the script costs over a native module is Redis CPU: 8 – 23 µs per check instead
//! of the microsecond or two a compiled command needs — Lua interpretation, 64-bit
//! arithmetic in 32-bit halves, the strict window's walk over its slots, and two
//! `redis.call`s (`GET`, then `SET` or `SETRANGE` + `PEXPIRE`). One Redis core thus tops
//! out near 100 000 GCRA checks per second (about 45 000 for a 60-slot strict window).
//! The module's server CPU per check, beside the script's and redis-cell's, is in
//! `docs/redis.md`. The client side (building arguments, replaying the
//! algorithm, verifying) adds a few microseconds per check.
//!
//! The async transport (feature `redis-tokio`) and pipelined blocking checks are measured
//! by `tests/redis/run.sh`, which runs `RATECORE_REDIS_ENGINE=script` and then
//! `RATECORE_REDIS_ENGINE=module cargo test --release --features redis-tokio --test
//! redis_bench async_checks_per_second -- --ignored --nocapture` against one local
//! `redis-server` 7.0.15 with the module: GCRA 100/s, 10 000 keys round robin, 1.5 s per
//! row; the blocking backend on one connection from one thread, 16 blocking threads
//! pipelined on one connection ([`RedisConfig::pipelined`]), then 64 tasks on one
//! multiplexed connection on a tokio runtime of one and of two threads; three rounds, the
//! rows interleaved; each row below is its median round. "Ceiling" is what one Redis core
//! could run of the command alone, 10^6 / its `usec_per_call` during the row; "client
//! CPU" and "server CPU" are the two processes' CPU time (user and system, from
//! `/proc/self/stat` and `INFO cpu`) per check. On a 2-core machine with little other
//! load (the run of `.ci/run`):
//!
//! | engine | transport | tasks | checks/s | p50 µs | p99 µs | Redis µs | ceiling checks/s | client CPU µs | server CPU µs |
//! |---|---|---|---|---|---|---|---|---|---|
//! | script | blocking, one connection | 1 | 12 059 | 76.7 | 131.5 | 14.4 | 69 396 | 26.5 | 44.4 |
//! | script | blocking, 16 threads pipelined | 16 | 61 420 | 236.7 | 478.7 | 9.5 | 105 485 | 11.5 | 12.9 |
//! | script | async, one runtime thread | 64 | 93 395 | 635.1 | 1 537 | 8.8 | 113 895 | 5.0 | 10.5 |
//! | script | async, two runtime threads | 64 | 92 479 | 638.1 | 1 191 | 8.8 | 113 895 | 6.8 | 10.5 |
//! | module | blocking, one connection | 1 | 14 388 | 62.9 | 105.3 | 3.8 | 260 417 | 26.4 | 31.9 |
//! | module | blocking, 16 threads pipelined | 16 | 66 965 | 229.8 | 412.3 | 3.0 | 336 700 | 13.7 | 6.3 |
//! | module | async, one runtime thread | 64 | 234 772 | 263.6 | 406.4 | 2.1 | 483 092 | 4.2 | 3.9 |
//! | module | async, two runtime threads | 64 | 205 854 | 288.0 | 604.6 | 2.1 | 471 698 | 4.1 | 3.6 |
//!
//! One process reaches over 200 000 checks per second on the module with 64 async tasks
//! on one connection (the three rounds: 229 571, 234 772 and 237 131 on one runtime
//! thread), 16 times the blocking backend on one connection. What bounds it is the CPU
//! the client and the server share on two cores, not the transport: each check costs the
//! client about 4 µs and the server about 4 µs of CPU, of which the module's command is
//! 2 µs. On the script, 64 async tasks did 7.9 times the checks of the blocking backend on
//! one connection and reached 82 % of the script's ceiling (the medians of the three
//! rounds' ratios; the server's 10 µs of CPU per check are the bound). The blocking
//! backend on one connection waits a round trip per check, and round trips vary from run
//! to run, so these ratios do too (7.9 to 8.2 times, 82 to 83 % of the ceiling, on an
//! idle machine and a loaded one).
//! Pipelined blocking threads cost the client about three times an async task's CPU
//! per check (a runtime `block_on` per check and a thread wake-up per reply).

#[macro_use]
mod entry_points;
#[cfg(feature = "redis-tokio")]
mod aio;
mod cluster;
mod config;
mod cross_slot;
mod errors;
mod handles;
mod module;
#[cfg(feature = "redis-tokio")]
mod pipelined;
mod pool;
mod script;
mod stats;
// The stored-state format, shared with the Redis module (`module/`).
use crate::redis_state as wire;

use crate::decision::Mode;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::algorithm::Algorithm;
pub use crate::composite::MAX_LIMITS;
use crate::decision::Decision;
use crate::error::QuotaError;
use crate::quota::Quota;

pub use config::{FailureMode, RedisConfig, RedisEngine, MAX_WAIT_CONNECTIONS};
pub use errors::{BackendError, Fault, RedisCheckError, RedisSetupError};
pub use handles::{key_from_parts, RedisComposite, RedisLimit, RedisLimiter};
pub use stats::RedisStats;
use stats::{bump, Counters};

/// A decision, and whether Redis made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RedisDecision {
    /// Redis's decision, or the [`FailureMode`]'s when `fault` is set.
    pub decision: Decision,
    /// `None` when Redis decided; otherwise why it could not.
    pub fault: Option<Fault>,
}

/// A shared Redis holding limit states. Cheap to clone (one shared connection pool and
/// counters); `Send + Sync`.
#[derive(Clone)]
pub struct RedisBackend {
    inner: Arc<Inner>,
}

struct Inner {
    config: RedisConfig,
    client: redis::Client,
    /// The cluster client, when [`RedisConfig::cluster_nodes`] names a Redis Cluster.
    cluster: Option<redis::cluster::ClusterClient>,
    script: redis::Script,
    min_ttl_ms: u64,
    idle: Mutex<Vec<pool::Pooled>>,
    /// Bumped when an error says the server went away: idle connections opened under an
    /// older epoch are dropped instead of reused.
    epoch: AtomicU64,
    /// Nanoseconds after `origin` before which no connect is attempted.
    retry_at: AtomicU64,
    origin: Instant,
    counters: Counters,
    /// The async transport's shared connection (feature `redis-tokio`).
    #[cfg(feature = "redis-tokio")]
    aio: aio::Shared,
    /// The runtime of pipelined blocking checks (feature `redis-tokio`).
    #[cfg(feature = "redis-tokio")]
    driver: pipelined::Driver,
    /// What detection found: the module, the script, or not yet detected.
    engine: AtomicU8,
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// A backend for `config`. Does not connect: the first check does (so a backend can
    /// be created while Redis is down).
    ///
    /// # Errors
    /// [`RedisSetupError::Url`], [`RedisSetupError::ZeroTimeout`] or
    /// [`RedisSetupError::TooManyWaitConnections`].
    pub fn new(config: RedisConfig) -> Result<Self, RedisSetupError> {
        if config.timeout.is_zero() {
            return Err(RedisSetupError::ZeroTimeout);
        }
        if config.wait_connections > MAX_WAIT_CONNECTIONS {
            return Err(RedisSetupError::TooManyWaitConnections(
                config.wait_connections,
            ));
        }
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| RedisSetupError::Url(e.to_string()))?;
        let cluster = if config.is_cluster() {
            let millis = u64::try_from(config.timeout.as_millis()).unwrap_or(u64::MAX);
            // Two retries: a `MOVED` then an `ASK` during a slot migration. Waits between
            // retries (a `CLUSTERDOWN` during a failover) stay within the timeout.
            let built = redis::cluster::ClusterClientBuilder::new(config.cluster_nodes.clone())
                .connection_timeout(config.timeout)
                .response_timeout(config.timeout)
                .retries(2)
                .min_retry_wait(millis.div_ceil(4).max(1))
                .max_retry_wait(millis.div_ceil(2).max(1))
                .build()
                .map_err(|e| RedisSetupError::Url(e.to_string()))?;
            Some(built)
        } else {
            None
        };
        let min_ttl_ms = u64::try_from(config.min_ttl.as_nanos().div_ceil(1_000_000))
            .unwrap_or(wire::MAX_TTL_MS)
            .clamp(1, wire::MAX_TTL_MS);
        #[cfg(feature = "redis-tokio")]
        let wait_connections = config.wait_connections;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                client,
                cluster,
                script: redis::Script::new(script::SCRIPT),
                min_ttl_ms,
                idle: Mutex::new(Vec::new()),
                epoch: AtomicU64::new(0),
                retry_at: AtomicU64::new(0),
                origin: Instant::now(),
                counters: Counters::default(),
                #[cfg(feature = "redis-tokio")]
                aio: aio::Shared::new(wait_connections),
                #[cfg(feature = "redis-tokio")]
                driver: pipelined::Driver::default(),
                engine: AtomicU8::new(module::UNKNOWN),
            }),
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    /// A limit named `name` running `algorithm` on `quota`. Limits sharing a prefix need
    /// distinct names (a policy could use `rule/dimension/limit`); any non-empty name
    /// works (`:` and `%` are escaped in keys).
    ///
    /// # Errors
    /// [`RedisSetupError::Name`], or [`RedisSetupError::Quota`] with exactly the error
    /// the in-process limiter's constructor returns.
    pub fn limit(
        &self,
        name: &str,
        algorithm: Algorithm,
        quota: Quota,
    ) -> Result<RedisLimit, RedisSetupError> {
        RedisLimit::new(
            &self.inner.config.prefix,
            self.inner.config.is_cluster(),
            name,
            algorithm,
            quota,
        )
    }

    /// A single-limit limiter: [`limit`](Self::limit) bound to this backend.
    ///
    /// # Errors
    /// As for [`limit`](Self::limit).
    pub fn limiter(
        &self,
        name: &str,
        algorithm: Algorithm,
        quota: Quota,
    ) -> Result<RedisLimiter, RedisSetupError> {
        Ok(RedisLimiter {
            backend: self.clone(),
            limit: self.limit(name, algorithm, quota)?,
        })
    }

    /// Several limits that must all admit, on one key ("5/s and 20/min per client").
    ///
    /// # Errors
    /// [`RedisSetupError::Quota`] with [`QuotaError::EmptyComposite`] or
    /// [`QuotaError::TooManyLimits`], or [`RedisSetupError::DuplicateName`].
    pub fn composite(&self, limits: Vec<RedisLimit>) -> Result<RedisComposite, RedisSetupError> {
        if limits.is_empty() {
            return Err(QuotaError::EmptyComposite.into());
        }
        if limits.len() > MAX_LIMITS {
            return Err(QuotaError::TooManyLimits.into());
        }
        for (index, limit) in limits.iter().enumerate() {
            if limits[..index].iter().any(|l| l.name() == limit.name()) {
                return Err(RedisSetupError::DuplicateName(String::from(limit.name())));
            }
        }
        Ok(RedisComposite {
            backend: self.clone(),
            limits,
        })
    }

    checks! { backend [] []
        /// Checks one request against several (limit, key) pairs at once — admitted only if
        /// every limit admits, and a denial consumes nothing — in one script call. This is the
        /// entry point for a policy whose limits key on different identities (per IP *and*
        /// per user). `states[i]` receives limit `i`'s decision as
        /// [`crate::Composite::check_each`] reports it.
        ///
        /// When Redis cannot decide, answers with the [`FailureMode`]'s decision (limit: the
        /// smallest capacity) and sets [`RedisDecision::fault`].
        ///
        /// # Errors
        /// [`RedisCheckError::Cost`] or [`RedisCheckError::Limits`] (caller bugs; never
        /// `Backend`).
        fn check_limits -> RedisDecision = decide(Charge);

        /// Like [`check_limits`](Self::check_limits), consuming nothing.
        ///
        /// # Errors
        /// As for [`check_limits`](Self::check_limits).
        fn peek_limits -> RedisDecision = decide(Peek);

        /// Like [`check_limits`](Self::check_limits), but a Redis failure is returned as
        /// [`RedisCheckError::Backend`] instead of a failure decision.
        ///
        /// # Errors
        /// Any [`RedisCheckError`].
        fn try_check_limits -> Decision = dispatch(Charge);

        /// Like [`peek_limits`](Self::peek_limits), but a Redis failure is returned as
        /// [`RedisCheckError::Backend`].
        ///
        /// # Errors
        /// Any [`RedisCheckError`].
        fn try_peek_limits -> Decision = dispatch(Peek);
    }

    /// Sends `PING` (through the pool, with the timeout): a health check.
    ///
    /// # Errors
    /// The [`BackendError`] a check would have met.
    pub fn ping(&self) -> Result<(), BackendError> {
        self.inner
            .with_connection(|connection, _| connection.ping())
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> RedisStats {
        self.inner.counters.snapshot()
    }
}

/// One check's arguments, passed whole through every transport.
#[derive(Clone, Copy, Debug)]
pub(super) struct Check<'a> {
    /// The (limit, key) pairs: admitted only if every limit admits.
    pub(super) limits: &'a [(&'a RedisLimit, &'a [u8])],
    /// The caller's time, ns.
    pub(super) now: u64,
    /// The request's weight.
    pub(super) cost: u64,
    /// Charge or peek.
    pub(super) mode: Mode,
}

impl<'a> Check<'a> {
    pub(super) const fn new(
        limits: &'a [(&'a RedisLimit, &'a [u8])],
        now: u64,
        cost: u64,
        mode: Mode,
    ) -> Self {
        Self {
            limits,
            now,
            cost,
            mode,
        }
    }
}

impl Inner {
    fn decide(
        &self,
        check: Check<'_>,
        states: &mut [Decision],
    ) -> Result<RedisDecision, RedisCheckError> {
        let result = self.dispatch(check, states);
        self.settle(result, check.limits, states)
    }

    /// A check's result as the non-`try` entry points answer it: a Redis failure becomes
    /// the [`FailureMode`]'s decision, flagged and counted (the blocking and the async
    /// transports share this).
    fn settle(
        &self,
        result: Result<Decision, RedisCheckError>,
        limits: &[(&RedisLimit, &[u8])],
        states: &mut [Decision],
    ) -> Result<RedisDecision, RedisCheckError> {
        match result {
            Ok(decision) => Ok(RedisDecision {
                decision,
                fault: None,
            }),
            Err(RedisCheckError::Backend(error)) => {
                let capacity = limits
                    .iter()
                    .map(|(l, _)| l.spec.capacity())
                    .min()
                    .unwrap_or(0);
                for ((limit, _), state) in limits.iter().zip(states.iter_mut()) {
                    *state = self.failure_decision(limit.spec.capacity());
                }
                match self.config.failure_mode {
                    FailureMode::Closed => bump(&self.counters.failed_closed),
                    FailureMode::Open => bump(&self.counters.failed_open),
                }
                Ok(RedisDecision {
                    decision: self.failure_decision(capacity),
                    fault: Some(error.fault),
                })
            }
            Err(e) => Err(e),
        }
    }

    fn failure_decision(&self, capacity: u64) -> Decision {
        let wait = u64::try_from(self.config.failure_retry_after.as_nanos()).unwrap_or(u64::MAX);
        let allowed = self.config.failure_mode == FailureMode::Open;
        Decision {
            allowed,
            limit: capacity,
            remaining: 0,
            reset_after: wait,
            retry_after: if allowed { 0 } else { wait },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn backend() -> RedisBackend {
        RedisBackend::new(RedisConfig::new("redis://127.0.0.1:1/")).unwrap()
    }

    #[test]
    fn keys_escape_names_and_tag_layouts() {
        let backend = backend();
        let quota = Quota::per_second(5).unwrap();
        let limit = backend.limit("a:b%c", Algorithm::Gcra, quota).unwrap();
        let key = limit.redis_key(b"k");
        let key = String::from_utf8(key).unwrap();
        assert!(key.starts_with("ratecore:a%3Ab%25c:"), "{key}");
        assert!(key.ends_with(":k"));
        assert_eq!(key.len(), "ratecore:a%3Ab%25c:".len() + 8 + 2);
        // Another quota or algorithm: another tag, so no state is misread.
        let other = backend
            .limit("a:b%c", Algorithm::Gcra, Quota::per_second(6).unwrap())
            .unwrap();
        assert_ne!(other.redis_key(b"k"), limit.redis_key(b"k"));
        let burst = backend
            .limit("a:b%c", Algorithm::Gcra, quota.with_burst(9).unwrap())
            .unwrap();
        assert_ne!(burst.redis_key(b"k"), limit.redis_key(b"k"));
        let fixed = backend
            .limit("a:b%c", Algorithm::FixedWindow, quota)
            .unwrap();
        assert_ne!(fixed.redis_key(b"k"), limit.redis_key(b"k"));
    }

    #[test]
    fn setup_errors_are_typed() {
        assert_eq!(
            RedisBackend::new(RedisConfig::new("not a url")).map(|_| ()),
            Err(RedisSetupError::Url(
                redis::Client::open("not a url").unwrap_err().to_string()
            ))
        );
        let mut config = RedisConfig::new("redis://127.0.0.1/");
        config.timeout = Duration::ZERO;
        assert_eq!(
            RedisBackend::new(config).map(|_| ()),
            Err(RedisSetupError::ZeroTimeout)
        );
        let backend = backend();
        let quota = Quota::per_second(5).unwrap();
        assert_eq!(
            backend.limit("", Algorithm::Gcra, quota),
            Err(RedisSetupError::Name(String::new()))
        );
        // The in-process constructors' errors, unchanged.
        assert_eq!(
            backend.limit(
                "x",
                Algorithm::SlidingWindowStrict { sub_windows: 0 },
                quota
            ),
            Err(RedisSetupError::Quota(QuotaError::ZeroSubWindows))
        );
        assert_eq!(
            backend.limit(
                "x",
                Algorithm::SlidingWindowApprox,
                Quota::new(1000, 1000).unwrap()
            ),
            Err(RedisSetupError::Quota(QuotaError::StateTooWide))
        );
        let a = backend.limit("a", Algorithm::Gcra, quota).unwrap();
        assert_eq!(
            backend.composite(vec![a.clone(), a.clone()]).map(|_| ()),
            Err(RedisSetupError::DuplicateName(String::from("a")))
        );
        assert_eq!(
            backend.composite(Vec::new()).map(|_| ()),
            Err(RedisSetupError::Quota(QuotaError::EmptyComposite))
        );
        assert_eq!(
            backend.composite(vec![a; MAX_LIMITS + 1]).map(|_| ()),
            Err(RedisSetupError::Quota(QuotaError::TooManyLimits))
        );
    }

    #[test]
    fn key_parts_are_unambiguous() {
        assert_ne!(
            key_from_parts(&[b"ab", b"c"]),
            key_from_parts(&[b"a", b"bc"])
        );
        assert_eq!(key_from_parts(&[b"ab"]), b"\0\0\0\x02ab");
    }

    #[test]
    fn backends_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<RedisBackend>();
        check::<RedisLimiter>();
        check::<RedisComposite>();
    }
}
