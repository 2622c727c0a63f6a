//! A Redis module running ratecore's own algorithms inside the server: one command per
//! check, for every algorithm and for composites of several keys.
//!
//! ```text
//! RATECORE.CHECK numkeys key [key ...] limit [limit ...] (NOW ns | TIME) [COST n] [MINTTL ms]
//!                [DIGEST]
//! RATECORE.PEEK  numkeys key [key ...] limit [limit ...] (NOW ns | TIME) [COST n] [DIGEST]
//! limit: GCRA limit period_ns burst | FIXED limit period_ns | APPROX limit period_ns
//!      | STRICT limit period_ns sub_windows
//! ```
//!
//! A check decides every key before it writes any (all or nothing, as
//! [`ratecore::Composite`]), with [`ratecore::redis_state::apply`]: the code the Redis
//! client uses to verify the Lua script. It stores the same big-endian strings under the
//! same keys as the Lua script, so clients of either share state. See `docs/redis.md` in
//! the repository for the reply, the replication and the clock.

#[cfg(all(feature = "redis", feature = "valkey"))]
compile_error!("features `redis` and `valkey` are exclusive: build with one");
#[cfg(not(any(feature = "redis", feature = "valkey")))]
compile_error!("enable feature `redis` (the default) or `valkey`");

mod args;
mod check;
mod keys;
mod sdk;

pub use args::{key_count, parse, ArgError, Check, Now, MAX_KEYS};

use std::os::raw::{c_char, c_int};

use sdk::{raw, Context, ServerString, Status};

/// Inside the server, Redis's allocator (its memory accounting sees the module); in unit
/// tests, which run without a server, the system's.
#[cfg(not(test))]
type Allocator = sdk::Alloc;
#[cfg(test)]
type Allocator = std::alloc::System;
#[cfg(not(test))]
const ALLOCATOR: Allocator = sdk::ALLOC;
#[cfg(test)]
const ALLOCATOR: Allocator = std::alloc::System;

/// `RATECORE.CHECK` (`CHARGE`) or `RATECORE.PEEK`.
extern "C" fn command<const CHARGE: bool>(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    let mode = if CHARGE {
        ratecore::Mode::Charge
    } else {
        ratecore::Mode::Peek
    };
    check::command(ctx, argv, argc, mode)
}

type Handler =
    extern "C" fn(*mut raw::RedisModuleCtx, *mut *mut raw::RedisModuleString, c_int) -> c_int;

/// Registers the commands with their own handlers (the arguments are read in place, and
/// the reply is written directly). Keys are declared through the getkeys API (their
/// position depends on `numkeys`); Redis 7.0 has no module ACL categories.
fn register(ctx: &Context, _args: &[ServerString]) -> Status {
    let commands: [(&std::ffi::CStr, Handler, &std::ffi::CStr); 2] = [
        (
            c"ratecore.check",
            command::<true>,
            c"write deny-oom getkeys-api",
        ),
        (c"ratecore.peek", command::<false>, c"readonly getkeys-api"),
    ];
    for (name, handler, flags) in commands {
        // SAFETY: called from the module's `OnLoad` with its context; the names and flags
        // are NUL-terminated and static; the function pointer is set by the module init.
        let status = unsafe {
            raw::RedisModule_CreateCommand.unwrap()(
                ctx.get_raw(),
                name.as_ptr().cast::<c_char>(),
                Some(handler),
                flags.as_ptr().cast::<c_char>(),
                0,
                0,
                0,
            )
        };
        if status != raw::REDISMODULE_OK as c_int {
            return Status::Err;
        }
    }
    Status::Ok
}

// The macro's generated entry points (`RedisModule_OnLoad`, ...) carry no docs.
#[allow(missing_docs)]
mod entry {
    use super::*;

    #[cfg(feature = "redis")]
    redis_module::redis_module! {
        name: "ratecore",
        version: 1,
        allocator: (Allocator, ALLOCATOR),
        data_types: [],
        init: register,
    }

    #[cfg(all(feature = "valkey", not(feature = "redis")))]
    valkey_module::valkey_module! {
        name: "ratecore",
        version: 1,
        allocator: (Allocator, ALLOCATOR),
        data_types: [],
        init: register,
        commands: [],
    }
}
