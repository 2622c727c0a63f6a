//! Limit specs for the table tests.

use ratecore::{Algorithm, LimitSpec, Quota};

/// `limit` per `period` with `algorithm`.
pub fn spec(algorithm: Algorithm, limit: u64, period: u64) -> LimitSpec {
    LimitSpec {
        algorithm,
        quota: Quota::new(limit, period).unwrap(),
    }
}

/// Every algorithm alone, named, at `limit` per `period` (the strict window in
/// `sub_windows` sub-windows), each as a one-limit table's limits.
pub fn each_algorithm(
    limit: u64,
    period: u64,
    sub_windows: u32,
) -> Vec<(&'static str, Vec<LimitSpec>)> {
    [
        ("gcra", Algorithm::Gcra),
        ("fixed", Algorithm::FixedWindow),
        ("approx", Algorithm::SlidingWindowApprox),
        ("strict", Algorithm::SlidingWindowStrict { sub_windows }),
    ]
    .into_iter()
    .map(|(name, algorithm)| (name, vec![spec(algorithm, limit, period)]))
    .collect()
}
