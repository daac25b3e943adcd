//! Finds the built dashboard (`dashboard/dist`, made by `npm run build` in `dashboard/`)
//! for `http::dashboard` to embed, and tells cargo when to look again.
//!
//! When the folder has no `index.html` (a machine without Node, or a build that has not
//! run yet), an empty folder is embedded instead and the server answers `/` with a page
//! that says how to build the dashboard. Either way the crate compiles.

use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let dashboard = manifest.join("../../dashboard");
    let dist = dashboard.join("dist");
    let folder = if dist.join("index.html").is_file() {
        // A changed or rebuilt file inside it re-runs this script (cargo scans the folder).
        println!("cargo:rerun-if-changed={}", dist.display());
        dist
    } else {
        // Watch the whole dashboard folder, so its first build is noticed.
        if dashboard.is_dir() {
            println!("cargo:rerun-if-changed={}", dashboard.display());
        }
        let empty =
            PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("no-dashboard");
        std::fs::create_dir_all(&empty).expect("create an empty dashboard folder in OUT_DIR");
        empty
    };
    println!("cargo:rerun-if-changed=build.rs");
    println!(
        "cargo:rustc-env=VUPDATE_DASHBOARD_DIR={}",
        absolute(&folder).display()
    );
}

/// `path` without `..`, as rust-embed wants a plain folder path.
fn absolute(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}
