//! The text index's connection on a thread of its own, at a lower scheduling priority.
//!
//! The index is derived from the lines, which are acknowledged without it, and searches
//! read the lines past it: when the machine's cores are all busy (a fleet's uploads), the
//! store's writer and the requests should get them first, and the index catch up when
//! they are idle. Linux keeps a nice value per thread, so a thread of the index's own
//! ([`NICE`]) yields to the others without slowing them; tokio's blocking threads are
//! shared and a thread's nice value, once raised, cannot be lowered again without
//! privileges.

use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;

use rusqlite::Connection;

/// How much nicer than the process the index's thread is: a CPU-bound thread of nice 10
/// gets about a tenth of a core that a thread of nice 0 wants too, and all of an idle one.
const NICE: i32 = 10;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// The thread that owns the text index's connection and runs what is asked of it in
/// order; stopped when dropped, once what was asked is done.
pub(crate) struct Indexer {
    jobs: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

/// The index's thread did not answer: the job panicked, or the thread is gone.
#[derive(Debug)]
pub(crate) struct Gone;

impl Indexer {
    /// Starts the thread with `conn`; the error says what failed.
    pub(crate) fn start(mut conn: Connection) -> Result<Indexer, String> {
        let (jobs, asked) = channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("vupdate-text-index".to_owned())
            .spawn(move || {
                // On Linux a nice value is the calling thread's own.
                if let Err(error) = rustix::process::nice(NICE) {
                    tracing::debug!(%error, "the text index's thread keeps the process's priority");
                }
                for job in asked {
                    // A job that panics loses its answer (its caller gets `Gone`) and rolls
                    // its transaction back as it unwinds; the next job runs as usual.
                    let _ =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut conn)));
                }
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        Ok(Indexer {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `work` on the index's connection, on its thread, after what was asked before.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, Gone>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> T + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = answer.send(work(conn));
        });
        self.jobs
            .as_ref()
            .ok_or(Gone)?
            .send(job)
            .map_err(|_| Gone)?;
        answered.await.map_err(|_| Gone)
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_in_order_on_a_thread_of_lower_priority() {
        let conn = Connection::open_in_memory().expect("a connection");
        let indexer = Indexer::start(conn).expect("started");
        indexer
            .run(|conn| conn.execute_batch("CREATE TABLE t (x INTEGER)"))
            .await
            .expect("ran")
            .expect("created");
        let (name, nice, count) = indexer
            .run(|conn| {
                conn.execute("INSERT INTO t VALUES (1)", [])
                    .expect("insert");
                let nice = rustix::process::getpriority_process(None).expect("a priority");
                let count: i64 = conn
                    .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
                    .expect("count");
                (
                    std::thread::current().name().map(str::to_owned),
                    nice,
                    count,
                )
            })
            .await
            .expect("ran");
        assert_eq!(name.as_deref(), Some("vupdate-text-index"));
        assert_eq!(count, 1);
        let ours = rustix::process::getpriority_process(None).expect("a priority");
        assert_eq!(nice, (ours + NICE).min(19), "the index's thread yields");
    }

    #[tokio::test]
    async fn a_job_that_panics_loses_its_answer_and_the_next_runs() {
        let indexer =
            Indexer::start(Connection::open_in_memory().expect("a connection")).expect("started");
        let lost = indexer.run(|_| -> i64 { panic!("a job's bug") }).await;
        assert!(lost.is_err());
        let next = indexer
            .run(|conn| conn.query_row("SELECT 7", [], |row| row.get::<_, i64>(0)))
            .await;
        assert_eq!(next.expect("ran").expect("read"), 7);
    }
}
