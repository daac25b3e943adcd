//! The store's integration tests, one binary:
//!
//! - `conformance`: one suite of cases, written once against the public API;
//! - `sqlite`: the suite on SQLite files in temporary directories;
//! - `mongo`: the suite on a MongoDB server (`VUPDATE_TEST_MONGODB_URL`, else a `mongod` on
//!   PATH, else the nx-27017 stand-in that `scripts/install-test-deps.sh` installs), one
//!   database per case;
//! - `bad_input`: a corrupt SQLite file and an unreachable MongoDB at start-up;
//! - `upgrade`: a SQLite file of an older schema, opened and upgraded.

mod bad_input;
mod conformance;
mod mongo;
mod sqlite;
mod upgrade;
