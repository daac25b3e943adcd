//! Exit codes: 0 success, 2 when the user's input is invalid, 1 for every other failure;
//! `status --wait` ends with 3 when its timeout passed and 4 when the fleet is stuck.

use std::fmt;
use std::process::ExitCode;

#[cfg(any(feature = "state", feature = "builder"))]
use vupdate_state::StateError;

/// A problem with what the user gave (arguments, files, a stale revision): exit code 2.
#[derive(Debug)]
pub struct InvalidInput(String);

impl InvalidInput {
    /// A message that names the argument or file and what is wrong with it.
    pub fn new(message: impl Into<String>) -> Self {
        InvalidInput(message.into())
    }
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidInput {}

/// How `status --wait` ended without the fleet arriving: exit 3 (timed out) or 4 (stuck).
#[derive(Debug)]
pub struct WaitEnded {
    code: u8,
    message: String,
}

#[cfg(feature = "state")]
impl WaitEnded {
    /// `--timeout` passed first.
    pub fn timed_out(message: String) -> Self {
        WaitEnded { code: 3, message }
    }

    /// It cannot arrive without a new commit.
    pub fn stuck(message: String) -> Self {
        WaitEnded { code: 4, message }
    }
}

impl fmt::Display for WaitEnded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WaitEnded {}

/// The exit code for an error that ended the program.
pub fn code_for(error: &anyhow::Error) -> ExitCode {
    if let Some(ended) = error.downcast_ref::<WaitEnded>() {
        return ExitCode::from(ended.code);
    }
    let invalid = error
        .chain()
        .any(|cause| cause.is::<InvalidInput>() || is_invalid_state_error(cause));
    if invalid {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}

/// Whether `cause` is a state repo error, or a build job's, caused by what the user gave.
#[cfg(any(feature = "state", feature = "builder"))]
fn is_invalid_state_error(cause: &(dyn std::error::Error + 'static)) -> bool {
    cause
        .downcast_ref::<StateError>()
        .is_some_and(StateError::is_invalid_input)
        || is_invalid_build_error(cause)
}

/// Without the state repo's crate there are no state repo errors.
#[cfg(not(any(feature = "state", feature = "builder")))]
fn is_invalid_state_error(_: &(dyn std::error::Error + 'static)) -> bool {
    false
}

#[cfg(feature = "builder")]
fn is_invalid_build_error(cause: &(dyn std::error::Error + 'static)) -> bool {
    cause
        .downcast_ref::<vupdate_builder::BuilderError>()
        .is_some_and(vupdate_builder::BuilderError::is_invalid_input)
}

#[cfg(all(feature = "state", not(feature = "builder")))]
fn is_invalid_build_error(_: &(dyn std::error::Error + 'static)) -> bool {
    false
}
