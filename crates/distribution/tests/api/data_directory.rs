//! One server per data directory: a second start on a running server's data directory is
//! refused naming the lock (after waiting a moment for it, as for a server still
//! exiting), and a start right after a stop takes it.

use vupdate_distribution::server::{Distribution, StartOptions};

use super::support::{Harness, Options};

#[tokio::test]
async fn a_second_server_on_a_running_servers_data_directory_is_refused() {
    let mut harness = Harness::start().await;
    let Err(error) = Distribution::start(&harness.config, StartOptions::default()).await else {
        panic!("a second server started on the same data directory");
    };
    let message = error.to_string();
    assert!(
        message.contains("another server runs on the data directory")
            && message.contains("server.lock"),
        "{message}"
    );
    harness.stop().await;

    // Free after the stop, but the lock's descriptor is also in any child another test of
    // this process forks until that child executes its program: taken when free.
    let data = harness.config.data_directory.clone();
    let held = harness
        .eventually("the lock to be free after the stop", || async {
            vupdate_distribution::backup::lock_data_directory(&data).ok()
        })
        .await;
    // Held a moment longer (a server still exiting, a child it forked): waited for.
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(held);
    });
    // `boot` fails the test when the lock is not taken.
    harness.boot(Options::default()).await;
    release.join().expect("released");
}
