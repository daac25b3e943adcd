//! The checks behind vupdate's fuzz targets: one function per parser that takes input from
//! outside, which feeds the parser arbitrary bytes and panics when a promise breaks.
//!
//! Two callers run the same checks, so a fuzz target and its regression test never drift:
//!
//! - `fuzz/` (outside the workspace, nightly): one cargo-fuzz target per entry of
//!   [`TARGETS`], each a single call, run by `scripts/fuzz`;
//! - `tests/replay.rs` (stable, in `cargo test`): every seed in `fuzz/seeds/<target>/` and
//!   every input that once failed, kept in `fuzz/regressions/<target>/`.
//!
//! Besides "no panic", each check states what its parser promises (a value reads back as it
//! was written, an error names where, nothing is written outside the image) and asserts
//! it. A check never needs more than a few MiB: libFuzzer's memory limit then finds
//! allocations that the input, not the check, makes unbounded.
//!
//! Layout, one module per input:
//!
//! - [`version`]: version strings, service names, roles and `name-role` lists.
//! - [`update_json`]: `update.json` and `install.json`, with macro expansion.
//! - [`state`]: the state repo's YAML files, read whole and edited by splicing.
//! - [`settings`]: the client settings merge (`.json`, `.properties`, `.conf`, `.defines`, `X.N`).
//! - [`log_line`]: the `date LEVEL unit message` log line format.
//! - [`range`]: the HTTP `Range` header of image downloads.
//! - [`zip`]: image archives, unpacked by the updater and by the builder.
//! - [`handover`]: the updater's handover file.

pub mod handover;
pub mod log_line;
pub mod range;
pub mod settings;
pub mod state;
pub mod update_json;
pub mod version;
pub mod zip;

/// A fuzz target: its name (the `fuzz/` binary and the folders of its seeds and
/// regressions) and the check it runs on one input.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The name, as `cargo fuzz run NAME` takes it.
    pub name: &'static str,
    /// Runs one input; panics when the parser breaks a promise.
    pub check: fn(&[u8]),
}

/// Every fuzz target, in the order `scripts/fuzz` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "version",
        check: version::check,
    },
    Target {
        name: "update_json",
        check: update_json::check,
    },
    Target {
        name: "state_repo",
        check: state::check_repo,
    },
    Target {
        name: "state_edit",
        check: state::check_edit,
    },
    Target {
        name: "settings_json",
        check: settings::check_json,
    },
    Target {
        name: "settings_properties",
        check: settings::check_properties,
    },
    Target {
        name: "settings_conf",
        check: settings::check_conf,
    },
    Target {
        name: "settings_tree",
        check: settings::check_tree,
    },
    Target {
        name: "log_line",
        check: log_line::check,
    },
    Target {
        name: "range",
        check: range::check,
    },
    Target {
        name: "unzip_updater",
        check: zip::check_updater,
    },
    Target {
        name: "unzip_builder",
        check: zip::check_builder,
    },
    Target {
        name: "handover",
        check: handover::check,
    },
];
