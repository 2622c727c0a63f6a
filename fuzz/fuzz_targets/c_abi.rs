//! The C ABI with arbitrary arguments; see `ratecore_fuzz::c_abi`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ratecore_fuzz::c_abi::{run, FfiCase};

fuzz_target!(|case: FfiCase| run(&case));
