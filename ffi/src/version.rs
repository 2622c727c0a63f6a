//! The library version.

use std::ffi::{c_char, CStr};

use crate::panic::boundary;

/// The version, NUL-terminated (it matches `RATECORE_VERSION`, the header's version).
const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(version) => version,
        Err(_) => c"unknown",
    };

/// The library's version, `"MAJOR.MINOR.PATCH"`, as a static NUL-terminated string
/// (never NULL). Compare with the header's `RATECORE_VERSION` to detect a header/library
/// mismatch at run time.
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn ratecore_version() -> *const c_char {
    boundary(VERSION.as_ptr(), || VERSION.as_ptr())
}
