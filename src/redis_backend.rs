//! The same quotas and decisions on a shared Redis (feature `redis`). Work in progress.
