//! Writing YAML: scalars plain when that is unambiguous, quoted otherwise; block layout.

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
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The value after `key:` on the key's line, for values written on one line.
pub(crate) fn inline(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
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
        Value::Null | Value::Scalar(_) => unreachable!("inline values are written above"),
    }
}

fn write_item(out: &mut String, item: &Value, indent: &str) {
    // Items that are collections are rare in the schema; flow style keeps them on one line.
    out.push_str(&format!("{indent}- {}\n", inline(item)));
}

/// A whole file holding one top-level mapping, after `header` (comment lines kept as is).
pub(crate) fn file(header: &str, top_key: &str, entries: &[(String, Value)]) -> String {
    let mut out = header.to_owned();
    if entries.is_empty() {
        out.push_str(&format!("{top_key}: {{}}\n"));
    } else {
        out.push_str(&format!("{top_key}:\n"));
        for (key, value) in entries {
            write_entry(&mut out, key, value, STEP);
        }
    }
    out
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
        assert_eq!(file("# head\n", "versions", &[]), "# head\nversions: {}\n");
    }
}
