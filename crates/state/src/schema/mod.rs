//! Reading schema 1 files: the raw serde structs and the YAML parse that turns syntax and
//! type errors into [`Problem`]s with the file, line and column.

pub(crate) mod entries;
pub(crate) mod raw;

use serde::de::DeserializeOwned;
use serde_saphyr::{Location, MessageFormatter, UserMessageFormatter};

use crate::problems::{Position, Problem};

/// The position of a location, or `None` when the parser did not know it.
pub(crate) fn position(location: &Location) -> Option<Position> {
    let (line, column) = (location.line(), location.column());
    (line > 0).then_some(Position { line, column })
}

/// Collects problems for one file at a time.
pub(crate) struct Problems {
    pub(crate) list: Vec<Problem>,
}

impl Problems {
    pub(crate) fn new() -> Self {
        Problems { list: Vec::new() }
    }

    /// A problem at a location in `path`.
    pub(crate) fn at(&mut self, path: &str, location: &Location, message: impl Into<String>) {
        self.list.push(Problem {
            path: path.to_owned(),
            position: position(location),
            message: message.into(),
        });
    }

    /// A problem with the file `path` as a whole.
    pub(crate) fn file(&mut self, path: &str, message: impl Into<String>) {
        self.list.push(Problem {
            path: path.to_owned(),
            position: None,
            message: message.into(),
        });
    }
}

/// Parses one YAML file into `T`. An empty file (or one with only comments) is `T::default()`;
/// a syntax or type error is recorded and gives `None`.
pub(crate) fn parse_file<T: DeserializeOwned + Default>(
    path: &str,
    bytes: &[u8],
    problems: &mut Problems,
) -> Option<T> {
    parse_document(path, bytes, problems).map(Option::unwrap_or_default)
}

/// Parses one YAML file into `T`: `Some(None)` for an empty document, `None` after recording
/// a syntax or type error.
pub(crate) fn parse_document<T: DeserializeOwned>(
    path: &str,
    bytes: &[u8],
    problems: &mut Problems,
) -> Option<Option<T>> {
    match serde_saphyr::from_slice::<Option<T>>(bytes) {
        Ok(value) => Some(value),
        Err(error) => {
            let message = UserMessageFormatter.format_message(error.without_snippet());
            problems.list.push(Problem {
                path: path.to_owned(),
                position: error.location().as_ref().and_then(position),
                message: message.into_owned(),
            });
            None
        }
    }
}
