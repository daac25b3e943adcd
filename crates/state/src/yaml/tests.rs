//! The splice editor, case by case: `(before, ops, after)` with the exact text expected.

use super::*;

fn set(key: &str, value: &str) -> Op {
    Op::Set(key.into(), Value::scalar(value))
}

fn list(items: &[&str]) -> Value {
    Value::Seq(items.iter().map(Value::scalar).collect())
}

fn check(before: Option<&str>, ops: &[Op], after: &str) {
    let edited = edit_mapping(before, TOP, ops)
        .expect("editable")
        .unwrap_or_else(|| before.unwrap_or_default().to_owned());
    assert_eq!(
        edited,
        after,
        "\n--- before:\n{}\n--- got:\n{edited}",
        before.unwrap_or("<none>")
    );
}

const TOP: &str = "versions";

const DESIRED: &str = "\
# Desired developer versions.
versions:
  api: jetto-1.0.0  # pinned until the migration
  # the web front
  web: jetto-1.0.0
  zeta: jetto-1.0.0
# end
";

#[test]
fn a_changed_scalar_keeps_its_comment_and_every_other_line() {
    check(
        Some(DESIRED),
        &[set("api", "jetto-1.0.1")],
        &DESIRED.replace("api: jetto-1.0.0", "api: jetto-1.0.1"),
    );
}

#[test]
fn an_unchanged_value_is_left_as_written() {
    let text = "versions:\n  api: 'jetto-1.0.0'\n";
    check(Some(text), &[set("api", "jetto-1.0.0")], text);
}

#[test]
fn a_quoted_value_is_replaced_quotes_and_all() {
    check(
        Some("versions:\n  api: \"jetto-1.0.0\" # q\n"),
        &[set("api", "jetto-2.0")],
        "versions:\n  api: jetto-2.0 # q\n",
    );
}

#[test]
fn a_new_key_goes_in_sorted_position_above_the_next_keys_comment() {
    check(
        Some(DESIRED),
        &[set("mail", "jetto-1.0.0")],
        &DESIRED.replace(
            "  # the web front\n",
            "  mail: jetto-1.0.0\n  # the web front\n",
        ),
    );
}

#[test]
fn a_new_first_key_goes_right_below_the_top_key() {
    check(
        Some("versions:\n  # b is first\n  b: d-1.0\n"),
        &[set("a", "d-1.0")],
        "versions:\n  a: d-1.0\n  # b is first\n  b: d-1.0\n",
    );
}

#[test]
fn a_new_last_key_goes_before_trailing_comments() {
    check(
        Some(DESIRED),
        &[set("zzz", "jetto-1.0.0")],
        &DESIRED.replace(
            "  zeta: jetto-1.0.0\n",
            "  zeta: jetto-1.0.0\n  zzz: jetto-1.0.0\n",
        ),
    );
}

#[test]
fn a_new_key_is_appended_when_the_keys_are_not_sorted() {
    check(
        Some("versions:\n    web: d-1\n    api: d-1\n"),
        &[set("mail", "d-1")],
        "versions:\n    web: d-1\n    api: d-1\n    mail: d-1\n",
    );
}

#[test]
fn a_removed_key_loses_its_line_only() {
    check(
        Some(DESIRED),
        &[Op::Remove("web".into())],
        &DESIRED.replace("  web: jetto-1.0.0\n", ""),
    );
    check(Some(DESIRED), &[Op::Remove("absent".into())], DESIRED);
}

#[test]
fn a_file_without_final_newline_gets_one_before_an_appended_line() {
    check(
        Some("versions:\n  a: d-1"),
        &[set("b", "d-1")],
        "versions:\n  a: d-1\n  b: d-1\n",
    );
}

#[test]
fn crlf_files_stay_crlf() {
    check(
        Some("versions:\r\n  a: d-1\r\n  c: d-1\r\n"),
        &[set("b", "d-2"), set("c", "d-3")],
        "versions:\r\n  a: d-1\r\n  b: d-2\r\n  c: d-3\r\n",
    );
}

#[test]
fn block_lists_are_rewritten_entry_by_entry() {
    let text = "profiles:\n  # production\n  prod:\n    - api\n    - web\n  self:\n  - api\n";
    let edited = edit_mapping(
        Some(text),
        "profiles",
        &[Op::Set("prod".into(), list(&["api", "mail", "web"]))],
    )
    .expect("editable")
    .expect("changed");
    assert_eq!(
        edited,
        "profiles:\n  # production\n  prod:\n    - api\n    - mail\n    - web\n  self:\n  - api\n"
    );
    let removed = edit_mapping(Some(text), "profiles", &[Op::Remove("self".into())])
        .expect("editable")
        .expect("changed");
    assert_eq!(
        removed,
        "profiles:\n  # production\n  prod:\n    - api\n    - web\n"
    );
}

#[test]
fn flow_lists_stay_flow() {
    let text = "profiles:\n  prod: [api, web]  # prod\n  self: [api]\n";
    let edited = edit_mapping(
        Some(text),
        "profiles",
        &[
            Op::Set("self".into(), list(&["api", "web"])),
            Op::Set("qa".into(), list(&["web"])),
        ],
    )
    .expect("editable")
    .expect("changed");
    assert_eq!(
        edited,
        "profiles:\n  prod: [api, web]  # prod\n  qa: [web]\n  self: [api, web]\n"
    );
}

#[test]
fn unusual_layouts_and_new_files_are_rendered_whole_keeping_the_header() {
    check(
        Some("# head\nversions: {b: d-1, a: d-1}\n"),
        &[set("c", "d-1")],
        "# head\nversions:\n  b: d-1\n  a: d-1\n  c: d-1\n",
    );
    check(
        Some("# head\nversions: {}\n"),
        &[set("a", "d-1")],
        "# head\nversions:\n  a: d-1\n",
    );
    check(
        Some("# only a comment\n"),
        &[set("a", "d-1")],
        "# only a comment\nversions:\n  a: d-1\n",
    );
    check(
        None,
        &[set("b", "d-1"), set("a", "d-1")],
        "versions:\n  a: d-1\n  b: d-1\n",
    );
    // Removing the last entry leaves `versions:` (null), which reads as empty.
    check(
        Some("versions:\n  a: d-1\n"),
        &[Op::Remove("a".into())],
        "versions:\n",
    );
}

#[test]
fn a_file_that_does_not_parse_is_not_edited() {
    let error =
        edit_mapping(Some("versions:\n  a: [\n"), TOP, &[set("a", "d-1")]).expect_err("broken");
    assert!(
        error.0.starts_with("it must parse before it can be edited"),
        "{error:?}"
    );
}

#[test]
fn every_edit_reads_back_as_intended() {
    // A mixed bag of edits on a commented file: whatever the layout, the result parses to
    // exactly the intended entries (the editor falls back to a whole render otherwise).
    let ops = [
        set("web", "d-9"),
        Op::Remove("api".into()),
        set("new", "x-1"),
        set("1st", "d-1"),
    ];
    let edited = edit_mapping(Some(DESIRED), TOP, &ops)
        .expect("editable")
        .expect("changed");
    let back = read_mapping(&edited, TOP)
        .expect("parses")
        .expect("has versions");
    let mut keys: Vec<&str> = back.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["1st", "new", "web", "zeta"]);
    assert!(edited.contains("# Desired developer versions.") && edited.contains("# the web front"));
}
