//! The TOML policy parser and built policies: routes, `when` conditions, attribute keys,
//! `on_missing`, shadow limits, per-client overrides, requests carrying arbitrary
//! attributes, override changes, reloads, the offender report and the metrics export;
//! see `ratecore_fuzz::policy`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ratecore_fuzz::policy::{run, PolicyCase};

fuzz_target!(|case: PolicyCase<'_>| run(&case));
