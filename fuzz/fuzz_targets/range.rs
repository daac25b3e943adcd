//! Fuzz target `range`: the HTTP `Range` header of image downloads; the check is `vupdate_fuzz_checks::range::check`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vupdate_fuzz_checks::range::check(data));
