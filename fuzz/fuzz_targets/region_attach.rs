//! Attaching to regions of arbitrary content; see `ratecore_fuzz::region`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ratecore_fuzz::region::{run, RegionCase};

fuzz_target!(|case: RegionCase| run(&case));
