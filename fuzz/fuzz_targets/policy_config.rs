//! The TOML policy parser and built policies: routes, `when` conditions, attribute keys,
//! `on_missing`, shadow limits, and requests carrying arbitrary attributes; see
//! `ratecore_fuzz::policy`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ratecore_fuzz::policy::{run, PolicyCase};

fuzz_target!(|data: &[u8]| {
    if let Some(case) = PolicyCase::from_bytes(data) {
        run(&case);
    }
});
