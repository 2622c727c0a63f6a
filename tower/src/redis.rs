//! The [`Redis`] backend (feature `redis`): the policy's limits on a shared Redis, so
//! every host behind a load balancer draws from one quota. Each check is one script call
//! on ratecore's async transport — one multiplexed connection shared by every request —
//! and the runtime's threads never block on it.
//!
//! Time is the [`Clock`](crate::Clock)'s Unix-epoch reading: hosts sharing a Redis must
//! agree on one epoch, and a per-process monotonic clock would not. When Redis cannot
//! decide (down, slow beyond the backend's timeout, an error reply), the backend's
//! failure mode answers: closed (the default) denies with the policy's status, its body
//! and a `Retry-After` of the configured failure wait; open calls the inner service with
//! no rate-limit headers. Either way [`RateLimitDecision::fault`] says so and the
//! backend's counters ([`RedisBackend::stats`]) count it.
//!
//! [`RateLimitDecision::fault`]: crate::RateLimitDecision::fault
//! [`RedisBackend::stats`]: ratecore::redis_backend::RedisBackend::stats

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ratecore::policy::{Attribute, Policy, Request};

use crate::backend::{refused, respond, Ask, Backend, Checked, InProcess, Refused};
use crate::clock::Now;

/// Checks on the Redis of a policy built with [`Policy::with_redis`].
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use ratecore::policy::{Policy, PolicySpec};
/// use ratecore::redis_backend::{FailureMode, RedisBackend, RedisConfig};
/// use ratecore_tower::{RateLimitLayer, Redis};
///
/// let spec = PolicySpec::from_toml_str(r#"
///     [[rule]]
///     name = "per-ip"
///     [[rule.limit]]
///     name = "per-minute"
///     key = "client_ip"
///     limit = 100
///     period = "1m"
/// "#, "inline.toml")?;
/// let mut config = RedisConfig::new("redis://127.0.0.1:6379/");
/// config.failure_mode = FailureMode::Open; // availability over enforcement
/// let policy = Arc::new(Policy::with_redis(spec, RedisBackend::new(config)?)?);
/// let layer = RateLimitLayer::with_backend(Redis::new(policy));
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Redis {
    /// The policy and its name cache: the same pair the in-process backend holds.
    local: InProcess,
}

impl Redis {
    /// Checks against `policy`, whose limits live on the Redis it was built with
    /// ([`Policy::with_redis`]); a policy without Redis decides in process, at once,
    /// on the same Unix-epoch time.
    #[must_use]
    pub fn new(policy: Arc<Policy>) -> Self {
        let local = InProcess::new(policy);
        Self { local }
    }

    /// The policy.
    #[must_use]
    pub fn policy(&self) -> &Arc<Policy> {
        self.local.policy()
    }
}

/// A request's method, path and attributes, copied so the check can outlive the borrow.
struct Owned {
    method: String,
    path: String,
    attributes: Vec<(String, Vec<u8>)>,
}

impl Owned {
    fn new(request: &Request<'_>) -> Self {
        Self {
            method: request.method.to_owned(),
            path: request.path.to_owned(),
            attributes: request
                .attributes
                .iter()
                .map(|a| (a.name.to_owned(), a.value.to_vec()))
                .collect(),
        }
    }

    fn attributes(&self) -> Vec<Attribute<'_>> {
        self.attributes
            .iter()
            .map(|(name, value)| Attribute::new(name, value))
            .collect()
    }
}

impl Backend for Redis {
    type Future = Pin<Box<dyn Future<Output = Result<Checked, Refused>> + Send + 'static>>;

    fn check(&self, request: &Request<'_>, now: Now, ask: Ask) -> Self::Future {
        let owned = Owned::new(request);
        let (policy, names) = (
            Arc::clone(&self.local.policy),
            Arc::clone(&self.local.names),
        );
        Box::pin(async move {
            let attributes = owned.attributes();
            let request = Request::new(&owned.method, &owned.path, &attributes);
            match policy.check_async(&request, now.unix, ask.cost).await {
                Ok(decision) => Ok(respond(
                    &decision,
                    now.unix,
                    ask.decision.then_some(&*names),
                )),
                Err(error) => Err(refused(&policy, error)),
            }
        })
    }
}
