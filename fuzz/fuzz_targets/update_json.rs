//! Fuzz target `update_json`: `update.json` and `install.json`; the check is `vupdate_fuzz_checks::update_json::check`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vupdate_fuzz_checks::update_json::check(data));
