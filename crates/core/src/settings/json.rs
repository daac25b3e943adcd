//! JSON layers merged by key: objects recursively, everything else replaced by the later layer.

use serde_json::Value;

use super::merge::Layer;
use super::{Format, Position, SettingsError};

/// Merges `layers` (the first is the base of the rest) and pretty-prints the result.
pub(super) fn merge(layers: &[Layer<'_>]) -> Result<Vec<u8>, SettingsError> {
    let mut merged: Option<Value> = None;
    for layer in layers {
        let value = parse(layer)?;
        merged = Some(match merged {
            None => value,
            Some(base) => merge_values(base, value),
        });
    }
    let merged = merged.expect("a merge has at least one layer");
    let mut out = serde_json::to_vec_pretty(&merged).expect("a JSON value always serializes");
    out.push(b'\n');
    Ok(out)
}

/// Parses one layer, naming it and the position on failure.
fn parse(layer: &Layer<'_>) -> Result<Value, SettingsError> {
    let bytes = layer
        .bytes
        .strip_prefix(b"\xef\xbb\xbf")
        .unwrap_or(layer.bytes);
    serde_json::from_slice(bytes).map_err(|error| {
        // serde_json's message ends with the position, which the error shows on its own.
        let message = error.to_string();
        let suffix = format!(" at line {} column {}", error.line(), error.column());
        let message = message.strip_suffix(&suffix).unwrap_or(&message).to_owned();
        SettingsError::Parse {
            tree: layer.tree,
            path: layer.path.to_owned(),
            format: Format::Json,
            position: (error.line() > 0).then(|| Position {
                line: error.line(),
                column: error.column(),
            }),
            message,
        }
    })
}

/// `over` merged into `base`: objects key by key (base order, new keys last), else `over`.
pub(super) fn merge_values(base: Value, over: Value) -> Value {
    match (base, over) {
        (Value::Object(mut base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(slot) => {
                        let old = std::mem::take(slot);
                        *slot = merge_values(old, value);
                    }
                    None => {
                        base.insert(key, value);
                    }
                }
            }
            Value::Object(base)
        }
        (_, over) => over,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::TreeId;
    use serde_json::json;

    fn layer<'a>(tree: TreeId, bytes: &'a str) -> Layer<'a> {
        Layer {
            tree,
            path: "conf/app.json",
            bytes: bytes.as_bytes(),
        }
    }

    #[test]
    fn merge_table() {
        // (base, overlay, expected)
        let cases = [
            (
                json!({"a": 1, "b": 2}),
                json!({"b": 3, "c": 4}),
                json!({"a": 1, "b": 3, "c": 4}),
            ),
            (
                json!({"db": {"host": "h", "pool": {"min": 1, "max": 5}}, "x": 0}),
                json!({"db": {"pool": {"max": 9}, "user": "u"}}),
                json!({"db": {"host": "h", "pool": {"min": 1, "max": 9}, "user": "u"}, "x": 0}),
            ),
            (
                json!({"list": [1, 2, 3]}),
                json!({"list": [4]}),
                json!({"list": [4]}),
            ),
            (json!({"o": {"k": 1}}), json!({"o": 5}), json!({"o": 5})),
            (
                json!({"o": 5}),
                json!({"o": {"k": 1}}),
                json!({"o": {"k": 1}}),
            ),
            (json!({"n": 1}), json!({"n": null}), json!({"n": null})),
            (json!([1, 2]), json!({"a": 1}), json!({"a": 1})),
            (json!({"a": 1}), json!({}), json!({"a": 1})),
        ];
        for (base, over, expected) in cases {
            assert_eq!(
                merge_values(base.clone(), over.clone()),
                expected,
                "{base} <- {over}"
            );
        }
    }

    #[test]
    fn key_order_is_the_base_order_then_new_keys() {
        let base = layer(TreeId::Base, r#"{"z": 1, "a": {"y": 1, "b": 2}, "m": 3}"#);
        let over = layer(
            TreeId::Overlay(1),
            r#"{"new": 0, "a": {"c": 3, "y": 9}, "z": 2}"#,
        );
        let merged = merge(&[base, over]).expect("valid JSON");
        let expected = "{\n  \"z\": 2,\n  \"a\": {\n    \"y\": 9,\n    \"b\": 2,\n    \"c\": 3\n  },\n  \"m\": 3,\n  \"new\": 0\n}\n";
        assert_eq!(String::from_utf8(merged).expect("UTF-8"), expected);
    }

    #[test]
    fn parse_errors_name_tree_file_and_position() {
        let base = layer(TreeId::Base, "{\"a\": 1}");
        let broken = layer(TreeId::Overlay(2), "{\n  \"a\": 1,\n  \"b\": }\n");
        let error = merge(&[base, broken]).expect_err("broken JSON");
        assert_eq!(
            error.to_string(),
            "overlay #2: `conf/app.json` is not valid JSON at line 3, column 8: expected value"
        );
    }

    /// Found by the `settings_json` fuzz target: without serde_json's exact float parsing
    /// a number could read as a neighbouring float, so a client's setting changed a little
    /// at every merge it went through (`5.0000000000000205e+33`, then `…021e+33`).
    #[test]
    fn numbers_read_exactly_so_merges_never_move_them() {
        let written = "5.0000000000000205e+33";
        let mut text = format!("{{\"n\": {written}, \"f\": 0.1}}");
        for _ in 0..3 {
            let base = layer(TreeId::Base, &text);
            let over = layer(TreeId::Overlay(1), r#"{"other": 1}"#);
            let merged = merge(&[base, over]).expect("valid JSON");
            text = String::from_utf8(merged).expect("UTF-8");
            assert!(text.contains(written) && text.contains("0.1"), "{text}");
        }
    }

    #[test]
    fn a_byte_order_mark_is_accepted() {
        let base = layer(TreeId::Base, "\u{feff}{\"a\": 1}");
        let over = layer(TreeId::Overlay(1), "{\"b\": 2}");
        let merged = merge(&[base, over]).expect("BOM is skipped");
        let value: Value = serde_json::from_slice(&merged).expect("valid output");
        assert_eq!(value, json!({"a": 1, "b": 2}));
    }
}
