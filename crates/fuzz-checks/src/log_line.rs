//! The log line format services write: `yyyy-MM-dd HH:mm:ss.SSS LEVEL unit message`, read
//! by the updater from a service's output (decoded as the updater does, lossily).

use chrono::NaiveDateTime;
use vupdate_core::log::{LogLine, PLAIN_UNIT};

/// Every line is kept: its message is the end of the line as written, and a line read as
/// structured prints back to text that reads as the same line.
pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let received = NaiveDateTime::MIN;
    for raw in text.split('\n') {
        let line = LogLine::parse(raw, received);
        let raw = raw.trim_end_matches('\r');
        assert!(
            raw.ends_with(&line.message),
            "the message is the end of the line: {raw:?} -> {line:?}"
        );
        let plain = line.unit == PLAIN_UNIT && line.time == received;
        if plain {
            assert_eq!(line.message, raw, "a line not in the format is kept whole");
        } else {
            let printed = line.to_string();
            assert_eq!(
                LogLine::parse(&printed, received),
                line,
                "a structured line reads back from {printed:?} (written {raw:?})"
            );
        }
    }
}
