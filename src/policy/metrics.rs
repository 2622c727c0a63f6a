//! Per-limit counters: what each limit did to the requests it applied to, readable at any
//! time without locks.
//!
//! # Orderings
//! Each counter is an independent statistic: `Relaxed` increments and loads suffice, as
//! nothing else is published through them. A reader sees every counter monotone; a
//! snapshot of several counters is not one instant (each is read at its own moment), so
//! `checked()` — a sum — is monotone too but may trail by the checks in flight.

use crossbeam_utils::CachePadded;

use crate::http::writer::Writer;
use crate::http::BufferTooSmall;

// Plain `core` atomics even under loom: statistics, not part of any CAS protocol.
use core::sync::atomic::{AtomicU64, Ordering};

/// What happened to one request at one limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Allowed,
    Denied,
    ShadowDenied,
    Skipped,
}

/// One limit's counters, on a cache line of their own so that limits checked by
/// different threads do not share one.
#[derive(Debug, Default)]
pub(crate) struct LimitCounters {
    counts: CachePadded<[AtomicU64; 4]>,
}

impl LimitCounters {
    pub(crate) fn note(&self, outcome: Outcome) {
        if let Some(counter) = self.counts.get(outcome as usize) {
            // Relaxed: module Orderings.
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> LimitMetrics {
        // Relaxed: module Orderings.
        let [allowed, denied, shadow_denied, skipped] =
            core::array::from_fn(|i| self.counts.get(i).map_or(0, |c| c.load(Ordering::Relaxed)));
        LimitMetrics {
            allowed,
            denied,
            shadow_denied,
            skipped,
        }
    }
}

/// A limit's counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitMetrics {
    /// Requests this limit admitted (whatever the other limits said).
    pub allowed: u64,
    /// Requests this limit denied (for a shadow limit: always 0).
    pub denied: u64,
    /// Requests a shadow limit would have denied.
    pub shadow_denied: u64,
    /// Requests the limit's rule applied to that lacked a key attribute and were let
    /// through by `on_missing = "skip"`.
    pub skipped: u64,
}

impl LimitMetrics {
    /// Requests the limit was checked against (every request its rule applied to).
    #[must_use]
    pub const fn checked(&self) -> u64 {
        self.allowed
            .saturating_add(self.denied)
            .saturating_add(self.shadow_denied)
            .saturating_add(self.skipped)
    }
}

/// Escapes a label value for the Prometheus text format: `\`, `"` and newline.
fn label(out: &mut Writer<'_>, value: &str) {
    let mut rest = value;
    while let Some(at) = rest.find(['\\', '"', '\n']) {
        out.str(rest.get(..at).unwrap_or(""));
        out.str(match rest.as_bytes().get(at) {
            Some(b'\\') => "\\\\",
            Some(b'"') => "\\\"",
            _ => "\\n",
        });
        rest = rest.get(at + 1..).unwrap_or("");
    }
    out.str(rest);
}

/// The Prometheus text exposition of `limits` ([`super::PolicyView::render_metrics`]).
pub(super) fn render<'a>(
    limits: impl Iterator<Item = (super::LimitRef<'a>, LimitMetrics)>,
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let mut w = Writer::new(out);
    w.str("# HELP ratecore_policy_requests_total Requests each policy limit applied to, by what the limit did.\n");
    w.str("# TYPE ratecore_policy_requests_total counter\n");
    for (limit, metrics) in limits {
        for (outcome, value) in [
            ("allowed", metrics.allowed),
            ("denied", metrics.denied),
            ("shadow_denied", metrics.shadow_denied),
            ("skipped", metrics.skipped),
        ] {
            w.str("ratecore_policy_requests_total{rule=\"");
            label(&mut w, limit.rule);
            w.str("\",limit=\"");
            label(&mut w, limit.name);
            w.str(if limit.shadow {
                "\",shadow=\"true\",outcome=\""
            } else {
                "\",shadow=\"false\",outcome=\""
            });
            w.str(outcome);
            w.str("\"} ");
            w.u64(value);
            w.str("\n");
        }
    }
    w.finish().map_err(|needed| BufferTooSmall { needed })
}
