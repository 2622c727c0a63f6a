//! The keys of one check, opened through the module key API: read each value, then write
//! new values with an absolute expiry. Strings only, as the Lua script stores them.

use arrayvec::ArrayVec;

use crate::sdk::{raw, ServerString};

/// A value read, copied out of the key: on the stack when short (every state but a
/// strict window's), so that reading allocates nothing.
pub enum Value {
    Short(ArrayVec<u8, 32>),
    Long(Vec<u8>),
}

impl core::ops::Deref for Value {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Short(bytes) => bytes,
            Self::Long(bytes) => bytes,
        }
    }
}

impl From<&[u8]> for Value {
    fn from(bytes: &[u8]) -> Self {
        ArrayVec::try_from(bytes).map_or_else(|_| Self::Long(bytes.to_vec()), Self::Short)
    }
}

/// One opened key, closed on drop.
pub struct OpenKey {
    key: *mut raw::RedisModuleKey,
}

impl Drop for OpenKey {
    fn drop(&mut self) {
        raw::close_key(self.key);
    }
}

impl OpenKey {
    /// Opens `name` for reading, and for writing when `write`.
    pub fn open(
        ctx: *mut raw::RedisModuleCtx,
        name: *mut raw::RedisModuleString,
        write: bool,
    ) -> Self {
        let mode = if write {
            raw::KeyMode::READ | raw::KeyMode::WRITE
        } else {
            raw::KeyMode::READ
        };
        Self {
            key: raw::open_key(ctx, name, mode),
        }
    }

    /// The stored value (empty for a missing key); `WRONGTYPE` for a key that is not a
    /// string.
    pub fn read(&self) -> Result<Value, String> {
        if self.key.is_null() {
            return Ok(Value::from(&[][..]));
        }
        // SAFETY: `self.key` is a key opened by `RedisModule_OpenKey` and not yet closed
        // (it is closed only on drop); the function pointer is set by the module's init.
        let kind = unsafe { raw::RedisModule_KeyType.unwrap()(self.key) };
        match raw::KeyType::from(kind) {
            raw::KeyType::Empty => Ok(Value::from(&[][..])),
            raw::KeyType::String => {
                let mut len = 0;
                let ptr = raw::string_dma(self.key, &mut len, raw::KeyMode::READ);
                if ptr.is_null() {
                    return Err(String::from("ERR ratecore: a key could not be read"));
                }
                // SAFETY: for an open string key, `RedisModule_StringDMA` returns a pointer
                // to its `len` bytes, valid until the key is modified or closed; they are
                // copied out at once, before either.
                Ok(Value::from(unsafe {
                    std::slice::from_raw_parts(ptr.cast::<u8>(), len)
                }))
            }
            _ => Err(String::from(
                "WRONGTYPE Operation against a key holding the wrong kind of value",
            )),
        }
    }

    /// Sets the value and its absolute expiry (ms since the Unix epoch). `old_len` is
    /// the length `read` returned.
    pub fn write(
        &self,
        ctx: *mut raw::RedisModuleCtx,
        value: &[u8],
        old_len: usize,
        expire_at_ms: i64,
    ) -> Result<(), String> {
        // A live key of the same length (every window state after its first write) is
        // overwritten in place; a new or resized one gets a new string.
        let in_place = old_len == value.len() && old_len > 0 && self.overwrite_in_place(value);
        if !in_place {
            let value = ServerString::create_from_slice(ctx, value);
            if raw::string_set(self.key, value.inner) != raw::Status::Ok {
                return Err(String::from("ERR ratecore: a key could not be written"));
            }
        }
        // SAFETY: reading a function pointer the module's init set once, before any command.
        let set_abs = unsafe { raw::RedisModule_SetAbsExpire };
        let status = match set_abs {
            // SAFETY: as in `read`: an open key, opened for writing (every written key was
            // opened with `write`). `RedisModule_SetAbsExpire` exists since Redis 6.2.2.
            Some(set_abs) => unsafe { set_abs(self.key, expire_at_ms) },
            None => {
                let ttl = expire_at_ms.saturating_sub(now_ms()).max(1);
                // SAFETY: as above; `RedisModule_SetExpire` exists on every supported server.
                unsafe { raw::RedisModule_SetExpire.unwrap()(self.key, ttl) }
            }
        };
        if raw::Status::from(status) != raw::Status::Ok {
            return Err(String::from(
                "ERR ratecore: a key's expiry could not be set",
            ));
        }
        Ok(())
    }
}

impl OpenKey {
    /// Overwrites an existing string of the same length in place (no new object, the
    /// key's expiry entry kept for `SetAbsExpire` to update); false if it cannot.
    fn overwrite_in_place(&self, value: &[u8]) -> bool {
        let mut len = 0;
        let ptr = raw::string_dma(self.key, &mut len, raw::KeyMode::WRITE);
        if ptr.is_null() || len != value.len() {
            return false;
        }
        // SAFETY: for a key opened for writing, `RedisModule_StringDMA` in write mode
        // returns the string's own `len` bytes, unshared, writable until the key is
        // modified otherwise or closed; exactly `len` bytes are copied.
        unsafe { std::ptr::copy_nonoverlapping(value.as_ptr(), ptr.cast::<u8>(), len) };
        true
    }
}

/// The server's clock: ms since the Unix epoch (`RedisModule_Milliseconds`).
pub fn now_ms() -> i64 {
    // SAFETY: the function pointer is set by the module's init and takes no arguments.
    unsafe { raw::RedisModule_Milliseconds.unwrap()() }
}
