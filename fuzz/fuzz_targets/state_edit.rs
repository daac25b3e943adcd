//! Fuzz target `state_edit`: edits of the state repo's YAML files by splicing; the check is `vupdate_fuzz_checks::state::check_edit`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vupdate_fuzz_checks::state::check_edit(data));
