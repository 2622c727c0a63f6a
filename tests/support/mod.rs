//! Helpers shared by integration tests, included with `mod support;`: proptest's
//! configuration and the request-stream generators of the differential tests (`gen`),
//! and the table tests' limit specs (`limits`).
//!
//! Included by path by the tests that need them: `seed_replay.rs`, together with the
//! demo's scenarios it replays, by the tests that check the demo's promises;
//! `race.rs` (threads released together on one limiter or policy) by the concurrency
//! tests; `loom_models.rs` by the loom models. The policies some tests load as TOML
//! (`semantics_policy.toml`, `phases_policy.toml`) live here too.

// Each test binary that includes this module uses only some of it.
#![allow(dead_code)]

pub mod gen;
pub mod limits;

/// A tiny deterministic xorshift stream: irregular but reproducible times, keys and
/// picks, without a dependency.
pub struct XorShift(pub u64);

impl XorShift {
    /// The next value (the state must not be 0).
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// An index in `0..n`.
    pub fn index(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
