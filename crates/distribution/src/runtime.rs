//! The server's async runtime: tokio's multi-threaded scheduler, told to look at sockets,
//! timers and tasks woken from other threads more often than by default.
//!
//! A worker runs the tasks in its own queue and by default looks at the sockets and timers
//! only every 61 task polls ([`EVENT_INTERVAL`]), and at tasks woken from other threads
//! (a store write done on a blocking thread) only now and then. The server's tasks are
//! not all short: parsing a 1,000-line `addLogs` batch takes about a millisecond. Under a
//! fleet's log flood a state report's bytes, or its committed answer, waited behind dozens
//! of such parses, and so did each step of the store's writer (its turns hand the write
//! lock on through such wake-ups), which sat idle between writes. The `fleet` bench at
//! 50,000 instances: report round trips p99 147 ms with the defaults, 61 ms looking every
//! 8 polls (the same at 4), and log lines taken 62k → 106k a second; at 10,000 p99
//! 57.9 → 25.6 ms.

use std::io;

use tokio::runtime::{Builder, Runtime};

/// Task polls between two looks at sockets and timers (tokio's default: 61).
pub const EVENT_INTERVAL: u32 = 8;
/// Task polls between two looks at tasks woken from other threads.
pub const GLOBAL_QUEUE_INTERVAL: u32 = 8;

/// The server's runtime, with `workers` threads (one per core when not given).
pub fn server(workers: Option<usize>) -> io::Result<Runtime> {
    let mut builder = Builder::new_multi_thread();
    if let Some(workers) = workers {
        builder.worker_threads(workers.max(1));
    }
    builder
        .event_interval(EVENT_INTERVAL)
        .global_queue_interval(GLOBAL_QUEUE_INTERVAL)
        .enable_all()
        .build()
}

/// The runtime log uploads are worked on (`POST /logs/batches`: reading a batch's lines,
/// making their records): one thread of its own, apart from the server's workers, so a
/// fleet's log flood takes at most that thread's share of the CPU and the state reports,
/// desired-version polls and the dashboard keep the workers. The store's writer is not
/// on it: the store runs its writer's turns on the runtime it was opened on. Dropping it
/// stops the thread (uploads still on it are answered as failed).
#[derive(Debug)]
pub struct LogUploads {
    handle: tokio::runtime::Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl LogUploads {
    /// Starts the thread.
    pub fn start() -> io::Result<LogUploads> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (started, handle) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("vupdate-logs".to_owned())
            .spawn(move || {
                let runtime = match Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = started.send(Err(error));
                        return;
                    }
                };
                let _ = started.send(Ok(runtime.handle().clone()));
                runtime.block_on(async move {
                    let _ = stopped.await;
                });
            })?;
        let handle = handle
            .recv()
            .map_err(|_| io::Error::other("the log upload thread ended before it started"))??;
        Ok(LogUploads {
            handle,
            _stop: stop,
        })
    }

    /// Where log uploads are spawned.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}
