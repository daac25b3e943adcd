//! Fuzz target `unzip_updater`: image archives as the updater unpacks them; the check is `vupdate_fuzz_checks::zip::check_updater`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vupdate_fuzz_checks::zip::check_updater(data));
