//! The backend's counters: [`RedisStats`], the snapshot callers read, and the atomic
//! counters behind it.
//!
//! # Orderings
//! Counters are statistics: every increment and read is `Relaxed`, ordered with nothing
//! else.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the backend's counters (all since creation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RedisStats {
    /// Checks and peeks sent towards Redis (after argument validation).
    pub checks: u64,
    /// Checks Redis decided.
    pub decided: u64,
    /// Failure decisions that admitted ([`FailureMode::Open`](super::FailureMode::Open)).
    pub failed_open: u64,
    /// Failure decisions that denied ([`FailureMode::Closed`](super::FailureMode::Closed)).
    pub failed_closed: u64,
    /// [`Fault::Timeout`](super::Fault::Timeout)s.
    pub timeouts: u64,
    /// [`Fault::Unavailable`](super::Fault::Unavailable)s (including `skipped`).
    pub unavailable: u64,
    /// Of `unavailable`: checks that did not try to connect, within the reconnect
    /// backoff.
    pub skipped: u64,
    /// [`Fault::Server`](super::Fault::Server)s.
    pub server_errors: u64,
    /// [`Fault::Inconsistent`](super::Fault::Inconsistent)s.
    pub inconsistent: u64,
    /// [`Fault::Replication`](super::Fault::Replication)s: writes fewer than
    /// [`RedisConfig::wait_replicas`](super::RedisConfig::wait_replicas) replicas
    /// acknowledged in time.
    pub replication: u64,
    /// Cross-slot checks (Redis Cluster): charges given back after a later slot denied.
    pub undone: u64,
    /// Cross-slot checks: charges that stayed, since the key changed before the undo (a
    /// concurrent request) or the undo failed — stricter, never over-admission.
    pub undo_kept: u64,
    /// Connections opened.
    pub connects: u64,
    /// `SCRIPT LOAD`s after a `NOSCRIPT` (first use, server restarts).
    pub script_loads: u64,
    /// Checks sent to the ratecore module (`RATECORE.CHECK` / `RATECORE.PEEK`).
    pub module_checks: u64,
    /// Checks sent to the Lua script.
    pub script_checks: u64,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) checks: AtomicU64,
    pub(super) decided: AtomicU64,
    pub(super) failed_open: AtomicU64,
    pub(super) failed_closed: AtomicU64,
    pub(super) timeouts: AtomicU64,
    pub(super) unavailable: AtomicU64,
    pub(super) skipped: AtomicU64,
    pub(super) server_errors: AtomicU64,
    pub(super) inconsistent: AtomicU64,
    pub(super) replication: AtomicU64,
    pub(super) undone: AtomicU64,
    pub(super) undo_kept: AtomicU64,
    pub(super) connects: AtomicU64,
    pub(super) script_loads: AtomicU64,
    pub(super) module_checks: AtomicU64,
    pub(super) script_checks: AtomicU64,
}

/// Counters are statistics: `Relaxed` increments, no ordering with anything else.
pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    /// The counters' current values (each read on its own: `Relaxed`, statistics).
    pub(super) fn snapshot(&self) -> RedisStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        RedisStats {
            checks: get(&self.checks),
            decided: get(&self.decided),
            failed_open: get(&self.failed_open),
            failed_closed: get(&self.failed_closed),
            timeouts: get(&self.timeouts),
            unavailable: get(&self.unavailable),
            skipped: get(&self.skipped),
            server_errors: get(&self.server_errors),
            inconsistent: get(&self.inconsistent),
            replication: get(&self.replication),
            undone: get(&self.undone),
            undo_kept: get(&self.undo_kept),
            connects: get(&self.connects),
            script_loads: get(&self.script_loads),
            module_checks: get(&self.module_checks),
            script_checks: get(&self.script_checks),
        }
    }
}
