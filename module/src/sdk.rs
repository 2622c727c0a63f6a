//! The server's module API: the `redis-module` crate (feature `redis`, the default) or its
//! Valkey fork, `valkey-module` (feature `valkey`), under one set of names. Both keep
//! the C API's `RedisModule_*` names in `raw`.

#[cfg(feature = "redis")]
pub use redis_module::{raw, Context, RedisString as ServerString, Status};
#[cfg(all(feature = "valkey", not(feature = "redis")))]
pub use valkey_module::{raw, Context, Status, ValkeyString as ServerString};

/// Redis's (or Valkey's) allocator, which accounts the module's memory.
#[cfg(all(feature = "redis", not(test)))]
pub type Alloc = redis_module::alloc::RedisAlloc;
#[cfg(all(feature = "redis", not(test)))]
pub const ALLOC: Alloc = redis_module::alloc::RedisAlloc;
#[cfg(all(feature = "valkey", not(feature = "redis"), not(test)))]
pub type Alloc = valkey_module::alloc::ValkeyAlloc;
#[cfg(all(feature = "valkey", not(feature = "redis"), not(test)))]
pub const ALLOC: Alloc = valkey_module::alloc::ValkeyAlloc;
