//! Durations written as humantime strings (`30s`, `7d`, `1h 30m`) in `distribution.yaml`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration read from a humantime string; the error names the text and shows examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HumanDuration(pub(crate) Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text)
            .map(HumanDuration)
            .map_err(|error| serde::de::Error::custom(InvalidDuration { text, error }))
    }
}

struct InvalidDuration {
    text: String,
    error: humantime::DurationError,
}

impl fmt::Display for InvalidDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid duration `{}` ({}); write e.g. `30s`, `15m`, `12h` or `7d`",
            self.text, self.error
        )
    }
}
