//! Putting vupdate on machines: systemd units (`units`), writing an installation under a
//! root all or nothing (`files`), the running system's users and systemd (`system`), the
//! updater's install and uninstall (`updater`, what the distribution's one-line install
//! script runs) and its cloud-init user-data (`cloud_init`).

#[cfg(feature = "updater")]
pub mod cloud_init;
#[cfg(feature = "updater")]
pub mod files;
#[cfg(feature = "updater")]
pub mod system;
pub mod units;
#[cfg(feature = "updater")]
pub mod updater;
