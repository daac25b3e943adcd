//! Fuzz target `handover`: the updater's handover file; the check is `vupdate_fuzz_checks::handover::check`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vupdate_fuzz_checks::handover::check(data));
