//! The bytes one check writes to one key, held inline: every layout bounds them (a GCRA's
//! 8, a fixed window's 16, an approximate window's 24, a strict window's slot write 16),
//! so the module decides a check without a heap allocation per key.

use core::fmt;
use core::ops::{Deref, DerefMut};

/// The most bytes a check writes to one key: an approximate window's whole value.
pub const MAX_WRITTEN: usize = 24;

/// What a check writes to one key (empty when nothing), at most [`MAX_WRITTEN`] bytes,
/// read as a byte slice.
#[derive(Clone, Copy, Default)]
pub struct Written {
    len: u8,
    bytes: [u8; MAX_WRITTEN],
}

impl Written {
    /// Nothing written.
    #[must_use]
    pub const fn none() -> Self {
        Self {
            len: 0,
            bytes: [0; MAX_WRITTEN],
        }
    }

    /// The first `len` bytes of `bytes` (all of them when `len` is larger).
    pub(crate) fn prefix(bytes: [u8; MAX_WRITTEN], len: usize) -> Self {
        // Cannot truncate: at most MAX_WRITTEN.
        let len = len.min(MAX_WRITTEN) as u8;
        Self { len, bytes }
    }

    /// Shortens the bytes to `len` (no effect when they are not longer).
    pub fn truncate(&mut self, len: usize) {
        if len < usize::from(self.len) {
            // Cannot truncate: less than the current length.
            self.len = len as u8;
        }
    }

    /// The bytes.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Any array that fits, the bound checked at compile time.
impl<const N: usize> From<[u8; N]> for Written {
    fn from(array: [u8; N]) -> Self {
        const { assert!(N <= MAX_WRITTEN) };
        let mut bytes = [0; MAX_WRITTEN];
        bytes[..N].copy_from_slice(&array);
        Self::prefix(bytes, N)
    }
}

impl Deref for Written {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl DerefMut for Written {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[..usize::from(self.len)]
    }
}

impl PartialEq for Written {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Written {}

impl fmt::Debug for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}
