//! The HTTP benchmark's server: axum's hello world with ratecore's layer, tower-governor's
//! layer, or no layer (`benches/http.sh` and `benches/callgrind.sh` run it).
//!
//! ```sh
//! bench_server <none|ratecore|ratecore-lean|governor|headers> [--addr-file PATH]
//! ```
//!
//! Both layers key on the peer IP, admit everything the benchmark sends (a burst of
//! 10^9, one more every 10 ns) and add `x-ratelimit-limit` / `x-ratelimit-remaining` to
//! every response (tower-governor's `use_headers`). `ratecore-lean` is ratecore's layer
//! as a user comparing it with tower-governor's would deploy it: no decision extension
//! and responses in the inner body type, neither of which tower-governor offers.
//! `headers` is the floor of any such
//! layer: it only adds the same two headers (a counter's value as the remaining one),
//! with no key, no state and no decision. One tokio worker thread: the script
//! pins the server to one CPU. Serves on a free port of 127.0.0.1, written to the
//! address file, until killed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use ratecore::policy::Policy;
use ratecore_tower::RateLimitLayer;
use tower::util::MapResponseLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::GovernorLayer;

/// The quota of every variant.
const LIMIT: u64 = 1_000_000_000;

static X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");

/// The same quota as tower-governor's below: burst 10^9, then one per 10 ns.
const POLICY: &str = r#"
[response]
headers = "evenergy"
[table]
capacity = 1024
[[rule]]
name = "all"
[[rule.limit]]
name = "per-ip"
key = ["client_ip"]
on_missing = "deny"
algorithm = "gcra"
limit = 1000000000
period = "10s"
"#;

fn policy() -> Result<Arc<Policy>, Box<dyn std::error::Error>> {
    Ok(Arc::new(Policy::from_toml_str(POLICY, "bench.toml")?))
}

fn app(variant: &str) -> Result<Router, Box<dyn std::error::Error>> {
    let hello = Router::new().route("/", get(|| async { "Hello, World!" }));
    Ok(match variant {
        "none" => hello,
        "ratecore" => hello.layer(RateLimitLayer::new(policy()?)),
        "ratecore-lean" => hello.layer(
            RateLimitLayer::new(policy()?)
                .decision_extension(false)
                .inner_body(),
        ),
        "governor" => {
            let config = GovernorConfigBuilder::default()
                .per_nanosecond(10)
                .burst_size(1_000_000_000)
                .use_headers()
                .finish()
                .ok_or("bad governor quota")?;
            hello.layer(GovernorLayer::new(config))
        }
        "headers" => {
            let remaining = Arc::new(AtomicU64::new(LIMIT));
            hello.layer(MapResponseLayer::new(move |mut response: Response| {
                let left = remaining.fetch_sub(1, Ordering::Relaxed);
                let headers = response.headers_mut();
                headers.insert(&X_RATELIMIT_LIMIT, HeaderValue::from(LIMIT));
                headers.insert(&X_RATELIMIT_REMAINING, HeaderValue::from(left));
                response
            }))
        }
        other => {
            return Err(format!(
                "unknown variant {other:?}: none, ratecore, ratecore-lean, governor or headers"
            )
            .into())
        }
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let variant = args.get(1).map_or("none", String::as_str);
    let addr_file = args
        .iter()
        .position(|a| a == "--addr-file")
        .and_then(|i| args.get(i + 1));
    let router = app(variant)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        match addr_file {
            Some(path) => std::fs::write(path, addr.to_string())?,
            None => println!("{variant} on {addr}"),
        }
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await?;
        Ok(())
    })
}
