//! From an HTTP request to the policy's view of it: method, path and named attributes
//! (the client IP, configured header values, the credentials closure's output).

use std::borrow::Cow;
use std::sync::Arc;

use arrayvec::ArrayVec;
use bytes::Bytes;
use http::request::Parts;
use http::{Extensions, HeaderMap, HeaderName, Method, Uri};
use ipnet::IpNet;
use ratecore::policy::{Attribute, Request};

use crate::client_ip::{client_ip, ip_text, peer, IP_TEXT_MAX};

/// Attributes a credentials closure derives from a request: an API key, an OAuth app,
/// user and token kind…
///
/// ```
/// use ratecore_tower::Credentials;
/// let credentials = Credentials::new()
///     .with("auth", "client_credentials")
///     .with("client", b"c-42".as_slice());
/// assert_eq!(credentials.len(), 2);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    attributes: Vec<(Cow<'static, str>, Bytes)>,
}

impl Credentials {
    /// No attributes.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds attribute `name` with `value`.
    #[must_use]
    pub fn with(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<Bytes>) -> Self {
        self.push(name, value);
        self
    }

    /// Adds attribute `name` with `value`.
    pub fn push(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<Bytes>) {
        self.attributes.push((name.into(), value.into()));
    }

    /// How many attributes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.attributes.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty()
    }
}

/// Attributes a request's list holds on the stack before it moves to the heap.
const STACK_ATTRIBUTES: usize = 16;

/// A closure deriving credentials attributes from the request head.
pub(crate) type CredentialsFn = Arc<dyn Fn(&Parts) -> Credentials + Send + Sync>;

/// A closure giving a request's cost.
pub(crate) type CostFn = Arc<dyn Fn(&Parts) -> u64 + Send + Sync>;

/// How requests become attributes.
#[derive(Clone)]
pub(crate) struct Extractor {
    pub(crate) client_ip_attribute: Cow<'static, str>,
    pub(crate) trusted_proxies: Vec<IpNet>,
    pub(crate) headers: Vec<(HeaderName, Cow<'static, str>)>,
    pub(crate) credentials: Option<CredentialsFn>,
    pub(crate) cost: Option<CostFn>,
}

impl Default for Extractor {
    fn default() -> Self {
        Self {
            client_ip_attribute: Cow::Borrowed("client_ip"),
            trusted_proxies: Vec::new(),
            headers: Vec::new(),
            credentials: None,
            cost: None,
        }
    }
}

impl core::fmt::Debug for Extractor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Extractor")
            .field("client_ip_attribute", &self.client_ip_attribute)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("headers", &self.headers)
            .field("credentials", &self.credentials.is_some())
            .field("cost", &self.cost.is_some())
            .finish()
    }
}

/// The parts of a request head the policy's view reads, borrowed from the request itself
/// or from its [`Parts`].
#[derive(Clone, Copy)]
pub(crate) struct Head<'a> {
    pub(crate) method: &'a Method,
    pub(crate) uri: &'a Uri,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) extensions: &'a Extensions,
}

impl<'a> Head<'a> {
    pub(crate) fn of<B>(request: &'a http::Request<B>) -> Self {
        Self {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            extensions: request.extensions(),
        }
    }

    fn of_parts(parts: &'a Parts) -> Self {
        Self {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            extensions: &parts.extensions,
        }
    }
}

impl Extractor {
    /// Whether a closure reads the request's [`Parts`]: then the request is split for
    /// [`with_parts`](Self::with_parts), else [`with_head`](Self::with_head) borrows it
    /// whole.
    pub(crate) fn reads_parts(&self) -> bool {
        self.credentials.is_some() || self.cost.is_some()
    }

    /// [`with_head`](Self::with_head), with the closures' attributes and cost; the
    /// credentials closure allocates what it returns.
    pub(crate) fn with_parts<R>(&self, parts: &Parts, f: impl FnOnce(&Request<'_>, u64) -> R) -> R {
        let credentials = self.credentials.as_ref().map(|c| c(parts));
        let cost = self.cost.as_ref().map_or(1, |c| c(parts));
        self.with_head(Head::of_parts(parts), credentials.as_ref(), cost, f)
    }

    /// Calls `f` with the policy's view of the request and its cost. The attributes
    /// borrow from `head`, `credentials` and this frame, listed on the stack (on the heap
    /// only when more than 16 are configured).
    pub(crate) fn with_head<R>(
        &self,
        head: Head<'_>,
        credentials: Option<&Credentials>,
        cost: u64,
        f: impl FnOnce(&Request<'_>, u64) -> R,
    ) -> R {
        let mut ip_buf = [0u8; IP_TEXT_MAX];
        let ip = peer(head.extensions).map(|peer| {
            ip_text(
                client_ip(peer, head.headers, &self.trusted_proxies),
                &mut ip_buf,
            )
        });
        let client = ip.map(|ip| Attribute::new(&self.client_ip_attribute, ip));
        if self.headers.is_empty() && credentials.is_none() {
            // The client's address alone: the list is that one attribute, or none.
            let (method, path) = (head.method.as_str(), head.uri.path());
            return f(&Request::new(method, path, client.as_slice()), cost);
        }
        self.with_list(head, client, credentials, cost, f)
    }

    /// [`with_head`](Self::with_head) with configured headers or credentials: their
    /// attributes after the client's. Out of line: the list on the stack (half a
    /// kilobyte) would otherwise widen every request's frame.
    #[inline(never)]
    fn with_list<R>(
        &self,
        head: Head<'_>,
        client: Option<Attribute<'_>>,
        credentials: Option<&Credentials>,
        cost: u64,
        f: impl FnOnce(&Request<'_>, u64) -> R,
    ) -> R {
        let (method, path) = (head.method.as_str(), head.uri.path());
        let count = usize::from(client.is_some())
            + self.headers.len()
            + credentials.map_or(0, Credentials::len);
        let header_values = self.headers.iter().filter_map(|(header, name)| {
            let value = head.headers.get(header)?;
            Some(Attribute::new(name, value.as_bytes()))
        });
        let credential_values = credentials
            .into_iter()
            .flat_map(|c| c.attributes.iter())
            .map(|(name, value)| Attribute::new(name, value));
        let attributes = client
            .into_iter()
            .chain(header_values)
            .chain(credential_values);
        if count <= STACK_ATTRIBUTES {
            // `count` bounds the list: `take` never drops an attribute.
            let mut stack = ArrayVec::<Attribute<'_>, STACK_ATTRIBUTES>::new();
            stack.extend(attributes.take(STACK_ATTRIBUTES));
            f(&Request::new(method, path, &stack), cost)
        } else {
            let heap: Vec<Attribute<'_>> = attributes.collect();
            f(&Request::new(method, path, &heap), cost)
        }
    }
}
