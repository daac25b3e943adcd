//! Fuzz target `state_repo`: the state repo's YAML files, validated whole; the check is `vupdate_fuzz_checks::state::check_repo`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vupdate_fuzz_checks::state::check_repo(data));
