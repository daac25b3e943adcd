//! A running distribution, assembled from its config: the store, accounts, images, the
//! state watcher, tasks, the reconcile loop, expiry, and the HTTP and GraphQL server.
//!
//! [`Distribution::start`] brings the parts up in dependency order and fails with a
//! [`ServerError`] that names the part and the file or address; [`Distribution::shutdown`]
//! stops taking requests, lets the ones in flight finish, and stops the loops.

mod error;
mod listen;
pub mod tls;
pub(crate) mod token_files;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vupdate_core::service::ServiceName;

use crate::auth::{AuthOptions, AuthService, Bootstrap, IssuedUnder, JwtKey, PasswordCost, Role};
use crate::config::{DistributionConfig, StateRepoSource};
use crate::consumers::ConsumerRecords;
use crate::faults::FaultFiles;
use crate::graphql::{self, ApiContext, DistributionInfo};
use crate::http::{self, AppState};
use crate::images::{ImageStore, ImageStoreOptions};
use crate::intake::LogIntake;
use crate::leadership::Leadership;
use crate::mesh::Mesh;
use crate::mesh::board::Board;
use crate::mesh::remote_build::{MeshRunner, REMOTE_BUILDER_ACCOUNT};
use crate::mesh::worker::Parts as MeshParts;
use crate::metrics::Metrics;
use crate::private::PrivateFiles;
use crate::reconcile::{
    BuildRunner, BuilderUnavailable, GenerationLink, ReconcileConfig, ReconcileStatus, Reconciler,
    ServerLink,
};
use crate::secrets::Secrets;
use crate::self_update::turn::Turns;
use crate::self_update::{Follower, Ready, SelfUpdateOptions, SelfUpdates};
use crate::state_reports::StateReports;
use crate::tasks::{LogOrigin, TaskManager};
use crate::watcher::{InForce, RepoSource, StateWatcher, WatchConfig};
use crate::webhook::WebhookSecret;

pub use error::ServerError;

/// How long cancelled tasks get to end before they are aborted.
const TASK_GRACE: Duration = Duration::from_secs(10);
/// The longest wait between state repo fetches while they fail.
const MAX_FETCH_BACKOFF: Duration = Duration::from_secs(300);
/// How often the reconcile loop looks again with no signal.
const RESYNC_INTERVAL: Duration = Duration::from_secs(60);
/// How old an object-store blob no ref names must be before expiry deletes it: far longer
/// than any upload takes between its blob and its ref.
const BLOB_GRACE: Duration = Duration::from_secs(24 * 3600);

/// The service account whose access token the server gives its builder processes; its
/// older tokens are revoked at each start, so only the running server's token works.
pub const BUILDER_ACCOUNT: &str = "local-builder";

/// Choices a caller makes beyond the config file.
#[derive(Clone)]
pub struct StartOptions {
    /// The argon2id cost of new password hashes (tests use the minimum).
    pub password_cost: PasswordCost,
    /// Runs builds for the reconcile loop (`vupdate distribution run` gives a
    /// [`ProcessRunner`](crate::reconcile::ProcessRunner)); the default fails every build.
    pub builder: Arc<dyn BuildRunner>,
    /// The updater binary `GET /install/updater` offers VMs (`vupdate distribution run`
    /// gives its own executable); none: the route says no binary is offered.
    pub updater_binary: Option<PathBuf>,
    /// The listening socket to serve on instead of binding `config.listen` (the one a
    /// self-update hands to the new program, or systemd's socket activation).
    pub listener: Option<Arc<std::net::TcpListener>>,
    /// Replace this program with the desired `distribution` version (`vupdate
    /// distribution run` sets it); none: that version is only shown.
    pub self_update: Option<SelfUpdateOptions>,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            password_cost: PasswordCost::DEFAULT,
            builder: Arc::new(BuilderUnavailable),
            updater_binary: None,
            listener: None,
            self_update: None,
        }
    }
}

/// A running distribution server.
pub struct Distribution {
    local_addr: SocketAddr,
    bootstrap: Bootstrap,
    context: ApiContext,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    expiry: JoinHandle<()>,
    watchers: JoinHandle<()>,
    watcher: StateWatcher,
    reconciler: Reconciler,
    /// Held while the server runs, so a restore refuses its data directory.
    _lock: std::fs::File,
    mesh: Mesh,
    consumer_accounts: JoinHandle<()>,
    /// A second descriptor of the listening socket, kept open across a self-update.
    listener: std::os::fd::OwnedFd,
    /// New binaries ready to take over (when self-update is on).
    ready: Option<tokio::sync::mpsc::Receiver<Ready>>,
    self_update: Option<JoinHandle<()>>,
    /// Renews the replicas' lease and releases it at shutdown (MongoDB only).
    lease_keeper: Option<JoinHandle<()>>,
    /// Tells the lease keeper to release the lease.
    release: watch::Sender<bool>,
    /// What a replica does at each take-over of the lease (MongoDB only).
    take_over: Option<JoinHandle<()>>,
    /// The thread log uploads are worked on, stopped with the server.
    _log_uploads: crate::runtime::LogUploads,
}

impl std::fmt::Debug for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Distribution")
            .field("local_addr", &self.local_addr)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl Distribution {
    /// Opens every part `config` describes and starts serving on `config.listen`.
    pub async fn start(
        config: &DistributionConfig,
        options: StartOptions,
    ) -> Result<Distribution, ServerError> {
        let data = &config.data_directory;
        tokio::fs::create_dir_all(data)
            .await
            .map_err(|source| ServerError::DataDirectory {
                path: data.clone(),
                error: source,
            })?;
        let lock = lock_when_free(data)
            .await
            .map_err(|source| ServerError::DataDirectoryLock {
                path: data.clone(),
                error: source,
            })?;
        let store = vupdate_store::open(&config.store)
            .await
            .map_err(ServerError::Store)?;
        let (stop, stopped) = watch::channel(false);
        let holder = crate::leadership::holder_id(&config.instance);
        // One server owns a SQLite store; replicas on MongoDB share the lease in it.
        // The lease is released after everything it guards has stopped (`shutdown`).
        let (release, released) = watch::channel(false);
        let (leadership, lease_keeper) = match &config.store {
            vupdate_store::StoreConfig::Sqlite { .. } => (Leadership::sole(&holder), None),
            _ => {
                tracing::info!(%holder, "replica: waiting for the lease before building or expiring");
                let (leadership, keeper) =
                    Leadership::keep(store.clone(), holder.clone(), config.lease, released);
                (leadership, Some(keeper))
            }
        };
        let key_file = config.jwt_key_file.clone();
        let key = tokio::task::spawn_blocking(move || JwtKey::load_or_create(key_file))
            .await
            .map_err(|e| ServerError::Join(e.to_string()))?
            .map_err(ServerError::Auth)?;
        let secret_file = config.state_repo.webhook_secret_file.clone();
        let webhook =
            tokio::task::spawn_blocking(move || WebhookSecret::load_or_create(&secret_file))
                .await
                .map_err(|e| ServerError::Join(e.to_string()))?
                .map_err(ServerError::Webhook)?;
        let limits = config.limits;
        let auth = AuthService::with_options(
            store.clone(),
            key.clone(),
            AuthOptions {
                password_cost: options.password_cost,
                hashing: limits.login.hashing,
                throttle: limits.login.throttle,
                ..AuthOptions::default()
            },
        );
        let bootstrap = auth.bootstrap().await.map_err(ServerError::Auth)?;
        token_files::write_token_files(&auth, &config.token_files).await?;
        let remote = match &config.object_store {
            Some(s3) => {
                let settings = s3.settings().map_err(ServerError::ObjectStore)?;
                tracing::info!(bucket = %settings.bucket, endpoint = ?settings.endpoint, prefix = %settings.prefix, "images, fault archives and private files in an object store; the data directory keeps a cache");
                Some(vupdate_images::RemoteImages::s3(&settings).map_err(ServerError::Images)?)
            }
            None => None,
        };
        // Fault archives and private files beside the images, so every replica serves them.
        let (remote_faults, remote_private) = match &remote {
            Some(remote) => (Some(remote.files("faults")), Some(remote.files("private"))),
            None => (None, None),
        };
        let images = ImageStore::open_with(
            data.join("images"),
            ImageStoreOptions {
                max_image_bytes: Some(limits.requests.max_image),
                remote,
            },
        )
        .await
        .map_err(ServerError::Images)?;

        let metrics = Metrics::new();
        store.set_observer(Arc::new(metrics.clone()));
        let fault_files = FaultFiles::open(data.join("faults"), limits.requests.max_fault_archive)
            .await
            .map_err(|source| ServerError::DataDirectory {
                path: data.join("faults"),
                error: source,
            })?
            .with_remote(remote_faults);
        let private_files =
            PrivateFiles::open(data.join("private"), limits.requests.max_private_file)
                .await
                .map_err(|source| ServerError::DataDirectory {
                    path: data.join("private"),
                    error: source,
                })?
                .with_remote(remote_private);

        let secrets = Secrets::open(store.clone(), &key, data)
            .await
            .map_err(ServerError::Secrets)?;
        let consumers = ConsumerRecords::new(store.clone(), data);
        consumers
            .import_files()
            .await
            .map_err(|source| ServerError::DataDirectory {
                path: data.join("consumers"),
                error: source,
            })?;

        let tasks = TaskManager::new(store.clone(), log_origin(config), TASK_GRACE)
            .with_metrics(metrics.clone());
        // Tasks a previous run left active are failed now; the reconcile loop plans their
        // builds again because their images are still missing. A replica does this when it
        // takes the lease (the tasks of the holder before it).
        if lease_keeper.is_none() {
            recover_tasks(&tasks).await.map_err(ServerError::Tasks)?;
        }

        let tls = config.tls.as_ref().map(tls::serve).transpose()?;
        if let Some(served) = &tls {
            tracing::info!(pin = %served.pin, "serving HTTPS; clients may pin this key");
        }
        let pin = tls.as_ref().map(|served| served.pin);
        let watcher = StateWatcher::start(watch_config(config))
            .await
            .map_err(ServerError::Watch)?;
        // Bound before the loop starts, so a builder it starts can reach the server.
        let listener = match options.listener {
            Some(inherited) => inherited_listener(&inherited, config.listen)?,
            None => listen::bind(config.listen).map_err(|source| ServerError::Bind {
                address: config.listen,
                error: source,
            })?,
        };
        if let Some(warning) =
            listen::somaxconn().and_then(|cap| listen::short_queue(cap, limits.connections.max))
        {
            tracing::warn!("{warning}");
        }
        let listener_copy = std::os::fd::AsFd::as_fd(&listener)
            .try_clone_to_owned()
            .map_err(|source| ServerError::Bind {
                address: config.listen,
                error: source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            address: config.listen,
            error: source,
        })?;
        // Builds of services whose settings name a provider as builder run there.
        let runner = Arc::new(MeshRunner::new(options.builder, secrets.clone()));
        let builders = Builders {
            auth: auth.clone(),
            runner: Arc::clone(&runner),
            link: ServerLink {
                url: own_url(config, local_addr),
                token: String::new(),
                pinned_public_key: pin,
                repo: watcher.repo(),
                work_directory: config.builder.directory.clone(),
                instance: config.instance.clone(),
            },
        };
        let builder: Arc<dyn BuildRunner> = runner;
        // The builders' tokens are issued by the lease holder, revoking its predecessor's:
        // a builder a dead or paused holder left running can no longer upload anything.
        // The reconcile loop builds only once that and the predecessor's tasks are done.
        let (building, take_over) = match lease_keeper {
            None => {
                builders.issue(None).await;
                (leadership.clone(), None)
            }
            Some(_) => {
                let tasks = tasks.clone();
                let (building, take_over) = leadership.prepared(stopped.clone(), move |lease| {
                    let (builders, tasks) = (builders.clone(), tasks.clone());
                    async move {
                        tracing::info!(token = lease.token, "lease taken: failing the tasks the previous holder left, issuing the builders' tokens");
                        if let Err(error) = recover_tasks(&tasks).await {
                            tracing::error!(%error, "cannot fail the tasks the previous holder left");
                        }
                        builders.issue(Some(&lease)).await;
                        tracing::info!(token = lease.token, "take-over done: the previous holder's builders are fenced off; building");
                    }
                });
                (building, Some(take_over))
            }
        };
        let reconciler = Reconciler::start_leased(
            ReconcileConfig {
                distribution: config.name.to_string(),
                max_parallel_builds: config.builder.max_parallel_builds,
                resync_interval: RESYNC_INTERVAL,
            },
            watcher.subscribe(),
            images.clone(),
            tasks.clone(),
            Arc::clone(&builder),
            Some(GenerationLink {
                store: store.clone(),
                repo: watcher.repo(),
                trigger: watcher.trigger_handle(),
            }),
            building,
        );

        let expiry = {
            let (leadership, stopped) = (leadership.clone(), stopped.clone());
            let (store, policy) = (store.clone(), config.expiration.policy());
            let (schedule, fault_files) = (config.expiration.schedule.clone(), fault_files.clone());
            let images = images.clone();
            tokio::spawn(async move {
                leadership
                    .while_held(stopped.clone(), |_| {
                        let (expired_faults, images) = (fault_files.clone(), images.clone());
                        let (fence, blob_fence) = (leadership.clone(), leadership.clone());
                        vupdate_store::run_expiry(
                            store.clone(),
                            policy.clone(),
                            schedule.clone(),
                            move || {
                                let fence = fence.clone();
                                async move { fence.fence().await }
                            },
                            move |at, outcome| match outcome {
                                Ok(report) => {
                                    // The store forgot these reports; their archives go too.
                                    for fault in &report.fault_reports {
                                        expired_faults
                                            .remove_blocking(&fault.distribution, &fault.id);
                                    }
                                    tracing::info!(%at, ?report, "expired old records");
                                    // The object store's blobs of removed versions go too,
                                    // each past the lease's fence.
                                    let (images, fence) = (images.clone(), blob_fence.clone());
                                    tokio::spawn(async move {
                                        let may_delete = || {
                                            let fence = fence.clone();
                                            async move { fence.fence().await.is_ok() }
                                        };
                                        if let Err(error) =
                                            images.collect_remote_blobs(BLOB_GRACE, may_delete).await
                                        {
                                            tracing::error!(%error, "cannot delete unreferenced blobs from the object store; retried at the next run");
                                        }
                                    });
                                }
                                Err(error) => {
                                    tracing::error!(%at, %error, "expiry failed; retried at the next run")
                                }
                            },
                            wait_for_stop(stopped.clone()),
                        )
                    })
                    .await;
            })
        };
        let intake = LogIntake::new(store.clone());
        let tracked = track_reconcile(
            watcher.subscribe(),
            reconciler.subscribe(),
            metrics.clone(),
            stopped.clone(),
        );
        let split = crate::roles::split_stored_when_in_force(
            store.clone(),
            watcher.subscribe(),
            intake.clone(),
            stopped.clone(),
        );
        // Replicas on MongoDB follow the holder's commit in force through the store.
        let relay = lease_keeper.is_some().then(|| {
            crate::relay::Relay {
                store: store.clone(),
                distribution: config.name.to_string(),
                branch: config.state_repo.branch.clone(),
                leadership: leadership.clone(),
                in_force: watcher.subscribe(),
                trigger: watcher.trigger_handle(),
            }
            .run(stopped.clone())
        });
        // Secrets set through another replica or the CLI.
        let following_secrets = secrets.clone().follow(stopped.clone());
        let watchers = tokio::spawn(async move {
            let relay = async {
                if let Some(relay) = relay {
                    relay.await;
                }
            };
            tokio::join!(tracked, split, relay, following_secrets);
        });

        let installer = crate::install::Installer::new(
            store.clone(),
            &config.data_directory,
            public_url(config, local_addr),
            config
                .tls
                .as_ref()
                .zip(pin)
                .map(|(tls, pin)| crate::install::ServedKey {
                    pin,
                    self_signed: tls.self_signed.is_some(),
                }),
            options
                .updater_binary
                .clone()
                .map(|path| crate::install::UpdaterBinary::new(path, std::env::consts::ARCH)),
        )
        .with_images(&config.data_directory, images.clone(), watcher.subscribe());
        installer
            .enrolments
            .import_file()
            .await
            .map_err(ServerError::Enrolments)?;
        let consumer_accounts = tokio::spawn(crate::consumers::follow_accounts(
            auth.clone(),
            watcher.subscribe(),
            config.token_files.clone(),
        ));
        let mesh = Mesh::start(MeshParts {
            distribution: config.name.to_string(),
            config: config.mesh,
            data_directory: data.clone(),
            secrets: secrets.clone(),
            repo: watcher.repo(),
            in_force: watcher.subscribe(),
            trigger: watcher.trigger_handle(),
            images: images.clone(),
            store: store.clone(),
            fault_files: fault_files.clone(),
            reconcile: reconciler.handle(),
            board: Board::default(),
        });
        // Replicas on one store swap their programs one at a time (`self_update::turn`).
        let turns = match &config.store {
            vupdate_store::StoreConfig::Sqlite { .. } => Turns::Alone,
            _ => Turns::Shared {
                store: store.clone(),
                holder,
            },
        };
        let self_updates =
            SelfUpdates::open(data.clone(), turns).map_err(ServerError::SelfUpdate)?;
        let (ready, self_update) = match options.self_update.clone() {
            Some(self_update_options) => {
                let (sender, receiver) = tokio::sync::mpsc::channel(1);
                let follower = Follower {
                    options: self_update_options,
                    updates: self_updates.clone(),
                    images: images.clone(),
                    in_force: watcher.subscribe(),
                    ready: sender,
                    stopped: stopped.clone(),
                };
                // Every replica replaces its own program, when it has the turn.
                (Some(receiver), Some(tokio::spawn(follower.run())))
            }
            None => (None, None),
        };
        let known_bad = crate::known_bad::KnownBad::start(
            config.name.to_string(),
            store.clone(),
            watcher.repo(),
            watcher.subscribe(),
            watcher.trigger_handle(),
        )
        .await
        .map_err(ServerError::Store)?;
        let rollouts = crate::rollouts::Rollouts::start(
            config.name.to_string(),
            store.clone(),
            watcher.subscribe(),
            known_bad.clone(),
            config.expiration.service_states,
        )
        .await
        .map_err(ServerError::Store)?;
        let context = ApiContext {
            known_bad,
            rollouts,
            desired_lists: Default::default(),
            info: DistributionInfo {
                name: config.name.to_string(),
                title: config.title.clone(),
                instance: config.instance.clone(),
            },
            auth: auth.clone(),
            images: images.clone(),
            tasks,
            repo: watcher.repo(),
            in_force: watcher.subscribe(),
            watch_status: watcher.subscribe_status(),
            watch_trigger: watcher.trigger_handle(),
            reconcile: reconciler.handle(),
            intake,
            state_reports: StateReports::start(store.clone()),
            store,
            fault_files: fault_files.clone(),
            secrets,
            consumers,
            mesh: mesh.handle(),
            builder,
            max_history: config.versions.max_history_size as usize,
            state_lifetime: config.expiration.service_states,
            install: installer.clone(),
            self_update: self_updates,
        };
        let log_uploads = crate::runtime::LogUploads::start().map_err(ServerError::LogUploads)?;
        let router = http::app(AppState {
            auth: auth.clone(),
            images,
            trigger: Some(watcher.trigger_handle()),
            webhook: Arc::new(webhook),
            faults: fault_files,
            private_files,
            distribution: config.name.to_string(),
            metrics: metrics.clone(),
            store: context.store.clone(),
            install: installer.clone(),
            intake: context.intake.clone(),
            in_force: context.in_force.clone(),
            log_uploads: log_uploads.handle().clone(),
        })
        .merge(graphql::routes(
            graphql::schema(context.clone(), limits.graphql),
            auth,
            limits.graphql,
        ))
        // The layers come last, so they cover every route above (requests refused by the
        // limits are counted too).
        .layer(axum::middleware::from_fn_with_state(
            http::RequestGate::new(limits.requests),
            http::enforce_limits,
        ))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            http::count_requests,
        ));

        let head_bytes = limits.requests.max_header_bytes + limits.requests.max_query_string_bytes;
        let server = listen::spawn(
            listener,
            tls.map(|served| served.acceptor),
            router,
            limits.connections,
            usize::try_from(head_bytes).unwrap_or(usize::MAX),
            stopped,
        );
        tracing::info!(%local_addr, distribution = %config.name, "distribution serving");
        Ok(Distribution {
            local_addr,
            bootstrap,
            context,
            stop,
            server,
            expiry,
            watchers,
            watcher,
            reconciler,
            _lock: lock,
            mesh,
            consumer_accounts,
            listener: listener_copy,
            ready,
            self_update,
            lease_keeper,
            release,
            take_over,
            _log_uploads: log_uploads,
        })
    }

    /// A second descriptor of the listening socket (close-on-exec), which outlives
    /// [`Distribution::shutdown`]: a self-update hands it to the new program.
    pub fn listener(&self) -> std::io::Result<std::os::fd::OwnedFd> {
        self.listener.try_clone()
    }

    /// Resolves when a new binary of this server passed its probe and waits to be swapped
    /// in (never, when self-update is off or has handed one over already).
    pub async fn self_update_ready(&mut self) -> Ready {
        match self.ready.as_mut() {
            Some(ready) => match ready.recv().await {
                Some(ready) => ready,
                None => {
                    self.ready = None;
                    std::future::pending().await
                }
            },
            None => std::future::pending().await,
        }
    }

    /// The address the server listens on (the real port when the config asked for 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// What the first start created: the `admin` password to print once.
    pub fn bootstrap(&self) -> &Bootstrap {
        &self.bootstrap
    }

    /// The parts the API works on.
    pub fn context(&self) -> &ApiContext {
        &self.context
    }

    /// Stops taking requests, lets those in flight finish, and stops the loops.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        let _ = self.stop.send(true);
        let served = self.server.await;
        let _ = self.expiry.await;
        let _ = self.watchers.await;
        self.consumer_accounts.abort();
        if let Some(self_update) = self.self_update {
            let _ = self_update.await;
        }
        self.mesh.shutdown().await;
        self.reconciler.shutdown().await;
        self.watcher.shutdown().await;
        if let Some(take_over) = self.take_over {
            let _ = take_over.await;
        }
        // Released last, when this replica's loops have stopped.
        let _ = self.release.send(true);
        if let Some(keeper) = self.lease_keeper {
            let _ = keeper.await;
        }
        match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(ServerError::Serve(source)),
            Err(join) => Err(ServerError::Join(join.to_string())),
        }
    }
}

/// Tells the metrics where the reconcile loop stands each time the state in force or the
/// loop's status changes, until `stopped`.
async fn track_reconcile(
    mut in_force: watch::Receiver<Option<InForce>>,
    mut reconcile: watch::Receiver<ReconcileStatus>,
    metrics: Metrics,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let commit = in_force
            .borrow_and_update()
            .as_ref()
            .map(|f| f.revision.id.clone());
        let status = reconcile.borrow_and_update().clone();
        let caught_up = status.is_synced() && status.commit == commit;
        metrics.reconcile(commit.as_deref(), caught_up);
        tokio::select! {
            changed = in_force.changed() => if changed.is_err() { return },
            changed = reconcile.changed() => if changed.is_err() { return },
            _ = stopped.wait_for(|stop| *stop) => return,
        }
    }
}

/// Resolves once `stopped` turns true (or its sender is gone).
async fn wait_for_stop(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Fails the tasks still active in the store (a previous run's, or the previous lease
/// holder's) and says how many.
async fn recover_tasks(tasks: &TaskManager) -> Result<(), crate::tasks::TaskError> {
    let interrupted = tasks.recover_interrupted().await?;
    if !interrupted.is_empty() {
        tracing::warn!(
            count = interrupted.len(),
            "failed the tasks a restart interrupted"
        );
    }
    Ok(())
}

/// The builders' access tokens and where they reach this server: issued at start on a
/// single server, at each take-over of the lease on a replica.
#[derive(Clone)]
struct Builders {
    auth: AuthService,
    runner: Arc<MeshRunner>,
    link: ServerLink,
}

impl Builders {
    /// Issues fresh tokens (revoking the older ones) and hands them to the runners. On a
    /// replica they carry the `lease` they are issued under: what the builders write counts
    /// only while it is in force (`leadership::fence_builder`).
    async fn issue(&self, lease: Option<&vupdate_store::Lease>) {
        let lease = lease.map(|lease| IssuedUnder {
            holder: lease.holder.clone(),
            token: lease.token,
        });
        match builder_token(
            &self.auth,
            REMOTE_BUILDER_ACCOUNT,
            "Builds run by providers",
            lease.clone(),
        )
        .await
        {
            Ok(token) => self.runner.set_token(token),
            Err(error) => tracing::error!(
                %error,
                account = REMOTE_BUILDER_ACCOUNT,
                "cannot issue the remote builders' access token; builds on providers will fail"
            ),
        }
        match builder_token(
            &self.auth,
            BUILDER_ACCOUNT,
            "Builder of this distribution",
            lease,
        )
        .await
        {
            Ok(token) => self.runner.attach(&ServerLink {
                token,
                ..self.link.clone()
            }),
            // The server is still useful without builds (uploads, updaters): say why they fail.
            Err(error) => tracing::error!(
                %error,
                account = BUILDER_ACCOUNT,
                "cannot issue the builder's access token; builds will fail"
            ),
        }
    }
}

/// A fresh access token of the Builder service account `account` (created on first use
/// with the display name `name`) issued under `lease`, its older tokens revoked.
async fn builder_token(
    auth: &AuthService,
    account: &str,
    name: &str,
    lease: Option<IssuedUnder>,
) -> Result<String, crate::auth::AuthError> {
    match auth.account(account).await {
        Ok(_) => auth.revoke_access_tokens(account).await?,
        Err(crate::auth::AuthError::NoSuchAccount { .. }) => {
            auth.add_service_account(account, name, Role::Builder)
                .await?;
        }
        Err(error) => return Err(error),
    }
    auth.issue_access_token_under(account, lease).await
}

/// The URL this server answers on from this machine: an unspecified listen address
/// (`0.0.0.0`, `[::]`) is reached on loopback.
/// The address VMs are told to install from: the one listened on, or, when that is every
/// address, the instance's name with the port.
fn public_url(config: &DistributionConfig, local: SocketAddr) -> String {
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    if local.ip().is_unspecified() {
        format!("{scheme}://{}:{}", config.instance, local.port())
    } else {
        format!("{scheme}://{local}")
    }
}

fn own_url(config: &DistributionConfig, local: SocketAddr) -> String {
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut address = local;
    if address.ip().is_unspecified() {
        address.set_ip(match address.ip() {
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("{scheme}://{address}")
}

/// The listening socket handed over by the previous program: served when it is bound
/// where the config says (any port when the config says 0), refused otherwise.
fn inherited_listener(
    inherited: &std::net::TcpListener,
    listen: SocketAddr,
) -> Result<TcpListener, ServerError> {
    let fail = |error: std::io::Error| ServerError::Bind {
        address: listen,
        error,
    };
    let bound = inherited.local_addr().map_err(fail)?;
    if bound.ip() != listen.ip() || (listen.port() != 0 && bound.port() != listen.port()) {
        return Err(fail(std::io::Error::other(format!(
            "the listening socket handed over is bound to {bound}, the config says {listen}"
        ))));
    }
    let listener = inherited.try_clone().map_err(fail)?;
    listener.set_nonblocking(true).map_err(fail)?;
    TcpListener::from_std(listener).map_err(fail)
}

/// Where this server's task log lines say they come from.
fn log_origin(config: &DistributionConfig) -> LogOrigin {
    LogOrigin {
        service: "distribution"
            .parse::<ServiceName>()
            .expect("`distribution` is a valid service name"),
        instance: config.instance.clone(),
        directory: config.data_directory.display().to_string(),
        process: std::process::id().to_string(),
    }
}

/// The watcher's settings from the config's `stateRepo`.
fn watch_config(config: &DistributionConfig) -> WatchConfig {
    let repo = &config.state_repo;
    WatchConfig {
        source: match &repo.source {
            StateRepoSource::Path(path) => RepoSource::Local(path.clone()),
            StateRepoSource::Url(url) => RepoSource::Remote {
                url: url.clone(),
                directory: repo.clone.clone(),
            },
        },
        branch: repo.branch.clone(),
        poll_interval: repo.poll_interval,
        max_backoff: MAX_FETCH_BACKOFF,
        watch_files: true,
    }
}

/// How long a start waits for the data directory's lock a moment busy.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// The data directory's lock, waited for up to [`LOCK_WAIT`]: a server restarted while the
/// previous one is still exiting (or a process forked by it, which shares the lock until
/// it execs) finds it busy for a moment; a server still running keeps it and is named.
async fn lock_when_free(data: &std::path::Path) -> std::io::Result<std::fs::File> {
    let deadline = tokio::time::Instant::now() + LOCK_WAIT;
    loop {
        match crate::backup::lock_data_directory(data) {
            Err(error)
                if error.kind() == std::io::ErrorKind::ResourceBusy
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            locked => return locked,
        }
    }
}
