//! A Redis module running ratecore's own algorithms inside the server: one command per
//! check, for every algorithm and for composites of several keys.
//!
//! ```text
//! RATECORE.CHECK numkeys key [key ...] limit [limit ...] (NOW ns | TIME) [COST n] [MINTTL ms]
//! RATECORE.PEEK  numkeys key [key ...] limit [limit ...] (NOW ns | TIME) [COST n]
//! limit: GCRA limit period_ns burst | FIXED limit period_ns | APPROX limit period_ns
//!      | STRICT limit period_ns sub_windows
//! ```
//!
//! A check decides every key before it writes any (all or nothing, as
//! [`ratecore::Composite`]), with [`ratecore::redis_state::apply`]: the code the Redis
//! client uses to verify the Lua script. It stores the same big-endian strings under the
//! same keys as the Lua script, so clients of either share state. See `docs/redis.md` in
//! the repository for the reply, the replication and the clock.

mod args;
mod check;
mod keys;

pub use args::{key_count, parse, ArgError, Check, Now, MAX_KEYS};

use redis_module::{redis_module, Context, RedisResult, RedisString};

fn check_command(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    check::command(ctx, &args, ratecore::Mode::Charge)
}

fn peek_command(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    check::command(ctx, &args, ratecore::Mode::Peek)
}

/// Inside the server, Redis's allocator (its memory accounting sees the module); in unit
/// tests, which run without a server, the system's.
#[cfg(not(test))]
type Allocator = redis_module::alloc::RedisAlloc;
#[cfg(test)]
type Allocator = std::alloc::System;
#[cfg(not(test))]
const ALLOCATOR: Allocator = redis_module::alloc::RedisAlloc;
#[cfg(test)]
const ALLOCATOR: Allocator = std::alloc::System;

// The macro's generated entry points (`RedisModule_OnLoad`, ...) carry no docs.
#[allow(missing_docs)]
mod entry {
    use super::*;

    redis_module! {
        name: "ratecore",
        version: 1,
        allocator: (Allocator, ALLOCATOR),
        data_types: [],
        commands: [
            // Redis 7.0 has no module ACL categories: naming one fails the load.
            ["ratecore.check", check_command, "write deny-oom getkeys-api", 0, 0, 0, AclCategory::None],
            ["ratecore.peek", peek_command, "readonly getkeys-api", 0, 0, 0, AclCategory::None],
        ],
    }
}
