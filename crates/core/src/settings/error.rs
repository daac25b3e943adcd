//! Why a settings merge was refused: [`SettingsError`], with the tree, file and position.

use std::fmt;

use super::Format;

/// Which input tree a file came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TreeId {
    /// The developer image.
    Base,
    /// A settings overlay, numbered from 1 in the order they apply.
    Overlay(usize),
}

impl fmt::Display for TreeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TreeId::Base => f.write_str("base"),
            TreeId::Overlay(number) => write!(f, "overlay #{number}"),
        }
    }
}

/// A 1-based line and column in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1 (characters for properties and HOCON, bytes for JSON, as its parser counts).
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `text` (columns in characters).
    pub(crate) fn at_offset(text: &str, offset: usize) -> Position {
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        Position {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// ` at line L, column C`, or nothing when the position is unknown.
fn at(position: &Option<Position>) -> String {
    position.map_or_else(String::new, |position| format!(" at {position}"))
}

/// Why [`merge_settings`](super::merge_settings) refused; nothing was merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A path is absolute, empty, or has an empty, `.` or `..` segment.
    #[error(
        "{tree}: `{path}` is not a usable file path (it must be relative and `/`-separated, without empty, `.` or `..` parts)"
    )]
    InvalidPath {
        /// The tree holding the path.
        tree: TreeId,
        /// The path as given.
        path: String,
    },
    /// A file of a mergeable format does not parse.
    #[error("{tree}: `{path}` is not valid {format}{}: {message}", at(.position))]
    Parse {
        /// The tree holding the file.
        tree: TreeId,
        /// The file.
        path: String,
        /// The format it was read as (from its name).
        format: Format,
        /// Where the parser stopped, when it says.
        position: Option<Position>,
        /// The parser's message.
        message: String,
    },
    /// A file that must be read as text is not UTF-8.
    #[error("{tree}: `{path}` is not UTF-8 text{}, so it cannot be {purpose}", at(.position))]
    NotUtf8 {
        /// The tree holding the file.
        tree: TreeId,
        /// The file.
        path: String,
        /// The first byte that is not UTF-8.
        position: Option<Position>,
        /// What was to be done with it (`merged`, `expanded`, `read for macro values`).
        purpose: &'static str,
    },
    /// A `.defines` line is not `name=value` with a macro name before the `=`.
    #[error(
        "{tree}: `{path}` line {line}: expected `name=value` (name of letters, digits, `_`, `.`, `-`), found `{text}`"
    )]
    MalformedDefine {
        /// The tree holding the file.
        tree: TreeId,
        /// The `.defines` file.
        path: String,
        /// The 1-based line.
        line: usize,
        /// The line as written.
        text: String,
    },
    /// A `.defines` file names a file that neither the base nor any overlay has.
    #[error(
        "{tree}: `{path}` gives macro values for `{target}`, which is neither in the base nor in any settings overlay"
    )]
    DefinesWithoutTarget {
        /// The tree holding the `.defines` file.
        tree: TreeId,
        /// The `.defines` file.
        path: String,
        /// The file it would expand.
        target: String,
    },
    /// A HOCON file to be merged uses `include`, which a rendered merge cannot keep.
    #[error(
        "{tree}: `{path}` at {position}: `include` cannot be kept when `{target}` is merged (the merged file is rendered from values); put the included settings in the file itself"
    )]
    HoconInclude {
        /// The tree holding the file.
        tree: TreeId,
        /// The file with the `include`.
        path: String,
        /// Where the `include` is.
        position: Position,
        /// The merged file.
        target: String,
    },
    /// A substitution in a HOCON file to be merged would be read from the environment.
    #[error(
        "{tree}: `{path}` at {position}: `{substitution}` is not set in the merged `{target}`, so the program would read it from its environment; a merged file is rendered with its substitutions resolved, which would lose that lookup: set the value in a settings overlay instead"
    )]
    HoconEnvironment {
        /// The tree holding the file.
        tree: TreeId,
        /// The file with the substitution.
        path: String,
        /// Where the substitution is.
        position: Position,
        /// The substitution as written, e.g. `${?DB_PASSWORD}`.
        substitution: String,
        /// The merged file.
        target: String,
    },
    /// Substitutions of a merged HOCON file do not resolve (a cycle, a type mismatch).
    #[error("merging `{target}`: HOCON substitutions do not resolve{}: {message}", at(.position))]
    HoconResolve {
        /// The merged file.
        target: String,
        /// Where the failing substitution is, in one of the layers of `target`.
        position: Option<Position>,
        /// The resolver's message.
        message: String,
    },
    /// The renderer produced text that does not read back as the merged settings.
    #[error(
        "merging `{target}`: the HOCON renderer cannot write these settings faithfully: {message}"
    )]
    HoconRender {
        /// The merged file.
        target: String,
        /// What went wrong.
        message: String,
    },
    /// The merged tree would need one path to be both a file and a directory.
    #[error("`{file}` is a file in the merged tree, but `{path}` needs it to be a directory")]
    FileDirectoryConflict {
        /// The path that is a file.
        file: String,
        /// A path below it.
        path: String,
    },
}
