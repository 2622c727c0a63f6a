//! The atomics the limiters use: `core`'s normally, loom's under `cfg(ratecore_loom)` so
//! the model checker can explore every interleaving of the CAS protocols.

#[cfg(ratecore_loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};

#[cfg(not(ratecore_loom))]
pub(crate) use core::sync::atomic::{AtomicU64, Ordering};
