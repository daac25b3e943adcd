//! vupdate-client against a real distribution on 127.0.0.1:0 (real SQLite store, real Git
//! state repo in a temp dir).
//!
//! - `support`: a running distribution and clients with each role's token.
//! - `graphql`: answers decoded, errors carrying `extensions.code`.
//! - `desired`: desired client versions polled and followed over the WebSocket; a refused
//!   subscription carries its code, a stopped server ends the feed with a transient error.
//! - `states`: state reports stored and read back.
//! - `faults`: a fault report sent twice, or after only its archive got through, is
//!   stored once.
//! - `images`: upload, download, resume after a cut, checksum and conflict refusals.
//! - `files`: private files, the service's own over common's.
//! - `logs`: `addLogs` and the batching sender; resends never duplicate a line.
//! - `tls`: HTTPS with ring; an extra root certificate is trusted, an unknown one is not;
//!   a pinned key is trusted alone, another key refused naming both pins.

mod desired;
mod faults;
mod files;
mod graphql;
mod images;
mod logs;
mod states;
mod support;
mod tls;
