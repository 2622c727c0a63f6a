//! The blocking connection pool: a check takes an idle connection or opens one (with the
//! timeout, and not within the reconnect backoff after a failed connect), gives it back
//! when the server answered, and drops it — with every idle one of the same epoch, when
//! the server went away — otherwise. Every failure is classified as a [`Fault`] and
//! counted.
//!
//! # Orderings
//! The idle connections are behind a mutex. `epoch` and `retry_at` are hints, read and
//! written `Relaxed`: a stale read at worst lets one check use a connection opened before
//! the server went away (the check fails as it would have on that connection), or makes
//! one connect attempt early or late.
//!
//! On a Redis Cluster each pooled connection is a cluster connection (one socket per
//! node, the slot map read when it opens). One that met an unreachable node is dropped
//! like a single server's, so the next check reads the slot map afresh: after a failover
//! it finds the promoted replica. Counters are `Relaxed` (see `stats`).

use std::sync::atomic::Ordering;
use std::sync::MutexGuard;
use std::sync::PoisonError;

use super::cluster::Conn;
use super::stats::{bump, Counters};
use super::{BackendError, Fault, Inner};

/// An idle connection, and the epoch it was opened under.
pub(super) struct Pooled {
    epoch: u64,
    connection: Conn,
}

/// The fault a client error stands for: no reply in time, an error reply (the server
/// answered, the connection is in sync), or anything else (the server is unreachable or
/// went away).
pub(super) fn classify(e: &redis::RedisError) -> Fault {
    if e.is_timeout() {
        Fault::Timeout
    } else if e.kind() == redis::ErrorKind::ClientError
        && e.to_string().contains(super::script::REPLICATION)
    {
        Fault::Replication
    } else if e.code().is_some() {
        Fault::Server
    } else {
        Fault::Unavailable
    }
}

impl Inner {
    /// Runs `f` on a pooled (or new) connection, classifying and counting failures.
    pub(super) fn with_connection<T>(
        &self,
        f: impl FnOnce(&mut Conn, &Counters) -> redis::RedisResult<T>,
    ) -> Result<T, BackendError> {
        let (epoch, mut connection) = self.take()?;
        match f(&mut connection, &self.counters) {
            Ok(value) => {
                self.give_back(epoch, connection);
                Ok(value)
            }
            Err(e) => {
                let fault = classify(&e);
                match fault {
                    // The server answered: the connection is in sync and reusable.
                    Fault::Server | Fault::Replication => self.give_back(epoch, connection),
                    // A late reply could still arrive: never reuse this connection.
                    Fault::Timeout => drop(connection),
                    // The server went away: so did every connection opened before.
                    _ => {
                        self.epoch.fetch_add(1, Ordering::Relaxed);
                        drop(connection);
                    }
                }
                Err(self.count(fault, e.to_string()))
            }
        }
    }

    pub(super) fn count(&self, fault: Fault, message: String) -> BackendError {
        bump(match fault {
            Fault::Timeout => &self.counters.timeouts,
            Fault::Unavailable => &self.counters.unavailable,
            Fault::Server => &self.counters.server_errors,
            Fault::Inconsistent => &self.counters.inconsistent,
            Fault::Replication => &self.counters.replication,
        });
        BackendError { fault, message }
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Pooled>> {
        // A panic while holding the lock cannot leave the Vec inconsistent.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn elapsed(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn take(&self) -> Result<(u64, Conn), BackendError> {
        let epoch = self.epoch.load(Ordering::Relaxed);
        {
            let mut idle = self.idle();
            while let Some(pooled) = idle.pop() {
                if pooled.epoch == epoch {
                    return Ok((pooled.epoch, pooled.connection));
                }
            }
        }
        if self.elapsed() < self.retry_at.load(Ordering::Relaxed) {
            bump(&self.counters.skipped);
            return Err(self.count(
                Fault::Unavailable,
                String::from("not reconnecting yet (reconnect backoff after a failed connect)"),
            ));
        }
        let timeout = self.config.timeout;
        let connected = match &self.cluster {
            None => self
                .client
                .get_connection_with_timeout(timeout)
                .and_then(|connection| {
                    connection.set_read_timeout(Some(timeout))?;
                    connection.set_write_timeout(Some(timeout))?;
                    Ok(Conn::Single(connection))
                }),
            Some(cluster) => cluster.get_connection().and_then(|connection| {
                connection.set_read_timeout(Some(timeout))?;
                connection.set_write_timeout(Some(timeout))?;
                Ok(Conn::Cluster(Box::new(connection)))
            }),
        };
        match connected {
            Ok(connection) => {
                bump(&self.counters.connects);
                self.retry_at.store(0, Ordering::Relaxed);
                Ok((self.epoch.load(Ordering::Relaxed), connection))
            }
            Err(e) => {
                let backoff =
                    u64::try_from(self.config.reconnect_backoff.as_nanos()).unwrap_or(u64::MAX);
                self.retry_at
                    .store(self.elapsed().saturating_add(backoff), Ordering::Relaxed);
                let fault = if e.is_timeout() {
                    Fault::Timeout
                } else {
                    Fault::Unavailable
                };
                Err(self.count(fault, e.to_string()))
            }
        }
    }

    fn give_back(&self, epoch: u64, connection: Conn) {
        if epoch != self.epoch.load(Ordering::Relaxed) {
            return;
        }
        let mut idle = self.idle();
        if idle.len() < self.config.max_idle_connections {
            idle.push(Pooled { epoch, connection });
        }
    }
}
