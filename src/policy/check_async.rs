//! One check on Redis's async transport (feature `redis-tokio`): the same phases as
//! [`Policy::check`] — collect the groups the request meets, the real limits'
//! all-or-nothing protocol, the shadow limits', the counters — with each Redis call
//! awaited instead of blocking the runtime's thread. The collecting and finishing phases
//! are the synchronous check's own; only the calls to Redis differ.

use crate::decision::Mode;

use crate::error::CheckError;
use crate::redis_backend::RedisBackend;

use super::check::{
    keep_unchanged_where_allowed, merge_never_fits, Answer, Call, Collected, States,
};
use super::compile::Compiled;
use super::decision::{PolicyDecision, Verdict};
use super::overrides::OverrideSet;
use super::redis;
use super::request::Resolved;
use super::{Policy, Request};

impl Policy {
    /// [`check`](Self::check), awaiting Redis instead of blocking: for a policy built
    /// [`with_redis`](Self::with_redis), its limits run on the backend's async transport
    /// (one multiplexed connection shared by every task); a policy in process decides at
    /// once, exactly as `check` does. The decision is the one `check` returns for the
    /// same sequence, faults and failure decisions included.
    ///
    /// The future holds the policy version it started on, so a reload meanwhile does not
    /// disturb it. Runs on a tokio runtime with time enabled.
    ///
    /// # Errors
    /// As for [`check`](Self::check).
    pub async fn check_async(
        &self,
        request: &Request<'_>,
        now: u64,
        cost: u64,
    ) -> Result<PolicyDecision<'_>, CheckError> {
        self.run_async(request, now, cost, Mode::Charge).await
    }

    /// [`peek`](Self::peek), awaiting Redis instead of blocking.
    ///
    /// # Errors
    /// As for [`check`](Self::check).
    pub async fn peek_async(
        &self,
        request: &Request<'_>,
        now: u64,
        cost: u64,
    ) -> Result<PolicyDecision<'_>, CheckError> {
        self.run_async(request, now, cost, Mode::Peek).await
    }

    async fn run_async(
        &self,
        request: &Request<'_>,
        now: u64,
        cost: u64,
        mode: Mode,
    ) -> Result<PolicyDecision<'_>, CheckError> {
        // An owned reference to the version in force, held across the awaits.
        let version = self.current.load_full();
        let Some(backend) = version.compiled.redis.clone() else {
            drop(version);
            return if mode.charges() {
                self.check(request, now, cost)
            } else {
                self.peek(request, now, cost)
            };
        };
        let mut verdict = Verdict::new();
        version
            .compiled
            .run_async(
                &backend,
                &version.overrides,
                request,
                now,
                cost,
                mode,
                &mut verdict,
            )
            .await?;
        Ok(PolicyDecision::new(
            arc_swap::Guard::from_inner(version),
            verdict,
        ))
    }
}

impl Compiled {
    /// `run`'s phases with the Redis calls awaited.
    #[allow(clippy::too_many_arguments)]
    async fn run_async(
        &self,
        backend: &RedisBackend,
        overrides: &OverrideSet,
        request: &Request<'_>,
        now: u64,
        cost: u64,
        mode: Mode,
        result: &mut Verdict,
    ) -> Result<(), CheckError> {
        let mut resolved = Resolved::new();
        let mut found = Collected::new();
        if !self.prepare(overrides, request, &mut resolved, &mut found, result) {
            return Ok(());
        }
        let mut states = States::new();
        let real = Call::new(&found.real, &resolved, now, cost, mode);
        let answer = execute_set(backend, real, &mut states).await?;
        self.settle_real(real, &states, answer, result);
        if let Some(shadow) = Self::shadow_call(&found, &resolved, real, result) {
            if execute_set(backend, shadow, &mut states).await.is_err() {
                // As in process: a cost a shadow limit can never fit is its denial.
                let mut unchanged = States::new();
                let _ = redis::execute_async(backend, shadow.peek(0), &mut unchanged).await;
                states.clear();
                redis::peek_each_async(backend, shadow, &mut states).await;
                merge_never_fits(&mut states, &unchanged);
            }
            result.set_shadow(self, &found.shadow, &states);
        }
        self.count(&found, mode, result);
        Ok(())
    }
}

/// `execute_set` on the async transport: a set holding a limit that denies for a missing
/// key attribute is only peeked, and each limit that would admit reports its unchanged
/// state (a cost-0 peek).
async fn execute_set(
    backend: &RedisBackend,
    call: Call<'_>,
    states: &mut States,
) -> Result<Answer, CheckError> {
    if call.all_keyed() {
        return redis::execute_async(backend, call, states).await;
    }
    let answer = redis::execute_async(backend, call.peek(call.cost), states).await?;
    let mut now_states = States::new();
    redis::execute_async(backend, call.peek(0), &mut now_states).await?;
    keep_unchanged_where_allowed(states, now_states);
    Ok(answer)
}
