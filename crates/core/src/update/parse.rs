//! Reading `update.json` and `install.json` with errors that name the JSON path.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

/// Why an `update.json` or `install.json` was refused. Every variant names the JSON path
/// of the bad value, e.g. `update[0].install.runService.restartConditions.maxCpu.percents`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateJsonError {
    /// The text is not JSON, or a value has the wrong type, an unknown field or a bad value.
    #[error("{path}: {message}{}", Position(*.line, *.column))]
    Parse {
        /// Where in the document (`(top level)` for the document itself).
        path: String,
        /// What is wrong.
        message: String,
        /// The line of the error, from 1 (0 when unknown).
        line: usize,
        /// The column of the error, from 1 (0 when unknown).
        column: usize,
    },
    /// The document reads but breaks a rule that spans several values (duplicate services).
    #[error("{path}: {message}")]
    Invalid {
        /// Where in the document.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl UpdateJsonError {
    /// The JSON path of the bad value.
    pub fn path(&self) -> &str {
        match self {
            UpdateJsonError::Parse { path, .. } | UpdateJsonError::Invalid { path, .. } => path,
        }
    }

    /// The line and column of the error, when the reader knew them.
    pub fn line_column(&self) -> Option<(usize, usize)> {
        match self {
            UpdateJsonError::Parse { line, column, .. } if *line > 0 => Some((*line, *column)),
            _ => None,
        }
    }
}

/// Formats ` (line L, column C)`, or nothing when the position is unknown.
struct Position(usize, usize);

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position(0, _) => Ok(()),
            Position(line, column) => write!(f, " (line {line}, column {column})"),
        }
    }
}

/// The path written for the document itself.
pub(super) const TOP_LEVEL: &str = "(top level)";

/// Reads a document of type `T`, naming the path of the first bad value.
pub(super) fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, UpdateJsonError> {
    let mut reader = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut reader)
        .map_err(|error| parse_error(json_path(error.path()), error.inner()))?;
    // Trailing text after the document is an error too, at the top level.
    reader
        .end()
        .map_err(|error| parse_error(TOP_LEVEL.to_owned(), &error))?;
    Ok(value)
}

/// Writes `update[0].build.copyFiles`. A trailing unknown segment (an error before a key was
/// read) is dropped, so the path names the object being read rather than ending in `?`.
fn json_path(path: &serde_path_to_error::Path) -> String {
    let segments: Vec<&Segment> = path.iter().collect();
    let known = segments
        .iter()
        .rposition(|segment| !matches!(segment, Segment::Unknown))
        .map_or(0, |last| last + 1);
    if known == 0 {
        return TOP_LEVEL.to_owned();
    }
    let mut text = String::new();
    for segment in &segments[..known] {
        match segment {
            // A key that is not a plain word (empty, or holding `.`, `[`, a space…) is
            // written quoted, `env["a.b"]`, so the path still says where it is.
            Segment::Map { key } if !is_plain_key(key) => {
                text.push('[');
                text.push_str(&serde_json::Value::from(key.as_str()).to_string());
                text.push(']');
            }
            Segment::Seq { .. } => text.push_str(&segment.to_string()),
            _ => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(&segment.to_string());
            }
        }
    }
    text
}

/// Whether a key can be written bare in a path: letters, digits, `_` and `-`.
fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

fn parse_error(path: String, inner: &serde_json::Error) -> UpdateJsonError {
    let (line, column) = (inner.line(), inner.column());
    // serde_json appends the position to its message; it is kept apart here.
    let mut message = inner.to_string();
    let suffix = format!(" at line {line} column {column}");
    if line > 0 && message.ends_with(&suffix) {
        message.truncate(message.len() - suffix.len());
    }
    UpdateJsonError::Parse {
        path,
        message,
        line,
        column,
    }
}
