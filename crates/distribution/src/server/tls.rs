//! HTTPS from the PEM files of `tls` in the config (rustls with the ring provider, the one
//! crypto stack of the whole program): the acceptor the connection loop hands each
//! connection to, and the pin of the key it serves.
//!
//! With `selfSigned`, the server makes what is missing at start: a key (ECDSA P-256,
//! written once with mode 0600, never replaced) and a certificate for the configured
//! names signed by it. Clients pin the key, not the certificate, so deleting the
//! certificate to get one with other names keeps every pin valid.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use vupdate_client::PublicKeyPin;

use super::ServerError;
use crate::config::{SelfSigned, TlsConfig};

/// What HTTPS serves: the acceptor and the pin of the certificate's key.
pub(crate) struct Served {
    /// Hands each connection its TLS session.
    pub acceptor: TlsAcceptor,
    /// `sha256//…` of the served certificate's public key.
    pub pin: PublicKeyPin,
}

/// Makes the key and certificate of a self-signed `tls` that are missing (what the
/// server does at start, and `vupdate distribution install` before it), and says the pin
/// of the certificate's key.
pub fn prepare(tls: &TlsConfig) -> Result<PublicKeyPin, ServerError> {
    prepare_chain(tls).map(|(_, pin)| pin)
}

fn refused(tls: &TlsConfig) -> impl Fn(String) -> ServerError + '_ {
    |reason| ServerError::Tls {
        certificate: tls.certificate.clone(),
        key: tls.key.clone(),
        reason,
    }
}

/// The certificate chain of `tls` (made first when self-signed and missing) and its pin.
fn prepare_chain(
    tls: &TlsConfig,
) -> Result<(Vec<CertificateDer<'static>>, PublicKeyPin), ServerError> {
    let refused = refused(tls);
    if let Some(self_signed) = &tls.self_signed {
        make_self_signed(tls, self_signed).map_err(&refused)?;
    }
    let chain = CertificateDer::pem_file_iter(&tls.certificate)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .map_err(|e| refused(format!("cannot read the certificate chain: {e}")))?;
    let Some(first) = chain.first() else {
        return Err(refused(
            "the certificate file holds no certificate".to_owned(),
        ));
    };
    let pin = vupdate_client::pin::pin_of_certificate(first).map_err(&refused)?;
    Ok((chain, pin))
}

/// The TLS acceptor for the certificate chain and key of `tls`, made first when it is
/// self-signed and missing.
pub(crate) fn serve(tls: &TlsConfig) -> Result<Served, ServerError> {
    let (chain, pin) = prepare_chain(tls)?;
    let refused = refused(tls);
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
    Ok(Served {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        pin,
    })
}

/// Makes the key when it is missing, then the certificate when it is missing (or was of
/// a key that is gone); an existing key is kept as it is.
fn make_self_signed(tls: &TlsConfig, self_signed: &SelfSigned) -> Result<(), String> {
    for path in [&tls.key, &tls.certificate] {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
    }
    let new_key = !tls.key.exists();
    let key = if !new_key {
        let pem = std::fs::read_to_string(&tls.key)
            .map_err(|e| format!("cannot read the private key: {e}"))?;
        rcgen::KeyPair::from_pem(&pem)
            .map_err(|e| format!("cannot read the private key to sign a certificate: {e}"))?
    } else {
        let key = rcgen::KeyPair::generate().map_err(|e| format!("cannot make a key: {e}"))?;
        write_new(&tls.key, key.serialize_pem().as_bytes(), true)?;
        tracing::info!(key = %tls.key.display(), "made the TLS key (0600)");
        key
    };
    if new_key && tls.certificate.exists() {
        // A certificate of a key that is gone can serve no more.
        std::fs::remove_file(&tls.certificate).map_err(|e| {
            format!(
                "cannot replace {}, whose key is gone: {e}",
                tls.certificate.display()
            )
        })?;
    }
    if !tls.certificate.exists() {
        let mut params = rcgen::CertificateParams::new(self_signed.names.clone())
            .map_err(|e| format!("tls.selfSigned.names: {e}"))?;
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            self_signed.names.first().cloned().unwrap_or_default(),
        );
        let certificate = params
            .self_signed(&key)
            .map_err(|e| format!("cannot sign the certificate: {e}"))?;
        write_new(&tls.certificate, certificate.pem().as_bytes(), false)?;
        tracing::info!(
            certificate = %tls.certificate.display(),
            names = ?self_signed.names,
            "made a self-signed TLS certificate"
        );
    }
    Ok(())
}

/// Writes `bytes` to the new file `path` (0600 when `private`, else 0644) through a
/// temporary name, so a crash leaves no half file; an existing file is never replaced.
fn write_new(path: &Path, bytes: &[u8], private: bool) -> Result<(), String> {
    let temp = path.with_extension(format!("{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    let written = if private {
        crate::auth::write_private(&temp, bytes)
    } else {
        std::fs::write(&temp, bytes)
    };
    written
        .and_then(|()| std::fs::hard_link(&temp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let _ = std::fs::remove_file(&temp);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn a_self_signed_key_is_made_once_and_its_certificate_follows_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = TlsConfig {
            certificate: dir.path().join("tls/certificate.pem"),
            key: dir.path().join("tls/key.pem"),
            self_signed: Some(SelfSigned {
                names: vec!["dist.example".to_owned(), "10.0.0.5".to_owned()],
            }),
        };
        let pin = prepare(&tls).expect("made");
        let mode = std::fs::metadata(&tls.key)
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let key = std::fs::read(&tls.key).expect("key");
        let certificate = std::fs::read(&tls.certificate).expect("certificate");
        assert_eq!(prepare(&tls).expect("kept"), pin);
        assert_eq!(std::fs::read(&tls.key).expect("key"), key, "kept as it is");
        assert_eq!(
            std::fs::read(&tls.certificate).expect("certificate"),
            certificate
        );

        std::fs::remove_file(&tls.certificate).expect("remove");
        assert_eq!(
            prepare(&tls).expect("a new certificate"),
            pin,
            "the same key"
        );
        assert_ne!(
            std::fs::read(&tls.certificate).expect("certificate"),
            certificate
        );

        std::fs::remove_file(&tls.key).expect("remove");
        let other = prepare(&tls).expect("a new key and certificate");
        assert_ne!(other, pin);
        serve(&tls).expect("the certificate fits the new key");
    }
}
