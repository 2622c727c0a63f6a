//! A consistent view of one policy version: its rules, attribute names and counters,
//! read in place without allocating, and the counters' Prometheus export.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::compile::Version;
use super::metrics::LimitMetrics;
use super::{LimitRef, ResponseSpec, Rule};
use crate::http::BufferTooSmall;

/// One version of a policy, kept alive while the view exists (a reload does not change
/// what it shows).
#[derive(Debug, Clone)]
pub struct PolicyView {
    compiled: Arc<Version>,
}

/// A limit's description, owned (see [`LimitRef`] for the fields).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitInfo {
    /// The limit's index in policy order.
    pub id: usize,
    /// The rule.
    pub rule: String,
    /// The rule's description for plain-text bodies.
    pub description: String,
    /// The limit's name.
    pub name: String,
    /// The attributes it keys on.
    pub key: Vec<String>,
    /// The limit's period, in nanoseconds.
    pub period: u64,
    /// Whether it is a shadow limit.
    pub shadow: bool,
}

impl From<LimitRef<'_>> for LimitInfo {
    fn from(limit: LimitRef<'_>) -> Self {
        Self {
            id: limit.id,
            rule: String::from(limit.rule),
            description: String::from(limit.description),
            name: String::from(limit.name),
            key: limit.key.to_vec(),
            period: limit.period,
            shadow: limit.shadow,
        }
    }
}

impl PolicyView {
    pub(super) fn new(compiled: Arc<Version>) -> Self {
        Self { compiled }
    }

    /// How this version answers.
    #[must_use]
    pub fn response(&self) -> &ResponseSpec {
        &self.compiled.response
    }

    /// The rules, in order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.compiled.spec.iter()
    }

    /// Every attribute name the version reads (conditions and keys), in first-use order.
    pub fn attribute_names(&self) -> impl Iterator<Item = &str> {
        self.compiled.attributes.iter().map(String::as_str)
    }

    /// Every limit with its counters, in policy order. Allocation-free.
    pub fn metrics(&self) -> impl Iterator<Item = (LimitRef<'_>, LimitMetrics)> {
        (0..self.compiled.limits.len()).filter_map(|id| {
            Some((
                self.compiled.limit_ref(id)?,
                self.compiled.counters.get(id)?.snapshot(),
            ))
        })
    }

    /// Bytes of table memory this version holds.
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        self.compiled.memory_bytes()
    }

    /// Writes every limit's counters in the Prometheus text exposition format (version
    /// 0.0.4) into `out`, for a server to publish without ratecore running one: one
    /// counter family, `ratecore_policy_requests_total`, labelled by rule, limit, whether
    /// the limit is a shadow one, and outcome (`allowed`, `denied`, `shadow_denied`,
    /// `skipped`). Allocation-free; label values are escaped as the format requires.
    ///
    /// # Errors
    /// [`BufferTooSmall`] with the exact length needed (nothing useful is written then).
    pub fn render_metrics(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        super::metrics::render(self.metrics(), out)
    }
}
