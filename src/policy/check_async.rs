//! One check on Redis's async transport (feature `redis-tokio`): the same phases as
//! [`Policy::check`] — collect the groups the request meets, the real limits'
//! all-or-nothing protocol, the shadow limits', the counters — with each Redis call
//! awaited instead of blocking the runtime's thread. The collecting and finishing phases
//! are the synchronous check's own; only the calls to Redis differ.

use crate::decision::Mode;

use crate::error::CheckError;
use crate::redis_backend::RedisBackend;

use super::check::{merge_never_fits, Collected, MetList, States};
use super::compile::Compiled;
use super::decision::{PolicyDecision, Verdict};
use super::overrides::OverrideSet;
use super::request::{resolve, Resolved};
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
        resolve(
            &self.attributes,
            &self.attribute_keys,
            request,
            &mut resolved,
        );
        let mut found = Collected::new();
        if !self.collect(overrides, request, &resolved, &mut found, result) {
            return Ok(());
        }
        let mut states = States::new();
        let answer = execute_set(
            backend,
            &found.real,
            &resolved,
            now,
            cost,
            mode,
            &mut states,
        )
        .await?;
        self.settle_real(&found.real, &resolved, &states, answer, mode, result);
        if !found.shadow.is_empty() {
            let shadow_mode = Self::shadow_mode(mode, result);
            let shadow = &found.shadow;
            if execute_set(
                backend,
                shadow,
                &resolved,
                now,
                cost,
                shadow_mode,
                &mut states,
            )
            .await
            .is_err()
            {
                // As in process: a cost a shadow limit can never fit is its denial.
                let mut unchanged = States::new();
                let _ = super::redis::execute_async(
                    backend,
                    shadow,
                    &resolved,
                    now,
                    0,
                    Mode::Peek,
                    &mut unchanged,
                )
                .await;
                states.clear();
                super::redis::peek_each_async(backend, shadow, &resolved, now, cost, &mut states)
                    .await;
                merge_never_fits(&mut states, &unchanged);
            }
            result.set_shadow(self, shadow, &states);
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
    met: &MetList<'_>,
    resolved: &Resolved<'_>,
    now: u64,
    cost: u64,
    mode: Mode,
    states: &mut States,
) -> Result<super::check::Answer, CheckError> {
    if met.iter().all(|m| m.key.is_some()) {
        return super::redis::execute_async(backend, met, resolved, now, cost, mode, states).await;
    }
    let answer =
        super::redis::execute_async(backend, met, resolved, now, cost, Mode::Peek, states).await?;
    let mut now_states = States::new();
    super::redis::execute_async(backend, met, resolved, now, 0, Mode::Peek, &mut now_states)
        .await?;
    for (state, unchanged) in states.iter_mut().zip(now_states) {
        if state.allowed {
            *state = unchanged;
        }
    }
    Ok(answer)
}
