//! The seed policies enforced by a real HTTP server.
//!
//! ```sh
//! cargo run --release -p ratecore-tower --example seed_server             # replay, check, exit
//! cargo run --release -p ratecore-tower --example seed_server -- --serve  # then keep serving
//! ```
//!
//! Starts an axum server on 127.0.0.1 enforcing ev.energy's, Uphold's and Switch's
//! published rate limits (`examples/policies/`) under `/evenergy/…`, `/uphold/…` and
//! `/switch/…`, then replays a short scenario of each with a real HTTP client over the
//! wall clock (a few seconds), printing what the client sees: status, headers and body.
//! Every response is checked against the seed's promise, and the program exits non-zero
//! if one is broken. `--serve` keeps the server running afterwards for `curl`;
//! `--port N` picks the port (default: any free one). Scenarios that need an hour of
//! time are in the tests, on an injected clock.

mod app;

use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use ratecore_tower::{Clock, SystemClock};

/// What a step of the demo fails with.
type Error = Box<dyn std::error::Error>;

const SECOND: u64 = 1_000_000_000;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// One request of a scenario and what the seed promises for it.
struct Exchange {
    method: Method,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    label: &'static str,
    status: StatusCode,
    /// Exact header values the seed implies (name in lower case).
    expect: Vec<(&'static str, String)>,
    /// Print the exchange (the rest are only checked).
    show: bool,
}

impl Exchange {
    fn new(method: Method, path: &'static str, label: &'static str) -> Self {
        Self {
            method,
            path,
            headers: Vec::new(),
            label,
            status: StatusCode::OK,
            expect: Vec::new(),
            show: !label.is_empty(),
        }
    }

    fn token(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn denied(mut self) -> Self {
        self.status = StatusCode::TOO_MANY_REQUESTS;
        self
    }

    fn expect(mut self, name: &'static str, value: impl ToString) -> Self {
        self.expect.push((name, value.to_string()));
        self
    }
}

/// What the client saw.
struct Seen {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// The replay's broken promises.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            let what = what();
            println!("    !! broken promise: {what}");
            self.0.push(what);
        }
    }
}

async fn send(client: &HttpClient, base: &str, ex: &Exchange) -> Result<Seen, Error> {
    let mut request = Request::builder()
        .method(ex.method.clone())
        .uri(format!("{base}{}", ex.path));
    for (name, value) in &ex.headers {
        request = request.header(*name, value);
    }
    let response = client.request(request.body(Empty::new())?).await?;
    let (parts, body) = response.into_parts();
    Ok(Seen {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await?.to_bytes(),
    })
}

fn is_rate_limit_header(name: &str) -> bool {
    name.starts_with("x-ratelimit")
        || name.starts_with("x-rate-limit")
        || name.starts_with("ratelimit")
        || name == "retry-after"
}

/// Sends `ex`, prints it if asked, and checks the seed's promise.
async fn exchange(
    client: &HttpClient,
    base: &str,
    ex: &Exchange,
    failures: &mut Failures,
) -> Result<Seen, Error> {
    let seen = send(client, base, ex).await?;
    if ex.show {
        println!();
        let sent: Vec<String> = ex
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect();
        println!(
            "  {} {}  [{}]  ({})",
            ex.method,
            ex.path,
            sent.join("; "),
            ex.label
        );
        println!("    HTTP/1.1 {}", seen.status);
        for (name, value) in &seen.headers {
            if name != "date" {
                println!("    {name}: {}", String::from_utf8_lossy(value.as_bytes()));
            }
        }
        for line in String::from_utf8_lossy(&seen.body).lines() {
            println!("    | {line}");
        }
    }
    failures.check(seen.status == ex.status, || {
        format!(
            "{} {} ({}): status {} (promised {})",
            ex.method, ex.path, ex.label, seen.status, ex.status
        )
    });
    for (name, want) in &ex.expect {
        let got = seen
            .headers
            .get(*name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        failures.check(got.as_deref() == Some(want.as_str()), || {
            format!(
                "{} {} ({}): {name} is {got:?} (promised {want:?})",
                ex.method, ex.path, ex.label
            )
        });
    }
    if seen.status == StatusCode::TOO_MANY_REQUESTS {
        failures.check(
            seen.headers.contains_key("retry-after") && !seen.body.is_empty(),
            || {
                format!(
                    "{} {}: a denial carries Retry-After and a body",
                    ex.method, ex.path
                )
            },
        );
    }
    Ok(seen)
}

fn section(title: &str, what: &str) {
    println!();
    println!("== {title} ==");
    println!("   {what}");
}

/// A number header's value.
fn number(seen: &Seen, name: &str) -> Option<u64> {
    seen.headers.get(name)?.to_str().ok()?.parse().ok()
}

async fn evenergy(client: &HttpClient, base: &str, f: &mut Failures) -> Result<(), Error> {
    section(
        "ev.energy: 1000 requests per rolling hour, per OAuth app and user",
        "alice's token spends its hour in one burst; bob's and a client-credentials app's limits are their own",
    );
    let users = "/evenergy/v2/users/";
    for n in 1..=1000u64 {
        let label = match n {
            1 => "alice: 1st of 1000",
            1000 => "alice: 1000th",
            _ => "",
        };
        let ex = Exchange::new(Method::GET, users, label)
            .token("ev-alice")
            .expect("x-ratelimit-limit", 1000)
            .expect("x-ratelimit-remaining", 1000 - n);
        exchange(client, base, &ex, f).await?;
    }
    let ex = Exchange::new(Method::GET, users, "alice: 1001st within the hour")
        .token("ev-alice")
        .denied()
        .expect("x-ratelimit-remaining", 0)
        .expect("content-type", "application/problem+json");
    let seen = exchange(client, base, &ex, f).await?;
    // The burst leaves the rolling hour one hour after it was admitted: a moment ago.
    let retry = number(&seen, "retry-after");
    f.check(retry.is_some_and(|r| (3590..=3600).contains(&r)), || {
        format!("alice's Retry-After is the rest of the hour, got {retry:?}")
    });
    let bob = Exchange::new(Method::GET, users, "bob, same app: his own 1000")
        .token("ev-bob")
        .expect("x-ratelimit-remaining", 999);
    exchange(client, base, &bob, f).await?;
    let app = Exchange::new(
        Method::GET,
        users,
        "client-credentials app-2: one limit for the app",
    )
    .token("ev-app-2")
    .expect("x-ratelimit-remaining", 999);
    exchange(client, base, &app, f).await?;
    Ok(())
}

async fn uphold(client: &HttpClient, base: &str, f: &mut Failures) -> Result<(), Error> {
    section(
        "Uphold: per IP everywhere, and 3 per 5 minutes per account on POST /password/forgot",
        "the client speaks for several addresses through X-Forwarded-For (the demo trusts 127.0.0.1 as a proxy)",
    );
    let forgot = "/uphold/password/forgot";
    let from = |ip: &str, account: &str, label| {
        Exchange::new(Method::POST, forgot, label)
            .header("x-forwarded-for", ip)
            .header("x-account", account)
    };
    for (n, ip) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
        .iter()
        .enumerate()
    {
        let label = [
            "account foo@bar.com from IP 1",
            "",
            "account foo@bar.com from IP 3",
        ][n];
        let ex = from(ip, "foo@bar.com", label)
            .expect("x-ratelimit-limit", 3)
            .expect("x-ratelimit-remaining", 2 - n);
        exchange(client, base, &ex, f).await?;
    }
    let ticker = |ip: &str, label| {
        Exchange::new(Method::GET, "/uphold/v0/ticker", label).header("x-forwarded-for", ip)
    };
    let exchanges = [
        from(
            "198.51.100.4",
            "foo@bar.com",
            "the account's 4th in 5 minutes, from IP 4",
        )
        .denied()
        .expect("x-ratelimit-limit", 3)
        .expect("x-ratelimit-remaining", 0),
        from(
            "198.51.100.4",
            "bar@baz.com",
            "another account from IP 4: its own 3",
        )
        .expect("x-ratelimit-remaining", 2),
        // IP 4 spent 1 of its global 300 (the denial consumed nothing), and now 1 more.
        ticker("198.51.100.4", "IP 4 elsewhere: only the global limit")
            .expect("x-ratelimit-limit", 300)
            .expect("x-ratelimit-remaining", 298),
        ticker(
            "198.51.100.4, not-an-ip",
            "malformed X-Forwarded-For: keyed on the peer, 127.0.0.1",
        )
        .expect("x-ratelimit-remaining", 299),
    ];
    for ex in exchanges {
        exchange(client, base, &ex, f).await?;
    }
    Ok(())
}

/// Sleeps until `margin` after the next multiple of `period` on the server's clock.
async fn align(clock: &SystemClock, period: u64, margin: u64) {
    let now = clock.monotonic_nanos();
    let next = (now / period + 1) * period + margin;
    tokio::time::sleep(Duration::from_nanos(next - now)).await;
}

async fn switch(
    client: &HttpClient,
    base: &str,
    clock: &SystemClock,
    f: &mut Failures,
) -> Result<(), Error> {
    section(
        "Switch: POST /api/readings, 5 per second AND 20 per minute per client-credentials app",
        "bursts of 5 at the start of four seconds of the server's clock; personal tokens and other endpoints are unlimited",
    );
    // The minute's 20 must all fall in one minute window: start early in one.
    if clock.monotonic_nanos() % (60 * SECOND) > 45 * SECOND {
        align(clock, 60 * SECOND, 0).await;
    }
    let readings = "/switch/api/readings";
    let post = |label| Exchange::new(Method::POST, readings, label).token("sw-client-a");
    for second in 0..4u64 {
        align(clock, SECOND, 20_000_000).await;
        let start = clock.monotonic_nanos() / SECOND;
        for n in 0..5u64 {
            let label = if second == 0 && n == 0 {
                "1st in the second"
            } else {
                ""
            };
            // The limit with the fewest left decides; in the fourth second the minute's
            // ties with the second's, and the longer reset (the minute's) wins.
            let limit = if second == 3 { 20 } else { 5 };
            let ex = post(label)
                .expect("x-rate-limit-limit", limit)
                .expect("x-rate-limit-remaining", 4 - n);
            exchange(client, base, &ex, f).await?;
        }
        if second == 0 {
            let ex = post("6th in the same second")
                .denied()
                .expect("retry-after", 1);
            exchange(client, base, &ex, f).await?;
        }
        f.check(clock.monotonic_nanos() / SECOND == start, || {
            "a burst of 6 requests took over a second".into()
        });
    }
    let ex = post("21st in the minute")
        .denied()
        .expect("x-rate-limit-limit", 20)
        .expect("x-rate-limit-remaining", 0)
        .expect("content-type", "text/plain; charset=utf-8");
    let seen = exchange(client, base, &ex, f).await?;
    let body = String::from_utf8_lossy(&seen.body);
    f.check(
        body.starts_with(
            "Save readings API interface quota exceeded. Maximum allowed is 20 requests per 1m.",
        ),
        || format!("Switch's sentence, got {body:?}"),
    );
    for ex in [
        Exchange::new(
            Method::GET,
            "/switch/api/meters",
            "another endpoint: no limit",
        )
        .token("sw-client-a"),
        Exchange::new(
            Method::POST,
            readings,
            "a personal access token: unrestricted",
        )
        .token("sw-personal"),
    ] {
        let seen = exchange(client, base, &ex, f).await?;
        f.check(
            !seen
                .headers
                .keys()
                .any(|n| is_rate_limit_header(n.as_str())),
            || format!("{}: no rate-limit headers when no limit applies", ex.label),
        );
    }
    Ok(())
}

fn port() -> Result<u16, String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--port") {
        None => Ok(0),
        Some(i) => args
            .get(i + 1)
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| "--port needs a number".to_owned()),
    }
}

#[tokio::main]
async fn main() -> Result<ExitCode, Error> {
    let serve = std::env::args().any(|a| a == "--serve");
    let clock = SystemClock::new();
    let router = app::app(clock, false)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port()?)).await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(app::serve(listener, router));
    let base = format!("http://{addr}");
    println!("ratecore seed server on {base}: /evenergy/…, /uphold/…, /switch/…");
    println!("Each response below is what an HTTP client received; the date header is left out.");

    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let mut failures = Failures::default();
    evenergy(&client, &base, &mut failures).await?;
    uphold(&client, &base, &mut failures).await?;
    switch(&client, &base, &clock, &mut failures).await?;

    println!();
    if !failures.0.is_empty() {
        println!("{} seed promise(s) broken:", failures.0.len());
        for failure in &failures.0 {
            println!("  {failure}");
        }
        return Ok(ExitCode::FAILURE);
    }
    println!("All seed promises checked over HTTP: OK.");
    if serve {
        println!();
        println!(
            "Serving on {base} until interrupted. The replay's usage still counts (alice's hour"
        );
        println!("and client-a's minute are spent; Uphold's foo@bar.com has no requests left for 5 minutes).");
        println!("For example:");
        println!(
            "  curl -i -H 'Authorization: Bearer sw-client-a' -X POST {base}/switch/api/readings"
        );
        println!("  curl -i -H 'Authorization: Bearer ev-alice' {base}/evenergy/v2/users/");
        println!("  curl -i -H 'X-Forwarded-For: 198.51.100.7' -H 'X-Account: foo@bar.com' -X POST {base}/uphold/password/forgot");
        server.await??;
    }
    Ok(ExitCode::SUCCESS)
}
