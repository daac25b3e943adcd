//! Putting vupdate on machines: systemd units (`units`), writing an installation under a
//! root all or nothing (`files`), the running system's users and systemd (`system`), the
//! updater's install and uninstall (`updater`, what the distribution's one-line install
//! script runs), its cloud-init user-data (`cloud_init`), and the distribution's install
//! (`distribution`).

#[cfg(feature = "updater")]
pub mod cloud_init;
#[cfg(feature = "distribution")]
pub mod distribution;
#[cfg(any(feature = "updater", feature = "distribution"))]
pub mod files;
#[cfg(any(feature = "updater", feature = "distribution"))]
pub mod system;
pub mod units;
#[cfg(feature = "updater")]
pub mod updater;
