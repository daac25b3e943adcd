//! Fuzz target `version`: version strings, service names, roles and `name-role` lists; the check is `vupdate_fuzz_checks::version::check`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vupdate_fuzz_checks::version::check(data));
