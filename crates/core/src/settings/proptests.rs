//! Laws of the settings merge, checked on generated trees: empty overlays are the identity,
//! later layers and overlays win, and the result depends only on the inputs.

use hocon::{Config, HoconValue, ScalarValue};
use indexmap::IndexMap;
use proptest::prelude::*;
use serde_json::Value;

use super::conf::root_map;
use super::properties::decoded;
use super::*;

// ---- generators ----

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-z é\"\\\\%\n]{0,8}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-c.\"]{0,3}", inner), 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Value> {
    prop::collection::vec(("[a-e]{1,2}", json_value()), 0..6)
        .prop_map(|fields| Value::Object(fields.into_iter().collect()))
}

fn hocon_leaf() -> impl Strategy<Value = HoconValue> {
    prop_oneof![
        Just(HoconValue::Scalar(ScalarValue::null())),
        any::<bool>().prop_map(|b| HoconValue::Scalar(ScalarValue::boolean(b))),
        any::<i64>().prop_map(|n| HoconValue::Scalar(ScalarValue::number(n.to_string()))),
        (any::<i32>(), 1..999u16)
            .prop_map(|(whole, fraction)| format!("{whole}.{fraction}"))
            .prop_filter("no trailing zero", |raw| !raw.ends_with('0'))
            .prop_map(|raw| HoconValue::Scalar(ScalarValue::number(raw))),
        // Characters HOCON treats specially: quotes, `$`, comments, braces, newlines, spaces.
        "[a-z0-9 \"'\\\\${}#/:=,.\n\té%]{0,10}"
            .prop_map(|s| HoconValue::Scalar(ScalarValue::string(s))),
    ]
}

/// Keys as HOCON allows them; line breaks are left out because the crate's renderer
/// triple-quotes them where a key cannot be triple-quoted (the merge refuses those).
fn hocon_key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-e]{1,3}",
        "[a-c .\"\\\\$#é-]{0,4}",
        Just("include".to_owned()),
        Just("true".to_owned()),
        Just("10".to_owned()),
    ]
}

fn hocon_map() -> impl Strategy<Value = IndexMap<String, HoconValue>> {
    let value = hocon_leaf().prop_recursive(3, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(HoconValue::Array),
            prop::collection::vec((hocon_key(), inner), 0..4)
                .prop_map(|fields| HoconValue::Object(fields.into_iter().collect())),
        ]
    });
    prop::collection::vec((hocon_key(), value), 0..6)
        .prop_map(|fields| fields.into_iter().collect())
}

fn render_hocon(map: IndexMap<String, HoconValue>) -> String {
    Config::new(map)
        .render_hocon()
        .expect("a data-only tree renders")
}

fn parse_hocon(text: &str) -> IndexMap<String, HoconValue> {
    let options = hocon::ParseOptions::defaults().with_env(Default::default());
    root_map(&hocon::parse_string_with_options(text, options).expect("merged HOCON parses"))
}

/// One properties line: comment, blank, or entry (key, separator, value) as written.
fn properties_line() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        "[a-z.]{1,6}",
        Just("a\\ b".to_owned()),
        Just("k\\=x".to_owned()),
        Just("\\u00e9".to_owned())
    ];
    let separator = prop_oneof![Just("="), Just(":"), Just(" = "), Just(" "), Just("\t: ")];
    let value = prop_oneof![
        "[a-z0-9 =:#!]{0,8}",
        Just("multi\\\n    line".to_owned()),
        Just("tab\\there".to_owned()),
        Just("x\\\\".to_owned()),
    ];
    prop_oneof![
        "[#!][ a-z]{0,8}".prop_map(|comment| comment),
        Just(String::new()),
        (key, separator, value).prop_map(|(k, s, v)| format!("{k}{s}{v}")),
    ]
}

fn properties_text() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(properties_line(), 0..8),
        prop_oneof![Just("\n"), Just("\r\n")],
        any::<bool>(),
    )
        .prop_map(|(lines, newline, final_newline)| {
            let mut text = lines.join(newline);
            if final_newline && !text.is_empty() {
                text.push_str(newline);
            }
            text
        })
}

fn run(base: &FileTree, overlays: &[FileTree]) -> Merged {
    merge_settings(base, overlays, &crate::macros::Macros::new()).expect("merge succeeds")
}

fn text_of(merged: &Merged, path: &str) -> String {
    String::from_utf8(merged.tree[path].clone()).expect("UTF-8")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn empty_overlay_trees_are_the_identity(
        json in json_object(),
        properties in properties_text(),
        hocon in hocon_map(),
    ) {
        let base = FileTree::from([
            ("a.json".to_owned(), json.to_string().into_bytes()),
            ("a.properties".to_owned(), properties.into_bytes()),
            ("a.conf".to_owned(), render_hocon(hocon).into_bytes()),
        ]);
        let merged = run(&base, &[FileTree::new(), FileTree::new()]);
        prop_assert_eq!(&merged.tree, &base);
        prop_assert!(merged.report.files.is_empty());
    }

    #[test]
    fn empty_overlay_files_keep_the_settings(
        json in json_object(),
        properties in properties_text(),
        hocon in hocon_map(),
    ) {
        let hocon_text = render_hocon(hocon.clone());
        let base = FileTree::from([
            ("a.json".to_owned(), json.to_string().into_bytes()),
            ("a.properties".to_owned(), properties.clone().into_bytes()),
            ("a.conf".to_owned(), hocon_text.clone().into_bytes()),
        ]);
        let overlay = FileTree::from([
            ("a.json".to_owned(), b"{}".to_vec()),
            ("a.properties".to_owned(), Vec::new()),
            ("a.conf".to_owned(), Vec::new()),
        ]);
        let merged = run(&base, &[overlay]);
        let json_back: Value = serde_json::from_slice(&merged.tree["a.json"]).expect("JSON");
        prop_assert_eq!(json_back, json);
        // Properties are spliced, so an empty overlay leaves every byte.
        prop_assert_eq!(text_of(&merged, "a.properties"), properties);
        prop_assert_eq!(parse_hocon(&text_of(&merged, "a.conf")), hocon);
        // Rendering is a fixed point: the crate's own rendering comes back unchanged.
        prop_assert_eq!(text_of(&merged, "a.conf"), hocon_text);
    }

    #[test]
    fn the_last_numbered_layer_wins(
        json in json_object(),
        properties in properties_text(),
        hocon in hocon_map(),
        key in "[a-e]{1,2}",
        first in "[a-z0-9]{0,6}",
        last in "[a-z0-9]{0,6}",
        (low, high) in (1..10u32, 10..30u32),
    ) {
        let base = FileTree::from([
            ("a.json".to_owned(), json.to_string().into_bytes()),
            ("a.properties".to_owned(), properties.into_bytes()),
            ("a.conf".to_owned(), render_hocon(hocon).into_bytes()),
        ]);
        let layer = |value: &str| -> [(String, String); 3] {
            [
                ("json".to_owned(), serde_json::json!({ key.clone(): value }).to_string()),
                ("properties".to_owned(), format!("{key}={value}\n")),
                ("conf".to_owned(), format!("{key} = \"{value}\"\n")),
            ]
        };
        let mut overlay = FileTree::new();
        // The higher index has more digits and sorts first as text: order must be numeric.
        for (index, value) in [(high, &last), (low, &first)] {
            for (extension, content) in layer(value) {
                overlay.insert(format!("a.{extension}.{index}"), content.into_bytes());
            }
        }
        let merged = run(&base, &[overlay]);
        let json_back: Value = serde_json::from_slice(&merged.tree["a.json"]).expect("JSON");
        prop_assert_eq!(json_back[&key].as_str(), Some(last.as_str()));
        prop_assert_eq!(decoded(&text_of(&merged, "a.properties")).get(&key).cloned(), Some(last.clone()));
        let conf = parse_hocon(&text_of(&merged, "a.conf"));
        prop_assert_eq!(conf.get(&key).and_then(HoconValue::as_str), Some(last.as_str()));
    }

    #[test]
    fn the_last_overlay_tree_wins(
        key in "[a-e]{1,2}",
        values in prop::collection::vec("[a-z0-9]{0,6}", 1..4),
        base_value in "[a-z0-9]{0,6}",
    ) {
        let base = FileTree::from([
            ("a.json".to_owned(), serde_json::json!({ key.clone(): base_value }).to_string().into_bytes()),
            ("a.properties".to_owned(), format!("{key}={base_value}\n").into_bytes()),
            ("a.conf".to_owned(), format!("{key} = \"{base_value}\"\n").into_bytes()),
            ("a.txt.defines".to_owned(), Vec::new()),
            ("a.txt".to_owned(), b"%%m%%".to_vec()),
        ]);
        let overlays: Vec<FileTree> = values
            .iter()
            .map(|value| FileTree::from([
                ("a.json".to_owned(), serde_json::json!({ key.clone(): value }).to_string().into_bytes()),
                ("a.properties".to_owned(), format!("{key}={value}\n").into_bytes()),
                ("a.conf".to_owned(), format!("{key} = \"{value}\"\n").into_bytes()),
                ("a.txt.defines".to_owned(), format!("m={value}\n").into_bytes()),
                ("bin/tool".to_owned(), value.clone().into_bytes()),
            ]))
            .collect();
        let merged = run(&base, &overlays);
        let last = values.last().expect("at least one overlay");
        let json_back: Value = serde_json::from_slice(&merged.tree["a.json"]).expect("JSON");
        prop_assert_eq!(json_back[&key].as_str(), Some(last.as_str()));
        prop_assert_eq!(decoded(&text_of(&merged, "a.properties")).get(&key).cloned(), Some(last.clone()));
        let conf = parse_hocon(&text_of(&merged, "a.conf"));
        prop_assert_eq!(conf.get(&key).and_then(HoconValue::as_str), Some(last.as_str()));
        prop_assert_eq!(&text_of(&merged, "a.txt"), last);
        prop_assert_eq!(&text_of(&merged, "bin/tool"), last);
    }

    #[test]
    fn merging_is_deterministic(
        json in json_object(),
        json_over in json_object(),
        properties in properties_text(),
        properties_over in properties_text(),
        hocon in hocon_map(),
        hocon_over in hocon_map(),
    ) {
        let base = FileTree::from([
            ("a.json".to_owned(), json.to_string().into_bytes()),
            ("a.properties".to_owned(), properties.into_bytes()),
            ("a.conf".to_owned(), render_hocon(hocon).into_bytes()),
        ]);
        let files = [
            ("a.json.1".to_owned(), json_over.to_string().into_bytes()),
            ("a.properties".to_owned(), properties_over.into_bytes()),
            ("a.conf.3".to_owned(), render_hocon(hocon_over).into_bytes()),
            ("a.conf.defines".to_owned(), b"x=1".to_vec()),
        ];
        // Built in two insertion orders: the result must not depend on it.
        let forward: FileTree = files.iter().cloned().collect();
        let backward: FileTree = files.iter().rev().cloned().collect();
        let first = run(&base, std::slice::from_ref(&forward));
        let second = run(&base, std::slice::from_ref(&backward));
        prop_assert_eq!(&first, &second);
        prop_assert_eq!(first, run(&base, &[forward]));
    }
}
