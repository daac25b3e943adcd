//! [`Chain`]: an error followed by each of its causes, `: `-separated.
//!
//! vupdate's error messages carry their cause in their text and do not also return it from
//! `source()`, so every log line, API message and `{:#}` of the binary prints a cause once.
//! A cause whose own text leaves out its causes (an HTTP client's "error sending request",
//! a Git library's wrapper) is written with [`Chain`], so its details are not lost.

use std::error::Error;
use std::fmt;

/// Displays an error and its causes: `outer: inner: innermost`.
#[derive(Debug, Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1
                .as_deref()
                .map(|inner| inner as &(dyn Error + 'static))
        }
    }

    #[test]
    fn every_cause_follows_once() {
        let error = Layer(
            "error sending request",
            Some(Box::new(Layer(
                "tcp connect error",
                Some(Box::new(Layer("connection refused", None))),
            ))),
        );
        assert_eq!(
            Chain(&error).to_string(),
            "error sending request: tcp connect error: connection refused"
        );
        assert_eq!(Chain(&Layer("alone", None)).to_string(), "alone");
    }
}
