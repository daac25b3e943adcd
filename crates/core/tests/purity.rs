//! The core stays pure: it depends on no I/O crate and calls no I/O from std.
//!
//! Every other part leans on the core being synchronous and side-effect free (it computes,
//! callers do the I/O), so this is checked by a test rather than left to review, as
//! rust-analyzer does with `cargo tree -i`.

use std::path::Path;
use std::process::Command;

/// Crates that do I/O or bring a runtime; none may appear in the core's dependency tree.
const FORBIDDEN_CRATES: &[&str] = &[
    "tokio",
    "gix",
    "rusqlite",
    "mongodb",
    "axum",
    "async-graphql",
    "reqwest",
    "hyper",
    "notify",
    "sysinfo",
    "nix",
    "zip",
    "tracing",
];

/// Paths in std that reach outside the process.
const FORBIDDEN_PATHS: &[&str] = &[
    "std::fs",
    "std::net",
    "std::process",
    "std::env",
    "std::thread",
];

#[test]
fn core_depends_on_no_io_crate() {
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let output = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-p",
            "vupdate-core",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8(output.stdout).expect("cargo tree prints UTF-8");
    let offenders: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| FORBIDDEN_CRATES.contains(name))
        .collect();
    assert!(
        offenders.is_empty(),
        "vupdate-core must stay pure, but depends on {offenders:?}"
    );
}

#[test]
fn core_sources_use_no_io_from_std() {
    let mut offenders = Vec::new();
    scan(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut offenders,
    );
    assert!(
        offenders.is_empty(),
        "vupdate-core must stay pure: {offenders:#?}"
    );
}

fn scan(dir: &Path, offenders: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("core src is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            scan(&path, offenders);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let text = std::fs::read_to_string(&path).expect("source is UTF-8");
            for (line, hit) in io_paths(&text) {
                offenders.push(format!("{}:{line}: uses {hit}", path.display()));
            }
        }
    }
}

/// The forbidden std paths `text` names, with their line numbers: written out
/// (`std::fs::read`), or in a group (`use std::{fs, io}`, `use std::{io, process::Command}`),
/// whitespace and line breaks inside the group included.
fn io_paths(text: &str) -> Vec<(usize, &'static str)> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let compact: String = line.split_whitespace().collect();
        if let Some(hit) = FORBIDDEN_PATHS.iter().find(|p| compact.contains(*p)) {
            found.push((number + 1, *hit));
        }
    }
    let mut at = 0;
    while let Some(offset) = text[at..].find("std::{") {
        let start = at + offset + "std::{".len();
        let Some(length) = text[start..].find('}') else {
            break;
        };
        let line = text[..start].lines().count();
        for item in text[start..start + length].split(',') {
            let module = item.trim().split("::").next().unwrap_or_default().trim();
            if let Some(hit) = FORBIDDEN_PATHS
                .iter()
                .find(|path| path.strip_prefix("std::") == Some(module))
            {
                found.push((line, *hit));
            }
        }
        at = start + length;
    }
    found
}

#[test]
fn the_scan_sees_grouped_and_spaced_uses() {
    let hits =
        |text: &str| -> Vec<&str> { io_paths(text).into_iter().map(|(_, hit)| hit).collect() };
    assert_eq!(hits("use std::{fs, io};"), ["std::fs"]);
    assert_eq!(
        hits("use std::{\n    io,\n    process::Command,\n};"),
        ["std::process"]
    );
    assert_eq!(hits("let _ = std :: env :: var(\"X\");"), ["std::env"]);
    assert_eq!(
        hits("use std::{collections::HashMap, fmt};"),
        Vec::<&str>::new()
    );
    assert_eq!(hits("use std::{fmt, thread::sleep};"), ["std::thread"]);
}
