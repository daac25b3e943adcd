//! Fuzz target `unzip_builder`: image archives as the builder unpacks them; the check is `vupdate_fuzz_checks::zip::check_builder`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vupdate_fuzz_checks::zip::check_builder(data));
