//! The pure domain model of vupdate.
//!
//! Nothing here performs I/O: every function works on values it is handed and returns
//! values or errors, so callers (the state repo, the store, the distribution, the builder
//! and the updater) decide where bytes come from and go to. The crate is laid out by
//! concept, one module each:
//!
//! - [`version`]: developer versions `DIST-1.2.3` and client versions `DIST-1.2.3_N`.
//! - [`service`]: service names and `name-role` instances as an updater is given them.
//! - [`paths`]: lexical path cleaning (no `/./`), for configs and reported directories.
//! - [`update`]: the `update.json` / `install.json` models (build, install, run rules).
//! - [`macros`]: `%%name%%` expansion with undefined macros reported, never left in.
//! - [`settings`]: the client settings merge (`.json`, `.properties`, `.conf`, `.defines`, `X.N`).
//! - [`log`]: the `yyyy-MM-dd HH:mm:ss.SSS LEVEL unit message` log line format.
//! - [`range`]: the byte range of an image download's HTTP `Range` header.
//! - [`reconcile`]: the pure build plan (which developer and client images to build, in order).
//! - [`error_chain`]: an error and its causes on one line, for messages that carry them.

pub mod error_chain;
pub mod log;
pub mod macros;
pub mod paths;
pub mod pin;
pub mod range;
pub mod reconcile;
pub mod service;
pub mod settings;
pub mod update;
pub mod version;
