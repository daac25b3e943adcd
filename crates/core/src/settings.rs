//! The client settings merge: a developer image overlaid by settings repositories, pure.
//!
//! A client version is a developer image whose settings a client defines, supplements and
//! overrides. The caller hands [`merge_settings`] the unpacked image (the *base*), the
//! settings trees in the order they apply (*overlay #1*, *#2*, …, already narrowed to the
//! service's folder), and the macro values of the state repo; it gets back a new tree and a
//! [`MergeReport`] for the build log, or a [`SettingsError`]. Nothing is read or written:
//! the inputs stay untouched and the merge never half-applies.
//!
//! # Rules, for each overlay file (paths relative, `/`-separated)
//!
//! - Anything with a `.git` path segment is ignored (a settings repo's `.git` landed in
//!   the image in the original system); [`MergeReport::ignored_git_files`] counts them.
//! - `X.json`, `X.properties`, `X.conf` (HOCON) are *mergeable*: the overlay's copy is merged
//!   by key into X (the overlay wins); when no earlier tree has X, it is added as is.
//! - `X.N` (N all digits) where X is mergeable is one more layer of X. Layers of X apply in
//!   a fixed order: overlay #1's X, then its `X.1`, `X.2`, … `X.10` (numeric order, not
//!   lexical), then overlay #2's in the same way. For any other X, `X.N` is an ordinary file
//!   named `X.N`: shared libraries (`libssl.so.1`) and rotated logs are named like that.
//! - `X.defines` holds `name=value` lines (blank lines and `#` comments allowed): after every
//!   layer of X is merged, `%%name%%` in X is replaced. Values are gathered from every
//!   overlay in order (a later overlay wins), and the caller's macro values win over all of
//!   them (the original let macroValues, `distributionUrl` and `version` override `.defines`).
//!   Only files that have a `.defines` are expanded. A macro with no value is left in and
//!   listed in the report, because install-time macros such as `%%role%%` legitimately
//!   survive the build. Values are inserted verbatim (not escaped for the file's format).
//!   X must be in the base or in some overlay.
//! - Any other file is added, replacing the base's copy (a later overlay wins).
//!
//! # Formats
//!
//! - JSON: objects merge key by key, recursively; arrays and scalars are replaced; key order
//!   is kept (new keys go last); the result is pretty-printed with two-space indents.
//!   Integers beyond 64 bits lose precision (they are read as floating point).
//! - Java properties: the base's text is kept line for line, with its comments, order,
//!   escapes and line endings; an existing key gets the overlay's value text as written;
//!   new keys are appended with the comment lines directly above them in the overlay.
//!   Keys compare after unescaping (`a\ b` is the key `a b`). Files must be UTF-8.
//! - HOCON: parsed with the `hocon-parser` crate, merged with the overlay winning and
//!   objects merged by key, then rendered by that crate's renderer, and the rendered text is
//!   parsed again and compared with the merged tree, so a rendering that would change the
//!   settings is refused ([`SettingsError::HoconRender`]; keys with a line break are the
//!   known case). Keys keep the order they first appear in (base first), but comments and
//!   layout are not kept. Substitutions are resolved *after* the merge, against the merged
//!   file and never the process environment, so an overlay that changes `x` changes
//!   `y = ${x}`, and the rendered file holds values, not `${…}`.
//!   Two things cannot be kept in a rendered file and are refused rather than lost:
//!   `include` ([`SettingsError::HoconInclude`]), and a substitution the file cannot resolve
//!   itself, i.e. one the program would read from its environment, such as
//!   `p = ${?DB_PASSWORD}` ([`SettingsError::HoconEnvironment`]). Unquoted `%%name%%` values
//!   are strings to HOCON, so after rendering they are quoted (`port = "8080"`), which typed
//!   getters read as numbers all the same.
//!
//! Files are merged, and so rewritten, only when an overlay has a layer for them: a base file
//! with no layers keeps its bytes, and a JSON base with an unquoted `%%port%%` still works as
//! long as no overlay merges into it. Only input that does not parse is an error; a base
//! object replaced by an overlay scalar is allowed (the overlay wins).

mod conf;
mod defines;
mod error;
mod json;
mod layout;
mod merge;
mod properties;
mod report;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

pub use error::{Position, SettingsError, TreeId};
pub use merge::{Merged, merge_settings};
pub use report::{Change, FileReport, MergeReport, Source};

/// Files by relative path (`/`-separated, no leading `/`), with their bytes.
pub type FileTree = BTreeMap<String, Vec<u8>>;

/// The settings formats that merge by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// `.json`: objects merged recursively.
    Json,
    /// `.properties`: Java properties, merged line by line.
    Properties,
    /// `.conf`: HOCON (Typesafe config).
    Hocon,
}

impl Format {
    /// The format of a file, from its name's extension (case-sensitive, as in the original).
    pub fn of(path: &str) -> Option<Format> {
        let name = path.rsplit('/').next().unwrap_or(path);
        let (stem, extension) = name.rsplit_once('.')?;
        if stem.is_empty() {
            // `.json` alone is a hidden file with no extension.
            return None;
        }
        match extension {
            "json" => Some(Format::Json),
            "properties" => Some(Format::Properties),
            "conf" => Some(Format::Hocon),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Json => "JSON",
            Format::Properties => "Java properties",
            Format::Hocon => "HOCON",
        })
    }
}
