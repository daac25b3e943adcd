//! A regular expression written in a settings file: compiled when the file is read, written
//! back as its source.

use std::fmt;

use regex::Regex;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::macros::{MacroError, Macros};

/// A compiled regular expression that remembers its source text (`outputMatch`,
/// `faultFilesMatch`). Two patterns are equal when their sources are.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    regex: Regex,
    whole: Regex,
}

/// The `outputMatch` of a command: a [`Pattern`] that its output must match.
pub type OutputMatch = Pattern;

impl Pattern {
    /// Compiles `source`; the error is the regex compiler's message.
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        Ok(Pattern {
            source: source.to_owned(),
            regex: Regex::new(source)?,
            whole: Regex::new(&format!("^(?:{source})$"))?,
        })
    }

    /// The pattern as written in the file.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The compiled expression, for searches this type does not offer.
    pub fn regex(&self) -> &Regex {
        &self.regex
    }

    /// Whether the pattern matches somewhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    /// Whether the pattern matches all of `text`, as the original matched fault file names.
    pub fn matches_whole(&self, text: &str) -> bool {
        self.whole.is_match(text)
    }

    /// Expands `%%name%%` macros in the source and compiles the result. Values are inserted
    /// as literal text (regex-escaped), so a version `1.2.3` matches only itself.
    pub fn expand(&self, macros: &Macros) -> Result<Pattern, MacroError> {
        if Macros::names_in(&self.source).is_empty() {
            return Ok(self.clone());
        }
        let escaped: Macros = macros
            .iter()
            .map(|(name, value)| (name, regex::escape(value)))
            .collect();
        let source = escaped.expand(&self.source)?;
        Pattern::new(&source).map_err(|error| MacroError::InvalidPattern {
            pattern: source.clone(),
            message: one_line(&error),
            field: None,
        })
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern").field(&self.source).finish()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A visitor, so the error is raised while the JSON reader still points at the string.
        struct PatternVisitor;
        impl Visitor<'_> for PatternVisitor {
            type Value = Pattern;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a regular expression")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Pattern, E> {
                Pattern::new(text).map_err(|error| {
                    E::custom(format_args!(
                        "`{text}` is not a valid regular expression: {}",
                        one_line(&error)
                    ))
                })
            }
        }
        deserializer.deserialize_str(PatternVisitor)
    }
}

/// The regex compiler's message without the multi-line drawing of the pattern, so it fits in
/// one error line after a JSON path.
fn one_line(error: &regex::Error) -> String {
    let text = error.to_string();
    let last = text
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or(&text);
    last.trim().trim_start_matches("error: ").to_owned()
}
