//! The policy engine of this tree against an earlier revision's (`ratecore_old`; by
//! default 79e601f, the last commit with the fixed-identity policies), in one process:
//! interleaved paired rounds (benches/common's `Paired`), every case running the same
//! requests at the same `now` sequence through both engines.
//!
//! Not a cargo bench of this crate: the old engine is another revision of this very
//! package, so `benches/baseline/run.sh` builds this file in a generated project that
//! depends on both. Usage: `policy [--quick] <new tree> <old tree>`, or
//! `policy --profile <a1|a2|b|b-plain> <new|old> <checks> <new tree> <old tree>`: one
//! side of one case in a bare loop (`hot`), for a profiler (benches/README.md).
//!
//! Cases:
//! - a: the Uphold policy (each tree's `examples/policies/uphold.toml`), 1,000 (IP,
//!   account) pairs 101 ms apart as benches/common's `uphold_request`: its one endpoint,
//!   then a mix of the policy's endpoints and unlimited ones.
//! - b: 20 rules (16 limits, 4 exemptions) over 10 attributes, 100,000 overrides on one
//!   limit; against the same policy without overrides and against the closest policy
//!   the old engine can express.
//! - c: case a's mix on two threads at once (per-limit counters, shared, included).

#[path = "../common/mod.rs"]
mod common;

use std::cell::Cell;
use std::path::Path;
use std::sync::Barrier;
use std::time::Instant;

use common::{Paired, SplitMix64};
use ratecore::policy::{Attribute, OverrideQuota, Policy, Request};
use ratecore_old::policy::{Policy as OldPolicy, Request as OldRequest};

/// The first request's `now`.
const T0: u64 = 1_000_000_000;

/// Rounds and batch sizes; `--quick` makes each case a few thousand checks.
struct Settings {
    quick: bool,
    rounds: usize,
    /// Checks per side, before timing, whose decisions are compared (and which warm
    /// the tables up).
    verify: u64,
}

impl Settings {
    fn batch(&self, full: usize) -> usize {
        if self.quick {
            1_000
        } else {
            full
        }
    }
}

/// Where every engine instance is in the request sequence. Each measurement takes a
/// fresh stretch, so both sides of it see the same requests at the same times and no
/// instance's clock ever goes back (instance b-new is in two measurements).
struct Timeline(Cell<u64>);

impl Timeline {
    fn take(&self, checks: u64) -> u64 {
        let start = self.0.get();
        self.0.set(start + checks);
        start
    }
}

/// One measured comparison, for the table.
struct Row {
    case: &'static str,
    baseline: &'static str,
    goal: Option<f64>,
    paired: Paired,
}

/// `rounds` paired rounds of `batch` checks; `new(k)` and `old(k)` check request `k`.
fn paired<RA, RB>(
    s: &Settings,
    timeline: &Timeline,
    batch: usize,
    mut new: impl FnMut(u64) -> RA,
    mut old: impl FnMut(u64) -> RB,
) -> Paired {
    // Paired runs one unrecorded warm-up round first.
    let start = timeline.take(((s.rounds + 1) * batch) as u64);
    Paired::measure(
        s.rounds,
        batch,
        |i| new(start + i as u64),
        |i| old(start + i as u64),
    )
}

/// Verdict and number of limits met, per check, of the two sides over `s.verify`
/// checks: the comparison means something only if both engines do the same work.
fn agreement(
    s: &Settings,
    timeline: &Timeline,
    label: &str,
    names: (&str, &str),
    mut new: impl FnMut(u64) -> (bool, usize),
    mut old: impl FnMut(u64) -> (bool, usize),
) {
    let start = timeline.take(s.verify);
    let (mut same, mut admitted, mut limits) = (0u64, [0u64; 2], [0usize; 2]);
    for k in start..start + s.verify {
        let (a, b) = (new(k), old(k));
        same += u64::from(a.0 == b.0);
        admitted[0] += u64::from(a.0);
        admitted[1] += u64::from(b.0);
        limits[0] += a.1;
        limits[1] += b.1;
    }
    let n = s.verify as f64;
    if same != s.verify {
        println!("{label}: the engines decided differently: not the same work, see below");
    }
    println!(
        "{label}: {} checks, same verdict {same}; admitted {:.1} % ({}) / {:.1} % ({}); \
         limits met per check {:.2} / {:.2}",
        s.verify,
        admitted[0] as f64 * 100.0 / n,
        names.0,
        admitted[1] as f64 * 100.0 / n,
        names.1,
        limits[0] as f64 / n,
        limits[1] as f64 / n,
    );
}

// ---------------------------------------------------------------------------------------
// Requests

/// One request of a sequence: endpoint and which client sends it.
struct Entry {
    method: &'static str,
    path: String,
    client: usize,
}

/// Picks `weights`' index with probability proportional to its weight.
fn pick(rng: &mut SplitMix64, weights: &[u64]) -> usize {
    let mut x = rng.below(weights.iter().sum());
    for (index, &w) in weights.iter().enumerate() {
        if x < w {
            return index;
        }
        x -= w;
    }
    weights.len() - 1
}

/// The Uphold pairs: benches/common's `uphold_policy_and_pairs`, value for value.
fn uphold_pairs() -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..1_000u32)
        .map(|i| {
            (
                format!("198.51.{}.{}", i / 250, i % 250).into_bytes(),
                format!("account-{i}@example.com").into_bytes(),
            )
        })
        .collect()
}

/// The old engine's request for an Uphold pair: IP and account, as the new one's
/// `client_ip` and `user` attributes.
fn uphold_old_request<'a>(pairs: &'a [(Vec<u8>, Vec<u8>)], entry: &'a Entry) -> OldRequest<'a> {
    let (ip, user) = &pairs[entry.client];
    OldRequest {
        method: entry.method,
        path: &entry.path,
        client_ip: Some(ip),
        user: Some(user),
        app: None,
        client: None,
    }
}

/// Case a2's sequence: request `k` is pair `k % 1000` (as `uphold_request`) on an
/// endpoint drawn from a mix of the policy's routes and routes only its global rule
/// meets. 8,000 entries, so entry `k`'s pair is always `k % 1000`.
fn uphold_mix() -> Vec<Entry> {
    let mut rng = SplitMix64::new(11);
    (0..8_000)
        .map(|k| {
            let client = k % 1_000;
            let (method, path) = match pick(&mut rng, &[6, 8, 6, 25, 15, 20, 20]) {
                0 => ("POST", "/password/forgot".to_owned()),
                1 => ("POST", "/oauth2/token".to_owned()),
                2 => ("POST", "/users".to_owned()),
                3 => ("POST", format!("/cards/c0ffee-{client:04}/transactions")),
                4 => (
                    "POST",
                    format!("/cards/c0ffee-{client:04}/transactions/tx-{k}/commit"),
                ),
                5 => ("GET", "/me".to_owned()),
                _ => ("GET", format!("/accounts/acc-{client}/transactions?limit=50")),
            };
            Entry {
                method,
                path,
                client,
            }
        })
        .collect()
}

/// Case b's clients: 4,096 of them, every fourth anonymous (no user, no app). Attribute
/// values as a gateway would set them; half the API keys have an override.
struct BigClient {
    ip: Vec<u8>,
    user: Option<Vec<u8>>,
    app: Option<Vec<u8>>,
    client: Vec<u8>,
    tenant: Vec<u8>,
    api_key: Vec<u8>,
    auth: &'static [u8],
    plan: &'static [u8],
    region: &'static [u8],
    device: &'static [u8],
}

const BIG_CLIENTS: usize = 4_096;

fn big_clients() -> Vec<BigClient> {
    (0..BIG_CLIENTS)
        .map(|c| {
            let anonymous = c % 4 == 3;
            BigClient {
                ip: format!("198.18.{}.{}", c / 256, c % 256).into_bytes(),
                user: (!anonymous).then(|| format!("user-{c}@example.com").into_bytes()),
                app: (!anonymous).then(|| format!("app-{}", c % 97).into_bytes()),
                client: format!("client-{}", c % 512).into_bytes(),
                tenant: format!("tenant-{}", c % 64).into_bytes(),
                // Even for even c: those are among the overrides (`set_overrides`).
                api_key: format!("ak-{:06}", c * 7_919 % 200_000).into_bytes(),
                auth: [b"api_key".as_slice(), b"oauth"][c % 2],
                plan: [b"free".as_slice(), b"pro", b"enterprise"][c % 3],
                region: [b"eu-west".as_slice(), b"us-east", b"ap-south"][c % 3],
                device: [b"web".as_slice(), b"ios", b"android"][c % 3],
            }
        })
        .collect()
}

impl BigClient {
    /// The new engine's attributes, in the order a gateway would set them.
    fn attributes(&self) -> Vec<Attribute<'_>> {
        let mut a = vec![Attribute::new("client_ip", &self.ip)];
        if let (Some(user), Some(app)) = (&self.user, &self.app) {
            a.push(Attribute::new("user", user));
            a.push(Attribute::new("app", app));
        }
        a.extend([
            Attribute::new("client", &self.client),
            Attribute::new("tenant", &self.tenant),
            Attribute::new("api_key", &self.api_key),
            Attribute::new("auth", self.auth),
            Attribute::new("plan", self.plan),
            Attribute::new("region", self.region),
            Attribute::new("device", self.device),
        ]);
        a
    }

    /// The old engine's request: its four identities. Its `client` carries the API key,
    /// which the closest old policy keys on where the new one keys on a client's
    /// credential (`BIG_OLD`).
    fn old_request<'a>(&'a self, entry: &'a Entry) -> OldRequest<'a> {
        OldRequest {
            method: entry.method,
            path: &entry.path,
            client_ip: Some(&self.ip),
            user: self.user.as_deref(),
            app: self.app.as_deref(),
            client: Some(&self.api_key),
        }
    }
}

/// Case b's sequence: a random client per request on a weighted mix of endpoints.
fn big_mix() -> Vec<Entry> {
    let mut rng = SplitMix64::new(23);
    (0..16_384)
        .map(|_| {
            let client = rng.below(BIG_CLIENTS as u64) as usize;
            let n = rng.below(1_000_000);
            let (method, path) = match pick(&mut rng, &[20, 25, 8, 7, 10, 5, 5, 10, 5, 5]) {
                0 => ("GET", format!("/v1/search?q=term{}", n % 1_000)),
                1 => ("GET", format!("/v1/items/{n}")),
                2 => ("POST", "/v1/items".to_owned()),
                3 => ("POST", "/v1/orders".to_owned()),
                4 => ("GET", format!("/v1/orders/{n}")),
                5 => ("POST", "/oauth/token".to_owned()),
                6 => ("POST", "/v1/uploads".to_owned()),
                7 => ("GET", "/v1/account".to_owned()),
                8 => ("GET", "/health".to_owned()),
                _ => ("GET", format!("/v1/teams/{}", n % 100)),
            };
            Entry {
                method,
                path,
                client,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Case b's policies

/// 20 rules: 4 exemptions by route, 4 limits every request meets and 12 per endpoint,
/// keyed on 7 attributes, with conditions on 7 (10 distinct). Every condition holds for
/// every client of the mix, so the new engine evaluates them all and meets the same
/// limits as the old one, which has no conditions to skip a rule with.
const BIG_NEW: &str = r#"
[table]
capacity = 65536
when_full = "evict"

[[rule]]
name = "health"
route = "GET /health"
unlimited = true

[[rule]]
name = "metrics"
route = "GET /metrics"
unlimited = true

[[rule]]
name = "status"
route = "GET /status"
unlimited = true

[[rule]]
name = "docs"
route = "GET /docs/:page"
unlimited = true

[[rule]]
name = "per-ip"
[[rule.limit]]
name = "per-ip"
key = ["client_ip"]
on_missing = "deny"
algorithm = "fixed_window"
limit = 100000
period = "1m"

[[rule]]
name = "per-api-key"
when = { auth = ["api_key", "oauth"] }
[[rule.limit]]
name = "per-api-key"
key = ["api_key"]
on_missing = "skip"
algorithm = "gcra"
limit = 100
period = "1s"

[[rule]]
name = "per-user"
when = { region = { not_in = ["embargoed-1", "embargoed-2"] } }
[[rule.limit]]
name = "per-user"
key = ["user"]
on_missing = "skip"
algorithm = "sliding_window"
limit = 10000
period = "1h"

[[rule]]
name = "per-app-user"
when = { device = { present = true } }
[[rule.limit]]
name = "per-app-user"
key = ["app", "user"]
on_missing = "skip"
algorithm = "fixed_window"
limit = 5000
period = "1h"

[[rule]]
name = "search-per-ip"
route = "GET /v1/search"
[[rule.limit]]
name = "search-per-ip"
key = ["client_ip"]
on_missing = "deny"
algorithm = "gcra"
limit = 20
period = "1s"

[[rule]]
name = "search-per-tenant-user"
route = "GET /v1/search"
when = { plan = ["free", "pro", "enterprise"] }
[[rule.limit]]
name = "search-per-tenant-user"
key = ["tenant", "user"]
on_missing = "skip"
algorithm = "fixed_window"
limit = 600
period = "1m"

[[rule]]
name = "items-read"
route = "GET /v1/items/:id"
when = { client = { not_in = ["client-blocked"] } }
[[rule.limit]]
name = "items-read"
key = ["api_key"]
on_missing = "skip"
algorithm = "gcra"
limit = 200
period = "1s"

[[rule]]
name = "items-write"
route = "POST /v1/items"
[[rule.limit]]
name = "items-write"
key = ["tenant"]
on_missing = "skip"
algorithm = "fixed_window"
limit = 100000
period = "1m"

[[rule]]
name = "orders-write"
route = "POST /v1/orders"
[[rule.limit]]
name = "orders-write"
key = ["user"]
on_missing = "skip"
algorithm = "fixed_window"
limit = 100
period = "1m"

[[rule]]
name = "orders-read"
route = "GET /v1/orders/:id"
[[rule.limit]]
name = "orders-read"
key = ["app", "user"]
on_missing = "skip"
algorithm = "sliding_window"
limit = 1000
period = "1m"

[[rule]]
name = "token-per-ip"
route = "POST /oauth/token"
[[rule.limit]]
name = "token-per-ip"
key = ["client_ip"]
on_missing = "deny"
algorithm = "fixed_window"
limit = 30
period = "1m"

[[rule]]
name = "token-per-client"
route = "POST /oauth/token"
when = { auth = ["api_key", "oauth"] }
[[rule.limit]]
name = "token-per-client"
key = ["client"]
on_missing = "skip"
algorithm = "fixed_window"
limit = 1000
period = "1m"

[[rule]]
name = "uploads-per-user"
route = "POST /v1/uploads"
[[rule.limit]]
name = "uploads-per-user"
key = ["user"]
on_missing = "skip"
algorithm = "gcra"
limit = 2
period = "1s"

[[rule]]
name = "uploads-global"
route = "POST /v1/uploads"
[[rule.limit]]
name = "uploads-global"
key = []
algorithm = "fixed_window"
limit = 10000
period = "1s"

[[rule]]
name = "account-per-user"
route = "GET /v1/account"
when = { tenant = { present = true } }
[[rule.limit]]
name = "account-per-user"
key = ["user"]
on_missing = "skip"
algorithm = "sliding_window"
limit = 600
period = "1m"

[[rule]]
name = "writes-per-region-ip"
route = "POST /v1/:resource"
[[rule.limit]]
name = "writes-per-region-ip"
key = ["region", "client_ip"]
on_missing = "deny"
algorithm = "fixed_window"
limit = 1000
period = "1m"
"#;

/// The closest the old engine comes to `BIG_NEW`: the same 20 rules, routes, algorithms
/// and quotas, without conditions; each key mapped to the old identity with the same
/// presence (a user-based key to `user` or `app_user`, any other single attribute to
/// `client_ip` or `client`, which carries the API key). It is also at the old engine's
/// cap of 16 limits per policy.
const BIG_OLD: &str = r#"
[table]
capacity = 65536
when_full = "evict"

[[rule]]
name = "health"
route = "GET /health"
unlimited = true

[[rule]]
name = "metrics"
route = "GET /metrics"
unlimited = true

[[rule]]
name = "status"
route = "GET /status"
unlimited = true

[[rule]]
name = "docs"
route = "GET /docs/:page"
unlimited = true

[[rule]]
name = "per-ip"
[[rule.limit]]
name = "per-ip"
key = "client_ip"
algorithm = "fixed_window"
limit = 100000
period = "1m"

[[rule]]
name = "per-api-key"
[[rule.limit]]
name = "per-api-key"
key = "client"
algorithm = "gcra"
limit = 100
period = "1s"

[[rule]]
name = "per-user"
[[rule.limit]]
name = "per-user"
key = "user"
algorithm = "sliding_window"
limit = 10000
period = "1h"

[[rule]]
name = "per-app-user"
[[rule.limit]]
name = "per-app-user"
key = "app_user"
algorithm = "fixed_window"
limit = 5000
period = "1h"

[[rule]]
name = "search-per-ip"
route = "GET /v1/search"
[[rule.limit]]
name = "search-per-ip"
key = "client_ip"
algorithm = "gcra"
limit = 20
period = "1s"

[[rule]]
name = "search-per-tenant-user"
route = "GET /v1/search"
[[rule.limit]]
name = "search-per-tenant-user"
key = "app_user"
algorithm = "fixed_window"
limit = 600
period = "1m"

[[rule]]
name = "items-read"
route = "GET /v1/items/:id"
[[rule.limit]]
name = "items-read"
key = "client"
algorithm = "gcra"
limit = 200
period = "1s"

[[rule]]
name = "items-write"
route = "POST /v1/items"
[[rule.limit]]
name = "items-write"
key = "client"
algorithm = "fixed_window"
limit = 100000
period = "1m"

[[rule]]
name = "orders-write"
route = "POST /v1/orders"
[[rule.limit]]
name = "orders-write"
key = "user"
algorithm = "fixed_window"
limit = 100
period = "1m"

[[rule]]
name = "orders-read"
route = "GET /v1/orders/:id"
[[rule.limit]]
name = "orders-read"
key = "app_user"
algorithm = "sliding_window"
limit = 1000
period = "1m"

[[rule]]
name = "token-per-ip"
route = "POST /oauth/token"
[[rule.limit]]
name = "token-per-ip"
key = "client_ip"
algorithm = "fixed_window"
limit = 30
period = "1m"

[[rule]]
name = "token-per-client"
route = "POST /oauth/token"
[[rule.limit]]
name = "token-per-client"
key = "client"
algorithm = "fixed_window"
limit = 1000
period = "1m"

[[rule]]
name = "uploads-per-user"
route = "POST /v1/uploads"
[[rule.limit]]
name = "uploads-per-user"
key = "user"
algorithm = "gcra"
limit = 2
period = "1s"

[[rule]]
name = "uploads-global"
route = "POST /v1/uploads"
[[rule.limit]]
name = "uploads-global"
key = "global"
algorithm = "fixed_window"
limit = 10000
period = "1s"

[[rule]]
name = "account-per-user"
route = "GET /v1/account"
[[rule.limit]]
name = "account-per-user"
key = "user"
algorithm = "sliding_window"
limit = 600
period = "1m"

[[rule]]
name = "writes-per-region-ip"
route = "POST /v1/:resource"
[[rule.limit]]
name = "writes-per-region-ip"
key = "client_ip"
algorithm = "fixed_window"
limit = 1000
period = "1m"
"#;

/// 100,000 overrides on `per-api-key`: the even API keys `ak-000000` … `ak-199998` get
/// 1,000 per second instead of 100, set one by one at run time as an operator would.
fn set_overrides(policy: &Policy) -> f64 {
    let started = Instant::now();
    for n in (0..200_000u32).step_by(2) {
        policy
            .set_override(
                "per-api-key",
                "per-api-key",
                "api_key",
                format!("ak-{n:06}").as_bytes(),
                OverrideQuota::Limit {
                    limit: 1_000,
                    burst: None,
                },
            )
            .expect("override");
    }
    started.elapsed().as_secs_f64()
}

// ---------------------------------------------------------------------------------------
// Two threads

/// `batch` checks on each of two threads; the wall time both took, from a barrier. Each
/// thread runs its own copy of the closure (benches/contended.rs: a shared copy in the
/// timing thread's frame bounced its cache line under the other thread).
fn two_threads<F: Fn(u64, u64) + Send + Clone>(start: u64, batch: u64, check: F) -> f64 {
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let (theirs, barrier) = (check.clone(), &barrier);
        let other = s.spawn(move || {
            barrier.wait();
            hammer(start, batch, 1, &theirs);
        });
        barrier.wait();
        let started = Instant::now();
        hammer(start, batch, 0, &check);
        other.join().expect("bench thread");
        started.elapsed().as_secs_f64()
    })
}

/// One thread's loop: one call site for the check, so it is inlined here for both
/// engines alike (benches/contended.rs's `hammer`).
#[inline(never)]
fn hammer<F: Fn(u64, u64)>(start: u64, batch: u64, thread: u64, check: &F) {
    for k in start..start + batch {
        check(k, thread);
    }
}

// ---------------------------------------------------------------------------------------
// Profiling

/// The measured loop of `--profile`, never inlined so a profiler can isolate it
/// (`valgrind --tool=callgrind --toggle-collect='*policy::hot*'`), as in
/// benches/profile_driver.rs. Checks `start..start + checks`, after `start` unmeasured
/// ones have warmed the tables up as the timed runs' verification does.
#[inline(never)]
fn hot<R>(start: u64, checks: u64, check: impl Fn(u64) -> R) {
    for k in start..start + checks {
        common::observe(check(k));
    }
}

/// One side of one case, as `main` sets it up, in `hot`.
fn profile(case: &str, side: &str, checks: u64, new_tree: &str, old_tree: &str) {
    let warm = 8_000;
    let run = |check: &dyn Fn(u64)| {
        for k in 0..warm {
            check(k);
        }
        hot(warm, checks, check);
    };
    let uphold = |tree: &str| Path::new(tree).join("examples/policies/uphold.toml");
    match case {
        "a1" | "a2" => {
            let pairs = uphold_pairs();
            let attributes: Vec<[Attribute<'_>; 2]> = pairs
                .iter()
                .map(|(ip, user)| {
                    [
                        Attribute::new("client_ip", ip),
                        Attribute::new("user", user),
                    ]
                })
                .collect();
            let entries: Vec<Entry> = if case == "a1" {
                (0..1_000)
                    .map(|client| Entry {
                        method: "POST",
                        path: "/password/forgot".to_owned(),
                        client,
                    })
                    .collect()
            } else {
                uphold_mix()
            };
            let n = entries.len() as u64;
            let now = |k: u64| T0 + k * 101_000_000;
            if side == "new" {
                let policy = Policy::from_toml_file(uphold(new_tree)).expect("new uphold policy");
                let requests: Vec<Request<'_>> = entries
                    .iter()
                    .map(|e| Request::new(e.method, &e.path, &attributes[e.client]))
                    .collect();
                run(&|k| common::observe(policy.check(&requests[(k % n) as usize], now(k), 1)));
            } else {
                let policy =
                    OldPolicy::from_toml_file(uphold(old_tree)).expect("old uphold policy");
                let requests: Vec<OldRequest<'_>> = entries
                    .iter()
                    .map(|e| uphold_old_request(&pairs, e))
                    .collect();
                run(&|k| common::observe(policy.check(&requests[(k % n) as usize], now(k), 1)));
            }
        }
        "b" | "b-plain" => {
            let clients = big_clients();
            let entries = big_mix();
            let n = entries.len() as u64;
            let now = |k: u64| T0 + k * 1_000_000;
            if side == "new" {
                let policy = Policy::from_toml_str(BIG_NEW, "big-new").expect("big new policy");
                if case == "b" {
                    set_overrides(&policy);
                }
                let attributes: Vec<Vec<Attribute<'_>>> =
                    clients.iter().map(BigClient::attributes).collect();
                let requests: Vec<Request<'_>> = entries
                    .iter()
                    .map(|e| Request::new(e.method, &e.path, &attributes[e.client]))
                    .collect();
                run(&|k| common::observe(policy.check(&requests[(k % n) as usize], now(k), 1)));
            } else {
                let policy = OldPolicy::from_toml_str(BIG_OLD, "big-old").expect("big old policy");
                let requests: Vec<OldRequest<'_>> = entries
                    .iter()
                    .map(|e| clients[e.client].old_request(e))
                    .collect();
                run(&|k| common::observe(policy.check(&requests[(k % n) as usize], now(k), 1)));
            }
        }
        _ => {
            eprintln!("unknown case {case:?} (a1, a2, b, b-plain)");
            std::process::exit(2);
        }
    }
}

// ---------------------------------------------------------------------------------------

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, case, side, checks, new_tree, old_tree] = args.as_slice() {
        if flag == "--profile" {
            let checks = checks.parse().expect("number of checks");
            profile(case, side, checks, new_tree, old_tree);
            return;
        }
    }
    let quick = args.iter().any(|a| a == "--quick");
    let trees: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let [new_tree, old_tree] = trees.as_slice() else {
        eprintln!("usage: policy [--quick] <new tree> <old tree> (benches/baseline/run.sh)");
        std::process::exit(2);
    };
    let s = Settings {
        quick,
        rounds: if quick { 3 } else { 301 },
        verify: if quick { 1_000 } else { 8_000 },
    };
    let started = Instant::now();
    let timeline = Timeline(Cell::new(0));
    let mut rows = Vec::new();
    let uphold = |tree: &str| Path::new(tree).join("examples/policies/uphold.toml");

    // Case a: the Uphold policy.
    {
        let new = Policy::from_toml_file(uphold(new_tree)).expect("new uphold policy");
        let old = OldPolicy::from_toml_file(uphold(old_tree)).expect("old uphold policy");
        let pairs = uphold_pairs();
        let attributes: Vec<[Attribute<'_>; 2]> = pairs
            .iter()
            .map(|(ip, user)| {
                [
                    Attribute::new("client_ip", ip),
                    Attribute::new("user", user),
                ]
            })
            .collect();
        let old_request = |entry| uphold_old_request(&pairs, entry);
        // a1: benches/common's `uphold_request`, 101 ms apart.
        let forgot: Vec<Entry> = (0..1_000)
            .map(|client| Entry {
                method: "POST",
                path: "/password/forgot".to_owned(),
                client,
            })
            .collect();
        let mix = uphold_mix();
        for (case, entries) in [
            ("a1 Uphold, POST /password/forgot", &forgot),
            ("a2 Uphold, endpoint mix", &mix),
        ] {
            let new_requests: Vec<Request<'_>> = entries
                .iter()
                .map(|e| Request::new(e.method, &e.path, &attributes[e.client]))
                .collect();
            let old_requests: Vec<OldRequest<'_>> = entries.iter().map(old_request).collect();
            let n = new_requests.len() as u64;
            let now = |k: u64| T0 + k * 101_000_000;
            let check_new = |k: u64| new.check(&new_requests[(k % n) as usize], now(k), 1);
            let check_old = |k: u64| old.check(&old_requests[(k % n) as usize], now(k), 1);
            agreement(
                &s,
                &timeline,
                case,
                ("new", "old"),
                |k| check_new(k).map_or((false, 0), |d| (d.allowed(), d.entries().count())),
                |k| check_old(k).map_or((false, 0), |d| (d.allowed(), d.entries().count())),
            );
            let p = paired(&s, &timeline, s.batch(10_000), check_new, check_old);
            rows.push(Row {
                case,
                baseline: "old",
                goal: Some(1.1),
                paired: p,
            });
        }

        // Case c: a2's mix on two threads, thread t taking entries 2k + t (the even
        // pairs on one, the odd on the other: same tables and counters, other keys).
        let new_requests: Vec<Request<'_>> = mix
            .iter()
            .map(|e| Request::new(e.method, &e.path, &attributes[e.client]))
            .collect();
        let old_requests: Vec<OldRequest<'_>> = mix.iter().map(old_request).collect();
        let n = new_requests.len() as u64;
        let index = move |k: u64, thread: u64| ((2 * k + thread) % n) as usize;
        let now = |k: u64| T0 + k * 101_000_000;
        let (new, old) = (&new, &old);
        let (new_requests, old_requests) = (&new_requests, &old_requests);
        let check_new = move |k: u64, t: u64| {
            common::observe(new.check(&new_requests[index(k, t)], now(k), 1));
        };
        let check_old = move |k: u64, t: u64| {
            common::observe(old.check(&old_requests[index(k, t)], now(k), 1));
        };
        let batch = s.batch(10_000);
        let start = timeline.take(((s.rounds + 1) * batch) as u64);
        let (next_new, next_old) = (Cell::new(start), Cell::new(start));
        let run = |next: &Cell<u64>, check: &dyn Fn(u64) -> f64| {
            let k = next.get();
            next.set(k + batch as u64);
            check(k)
        };
        let p = Paired::interleave(
            s.rounds,
            batch,
            || run(&next_new, &|k| two_threads(k, batch as u64, check_new)),
            || run(&next_old, &|k| two_threads(k, batch as u64, check_old)),
        );
        rows.push(Row {
            case: "c  Uphold mix, 2 threads (ns per check per thread)",
            baseline: "old",
            goal: None,
            paired: p,
        });
    }

    // Case b: 20 rules, 10 attributes, 100,000 overrides.
    {
        let new = Policy::from_toml_str(BIG_NEW, "big-new").expect("big new policy");
        let plain = Policy::from_toml_str(BIG_NEW, "big-new").expect("big new policy");
        let old = OldPolicy::from_toml_str(BIG_OLD, "big-old").expect("big old policy");
        let seconds = set_overrides(&new);
        println!(
            "b: {} overrides set in {seconds:.2} s; policy memory (tables and overrides) \
             {:.1} MiB, {:.1} MiB without overrides",
            new.overrides().len(),
            new.memory_bytes() as f64 / (1 << 20) as f64,
            plain.memory_bytes() as f64 / (1 << 20) as f64,
        );
        let clients = big_clients();
        let attributes: Vec<Vec<Attribute<'_>>> =
            clients.iter().map(BigClient::attributes).collect();
        let entries = big_mix();
        let new_requests: Vec<Request<'_>> = entries
            .iter()
            .map(|e| Request::new(e.method, &e.path, &attributes[e.client]))
            .collect();
        let old_requests: Vec<OldRequest<'_>> = entries
            .iter()
            .map(|e| clients[e.client].old_request(e))
            .collect();
        let n = new_requests.len() as u64;
        let now = |k: u64| T0 + k * 1_000_000;
        let check_new = |k: u64| new.check(&new_requests[(k % n) as usize], now(k), 1);
        let check_plain = |k: u64| plain.check(&new_requests[(k % n) as usize], now(k), 1);
        let check_old = |k: u64| old.check(&old_requests[(k % n) as usize], now(k), 1);
        let verdict_new =
            |k: u64| check_new(k).map_or((false, 0), |d| (d.allowed(), d.entries().count()));
        let verdict_plain =
            |k: u64| check_plain(k).map_or((false, 0), |d| (d.allowed(), d.entries().count()));
        let verdict_old =
            |k: u64| check_old(k).map_or((false, 0), |d| (d.allowed(), d.entries().count()));
        let label = "b  20 rules, 100k overrides";
        agreement(&s, &timeline, label, ("new", "old"), verdict_new, verdict_old);
        agreement(
            &s,
            &timeline,
            label,
            ("new", "new without overrides"),
            verdict_new,
            verdict_plain,
        );
        let batch = s.batch(5_000);
        let p = paired(&s, &timeline, batch, check_new, check_old);
        rows.push(Row {
            case: "b1 20 rules, 10 attributes, 100k overrides",
            baseline: "old, closest policy",
            goal: Some(1.2),
            paired: p,
        });
        let p = paired(&s, &timeline, batch, check_new, check_plain);
        rows.push(Row {
            case: "b2 20 rules, 10 attributes, 100k overrides",
            baseline: "new, no overrides",
            goal: Some(1.2),
            paired: p,
        });
        let p = paired(&s, &timeline, batch, check_plain, check_old);
        rows.push(Row {
            case: "b3 20 rules, 10 attributes, no overrides",
            baseline: "old, closest policy",
            goal: None,
            paired: p,
        });
    }

    println!();
    if s.quick {
        println!("(--quick: {} rounds of 1,000 checks; no verdicts)", s.rounds);
    }
    println!(
        "{:<52} {:<20} {:>10} {:>10} {:>22}  goal",
        "case", "baseline", "base ns", "new ns", "ratio (quartiles)"
    );
    for row in &rows {
        let p = &row.paired;
        let goal = match (row.goal, s.quick) {
            (None, _) => "-".to_owned(),
            (Some(g), true) => format!("<= {g}"),
            (Some(g), false) if p.median <= g => format!("<= {g}: met"),
            (Some(g), false) => format!("<= {g}: NOT met"),
        };
        println!(
            "{:<52} {:<20} {:>10.1} {:>10.1} {:>8.3} ({:.3}–{:.3})  {goal}",
            row.case,
            row.baseline,
            p.per_call_ns.1,
            p.per_call_ns.0,
            p.median,
            p.quartiles.0,
            p.quartiles.1,
        );
    }
    println!(
        "({} rounds per case; ns per check = median batch time / batch; ratio = median of \
         the per-round ratios new / baseline; {:.0} s in all)",
        s.rounds,
        started.elapsed().as_secs_f64()
    );
}
