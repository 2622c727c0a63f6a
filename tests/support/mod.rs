//! Helpers shared by integration tests, included with `mod support;`: proptest's
//! configuration and the request-stream generators of the differential tests (`gen`).
//!
//! `seed_replay.rs` beside this file is included by path, together with the demo's
//! scenarios it replays, by the tests that check the demo's promises.

// Each test binary that includes this module uses only some of it.
#![allow(dead_code)]

pub mod gen;
