//! One command: key positions for `COMMAND GETKEYS`, then parse, read every key, apply
//! the check, write and replicate the new values, reply. A panic becomes an error reply.

use std::panic::{catch_unwind, AssertUnwindSafe};

use ratecore::redis_state::{apply, ApplyError, KeyOutcome};
use ratecore::{Decision, Mode};
use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

use crate::args::{self, Now};
use crate::keys::{now_ms, OpenKey};

/// Runs one `RATECORE.CHECK` (`mode` charges) or `RATECORE.PEEK`.
pub fn command(ctx: &Context, args: &[RedisString], mode: Mode) -> RedisResult {
    // No unwinding may cross into the server: a bug becomes an error reply. Every write
    // happens after the last step that could panic on input (parsing and deciding).
    catch_unwind(AssertUnwindSafe(|| run(ctx, args, mode))).unwrap_or_else(|_| {
        Err(RedisError::Str(
            "ERR ratecore: internal error (the check was not applied)",
        ))
    })
}

fn run(ctx: &Context, args: &[RedisString], mode: Mode) -> RedisResult {
    let raw: Vec<&[u8]> = args.iter().map(RedisString::as_slice).collect();
    if ctx.is_keys_position_request() {
        if let Ok(keys) = args::key_count(&raw) {
            for pos in 2..2 + keys {
                // Cannot truncate: at most 2 + MAX_KEYS.
                ctx.key_at_pos(pos as i32);
            }
        }
        return Ok(RedisValue::NoReply);
    }
    let check =
        args::parse(&raw).map_err(|e| RedisError::String(format!("ERR ratecore: {}", e.0)))?;
    let names = &args[2..2 + check.keys];
    for (index, name) in names.iter().enumerate() {
        if let Some(first) = names[..index]
            .iter()
            .position(|other| other.as_slice() == name.as_slice())
        {
            return Err(RedisError::String(format!(
                "ERR ratecore: key {} repeats key {}",
                index + 1,
                first + 1
            )));
        }
    }
    let now = match check.now {
        Now::Caller(now) => now,
        // Whole milliseconds on Redis 7.0 (its module API has no finer clock).
        Now::Server => u64::try_from(now_ms())
            .unwrap_or(0)
            .saturating_mul(1_000_000),
    };
    let opened: Vec<OpenKey> = names
        .iter()
        .map(|name| OpenKey::open(ctx, name, mode.charges()))
        .collect();
    let olds = opened
        .iter()
        .map(OpenKey::read)
        .collect::<Result<Vec<_>, _>>()?;
    let old_slices: Vec<&[u8]> = olds.iter().map(Vec::as_slice).collect();
    let mut outcomes = Vec::with_capacity(check.keys);
    let decision = apply(
        &check.limits,
        &old_slices,
        now,
        check.cost,
        mode,
        check.min_ttl_ms,
        &mut outcomes,
    )
    .map_err(|e| match e {
        ApplyError::State(index, why) => RedisError::String(format!(
            "ERR ratecore: key {} holds a value of another layout ({why})",
            index + 1
        )),
        ApplyError::Cost(e) => RedisError::String(format!("ERR ratecore: {e}")),
        ApplyError::Limits => RedisError::Str("ERR ratecore: one limit per key, at most 16"),
    })?;
    if outcomes.iter().any(|o| o.value.is_some()) {
        let base = now_ms();
        for ((key, name), outcome) in opened.iter().zip(names).zip(&outcomes) {
            let Some(value) = &outcome.value else {
                continue;
            };
            // Cannot overflow: a TTL is at most ceil(2^64 ns / 10^6) ms.
            let at = base.saturating_add(i64::try_from(outcome.ttl_ms).unwrap_or(i64::MAX));
            key.write(ctx, value, at)?;
            // Replicas and the AOF get the effect with its absolute expiry, so they reach
            // the same value and deadline without deciding again.
            let at = at.to_string();
            ctx.replicate(
                "SET",
                &[name.as_slice(), value.as_slice(), b"PXAT", at.as_bytes()][..],
            );
        }
    }
    let per_key = outcomes
        .iter()
        .zip(&olds)
        .map(|(outcome, old)| key_reply(outcome, old))
        .collect();
    let mut reply = decision_fields(&decision);
    reply.push(int(now));
    reply.push(RedisValue::Array(per_key));
    Ok(RedisValue::Array(reply))
}

/// A RESP integer; values past `i64::MAX` (durations beyond 292 years, huge limits) are
/// clamped to it.
fn int(v: u64) -> RedisValue {
    RedisValue::Integer(i64::try_from(v).unwrap_or(i64::MAX))
}

fn decision_fields(d: &Decision) -> Vec<RedisValue> {
    vec![
        RedisValue::Integer(i64::from(d.allowed)),
        int(d.limit),
        int(d.remaining),
        int(d.reset_after),
        int(d.retry_after),
    ]
}

fn key_reply(outcome: &KeyOutcome, old: &[u8]) -> RedisValue {
    let mut fields = decision_fields(&outcome.decision);
    fields.push(RedisValue::StringBuffer(old.to_vec()));
    fields.push(RedisValue::StringBuffer(outcome.written.clone()));
    fields.push(int(outcome.ttl_ms));
    RedisValue::Array(fields)
}
