//! Remote builds: a service whose build settings (or `common.yaml`) name a provider as
//! their `builder` is built on that provider's distribution (the original's `runBuilder`).
//!
//! [`MeshRunner`] wraps the server's build runner. A build of such a service is asked of
//! the provider with `runBuilder`: what to build, this distribution's state commit and
//! task, and a Builder token of this distribution's `remote-builder` account (reissued at
//! each start, so only the running server's works). The provider runs `vupdate builder`
//! against this distribution's API (the URL its `consumers.yaml` gives): it reads the
//! settings at this commit (`buildSettings`), downloads images and private files from
//! here, sends its log lines into this task (so the log streams here as the build runs),
//! and uploads the image and its record here. This runner follows the provider's task
//! until it ends, and cancels it when this task is cancelled. Every other build runs here.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use vupdate_backoff::Backoff;
use vupdate_client::{Client, RemoteBuildKind, RemoteBuildRequest};
use vupdate_core::log::Level;
use vupdate_core::reconcile::Build;
use vupdate_state::State;

use super::worker::base_url;
use crate::reconcile::{
    BuildFuture, BuildOrder, BuildRunner, ConsumerBuild, ServerLink, describe, requester,
};
use crate::secrets::Secrets;
use crate::tasks::{CANCELLED, TaskContext};

/// The unit of this runner's task log lines.
const UNIT: &str = "REMOTE_BUILD";
/// How often the provider's task is looked at.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);
/// How long the provider may stay unreachable during a build before it counts as lost.
const LOST_AFTER: Duration = Duration::from_secs(600);

/// The service account whose token remote builders use to reach this distribution.
pub const REMOTE_BUILDER_ACCOUNT: &str = "remote-builder";

/// Runs builds here, or on the provider a service's settings name as its `builder`.
pub struct MeshRunner {
    local: Arc<dyn BuildRunner>,
    secrets: Secrets,
    token: Mutex<Option<String>>,
    link: Mutex<Option<ServerLink>>,
}

impl MeshRunner {
    /// Wraps `local`; providers' tokens come from `secrets`.
    pub fn new(local: Arc<dyn BuildRunner>, secrets: Secrets) -> MeshRunner {
        MeshRunner {
            local,
            secrets,
            token: Mutex::new(None),
            link: Mutex::new(None),
        }
    }

    /// The Builder token remote builders reach this distribution with.
    pub fn set_token(&self, token: String) {
        *self.token.lock().unwrap_or_else(PoisonError::into_inner) = Some(token);
    }
}

impl BuildRunner for MeshRunner {
    fn run(&self, build: Build, state: Arc<State>, task: TaskContext) -> BuildFuture {
        self.local.run(build, state, task)
    }

    fn run_order(&self, order: BuildOrder, task: TaskContext) -> BuildFuture {
        let builder = order
            .state
            .build_settings(order.build.service())
            .and_then(|settings| settings.builder);
        let Some(provider) = builder else {
            return self.local.run_order(order, task);
        };
        let token = self
            .token
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let link = self
            .link
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let secrets = self.secrets.clone();
        Box::pin(async move {
            let result = match (token, link) {
                (Some(token), Some(link)) => {
                    remote(&provider, &order, &task, &secrets, &token, &link).await
                }
                _ => Err(
                    "this distribution has no token for remote builders (see the server's log)"
                        .to_owned(),
                ),
            };
            if let Err(message) = &result {
                task.log(Level::Error, UNIT, message);
            }
            result
        })
    }

    fn attach(&self, server: &ServerLink) {
        *self.link.lock().unwrap_or_else(PoisonError::into_inner) = Some(server.clone());
        self.local.attach(server);
    }

    fn run_for_consumer(&self, build: ConsumerBuild, task: TaskContext) -> BuildFuture {
        self.local.run_for_consumer(build, task)
    }
}

/// What the provider is asked to build.
fn request(order: &BuildOrder, task: &str, author: String, comment: String) -> RemoteBuildRequest {
    let (kind, service, version, developer) = match &order.build {
        Build::Developer { service, version } => (
            RemoteBuildKind::Developer,
            service,
            version.to_string(),
            None,
        ),
        Build::Client {
            service,
            version,
            from,
        } => (
            RemoteBuildKind::Client,
            service,
            version.to_string(),
            Some(from.to_string()),
        ),
        Build::Generation {
            service, current, ..
        } => (
            RemoteBuildKind::Generation,
            service,
            current.developer.to_string(),
            None,
        ),
    };
    RemoteBuildRequest {
        kind,
        service: service.to_string(),
        version,
        developer_version: developer,
        commit: order.revision.id.clone(),
        task: task.to_owned(),
        author,
        comment,
    }
}

/// Runs `order` on `provider` and follows it to its end.
async fn remote(
    provider: &str,
    order: &BuildOrder,
    task: &TaskContext,
    secrets: &Secrets,
    token: &str,
    link: &ServerLink,
) -> Result<(), String> {
    let what = describe(&order.build);
    let settings = order.state.providers.get(provider).ok_or_else(|| {
        format!("{what}: builder `{provider}` is not a provider of providers.yaml")
    })?;
    let secret = secrets
        .get(&settings.access_token_secret)
        .map_err(|error| error.to_string())?
        .ok_or_else(|| {
            format!(
                "{what}: secret `{}` (the access token of builder `{provider}`) is not set here",
                settings.access_token_secret
            )
        })?;
    let mut client = Client::builder(base_url(&settings.url)).token(secret.expose());
    if let Some(pin) = settings.pinned_public_key {
        client = client.pinned_public_key(pin);
    }
    let client = client
        .build()
        .map_err(|error| format!("{what}: builder `{provider}`: {error}"))?;
    let (author, comment) = requester(&link.repo, order).await;
    task.log(
        Level::Info,
        UNIT,
        &format!(
            "{what}: asking {provider} to build it with this distribution's settings at state commit {}",
            order.revision.id
        ),
    );
    let remote_task = client
        .run_builder(&request(order, task.id(), author, comment), token)
        .await
        .map_err(|error| format!("{what}: {provider} did not start the build: {error}"))?;
    task.log(
        Level::Info,
        UNIT,
        &format!("{provider} builds it as its task {remote_task}; the builder's lines follow"),
    );
    follow(&client, provider, &remote_task, task).await
}

/// Follows the provider's task until it ends; cancels it when `task` is cancelled.
async fn follow(
    client: &Client,
    provider: &str,
    remote_task: &str,
    task: &TaskContext,
) -> Result<(), String> {
    let mut backoff = Backoff::new(FOLLOW_INTERVAL, Duration::from_secs(30));
    let mut unreachable_since: Option<tokio::time::Instant> = None;
    let mut delay = FOLLOW_INTERVAL;
    loop {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = task.cancelled() => {
                task.log(Level::Warn, UNIT, &format!("cancelled; cancelling {provider}'s task {remote_task}"));
                if let Err(error) = client.cancel_task(remote_task).await {
                    task.log(Level::Warn, UNIT, &format!("{provider} did not take the cancel: {error}"));
                }
                return Err(CANCELLED.to_owned());
            }
        }
        match client.remote_build(remote_task).await {
            Ok(build) if build.active => {
                unreachable_since = None;
                backoff.reset();
                delay = FOLLOW_INTERVAL;
            }
            Ok(build) if build.succeeded == Some(true) => {
                task.log(
                    Level::Info,
                    UNIT,
                    &format!("{provider}'s task {remote_task} finished; the image is here"),
                );
                return Ok(());
            }
            Ok(build) => {
                return Err(format!(
                    "{provider}'s task {remote_task} failed: {}",
                    build
                        .message
                        .unwrap_or_else(|| "see its log there".to_owned())
                ));
            }
            Err(error) if error.is_transient() => {
                let since = *unreachable_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() > LOST_AFTER {
                    return Err(format!(
                        "{provider} has not answered about its task {remote_task} for {LOST_AFTER:?}: {error}"
                    ));
                }
                delay = backoff.next_delay();
            }
            Err(error) => {
                return Err(format!(
                    "cannot follow {provider}'s task {remote_task}: {error}"
                ));
            }
        }
    }
}
