//! Table tests of `merge_settings`: naming rules, layer order, defines, errors, the report.

use crate::macros::Macros;
use serde_json::{Value, json};

use super::conf::root_map;
use super::properties::decoded;
use super::*;

/// A tree from `(path, content)` pairs.
fn tree(files: &[(&str, &str)]) -> FileTree {
    files
        .iter()
        .map(|(path, content)| ((*path).to_owned(), content.as_bytes().to_vec()))
        .collect()
}

fn no_macros() -> Macros {
    Macros::new()
}

fn merge(base: &FileTree, overlays: &[FileTree]) -> Merged {
    merge_settings(base, overlays, &no_macros()).expect("merge succeeds")
}

fn text<'a>(merged: &'a Merged, path: &str) -> &'a str {
    let bytes = merged
        .tree
        .get(path)
        .unwrap_or_else(|| panic!("`{path}` is in the result"));
    std::str::from_utf8(bytes).expect("UTF-8 content")
}

fn json_of(merged: &Merged, path: &str) -> Value {
    serde_json::from_str(text(merged, path)).expect("the merged JSON parses")
}

fn hocon_of(text: &str) -> hocon::Config {
    let options = hocon::ParseOptions::defaults().with_env(Default::default());
    hocon::parse_string_with_options(text, options).expect("the merged HOCON parses")
}

fn report_of<'a>(merged: &'a Merged, path: &str) -> &'a FileReport {
    let found = merged.report.files.iter().find(|file| file.path == path);
    found.unwrap_or_else(|| panic!("`{path}` is in the report"))
}

fn source_paths(sources: &[Source]) -> Vec<String> {
    sources
        .iter()
        .map(|source| format!("{}:{}", source.tree, source.path))
        .collect()
}

#[test]
fn numbered_layers_apply_in_numeric_order_after_the_file_itself() {
    let base = tree(&[("conf/app.json", r#"{"v": "base", "keep": 1}"#)]);
    let overlay = tree(&[
        ("conf/app.json.10", r#"{"v": "10"}"#),
        ("conf/app.json.2", r#"{"v": "2", "two": true}"#),
        ("conf/app.json.1", r#"{"v": "1", "one": true}"#),
        ("conf/app.json", r#"{"v": "itself", "itself": true}"#),
    ]);
    let merged = merge(&base, &[overlay]);
    assert_eq!(
        json_of(&merged, "conf/app.json"),
        json!({"v": "10", "keep": 1, "itself": true, "one": true, "two": true})
    );
    assert_eq!(
        source_paths(&report_of(&merged, "conf/app.json").sources),
        [
            "overlay #1:conf/app.json",
            "overlay #1:conf/app.json.1",
            "overlay #1:conf/app.json.2",
            "overlay #1:conf/app.json.10"
        ]
    );
    // Layers are instructions, not files of the image.
    assert_eq!(merged.tree.keys().collect::<Vec<_>>(), ["conf/app.json"]);
}

#[test]
fn each_format_merges_numbered_layers_with_the_last_winning() {
    // (path, base, layers by name, key, expected value)
    let cases = [
        (
            "a.properties",
            "k=base\nother=1\n",
            [
                ("a.properties.2", "k=two\n"),
                ("a.properties.10", "k=ten\n"),
            ],
        ),
        (
            "a.conf",
            "k = base\nother = 1\n",
            [("a.conf.2", "k = two"), ("a.conf.10", "k = ten")],
        ),
        (
            "a.json",
            r#"{"k": "base", "other": 1}"#,
            [
                ("a.json.2", r#"{"k": "two"}"#),
                ("a.json.10", r#"{"k": "ten"}"#),
            ],
        ),
    ];
    for (path, base, layers) in cases {
        let merged = merge(&tree(&[(path, base)]), &[tree(&layers)]);
        let content = text(&merged, path);
        let value = match Format::of(path) {
            Some(Format::Properties) => decoded(content).get("k").cloned(),
            Some(Format::Hocon) => hocon_of(content).get_string_option("k"),
            _ => json_of(&merged, path)["k"].as_str().map(str::to_owned),
        };
        assert_eq!(value.as_deref(), Some("ten"), "{path}: {content}");
        assert!(content.contains("other"), "{path}: base keys are kept");
    }
}

#[test]
fn later_overlay_trees_win() {
    let base = tree(&[
        ("a.json", r#"{"k": 0}"#),
        ("a.properties", "k=0\n"),
        ("a.conf", "k = 0\n"),
        ("bin/tool", "base"),
    ]);
    let first = tree(&[
        ("a.json", r#"{"k": 1, "first": true}"#),
        ("a.json.5", r#"{"k": 15}"#),
        ("a.properties", "k=1\n"),
        ("a.conf", "k = 1\n"),
        ("bin/tool", "first"),
    ]);
    let second = tree(&[
        ("a.json", r#"{"k": 2}"#),
        ("a.properties.1", "k=2\n"),
        ("a.conf", "k = 2\n"),
        ("bin/tool", "second"),
    ]);
    let merged = merge(&base, &[first, second]);
    assert_eq!(json_of(&merged, "a.json"), json!({"k": 2, "first": true}));
    assert_eq!(text(&merged, "a.properties"), "k=2\n");
    assert_eq!(hocon_of(text(&merged, "a.conf")).get_i64("k").ok(), Some(2));
    assert_eq!(text(&merged, "bin/tool"), "second");
    assert_eq!(report_of(&merged, "bin/tool").change, Change::Replaced);
    assert_eq!(
        source_paths(&report_of(&merged, "a.json").sources),
        [
            "overlay #1:a.json",
            "overlay #1:a.json.5",
            "overlay #2:a.json"
        ]
    );
}

#[test]
fn files_the_base_lacks_are_added_as_is() {
    // Odd formatting proves the bytes were not re-rendered.
    let odd_json = "{ \"a\":1,\n\n   \"b\" : [ ] }";
    let overlay = tree(&[
        ("new.json", odd_json),
        ("new.conf", "a=1 # note"),
        ("notes.txt", "hello"),
    ]);
    let merged = merge(&tree(&[]), &[overlay]);
    assert_eq!(text(&merged, "new.json"), odd_json);
    assert_eq!(text(&merged, "new.conf"), "a=1 # note");
    assert_eq!(text(&merged, "notes.txt"), "hello");
    for path in ["new.json", "new.conf", "notes.txt"] {
        assert_eq!(report_of(&merged, path).change, Change::Added, "{path}");
    }
}

#[test]
fn a_numbered_layer_without_its_file_becomes_the_file() {
    let overlay = tree(&[("a.json.2", r#"{"b": 2}"#), ("a.json.1", r#"{"a": 1}"#)]);
    let merged = merge(&tree(&[]), &[overlay]);
    assert_eq!(json_of(&merged, "a.json"), json!({"a": 1, "b": 2}));
    assert_eq!(
        report_of(&merged, "a.json").change,
        Change::Merged(Format::Json)
    );
    assert!(!merged.tree.contains_key("a.json.1"));
}

#[test]
fn numbered_files_of_other_kinds_keep_their_names() {
    let base = tree(&[("lib/libssl.so", "link"), ("lib/libssl.so.1", "old")]);
    let overlay = tree(&[("lib/libssl.so.1", "new"), ("logs/app.log.2", "log")]);
    let merged = merge(&base, &[overlay]);
    assert_eq!(text(&merged, "lib/libssl.so"), "link");
    assert_eq!(text(&merged, "lib/libssl.so.1"), "new");
    assert_eq!(text(&merged, "logs/app.log.2"), "log");
}

#[test]
fn git_directories_of_overlays_are_ignored() {
    let base = tree(&[("app/.git/keep", "the base is an image: taken as is")]);
    let overlay = tree(&[
        (".git/HEAD", "ref: refs/heads/master"),
        (".git/objects/ab/cdef", "blob"),
        ("vendored/.git", "gitdir: ../.git/modules/vendored"),
        ("settings.json", r#"{"a": 1}"#),
    ]);
    let merged = merge(&base, &[overlay]);
    assert_eq!(
        merged.tree.keys().collect::<Vec<_>>(),
        ["app/.git/keep", "settings.json"]
    );
    assert_eq!(merged.report.ignored_git_files, 3);
}

#[test]
fn install_json_merges_like_any_json() {
    let base = tree(&[(
        "install.json",
        r#"{"runService": {"command": "bin/app", "args": ["-a"]}, "restartOnFault": true}"#,
    )]);
    let overlay = tree(&[(
        "install.json",
        r#"{"runService": {"args": ["-b", "%%role%%"]}}"#,
    )]);
    let merged = merge(&base, &[overlay]);
    assert_eq!(
        json_of(&merged, "install.json"),
        json!({"runService": {"command": "bin/app", "args": ["-b", "%%role%%"]}, "restartOnFault": true})
    );
}

#[test]
fn defines_precedence_is_defines_in_overlay_order_then_macro_values() {
    let base = tree(&[(
        "run.sh",
        "--port=%%port%% --host=%%host%% --dist=%%dist%% --role=%%role%%",
    )]);
    let first = tree(&[("run.sh.defines", "# first\nport=1\nhost=h1\ndist=d1\n")]);
    let second = tree(&[("run.sh.defines", "port=2\n")]);
    let macros: Macros = [("dist", "from-state"), ("unused", "x")]
        .into_iter()
        .collect();
    let merged = merge_settings(&base, &[first, second], &macros).expect("merge succeeds");
    assert_eq!(
        text(&merged, "run.sh"),
        "--port=2 --host=h1 --dist=from-state --role=%%role%%"
    );
    let report = report_of(&merged, "run.sh");
    assert_eq!(report.change, Change::Kept);
    assert_eq!(report.expanded, ["port", "host", "dist"]);
    assert_eq!(report.unexpanded, ["role"]);
    assert!(!merged.tree.contains_key("run.sh.defines"));
}

#[test]
fn defines_expand_after_every_layer_is_merged() {
    let base = tree(&[("app.conf", "port = %%port%%\nhost = localhost\n")]);
    let overlay = tree(&[
        ("app.conf.1", "host = \"%%host%%\"\n"),
        ("app.conf.defines", "port=8080\nhost=example.org\n"),
    ]);
    let merged = merge(&base, &[overlay]);
    let config = hocon_of(text(&merged, "app.conf"));
    assert_eq!(config.get_i64("port").ok(), Some(8080));
    assert_eq!(
        config.get_string("host").ok().as_deref(),
        Some("example.org")
    );
}

#[test]
fn macro_values_apply_only_to_files_with_defines() {
    let base = tree(&[("a.txt", "%%version%%"), ("b.txt", "%%version%%")]);
    let overlay = tree(&[("a.txt.defines", "")]);
    let macros = Macros::new().with("version", "1.2.3");
    let merged = merge_settings(&base, &[overlay], &macros).expect("merge succeeds");
    assert_eq!(text(&merged, "a.txt"), "1.2.3");
    assert_eq!(text(&merged, "b.txt"), "%%version%%");
}

#[test]
fn defines_may_target_a_file_added_by_another_overlay() {
    let first = tree(&[("extra.conf", "x = \"%%x%%\"")]);
    let second = tree(&[("extra.conf.defines", "x=1")]);
    let merged = merge(&tree(&[]), &[first, second]);
    assert_eq!(text(&merged, "extra.conf"), "x = \"1\"");
}

#[test]
fn properties_merge_keeps_base_comments_and_layout() {
    let base = tree(&[(
        "conf/db.properties",
        "# Database\n! legacy comment\ndb.url = jdbc:x://localhost\\\n    /main\ndb.user : app\n\n# pool\npool.size 4\n",
    )]);
    let overlay = tree(&[(
        "conf/db.properties",
        "db.user=client\n# added by the client\npool.timeout=30\n",
    )]);
    let merged = merge(&base, &[overlay]);
    assert_eq!(
        text(&merged, "conf/db.properties"),
        "# Database\n! legacy comment\ndb.url = jdbc:x://localhost\\\n    /main\ndb.user : client\n\n# pool\npool.size 4\n# added by the client\npool.timeout=30\n"
    );
}

/// Golden: nested objects merge by key, the overlay wins, substitutions resolve after the
/// merge, and the crate's renderer writes the result.
#[test]
fn hocon_merge_golden() {
    let base = "# comments are not kept\n\
        server {\n  host = \"0.0.0.0\"\n  port = 8080\n  tls { enabled = false, ciphers = [a, b] }\n}\n\
        url = \"http://\"${server.host}\":\"${server.port}\n\
        timeout = 10s\n\
        name = \"My App\"\n";
    let overlay = "server.port = 9090\nserver.tls { enabled = true }\nextra { list = [1, 2] }\n";
    let merged = merge(
        &tree(&[("app.conf", base)]),
        &[tree(&[("app.conf", overlay)])],
    );
    let expected = "server {\n  host = \"0.0.0.0\"\n  port = 9090\n  tls {\n    enabled = true\n    ciphers = [\n      a\n      b\n    ]\n  }\n}\n\
        url = \"http://0.0.0.0:9090\"\ntimeout = \"10s\"\nname = \"My App\"\nextra {\n  list = [\n    1\n    2\n  ]\n}\n";
    assert_eq!(text(&merged, "app.conf"), expected);

    // Round trip: the golden text reads back as the merged settings.
    let config = hocon_of(expected);
    assert_eq!(config.get_i64("server.port").ok(), Some(9090));
    assert_eq!(config.get_bool("server.tls.enabled").ok(), Some(true));
    assert_eq!(
        config.get_string("url").ok().as_deref(),
        Some("http://0.0.0.0:9090")
    );
    assert_eq!(
        config.get_duration("timeout").ok(),
        Some(std::time::Duration::from_secs(10))
    );
    let again = merge(
        &tree(&[("app.conf", expected)]),
        &[tree(&[("app.conf", "")])],
    );
    assert_eq!(
        text(&again, "app.conf"),
        expected,
        "rendering is a fixed point"
    );
}

#[test]
fn hocon_overlay_scalar_replaces_base_object_and_back() {
    let base = "a { x = 1 }\nb = 5\n";
    let overlay = "a = off\nb { y = 2 }\n";
    let merged = merge(&tree(&[("s.conf", base)]), &[tree(&[("s.conf", overlay)])]);
    let root = root_map(&hocon_of(text(&merged, "s.conf")));
    let keys: Vec<&String> = root.keys().collect();
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(root["a"].as_str(), Some("off"));
    assert_eq!(root["b"].as_object().map(|b| b.len()), Some(1));
}

#[test]
fn hocon_substitutions_the_file_resolves_are_fine_even_when_overridden() {
    // The base reads DB_PASSWORD from the environment, but the overlay sets the value, so
    // the merged file no longer depends on the environment.
    let base = "password = default\npassword = ${?DB_PASSWORD}\n";
    let merged = merge(
        &tree(&[("db.conf", base)]),
        &[tree(&[("db.conf", "password = secret")])],
    );
    assert_eq!(text(&merged, "db.conf"), "password = secret\n");
}

/// Files as `(path, content)` pairs.
type Files<'a> = &'a [(&'a str, &'a str)];

fn merge_error(base: &FileTree, overlays: &[FileTree]) -> SettingsError {
    merge_settings(base, overlays, &no_macros()).expect_err("merge is refused")
}

#[test]
fn refusals_name_the_tree_file_and_position() {
    // (base files, overlays' files, message)
    let cases: &[(Files<'_>, &[Files<'_>], &str)] = &[
        (
            &[("a.json", "{\"a\": }")],
            &[&[("a.json", "{}")]],
            "base: `a.json` is not valid JSON at line 1, column 7: expected value",
        ),
        (
            &[("a.json", "{}")],
            &[&[("x", "")], &[("a.json.3", "{}"), ("a.json.4", "[1,")]],
            "overlay #2: `a.json.4` is not valid JSON at line 1, column 3: EOF while parsing a value",
        ),
        (
            &[("a.conf", "a = 1")],
            &[&[("a.conf", "a {\n  b = 1\n")]],
            "overlay #1: `a.conf` is not valid HOCON at line 3, column 1: expected }",
        ),
        (
            &[("a.conf", "a = 1\ninclude \"local.conf\"\n")],
            &[&[("a.conf", "b = 2")]],
            "base: `a.conf` at line 2, column 1: `include` cannot be kept when `a.conf` is merged (the merged file is rendered from values); put the included settings in the file itself",
        ),
        (
            &[("a.conf", "p = default\np = ${?DB_PASSWORD}\n")],
            &[&[("a.conf", "q = 1")]],
            "base: `a.conf` at line 2, column 5: `${?DB_PASSWORD}` is not set in the merged `a.conf`, so the program would read it from its environment; a merged file is rendered with its substitutions resolved, which would lose that lookup: set the value in a settings overlay instead",
        ),
        (
            &[("a.conf", "a = 1")],
            &[&[("a.conf", "home = ${HOME}\n")]],
            "overlay #1: `a.conf` at line 1, column 8: `${HOME}` is not set in the merged `a.conf`, so the program would read it from its environment; a merged file is rendered with its substitutions resolved, which would lose that lookup: set the value in a settings overlay instead",
        ),
        (
            &[("a.conf", "list = [1] ${?MORE}\n")],
            &[&[("a.conf", "q = 1")]],
            "base: `a.conf` at line 1, column 12: `${?MORE}` is not set in the merged `a.conf`, so the program would read it from its environment; a merged file is rendered with its substitutions resolved, which would lose that lookup: set the value in a settings overlay instead",
        ),
        (
            &[("a.conf", "db { host = h }\nurl = ${?db.url}\n")],
            &[&[("a.conf", "db.port = 1")]],
            "base: `a.conf` at line 2, column 7: `${?db.url}` is not set in the merged `a.conf`, so the program would read it from its environment; a merged file is rendered with its substitutions resolved, which would lose that lookup: set the value in a settings overlay instead",
        ),
        (
            &[("a.conf", "a = ${b}\nb = ${a}\n")],
            &[&[("a.conf", "c = 1")]],
            "merging `a.conf`: HOCON substitutions do not resolve at line 1, column 5: circular substitution: b",
        ),
        (
            &[("a.conf", "\"line\\nbreak\" = 1\n")],
            &[&[("a.conf", "c = 1")]],
            "merging `a.conf`: the HOCON renderer cannot write these settings faithfully: the rendered text does not parse: ParseError at 1:1: expected key, got TripleQuotedString",
        ),
        (
            &[],
            &[&[("gone.conf.defines", "a=1")]],
            "overlay #1: `gone.conf.defines` gives macro values for `gone.conf`, which is neither in the base nor in any settings overlay",
        ),
        (
            &[("run.sh", "x")],
            &[&[("run.sh.defines", "a=1\n\noops\n")]],
            "overlay #1: `run.sh.defines` line 3: expected `name=value` (name of letters, digits, `_`, `.`, `-`), found `oops`",
        ),
        (
            &[("lib", "a file")],
            &[&[("lib/x.so", "")]],
            "`lib` is a file in the merged tree, but `lib/x.so` needs it to be a directory",
        ),
        (
            &[],
            &[&[("../escape", "")]],
            "overlay #1: `../escape` is not a usable file path (it must be relative and `/`-separated, without empty, `.` or `..` parts)",
        ),
    ];
    for (base, overlays, expected) in cases {
        let overlays: Vec<FileTree> = overlays.iter().map(|files| tree(files)).collect();
        let error = merge_error(&tree(base), &overlays);
        assert_eq!(error.to_string(), *expected);
    }
}

#[test]
fn hocon_include_is_only_refused_where_it_is_a_directive() {
    let base = "a = include
list = [include, x]
\"include\" = 1
obj { k = [\n  include\n] }
";
    let merged = merge(&tree(&[("a.conf", base)]), &[tree(&[("a.conf", "b = 2")])]);
    let root = root_map(&hocon_of(text(&merged, "a.conf")));
    assert_eq!(root["a"].as_str(), Some("include"));
    assert_eq!(root["include"].as_i64(), Some(1));
    for nested in [
        "{ include \"x.conf\" }",
        "{\n  x = 1\n  include file(\"x.conf\")\n}",
    ] {
        let base = format!("o = {nested}\n");
        let error = merge_error(&tree(&[("a.conf", &base)]), &[tree(&[("a.conf", "b = 2")])]);
        assert!(
            matches!(error, SettingsError::HoconInclude { .. }),
            "{base}: {error}"
        );
    }
}

#[test]
fn hocon_overlays_may_refer_to_base_values() {
    let base = "host = example.org\nport = 80\n";
    let overlay = "url = \"http://\"${host}\":\"${port}\nport = 8080\n";
    let merged = merge(&tree(&[("a.conf", base)]), &[tree(&[("a.conf", overlay)])]);
    assert_eq!(
        text(&merged, "a.conf"),
        "host = \"example.org\"\nport = 8080\nurl = \"http://example.org:8080\"\n"
    );
}

#[test]
fn unparsable_base_files_are_fine_when_no_overlay_merges_into_them() {
    let base = tree(&[
        ("a.json", "{\"port\": %%port%%}"),
        ("a.json.defines", "not read"),
    ]);
    let overlay = tree(&[("a.json.defines", "port=80")]);
    let merged = merge(&base, &[overlay]);
    assert_eq!(text(&merged, "a.json"), "{\"port\": 80}");
    assert_eq!(
        text(&merged, "a.json.defines"),
        "not read",
        "base files are never instructions"
    );
}

#[test]
fn non_utf8_content_is_refused_only_where_text_is_needed() {
    let binary = vec![0xff, 0xfe, 0x00];
    let mut base = tree(&[]);
    base.insert("blob.bin".to_owned(), binary.clone());
    base.insert("data.properties".to_owned(), binary.clone());
    let merged = merge(&base, &[tree(&[("other.txt", "x")])]);
    assert_eq!(merged.tree["blob.bin"], binary);

    let error = merge_error(&base, &[tree(&[("blob.bin.defines", "a=1")])]);
    assert_eq!(
        error.to_string(),
        "base: `blob.bin` is not UTF-8 text at line 1, column 1, so it cannot be expanded"
    );
    let error = merge_error(&base, &[tree(&[("data.properties", "a=1")])]);
    assert_eq!(
        error.to_string(),
        "base: `data.properties` is not UTF-8 text at line 1, column 1, so it cannot be merged"
    );
}

#[test]
fn empty_overlays_change_nothing_and_the_report_lists_only_touched_files() {
    let base = tree(&[
        ("a.json", "{ \"a\" : 1 }"),
        ("b.conf", "b=1"),
        ("c.properties", "c=1"),
    ]);
    let merged = merge(&base, &[tree(&[]), tree(&[])]);
    assert_eq!(merged.tree, base);
    assert_eq!(merged.report, MergeReport::default());
}

#[test]
fn report_reads_as_a_build_log() {
    let base = tree(&[
        ("app.conf", "a = 1"),
        ("bin/run", "old"),
        ("run.sh", "%%port%% %%role%%"),
    ]);
    let overlay = tree(&[
        ("app.conf.1", "a = 2"),
        ("bin/run", "new"),
        ("run.sh.defines", "port=1"),
        ("notes.md", "n"),
        (".git/HEAD", "x"),
    ]);
    let merged = merge(&base, &[overlay]);
    assert_eq!(
        merged.report.to_string(),
        "app.conf: merged as HOCON from overlay #1 `app.conf.1`\n\
         bin/run: replaced from overlay #1 `bin/run`\n\
         notes.md: added from overlay #1 `notes.md`\n\
         run.sh: kept; macro values from overlay #1 `run.sh.defines`; expanded %%port%%; left without a value %%role%%\n\
         ignored 1 file(s) under .git in the settings overlays\n"
    );
}

#[test]
fn format_is_taken_from_the_extension() {
    let cases = [
        ("a.json", Some(Format::Json)),
        ("dir/x.properties", Some(Format::Properties)),
        ("application.conf", Some(Format::Hocon)),
        ("A.JSON", None),
        (".json", None),
        ("dir.json/file", None),
        ("a.json.1", None),
        ("nginx.conf.d/x", None),
    ];
    for (path, expected) in cases {
        assert_eq!(Format::of(path), expected, "{path}");
    }
}
