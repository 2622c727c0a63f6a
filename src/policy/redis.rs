//! A policy's limits on Redis: the same groups, keys and all-or-nothing protocol as in
//! process, in one script call per set of limits (real, then shadow).

use alloc::vec::Vec;

use crate::composite::MAX_LIMITS;
use crate::decision::Decision;
use crate::error::CheckError;
use crate::redis_backend::{Fault, RedisBackend, RedisCheckError, RedisDecision, RedisLimit};

use super::check::{Answer, Call, States, NEVER_FITS};
use super::request::KeyParts;

/// The Redis key of a limit's key parts. One present part is its value as is and no
/// part is the empty key, so single-attribute and global keys name the same Redis keys
/// as earlier versions did; several parts are each length-prefixed (4 bytes,
/// big-endian), an absent part (under `on_missing = "shared"`) as `FF FF FF FF`, so no
/// two distinct keys collide.
fn redis_key(key: &KeyParts<'_>) -> Vec<u8> {
    match key.parts() {
        [] => Vec::new(),
        [Some(only)] => only.to_vec(),
        parts => {
            let mut out = Vec::new();
            for part in parts {
                match part {
                    Some(value) => {
                        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
                        out.extend_from_slice(&len.to_be_bytes());
                        out.extend_from_slice(value.get(..len as usize).unwrap_or(value));
                    }
                    None => out.extend_from_slice(&u32::MAX.to_be_bytes()),
                }
            }
            out
        }
    }
}

/// The Redis limits and keys of the call's keyed groups, in `execute`'s order, each limit
/// with its override's parameters (those an unlimited override exempts left out).
fn keyed<'p>(call: Call<'p>) -> Vec<(&'p RedisLimit, Vec<u8>)> {
    let mut keyed: Vec<(&RedisLimit, Vec<u8>)> = Vec::new();
    for m in call.met.iter() {
        if m.key.is_none() {
            continue;
        }
        let Some(key) = m.group.key_of(call.resolved) else {
            continue;
        };
        let key = redis_key(&key);
        for (index, base) in m.group.redis.iter().enumerate() {
            let limit = match m.overrides.get(index).copied().flatten() {
                None => base,
                Some(o) => match &o.redis {
                    Some(limit) => limit,
                    None => continue,
                },
            };
            keyed.push((limit, key.clone()));
        }
    }
    keyed
}

/// [`super::Policy`]'s `never_fits` on Redis: each limit peeked on its own (a cost it can
/// never fit: [`NEVER_FITS`]; Redis unreachable: denied). One call per limit, only for
/// a shadow set a cost can never fit.
pub(super) fn peek_each(backend: &RedisBackend, call: Call<'_>, states: &mut States) {
    for (limit, key) in keyed(call).iter().take(MAX_LIMITS) {
        let mut state = [Decision::EMPTY];
        let result = backend.peek_limits(&[(limit, key)], call.now, call.cost, &mut state);
        states.push(peeked(result, state[0]));
    }
}

/// [`peek_each`] on the async transport.
#[cfg(feature = "redis-tokio")]
pub(super) async fn peek_each_async(backend: &RedisBackend, call: Call<'_>, states: &mut States) {
    for (limit, key) in keyed(call).iter().take(MAX_LIMITS) {
        let mut state = [Decision::EMPTY];
        let result = backend
            .peek_limits_async(&[(limit, key)], call.now, call.cost, &mut state)
            .await;
        states.push(peeked(result, state[0]));
    }
}

/// One limit's state from its own peek.
fn peeked(result: Result<RedisDecision, RedisCheckError>, state: Decision) -> Decision {
    match result {
        Ok(_) => state,
        Err(RedisCheckError::Cost(_)) => NEVER_FITS,
        Err(_) => Decision::EMPTY,
    }
}

/// The (limit, key) pairs of one check, with a state slot for each in `states`.
fn pairs<'a>(
    keyed: &'a [(&'a RedisLimit, Vec<u8>)],
    states: &mut States,
) -> Vec<(&'a RedisLimit, &'a [u8])> {
    states.clear();
    for _ in keyed.iter().take(MAX_LIMITS) {
        states.push(Decision::EMPTY);
    }
    keyed
        .iter()
        .map(|(limit, key)| (*limit, key.as_slice()))
        .collect()
}

/// [`super::Policy`]'s `execute` on Redis.
pub(super) fn execute(
    backend: &RedisBackend,
    call: Call<'_>,
    states: &mut States,
) -> Result<Answer, CheckError> {
    let keyed = keyed(call);
    if keyed.is_empty() {
        return Ok(Answer::default());
    }
    let pairs = pairs(&keyed, states);
    let (now, cost) = (call.now, call.cost);
    answer(if call.mode.charges() {
        backend.check_limits(&pairs, now, cost, states)
    } else {
        backend.peek_limits(&pairs, now, cost, states)
    })
}

/// [`execute`] on the async transport: the same limits, keys and answer, each Redis call
/// awaited.
#[cfg(feature = "redis-tokio")]
pub(super) async fn execute_async(
    backend: &RedisBackend,
    call: Call<'_>,
    states: &mut States,
) -> Result<Answer, CheckError> {
    let keyed = keyed(call);
    let pairs = pairs(&keyed, states);
    if pairs.is_empty() {
        return Ok(Answer::default());
    }
    use crate::decision::Mode;
    let (now, cost) = (call.now, call.cost);
    let reply = match call.mode {
        Mode::Charge => backend.check_limits_async(&pairs, now, cost, states).await,
        Mode::Peek => backend.peek_limits_async(&pairs, now, cost, states).await,
    };
    answer(reply)
}

/// The backend's answer as the policy records it.
fn answer(result: Result<RedisDecision, RedisCheckError>) -> Result<Answer, CheckError> {
    match result {
        Ok(d) => Ok(Answer {
            fault: d.fault.map(|fault| (fault, d.decision)),
        }),
        Err(RedisCheckError::Cost(e)) => Err(e),
        // The limits were validated when the policy was built, and the non-`try` entry
        // points report Redis failures as decisions; answer as a closed failure would.
        Err(_) => Ok(Answer {
            fault: Some((
                Fault::Inconsistent,
                Decision {
                    allowed: false,
                    limit: 0,
                    remaining: 0,
                    reset_after: 0,
                    retry_after: 1,
                },
            )),
        }),
    }
}
