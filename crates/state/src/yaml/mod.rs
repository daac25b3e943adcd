//! Editing YAML files by splicing the smallest span, so that a person's comments and layout
//! survive and `git log -p` shows one line per changed value.
//!
//! No YAML library keeps comments through a parse and a render, so the editor works on the
//! text: the parser gives the byte position of each key and value ([`tree::Tree`]), and the
//! splicer (`splice`) makes the document's root mapping hold a target value by
//!
//! - replacing a changed scalar's bytes (`api: jetto-1.2.3  # pinned` keeps its comment),
//! - entering a changed block mapping or list, at any depth, so one changed value deep inside
//!   a file is one changed line,
//! - deleting the lines of a removed entry or list item,
//! - inserting a new entry or item as new lines after its predecessor in the target's order
//!   (so in sorted position when the target is sorted), with the indentation of its siblings,
//! - writing an entry again where the layout is not one entry per line (flow style keeps
//!   flow style when the new value fits on one line).
//!
//! The result is parsed again and must hold exactly the target; when it does not, or when the
//! document is empty or not a block mapping, the file is written whole, keeping its leading
//! comments. Two entry points: [`edit_document`] makes the whole root mapping a target
//! (build settings files), [`edit_mapping`] applies [`Op`]s to one top-level mapping
//! (`versions:`, `profiles:`, `tested:`).

pub(crate) mod render;
mod splice;
mod text;
pub(crate) mod tree;
pub(crate) mod value;

use serde_saphyr::Spanned;

use tree::Tree;
pub(crate) use value::Value;
use value::same;

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

/// Parses a document with locations; `Ok(None)` for an empty one (or only comments).
///
/// A carriage return that no line feed follows is refused: YAML ends a line there, the
/// editor's line arithmetic (`text`) does not, so a splice could land in the wrong line.
fn parse(text: &str) -> Result<Option<Spanned<Tree>>, NotEditable> {
    if let Some(line) = text::lone_carriage_return(text) {
        return Err(NotEditable(format!(
            "line {line} ends in a carriage return alone; it can be edited once its lines \
             end in a line feed (\\n or \\r\\n)"
        )));
    }
    serde_saphyr::from_str_with_options::<Option<Spanned<Tree>>>(
        text,
        crate::schema::yaml_options(),
    )
    .map_err(|error| {
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

/// The entries of the root mapping: empty for an empty document, `Err` when the document
/// does not parse or is not a mapping.
pub(crate) fn read_root(text: &str) -> Result<Vec<(String, Value)>, NotEditable> {
    match parse(text)?.map(|root| root.value.to_value()) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Map(entries)) => Ok(entries),
        Some(_) => Err(NotEditable(
            "it must hold a mapping of keys (such as `developer:`) before it can be edited"
                .to_owned(),
        )),
    }
}

/// The entries of the mapping under `top_key`: `Ok(None)` when the document is empty or
/// lacks the key, `Err` when it does not parse.
#[cfg(test)]
pub(crate) fn read_mapping(
    text: &str,
    top_key: &str,
) -> Result<Option<Vec<(String, Value)>>, NotEditable> {
    Ok(entries_under(&read_root(text)?, top_key))
}

/// The plain entries under `top_key`; a value that is not a mapping reads as none.
fn entries_under(root: &[(String, Value)], top_key: &str) -> Option<Vec<(String, Value)>> {
    let (_, value) = root.iter().find(|(key, _)| key == top_key)?;
    Some(match value {
        Value::Map(entries) => entries.clone(),
        _ => Vec::new(),
    })
}

/// Makes the root mapping of `text` (`None`: no file yet) exactly `target`, by the smallest
/// splices; `Ok(None)` when the file exists and already is, so it is left exactly as it is.
/// A new file (always written, even empty), or an empty one, starts with `new_header`
/// (comment lines, may be empty).
pub(crate) fn edit_document(
    text: Option<&str>,
    target: &[(String, Value)],
    new_header: &str,
) -> Result<Option<String>, NotEditable> {
    let parsed = match text {
        Some(text) => parse(text)?,
        None => None,
    };
    let current = match &parsed {
        Some(root) => root.value.to_value(),
        None => Value::Map(Vec::new()),
    };
    let wanted = Value::Map(target.to_vec());
    let unchanged = same(&current, &wanted) || (current == Value::Null && target.is_empty());
    if text.is_some() && unchanged {
        return Ok(None);
    }
    if let (Some(text), Some(root)) = (text, &parsed)
        && let Some(splices) = splice::root(text, root, target)
    {
        let spliced = text::apply(text, splices);
        if read_root(&spliced).is_ok_and(|back| same(&Value::Map(back), &wanted)) {
            return Ok(Some(spliced));
        }
    }
    let header = match text {
        Some(text) if !text.trim().is_empty() => text::header(text),
        _ => new_header.to_owned(),
    };
    let mut whole = header;
    for (key, value) in target {
        whole.push_str(&render::entry(key, value, ""));
    }
    Ok(Some(whole))
}

/// Applies `ops` to the mapping under `top_key` of `text` (`None`: no file yet); `Ok(None)`
/// when the entries would not change, so the file is left exactly as it is. Other top-level
/// keys are kept. A mapping left empty is written `top_key:` (null reads as empty).
pub(crate) fn edit_mapping(
    text: Option<&str>,
    top_key: &str,
    ops: &[Op],
) -> Result<Option<String>, NotEditable> {
    let mut root = match text {
        Some(text) => read_root(text)?,
        None => Vec::new(),
    };
    let current = entries_under(&root, top_key).unwrap_or_default();
    let ops = &expand(ops, &current);
    let expected = apply_ops(current.clone(), ops);
    if expected == current {
        return Ok(None);
    }
    let value = if expected.is_empty() {
        Value::Null
    } else {
        Value::Map(expected)
    };
    match root.iter_mut().find(|(key, _)| key == top_key) {
        Some(entry) => entry.1 = value,
        None => root.push((top_key.to_owned(), value)),
    }
    edit_document(text, &root, "")
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

fn is_sorted<'a>(keys: impl Iterator<Item = &'a str>) -> bool {
    let keys: Vec<&str> = keys.collect();
    keys.windows(2).all(|pair| pair[0] <= pair[1])
}

#[cfg(test)]
mod tests;
