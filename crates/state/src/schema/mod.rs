//! Reading schema 1 files: the raw serde structs and the YAML parse that turns syntax and
//! type errors into [`Problem`]s with the file, line and column.

pub(crate) mod entries;
pub(crate) mod raw;

use serde::de::DeserializeOwned;
use serde_saphyr::{Location, MessageFormatter, UserMessageFormatter};

use crate::problems::{Position, Problem};

/// How the state repo's YAML is read, by the validator and the editor alike.
///
/// An alias (`*name`) is read as a copy of its anchor, so a few hundred bytes of nested
/// aliases can stand for a billion values. A state file shares a block a few times at most,
/// so aliases may add 10 000 parser events to a file, and a file may hold 100 000 values
/// in all: a hostile file is refused in milliseconds, naming where.
pub(crate) fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 10_000,
        },
        budget: serde_saphyr::budget! {
            max_nodes: 100_000,
        },
    }
}

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
    match serde_saphyr::from_slice_with_options::<Option<T>>(bytes, yaml_options()) {
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
