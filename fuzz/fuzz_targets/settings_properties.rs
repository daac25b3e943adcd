//! Fuzz target `settings_properties`: the client settings merge of `.properties` files; the check is `vupdate_fuzz_checks::settings::check_properties`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vupdate_fuzz_checks::settings::check_properties(data));
