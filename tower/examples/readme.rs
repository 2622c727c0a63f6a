//! The README's example: an axum service limited as Uphold limits its API: per client IP,
//! and per account on some routes.
use std::{net::SocketAddr, sync::Arc};

use axum::{routing::get, Extension, Router};
use ratecore::policy::Policy;
use ratecore_tower::{Credentials, RateLimitDecision, RateLimitLayer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // examples/policies/uphold.toml: per client IP, plus per account on some routes.
    let policy = Arc::new(Policy::from_toml_file("examples/policies/uphold.toml")?);
    let layer = RateLimitLayer::new(policy)
        .trusted_proxies(["10.0.0.0/8".parse()?]) // read X-Forwarded-For from these only
        .credentials(|parts| match parts.headers.get("x-account") {
            Some(account) => Credentials::new().with("user", account.as_bytes().to_vec()),
            None => Credentials::new(),
        });
    let app = Router::new()
        .route(
            "/v0/ticker",
            get(|Extension(d): Extension<RateLimitDecision>| async move {
                format!("{} requests left\n", d.remaining)
            }),
        )
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    // ConnectInfo gives the layer each connection's peer address.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
