//! `update.json` (from a service's source repository) and `install.json` (from an image,
//! possibly overlaid by client settings), then their macros expanded as a build and an
//! install do.

use vupdate_core::macros::Macros;
use vupdate_core::update::{InstallRules, UpdateFile, UpdateJsonError};

/// The same text is read as both documents. What reads writes back to a document that
/// reads as the same value; an error names a JSON path; expansion never panics.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let macros = macros();
    match UpdateFile::from_json(text) {
        Ok(file) => {
            let back = UpdateFile::from_json(&file.to_json_pretty())
                .expect("an update.json written by vupdate reads back");
            assert_eq!(back, file);
            for service in &file.update {
                for command in &service.build.build_commands {
                    let _ = command.expand(&macros);
                }
                for copy in &service.build.copy_files {
                    let _ = copy.macros().expand_known(&copy.destination_file);
                }
                if let Some(install) = &service.install {
                    check_install(install, &macros);
                }
            }
        }
        Err(error) => check_error(&error),
    }
    match InstallRules::from_json(text) {
        Ok(install) => {
            let back = InstallRules::from_json(&install.to_json_pretty())
                .expect("an install.json written by vupdate reads back");
            assert_eq!(back, install);
            check_install(&install, &macros);
        }
        Err(error) => check_error(&error),
    }
}

/// Values as a build and an install give them, one holding a macro of its own (values are
/// inserted verbatim, never expanded again).
fn macros() -> Macros {
    Macros::new()
        .with("version", "jetto-1.2.3")
        .with("role", "eu")
        .with("service", "api")
        .with("loop", "%%loop%%")
}

fn check_install(install: &InstallRules, macros: &Macros) {
    if let Ok(expanded) = install.expand(macros) {
        // Expansion may make a value invalid (an empty command): an error, never a panic.
        let _ = InstallRules::from_json(&expanded.to_json_pretty());
    }
}

fn check_error(error: &UpdateJsonError) {
    assert!(!error.path().is_empty(), "an error names a path: {error}");
    assert!(!error.to_string().is_empty());
}
