//! Fuzz target `whole_run`: the property is `fuzz_checks::whole_run` in tests/common/fuzz_checks.rs
//! (shared with tests/fuzz_regressions.rs, which replays the saved inputs).
#![no_main]

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "../../tests/common/diff.rs"]
mod diff;
#[path = "../../tests/common/fuzz_checks.rs"]
mod fuzz_checks;
#[path = "../../tests/common/gen.rs"]
mod gen;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::whole_run(data));
