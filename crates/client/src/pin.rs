//! Public-key pinning: a [`PublicKeyPin`] is the SHA-256 of a server's public key (its
//! certificate's SubjectPublicKeyInfo), written as curl's `--pinnedpubkey` takes it,
//! `sha256//BASE64`. A client given a pin trusts exactly a server that presents that
//! key, with no certificate authority: the way to reach a distribution whose certificate
//! is self-signed. The pin names the key, not the certificate, so a certificate renewed
//! with the same key keeps working.
//!
//! [`PinnedVerifier`] still checks the handshake's signatures with the presented key (a
//! server that only copied the certificate cannot answer), and ignores what a pin makes
//! moot: the issuer, the names and the validity dates.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use sha2::{Digest as _, Sha256};

use crate::ClientError;

/// The prefix of a pin's text: the hash it is made with.
const PREFIX: &str = "sha256//";

/// The SHA-256 of a public key (DER SubjectPublicKeyInfo), `sha256//BASE64` as text.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKeyPin([u8; 32]);

impl PublicKeyPin {
    /// The pin of a DER-encoded SubjectPublicKeyInfo.
    pub fn of_public_key(spki_der: &[u8]) -> PublicKeyPin {
        PublicKeyPin(Sha256::digest(spki_der).into())
    }

    /// The pin of the public key a DER certificate holds.
    pub fn of_certificate(certificate: &CertificateDer<'_>) -> Result<PublicKeyPin, String> {
        let parsed = webpki::EndEntityCert::try_from(certificate)
            .map_err(|e| format!("unreadable certificate: {e}"))?;
        Ok(PublicKeyPin::of_public_key(
            parsed.subject_public_key_info().as_ref(),
        ))
    }
}

impl fmt::Display for PublicKeyPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", STANDARD.encode(self.0))
    }
}

impl fmt::Debug for PublicKeyPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for PublicKeyPin {
    type Err = String;

    fn from_str(text: &str) -> Result<PublicKeyPin, String> {
        let encoded = text.trim().strip_prefix(PREFIX).ok_or_else(|| {
            format!("`{text}` is not a public-key pin: write `{PREFIX}` and the base64 SHA-256 of the key, as `vupdate distribution run` prints it")
        })?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|e| format!("`{text}`: the text after `{PREFIX}` is not base64: {e}"))?;
        let hash: [u8; 32] = bytes.try_into().map_err(|bytes: Vec<u8>| {
            format!(
                "`{text}`: a SHA-256 has 32 bytes, this one {} (44 base64 characters ending in `=`)",
                bytes.len()
            )
        })?;
        Ok(PublicKeyPin(hash))
    }
}

impl serde::Serialize for PublicKeyPin {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PublicKeyPin {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
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
        let presented = PublicKeyPin::of_certificate(end_entity)
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
    fn pins_read_back_as_written_and_bad_ones_say_why() {
        let pin = PublicKeyPin::of_public_key(b"a key");
        let text = pin.to_string();
        assert!(
            text.starts_with("sha256//") && text.len() == 8 + 44,
            "{text}"
        );
        assert_eq!(text.parse::<PublicKeyPin>(), Ok(pin));
        assert_eq!(format!(" {text}\n").parse::<PublicKeyPin>(), Ok(pin));
        for (bad, says) in [
            ("abc", "is not a public-key pin"),
            ("sha1//abc", "is not a public-key pin"),
            ("sha256//!!", "is not base64"),
            ("sha256//YWJj", "a SHA-256 has 32 bytes, this one 3"),
        ] {
            let error = bad.parse::<PublicKeyPin>().expect_err(bad);
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn the_pin_of_a_certificate_is_the_pin_of_its_key() {
        let key = rcgen::KeyPair::generate().expect("key");
        let certificate = rcgen::CertificateParams::new(vec!["dist.example".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("certificate");
        let from_certificate =
            PublicKeyPin::of_certificate(certificate.der()).expect("a certificate");
        assert_eq!(
            from_certificate,
            PublicKeyPin::of_public_key(&rcgen::PublicKeyData::subject_public_key_info(&key))
        );
        assert!(PublicKeyPin::of_certificate(&CertificateDer::from(vec![1, 2, 3])).is_err());
    }
}
