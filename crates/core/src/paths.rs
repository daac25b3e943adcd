//! Lexical path cleaning: the one spelling of a folder that configs resolve to and that
//! state reports, logs and fault reports carry (`/var/lib/vupdate/worker-eu`, never
//! `/var/lib/vupdate/./worker-eu`).
//!
//! Purely textual: `.` components, repeated and trailing separators go; `..` stays,
//! since removing it is only right when no component before it is a symbolic link.

use std::path::{Component, Path, PathBuf};

/// `path` without `.` components and repeated or trailing separators; `.` when nothing
/// else is left of a relative path.
pub fn clean(path: &Path) -> PathBuf {
    let cleaned: PathBuf = path
        .components()
        .filter(|component| !matches!(component, Component::CurDir))
        .collect();
    if cleaned.as_os_str().is_empty() && !path.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        cleaned
    }
}

/// [`clean`] for a directory reported as text (as state reports and logs carry it).
pub fn clean_directory(text: &str) -> String {
    let cleaned = clean(Path::new(text));
    match cleaned.to_str() {
        Some(cleaned) => cleaned.to_owned(),
        // Text in, text out: a cleaned UTF-8 path stays UTF-8.
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_and_extra_separators_go_and_parent_steps_stay() {
        for (text, cleaned) in [
            ("/var/lib/vupdate/./worker-eu", "/var/lib/vupdate/worker-eu"),
            ("/var/lib//vupdate/worker-eu/", "/var/lib/vupdate/worker-eu"),
            ("./data/./state", "data/state"),
            ("data/../state", "data/../state"),
            (".", "."),
            ("./", "."),
            ("/", "/"),
            ("", ""),
        ] {
            assert_eq!(clean_directory(text), cleaned, "{text}");
            assert_eq!(clean(Path::new(text)), Path::new(cleaned), "{text}");
        }
    }
}
