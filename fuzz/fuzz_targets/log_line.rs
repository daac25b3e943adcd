//! Fuzz target `log_line`: the `date LEVEL unit message` log line format; the check is `vupdate_fuzz_checks::log_line::check`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vupdate_fuzz_checks::log_line::check(data));
