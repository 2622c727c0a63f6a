//! Header and body rendering; see `ratecore_fuzz::render`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ratecore_fuzz::render::{run, RenderCase};

fuzz_target!(|case: RenderCase<'_>| run(&case));
