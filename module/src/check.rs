//! One command: key positions for `COMMAND GETKEYS`, then parse, read every key, apply
//! the check, write and replicate the new values, reply. A panic becomes an error reply.

use std::ffi::CString;
use std::os::raw::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};

use arrayvec::ArrayVec;

use crate::sdk::{raw, Context};
use ratecore::redis_state::{apply, digest as state_digest, ApplyError, KeyOutcome, Outcomes};
use ratecore::{Decision, Mode};

use crate::args::{self, Now, MAX_KEYS};
use crate::keys::{now_ms, OpenKey};

/// Runs one `RATECORE.CHECK` (`mode` charges) or `RATECORE.PEEK`.
pub fn command(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    mode: Mode,
) -> c_int {
    let argv: &[*mut raw::RedisModuleString] = match usize::try_from(argc) {
        Ok(len) if !argv.is_null() => {
            // SAFETY: Redis passes `argc` valid argument strings at `argv`, alive for the
            // whole call.
            unsafe { std::slice::from_raw_parts(argv, len) }
        }
        _ => &[],
    };
    // No unwinding may cross into the server: a bug becomes an error reply. Every write
    // happens after the last step that could panic on input (parsing and deciding), and
    // the reply is written last.
    let outcome = catch_unwind(AssertUnwindSafe(|| run(ctx, argv, mode)))
        .unwrap_or_else(|_| Err(String::from("ERR ratecore: internal error")));
    if let Err(message) = outcome {
        // Messages quote arguments as printable ASCII (no NUL, no line breaks).
        let message = CString::new(message)
            .unwrap_or_else(|_| CString::from(c"ERR ratecore: internal error"));
        // SAFETY: the command's context and a NUL-terminated message.
        unsafe { raw::RedisModule_ReplyWithError.unwrap()(ctx, message.as_ptr()) };
    }
    raw::REDISMODULE_OK as c_int
}

fn bytes<'a>(arg: *mut raw::RedisModuleString) -> &'a [u8] {
    let mut len = 0;
    let ptr = raw::string_ptr_len(arg, &mut len);
    // SAFETY: an argument string of this call: `len` bytes at `ptr`, alive until it
    // returns (the borrow does not outlive `command`).
    unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }
}

fn run(
    ctx: *mut raw::RedisModuleCtx,
    argv: &[*mut raw::RedisModuleString],
    mode: Mode,
) -> Result<(), String> {
    // On the stack for every well-formed check (at most 2 + 16 keys + 16 limits of 5 +
    // 8 option words); a longer, malformed vector on the heap.
    let mut short: ArrayVec<&[u8], 128> = ArrayVec::new();
    let mut long: Vec<&[u8]> = Vec::new();
    let raw_args: &[&[u8]] = if argv.len() <= short.capacity() {
        short.extend(argv.iter().map(|&a| bytes(a)));
        &short
    } else {
        long.extend(argv.iter().map(|&a| bytes(a)));
        &long
    };
    let context = Context::new(ctx);
    if context.is_keys_position_request() {
        if let Ok(keys) = args::key_count(raw_args) {
            for pos in 2..2 + keys {
                // Cannot truncate: at most 2 + MAX_KEYS.
                context.key_at_pos(pos as i32);
            }
        }
        return Ok(());
    }
    #[cfg(feature = "test-hooks")]
    if raw_args.last() == Some(&&b"RATECORE-TEST-PANIC"[..]) {
        panic!("a test asked for a panic");
    }
    let check = args::parse(raw_args).map_err(|e| format!("ERR ratecore: {}", e.0))?;
    let names = &argv[2..2 + check.keys];
    let name_bytes = &raw_args[2..2 + check.keys];
    for (index, name) in name_bytes.iter().enumerate() {
        if let Some(first) = name_bytes[..index].iter().position(|other| other == name) {
            return Err(format!(
                "ERR ratecore: key {} repeats key {}",
                index + 1,
                first + 1
            ));
        }
    }
    let now = match check.now {
        Now::Caller(now) => now,
        // Whole milliseconds on Redis 7.0 (its module API has no finer clock).
        Now::Server => u64::try_from(now_ms())
            .unwrap_or(0)
            .saturating_mul(1_000_000),
    };
    let opened: ArrayVec<OpenKey, MAX_KEYS> = names
        .iter()
        .map(|&name| OpenKey::open(ctx, name, mode.charges()))
        .collect();
    let values = opened
        .iter()
        .map(OpenKey::read)
        .collect::<Result<ArrayVec<_, MAX_KEYS>, _>>()?;
    let olds: ArrayVec<&[u8], MAX_KEYS> = values.iter().map(|old| &**old).collect();
    let mut outcomes = Outcomes::new();
    let decision = apply(
        &check.limits,
        &olds,
        now,
        check.cost,
        mode,
        check.min_ttl_ms,
        &mut outcomes,
    )
    .map_err(|e| match e {
        ApplyError::State(index, why) => format!(
            "ERR ratecore: key {} holds a value of another layout ({why})",
            index + 1
        ),
        ApplyError::Cost(e) => format!("ERR ratecore: {e}"),
        ApplyError::Limits => String::from("ERR ratecore: one limit per key, at most 16"),
    })?;
    if outcomes.iter().any(|o| !o.written.is_empty()) {
        let base = now_ms();
        for (((key, &name), outcome), old) in opened.iter().zip(names).zip(&outcomes).zip(&olds) {
            let Some(value) = outcome.value(old) else {
                continue;
            };
            // Cannot overflow: a TTL is at most ceil(2^64 ns / 10^6) ms.
            let at = base.saturating_add(i64::try_from(outcome.ttl_ms).unwrap_or(i64::MAX));
            // Cannot fail after the first key: every key here is an open string (or
            // empty) key opened for writing, which is all a write needs.
            key.write(ctx, &value, old.len(), at)?;
            replicate_set(ctx, name, &value, at);
            notify_write(ctx, name, outcome.writes_slot());
        }
    }
    reply(ctx, check.digest, &decision, now, &outcomes, &olds);
    Ok(())
}

/// Replicas and the AOF get the effect, `SET key value PXAT at`, so they reach the same
/// value and deadline without deciding again.
fn replicate_set(
    ctx: *mut raw::RedisModuleCtx,
    name: *mut raw::RedisModuleString,
    value: &[u8],
    at: i64,
) {
    // The deadline as decimal digits, passed as a buffer (`b`): the server's own `l`
    // builds a string object and a separate buffer for it.
    let mut digits = itoa::Buffer::new();
    let at = digits.format(at).as_bytes();
    // SAFETY: the command's context; format "sbcb": a module string (the key argument,
    // alive for the call), a buffer and its length, a C string, a buffer and its length
    // — exactly the variadic arguments passed. The server copies what it keeps.
    unsafe {
        raw::RedisModule_Replicate.unwrap()(
            ctx,
            c"SET".as_ptr().cast::<c_char>(),
            c"sbcb".as_ptr().cast::<c_char>(),
            name,
            value.as_ptr().cast::<c_char>(),
            value.len(),
            c"PXAT".as_ptr().cast::<c_char>(),
            at.as_ptr().cast::<c_char>(),
            at.len(),
        );
    }
}

/// The keyspace events the script's write raises (`set`, or `setrange` for a strict
/// window's slot, then `expire`), so that subscribers see the module's writes as they
/// see the script's.
fn notify_write(ctx: *mut raw::RedisModuleCtx, name: *mut raw::RedisModuleString, slot: bool) {
    let write = if slot { c"setrange" } else { c"set" };
    for (kind, event) in [
        (raw::REDISMODULE_NOTIFY_STRING, write),
        (raw::REDISMODULE_NOTIFY_GENERIC, c"expire"),
    ] {
        // SAFETY: the command's context, a static event name and the key argument, alive
        // for the call; the server copies what it keeps.
        unsafe {
            raw::RedisModule_NotifyKeyspaceEvent.unwrap()(
                ctx,
                kind as c_int,
                event.as_ptr().cast::<c_char>(),
                name,
            );
        }
    }
}

/// A RESP integer; values past `i64::MAX` (durations beyond 292 years, huge limits) are
/// clamped to it.
fn int(ctx: *mut raw::RedisModuleCtx, v: u64) {
    raw::reply_with_long_long(ctx, i64::try_from(v).unwrap_or(i64::MAX));
}

fn fields(ctx: *mut raw::RedisModuleCtx, d: &Decision) {
    int(ctx, u64::from(d.allowed));
    int(ctx, d.limit);
    int(ctx, d.remaining);
    int(ctx, d.reset_after);
    int(ctx, d.retry_after);
}

fn buffer(ctx: *mut raw::RedisModuleCtx, b: &[u8]) {
    raw::reply_with_string_buffer(ctx, b.as_ptr().cast::<c_char>(), b.len());
}

/// `[allowed, limit, remaining, reset_after, retry_after, now, [per key: allowed, limit,
/// remaining, reset_after, retry_after, old value, written, ttl_ms]]`; with `DIGEST`,
/// `[allowed, digest, old value per key]`: the client replays the check on the values
/// read and compares the digest of its own fields with this one.
fn reply(
    ctx: *mut raw::RedisModuleCtx,
    digest: bool,
    decision: &Decision,
    now: u64,
    outcomes: &[KeyOutcome],
    olds: &[&[u8]],
) {
    if digest {
        // Cannot truncate: at most MAX_KEYS.
        raw::reply_with_array(ctx, (2 + olds.len()) as _);
        int(ctx, u64::from(decision.allowed));
        // The digest's 64 bits as a RESP integer (read back with the same cast).
        raw::reply_with_long_long(ctx, state_digest(decision, now, outcomes) as i64);
        for old in olds {
            buffer(ctx, old);
        }
        return;
    }
    raw::reply_with_array(ctx, 7);
    fields(ctx, decision);
    int(ctx, now);
    // Cannot truncate: at most MAX_KEYS.
    raw::reply_with_array(ctx, outcomes.len() as _);
    for (outcome, old) in outcomes.iter().zip(olds) {
        raw::reply_with_array(ctx, 8);
        fields(ctx, &outcome.decision);
        buffer(ctx, old);
        buffer(ctx, &outcome.written);
        int(ctx, outcome.ttl_ms);
    }
}
