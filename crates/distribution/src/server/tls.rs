//! HTTPS from the PEM files of `tls` in the config (rustls with the ring provider, the one
//! crypto stack of the whole program).

use std::time::Duration;

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::ServerError;
use crate::config::TlsConfig;

/// How long requests in flight get to finish once a stop is asked.
const GRACE: Duration = Duration::from_secs(10);

/// Serves `router` over TLS on `listener` until `stopped` turns true.
pub(super) async fn serve(
    listener: TcpListener,
    tls: &TlsConfig,
    router: Router,
    mut stopped: watch::Receiver<bool>,
) -> Result<JoinHandle<std::io::Result<()>>, ServerError> {
    // Installing fails only when a provider is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = RustlsConfig::from_pem_file(&tls.certificate, &tls.key)
        .await
        .map_err(|source| ServerError::Tls {
            certificate: tls.certificate.clone(),
            key: tls.key.clone(),
            reason: source.to_string(),
        })?;
    let listener = listener.into_std().map_err(ServerError::Serve)?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        let _ = stopped.wait_for(|stop| *stop).await;
        stopper.graceful_shutdown(Some(GRACE));
    });
    let server = axum_server::from_tcp_rustls(listener, config).map_err(ServerError::Serve)?;
    Ok(tokio::spawn(async move {
        server
            .handle(handle)
            .serve(router.into_make_service())
            .await
    }))
}
