//! Public-key pinning: a [`PublicKeyPin`] is the SHA-256 of a server's public key (its
//! certificate's SubjectPublicKeyInfo), written as curl's `--pinnedpubkey` takes it,
//! `sha256//BASE64`. A client given a pin trusts exactly a server that presents that
//! key, with no certificate authority: the way to reach a distribution whose certificate
//! is self-signed. The pin names the key, not the certificate, so a certificate renewed
//! with the same key keeps working.
//!
//! `PinnedVerifier` still checks the handshake's signatures with the presented key (a
//! server that only copied the certificate cannot answer), and ignores what a pin makes
//! moot: the issuer, the names and the validity dates.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
pub use vupdate_core::pin::PublicKeyPin;

use crate::ClientError;

/// The pin of the public key a DER certificate holds.
pub fn pin_of_certificate(certificate: &CertificateDer<'_>) -> Result<PublicKeyPin, String> {
    let parsed = webpki::EndEntityCert::try_from(certificate)
        .map_err(|e| format!("unreadable certificate: {e}"))?;
    Ok(PublicKeyPin::of_public_key(
        parsed.subject_public_key_info().as_ref(),
    ))
}

/// The key a server presented was not the pinned one.
#[derive(Debug)]
struct PinMismatch {
    expected: PublicKeyPin,
    presented: PublicKeyPin,
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server's public key is not the pinned one (`pinnedPublicKey`): expected {}, the server presents {}",
            self.expected, self.presented
        )
    }
}

impl std::error::Error for PinMismatch {}

/// The [`ClientError::UnpinnedKey`] of a request to `url` when `error` (or an error it
/// wraps) is a handshake refused for another key than the pinned one.
pub(crate) fn unpinned(
    url: &str,
    error: &(dyn std::error::Error + 'static),
) -> Option<ClientError> {
    let mut at = Some(error);
    while let Some(error) = at {
        if let Some(rustls::Error::InvalidCertificate(CertificateError::Other(other))) =
            error.downcast_ref::<rustls::Error>()
            && let Some(mismatch) = other.0.downcast_ref::<PinMismatch>()
        {
            return Some(ClientError::UnpinnedKey {
                url: url.to_owned(),
                expected: mismatch.expected,
                presented: mismatch.presented,
            });
        }
        // An I/O error's `source` is its inner error's source: step into the inner one.
        at = match error.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    None
}

/// Accepts exactly a server whose certificate holds the pinned key.
#[derive(Debug)]
pub(crate) struct PinnedVerifier {
    pin: PublicKeyPin,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedVerifier {
    /// A verifier for `pin`, checking signatures with `provider`'s algorithms.
    pub(crate) fn new(pin: PublicKeyPin, provider: &CryptoProvider) -> PinnedVerifier {
        PinnedVerifier {
            pin,
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = pin_of_certificate(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if presented == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(PinMismatch {
                    expected: self.pin,
                    presented,
                })),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TLS client setup (ring) that trusts exactly the key of `pin`.
pub(crate) fn pinned_config(pin: PublicKeyPin) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(PinnedVerifier::new(pin, &provider));
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pin_of_a_certificate_is_the_pin_of_its_key() {
        let key = rcgen::KeyPair::generate().expect("key");
        let certificate = rcgen::CertificateParams::new(vec!["dist.example".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("certificate");
        let from_certificate = pin_of_certificate(certificate.der()).expect("a certificate");
        assert_eq!(
            from_certificate,
            PublicKeyPin::of_public_key(&rcgen::PublicKeyData::subject_public_key_info(&key))
        );
        assert!(pin_of_certificate(&CertificateDer::from(vec![1, 2, 3])).is_err());
    }
}
