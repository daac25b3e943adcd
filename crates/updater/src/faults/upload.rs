//! Emptying a faults folder into the distribution: oldest report first, retried with
//! backoff while the uploader fails, deleted only once it is taken.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use vupdate_backoff::Backoff;

use super::{FaultReports, PendingFault};
use crate::Error;

/// Where reports go: in the agent, `PUT /faults/{id}` with the zip then the
/// `addFaultReport` mutation (a 409 `ALREADY_EXISTS` counts as taken, so a resend after
/// a crash is safe).
pub trait FaultUploader: Send + Sync {
    /// Why a report was not taken.
    type Error: Display + Send;

    /// Sends one report (read it with [`PendingFault::read`]); `Ok` means it is stored
    /// and may be deleted here.
    fn upload(&self, fault: &PendingFault) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// How the fault upload task retries. It looks at the folder when it starts, after each
/// report written through the same [`FaultReports`] (a write while it is busy is kept for
/// its next wait), and after a failed upload's delay; never on a timer of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadOptions {
    /// About the delay after the first failed upload (with jitter); it doubles after each
    /// failure in a row.
    pub retry_initial: Duration,
    /// The longest delay between retries.
    pub retry_max: Duration,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
        }
    }
}

/// Uploads the reports of `reports` through `uploader` until `shutdown` completes;
/// returns how many were uploaded. Listing or deleting failures end the task with the
/// error; upload failures are retried.
pub async fn upload_faults<U: FaultUploader>(
    reports: &FaultReports,
    uploader: &U,
    options: UploadOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<u64, Error> {
    tokio::pin!(shutdown);
    let written = reports.written();
    let mut uploaded = 0;
    let mut backoff = Backoff::new(options.retry_initial, options.retry_max);
    loop {
        let mut retry_in = None;
        for fault in reports.pending()? {
            let sent = tokio::select! {
                () = &mut shutdown => return Ok(uploaded),
                sent = uploader.upload(&fault) => sent,
            };
            match sent {
                Ok(()) => {
                    reports.remove(&fault)?;
                    uploaded += 1;
                    backoff.reset();
                    tracing::info!(fault = %fault.id, "fault report uploaded");
                }
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(fault = %fault.id, %error, retry_in = ?delay, "fault report upload failed");
                    retry_in = Some(delay);
                    break;
                }
            }
        }
        let failed = retry_in.is_some();
        tokio::select! {
            () = &mut shutdown => return Ok(uploaded),
            () = written.notified(), if !failed => {}
            () = sleep_some(retry_in) => {}
        }
    }
}

/// Sleeps for `delay`, or for ever without one.
async fn sleep_some(delay: Option<Duration>) {
    match delay {
        Some(delay) => tokio::time::sleep(delay).await,
        None => std::future::pending().await,
    }
}
