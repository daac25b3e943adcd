//! Java `.properties` layers merged in place: the base's lines stay, values are swapped.
//!
//! The syntax is `java.util.Properties.load`'s: a key ends at the first unescaped `=`, `:`
//! or whitespace; `#` and `!` start comment lines; a line ending in an odd number of `\`
//! continues on the next one (whose leading whitespace is skipped); `\uXXXX`, `\t`, `\n`,
//! `\r`, `\f` and `\x` are escapes. Text is spliced, never re-encoded, so escapes, comments
//! and line endings are kept as written.

use std::collections::BTreeMap;

use indexmap::IndexMap;

use super::merge::Layer;
use super::{Format, Position, SettingsError};

/// Whitespace as `Properties.load` counts it.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

/// One `key=value` entry, as byte offsets into its file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// The key, unescaped.
    key: String,
    /// Start of the comment lines directly above the entry, or of the entry.
    comments_start: usize,
    /// Start of the key as written.
    key_start: usize,
    /// End of the key as written.
    key_end: usize,
    /// End of the separator (or of the key without one) as written.
    separator_end: usize,
    /// Start of the value as written (after the separator and its whitespace).
    value_start: usize,
    /// End of the value's last character as written: without a `\` continuing onto a
    /// blank line or ending the file.
    value_end: usize,
    /// End of the entry's last line (before its line terminator).
    line_end: usize,
    /// The entry's last line ends in a `\` continuing into the end of the file.
    dangling: bool,
}

/// A parsed file: its text and entries in order.
struct Parsed<'a> {
    text: &'a str,
    entries: Vec<Entry>,
}

/// Merges `layers` (the first is the base of the rest) into the base's text.
pub(super) fn merge(layers: &[Layer<'_>]) -> Result<Vec<u8>, SettingsError> {
    let parsed = layers
        .iter()
        .map(parse_layer)
        .collect::<Result<Vec<_>, _>>()?;
    let (base, overlays) = parsed
        .split_first()
        .expect("a merge has at least one layer");

    let base_keys: BTreeMap<&str, ()> = base.entries.iter().map(|e| (e.key.as_str(), ())).collect();
    let mut replaced: BTreeMap<&str, &str> = BTreeMap::new();
    // New keys in order of first appearance: written as first seen, with the last value.
    let mut added: IndexMap<&str, (&Entry, &str, &str)> = IndexMap::new();
    for overlay in overlays {
        for entry in &overlay.entries {
            let value = &overlay.text[entry.value_start..entry.value_end];
            if base_keys.contains_key(entry.key.as_str()) {
                replaced.insert(&entry.key, value);
            } else if let Some(slot) = added.get_mut(entry.key.as_str()) {
                slot.2 = value;
            } else {
                added.insert(&entry.key, (entry, overlay.text, value));
            }
        }
    }

    let text = base.text;
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0;
    let mut dangling = false;
    for entry in &base.entries {
        match replaced.get(entry.key.as_str()) {
            Some(value) => {
                let (value_start, separator) = entry.rewrite_point(text, value);
                out.push_str(&text[cursor..value_start]);
                push_value(&mut out, separator, value);
                // Through the line's end: a dangling `\` of the old value goes with it.
                cursor = entry.line_end;
                dangling = false;
            }
            None => dangling = entry.dangling,
        }
    }
    out.push_str(&text[cursor..]);

    if !added.is_empty() {
        let newline = line_ending(text);
        if !out.is_empty() && !out.ends_with(['\n', '\r']) {
            out.push_str(newline);
        }
        if dangling {
            // The base's last line continues into the end of the file: a blank line ends it.
            // After a lone CR, an LF would join it into one CR LF break, and the blank line
            // would be gone: a CR ends it there instead.
            if out.ends_with('\r') && newline == "\n" {
                out.push('\r');
            } else {
                out.push_str(newline);
            }
        }
        for (entry, entry_text, value) in added.values() {
            let (value_start, separator) = entry.rewrite_point(entry_text, value);
            out.push_str(&entry_text[entry.comments_start..value_start]);
            push_value(&mut out, separator, value);
            out.push_str(newline);
        }
    }
    Ok(out.into_bytes())
}

/// What must come between an entry's key as written and a new value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Separator {
    /// The key is followed by its `=` or `:` already.
    Written,
    /// The key is followed by whitespace only: `=` before a value starting with `=` or `:`,
    /// which would otherwise be read as the separator and lost from the value.
    Spaces,
    /// The key was written with no separator at all: `=` before a value that is not empty.
    IfValue,
    /// The key was written as nothing (a lone `\`): `=` always, or it is no entry.
    Always,
}

impl Entry {
    /// Where a new value of the entry is written, and what goes before it. A `\` ending the
    /// file's last line continues nothing there, but with text written after it, it would
    /// continue into that text or escape it (`\=`): the entry is cut before it.
    /// An empty `value` goes right after the separator: after a `\` continuing the line
    /// (`k=\` + a line break + an indented value) it would be read the same, but a merge of
    /// the result would then write it without the `\`, and a merge must be stable.
    fn rewrite_point(&self, text: &str, value: &str) -> (usize, Separator) {
        let end = if self.dangling {
            self.line_end - 1
        } else {
            self.line_end
        };
        let start = if value.is_empty() {
            self.separator_end
        } else {
            self.value_start
        };
        let value_start = start.min(end);
        let separator = if self.key_start >= value_start {
            Separator::Always
        } else if self.key_end.min(end) == value_start {
            Separator::IfValue
        } else if text[self.key_end..value_start].contains(['=', ':']) {
            Separator::Written
        } else {
            Separator::Spaces
        };
        (value_start, separator)
    }
}

/// Appends `value` after the separator it needs.
fn push_value(out: &mut String, separator: Separator, value: &str) {
    let needed = match separator {
        Separator::Written => false,
        Separator::Spaces => value.starts_with(['=', ':']),
        Separator::IfValue => !value.is_empty(),
        Separator::Always => true,
    };
    if needed {
        out.push('=');
    }
    out.push_str(value);
}

/// The file's first line terminator, `\n` when it has none.
fn line_ending(text: &str) -> &'static str {
    match text.find(['\n', '\r']) {
        Some(at) if text[at..].starts_with("\r\n") => "\r\n",
        Some(at) if text[at..].starts_with('\r') => "\r",
        _ => "\n",
    }
}

fn parse_layer<'a>(layer: &Layer<'a>) -> Result<Parsed<'a>, SettingsError> {
    let text = layer.text("merged")?;
    let entries = parse(text).map_err(|(offset, message)| SettingsError::Parse {
        tree: layer.tree,
        path: layer.path.to_owned(),
        format: Format::Properties,
        position: Some(Position::at_offset(text, offset)),
        message: message.to_owned(),
    })?;
    Ok(Parsed { text, entries })
}

/// Physical lines as (start, end before the terminator).
fn physical_lines(text: &str) -> Vec<(usize, usize)> {
    let mut lines = Vec::new();
    let mut start = 0;
    while start < text.len() {
        match text[start..].find(['\n', '\r']) {
            Some(at) => {
                let end = start + at;
                lines.push((start, end));
                start = if text[end..].starts_with("\r\n") {
                    end + 2
                } else {
                    end + 1
                };
            }
            None => {
                lines.push((start, text.len()));
                break;
            }
        }
    }
    lines
}

/// Whether a line ends in an odd number of `\`, i.e. continues on the next line.
fn continues(line: &str) -> bool {
    (line.len() - line.trim_end_matches('\\').len()) % 2 == 1
}

/// Entries of a properties text; an error is (byte offset, message).
fn parse(text: &str) -> Result<Vec<Entry>, (usize, &'static str)> {
    let lines = physical_lines(text);
    let mut entries = Vec::new();
    let mut comments_start = None;
    let mut index = 0;
    while index < lines.len() {
        let (start, end) = lines[index];
        let mut content = &text[start..end];
        if start == 0 {
            content = content.strip_prefix('\u{feff}').unwrap_or(content);
        }
        let body = content.trim_start_matches(is_space);
        if body.is_empty() {
            comments_start = None;
            index += 1;
            continue;
        }
        if body.starts_with(['#', '!']) {
            comments_start.get_or_insert(start);
            index += 1;
            continue;
        }
        while continues(&text[lines[index].0..lines[index].1]) && index + 1 < lines.len() {
            index += 1;
        }
        let line_end = lines[index].1;
        let dangling = continues(&text[lines[index].0..line_end]) && index + 1 == lines.len();
        let key_start = end - body.len();
        let mut scanner = Scanner {
            text,
            pos: key_start,
            end: line_end,
            written: key_start,
        };
        let key = scanner.key()?;
        let key_end = scanner.written;
        scanner.separator();
        let separator_end = scanner.written;
        let value_start = scanner.pos;
        let (_, value_end) = scanner.value()?;
        // An empty value starts where the separator (or key) ends as written: a `\` left
        // after them continues onto a blank line, and a value written there would follow it.
        let (value_start, value_end) = if value_end == value_start {
            (separator_end, separator_end)
        } else {
            (value_start, value_end)
        };
        entries.push(Entry {
            key,
            comments_start: comments_start.take().unwrap_or(start),
            key_start,
            key_end,
            separator_end,
            value_start,
            value_end,
            line_end,
            dangling,
        });
        index += 1;
    }
    Ok(entries)
}

/// A cursor over one logical line, `pos..end`, that may span physical lines.
struct Scanner<'a> {
    text: &'a str,
    pos: usize,
    end: usize,
    /// Where the last character read ends, line continuations left out.
    written: usize,
}

/// What a `\` at the cursor means.
enum Escape {
    /// `\` + line terminator: the line goes on at this offset.
    Continuation(usize),
    /// An escaped character, and the offset after the escape.
    Char(char, usize),
    /// A `\` at the very end: ignored, as `Properties.load` does.
    Dangling,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..self.end].chars().next()
    }

    /// Reads the key up to its first unescaped separator or whitespace, unescaped.
    fn key(&mut self) -> Result<String, (usize, &'static str)> {
        let mut key = String::new();
        while let Some(c) = self.peek() {
            match c {
                '\\' => match self.escape()? {
                    Escape::Continuation(next) => self.pos = next,
                    Escape::Char(c, next) => {
                        key.push(c);
                        self.pos = next;
                        self.written = next;
                    }
                    Escape::Dangling => self.pos = self.end,
                },
                '=' | ':' => break,
                c if is_space(c) => break,
                c => {
                    key.push(c);
                    self.pos += c.len_utf8();
                    self.written = self.pos;
                }
            }
        }
        Ok(key)
    }

    /// Skips whitespace, at most one `=` or `:`, and whitespace again.
    fn separator(&mut self) {
        self.skip_space();
        if matches!(self.peek(), Some('=' | ':')) {
            self.pos += 1;
            self.written = self.pos;
            self.skip_space();
        }
    }

    /// Skips whitespace and line continuations.
    fn skip_space(&mut self) {
        loop {
            match self.peek() {
                Some(c) if is_space(c) => {
                    self.pos += 1;
                    self.written = self.pos;
                }
                Some('\\') => match self.continuation() {
                    Some(next) => self.pos = next,
                    None => return,
                },
                _ => return,
            }
        }
    }

    /// Reads the value, unescaped (merging copies it as written, so this checks its
    /// escapes), and where its last character as written ends: a `\` continuing onto a
    /// blank line, or ending the file, adds nothing to the value, so it is not part of it.
    fn value(&mut self) -> Result<(String, usize), (usize, &'static str)> {
        let mut value = String::new();
        let mut end = self.pos;
        while let Some(c) = self.peek() {
            if c == '\\' {
                match self.escape()? {
                    Escape::Continuation(next) => self.pos = next,
                    Escape::Char(c, next) => {
                        value.push(c);
                        self.pos = next;
                        end = next;
                    }
                    Escape::Dangling => self.pos = self.end,
                }
            } else {
                value.push(c);
                self.pos += c.len_utf8();
                end = self.pos;
            }
        }
        Ok((value, end))
    }

    /// With `\` at the cursor followed by a line terminator: where the next line's text starts.
    /// A `\` that ends the logical line (at the end of the file) continues nothing.
    fn continuation(&self) -> Option<usize> {
        if self.pos + 1 >= self.end {
            return None;
        }
        let after = &self.text[self.pos + 1..];
        let terminator = if after.starts_with("\r\n") {
            2
        } else if after.starts_with(['\n', '\r']) {
            1
        } else {
            return None;
        };
        let next = self.pos + 1 + terminator;
        let rest = &self.text[next..self.end.max(next)];
        Some(next + rest.len() - rest.trim_start_matches(is_space).len())
    }

    /// Reads the escape at the cursor (which is at a `\`).
    fn escape(&self) -> Result<Escape, (usize, &'static str)> {
        if let Some(next) = self.continuation() {
            return Ok(Escape::Continuation(next));
        }
        let mut chars = self.text[self.pos + 1..self.end].chars();
        let Some(c) = chars.next() else {
            return Ok(Escape::Dangling);
        };
        let after = self.pos + 1 + c.len_utf8();
        let unescaped = match c {
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            'f' => '\x0c',
            'u' => return self.unicode_escape(after),
            other => other,
        };
        Ok(Escape::Char(unescaped, after))
    }

    /// `\uXXXX` (a surrogate pair written as two escapes makes one character).
    fn unicode_escape(&self, digits_at: usize) -> Result<Escape, (usize, &'static str)> {
        let unit = |at: usize| -> Option<u32> {
            let hex = self.text[..self.end].get(at..at + 4)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            u32::from_str_radix(hex, 16).ok()
        };
        let Some(first) = unit(digits_at) else {
            return Err((self.pos, "malformed \\uXXXX escape"));
        };
        let after = digits_at + 4;
        if (0xD800..0xDC00).contains(&first)
            && self.text[after..self.end].starts_with("\\u")
            && let Some(second) = unit(after + 2)
            && (0xDC00..0xE000).contains(&second)
        {
            let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
            let c = char::from_u32(code).expect("a surrogate pair is a valid character");
            return Ok(Escape::Char(c, after + 6));
        }
        Ok(Escape::Char(
            char::from_u32(first).unwrap_or('\u{fffd}'),
            after,
        ))
    }
}

#[cfg(test)]
/// Keys and values as `Properties.load` would read them (a repeated key: the last wins).
pub(super) fn decoded(text: &str) -> IndexMap<String, String> {
    parse(text)
        .expect("valid properties")
        .into_iter()
        .map(|entry| {
            let mut scanner = Scanner {
                text,
                pos: entry.value_start,
                end: entry.value_end,
                written: entry.value_start,
            };
            let (value, _) = scanner.value().expect("checked by parse");
            (entry.key, value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::TreeId;

    fn keys_and_values(text: &str) -> Vec<(String, String)> {
        parse(text)
            .expect("valid properties")
            .into_iter()
            .map(|entry| {
                (
                    entry.key,
                    text[entry.value_start..entry.value_end].to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn java_syntax_table() {
        // (text, [(key unescaped, value as written)])
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("a=1", &[("a", "1")]),
            ("a = 1", &[("a", "1")]),
            ("a:1\nb 2\nc\t=\t3", &[("a", "1"), ("b", "2"), ("c", "3")]),
            ("  # comment\n! also\n\n   k=v  ", &[("k", "v  ")]),
            ("a==1", &[("a", "=1")]),
            ("key", &[("key", "")]),
            ("key=", &[("key", "")]),
            ("a\\ b=c", &[("a b", "c")]),
            ("a\\=b=c", &[("a=b", "c")]),
            ("\\u0041=x", &[("A", "x")]),
            ("\\uD83D\\uDE00=smile", &[("\u{1F600}", "smile")]),
            ("a=first\\\n    second", &[("a", "first\\\n    second")]),
            ("a=x\\\\\nb=y", &[("a", "x\\\\"), ("b", "y")]),
            ("lo\\\n  ng=v", &[("long", "v")]),
            ("a=1\r\nb=2\r\n", &[("a", "1"), ("b", "2")]),
            ("a=1\rb=2", &[("a", "1"), ("b", "2")]),
            ("a=dangling\\", &[("a", "dangling")]),
            ("# not continued \\\nk=v", &[("k", "v")]),
            ("\u{feff}k=v", &[("k", "v")]),
            ("k=a\\tb\\u00e9", &[("k", "a\\tb\\u00e9")]),
        ];
        for (text, expected) in cases {
            let expected: Vec<(String, String)> = expected
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            assert_eq!(keys_and_values(text), expected, "{text:?}");
        }
    }

    fn merged(texts: &[&str]) -> String {
        let layers: Vec<Layer<'_>> = texts
            .iter()
            .enumerate()
            .map(|(index, text)| Layer {
                tree: if index == 0 {
                    TreeId::Base
                } else {
                    TreeId::Overlay(index)
                },
                path: "app.properties",
                bytes: text.as_bytes(),
            })
            .collect();
        String::from_utf8(merge(&layers).expect("valid properties")).expect("UTF-8")
    }

    #[test]
    fn merge_table() {
        // (layers, expected text)
        let cases: &[(&[&str], &str)] = &[
            // Comments, order and untouched lines stay; the value is replaced in place.
            (
                &[
                    "# Server\nhost = localhost\n! port below\nport: 80\n",
                    "port=8080\n",
                ],
                "# Server\nhost = localhost\n! port below\nport: 8080\n",
            ),
            // New keys are appended with the comments directly above them.
            (
                &["a=1\n", "# why b\nb=2\n\n# orphan\n\nc=3\n"],
                "a=1\n# why b\nb=2\nc=3\n",
            ),
            // A base without a final newline gets one before appended keys.
            (&["a=1", "b=2"], "a=1\nb=2\n"),
            // CRLF files stay CRLF.
            (&["a=1\r\nb=2\r\n", "c=3\n"], "a=1\r\nb=2\r\nc=3\r\n"),
            // Every occurrence of a repeated key is replaced.
            (&["a=1\nb=x\na=2\n", "a=3"], "a=3\nb=x\na=3\n"),
            // Multi-line values are replaced as a whole, escapes copied as written.
            (
                &["a=one\\\n    two\nb=2\n", "a=x\\u00e9\\\n  y\n"],
                "a=x\\u00e9\\\n  y\nb=2\n",
            ),
            // Keys match after unescaping.
            (&["a\\ b=1\n", "a\\u0020b=2\n"], "a\\ b=2\n"),
            // A bare key gets a separator when it gains a value.
            (&["flag\n", "flag=on\n"], "flag=on\n"),
            (&["", "x=1"], "x=1\n"),
            // Later layers win; a new key keeps its first spelling and place.
            (&["a=1\n", "b=1\n", "b: 2\na=3\n"], "a=3\nb=2\n"),
            // A dangling continuation at the end of the base does not swallow new keys.
            (&["a=1\\", "b=2"], "a=1\\\n\nb=2\n"),
            (&["a=1\\\n", "b=2"], "a=1\\\n\nb=2\n"),
            (&["a=1\\", "a=2\\"], "a=2"),
        ];
        check_merges(cases);
    }

    /// Merges each case's layers, expecting its text, and what Java would read from the
    /// result to be what the layers say, the last one winning.
    fn check_merges(cases: &[(&[&str], &str)]) {
        for (layers, expected) in cases {
            let result = merged(layers);
            assert_eq!(result, *expected, "{layers:?}");
            let mut want: IndexMap<String, String> = IndexMap::new();
            for layer in *layers {
                want.extend(decoded(layer));
            }
            assert_eq!(decoded(&result), want, "{layers:?}");
        }
    }

    /// Found by the `settings_properties` fuzz target: an overlay's last line `b\` (a key
    /// and a `\` continuing nothing) was appended as written, so the `\` then continued
    /// into the next appended key, which was lost into `b`'s line; and a base's last line
    /// `\` given a value became `\=8080`, the key `=`.
    #[test]
    fn a_dangling_backslash_of_an_appended_key_joins_no_line() {
        let cases: &[(&[&str], &str)] = &[
            (&["a=1\n", "b\\", "c=3"], "a=1\nb\nc=3\n"),
            (&["a=1\n", "b = 2\\", "c=3"], "a=1\nb = 2\nc=3\n"),
            (&["a=1\n", "# why\n\\", "c=3"], "a=1\n# why\n=\nc=3\n"),
            // The same in the base: the `\` would escape the `=` of the new value.
            (&["a=1\r\n\\", "=8080"], "a=1\r\n=8080"),
            (&["b\\", "b=2"], "b=2"),
        ];
        check_merges(cases);
    }

    /// Found by the `settings_properties` fuzz target: a value whose `\` continued onto a
    /// blank line was copied with its `\` and the CR ending it, so the LF written next made
    /// one CR LF line break with it and the `\` continued into the next key, which was lost.
    #[test]
    fn a_value_continued_onto_a_blank_line_swallows_no_key() {
        let cases: &[(&[&str], &str)] = &[
            (&["", "k=v\\\r\rj=2"], "k=v\nj=2\n"),
            (&["k=1\nj=2\n", "k=v\\\r\r"], "k=v\nj=2\n"),
            (&["a=1\n", "k = v \\\n   \n"], "a=1\nk = v \n"),
        ];
        check_merges(cases);
    }

    /// Found by the `settings_properties` fuzz target: the key `a` written `a\` + CR + a
    /// blank line, given a value, was copied with its `\` and CR, and the LF after it made
    /// one CR LF line break: the next key became `a`'s value.
    #[test]
    fn a_key_continued_onto_a_blank_line_swallows_no_key() {
        let cases: &[(&[&str], &str)] = &[
            (&["", " a\\\r\r=0h"], " a\n=0h\n"),
            (&["a\\\r\rb=1\n", "a=2"], "a=2\rb=1\n"),
            (&["", "a =\\\r\rb=1"], "a =\nb=1\n"),
        ];
        check_merges(cases);
    }

    /// Found by the `settings_properties` fuzz target: `ho   0` given the value `=1` was
    /// written `ho   =1`, where the `=` is the separator and the value `1`.
    #[test]
    fn a_value_starting_with_a_separator_keeps_it() {
        let cases: &[(&[&str], &str)] = &[
            (&["ho   0\n", "ho = =1"], "ho   ==1\n"),
            (&["a=1\n", "\\\nho   0", "ho = :1"], "a=1\n\\\nho   =:1\n"),
            (&["ho   0\n", "ho=1"], "ho   1\n"),
            (&["ho:0\n", "ho==1"], "ho:=1\n"),
        ];
        check_merges(cases);
    }

    /// Found by the `settings_properties` fuzz target: an appended key whose value was
    /// emptied by a later layer was written after its first value's `\` continuation
    /// (`port=\` + an empty line), which a second merge wrote as `port=`: the merge of its
    /// own result changed it.
    #[test]
    fn an_emptied_value_is_written_after_its_separator() {
        let base = "# head\npead\nptrt=9rtost = a\\\n";
        let overlay = "port=\\\ntrt=9rtost = a\\\n";
        let layer = "port=\\\n";
        let once = merged(&[base, overlay, layer]);
        assert_eq!(once, "# head\npead\nptrt=9rtost = a\\\n\nport=\n");
        assert_eq!(merged(&[&once, overlay, layer]), once);
        let cases: &[(&[&str], &str)] = &[
            (&["k=\\\n  old\nj=2\n", "k="], "k=\nj=2\n"),
            (&["a=1\n", "k=\\\n  v", "k="], "a=1\nk=\n"),
        ];
        check_merges(cases);
    }

    /// Found by the `settings_properties` fuzz target: a base ending `a1\` + a lone CR (its
    /// `\` continues into the end of the file) got an LF for the blank line that ends it,
    /// which made one CR LF break with that CR: the appended `u` became `a1`'s value.
    #[test]
    fn a_dangling_line_ended_by_a_lone_cr_keeps_its_blank_line() {
        let cases: &[(&[&str], &str)] = &[(&["\na1\\\r", "u\nL"], "\na1\\\r\ru\nL\n")];
        check_merges(cases);
        let once = merged(&["\na1\\\r", "u\nL"]);
        assert_eq!(merged(&[&once, "u\nL"]), once);
    }

    #[test]
    fn malformed_unicode_escapes_are_errors_with_position() {
        let layers = [
            Layer {
                tree: TreeId::Base,
                path: "a.properties",
                bytes: b"ok=1\n",
            },
            Layer {
                tree: TreeId::Overlay(1),
                path: "a.properties",
                bytes: b"x=1\nbad=\\u12G4\n",
            },
        ];
        let error = merge(&layers).expect_err("malformed escape");
        assert_eq!(
            error.to_string(),
            "overlay #1: `a.properties` is not valid Java properties at line 2, column 5: malformed \\uXXXX escape"
        );
    }
}
