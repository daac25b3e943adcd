//! HTTPS from the PEM files of `tls` in the config (rustls with the ring provider, the one
//! crypto stack of the whole program): the acceptor the connection loop hands each
//! connection to.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::ServerError;
use crate::config::TlsConfig;

/// The TLS acceptor for the certificate chain and key of `tls`.
pub(super) fn acceptor(tls: &TlsConfig) -> Result<TlsAcceptor, ServerError> {
    let refused = |reason: String| ServerError::Tls {
        certificate: tls.certificate.clone(),
        key: tls.key.clone(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(&tls.certificate)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .map_err(|e| refused(format!("cannot read the certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(refused(
            "the certificate file holds no certificate".to_owned(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| refused(format!("cannot read the private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| refused(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| refused(format!("the certificate and key do not fit together: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
