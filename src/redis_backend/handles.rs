//! The handles callers check through: [`RedisLimit`] (a named limit and how its keys are
//! spelled in Redis), [`RedisLimiter`] (one limit per key) and [`RedisComposite`] (several
//! limits on one key), and [`key_from_parts`] for keys made of several identities.

use super::wire::Spec;
use super::{RedisBackend, RedisCheckError, RedisDecision, RedisSetupError};
use crate::algorithm::Algorithm;
use crate::decision::Decision;
use crate::error::QuotaError;
use crate::quota::Quota;

/// One key from several identity parts (e.g. OAuth app and user), unambiguously: each
/// part is preceded by its length (4 bytes, big-endian), so `("ab", "c")` and
/// `("a", "bc")` differ.
#[must_use]
pub fn key_from_parts(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    for part in parts {
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(part.get(..len as usize).unwrap_or(part));
    }
    out
}

/// 8 hex digits naming the algorithm, quota and state layout (FNV-1a, stable across
/// builds and platforms).
fn layout_tag(algorithm: Algorithm, quota: &Quota) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u32::from(b);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    };
    feed(b"ratecore-redis-v1");
    feed(&algorithm.code().to_be_bytes());
    feed(&algorithm.sub_windows().to_be_bytes());
    feed(&quota.limit().to_be_bytes());
    feed(&quota.period().to_be_bytes());
    if algorithm == Algorithm::Gcra {
        feed(&quota.burst().to_be_bytes());
    }
    format!("{hash:08x}")
}

/// One limit (name, algorithm, quota) whose per-key states live in Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisLimit {
    name: String,
    algorithm: Algorithm,
    quota: Quota,
    pub(super) spec: Spec,
    /// The limit as `RATECORE.CHECK` spells it (`GCRA limit period burst`, …), written
    /// once here rather than formatted for every check.
    pub(super) module_args: Vec<Vec<u8>>,
    key_prefix: Vec<u8>,
    /// Keys end in a hash tag (Redis Cluster).
    tagged: bool,
}

impl RedisLimit {
    /// The limit `name` on `algorithm` and `quota`, its keys under `prefix` (see
    /// [`RedisBackend::limit`]).
    pub(super) fn new(
        prefix: &str,
        tagged: bool,
        name: &str,
        algorithm: Algorithm,
        quota: Quota,
    ) -> Result<Self, RedisSetupError> {
        if name.is_empty() {
            return Err(RedisSetupError::Name(String::from(name)));
        }
        let spec = Spec::new(algorithm, &quota)?;
        let mut key_prefix = Vec::new();
        // `:` separates the key's parts, so it (and the escape) is escaped in names.
        let mut escaped_name = Vec::new();
        for &b in name.as_bytes() {
            match b {
                b':' => escaped_name.extend_from_slice(b"%3A"),
                b'%' => escaped_name.extend_from_slice(b"%25"),
                b => escaped_name.push(b),
            }
        }
        if tagged {
            // Only the key's own tag may hold braces: the slot is the key's.
            super::cluster::push_untagged(&mut key_prefix, prefix.as_bytes());
            super::cluster::push_untagged(&mut key_prefix, &escaped_name);
        } else {
            key_prefix.extend_from_slice(prefix.as_bytes());
            key_prefix.extend_from_slice(&escaped_name);
        }
        key_prefix.push(b':');
        key_prefix.extend_from_slice(layout_tag(algorithm, &quota).as_bytes());
        key_prefix.push(b':');
        Ok(Self {
            name: String::from(name),
            algorithm,
            quota,
            spec,
            module_args: super::module::limit_args(algorithm, &quota),
            key_prefix,
            tagged,
        })
    }

    /// The limit's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The algorithm.
    #[must_use]
    pub const fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The quota.
    #[must_use]
    pub const fn quota(&self) -> &Quota {
        &self.quota
    }

    /// This limit's keys run on `quota` instead (a per-client override): same name, same
    /// Redis keys, so a key keeps what it consumed. Only the limit (and a GCRA burst)
    /// may differ: `None` when the period does.
    ///
    /// # Errors
    /// Whatever the algorithm rejects in `quota`.
    pub(crate) fn with_quota(&self, quota: Quota) -> Option<Result<Self, QuotaError>> {
        if quota.period() != self.quota.period() {
            return None;
        }
        Some(Spec::new(self.algorithm, &quota).map(|spec| Self {
            quota,
            spec,
            module_args: super::module::limit_args(self.algorithm, &quota),
            ..self.clone()
        }))
    }

    /// The Redis key holding `key`'s state for this limit.
    #[must_use]
    pub fn redis_key(&self, key: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.key_prefix.len() + key.len() + 2);
        out.extend_from_slice(&self.key_prefix);
        if self.tagged {
            super::cluster::push_tag(&mut out, key);
        } else {
            out.extend_from_slice(key);
        }
        out
    }
}

/// One limit on Redis, per key: the Redis counterpart of a keyed single-limit table.
#[derive(Clone, Debug)]
pub struct RedisLimiter {
    pub(super) backend: RedisBackend,
    pub(super) limit: RedisLimit,
}

impl RedisLimiter {
    /// The limit.
    #[must_use]
    pub const fn limit(&self) -> &RedisLimit {
        &self.limit
    }

    /// The backend.
    #[must_use]
    pub const fn backend(&self) -> &RedisBackend {
        &self.backend
    }

    pub(super) fn members<'a>(&'a self, key: &'a [u8]) -> [(&'a RedisLimit, &'a [u8]); 1] {
        [(&self.limit, key)]
    }

    checks! { limiter [] []
        /// Decides a request of weight `cost` for `key` at `now` and charges it if admitted —
        /// the decision [`crate::RateLimiter::check`] returns in process for the same
        /// sequence. When Redis cannot decide: the failure decision, with `fault` set.
        ///
        /// # Errors
        /// [`RedisCheckError::Cost`] when `cost` can never fit.
        fn check -> RedisDecision = check_limits;

        /// The decision `check` would return, consuming nothing.
        ///
        /// # Errors
        /// As for [`check`](Self::check).
        fn peek -> RedisDecision = peek_limits;

        /// Like [`check`](Self::check), returning Redis failures as errors.
        ///
        /// # Errors
        /// Any [`RedisCheckError`].
        fn try_check -> Decision = try_check_limits;

        /// Like [`peek`](Self::peek), returning Redis failures as errors.
        ///
        /// # Errors
        /// Any [`RedisCheckError`].
        fn try_peek -> Decision = try_peek_limits;
    }
}

/// Several limits on one key that must all admit; a denial consumes nothing. The Redis
/// counterpart of [`crate::Composite`], one script call per check.
#[derive(Clone, Debug)]
pub struct RedisComposite {
    pub(super) backend: RedisBackend,
    pub(super) limits: Vec<RedisLimit>,
}

impl RedisComposite {
    /// The limits, in order.
    #[must_use]
    pub fn limits(&self) -> &[RedisLimit] {
        &self.limits
    }

    pub(super) fn members<'a>(&'a self, key: &'a [u8]) -> Vec<(&'a RedisLimit, &'a [u8])> {
        self.limits.iter().map(|l| (l, key)).collect()
    }

    checks! { composite [] []
        /// Like [`crate::Composite::check_each`]: decides and charges, and writes each
        /// limit's state into `states`.
        ///
        /// # Errors
        /// [`RedisCheckError::Cost`] when `cost` can never fit some limit.
        fn check_each -> RedisDecision = check_limits;

        /// Like [`crate::Composite::peek_each`].
        ///
        /// # Errors
        /// As for [`check_each`](Self::check_each).
        fn peek_each -> RedisDecision = peek_limits;

        /// Like [`check_each`](Self::check_each), returning Redis failures as errors.
        ///
        /// # Errors
        /// Any [`RedisCheckError`].
        fn try_check_each -> Decision = try_check_limits;

        /// Like [`peek_each`](Self::peek_each), returning Redis failures as errors.
        ///
        /// # Errors
        /// Any [`RedisCheckError`].
        fn try_peek_each -> Decision = try_peek_limits;
    }

    /// [`check_each`](Self::check_each) without the per-limit states.
    ///
    /// # Errors
    /// As for [`check_each`](Self::check_each).
    pub fn check(&self, key: &[u8], now: u64, cost: u64) -> Result<RedisDecision, RedisCheckError> {
        self.check_each(key, now, cost, &mut [])
    }
}
