//! A [tower] middleware that applies a [`ratecore::policy::Policy`] to HTTP requests, for
//! axum, hyper 1 and any other tower-based server.
//!
//! For each request, [`RateLimit`] builds the policy's view of it (method, path and
//! attributes), checks it once, and then:
//!
//! - **admitted:** inserts a [`RateLimitDecision`] into the request's extensions (unless
//!   [`decision_extension(false)`](RateLimitLayer::decision_extension)), calls the inner
//!   service, and adds the policy's rate-limit headers to its response (a
//!   header the handler set itself is kept);
//! - **denied:** answers with the policy's status, rate-limit headers, `Content-Type`
//!   and body, without calling the inner service; the [`RateLimitDecision`] is in the
//!   response's extensions, for outer layers;
//! - **no limit applied** (an unlimited rule, an unlimited route): calls the inner
//!   service and adds no headers;
//! - **a cost no limit can ever admit** (a [`cost`](RateLimitLayer::cost) larger than
//!   a limit's capacity): answers with the policy's denial status (429 by default),
//!   `text/plain` saying so, and no rate-limit headers nor `Retry-After`, since no wait
//!   would help. It never panics and never lets the request through.
//!
//! # gRPC
//! A gRPC request (`content-type: application/grpc…`, e.g. to a tonic server) is denied
//! the way gRPC clients read: HTTP 200 with `grpc-status` 8 `RESOURCE_EXHAUSTED` (14
//! `UNAVAILABLE` for a 503, as when Redis is down and the policy fails closed) and a
//! `grpc-message`, no body, and the rate-limit headers as metadata (a trailers-only
//! response). Under tonic's server, feature `tonic` reads the peer address from its
//! `TcpConnectInfo`: `Server::builder().layer(RateLimitLayer::new(policy))`.
//!
//! # Attributes
//! - `client_ip` (renamed with [`client_ip_attribute`](RateLimitLayer::client_ip_attribute)):
//!   the text form of the client's address (`192.0.2.1`, `2001:db8::1`). The peer comes
//!   from axum's `ConnectInfo<SocketAddr>` (feature `axum`, on by default; serve with
//!   `into_make_service_with_connect_info::<SocketAddr>()`), tonic's `TcpConnectInfo`
//!   (feature `tonic`) or a [`PeerAddr`] extension.
//!   `Forwarded` and `X-Forwarded-For` are read only when the peer is a
//!   [trusted proxy](RateLimitLayer::trusted_proxies); [`client_ip`] says which address
//!   is then the client and what a malformed header gets (the peer). A request without
//!   a known peer has no `client_ip`, and the policy's `on_missing` decides.
//! - Header values, by [`header`](RateLimitLayer::header).
//! - Whatever the [`credentials`](RateLimitLayer::credentials) closure returns.
//!
//! # Bodies, errors, time
//! The layer is generic over request and response bodies and never buffers or boxes
//! them: the response body is a [`RateLimitBody`], the inner body or the denial's, or
//! with [`inner_body`](RateLimitLayer::inner_body) the inner service's own body type (one
//! that converts from `Bytes`). Its
//! error type is the inner service's. Each request reads the [`Clock`] once: monotonic
//! nanoseconds to decide in process, Unix-epoch nanoseconds to render absolute resets
//! (read only for a style that has them) and to decide on Redis.
//!
//! # Cost per request
//! The policy check allocates nothing. An in-process check answers while the request
//! arrives, so the inner service is called at once, without being cloned; without a
//! credentials or cost closure the request is read in place, not split into parts. The
//! layer lists the attributes on the stack and shares one copy of each limit's name among
//! all decisions. Per limited request it allocates once for the header values (one
//! buffer all of them share; the list itself is inline) and, unless
//! [`decision_extension(false)`](RateLimitLayer::decision_extension), once for the
//! decision extension (`http`'s `Extensions` boxes it); a denial also allocates its
//! body, and the credentials closure whatever it returns. The `Redis` backend also copies the
//! request's method, path and attributes into its boxed future (its check waits for a
//! network round trip). Instructions per request against tower-governor's layer and a
//! layer that only adds the same headers: the crate's README.
//!
//! # Backends
//! Checks run on a [`Backend`]: [`InProcess`] uses the policy's own tables, on the
//! clock's monotonic time. `Redis` (feature `redis`) keeps the limits' states on a shared
//! Redis (a policy built with `Policy::with_redis`), on the clock's Unix-epoch time, and
//! awaits each check on one multiplexed connection; when Redis cannot decide, the
//! backend's failure mode answers and the decision's `fault` says so. The trait returns
//! a future, so either answers behind the same layer; a backend that decides at once
//! also answers through [`Backend::check_now`].
//!
//! [tower]: https://docs.rs/tower

mod attributes;
mod backend;
mod body;
pub mod client_ip;
mod clock;
mod decision;
mod future;
mod grpc;
mod headers;
mod layer;
mod names;
#[cfg(feature = "redis")]
mod redis;
mod service;

pub use attributes::Credentials;
pub use backend::{answer, Ask, Backend, Checked, Denial, InProcess, Refused};
pub use body::{BodyMode, InnerBody, RateLimitBody, Wrapped};
pub use client_ip::PeerAddr;
pub use clock::{Clock, Now, SystemClock};
pub use decision::{Fault, LimitName, RateLimitDecision};
pub use future::ResponseFuture;
pub use headers::RateLimitHeaders;
pub use ipnet::IpNet;
pub use layer::RateLimitLayer;
#[cfg(feature = "redis")]
pub use redis::Redis;
pub use service::RateLimit;
