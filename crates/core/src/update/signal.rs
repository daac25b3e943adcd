//! The signal that asks a service to stop (`runService.stopSignal`, a vupdate extension).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Unix signal a service may be asked to stop with, written `TERM` (or `SIGTERM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StopSignal {
    /// `SIGTERM`, the default.
    #[default]
    Term,
    /// `SIGINT`, as Ctrl-C sends.
    Int,
    /// `SIGQUIT`, which also asks for a core dump.
    Quit,
    /// `SIGHUP`.
    Hup,
    /// `SIGKILL`, for services that cannot stop cleanly.
    Kill,
    /// `SIGUSR1`.
    Usr1,
    /// `SIGUSR2`.
    Usr2,
}

const ALL: [StopSignal; 7] = [
    StopSignal::Term,
    StopSignal::Int,
    StopSignal::Quit,
    StopSignal::Hup,
    StopSignal::Kill,
    StopSignal::Usr1,
    StopSignal::Usr2,
];

impl StopSignal {
    /// The name without `SIG`, as written in install.json (`TERM`).
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Term => "TERM",
            StopSignal::Int => "INT",
            StopSignal::Quit => "QUIT",
            StopSignal::Hup => "HUP",
            StopSignal::Kill => "KILL",
            StopSignal::Usr1 => "USR1",
            StopSignal::Usr2 => "USR2",
        }
    }

    /// The signal number on Linux (x86 and ARM numbering).
    pub fn number(self) -> i32 {
        match self {
            StopSignal::Term => 15,
            StopSignal::Int => 2,
            StopSignal::Quit => 3,
            StopSignal::Hup => 1,
            StopSignal::Kill => 9,
            StopSignal::Usr1 => 10,
            StopSignal::Usr2 => 12,
        }
    }
}

/// A signal name that is not one of [`StopSignal`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a stop signal: use one of TERM, INT, QUIT, HUP, KILL, USR1, USR2")]
pub struct StopSignalError(pub String);

impl FromStr for StopSignal {
    type Err = StopSignalError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let name = text.strip_prefix("SIG").unwrap_or(text);
        ALL.into_iter()
            .find(|signal| signal.name() == name)
            .ok_or_else(|| StopSignalError(text.to_owned()))
    }
}

impl fmt::Display for StopSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for StopSignal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for StopSignal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A visitor, so the error is raised while the JSON reader still points at the string.
        struct SignalVisitor;
        impl serde::de::Visitor<'_> for SignalVisitor {
            type Value = StopSignal;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a signal name such as TERM")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<StopSignal, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(SignalVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_with_or_without_sig() {
        for signal in ALL {
            assert_eq!(signal.name().parse(), Ok(signal));
            assert_eq!(format!("SIG{signal}").parse(), Ok(signal));
        }
        for bad in ["", "term", "SIG", "STOP", "SIGSIGTERM"] {
            assert_eq!(
                bad.parse::<StopSignal>(),
                Err(StopSignalError(bad.to_owned()))
            );
        }
    }
}
