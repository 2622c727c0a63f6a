//! The layer: a policy, a clock and the extraction settings, shared by every service it
//! wraps.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::Arc;

use http::request::Parts;
use http::HeaderName;
use ipnet::IpNet;
use ratecore::policy::Policy;
use tower_layer::Layer;

use crate::attributes::{Credentials, Extractor};
use crate::backend::{Backend, InProcess};
use crate::body::{InnerBody, Wrapped};
use crate::clock::{Clock, SystemClock};
use crate::service::RateLimit;

/// What every service of one layer shares.
#[derive(Clone, Debug)]
pub(crate) struct Config<K> {
    pub(crate) backend: K,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) extractor: Extractor,
    /// Whether handlers get the decision extension.
    pub(crate) decision: bool,
}

impl core::fmt::Debug for dyn Clock {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Clock")
    }
}

/// Applies a [`Policy`] to the requests of the services it wraps (see the crate docs).
///
/// Settings are chained before the layer is applied:
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use ratecore::policy::Policy;
/// use ratecore_tower::{Credentials, RateLimitLayer};
///
/// let policy = Arc::new(Policy::from_toml_str(r#"
///     [[rule]]
///     name = "per-key"
///     [[rule.limit]]
///     name = "per-second"
///     key = ["api_key"]
///     on_missing = "deny"
///     algorithm = "gcra"
///     limit = 10
///     period = "1s"
/// "#, "inline.toml")?);
/// let layer = RateLimitLayer::new(policy)
///     .trusted_proxies(["10.0.0.0/8".parse()?])
///     .header(http::HeaderName::from_static("x-tenant"), "tenant")
///     .credentials(|parts| {
///         let mut credentials = Credentials::new();
///         if let Some(key) = parts.headers.get("x-api-key") {
///             credentials.push("api_key", key.as_bytes().to_vec());
///         }
///         credentials
///     });
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct RateLimitLayer<K = InProcess, M = Wrapped> {
    config: Arc<Config<K>>,
    mode: PhantomData<fn() -> M>,
}

impl<K, M> Clone for RateLimitLayer<K, M> {
    fn clone(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
            mode: PhantomData,
        }
    }
}

impl RateLimitLayer<InProcess> {
    /// Applies `policy` in this process, on the system clock; the client IP is the
    /// connection's peer (no proxy trusted).
    #[must_use]
    pub fn new(policy: Arc<Policy>) -> Self {
        Self::with_backend(InProcess::new(policy))
    }
}

impl<K: Backend> RateLimitLayer<K> {
    /// Runs checks on `backend`.
    #[must_use]
    pub fn with_backend(backend: K) -> Self {
        Self {
            config: Arc::new(Config {
                backend,
                clock: Arc::new(SystemClock::new()),
                extractor: Extractor::default(),
                decision: true,
            }),
            mode: PhantomData,
        }
    }
}

impl<K: Backend + Clone, M> RateLimitLayer<K, M> {
    /// Changes the settings of this layer only: services it already made, and clones
    /// made before, keep theirs.
    fn edit(mut self, f: impl FnOnce(&mut Config<K>)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// Reads time from `clock` (tests inject one) instead of the system's.
    #[must_use]
    pub fn clock(self, clock: impl Clock) -> Self {
        self.edit(|c| c.clock = Arc::new(clock))
    }

    /// Proxies whose `Forwarded` / `X-Forwarded-For` reports are believed: the client is
    /// the rightmost reported address outside these networks (see [`client_ip`]).
    ///
    /// [`client_ip`]: crate::client_ip
    #[must_use]
    pub fn trusted_proxies(self, networks: impl IntoIterator<Item = IpNet>) -> Self {
        self.edit(|c| c.extractor.trusted_proxies = networks.into_iter().collect())
    }

    /// The attribute the client IP is given as (default `client_ip`).
    #[must_use]
    pub fn client_ip_attribute(self, name: impl Into<Cow<'static, str>>) -> Self {
        self.edit(|c| c.extractor.client_ip_attribute = name.into())
    }

    /// Gives the value of request header `header` (its first line) as attribute
    /// `attribute`; a request without the header lacks the attribute.
    #[must_use]
    pub fn header(self, header: HeaderName, attribute: impl Into<Cow<'static, str>>) -> Self {
        self.edit(|c| c.extractor.headers.push((header, attribute.into())))
    }

    /// Derives attributes from each request's head (an API key, an OAuth app, user and
    /// token kind…). Called once per request, before the check.
    #[must_use]
    pub fn credentials(self, f: impl Fn(&Parts) -> Credentials + Send + Sync + 'static) -> Self {
        self.edit(|c| c.extractor.credentials = Some(Arc::new(f)))
    }

    /// Whether admitted requests carry the [`RateLimitDecision`] extension for handlers,
    /// and denials carry it for outer layers (default on). Off, the check builds no
    /// decision snapshot at all: no extension insert (`http`'s `Extensions` boxes its
    /// map) and no lookup of the deciding limit's name, for a server whose handlers
    /// only need the rate-limit headers.
    ///
    /// [`RateLimitDecision`]: crate::RateLimitDecision
    #[must_use]
    pub fn decision_extension(self, on: bool) -> Self {
        self.edit(|c| c.decision = on)
    }

    /// Answers responses in the inner service's own body type `B` (`B: From<Bytes>`, as
    /// axum's `Body` and `http_body_util::Full<Bytes>` are), a denial's body converted
    /// with `From`, instead of the default [`RateLimitBody<B>`](crate::RateLimitBody)
    /// that wraps any body type. Under axum this saves boxing the wrapper once more.
    #[must_use]
    pub fn inner_body(self) -> RateLimitLayer<K, InnerBody> {
        RateLimitLayer {
            config: self.config,
            mode: PhantomData,
        }
    }

    /// Each request's cost (default 1): weights for expensive endpoints or batches. A
    /// cost no limit can ever admit is refused (see the crate docs).
    #[must_use]
    pub fn cost(self, f: impl Fn(&Parts) -> u64 + Send + Sync + 'static) -> Self {
        self.edit(|c| c.extractor.cost = Some(Arc::new(f)))
    }
}

impl<S, K, M> Layer<S> for RateLimitLayer<K, M> {
    type Service = RateLimit<S, K, M>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit::new(inner, Arc::clone(&self.config))
    }
}
