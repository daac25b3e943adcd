//! Editing one top-level mapping of a YAML file by splicing the smallest span, so that a
//! person's comments and layout survive and `git log -p` shows one line per change.
//!
//! No YAML library keeps comments through a parse and a render, so the editor works on the
//! text: the parser gives the byte position of each key and value, and an edit
//!
//! - replaces a scalar value's bytes (`api: jetto-1.2.3  # pinned` keeps its comment),
//! - replaces the lines of an entry whose value spans lines (a list, a nested mapping),
//! - deletes the lines of a removed entry,
//! - inserts a new entry as new lines: in sorted position when the keys are sorted, at the
//!   end otherwise, with the indentation of its siblings.
//!
//! The result is parsed again and must hold exactly the intended entries; when it does not
//! (a layout the splicer does not handle, such as a flow mapping `versions: {a: b}`), or when
//! the mapping is empty or absent, the file is rendered whole, keeping its leading comments.

pub(crate) mod render;
pub(crate) mod value;

use serde_saphyr::Spanned;

use crate::schema::entries::Entries;
use value::Node;
pub(crate) use value::Value;

/// One change to a mapping.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Set `key` to the value, adding the entry if needed.
    Set(String, Value),
    /// Remove the entry `key`, if present.
    Remove(String),
    /// Make the mapping exactly these entries: others are removed, these are set.
    ReplaceAll(Vec<(String, Value)>),
}

/// `ops` with every `ReplaceAll` turned into removals and sets against `current`.
fn expand(ops: &[Op], current: &[(String, Value)]) -> Vec<Op> {
    let mut expanded = Vec::new();
    for op in ops {
        match op {
            Op::ReplaceAll(entries) => {
                let kept = |key: &String| entries.iter().any(|(k, _)| k == key);
                expanded.extend(
                    current
                        .iter()
                        .filter(|(k, _)| !kept(k))
                        .map(|(k, _)| Op::Remove(k.clone())),
                );
                expanded.extend(entries.iter().map(|(k, v)| Op::Set(k.clone(), v.clone())));
            }
            other => expanded.push(other.clone()),
        }
    }
    expanded
}

/// Why a file cannot be edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotEditable(pub(crate) String);

/// The entries of the mapping under `top_key`: `Ok(None)` when the document is empty or
/// lacks the key, `Err` when it does not parse.
pub(crate) fn read_mapping(
    text: &str,
    top_key: &str,
) -> Result<Option<Vec<(String, Value)>>, NotEditable> {
    Ok(entries_of(parse_top(text)?.as_ref(), top_key))
}

/// The plain entries under `top_key` of a parsed document.
fn entries_of(top: Option<&Entries<Spanned<Node>>>, top_key: &str) -> Option<Vec<(String, Value)>> {
    let (_, node) = top?.0.iter().find(|(key, _)| key.value == top_key)?;
    Some(match &node.value {
        Node::Map(inner) => inner
            .iter()
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect(),
        Node::Other => Vec::new(),
    })
}

fn parse_top(text: &str) -> Result<Option<Entries<Spanned<Node>>>, NotEditable> {
    serde_saphyr::from_str::<Option<Entries<Spanned<Node>>>>(text).map_err(|error| {
        use serde_saphyr::MessageFormatter;
        let message = serde_saphyr::UserMessageFormatter.format_message(error.without_snippet());
        let at = error
            .location()
            .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
            .unwrap_or_default();
        NotEditable(format!(
            "it must parse before it can be edited: {message}{at}"
        ))
    })
}

/// Applies `ops` to the mapping under `top_key` of `text` (`None`: no file yet); `Ok(None)`
/// when the entries would not change, so the file is left exactly as it is.
pub(crate) fn edit_mapping(
    text: Option<&str>,
    top_key: &str,
    ops: &[Op],
) -> Result<Option<String>, NotEditable> {
    let top = match text {
        Some(text) => parse_top(text)?,
        None => None,
    };
    let current = entries_of(top.as_ref(), top_key).unwrap_or_default();
    let ops = &expand(ops, &current);
    let expected = apply_ops(current.clone(), ops);
    if expected == current {
        return Ok(None);
    }
    if let (Some(text), Some(top)) = (text, top)
        && let Some(spliced) = splice(text, top, top_key, ops)
    {
        let back = read_mapping(&spliced, top_key)
            .ok()
            .flatten()
            .unwrap_or_default();
        if same_entries(&back, &expected) {
            return Ok(Some(spliced));
        }
    }
    Ok(Some(render::file(
        &header(text.unwrap_or_default()),
        top_key,
        &expected,
    )))
}

/// The entries after `ops`: replaced in place, removed, new ones sorted in or appended.
fn apply_ops(mut entries: Vec<(String, Value)>, ops: &[Op]) -> Vec<(String, Value)> {
    for op in ops {
        match op {
            Op::Set(key, value) => match entries.iter_mut().find(|(k, _)| k == key) {
                Some(entry) => entry.1 = value.clone(),
                None => {
                    let at = if is_sorted(entries.iter().map(|(k, _)| k.as_str())) {
                        entries
                            .iter()
                            .position(|(k, _)| k > key)
                            .unwrap_or(entries.len())
                    } else {
                        entries.len()
                    };
                    entries.insert(at, (key.clone(), value.clone()));
                }
            },
            Op::Remove(key) => entries.retain(|(k, _)| k != key),
            Op::ReplaceAll(_) => unreachable!("expanded before use"),
        }
    }
    entries
}

fn same_entries(a: &[(String, Value)], b: &[(String, Value)]) -> bool {
    let sorted = |list: &[(String, Value)]| {
        let mut list = list.to_vec();
        list.sort_by(|x, y| x.0.cmp(&y.0));
        list
    };
    sorted(a) == sorted(b)
}

fn is_sorted<'a>(keys: impl Iterator<Item = &'a str>) -> bool {
    let keys: Vec<&str> = keys.collect();
    keys.windows(2).all(|pair| pair[0] <= pair[1])
}

/// The leading lines of `text` that are blank or comments, kept when a file is rendered whole.
fn header(text: &str) -> String {
    let mut end = 0;
    for line in text.split_inclusive('\n') {
        if !is_blank_or_comment(line) {
            break;
        }
        end += line.len();
    }
    let mut header = text[..end].to_owned();
    if !header.is_empty() && !header.ends_with('\n') {
        header.push('\n');
    }
    header
}

fn is_blank_or_comment(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed.is_empty() || trimmed.starts_with('#')
}

/// Where an entry sits in the text.
struct Located {
    key: String,
    value: Value,
    /// Start of the key's line.
    line_start: usize,
    /// Key line index (0-based).
    line: usize,
    /// End of the entry's lines, trailing blank and comment lines excluded.
    end: usize,
    /// Byte range of the value when it is a scalar on the key's line.
    inline_scalar: Option<(usize, usize)>,
    /// Whether the value starts on the key's line (a scalar or a flow collection).
    inline: bool,
}

/// A splice: replace `start..end` with `text`; inserts (empty range) sort before replacements.
struct Splice {
    start: usize,
    end: usize,
    order: usize,
    text: String,
}

fn splice(text: &str, top: Entries<Spanned<Node>>, top_key: &str, ops: &[Op]) -> Option<String> {
    let (top_key_span, node) = top.0.into_iter().find(|(key, _)| key.value == top_key)?;
    let Node::Map(inner) = node.value else {
        return None;
    };
    if inner.is_empty() {
        return None;
    }
    let lines = LineIndex::new(text);
    let top_line = lines.line_of(byte_offset(&top_key_span.referenced)?);
    let (entries, key_indent) = locate(text, &lines, top_line, inner)?;
    let indent = " ".repeat(key_indent);
    let prefer_flow = entries
        .iter()
        .any(|e| matches!(e.value, Value::Seq(ref s) if !s.is_empty()) && e.inline);
    let sorted = is_sorted(entries.iter().map(|e| e.key.as_str()));

    let mut splices = Vec::new();
    for (order, op) in ops.iter().enumerate() {
        match op {
            Op::Set(key, value) => match entries.iter().find(|e| &e.key == key) {
                Some(entry) if &entry.value == value => {}
                Some(entry) => {
                    if let (Value::Scalar(new), Some((start, end))) = (value, entry.inline_scalar) {
                        splices.push(Splice {
                            start,
                            end,
                            order,
                            text: render::scalar(new),
                        });
                    } else {
                        let rendered = if entry.inline && prefer_flow_for(value) {
                            render::entry_flow(key, value, &indent)
                        } else {
                            render::entry(key, value, &indent)
                        };
                        splices.push(Splice {
                            start: entry.line_start,
                            end: entry.end,
                            order,
                            text: rendered,
                        });
                    }
                }
                None => {
                    let at = insertion_point(text, &lines, top_line, &entries, key, sorted);
                    let mut rendered = if prefer_flow && prefer_flow_for(value) {
                        render::entry_flow(key, value, &indent)
                    } else {
                        render::entry(key, value, &indent)
                    };
                    if at == text.len() && !text.is_empty() && !text.ends_with('\n') {
                        rendered.insert(0, '\n');
                    }
                    splices.push(Splice {
                        start: at,
                        end: at,
                        order,
                        text: rendered,
                    });
                }
            },
            Op::Remove(key) => {
                if let Some(entry) = entries.iter().find(|e| &e.key == key) {
                    splices.push(Splice {
                        start: entry.line_start,
                        end: entry.end,
                        order,
                        text: String::new(),
                    });
                }
            }
            Op::ReplaceAll(_) => unreachable!("expanded before use"),
        }
    }
    Some(apply_splices(text, splices))
}

fn prefer_flow_for(value: &Value) -> bool {
    matches!(value, Value::Seq(items) if items.iter().all(Value::is_inline))
}

fn byte_offset(location: &serde_saphyr::Location) -> Option<usize> {
    location
        .span()
        .byte_offset()
        .and_then(|o| usize::try_from(o).ok())
}

/// Finds every entry's lines and the keys' indentation; `None` when the layout is not one
/// entry per line at one indentation, below the top key.
fn locate(
    text: &str,
    lines: &LineIndex,
    top_line: usize,
    inner: Vec<(Spanned<String>, Spanned<Value>)>,
) -> Option<(Vec<Located>, usize)> {
    let mut located = Vec::with_capacity(inner.len());
    let mut indent = None;
    for (key, value) in inner {
        let key_at = byte_offset(&key.referenced)?;
        let line = lines.line_of(key_at);
        let line_start = lines.start(line);
        if line <= top_line || !text[line_start..key_at].bytes().all(|b| b == b' ') {
            return None;
        }
        if *indent.get_or_insert(key_at - line_start) != key_at - line_start {
            return None;
        }
        let value_at = byte_offset(&value.referenced);
        let inline = value_at.is_some_and(|at| lines.line_of(at) == line);
        let inline_scalar = match (&value.value, value_at, value.referenced.span().byte_len()) {
            (Value::Scalar(_), Some(start), Some(len)) if inline => {
                let end = start + usize::try_from(len).ok()?;
                (end <= text.len() && !text[start..end].contains('\n')).then_some((start, end))
            }
            _ => None,
        };
        located.push(Located {
            key: key.value,
            value: value.value,
            line_start,
            line,
            end: 0,
            inline_scalar,
            inline,
        });
    }
    let key_indent = indent?;
    for i in 0..located.len() {
        let raw_end = match located.get(i + 1) {
            Some(next) => next.line_start,
            None => end_of_last_entry(text, lines, located[i].line, key_indent),
        };
        located[i].end = trim_trailing(text, lines, located[i].line, raw_end);
    }
    Some((located, key_indent))
}

/// The first line after `line` that is less indented than the keys (and not a comment).
fn end_of_last_entry(text: &str, lines: &LineIndex, line: usize, key_indent: usize) -> usize {
    for next in line + 1..lines.count() {
        let content = lines.text(text, next);
        let indent = content.len() - content.trim_start_matches(' ').len();
        if !is_blank_or_comment(content) && indent < key_indent {
            return lines.start(next);
        }
    }
    text.len()
}

/// Moves `end` back over blank and comment lines, never into the key's own line.
fn trim_trailing(text: &str, lines: &LineIndex, key_line: usize, mut end: usize) -> usize {
    while end > 0 {
        let last = lines.line_of(end - 1);
        if last <= key_line || !is_blank_or_comment(lines.text(text, last)) {
            break;
        }
        end = lines.start(last);
    }
    end
}

/// Where a new key goes: before the first greater key (above that key's comments) when the
/// keys are sorted, else after the last entry.
fn insertion_point(
    text: &str,
    lines: &LineIndex,
    top_line: usize,
    entries: &[Located],
    key: &str,
    sorted: bool,
) -> usize {
    let last = entries.last().expect("entries are not empty");
    if !sorted {
        return last.end;
    }
    match entries.iter().position(|e| e.key.as_str() > key) {
        None => last.end,
        Some(0) => {
            // Above the first key's comment block, right after the top key's line.
            let first = &entries[0];
            let mut line = first.line;
            while line > top_line + 1 && is_blank_or_comment(lines.text(text, line - 1)) {
                line -= 1;
            }
            lines.start(line)
        }
        Some(i) => entries[i - 1].end,
    }
}

fn apply_splices(text: &str, mut splices: Vec<Splice>) -> String {
    splices.sort_by_key(|s| (s.start, s.end != s.start, s.order));
    let crlf = text.contains("\r\n");
    let mut out = String::with_capacity(text.len() + 64);
    let mut at = 0;
    for splice in splices {
        if splice.start < at {
            continue; // overlapping edits of one entry: the earlier one stands
        }
        out.push_str(&text[at..splice.start]);
        if crlf {
            out.push_str(&splice.text.replace('\n', "\r\n"));
        } else {
            out.push_str(&splice.text);
        }
        at = splice.end;
    }
    out.push_str(&text[at..]);
    out
}

/// Line starts of a text, for byte offset <-> line conversions.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.match_indices('\n')
                .map(|(i, _)| i + 1)
                .filter(|&i| i < text.len()),
        );
        LineIndex { starts }
    }

    fn count(&self) -> usize {
        self.starts.len()
    }

    fn line_of(&self, offset: usize) -> usize {
        self.starts
            .partition_point(|&start| start <= offset)
            .saturating_sub(1)
    }

    fn start(&self, line: usize) -> usize {
        self.starts[line]
    }

    fn text<'t>(&self, text: &'t str, line: usize) -> &'t str {
        let end = self.starts.get(line + 1).copied().unwrap_or(text.len());
        &text[self.starts[line]..end]
    }
}

#[cfg(test)]
mod tests;
