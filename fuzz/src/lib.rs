//! Shared code of ratecore's fuzz targets.
//!
//! Each target in `fuzz_targets/` is a thin `fuzz_target!` over one module here. Inputs
//! are structured (`arbitrary`) sequences of operations, and every input type's `Debug`
//! prints a reproducer: the ratecore calls it makes, with the concrete times and costs,
//! ready to paste into `tests/fuzz_regressions.rs` (see `fuzz/README.md`).
//!
//! The reference models are the ones the differential tests use (`tests/model/`),
//! included by path so there is one naive model of each algorithm, not two.

pub mod algorithms;
pub mod c_abi;
pub mod gen;
pub mod policy;
pub mod region;
pub mod render;
pub mod table;

#[path = "../../tests/model/mod.rs"]
pub mod model;
