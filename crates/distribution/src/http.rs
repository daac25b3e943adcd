//! The distribution's HTTP edge: health, the Git webhook, and image upload and download.
//!
//! [`app`] builds the [`Router`] from an [`AppState`]; the binary serves it, tests serve it
//! on `127.0.0.1:0`. Every failure leaves a handler as one [`ApiError`], which answers
//! `{"error": {"code", "message"}}` with a stable code and logs an internal cause once.
//!
//! Routes (every one but `/health` and a signed webhook needs `Authorization: Bearer
//! <token>`):
//!
//! - `GET /health`: `200 ok`.
//! - `POST /hooks/git` (Administrator, Builder, or a Git host's webhook signed with the
//!   push webhook secret, see [`crate::webhook`]): asks the state watcher to check the
//!   repo now; `202` (`404` when no watcher runs).
//! - `PUT /images/{kind}/{service}/{version}` (Administrator, Builder): streams the body
//!   into the image store, checking the optional `X-Content-Sha256` header; `201
//!   {"digest", "size"}`, `409` when the version exists (before the body is read).
//! - `GET /images/{kind}/{service}/{version}` (Administrator, Builder, DistributionConsumer;
//!   plus Updater for client images): streams the image with `ETag` and `Accept-Ranges`;
//!   a single `Range` gives `206`, an unsatisfiable one `416`; `X-Content-Sha256` names
//!   the whole image's digest, so a resumed download can be verified.
//! - `PUT /faults/{id}`, `GET /faults/{distribution}/{id}`: fault report archives; `PUT`
//!   and `GET /private-files/{kind}/{service}/{*path}`: private files (see `files`).
//! - `GET /metrics`: Prometheus text format, no login.
//! - `POST /logs/batches` (Administrator, Updater, Builder): a batch of log lines, as
//!   `addLogs` takes it, read without GraphQL (see `logs`); `200 {"stored": N}`.
//! - `GET /logs/download` (Administrator, Developer): the lines a `logs` filter matches,
//!   oldest first, as a text file (see `logs`).
//! - `GET /install/updater.sh` (no login), `GET /install/updater.sha256` and
//!   `GET /install/updater` (an enrolment token): the one-line install (see `install`).
//! - `GET /graphiql` and every other `GET` no route takes: the embedded dashboard (see
//!   `dashboard`); no login, the app logs in itself.

mod client;
mod dashboard;
mod error;
mod files;
mod hooks;
mod images;
mod install;
mod limits;
mod log_uploads;
mod logs;
mod metrics;
pub(crate) mod principal;
#[cfg(test)]
mod tests;
mod uploads;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};

use crate::auth::AuthService;
use crate::faults::FaultFiles;
use crate::images::ImageStore;
use crate::metrics::Metrics;
use crate::private::PrivateFiles;
use crate::watcher::WatchTrigger;

pub use client::{AddressSlot, AddressSlots, ClientAddress};
pub use dashboard::embedded as dashboard_embedded;
pub use error::ApiError;
pub use limits::{BodyTimeout, RequestGate, enforce as enforce_limits};
pub use metrics::count_requests;
pub use vupdate_core::range::ByteRange;

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Authenticates every request.
    pub auth: AuthService,
    /// The version images.
    pub images: ImageStore,
    /// The state watcher's trigger for `POST /hooks/git`; `None` when no watcher runs.
    pub trigger: Option<WatchTrigger>,
    /// The secret Git hosts sign `POST /hooks/git` with.
    pub webhook: std::sync::Arc<crate::webhook::WebhookSecret>,
    /// Fault report archives.
    pub faults: FaultFiles,
    /// Private files of builds.
    pub private_files: PrivateFiles,
    /// This distribution's name (whose fault reports an updater's are).
    pub distribution: String,
    /// What `/metrics` serves.
    pub metrics: Metrics,
    /// The store, for `/logs/download`.
    pub store: vupdate_store::Store,
    /// The install script, the updater binary and the enrolment tokens.
    pub install: crate::install::Installer,
    /// Stores log batches (`POST /logs/batches`).
    pub intake: crate::intake::LogIntake,
    /// The state in force, which tells a `name-role` service of an older sender apart.
    pub in_force: tokio::sync::watch::Receiver<Option<crate::watcher::InForce>>,
    /// Where log uploads are worked on ([`crate::runtime::LogUploads`]).
    pub log_uploads: tokio::runtime::Handle,
}

/// The distribution's router, ready to serve.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/health", get(hooks::health))
        .route("/hooks/git", post(hooks::git))
        .route(
            "/images/{kind}/{service}/{version}",
            get(images::download).put(images::upload),
        )
        .route("/faults/{id}", put(files::upload_fault))
        .route("/faults/{distribution}/{id}", get(files::download_fault))
        .route(
            "/private-files/{kind}/{service}/{*path}",
            get(files::download_private)
                .put(files::upload_private)
                .delete(files::remove_private),
        )
        .route("/private-files/{kind}", get(files::list_private))
        .route("/logs/batches", post(logs::upload))
        .route("/logs/download", get(logs::download))
        .route("/install/updater.sh", get(install::script))
        .route("/install/updater.sha256", get(install::checksum))
        .route("/install/updater", get(install::binary))
        .route(
            "/metrics",
            get(metrics::metrics).with_state(state.metrics.clone()),
        )
        .route("/graphiql", get(dashboard::graphiql))
        .fallback(dashboard::fallback)
        // The request gate bounds every body by its route's limit before a handler reads
        // it; axum's own 2 MiB default would refuse a log batch or a push the gate allows.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}
