//! Fuzz target `settings_json`: the client settings merge of `.json` files; the check is `vupdate_fuzz_checks::settings::check_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vupdate_fuzz_checks::settings::check_json(data));
