//! [`HashPool`]: argon2 work (logins, password changes, new accounts) on a few dedicated
//! threads with a bounded queue.
//!
//! Each argon2id hash holds its memory cost (19 MiB by default) for tens of milliseconds.
//! Run on tokio's blocking pool (up to 512 threads), a flood of wrong passwords hashed
//! hundreds at once and took gigabytes; freed by many threads, that memory stayed with
//! the process. Here at most `workers` hashes run at once, always on the same threads, and
//! at most `queue` wait: past that a request is refused at once with
//! [`AuthError::TooManyRequests`], so the memory of hashing is bounded by `workers` × cost
//! whatever the load, and a queued request waits at most `queue / workers` hash times.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::AuthError;

/// How long a refused caller is told to wait when every worker is busy and the queue full.
const BUSY_RETRY: Duration = Duration::from_secs(1);

/// How many hashes run at once and how many may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashPoolSize {
    /// Threads that hash (at least 1); default the number of cores.
    pub workers: usize,
    /// Requests that may wait for a thread; default 4 per worker.
    pub queue: usize,
}

impl Default for HashPoolSize {
    fn default() -> Self {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        HashPoolSize {
            workers,
            queue: 4 * workers,
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The password hashing threads; cheap to clone. They end when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct HashPool {
    jobs: SyncSender<Job>,
    size: HashPoolSize,
    /// Requests admitted (from [`HashPool::admit`] until their work is done), at most
    /// `workers + queue`: a login is admitted before it reads its account, so a flood is
    /// refused before it costs the store anything either.
    admitted: Arc<AtomicUsize>,
}

/// A place among the requests the pool takes; given back on drop.
#[derive(Debug)]
pub struct Ticket {
    pool: HashPool,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.pool.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashPool {
    /// Starts `size.workers` threads named `vupdate-hash-N`.
    pub fn new(size: HashPoolSize) -> HashPool {
        let size = HashPoolSize {
            workers: size.workers.max(1),
            ..size
        };
        // Room for every admitted job: admission is the bound.
        let (jobs, receiver) = sync_channel::<Job>(size.workers + size.queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..size.workers {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("vupdate-hash-{index}"))
                .spawn(move || work(&receiver))
                .expect("the system can start a password hashing thread");
        }
        HashPool {
            jobs,
            size,
            admitted: Arc::default(),
        }
    }

    /// A place for one piece of work, or [`AuthError::TooManyRequests`] at once when
    /// every thread is busy and the queue is full.
    pub fn admit(&self) -> Result<Ticket, AuthError> {
        let limit = self.size.workers + self.size.queue;
        self.admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .map_err(|_| AuthError::TooManyRequests {
                reason: format!(
                    "the server is checking {} passwords with {} more waiting",
                    self.size.workers, self.size.queue
                ),
                retry_after: BUSY_RETRY,
            })?;
        Ok(Ticket { pool: self.clone() })
    }

    /// The pool's size.
    pub fn size(&self) -> HashPoolSize {
        self.size
    }

    /// Runs `work` on a hashing thread and returns its result; refused at once with
    /// [`AuthError::TooManyRequests`] when every thread is busy and the queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
    ) -> Result<T, AuthError> {
        self.admit()?.run(work).await
    }
}

impl Ticket {
    /// Runs `work` on a hashing thread in this ticket's place and returns its result.
    pub async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
    ) -> Result<T, AuthError> {
        self.submit(work)?.await
    }

    /// Queues `work` now; the future is its result (the place is held until it is done).
    /// Work whose future is dropped before a thread takes it is skipped.
    pub fn submit<T: Send + 'static>(
        self,
        work: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
    ) -> Result<impl Future<Output = Result<T, AuthError>>, AuthError> {
        let (answer, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            if !answer.is_closed() {
                let _ = answer.send(work());
            }
        });
        match self.pool.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                return Err(AuthError::Internal(
                    "the password hashing threads have stopped taking work".to_owned(),
                ));
            }
        }
        Ok(async move {
            let _place = self;
            result.await.map_err(|_| {
                AuthError::Internal("a password hashing thread failed during the work".to_owned())
            })?
        })
    }
}

/// A worker: takes jobs until every sender is gone. A job that panics takes its answer
/// with it (the caller gets an internal error); the thread goes on.
fn work(receiver: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while waiting for the next job, never while working.
        let job = receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv();
        let Ok(job) = job else { return };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::{HashPool, HashPoolSize};
    use crate::auth::AuthError;

    #[tokio::test]
    async fn past_the_workers_and_the_queue_the_pool_refuses_at_once() {
        let pool = HashPool::new(HashPoolSize {
            workers: 1,
            queue: 1,
        });
        let (release, wait) = mpsc::channel::<()>();
        let (started, running) = mpsc::channel::<()>();
        let first = pool
            .admit()
            .expect("a free worker")
            .submit(move || {
                let _ = started.send(());
                let _ = wait.recv();
                Ok(1)
            })
            .expect("a free worker takes the first job");
        tokio::task::spawn_blocking(move || running.recv())
            .await
            .expect("join")
            .expect("the first job runs");
        // The worker is busy: one job waits in the queue, the next is refused at once.
        let queued = pool
            .admit()
            .expect("the queue has room for one")
            .submit(|| Ok(2))
            .expect("queued");
        let refused = match pool.admit() {
            Err(error) => error,
            Ok(_) => panic!("a third job was taken with one worker and a queue of one"),
        };
        let AuthError::TooManyRequests { retry_after, .. } = &refused else {
            panic!("expected TOO_MANY_REQUESTS, got {refused:?}");
        };
        assert_eq!(refused.code(), "TOO_MANY_REQUESTS");
        assert!(!retry_after.is_zero());
        release.send(()).expect("release");
        assert_eq!(first.await.expect("first job"), 1);
        assert_eq!(queued.await.expect("queued job ran"), 2);
        // With the worker free again, work runs.
        assert_eq!(pool.run(|| Ok(4)).await.expect("runs"), 4);
    }

    #[tokio::test]
    async fn a_panicking_job_fails_its_caller_and_the_thread_goes_on() {
        let pool = HashPool::new(HashPoolSize {
            workers: 1,
            queue: 1,
        });
        let error = pool
            .run::<()>(|| panic!("argon2 exploded"))
            .await
            .expect_err("a panic is an error");
        assert_eq!(error.code(), "INTERNAL");
        assert_eq!(
            pool.run(|| Ok("still here")).await.expect("runs"),
            "still here"
        );
    }
}
