//! [`ApiLog`]: the build's log lines, to the task log on the distribution (batched by the
//! client's `LogSender`) and to stdout for a person watching.

use std::io::Write as _;

use vupdate_client::{Client, LogSender, LogSenderOptions, LogSource};
use vupdate_core::log::Level;

use crate::BuildLog;

/// A build log that streams to the distribution (`POST /logs/batches`) and prints each line.
pub(super) struct ApiLog {
    sender: LogSender,
}

impl ApiLog {
    /// A log of `source`'s lines sent through `client`, in batches every 200 ms or 100 lines.
    pub fn start(client: Client, source: LogSource) -> ApiLog {
        ApiLog {
            sender: LogSender::start(client, source, LogSenderOptions::default()),
        }
    }

    /// Sends what is left (waiting up to 30 s for the distribution); says on stderr when
    /// lines could not be delivered, so the task log shows that too.
    pub async fn close(self) {
        let report = self.sender.close(std::time::Duration::from_secs(30)).await;
        if report.dropped > 0 {
            let why = report
                .last_error
                .map(|error| format!(": {error}"))
                .unwrap_or_default();
            eprintln!(
                "warning: {} build log lines could not be sent to the distribution{why}",
                report.dropped
            );
        }
    }
}

impl BuildLog for ApiLog {
    fn line(&self, level: Level, unit: &str, message: &str) {
        // stdout, not stderr: a distribution running the builder logs the builder's
        // stderr itself, and these lines reach its task log through the API already.
        // A closed stdout must not stop the build.
        let _ = writeln!(std::io::stdout().lock(), "{level} {unit} {message}");
        self.sender.line(level, unit, message);
    }
}
