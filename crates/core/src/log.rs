//! The log line format services write and vupdate stores:
//! `yyyy-MM-dd HH:mm:ss.SSS LEVEL unit message`.
//!
//! Parsing never fails and never drops a line: a line that does not match the format is
//! kept whole as the message of an `INFO` line with unit [`PLAIN_UNIT`], stamped with the
//! time the caller received it.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDateTime;

/// The unit given to lines that do not follow the format.
pub const PLAIN_UNIT: &str = "PLAIN";

const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.3f";
/// Where the time of a line has digits (`d`) and which separators it has.
const TIME_SHAPE: &str = "dddd-dd-dd dd:dd:dd.ddd";
const TIME_LEN: usize = TIME_SHAPE.len();

/// A log level; the order is severity, so "this level and above" is `>=`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// Finest detail.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the service survived.
    Warn,
    /// A failure.
    Error,
}

impl Level {
    /// Every level, least severe first.
    pub const ALL: [Level; 5] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
    ];

    /// The level as written in a log line.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A level name that is not one of TRACE, DEBUG, INFO, WARN, ERROR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("log level `{0}` is not one of TRACE, DEBUG, INFO, WARN, ERROR")]
pub struct LevelError(pub String);

impl FromStr for Level {
    type Err = LevelError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Level::ALL
            .into_iter()
            .find(|level| level.as_str() == text)
            .ok_or_else(|| LevelError(text.to_owned()))
    }
}

/// One log line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When it was written (or received, for a line without a time).
    pub time: NaiveDateTime,
    /// Its level.
    pub level: Level,
    /// The functional unit that wrote it.
    pub unit: String,
    /// The message, possibly empty.
    pub message: String,
}

impl LogLine {
    /// Parses one line (without its `\n`; carriage returns before it belong to the line
    /// ending too). A line that does not match the format becomes an `INFO` line of unit
    /// [`PLAIN_UNIT`] at `received`, with the whole line, untrimmed, as its message.
    pub fn parse(line: &str, received: NaiveDateTime) -> LogLine {
        // All of them: a line kept with a trailing `\r` would print as one ending in `\r\n`.
        let line = line.trim_end_matches('\r');
        Self::parse_structured(line).unwrap_or_else(|| LogLine {
            time: received,
            level: Level::Info,
            unit: PLAIN_UNIT.to_owned(),
            message: line.to_owned(),
        })
    }

    fn parse_structured(line: &str) -> Option<LogLine> {
        let time = line.get(..TIME_LEN)?;
        // chrono's `%Y` also takes a sign and fewer digits (`-026`): such a time would print
        // back in another shape, so only the format's own digits are read as a time.
        let shape = time.bytes().zip(TIME_SHAPE.bytes());
        if !shape.into_iter().all(|(byte, want)| match want {
            b'd' => byte.is_ascii_digit(),
            want => byte == want,
        }) {
            return None;
        }
        let time = NaiveDateTime::parse_from_str(time, TIME_FORMAT).ok()?;
        let rest = line.get(TIME_LEN..)?.strip_prefix(' ')?;
        let (level, rest) = rest.split_once(' ')?;
        let level = level.parse().ok()?;
        let (unit, message) = rest.split_once(' ').unwrap_or((rest, ""));
        // A unit is a word: one holding a control character (`main\r`) would not print
        // back as the same line, so such a line is kept whole, as text.
        if unit.is_empty() || unit.contains(char::is_control) {
            return None;
        }
        Some(LogLine {
            time,
            level,
            unit: unit.to_owned(),
            message: message.to_owned(),
        })
    }
}

impl fmt::Display for LogLine {
    /// Formats the line in the standard format; [`LogLine::parse`] reads it back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.time.format(TIME_FORMAT),
            self.level,
            self.unit
        )?;
        if !self.message.is_empty() {
            write!(f, " {}", self.message)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, TIME_FORMAT).expect("test time")
    }

    #[test]
    fn parses_structured_lines() {
        let line = LogLine::parse(
            "2026-11-25 10:01:02.345 WARN db slow query: 2 s",
            at("2000-01-01 00:00:00.000"),
        );
        assert_eq!(line.time, at("2026-11-25 10:01:02.345"));
        assert_eq!(line.level, Level::Warn);
        assert_eq!(line.unit, "db");
        assert_eq!(line.message, "slow query: 2 s");
    }

    #[test]
    fn keeps_other_lines_whole_as_info() {
        let received = at("2026-01-01 00:00:00.000");
        for text in [
            "panic at src/main.rs:3",
            "",
            "  indented",
            "2026-11-25 10:01:02 INFO no millis",
            "2026-11-25 10:01:02.345 NOTICE unit msg",
            "2026-11-25 10:01:02.345 INFO",
            "2026-13-25 10:01:02.345 INFO unit bad month",
        ] {
            let line = LogLine::parse(text, received);
            assert_eq!(
                (line.level, line.unit.as_str(), line.time),
                (Level::Info, PLAIN_UNIT, received)
            );
            assert_eq!(line.message, text);
        }
    }

    /// Found by the `log_line` fuzz target: chrono read `-026` as a year, so the line was
    /// stamped in the year -26 and printed back as `-0026-11-25 …`, another line.
    #[test]
    fn a_time_in_another_shape_keeps_the_line_plain() {
        let received = at("2026-01-01 00:00:00.000");
        for text in [
            "-026-11-25 10:01:02.345 ERROR main year with a sign",
            "+2026-11-25 10:01:02.34 INFO unit",
            "2026-11-25 10:01: 2.345 INFO unit space for a digit",
        ] {
            let line = LogLine::parse(text, received);
            assert_eq!(
                (line.unit.as_str(), line.time),
                (PLAIN_UNIT, received),
                "{text}"
            );
            assert_eq!(line.message, text);
        }
    }

    #[test]
    fn strips_a_carriage_return_and_allows_empty_messages() {
        let line = LogLine::parse(
            "2026-11-25 10:01:02.345 ERROR main\r",
            at("2000-01-01 00:00:00.000"),
        );
        assert_eq!(
            (line.level, line.unit.as_str(), line.message.as_str()),
            (Level::Error, "main", "")
        );
    }

    /// Found by the `log_line` fuzz target: `… WARN db\r\r` kept one `\r` in its unit, so
    /// the line printed back (as the updater writes its log files) read as another line.
    #[test]
    fn trailing_carriage_returns_are_part_of_the_line_ending() {
        let received = at("2000-01-01 00:00:00.000");
        let line = LogLine::parse("2026-11-25 10:01:02.345 WARN db\r\r\r", received);
        assert_eq!((line.unit.as_str(), line.message.as_str()), ("db", ""));
        assert_eq!(LogLine::parse(&line.to_string(), received), line);
        let plain = LogLine::parse("progress 50%\r\r", received);
        assert_eq!(plain.message, "progress 50%");
    }

    /// Found by the `log_line` fuzz target: `… ERROR main\r ` read as the unit `main\r` with
    /// an empty message, printed back as `… ERROR main\r`, which reads as the unit `main`.
    #[test]
    fn a_unit_with_a_control_character_keeps_the_line_plain() {
        let received = at("2000-01-01 00:00:00.000");
        for text in [
            "2026-11-28 12:01:02.345 ERROR main\r ",
            "2026-11-28 12:01:02.345 ERROR ma\x1bin message",
        ] {
            let line = LogLine::parse(text, received);
            assert_eq!(
                (line.unit.as_str(), line.message.as_str()),
                (PLAIN_UNIT, text)
            );
        }
    }

    #[test]
    fn levels_order_by_severity_and_parse_by_name() {
        assert!(Level::Trace < Level::Debug && Level::Warn < Level::Error);
        assert_eq!("WARN".parse(), Ok(Level::Warn));
        assert_eq!("warn".parse::<Level>(), Err(LevelError("warn".into())));
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(
            millis in 0i64..4_102_444_800_000,
            level in proptest::sample::select(Level::ALL.to_vec()),
            unit in "[A-Za-z0-9_.:-]{1,12}",
            message in "[^\r\n]{0,40}",
        ) {
            let time = chrono::DateTime::from_timestamp_millis(millis).expect("in range").naive_utc();
            let line = LogLine { time, level, unit, message };
            prop_assert_eq!(LogLine::parse(&line.to_string(), NaiveDateTime::MIN), line);
        }

        #[test]
        fn no_line_is_ever_lost(text in "[^\n]{0,80}") {
            let line = LogLine::parse(&text, NaiveDateTime::MIN);
            let text = text.trim_end_matches('\r');
            prop_assert!(line.message.len() <= text.len());
            prop_assert!(text.ends_with(&line.message));
        }
    }
}
