//! Fuzz target `settings_tree`: the client settings merge of whole trees (paths, `X.N`, `.defines`, `.git`); the check is `vupdate_fuzz_checks::settings::check_tree`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vupdate_fuzz_checks::settings::check_tree(data));
