//! `%%name%%` macro expansion, strict (undefined is an error) or partial (undefined is left in).
//!
//! **Syntax.** A macro is `%%`, a name of letters, digits, `_`, `.` or `-`, and `%%`. Text is
//! scanned left to right for the leftmost such token; scanning goes on after it, so in
//! `%%a%%b%%` only `a` is a macro. Any other `%%` (`100%%`, a lone `%%`, `%% x %%`) is literal
//! text and is kept as written.
//!
//! **No recursion.** A value is inserted verbatim: if it holds `%%x%%` itself, that text stays
//! in the result. So no definition can loop, and a value never depends on the order in which
//! macros are looked up.

use std::fmt;
use std::sync::LazyLock;

use indexmap::IndexMap;
use regex::{Captures, Regex};

/// How many characters of text to quote on each side of an undefined macro.
const EXCERPT_CONTEXT: usize = 24;

static MACRO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"%%([A-Za-z0-9_.\-]+)%%").expect("the macro pattern is a valid regex")
});

/// Why a strict expansion failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacroError {
    /// A `%%name%%` in the text has no value.
    #[error("{}undefined macro `%%{name}%%` in `{excerpt}`", field_prefix(.field))]
    Undefined {
        /// The macro name, without the `%%`.
        name: String,
        /// A short excerpt of the text around the macro (`…` marks cut ends).
        excerpt: String,
        /// Where the text came from (e.g. `runService.args[1]`), when the caller said.
        field: Option<String>,
    },
    /// A regular expression no longer compiles once its macros are expanded.
    #[error("{}pattern `{pattern}` is not a valid regular expression after macro expansion: {message}", field_prefix(.field))]
    InvalidPattern {
        /// The expanded pattern.
        pattern: String,
        /// What the regex compiler said.
        message: String,
        /// Where the pattern came from, when the caller said.
        field: Option<String>,
    },
}

fn field_prefix(field: &Option<String>) -> String {
    field
        .as_deref()
        .map(|field| format!("{field}: "))
        .unwrap_or_default()
}

impl MacroError {
    /// Places the error inside `outer` (a field name such as `args[1]` or `runService`):
    /// an error already in `env.PATH` becomes one in `outer.env.PATH`.
    pub fn in_field(mut self, outer: impl fmt::Display) -> Self {
        let (MacroError::Undefined { field, .. } | MacroError::InvalidPattern { field, .. }) =
            &mut self;
        *field = Some(match field.take() {
            None => outer.to_string(),
            Some(inner) if inner.starts_with('[') => format!("{outer}{inner}"),
            Some(inner) => format!("{outer}.{inner}"),
        });
        self
    }

    /// The field the error is in, as set by [`MacroError::in_field`].
    pub fn field(&self) -> Option<&str> {
        match self {
            MacroError::Undefined { field, .. } | MacroError::InvalidPattern { field, .. } => {
                field.as_deref()
            }
        }
    }
}

/// Whether `name` can be written as a macro, i.e. is non-empty letters, digits, `_`, `.`, `-`.
pub fn is_macro_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The outcome of a partial expansion ([`Macros::expand_partial`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    /// The text with every defined `%%name%%` replaced.
    pub text: String,
    /// Names replaced at least once, in order of first use.
    pub expanded: Vec<String>,
    /// Names found with no value (left in the text), in order of first use.
    pub unexpanded: Vec<String>,
}

/// An ordered set of macro values, `name -> value`.
///
/// Defining a name again replaces its value in place (later wins, first position kept); this
/// is how `.defines` files and build-time values (`version`, `role`, ...) override each other:
/// extend with the weaker source first. A name that [`is_macro_name`] refuses can be stored
/// but never matches, since no macro token can spell it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Macros {
    values: IndexMap<String, String>,
}

impl Macros {
    /// No macros defined.
    pub fn new() -> Self {
        Macros::default()
    }

    /// Adds (or replaces) one value, builder style.
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.insert(name, value);
        self
    }

    /// Adds (or replaces) one value; returns the value it replaced.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) -> Option<String> {
        self.values.insert(name.into(), value.into())
    }

    /// The value of `name`, if defined.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The definitions in the order they were first made.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// How many names are defined.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no name is defined.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Expands every macro in `text`; the first undefined one is an error naming it.
    pub fn expand(&self, text: &str) -> Result<String, MacroError> {
        let mut undefined = None;
        let expanded = MACRO.replace_all(text, |caps: &Captures<'_>| {
            let whole = caps.get(0).expect("group 0 is the whole match");
            match self.get(&caps[1]) {
                Some(value) => value.to_owned(),
                None => {
                    undefined
                        .get_or_insert_with(|| (caps[1].to_owned(), whole.start(), whole.end()));
                    whole.as_str().to_owned()
                }
            }
        });
        match undefined {
            None => Ok(expanded.into_owned()),
            Some((name, start, end)) => Err(MacroError::Undefined {
                name,
                excerpt: excerpt(text, start, end),
                field: None,
            }),
        }
    }

    /// Expands the defined macros in `text` and leaves the others as written; also returns
    /// the names left in, each once, in order of first appearance.
    pub fn expand_known(&self, text: &str) -> (String, Vec<String>) {
        let expansion = self.expand_partial(text);
        (expansion.text, expansion.unexpanded)
    }

    /// Expands the defined macros in `text`, leaves the others as written, and reports
    /// both: which names were replaced and which were left in (each once, in order).
    pub fn expand_partial(&self, text: &str) -> Expansion {
        let mut expanded = Vec::<String>::new();
        let mut unexpanded = Vec::<String>::new();
        let result = MACRO.replace_all(text, |caps: &Captures<'_>| {
            let (value, list) = match self.get(&caps[1]) {
                Some(value) => (value.to_owned(), &mut expanded),
                None => (caps[0].to_owned(), &mut unexpanded),
            };
            if !list.iter().any(|name| name == &caps[1]) {
                list.push(caps[1].to_owned());
            }
            value
        });
        Expansion {
            text: result.into_owned(),
            expanded,
            unexpanded,
        }
    }

    /// The names of all macros written in `text`, each once, in order of first appearance.
    pub fn names_in(text: &str) -> Vec<String> {
        Macros::new().expand_known(text).1
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Macros {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut macros = Macros::new();
        macros.extend(pairs);
        macros
    }
}

/// Later pairs override earlier definitions of the same name.
impl<K: Into<String>, V: Into<String>> Extend<(K, V)> for Macros {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, pairs: I) {
        for (name, value) in pairs {
            self.insert(name, value);
        }
    }
}

/// The line holding `text[start..end]`, cut to a few characters either side.
fn excerpt(text: &str, start: usize, end: usize) -> String {
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i);
    let before = &text[line_start..start];
    let after = &text[end..line_end];
    let cut_before = before
        .char_indices()
        .rev()
        .nth(EXCERPT_CONTEXT - 1)
        .map(|(i, _)| i);
    let cut_after = after.char_indices().nth(EXCERPT_CONTEXT).map(|(i, _)| i);
    let mut quoted = String::new();
    match cut_before {
        Some(i) if i > 0 => {
            quoted.push('…');
            quoted.push_str(&before[i..]);
        }
        _ => quoted.push_str(before),
    }
    quoted.push_str(&text[start..end]);
    match cut_after {
        Some(i) => {
            quoted.push_str(&after[..i]);
            quoted.push('…');
        }
        None => quoted.push_str(after),
    }
    quoted
}

#[cfg(test)]
mod tests;
