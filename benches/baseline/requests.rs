//! The request sequences both engines are fed: case a's Uphold pairs and endpoint mix,
//! case b's clients and endpoint mix, as each engine's requests.

use std::path::{Path, PathBuf};

use ratecore::policy::{Attribute, Request};
use ratecore_old::policy::Request as OldRequest;

use crate::common::SplitMix64;

/// The first request's `now`.
pub const T0: u64 = 1_000_000_000;

/// Request `k`'s `now` in case a: benches/common's `uphold_request`, 101 ms apart.
pub fn uphold_now(k: u64) -> u64 {
    T0 + k * 101_000_000
}

/// Request `k`'s `now` in case b: 1 ms apart.
pub fn big_now(k: u64) -> u64 {
    T0 + k * 1_000_000
}

/// A tree's Uphold policy file.
pub fn uphold_path(tree: &str) -> PathBuf {
    Path::new(tree).join("examples/policies/uphold.toml")
}

/// The new engine's attributes for the Uphold pairs: `client_ip` and `user`.
pub fn uphold_attributes(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<[Attribute<'_>; 2]> {
    pairs
        .iter()
        .map(|(ip, user)| {
            [
                Attribute::new("client_ip", ip),
                Attribute::new("user", user),
            ]
        })
        .collect()
}

/// Case a1's sequence: each pair once on `POST /password/forgot`.
pub fn forgot_entries() -> Vec<Entry> {
    (0..1_000)
        .map(|client| Entry {
            method: "POST",
            path: "/password/forgot".to_owned(),
            client,
        })
        .collect()
}

/// The new engine's requests for `entries`, each with its client's `attributes`.
pub fn new_requests<'a, A: AsRef<[Attribute<'a>]>>(
    entries: &'a [Entry],
    attributes: &'a [A],
) -> Vec<Request<'a>> {
    entries
        .iter()
        .map(|e| Request::new(e.method, &e.path, attributes[e.client].as_ref()))
        .collect()
}

/// One request of a sequence: endpoint and which client sends it.
pub struct Entry {
    pub method: &'static str,
    pub path: String,
    pub client: usize,
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
pub fn uphold_pairs() -> Vec<(Vec<u8>, Vec<u8>)> {
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
pub fn uphold_old_request<'a>(pairs: &'a [(Vec<u8>, Vec<u8>)], entry: &'a Entry) -> OldRequest<'a> {
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
pub fn uphold_mix() -> Vec<Entry> {
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
                _ => (
                    "GET",
                    format!("/accounts/acc-{client}/transactions?limit=50"),
                ),
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
pub struct BigClient {
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

pub fn big_clients() -> Vec<BigClient> {
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
    pub fn attributes(&self) -> Vec<Attribute<'_>> {
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
    /// credential (`big_old.toml`).
    pub fn old_request<'a>(&'a self, entry: &'a Entry) -> OldRequest<'a> {
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
pub fn big_mix() -> Vec<Entry> {
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
