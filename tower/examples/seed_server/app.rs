//! The seed server's application: ev.energy's, Uphold's and Switch's published rate
//! limits (the policies in `examples/policies/`) enforced under `/evenergy/…`,
//! `/uphold/…` and `/switch/…`, each by its own layer. Shared by the example and the
//! integration tests, which inject their own clock.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::HeaderName;
use axum::Router;
use ratecore::policy::Policy;
use ratecore_tower::{Clock, Credentials, IpNet, RateLimitDecision, RateLimitLayer};

/// The seed policies' folder.
pub fn policy_file(seed: &str) -> String {
    format!(
        "{}/../examples/policies/{seed}.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The three seeds, in the order the demo replays them.
pub const SEEDS: [&str; 3] = ["evenergy", "uphold", "switch"];

/// A stand-in for an OAuth server: the access tokens the demo's clients hold, and what
/// each one stands for (token kind, application, user or client).
fn tokens() -> HashMap<&'static str, Credentials> {
    let token = |auth: &'static str, pairs: &[(&'static str, &'static str)]| {
        pairs.iter().fold(
            Credentials::new().with("auth", auth.as_bytes()),
            |c, &(name, value)| c.with(name, value.as_bytes()),
        )
    };
    HashMap::from([
        // ev.energy: authorisation-code tokens name the app and the user;
        // client-credentials tokens only the app.
        (
            "ev-alice",
            token("authorization_code", &[("app", "app-1"), ("user", "alice")]),
        ),
        (
            "ev-bob",
            token("authorization_code", &[("app", "app-1"), ("user", "bob")]),
        ),
        ("ev-app-2", token("client_credentials", &[("app", "app-2")])),
        // Switch: client-credentials apps are limited; personal tokens are not.
        (
            "sw-client-a",
            token("client_credentials", &[("client", "client-a")]),
        ),
        (
            "sw-personal",
            token("personal_token", &[("client", "client-a")]),
        ),
    ])
}

/// The credentials of a request's `Authorization: Bearer <token>`, if the token is
/// known: what an authentication layer in front of the limiter would establish.
fn credentials(
    tokens: &HashMap<&'static str, Credentials>,
    parts: &axum::http::request::Parts,
) -> Credentials {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|token| tokens.get(token))
        .cloned()
        .unwrap_or_default()
}

/// Answers every admitted request with what the handler sees of the decision.
async fn handler(request: Request) -> String {
    let path = request.uri().path().to_owned();
    match request.extensions().get::<RateLimitDecision>() {
        Some(d) if d.limited => format!(
            "{} {path}: admitted, {} of {} left ({})\n",
            request.method(),
            d.remaining,
            d.limit,
            d.deciding.as_ref().map_or("-", |l| l.limit.as_str()),
        ),
        Some(_) => format!("{} {path}: admitted, no limit applies\n", request.method()),
        None => format!("{} {path}: admitted\n", request.method()),
    }
}

/// The three seeds' services under their prefixes, each reading time from `clock`. With
/// `lean`, the layers give handlers no decision and answer in the inner body type
/// (`decision_extension(false)`, `inner_body()`).
///
/// Uphold limits by client IP, and the demo's clients all connect from 127.0.0.1: its
/// layer trusts 127.0.0.1 as a proxy, so a client can speak for several addresses with
/// `X-Forwarded-For` (a real deployment lists its own proxies). The account Uphold's
/// per-user limits key on comes from an `X-Account` header.
pub fn app<C: Clock + Clone>(clock: C, lean: bool) -> Result<Router, Box<dyn std::error::Error>> {
    let tokens = Arc::new(tokens());
    let mut router = Router::new();
    for seed in SEEDS {
        let policy = Arc::new(Policy::from_toml_file(policy_file(seed))?);
        let tokens = Arc::clone(&tokens);
        let mut layer = RateLimitLayer::new(policy)
            .clock(clock.clone())
            .credentials(move |parts| credentials(&tokens, parts));
        if seed == "uphold" {
            let loopback: IpNet = "127.0.0.1/32".parse()?;
            layer = layer
                .trusted_proxies([loopback])
                .header(HeaderName::from_static("x-account"), "user");
        }
        let service = Router::new().fallback(handler);
        let service = if lean {
            service.layer(layer.decision_extension(false).inner_body())
        } else {
            service.layer(layer)
        };
        router = router.nest_service(&format!("/{seed}"), service);
    }
    Ok(router)
}

/// Serves `router` on `listener` with each connection's peer address, until the process
/// ends.
pub async fn serve(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
