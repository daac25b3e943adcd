//! Rules of the workspace that are checked by a test rather than left to review (as
//! rust-analyzer's tidy tests do). Each test says what it guards and why.
//!
//! - `error_messages_carry_their_cause_once`: a `thiserror` variant either writes its cause
//!   into its message or returns it from `source()`, never both; the binary prints the
//!   whole chain (`{:#}`), so both would print the same cause twice.
//! - `client_and_updater_depend_on_no_server_crate`: the client and the updater, and the
//!   `vupdate` binary built as the agent alone, ship to every VM; they must not pull the
//!   server's HTTP framework, GraphQL server, databases or Git library.
//!
//! The purity of the core is checked next to it, in `crates/core/tests/purity.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Crates of the server side: none may be in the dependency tree of what runs on a VM.
const SERVER_CRATES: &[&str] = &[
    "axum",
    "axum-server",
    "async-graphql",
    "async-graphql-axum",
    "mongodb",
    "rusqlite",
    "gix",
    "vupdate-distribution",
    "vupdate-store",
    "vupdate-state",
];

/// The packages (with their features) of the normal dependency tree of `args`
/// (`-p NAME …`), as `cargo tree` resolves it.
fn dependency_tree(args: &[&str]) -> Vec<String> {
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let output = Command::new(cargo)
        .args(["tree", "--offline", "-e", "normal", "--prefix", "none"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("cargo tree prints UTF-8")
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn client_and_updater_depend_on_no_server_crate() {
    let agents: [&[&str]; 3] = [
        &["-p", "vupdate-client"],
        &["-p", "vupdate-updater"],
        &[
            "-p",
            "vupdate",
            "--no-default-features",
            "--features",
            "updater",
        ],
    ];
    for args in agents {
        let tree = dependency_tree(args);
        assert!(
            tree.iter().any(|name| name.starts_with("vupdate")),
            "cargo tree {args:?} listed nothing: {tree:?}"
        );
        let offenders: Vec<&String> = tree
            .iter()
            .filter(|name| SERVER_CRATES.contains(&name.as_str()))
            .collect();
        assert!(
            offenders.is_empty(),
            "{args:?} runs on every VM and must not depend on {offenders:?}"
        );
    }
}

/// The workspace's `crates/` folder.
fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("test-support lives in crates/")
        .to_path_buf()
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The text from `open` (an opening bracket at `start`) to its matching close, exclusive;
/// brackets inside string literals are skipped.
fn balanced(text: &str, start: usize, open: char, close: char) -> Option<&str> {
    let mut depth = 0;
    let mut in_string = false;
    let mut escaped = false;
    for (offset, c) in text[start..].char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[start + 1..start + offset]);
                }
            }
            _ => {}
        }
    }
    None
}

/// One `#[error(...)]` variant: its message attribute and the names of its fields that
/// `source()` returns (`0` for a tuple field).
struct Variant {
    name: String,
    message: String,
    sources: Vec<String>,
}

/// The variants of every `#[error(...)]` attribute in `text`.
fn variants(text: &str) -> Vec<Variant> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = text[at..].find("#[error(") {
        let start = at + offset + "#[error".len();
        let Some(message) = balanced(text, start, '(', ')') else {
            break;
        };
        let after = start + message.len() + 2;
        at = after;
        // The variant (or struct) the attribute is on: its name, then `{`, `(` or `,`.
        let rest = text[after..].trim_start_matches([']', ' ', '\n', '\r', '\t']);
        let rest_start = text.len() - rest.len();
        let name: String = rest
            .trim_start_matches("pub ")
            .trim_start_matches("struct ")
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let body_start = text[rest_start..]
            .find(['{', '(', ',', ';'])
            .map(|offset| rest_start + offset);
        let sources = match body_start.map(|start| (start, text.as_bytes()[start])) {
            Some((start, b'{')) => balanced(text, start, '{', '}')
                .map(named_sources)
                .unwrap_or_default(),
            Some((start, b'(')) => balanced(text, start, '(', ')')
                .filter(|body| body.contains("#[source]") || body.contains("#[from]"))
                .map(|_| vec!["0".to_owned()])
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        found.push(Variant {
            name,
            message: message.to_owned(),
            sources,
        });
    }
    found
}

/// The fields of a `{ … }` variant body that are sources: marked `#[source]` or
/// `#[from]`, or named `source`.
fn named_sources(body: &str) -> Vec<String> {
    let mut sources = Vec::new();
    for field in top_level_fields(body) {
        // Doc comments go; attributes stay to be looked at.
        let code: String = field
            .lines()
            .map(str::trim)
            .filter(|line| !line.starts_with("//"))
            .collect::<Vec<_>>()
            .join(" ");
        let marked = code.contains("#[source]") || code.contains("#[from]");
        let declaration = code
            .replace("#[source]", "")
            .replace("#[from]", "")
            .trim()
            .trim_start_matches("pub ")
            .to_owned();
        if let Some((name, _)) = declaration.split_once(':') {
            let name = name.trim();
            if marked || name == "source" {
                sources.push(name.to_owned());
            }
        }
    }
    sources
}

/// `body` split at the commas that are not inside `<>`, `()` or `[]`.
fn top_level_fields(body: &str) -> Vec<&str> {
    let mut fields = Vec::new();
    let (mut depth, mut start) = (0_i32, 0);
    for (offset, c) in body.char_indices() {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                fields.push(&body[start..offset]);
                start = offset + 1;
            }
            _ => {}
        }
    }
    fields.push(&body[start..]);
    fields
}

/// Whether the `#[error(...)]` arguments print `field`: `{field}`, `{field:…}` in the
/// format string, or `field` among the extra arguments.
fn prints(message: &str, field: &str) -> bool {
    if message.contains("transparent") {
        return false;
    }
    let in_format = message.contains(&format!("{{{field}}}"))
        || message.contains(&format!("{{{field}:"))
        || (field == "0" && message.contains("{0}"));
    let arguments = message.rsplit_once('"').map_or("", |(_, rest)| rest);
    let in_arguments = arguments
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|word| word == field);
    in_format || in_arguments
}

#[test]
fn error_messages_carry_their_cause_once() {
    let mut files = Vec::new();
    rust_files(&crates_dir(), &mut files);
    let mut offenders = Vec::new();
    // This file's own examples break the rule on purpose.
    let this_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tidy.rs");
    for file in files.iter().filter(|file| **file != this_file) {
        let text = std::fs::read_to_string(file).expect("sources are UTF-8");
        if !text.contains("thiserror") {
            continue;
        }
        for variant in variants(&text) {
            for field in &variant.sources {
                if prints(&variant.message, field) {
                    offenders.push(format!(
                        "{}: `{}` prints `{field}` and returns it from source()",
                        file.display(),
                        variant.name
                    ));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "a cause goes in the message or in source(), not both (name the field `error` \
         to keep it in the message only):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_error_scan_sees_a_cause_printed_twice() {
    let text = r#"
        #[derive(Debug, thiserror::Error)]
        pub enum E {
            #[error("cannot open {path}: {source}")]
            Open { path: String, source: std::io::Error },
            #[error("cannot read {path}: {error}")]
            Read { path: String, error: std::io::Error },
            #[error("step `{step}`")]
            Step { step: &'static str, #[source] cause: Box<E> },
            #[error("the store: {0}")]
            Store(#[from] StoreError),
            #[error("the pool: {}", describe(cause))]
            Pool { #[source] cause: PoolError },
            #[error(transparent)]
            Other(#[from] OtherError),
        }
    "#;
    let twice: Vec<(String, String)> = variants(text)
        .into_iter()
        .flat_map(|variant| {
            let message = variant.message.clone();
            let name = variant.name.clone();
            variant
                .sources
                .into_iter()
                .filter(move |field| prints(&message, field))
                .map(move |field| (name.clone(), field))
        })
        .collect();
    assert_eq!(
        twice,
        [
            ("Open".to_owned(), "source".to_owned()),
            ("Store".to_owned(), "0".to_owned()),
            ("Pool".to_owned(), "cause".to_owned()),
        ]
    );
}
