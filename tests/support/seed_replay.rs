//! The demo's HTTP exchanges (`examples/seed_policies/scenarios.rs`) checked against a
//! policy: every verdict is the seed's, and a denial's `Retry-After` is never early.
//! Shared by the in-process demo test and the Redis policy test.

use ratecore::policy::Policy;

use crate::scenarios::{http_exchanges, POLICY_DIR};

/// Replays every exchange of every seed policy file through the policy `build` makes of
/// it, asserting the seed's verdict for each and, for a denial for rate (not for a
/// missing key), that the same request is admitted at `now + retry_after`.
pub fn assert_seed_exchanges(mut build: impl FnMut(&str) -> Policy) {
    for (name, exchanges, _) in http_exchanges() {
        let policy = build(&format!("{POLICY_DIR}/{name}"));
        for (index, exchange) in exchanges.iter().enumerate() {
            let request = exchange.request();
            let decision = policy
                .check(&request, exchange.now, 1)
                .expect("cost 1 fits");
            assert_eq!(
                decision.allowed(),
                exchange.admitted,
                "{name}: request #{index} at {} ns ({})",
                exchange.now,
                exchange.label
            );
            if decision.allowed() || decision.denied_for_missing_key() {
                continue;
            }
            let retry = decision.decision().retry_after;
            let again = policy
                .peek(&request, exchange.now + retry, 1)
                .expect("fits");
            assert!(again.allowed(), "{name}: admitted again after Retry-After");
        }
    }
}
