//! [`BuildLog`]: where build output and step messages go (a task log, a terminal, a test).

use std::sync::Mutex;

use vupdate_core::log::Level;

/// The unit of lines that say which step runs.
pub const UNIT_BUILD: &str = "BUILD";
/// The unit of lines a build command printed.
pub const UNIT_PROCESS: &str = "PROCESS";

/// A sink for build log lines; a task context implements it to store them in the task log.
///
/// Called from the build's task as lines happen, so it must not block for long.
pub trait BuildLog: Send + Sync {
    /// Adds one line.
    fn line(&self, level: Level, unit: &str, message: &str);
}

/// Any `Fn(level, unit, message)` is a log (e.g. a closure that prints).
impl<F: Fn(Level, &str, &str) + Send + Sync> BuildLog for F {
    fn line(&self, level: Level, unit: &str, message: &str) {
        self(level, unit, message)
    }
}

/// A log kept in memory, for tests and for callers that show the log at the end.
#[derive(Debug, Default)]
pub struct MemoryLog {
    lines: Mutex<Vec<(Level, String, String)>>,
}

impl MemoryLog {
    /// An empty log.
    pub fn new() -> Self {
        MemoryLog::default()
    }

    /// The lines so far: level, unit, message.
    pub fn lines(&self) -> Vec<(Level, String, String)> {
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The messages so far, one per line, for searching in tests.
    pub fn text(&self) -> String {
        let lines = self.lines();
        let messages: Vec<&str> = lines
            .iter()
            .map(|(_, _, message)| message.as_str())
            .collect();
        messages.join("\n")
    }
}

impl BuildLog for MemoryLog {
    fn line(&self, level: Level, unit: &str, message: &str) {
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((level, unit.to_owned(), message.to_owned()));
    }
}
