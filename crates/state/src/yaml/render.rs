//! Writing YAML: scalars plain when that is unambiguous, quoted otherwise; block layout,
//! and flow style on one line where the file already uses it.

use super::value::Value;

/// Indentation added per nesting level in what the editor writes.
pub(crate) const STEP: &str = "  ";

/// A scalar as YAML: plain when it reads back as the same string, double-quoted otherwise.
pub(crate) fn scalar(text: &str) -> String {
    if is_plain_safe(text) {
        text.to_owned()
    } else {
        quoted(text)
    }
}

/// Plain scalars the editor writes: a letter first (so never a number, date or `-`/`?`
/// indicator), then letters, digits and `-_./`, and none of YAML's special words.
fn is_plain_safe(text: &str) -> bool {
    let mut chars = text.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    let special = matches!(
        text.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "nan" | "inf"
    );
    first_ok && rest_ok && !special
}

fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => match u32::from(c) {
                code @ 0..=0xffff => out.push_str(&format!("\\u{code:04x}")),
                code => out.push_str(&format!("\\U{code:08x}")),
            },
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Characters YAML does not allow as they are in a quoted scalar (outside its printable set)
/// or that some readers take for line breaks (YAML 1.1's NEL, LS, PS) or a byte order mark.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
        )
}

/// The value after `key:` on the key's line, for values written on one line.
pub(crate) fn inline(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Scalar(text) => scalar(text),
        Value::Seq(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Map(entries) => {
            let entries: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}: {}", scalar(k), inline(v)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
    }
}

/// `key: value` in block style at `indent`, ending with a newline; nested levels add [`STEP`].
pub(crate) fn entry(key: &str, value: &Value, indent: &str) -> String {
    let mut out = String::new();
    write_entry(&mut out, key, value, indent);
    out
}

/// `key: value` with the value on one line (flow style for collections).
pub(crate) fn entry_flow(key: &str, value: &Value, indent: &str) -> String {
    let rendered = inline(value);
    if rendered.is_empty() {
        format!("{indent}{}:\n", scalar(key))
    } else {
        format!("{indent}{}: {rendered}\n", scalar(key))
    }
}

fn write_entry(out: &mut String, key: &str, value: &Value, indent: &str) {
    if value.is_inline() {
        out.push_str(&entry_flow(key, value, indent));
        return;
    }
    out.push_str(&format!("{indent}{}:\n", scalar(key)));
    let inner = format!("{indent}{STEP}");
    match value {
        Value::Seq(items) => {
            for item in items {
                write_item(out, item, &inner);
            }
        }
        Value::Map(entries) => {
            for (key, value) in entries {
                write_entry(out, key, value, &inner);
            }
        }
        Value::Null | Value::Bool(_) | Value::Scalar(_) => {
            unreachable!("inline values are written above")
        }
    }
}

/// A sequence item `- value` whose dash is at `indent`, ending with a newline. A mapping is
/// written in block style with its first key after the dash (`- name: api`).
pub(crate) fn item(value: &Value, indent: &str) -> String {
    let mut out = String::new();
    write_item(&mut out, value, indent);
    out
}

fn write_item(out: &mut String, item: &Value, indent: &str) {
    match item {
        Value::Map(entries) if !entries.is_empty() => {
            let inner = format!("{indent}{STEP}");
            let mut block = String::new();
            for (key, value) in entries {
                write_entry(&mut block, key, value, &inner);
            }
            out.push_str(indent);
            out.push_str("- ");
            out.push_str(&block[inner.len()..]);
        }
        // Lists of lists do not occur in the schema; flow style keeps them on one line.
        other => out.push_str(&format!("{indent}- {}\n", inline(other))),
    }
}

/// Whether a collection can be written in flow style on one line: all its items are inline.
pub(crate) fn flow_ok(value: &Value) -> bool {
    match value {
        Value::Seq(items) => items.iter().all(Value::is_inline),
        Value::Map(entries) => entries.iter().all(|(_, v)| v.is_inline()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_plain_only_when_unambiguous() {
        for (text, expected) in [
            ("jetto-1.2.3", "jetto-1.2.3"),
            ("payment-api", "payment-api"),
            ("jetto-1.2.3_2", "jetto-1.2.3_2"),
            ("1password", "\"1password\""),
            ("yes", "\"yes\""),
            ("Null", "\"Null\""),
            ("2026-11-25T10:00:00Z", "\"2026-11-25T10:00:00Z\""),
            ("a: b", "\"a: b\""),
            ("say \"hi\"\n", "\"say \\\"hi\\\"\\n\""),
            ("", "\"\""),
        ] {
            assert_eq!(scalar(text), expected, "{text:?}");
        }
    }

    #[test]
    fn quoted_scalars_read_back_as_written() {
        for text in [
            "1.10",
            "yes",
            "a: b # c",
            "tab\there",
            "\"q\"",
            "back\\slash",
            "ünï",
            "line\u{2028}sep",
            "bom\u{feff}",
            "nel\u{85}",
            "bell\u{7}",
        ] {
            let yaml = format!("key: {}\n", scalar(text));
            let parsed: std::collections::BTreeMap<String, String> =
                serde_saphyr::from_str(&yaml).expect("renders valid YAML");
            assert_eq!(parsed["key"], text, "{yaml}");
        }
    }

    #[test]
    fn entries_render_in_block_style() {
        let value = Value::Map(vec![
            (
                "versions".into(),
                Value::Map(vec![("api".into(), Value::scalar("d-1.0"))]),
            ),
            ("time".into(), Value::scalar("2026-11-25T10:00:00Z")),
        ]);
        assert_eq!(
            entry("jetto", &value, "  "),
            "  jetto:\n    versions:\n      api: d-1.0\n    time: \"2026-11-25T10:00:00Z\"\n"
        );
        let list = Value::Seq(vec![Value::scalar("a"), Value::scalar("b")]);
        assert_eq!(entry("self", &list, "  "), "  self:\n    - a\n    - b\n");
        assert_eq!(entry_flow("self", &list, "  "), "  self: [a, b]\n");
        assert_eq!(entry("none", &Value::Seq(vec![]), "  "), "  none: []\n");
        assert_eq!(entry("on", &Value::Bool(false), ""), "\"on\": false\n");
    }

    #[test]
    fn mapping_items_render_in_block_style_after_the_dash() {
        let source = Value::Map(vec![
            ("name".into(), Value::scalar("api")),
            (
                "git".into(),
                Value::Map(vec![
                    ("url".into(), Value::scalar("git@example.com:api.git")),
                    ("branch".into(), Value::scalar("main")),
                ]),
            ),
        ]);
        assert_eq!(
            entry("sources", &Value::Seq(vec![source]), "  "),
            "  sources:\n    - name: api\n      git:\n        url: \"git@example.com:api.git\"\n        branch: main\n"
        );
        assert_eq!(item(&Value::scalar("keys/a.pem"), "  "), "  - keys/a.pem\n");
    }
}
