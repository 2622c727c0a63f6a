//! Limit names for decision snapshots without allocating per request: one shared
//! [`LimitName`] per limit, looked up by the limit's id and checked against the names the
//! decision carries, so a reload that renames or renumbers limits is never misreported.
//! A miss (the first request a limit decides, or after a reload) allocates the name and
//! publishes a new table; hits are a lock-free load and two short comparisons.

use std::sync::Arc;

use arc_swap::ArcSwap;
use ratecore::policy::LimitRef;

use crate::decision::LimitName;

/// Shared names by limit id.
#[derive(Debug, Default)]
pub(crate) struct NameCache {
    by_id: ArcSwap<Vec<Option<Arc<LimitName>>>>,
}

/// Ids beyond this are named without the cache: a policy has at most a few dozen limits,
/// and the bound keeps a hostile id from sizing the table.
const MAX_CACHED: usize = 1024;

impl NameCache {
    /// The shared name of `limit`.
    pub(crate) fn get(&self, limit: &LimitRef<'_>) -> Arc<LimitName> {
        let matches = |name: &LimitName| name.rule == limit.rule && name.limit == limit.name;
        if let Some(Some(name)) = self.by_id.load().get(limit.id) {
            if matches(name) {
                return Arc::clone(name);
            }
        }
        let name = Arc::new(LimitName {
            rule: limit.rule.to_owned(),
            limit: limit.name.to_owned(),
        });
        if limit.id < MAX_CACHED {
            // Copy-on-write: concurrent misses may each publish, and the last one wins;
            // every published entry is correct for its id, so a lost update only costs
            // another miss later.
            self.by_id.rcu(|current| {
                let mut next = Vec::clone(current);
                if next.len() <= limit.id {
                    next.resize(limit.id + 1, None);
                }
                if let Some(slot) = next.get_mut(limit.id) {
                    *slot = Some(Arc::clone(&name));
                }
                next
            });
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit<'a>(id: usize, rule: &'a str, name: &'a str) -> LimitRef<'a> {
        LimitRef {
            id,
            rule,
            description: "",
            name,
            key: &[],
            period: 1,
            shadow: false,
        }
    }

    #[test]
    fn hits_share_and_renames_are_never_misreported() {
        let cache = NameCache::default();
        let first = cache.get(&limit(3, "api", "per-key"));
        assert!(Arc::ptr_eq(&first, &cache.get(&limit(3, "api", "per-key"))));
        // After a reload, id 3 is another limit: the cached name must not be reused.
        let renamed = cache.get(&limit(3, "api", "per-user"));
        assert_eq!(
            (renamed.rule.as_str(), renamed.limit.as_str()),
            ("api", "per-user")
        );
        let moved = cache.get(&limit(0, "other", "per-key"));
        assert_eq!(
            (moved.rule.as_str(), moved.limit.as_str()),
            ("other", "per-key")
        );
        // Ids beyond the bound are named, uncached.
        let far = cache.get(&limit(usize::MAX, "r", "l"));
        assert_eq!(far.limit, "l");
    }
}
