//! Per-client overrides: other quotas for the requests whose attribute has a chosen
//! value, looked up without locks or allocation while they change.
//!
//! An override keeps its limit's algorithm and period and changes only how many (and a
//! GCRA burst), so it runs on its limit's own table slots: a client whose quota changes
//! keeps what it has consumed, and N distinct override quotas cost no table memory —
//! only their map entries ([`OverrideSet::memory_bytes`]).
//!
//! What a key keeps when its quota changes:
//! - fixed and sliding windows count requests, so the count carries over exactly: 900
//!   used of 1000, raised to 5000, leaves 4100. Lowered below what was used, the key is
//!   denied until its window releases enough; in no window is it admitted more than the
//!   larger of its two quotas.
//! - GCRA keeps its theoretical arrival time, the time the key "owes": a key that used
//!   900 of 1000 per hour owes 54 minutes; raised to 5000 per hour (burst 5000), the same
//!   54 minutes are 4500 requests' worth, so 500 remain and the rest return at the new
//!   rate. Lowered, the debt is worth fewer requests, so the key never gains.
//!
//! Which override applies: a limit's overrides are looked up by attribute, in the order
//! the attributes first appeared among them (an attribute keeps its place while it has
//! any override; once its last is removed, a new one puts it last), and the first
//! attribute whose value has an override wins. They are looked up only for a request
//! that has the limit's key: one lacking a key attribute gets the limit's `on_missing`
//! first (so `deny` denies it even if an unlimited override would select it).
//!
//! # Orderings
//! The sets are replaced whole through `arc-swap`'s atomic pointer (its own orderings); a
//! check sees one set from start to end.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use std::collections::HashMap;

use alloc::string::ToString;

use super::request::{Request, Resolved};
use super::{Override, OverrideQuota, PolicyError};
use crate::quota::Quota;
use crate::table::{OwnedTable, TableLimit};

/// One override, ready to run.
#[derive(Debug, Clone)]
pub(super) struct OverrideEntry {
    pub(super) quota: OverrideQuota,
    /// The limit's parameters on the override's quota; `None` when unlimited.
    pub(super) table_limit: Option<TableLimit>,
    /// The same on Redis.
    #[cfg(feature = "redis")]
    pub(super) redis: Option<crate::redis_backend::RedisLimit>,
}

impl OverrideEntry {
    pub(super) fn unlimited(&self) -> bool {
        self.quota == OverrideQuota::Unlimited
    }
}

/// Shards per attribute map: a change copies one shard (about 1/64 of the map), not the
/// whole map, so adding overrides one by one stays cheap at 100,000 of them.
const SHARDS: usize = 64;

/// One shard's map. Hashed with aHash rather than the standard SipHash: every check of
/// a limit with overrides looks its value up, and the keys are the operator's, so a
/// request cannot make them collide (its value is only looked up, never inserted).
/// Entries are shared (`Arc`): 100,000 clients on a handful of tiers hold a handful of
/// entries, and a slot stays 24 bytes, which keeps a large map's lookups in cache.
type Shard = HashMap<Box<[u8]>, Arc<OverrideEntry>, ahash::RandomState>;

/// Distinct override entries a limit shares among its clients (its tiers); past this
/// many, each new quota gets an entry of its own.
const SHARED_ENTRIES: usize = 64;

/// A value → override map, sharded by a hash of the value.
#[derive(Debug, Clone)]
struct Shards(Vec<Arc<Shard>>);

impl Shards {
    fn new() -> Self {
        // Seeds from the standard library's per-process random keys (aHash's own
        // random source is a feature this no_std-capable crate leaves off).
        let seed = |n: u64| {
            use core::hash::BuildHasher;
            std::collections::hash_map::RandomState::new().hash_one(n)
        };
        let state = ahash::RandomState::with_seeds(seed(0), seed(1), seed(2), seed(3));
        Self(
            (0..SHARDS)
                .map(|_| Arc::new(Shard::with_hasher(state.clone())))
                .collect(),
        )
    }

    /// The shard of `value`: FNV-1a, fixed, since it only spreads values over shards (each
    /// shard's map hashes with its own random keys).
    fn index(value: &[u8]) -> usize {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in value {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        (hash % SHARDS as u64) as usize
    }

    fn get(&self, value: &[u8]) -> Option<&OverrideEntry> {
        self.0
            .get(Self::index(value))?
            .get(value)
            .map(|entry| &**entry)
    }

    fn shard_mut(&mut self, value: &[u8]) -> Option<&mut Shard> {
        self.0.get_mut(Self::index(value)).map(Arc::make_mut)
    }

    fn len(&self) -> usize {
        self.0.iter().map(|shard| shard.len()).sum()
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], &OverrideEntry)> {
        self.0
            .iter()
            .flat_map(|shard| shard.iter().map(|(value, entry)| (&**value, &**entry)))
    }

    /// The maps' slots and control bytes, and the values (shared entries are counted by
    /// [`LimitOverrides::memory_bytes`]).
    fn memory_bytes(&self) -> usize {
        self.0
            .iter()
            .map(|shard| {
                shard.capacity() * (core::mem::size_of::<(Box<[u8]>, Arc<OverrideEntry>)>() + 1)
                    + shard.keys().map(|value| value.len()).sum::<usize>()
            })
            .sum()
    }
}

/// The attribute an override selects by: its name, and its index among the policy's
/// attribute names when the policy uses it (its value is then already resolved).
#[derive(Debug, Clone)]
struct Selector {
    name: String,
    index: Option<usize>,
}

/// One limit's overrides: per selecting attribute (in first-appearance order), a map
/// from value to override.
#[derive(Debug, Default, Clone)]
pub(super) struct LimitOverrides {
    by_attribute: Vec<(Selector, Shards)>,
    /// The entries its clients share, one per quota (at most [`SHARED_ENTRIES`]).
    shared: Vec<Arc<OverrideEntry>>,
}

impl LimitOverrides {
    /// The override that applies to `request` (its attributes `resolved` against the
    /// policy's names), if any: the first attribute, in order, whose value has one.
    pub(super) fn select(
        &self,
        request: &Request<'_>,
        resolved: &Resolved<'_>,
    ) -> Option<&OverrideEntry> {
        self.by_attribute.iter().find_map(|(attribute, map)| {
            let value = match attribute.index {
                Some(index) => (*resolved.get(index)?)?,
                None => request.attribute(&attribute.name)?,
            };
            map.get(value)
        })
    }

    fn len(&self) -> usize {
        self.by_attribute.iter().map(|(_, map)| map.len()).sum()
    }

    fn insert(&mut self, names: &[String], attribute: &str, value: &[u8], entry: OverrideEntry) {
        let index = match self
            .by_attribute
            .iter()
            .position(|(a, _)| a.name == attribute)
        {
            Some(index) => index,
            None => {
                let selector = Selector {
                    name: String::from(attribute),
                    index: names.iter().position(|n| n == attribute),
                };
                self.by_attribute.push((selector, Shards::new()));
                self.by_attribute.len() - 1
            }
        };
        // One entry per quota: the entry is the limit's parameters on that quota.
        let entry = match self.shared.iter().find(|e| e.quota == entry.quota) {
            Some(shared) => Arc::clone(shared),
            None => {
                let entry = Arc::new(entry);
                if self.shared.len() < SHARED_ENTRIES {
                    self.shared.push(Arc::clone(&entry));
                }
                entry
            }
        };
        if let Some(shard) = self
            .by_attribute
            .get_mut(index)
            .and_then(|(_, map)| map.shard_mut(value))
        {
            shard.insert(value.into(), entry);
        }
    }

    /// The maps, the shared entries, and the entries of their own that quotas past the
    /// shared ones have.
    fn memory_bytes(&self) -> usize {
        let mut shared: Vec<*const OverrideEntry> = self.shared.iter().map(Arc::as_ptr).collect();
        shared.sort_unstable();
        let own = self
            .by_attribute
            .iter()
            .flat_map(|(_, map)| map.0.iter())
            .flat_map(|shard| shard.values())
            .filter(|entry| shared.binary_search(&Arc::as_ptr(entry)).is_err())
            .count();
        (self.shared.len() + own) * core::mem::size_of::<OverrideEntry>()
            + self
                .by_attribute
                .iter()
                .map(|(_, map)| map.memory_bytes())
                .sum::<usize>()
    }

    fn remove(&mut self, attribute: &str, value: &[u8]) -> bool {
        let Some(index) = self
            .by_attribute
            .iter()
            .position(|(a, _)| a.name == attribute)
        else {
            return false;
        };
        let Some((_, map)) = self.by_attribute.get_mut(index) else {
            return false;
        };
        let removed = map
            .shard_mut(value)
            .is_some_and(|shard| shard.remove(value).is_some());
        if map.len() == 0 {
            self.by_attribute.remove(index);
        }
        removed
    }

    /// Every override, as written.
    fn list(&self) -> impl Iterator<Item = Override> + '_ {
        self.by_attribute.iter().flat_map(|(attribute, map)| {
            map.iter().map(move |(value, entry)| Override {
                attribute: attribute.name.clone(),
                value: value.to_vec(),
                quota: entry.quota,
            })
        })
    }
}

/// Every limit's overrides (indexed by limit id), replaced whole on each change.
#[derive(Debug, Default, Clone)]
pub(super) struct OverrideSet {
    per_limit: Vec<Option<LimitOverrides>>,
    /// How many limits have overrides: checks skip the lookups when none has.
    limits_with_overrides: usize,
}

/// What a limit's overrides are built against: its table and its index there, and its
/// Redis limit when the policy runs on Redis.
pub(super) struct Target<'a> {
    pub(super) rule: &'a str,
    pub(super) limit: &'a str,
    pub(super) algorithm: crate::Algorithm,
    pub(super) period: u64,
    pub(super) table: &'a OwnedTable,
    pub(super) index: usize,
    /// The policy's attribute names (an override on one of them reads its resolved value).
    pub(super) names: &'a [String],
    #[cfg(feature = "redis")]
    pub(super) redis: Option<&'a crate::redis_backend::RedisLimit>,
}

impl Target<'_> {
    fn error(&self, message: impl Into<String>) -> PolicyError {
        PolicyError::Override {
            rule: String::from(self.rule),
            limit: String::from(self.limit),
            message: message.into(),
        }
    }

    /// The override's entry, validated as the limit's own quota is.
    pub(super) fn entry(&self, quota: OverrideQuota) -> Result<OverrideEntry, PolicyError> {
        let OverrideQuota::Limit { limit, burst } = quota else {
            return Ok(OverrideEntry {
                quota,
                table_limit: None,
                #[cfg(feature = "redis")]
                redis: None,
            });
        };
        let mut full = Quota::new(limit, self.period).map_err(|e| self.error(e.to_string()))?;
        if let Some(burst) = burst {
            if self.algorithm != crate::Algorithm::Gcra {
                return Err(self.error("burst only applies to algorithm = \"gcra\""));
            }
            full = full
                .with_burst(burst)
                .map_err(|e| self.error(e.to_string()))?;
        }
        let table_limit = self
            .table
            .limit_with_quota(self.index, full)
            .ok_or_else(|| self.error("an override keeps its limit's period"))?
            .map_err(|e| self.error(e.to_string()))?;
        #[cfg(feature = "redis")]
        let redis = match self.redis {
            Some(base) => Some(
                base.with_quota(full)
                    .ok_or_else(|| self.error("an override keeps its limit's period"))?
                    .map_err(|e| self.error(e.to_string()))?,
            ),
            None => None,
        };
        Ok(OverrideEntry {
            quota,
            table_limit: Some(table_limit),
            #[cfg(feature = "redis")]
            redis,
        })
    }
}

impl OverrideSet {
    /// An empty set for `limits` limits.
    pub(super) fn new(limits: usize) -> Self {
        Self {
            per_limit: (0..limits).map(|_| None).collect(),
            limits_with_overrides: 0,
        }
    }

    /// Limit `id`'s overrides, if it has any.
    pub(super) fn of(&self, id: usize) -> Option<&LimitOverrides> {
        self.per_limit.get(id)?.as_ref()
    }

    /// Sets (adds or replaces) an override of limit `id`.
    pub(super) fn set(
        &mut self,
        id: usize,
        target: &Target<'_>,
        attribute: &str,
        value: &[u8],
        quota: OverrideQuota,
    ) -> Result<(), PolicyError> {
        if !super::compile::valid_attribute_name(attribute) {
            return Err(PolicyError::AttributeName(String::from(attribute)));
        }
        let entry = target.entry(quota)?;
        let slot = self
            .per_limit
            .get_mut(id)
            .ok_or_else(|| target.error("no such limit"))?;
        if slot.is_none() {
            self.limits_with_overrides += 1;
        }
        slot.get_or_insert_with(LimitOverrides::default).insert(
            target.names,
            attribute,
            value,
            entry,
        );
        Ok(())
    }

    /// Removes an override of limit `id`; whether there was one.
    pub(super) fn remove(&mut self, id: usize, attribute: &str, value: &[u8]) -> bool {
        let Some(slot) = self.per_limit.get_mut(id) else {
            return false;
        };
        let Some(overrides) = slot else {
            return false;
        };
        let removed = overrides.remove(attribute, value);
        if overrides.len() == 0 {
            *slot = None;
            self.limits_with_overrides = self.limits_with_overrides.saturating_sub(1);
        }
        removed
    }

    /// Every override with its limit id.
    pub(super) fn list(&self) -> impl Iterator<Item = (usize, Override)> + '_ {
        self.per_limit
            .iter()
            .enumerate()
            .filter_map(|(id, o)| Some((id, o.as_ref()?)))
            .flat_map(|(id, o)| o.list().map(move |ov| (id, ov)))
    }

    /// Whether any limit has an override (checks skip the lookups when none has).
    pub(super) fn is_empty(&self) -> bool {
        self.limits_with_overrides == 0
    }

    /// Bytes the overrides take: the maps' slots (entries in place) and the values.
    pub(super) fn memory_bytes(&self) -> usize {
        self.per_limit
            .iter()
            .flatten()
            .map(LimitOverrides::memory_bytes)
            .sum()
    }
}
