//! Limit names for decision snapshots without allocating per request: one shared
//! [`LimitName`] per limit, looked up by the compiled policy's serial and the limit's
//! id, which name the same limit for as long as the serial lasts (a reload that renames
//! or renumbers limits has another serial), so a hit reads neither the policy's names
//! nor its limits. A miss (the first request a limit decides, or after a reload)
//! allocates the name and publishes a new table; hits are a lock-free load and a
//! comparison.

use std::sync::Arc;

use arc_swap::ArcSwap;
use ratecore::policy::LimitRef;

use crate::decision::LimitName;

/// Shared names by limit id.
#[derive(Debug, Default)]
pub(crate) struct NameCache {
    by_id: ArcSwap<Vec<Option<Cached>>>,
}

/// A shared name and the serial of the compiled policy it was taken from.
type Cached = (u64, Arc<LimitName>);

/// Ids beyond this are named without the cache: a policy has at most a few dozen limits,
/// and the bound keeps a hostile id from sizing the table.
const MAX_CACHED: usize = 1024;

impl NameCache {
    /// The shared name of limit `id` of the compiled policy `serial`, if cached.
    pub(crate) fn cached(&self, serial: u64, id: usize) -> Option<Arc<LimitName>> {
        match self.by_id.load().get(id) {
            Some(Some((cached, name))) if *cached == serial => Some(Arc::clone(name)),
            _ => None,
        }
    }

    /// The shared name of `limit` of the compiled policy `serial`.
    pub(crate) fn get(&self, serial: u64, limit: &LimitRef<'_>) -> Arc<LimitName> {
        if let Some(name) = self.cached(serial, limit.id) {
            return name;
        }
        let name = Arc::new(LimitName {
            rule: limit.rule.to_owned(),
            limit: limit.name.to_owned(),
        });
        if limit.id < MAX_CACHED {
            // Copy-on-write: concurrent misses may each publish, and the last one wins;
            // every published entry is correct for its serial and id, so a lost update
            // only costs another miss later.
            self.by_id.rcu(|current| {
                let mut next = Vec::clone(current);
                if next.len() <= limit.id {
                    next.resize(limit.id + 1, None);
                }
                if let Some(slot) = next.get_mut(limit.id) {
                    *slot = Some((serial, Arc::clone(&name)));
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
        let first = cache.get(7, &limit(3, "api", "per-key"));
        assert!(Arc::ptr_eq(
            &first,
            &cache.get(7, &limit(3, "api", "per-key"))
        ));
        assert!(cache.cached(7, 3).is_some_and(|n| Arc::ptr_eq(&n, &first)));
        // After a reload (another serial), id 3 is another limit: the cached name must
        // not be reused.
        assert!(cache.cached(8, 3).is_none());
        let renamed = cache.get(8, &limit(3, "api", "per-user"));
        assert_eq!(
            (renamed.rule.as_str(), renamed.limit.as_str()),
            ("api", "per-user")
        );
        let moved = cache.get(8, &limit(0, "other", "per-key"));
        assert_eq!(
            (moved.rule.as_str(), moved.limit.as_str()),
            ("other", "per-key")
        );
        // Ids beyond the bound are named, uncached.
        let far = cache.get(8, &limit(usize::MAX, "r", "l"));
        assert_eq!(far.limit, "l");
        assert!(cache.cached(8, usize::MAX).is_none());
    }
}
