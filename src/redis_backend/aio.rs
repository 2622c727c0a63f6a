//! The async transport (feature `redis-tokio`): the same checks as the blocking pool —
//! same commands, same replay and verification, same failure decisions and counters, the
//! same cross-slot protocol (`cross_slot`) — sent on one shared connection
//! (`cluster::AsyncConn`): a [`redis::aio::MultiplexedConnection`] to one server, which
//! pipelines the checks of every task on one socket, or on a Redis Cluster a
//! [`redis::cluster_async::ClusterConnection`], one multiplexed connection per node, each
//! call routed to the primary of its first key's slot.
//!
//! Reconnection follows the blocking pool's rules, with the shared connection in place of
//! the pool: a connection the server went away from is dropped and the next check opens a
//! new one (one task at a time; the others wait for it, within their own timeout); after
//! a failed connect, checks within [`RedisConfig::reconnect_backoff`] fail at once. A
//! check whose reply did not arrive is never sent again by this transport (a cluster
//! connection resends after a redirection or a connection reset, as the blocking one
//! does: a charge counted twice at worst). A check that timed out leaves
//! the connection in place: a multiplexed connection matches replies to requests in
//! order, so a late reply is discarded, not handed to the next check.
//!
//! Checks sent with `WAIT` ([`RedisConfig::wait_replicas`]) are the exception: the server
//! holds every command behind a `WAIT` until it returns, so they go on lines of their
//! own, one check at a time each (`WaitLines`). Without wait lines, such a check that
//! timed out replaces the shared connection, so that the server drops what queued behind
//! it. All lines share the connect lock, the backoff and an epoch: a server that went away
//! drops every line's connection, not one check per line. (The `redis` crate's
//! `ConnectionManager` reconnects too, but a check made while it reconnects waits for the
//! reconnect instead of failing at once within the backoff.)
//!
//! [`RedisConfig::reconnect_backoff`]: super::RedisConfig::reconnect_backoff
//! [`RedisConfig::wait_replicas`]: super::RedisConfig::wait_replicas
//!
//! # Orderings
//! The shared connection is an `ArcSwapOption`: a task loads it (lock-free) and clones
//! the handle; arc-swap makes a stored connection fully visible to every later load. A
//! failed connection is replaced with `None` by compare-and-swap against the very `Arc`
//! that failed, so a connection another task has just opened is never dropped by a stale
//! failure. `retry_at` and `epoch` are hints read and written `Relaxed`, as in the
//! blocking pool: connects are serialised by the `connecting` lock, which orders them
//! among themselves, and a stale epoch costs one connection used or replaced once more.
//! The wait lines' flags are argued at `WaitLines`. Counters are `Relaxed` (see `stats`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::{timeout_at, Instant};

use super::cluster::AsyncConn;
use super::config::RedisEngine;
use super::cross_slot::Undo;
use super::module;
use super::pool::classify;
use super::stats::bump;
use super::{
    BackendError, Check, Fault, Inner, RedisBackend, RedisCheckError, RedisComposite,
    RedisDecision, RedisLimit, RedisLimiter,
};
use crate::decision::{Decision, Mode};

/// The async transport's connections, shared by every task using one backend, and what
/// reconnecting them needs (shared by all lines: they reach the same servers).
pub(super) struct Shared {
    /// Every check but those sent with `WAIT`.
    main: Line,
    /// Checks sent with `WAIT`, one at a time per line
    /// ([`RedisConfig::wait_connections`](super::RedisConfig::wait_connections)).
    waits: WaitLines,
    /// Held while connecting, so a dead server sees one connect attempt at a time.
    connecting: tokio::sync::Mutex<()>,
    /// Nanoseconds after the backend's origin before which no connect is attempted.
    retry_at: AtomicU64,
    /// Bumped when a server went away: every line's connection opened before is dropped
    /// when next used, instead of failing one check of its own first.
    epoch: AtomicU64,
}

impl Shared {
    pub(super) fn new(wait_connections: usize) -> Self {
        Self {
            main: Line::default(),
            connecting: tokio::sync::Mutex::new(()),
            retry_at: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            waits: WaitLines {
                lines: (0..wait_connections).map(|_| Line::default()).collect(),
                busy: (0..wait_connections)
                    .map(|_| AtomicBool::new(false))
                    .collect(),
                free: Semaphore::new(wait_connections),
            },
        }
    }
}

/// One shared connection (on a cluster, one per node), opened when first needed.
#[derive(Default)]
struct Line {
    current: ArcSwapOption<Opened>,
}

/// A line's connection and the [`Shared::epoch`] it was opened in.
struct Opened {
    connection: AsyncConn,
    epoch: u64,
}

/// The connections of checks sent with `WAIT`. The server holds every later command of
/// a connection until its `WAIT` returns (a replica's acknowledgement, or `WAIT`'s own
/// timeout), so checks with `WAIT` sharing the main connection would run one at a time,
/// each behind the ones before it. Here each line carries one check at a time, and
/// `WAIT`s on different lines run at once.
///
/// A task takes a permit of `free` (one per line), then claims a line whose `busy` flag
/// it clears on release. A permit guarantees an unclaimed line: permits and clear flags
/// are only ever taken together, and a flag is cleared (`Release`) before its permit is
/// returned; the claim's `Acquire` compare-and-swap pairs with it, so the line's previous
/// user is done with it.
struct WaitLines {
    lines: Box<[Line]>,
    busy: Box<[AtomicBool]>,
    free: Semaphore,
}

/// A claimed wait line, released on drop.
struct Claimed<'a> {
    waits: &'a WaitLines,
    index: usize,
    _permit: SemaphorePermit<'a>,
}

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        // A struct's fields are dropped after its `drop` body runs: the flag is clear
        // before the permit goes back to the semaphore.
        self.waits.busy[self.index].store(false, Ordering::Release);
    }
}

impl WaitLines {
    /// A free line, waiting for one until `deadline`; `None` when no line frees in time.
    async fn claim(&self, deadline: Instant) -> Option<Claimed<'_>> {
        let permit = timeout_at(deadline, self.free.acquire()).await.ok()?.ok()?;
        let index = self.busy.iter().position(|busy| {
            busy.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        });
        // Unreachable while the protocol above holds; a check then times out.
        debug_assert!(index.is_some(), "a wait-line permit without a free line");
        let index = index?;
        Some(Claimed {
            waits: self,
            index,
            _permit: permit,
        })
    }
}

impl RedisBackend {
    checks! { backend [async] [.await]
        /// [`check_limits`](Self::check_limits) on the async transport: the same decision,
        /// failure decision and counters, without blocking the runtime's thread. Every task
        /// checking through one backend shares one multiplexed connection. Runs on a tokio
        /// runtime with time enabled; the whole check (including a connect) takes at most
        /// [`RedisConfig::timeout`](super::RedisConfig::timeout).
        ///
        /// # Errors
        /// As for [`check_limits`](Self::check_limits).
        fn check_limits_async -> RedisDecision = decide_async(Charge);

        /// [`peek_limits`](Self::peek_limits) on the async transport.
        ///
        /// # Errors
        /// As for [`check_limits`](Self::check_limits).
        fn peek_limits_async -> RedisDecision = decide_async(Peek);

        /// [`try_check_limits`](Self::try_check_limits) on the async transport.
        ///
        /// # Errors
        /// Any [`RedisCheckError`].
        fn try_check_limits_async -> Decision = run_async(Charge);

        /// [`try_peek_limits`](Self::try_peek_limits) on the async transport.
        ///
        /// # Errors
        /// Any [`RedisCheckError`].
        fn try_peek_limits_async -> Decision = run_async(Peek);
    }

    /// [`ping`](Self::ping) on the async transport.
    ///
    /// # Errors
    /// The [`BackendError`] a check would have met.
    pub async fn ping_async(&self) -> Result<(), BackendError> {
        let deadline = Instant::now() + self.inner.config.timeout;
        // No key: on a cluster, every primary (as the `redis` crate routes `PING`).
        self.inner
            .send_async(&redis::cmd("PING"), None, None, deadline, false)
            .await
            .map(drop)
    }
}

impl RedisLimiter {
    checks! { limiter [async] [.await]
        /// [`check`](Self::check) on the async transport.
        ///
        /// # Errors
        /// [`RedisCheckError::Cost`] when `cost` can never fit.
        fn check_async -> RedisDecision = check_limits_async;

        /// [`peek`](Self::peek) on the async transport.
        ///
        /// # Errors
        /// As for [`check_async`](Self::check_async).
        fn peek_async -> RedisDecision = peek_limits_async;
    }
}

impl RedisComposite {
    checks! { composite [async] [.await]
        /// [`check_each`](Self::check_each) on the async transport.
        ///
        /// # Errors
        /// [`RedisCheckError::Cost`] when `cost` can never fit some limit.
        fn check_each_async -> RedisDecision = check_limits_async;

        /// [`peek_each`](Self::peek_each) on the async transport.
        ///
        /// # Errors
        /// As for [`check_each_async`](Self::check_each_async).
        fn peek_each_async -> RedisDecision = peek_limits_async;
    }
}

impl Inner {
    /// [`run_async`](Self::run_async), a failure answered with the failure decision.
    async fn decide_async(
        &self,
        check: Check<'_>,
        states: &mut [Decision],
    ) -> Result<RedisDecision, RedisCheckError> {
        let result = self.run_async(check, states).await;
        self.settle(result, check.limits, states)
    }

    /// One check on the async transport: on a cluster whose keys fall in several slots,
    /// the cross-slot protocol (`cross_slot`); otherwise one call.
    pub(super) async fn run_async(
        &self,
        check: Check<'_>,
        states: &mut [Decision],
    ) -> Result<Decision, RedisCheckError> {
        if self.cluster.is_some() {
            if let Some(groups) = super::cross_slot::groups(check.limits) {
                return self.cross_slot_async(check, &groups, states).await;
            }
        }
        self.run_one_async(check, states, false)
            .await
            .map(|(decision, _)| decision)
    }

    /// One call (all keys in one slot) on the shared connection, through the module or
    /// the script as configured or detected (the blocking `dispatch_one`'s choices),
    /// then `WAIT` with [`RedisConfig::wait_replicas`](super::RedisConfig::wait_replicas);
    /// with `keep`, also what an admitted charge wrote.
    pub(super) async fn run_one_async(
        &self,
        check: Check<'_>,
        states: &mut [Decision],
        keep: bool,
    ) -> Result<(Decision, Vec<Undo>), RedisCheckError> {
        let prepared = self.prepare(check, keep)?;
        let key = prepared.first_key();
        let deadline = Instant::now() + self.config.timeout;
        let mut engine = self.engine_hint();
        if engine == module::UNKNOWN {
            let info = self
                .query_async(&module::detect_command(), key, deadline)
                .await
                .map_err(|e| self.forget_engine(e))?;
            engine = self.detected(&info);
        }
        // `WAIT` travels with the check, on the same connection (see `AsyncConn::send`).
        let wait = self.wait_command(&prepared);
        let wait = wait.as_ref();
        let mut module_reply = None;
        if engine == module::MODULE {
            let command = module::module_command(&prepared, self.min_ttl_ms);
            let detecting = self.config.engine == RedisEngine::Detect;
            match self
                .send_async(&command, wait, Some(key), deadline, detecting)
                .await
            {
                // The module is gone (a restart or failover without it): nothing ran, so
                // the script decides instead.
                Ok(None) => self.note_engine(module::SCRIPT),
                answer => {
                    bump(&self.counters.module_checks);
                    let reply = answer.map_err(|e| self.forget_engine(e))?;
                    module_reply = Some(reply.unwrap_or(redis::Value::Nil));
                }
            }
        }
        let (from_module, reply) = match module_reply {
            Some(reply) => (true, reply),
            None => {
                bump(&self.counters.script_checks);
                let eval = self.eval(&prepared);
                let reply = self
                    .send_async(&eval, wait, Some(key), deadline, false)
                    .await;
                let reply = reply.map_err(|e| self.forget_engine(e))?;
                (false, reply.unwrap_or(redis::Value::Nil))
            }
        };
        let reply = match wait {
            Some(_) => self.after_wait(reply)?,
            None => reply,
        };
        self.verify_reply(from_module, &prepared, reply, states)
    }

    /// A failed check's error, after forgetting what detection found when the server
    /// went away (it may come back with or without the module).
    fn forget_engine(&self, error: BackendError) -> RedisCheckError {
        if error.fault == Fault::Unavailable {
            self.note_engine(module::UNKNOWN);
        }
        RedisCheckError::Backend(error)
    }

    /// One keyed command (an undo) with its own deadline, classified and counted.
    pub(super) async fn query_keyed_async(
        &self,
        command: &redis::Cmd,
        key: &[u8],
    ) -> Result<redis::Value, BackendError> {
        let deadline = Instant::now() + self.config.timeout;
        self.query_async(command, key, deadline).await
    }

    /// [`send_async`](Self::send_async) for a command every server knows, sent to the
    /// server holding `key`.
    async fn query_async(
        &self,
        command: &redis::Cmd,
        key: &[u8],
        deadline: Instant,
    ) -> Result<redis::Value, BackendError> {
        Ok(self
            .send_async(command, None, Some(key), deadline, false)
            .await?
            .unwrap_or(redis::Value::Nil))
    }

    /// Sends `command` (and `then` right after it, on the same connection) to the server
    /// holding `key` (no key: where the `redis` crate routes it), loading the script when
    /// the server answers `NOSCRIPT` (which means nothing ran), and waits for its reply
    /// until `deadline`, classifying and counting failures as the blocking pool does.
    /// `None` when `unknown_ok` and the server does not know the command (nothing ran;
    /// not a fault).
    async fn send_async(
        &self,
        command: &redis::Cmd,
        then: Option<&redis::Cmd>,
        key: Option<&[u8]>,
        deadline: Instant,
        unknown_ok: bool,
    ) -> Result<Option<redis::Value>, BackendError> {
        // A check with `WAIT` on a line of its own, when the backend has wait lines.
        let claimed = match then {
            Some(_) if !self.aio.waits.lines.is_empty() => {
                match self.aio.waits.claim(deadline).await {
                    Some(claimed) => Some(claimed),
                    None => {
                        return Err(self.count(
                            Fault::Timeout,
                            String::from("no connection for a check with WAIT freed in time"),
                        ))
                    }
                }
            }
            _ => None,
        };
        let line = claimed.as_ref().map_or(&self.aio.main, |claimed| {
            &self.aio.waits.lines[claimed.index]
        });
        let opened = self.connection_async(line, deadline).await?;
        let mut connection = opened.connection.clone();
        let sent = async {
            match connection.send(command, then, key).await {
                Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                    let key = key.unwrap_or_default();
                    connection.load_script(&self.script, key).await?;
                    bump(&self.counters.script_loads);
                    match connection.send(command, then, Some(key)).await {
                        Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                            let whole = super::script::with_body(command);
                            connection.send(&whole, then, Some(key)).await
                        }
                        other => other,
                    }
                }
                other => other,
            }
        };
        match timeout_at(deadline, sent).await {
            Ok(Ok(reply)) => Ok(Some(reply)),
            Ok(Err(e)) if unknown_ok && module::is_unknown_command(&e) => Ok(None),
            Ok(Err(e)) => {
                let fault = classify(&e);
                if fault == Fault::Unavailable || e.is_unrecoverable_error() {
                    // The server (on a cluster: a node) went away: the next check connects
                    // again, reading a cluster's slot map afresh (unless another task
                    // already replaced this connection), and so does every other line.
                    // Only a connection of the current epoch moves it on, so late failures
                    // of old connections do not drop new ones.
                    let epoch = opened.epoch;
                    let _ = self.aio.epoch.compare_exchange(
                        epoch,
                        epoch.wrapping_add(1),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                    let _ = line.current.compare_and_swap(&Some(opened), None);
                }
                Err(self.count(fault, e.to_string()))
            }
            Err(_) => {
                if then.is_some() && claimed.is_none() {
                    // On the shared connection (no wait lines): the server runs its
                    // commands in order, and a `WAIT` holds back every command behind it
                    // until the replicas answer or its own timeout passes. Checks that gave
                    // up stay queued on the server and still run, so new checks would
                    // queue behind them: while the server serves fewer checks than arrive,
                    // the backlog only grows, and every check times out (a replica
                    // resyncing after a failover was enough). A new connection sheds that
                    // backlog: the server drops a closed connection's unread commands. (A
                    // wait line carries one check at a time: nothing queues behind it but
                    // the `WAIT` it sent, shorter than the timeout.)
                    let _ = line.current.compare_and_swap(&Some(opened), None);
                }
                Err(self.count(Fault::Timeout, String::from("no reply within the timeout")))
            }
        }
    }

    /// `line`'s connection, or a new one (not within the reconnect backoff).
    async fn connection_async(
        &self,
        line: &Line,
        deadline: Instant,
    ) -> Result<Arc<Opened>, BackendError> {
        // The epoch is a hint read `Relaxed`: a stale read costs one connection used or
        // replaced once more; the connection itself is published by the `ArcSwap`.
        let current = |line: &Line| {
            let opened = line.current.load_full()?;
            if opened.epoch == self.aio.epoch.load(Ordering::Relaxed) {
                return Some(opened);
            }
            let _ = line.current.compare_and_swap(&Some(opened), None);
            None
        };
        if let Some(opened) = current(line) {
            return Ok(opened);
        }
        let Ok(_connecting) = timeout_at(deadline, self.aio.connecting.lock()).await else {
            return Err(self.count(
                Fault::Timeout,
                String::from("another check's connect did not finish within the timeout"),
            ));
        };
        // Another task may have connected (or failed to) while this one waited.
        if let Some(opened) = current(line) {
            return Ok(opened);
        }
        if self.elapsed() < self.aio.retry_at.load(Ordering::Relaxed) {
            bump(&self.counters.skipped);
            return Err(self.count(
                Fault::Unavailable,
                String::from("not reconnecting yet (reconnect backoff after a failed connect)"),
            ));
        }
        let fault = match timeout_at(deadline, self.connect_async()).await {
            Ok(Ok(connection)) => {
                bump(&self.counters.connects);
                self.aio.retry_at.store(0, Ordering::Relaxed);
                let opened = Arc::new(Opened {
                    connection,
                    epoch: self.aio.epoch.load(Ordering::Relaxed),
                });
                line.current.store(Some(Arc::clone(&opened)));
                return Ok(opened);
            }
            Ok(Err(e)) if e.is_timeout() => (Fault::Timeout, e.to_string()),
            Ok(Err(e)) => (Fault::Unavailable, e.to_string()),
            Err(_) => (
                Fault::Timeout,
                String::from("no connection within the timeout"),
            ),
        };
        let backoff = u64::try_from(self.config.reconnect_backoff.as_nanos()).unwrap_or(u64::MAX);
        self.aio
            .retry_at
            .store(self.elapsed().saturating_add(backoff), Ordering::Relaxed);
        Err(self.count(fault.0, fault.1))
    }

    /// A new connection: to the server, or to the cluster (its slot map read now).
    async fn connect_async(&self) -> redis::RedisResult<AsyncConn> {
        match &self.cluster {
            None => {
                // No response timeout of the client's own: every check's deadline already
                // bounds its wait, and a second timer per request would only cost.
                let options =
                    redis::AsyncConnectionConfig::new().set_connection_timeout(self.config.timeout);
                self.client
                    .get_multiplexed_async_connection_with_config(&options)
                    .await
                    .map(AsyncConn::Single)
            }
            Some(cluster) => cluster.get_async_connection().await.map(AsyncConn::Cluster),
        }
    }
}
