//! A keyed table under arbitrary operation sequences; see `ratecore_fuzz::table`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ratecore_fuzz::table::{run, TableCase};

fuzz_target!(|case: TableCase| run(&case));
