//! Fuzz target `settings_conf`: the client settings merge of `.conf` (HOCON) files; the check is `vupdate_fuzz_checks::settings::check_conf`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vupdate_fuzz_checks::settings::check_conf(data));
