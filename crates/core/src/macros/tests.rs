//! Tests of `%%name%%` expansion: tables for both modes, laws by proptest.

use proptest::prelude::*;

use super::*;

fn macros() -> Macros {
    Macros::new()
        .with("version", "1.2.3")
        .with("role", "eu")
        .with("a.b-c_1", "X")
        .with("self", "%%self%%")
}

#[test]
fn strict_expansion_table() {
    let cases: &[(&str, Result<&str, &str>)] = &[
        ("", Ok("")),
        ("plain", Ok("plain")),
        ("v%%version%%", Ok("v1.2.3")),
        ("%%version%%-%%role%%", Ok("1.2.3-eu")),
        ("%%a.b-c_1%%", Ok("X")),
        // A `%%` that does not close a name is literal.
        ("100%%", Ok("100%%")),
        ("%%", Ok("%%")),
        ("%%%%", Ok("%%%%")),
        ("%% role %%", Ok("%% role %%")),
        ("50%% and %%role%%", Ok("50%% and eu")),
        // Leftmost token wins; scanning resumes after it.
        ("%%%role%%", Ok("%eu")),
        ("%%role%%role%%", Ok("eurole%%")),
        // Values are not expanded again.
        ("%%self%%", Ok("%%self%%")),
        ("x %%missing%% y", Err("missing")),
        ("%%role%% %%missing%% %%other%%", Err("missing")),
    ];
    let macros = macros();
    for (text, expected) in cases {
        let got = macros.expand(text).map_err(|error| match error {
            MacroError::Undefined { name, .. } => name,
            other => panic!("unexpected {other}"),
        });
        assert_eq!(
            got.as_deref().map_err(String::as_str),
            *expected,
            "text {text:?}"
        );
    }
}

#[test]
fn partial_expansion_table() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("", "", &[]),
        ("%%version%%", "1.2.3", &[]),
        (
            "%%host%%:%%port%%/%%role%%",
            "%%host%%:%%port%%/eu",
            &["host", "port"],
        ),
        ("%%host%% %%host%%", "%%host%% %%host%%", &["host"]),
        ("100%% %%self%%", "100%% %%self%%", &[]),
    ];
    let macros = macros();
    for (text, expected, left) in cases {
        let (got, got_left) = macros.expand_known(text);
        assert_eq!(got, *expected, "text {text:?}");
        assert_eq!(got_left, *left, "text {text:?}");
    }
}

#[test]
fn undefined_macro_error_quotes_an_excerpt_of_its_line() {
    let text =
        "first line\nexec --name=%%name%% --data-directory=/var/lib/service/data --verbose\nlast";
    let error = Macros::new().expand(text).expect_err("name is undefined");
    assert_eq!(
        error.to_string(),
        "undefined macro `%%name%%` in `exec --name=%%name%% --data-directory=/var/l…`"
    );
    let long_before = format!("{}%%x%%", "é".repeat(30));
    match Macros::new().expand(&long_before) {
        Err(MacroError::Undefined { excerpt, .. }) => {
            assert_eq!(excerpt, format!("…{}%%x%%", "é".repeat(24)));
        }
        other => panic!("expected undefined, got {other:?}"),
    }
}

#[test]
fn field_context_nests_outward() {
    let error = Macros::new()
        .expand("%%role%%")
        .expect_err("undefined")
        .in_field("env.PATH")
        .in_field("runService");
    assert_eq!(error.field(), Some("runService.env.PATH"));
    let error = Macros::new()
        .expand("%%role%%")
        .expect_err("undefined")
        .in_field("[2]")
        .in_field("args");
    assert_eq!(error.field(), Some("args[2]"));
    assert!(
        error
            .to_string()
            .starts_with("args[2]: undefined macro `%%role%%`")
    );
}

#[test]
fn later_definitions_win_and_keep_their_place() {
    let mut macros: Macros = [("a", "1"), ("b", "2")].into_iter().collect();
    macros.extend([("a", "3")]);
    assert_eq!(macros.get("a"), Some("3"));
    assert_eq!(macros.iter().collect::<Vec<_>>(), [("a", "3"), ("b", "2")]);
    assert_eq!(
        macros.clone().with("b", "4").expand("%%a%%%%b%%"),
        Ok("34".to_owned())
    );
    assert_eq!(macros.len(), 2);
}

#[test]
fn names_and_scanning_agree() {
    assert!(is_macro_name("a.b-c_1"));
    for bad in ["", "a b", "a%b", "é"] {
        assert!(!is_macro_name(bad), "{bad:?}");
    }
    assert_eq!(Macros::names_in("%%a%% %%b%% %%a%% 5%%"), ["a", "b"]);
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.-]{1,8}"
}

proptest! {
    #[test]
    fn text_without_double_percent_is_unchanged(text in "([^%]|%[^%])*%?", values in prop::collection::vec((name(), ".*"), 0..4)) {
        let macros: Macros = values.into_iter().collect();
        prop_assert_eq!(macros.expand(&text), Ok(text.clone()));
        prop_assert_eq!(macros.expand_known(&text), (text.clone(), Vec::new()));
    }

    #[test]
    fn defining_every_name_leaves_no_macro(
        parts in prop::collection::vec(("[^%]{0,6}", name()), 0..6),
        tail in "[^%]{0,6}",
        value in "[^%]{0,6}",
    ) {
        let text: String = parts.iter().map(|(lead, name)| format!("{lead}%%{name}%%")).chain([tail]).collect();
        let macros: Macros = Macros::names_in(&text).into_iter().map(|name| (name, value.clone())).collect();
        let expanded = macros.expand(&text).expect("every name is defined");
        prop_assert!(Macros::names_in(&expanded).is_empty(), "{expanded:?}");
        prop_assert_eq!(macros.expand_known(&text), (expanded, Vec::new()));
    }

    #[test]
    fn strict_fails_exactly_when_partial_leaves_names(text in "[a%b]{0,16}", defined in prop::collection::vec("[ab]", 0..2)) {
        let macros: Macros = defined.into_iter().map(|name| (name, "v")).collect();
        let (partial, left) = macros.expand_known(&text);
        match macros.expand(&text) {
            Ok(strict) => { prop_assert!(left.is_empty()); prop_assert_eq!(strict, partial); }
            Err(MacroError::Undefined { name, .. }) => prop_assert_eq!(Some(&name), left.first()),
            Err(other) => prop_assert!(false, "unexpected {}", other),
        }
    }
}

#[test]
fn partial_expansion_reports_what_was_and_was_not_defined() {
    let known: Macros = [("a", "1"), ("b.c", "%%a%%"), ("port", "8080")]
        .into_iter()
        .collect();
    // (text, expected text, expanded, unexpanded)
    let cases: &[(&str, &str, &[&str], &[&str])] = &[
        ("x=%%a%%", "x=1", &["a"], &[]),
        ("%%a%%%%a%%", "11", &["a"], &[]),
        ("%%b.c%%", "%%a%%", &["b.c"], &[]),
        (
            "%%role%% %%a%% %%role%%",
            "%%role%% 1 %%role%%",
            &["a"],
            &["role"],
        ),
        ("100%% sure %%", "100%% sure %%", &[], &[]),
        ("%%%a%%", "%1", &["a"], &[]),
        ("%%port%%%%", "8080%%", &["port"], &[]),
        ("é%%a%%é", "é1é", &["a"], &[]),
        ("", "", &[], &[]),
    ];
    for (text, expected, expanded, unexpanded) in cases {
        let expansion = known.expand_partial(text);
        assert_eq!(expansion.text, *expected, "{text}");
        assert_eq!(expansion.expanded, *expanded, "{text}");
        assert_eq!(expansion.unexpanded, *unexpanded, "{text}");
    }
}
