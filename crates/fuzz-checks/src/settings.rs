//! The client settings merge: a developer image's files overlaid by settings repositories
//! (`.json`, `.properties`, `.conf` merged by key, `X.N` layers, `.defines` macro values).

use arbitrary::{Arbitrary, Unstructured};
use vupdate_core::macros::Macros;
use vupdate_core::settings::{Change, FileTree, Format, merge_settings};

/// JSON: see `check_format`.
pub fn check_json(data: &[u8]) {
    check_format(data, "config/app.json");
}

/// Java properties: see `check_format`.
pub fn check_properties(data: &[u8]) {
    check_format(data, "config/app.properties");
}

/// HOCON: see `check_format`.
pub fn check_conf(data: &[u8]) {
    check_format(data, "config/app.conf");
}

/// The values a client build gives every merge (they win over `.defines`).
fn macro_values() -> Macros {
    Macros::new().with("version", "jetto-1.2.3")
}

/// Input: parts separated by NUL bytes: the base's file, overlay #1's file, its layer
/// `X.1`, its `X.defines`; a part left out is a file that does not exist.
///
/// The merge is a function of its inputs (twice the same answer). Without `.defines`, a
/// merged JSON file is JSON, and merging the result again changes nothing: for JSON and
/// properties, merging the same overlay into it (the overlay already won everywhere); for
/// HOCON, whose `+=` appends again at each merge, merging the result into itself (it holds
/// values only, no `+=` and no `${…}`).
fn check_format(data: &[u8], name: &str) {
    let mut parts = data.splitn(4, |byte| *byte == 0);
    let mut base = FileTree::new();
    if let Some(bytes) = parts.next() {
        base.insert(name.to_owned(), bytes.to_vec());
    }
    let mut overlay = FileTree::new();
    for suffix in ["", ".1", ".defines"] {
        if let Some(bytes) = parts.next() {
            overlay.insert(format!("{name}{suffix}"), bytes.to_vec());
        }
    }
    let overlays = [overlay];
    let macros = macro_values();
    let merged = merge_settings(&base, &overlays, &macros);
    assert_eq!(
        merge_settings(&base, &overlays, &macros),
        merged,
        "a merge depends on its inputs only"
    );
    let merged = match merged {
        Ok(merged) => merged,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            return;
        }
    };
    let has_defines = overlays[0].keys().any(|path| path.ends_with(".defines"));
    if has_defines {
        return;
    }
    let file = &merged.tree[name];
    let merged_by_key = merged
        .report
        .files
        .iter()
        .any(|report| matches!(report.change, Change::Merged(_)));
    if !merged_by_key {
        return;
    }
    if Format::of(name) == Some(Format::Json) {
        let parsed = serde_json::from_slice::<serde_json::Value>(file);
        assert!(parsed.is_ok(), "a merged JSON file is JSON: {parsed:?}");
    }
    let again_overlays = if Format::of(name) == Some(Format::Hocon) {
        [FileTree::from([(name.to_owned(), file.clone())])]
    } else {
        overlays
    };
    let again = merge_settings(&merged.tree, &again_overlays, &macros)
        .expect("merging a file that was merged before reads it again");
    assert!(
        again.tree[name] == *file,
        "merging again changed the file:\n{}\n-- to --\n{}",
        String::from_utf8_lossy(file),
        String::from_utf8_lossy(&again.tree[name])
    );
}

/// A settings tree: files by path, as a repository holds them.
#[derive(Debug, Arbitrary)]
struct TreeSpec(Vec<(PathSpec, Vec<u8>)>);

/// A path built from parts that mean something to the merge, or any text.
#[derive(Debug, Arbitrary)]
enum PathSpec {
    Parts(Vec<u8>),
    Any(String),
}

const PATH_PARTS: &[&str] = &[
    "app.json",
    "app.properties",
    "app.conf",
    "app.json.1",
    "app.json.2",
    "app.json.10",
    "app.json.01",
    "app.conf.defines",
    "app.json.defines",
    "libssl.so.1",
    "app",
    ".git",
    "config",
    ".json",
    "",
    ".",
    "..",
    "a",
];

impl PathSpec {
    fn path(&self) -> String {
        match self {
            PathSpec::Parts(parts) => parts
                .iter()
                .map(|part| PATH_PARTS[usize::from(*part) % PATH_PARTS.len()])
                .collect::<Vec<_>>()
                .join("/"),
            PathSpec::Any(text) => text.clone(),
        }
    }
}

impl TreeSpec {
    fn tree(&self) -> FileTree {
        self.0
            .iter()
            .map(|(path, bytes)| (path.path(), bytes.clone()))
            .collect()
    }
}

/// Input (decoded with `arbitrary`): a base tree and up to three overlays.
///
/// The merge is a function of its inputs; what it returns keeps every base file, and adds
/// no file under `.git` and no `.defines` file the base did not have.
pub fn check_tree(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let Ok(base) = TreeSpec::arbitrary(&mut input) else {
        return;
    };
    let Ok(overlays) = Vec::<TreeSpec>::arbitrary_take_rest(input) else {
        return;
    };
    let base = base.tree();
    let overlays: Vec<FileTree> = overlays.iter().take(3).map(TreeSpec::tree).collect();
    let macros = macro_values();
    let merged = merge_settings(&base, &overlays, &macros);
    assert_eq!(merge_settings(&base, &overlays, &macros), merged);
    let Ok(merged) = merged else {
        return;
    };
    for path in base.keys() {
        assert!(merged.tree.contains_key(path), "base file `{path}` kept");
    }
    for path in merged.tree.keys().filter(|path| !base.contains_key(*path)) {
        assert!(
            !path.split('/').any(|segment| segment == ".git"),
            "`{path}` under .git added"
        );
        assert!(!path.ends_with(".defines"), "`{path}` added");
    }
}
