//! Every limiter against its reference model; see `ratecore_fuzz::algorithms`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ratecore_fuzz::algorithms::{run, Case};

fuzz_target!(|case: Case| run(&case));
