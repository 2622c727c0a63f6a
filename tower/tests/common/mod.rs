//! Helpers shared by the integration tests: an injected clock, a server on 127.0.0.1 and
//! a real HTTP client.

#![allow(dead_code)] // Each test file uses its own subset.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use ratecore::policy::Policy;
use ratecore_tower::Clock;

pub const SECOND: u64 = 1_000_000_000;
pub const MINUTE: u64 = 60 * SECOND;
pub const HOUR: u64 = 60 * MINUTE;

/// A clock the test sets: both readings move together, the wall clock from a fixed
/// date, so every rendered reset is known.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicU64>);

/// Unix time at the manual clock's monotonic 0: 2026-11-24T00:00:00Z.
pub const WALL_AT_ZERO: u64 = 1_795_478_400 * SECOND;

impl ManualClock {
    pub fn at(nanos: u64) -> Self {
        Self(Arc::new(AtomicU64::new(nanos)))
    }

    pub fn set(&self, nanos: u64) {
        // Ordering: each test sets the clock before it sends the request that reads it,
        // and the request's journey through the runtime orders the two.
        self.0.store(nanos, Ordering::SeqCst);
    }

    pub fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Clock for ManualClock {
    fn monotonic_nanos(&self) -> u64 {
        self.now()
    }

    fn unix_nanos(&self) -> u64 {
        WALL_AT_ZERO + self.now()
    }
}

/// Serves `router` on a free port of 127.0.0.1, with each connection's peer address.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

pub type HttpClient = Client<HttpConnector, Empty<Bytes>>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// What a client received.
#[derive(Debug)]
pub struct Seen {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends `method path` to `addr` with `headers` and reads the whole response.
pub async fn send(
    client: &HttpClient,
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> Seen {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = client
        .request(request.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    Seen {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// A `[[rule.limit]]` table: `name`, `limit` per `period` with `algorithm`, keyed on the
/// attribute `key`, `on_missing` saying what happens to requests without it.
pub fn limit_block(
    name: &str,
    key: &str,
    on_missing: &str,
    algorithm: &str,
    limit: u64,
    period: &str,
) -> String {
    format!(
        "[[rule.limit]]\nname = \"{name}\"\nkey = [\"{key}\"]\non_missing = \"{on_missing}\"\n\
         algorithm = \"{algorithm}\"\nlimit = {limit}\nperiod = \"{period}\"\n"
    )
}

/// A policy from inline TOML.
pub fn policy(toml: &str) -> Arc<Policy> {
    Arc::new(Policy::from_toml_str(toml, "test.toml").unwrap())
}

/// A router answering "ok" to everything, counting the calls that reach it.
pub fn counted(calls: &Arc<AtomicUsize>) -> Router {
    let calls = Arc::clone(calls);
    Router::new().fallback(move || {
        calls.fetch_add(1, Ordering::Relaxed);
        async { "ok" }
    })
}

/// `clients` concurrent clients each send `each` GETs of `/` to `addr`; returns how many
/// were admitted (200). Every other answer must be `denied`.
pub async fn race_clients(
    addr: SocketAddr,
    clients: usize,
    each: usize,
    denied: StatusCode,
) -> usize {
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            tokio::spawn(async move {
                let client = client();
                let mut admitted = 0;
                for _ in 0..each {
                    let seen = send(&client, addr, Method::GET, "/", &[]).await;
                    match seen.status {
                        StatusCode::OK => admitted += 1,
                        status if status == denied => {}
                        other => panic!("status {other}"),
                    }
                }
                admitted
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        admitted += task.await.unwrap();
    }
    admitted
}
