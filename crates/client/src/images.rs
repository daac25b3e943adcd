//! Version images: `PUT /images/{kind}/{service}/{version}` streamed from a file, and
//! `GET` streamed to a file, resumed and verified.
//!
//! A download goes to `<destination>.partial`, with the digest the server announced
//! (`X-Content-Sha256`) kept beside it in `<destination>.partial.sha256`. After a cut
//! connection (or a killed process) the next download of the same destination sends
//! `Range: bytes=<len>-` for the rest, provided the server still announces the same digest;
//! the whole file is hashed at the end and renamed into place only when it matches, so a
//! destination file is always a complete, verified image.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt as _;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, RANGE};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::error::ClientError;
use crate::transport;
use crate::{Client, encode_segment};

/// The header that carries an image's SHA-256 (hex), both ways.
pub const CONTENT_SHA256: &str = "x-content-sha256";

/// How many times a cut download is resumed before giving up.
const DOWNLOAD_ATTEMPTS: u32 = 4;

/// Which kind of image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageKind {
    /// Built from sources.
    Developer,
    /// A developer image with a distribution's settings.
    Client,
}

impl ImageKind {
    /// `developer` or `client`, as in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageKind::Developer => "developer",
            ImageKind::Client => "client",
        }
    }
}

impl fmt::Display for ImageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One image: kind, service and version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// Developer or client.
    pub kind: ImageKind,
    /// The service.
    pub service: String,
    /// The version (`acme-1.2.3` or `acme-1.2.3_1`).
    pub version: String,
}

impl ImageRef {
    /// A developer image.
    pub fn developer(service: impl fmt::Display, version: impl fmt::Display) -> ImageRef {
        ImageRef {
            kind: ImageKind::Developer,
            service: service.to_string(),
            version: version.to_string(),
        }
    }

    /// A client image.
    pub fn client(service: impl fmt::Display, version: impl fmt::Display) -> ImageRef {
        ImageRef {
            kind: ImageKind::Client,
            service: service.to_string(),
            version: version.to_string(),
        }
    }

    fn path(&self) -> String {
        format!(
            "/images/{}/{}/{}",
            self.kind,
            encode_segment(&self.service),
            encode_segment(&self.version)
        )
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} image {} of {}",
            self.kind, self.version, self.service
        )
    }
}

/// What the server stored for an upload.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UploadedImage {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Bytes.
    pub size: u64,
}

/// A finished download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadedImage {
    /// Where it is.
    pub path: PathBuf,
    /// Its SHA-256, hex, as verified.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
    /// How many bytes an earlier, cut download had already fetched.
    pub resumed_from: u64,
}

impl Client {
    /// The digest and size of `image` on the server (`HEAD`), or `None` when it has none.
    pub async fn image_info(&self, image: &ImageRef) -> Result<Option<UploadedImage>, ClientError> {
        let url = self.url(&image.path());
        let response = self
            .request(reqwest::Method::HEAD, &url)
            .send()
            .await
            .map_err(|source| transport::transport("HEAD", &url, source))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(transport::refused("HEAD", &url, response).await);
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let decode = |reason: String| ClientError::Decode {
            what: format!("HEAD {url}"),
            reason,
        };
        let sha256 = header(CONTENT_SHA256)
            .ok_or_else(|| decode(format!("no `{CONTENT_SHA256}` header")))?;
        let size = header(CONTENT_LENGTH.as_str())
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| decode("no `Content-Length` header".to_owned()))?;
        Ok(Some(UploadedImage {
            digest: format!("sha256:{}", sha256.trim_start_matches("sha256:")),
            size,
        }))
    }

    /// Streams the file at `path` to the server as `image`. With `sha256` (hex), the server
    /// refuses content with another digest; without it, the file is hashed first.
    ///
    /// Versions are immutable: when `image` exists already with the same content, that
    /// counts as uploaded (so a retry after a crash is safe); with other content it is
    /// refused with code `CONFLICT`, before the file is sent.
    pub async fn upload_image(
        &self,
        image: &ImageRef,
        path: &Path,
        sha256: Option<&str>,
    ) -> Result<UploadedImage, ClientError> {
        let sha256 = match sha256 {
            Some(sha256) => sha256.trim_start_matches("sha256:").to_ascii_lowercase(),
            None => hash_file(path).await?.0,
        };
        if let Some(existing) = self.image_info(image).await? {
            return self.same_or_conflict(image, existing, &sha256);
        }
        let file = tokio::fs::File::open(path)
            .await
            .map_err(ClientError::io("opening", path))?;
        let size = file
            .metadata()
            .await
            .map_err(ClientError::io("reading", path))?
            .len();
        let url = self.url(&image.path());
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
            file,
            256 * 1024,
        ));
        let request = self
            .request(reqwest::Method::PUT, &url)
            .header(CONTENT_SHA256, &sha256)
            .header(CONTENT_LENGTH, size)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        let response = match transport::send("PUT", &url, request).await {
            Ok(response) => response,
            Err(error) => {
                // The server answers a conflict before reading the body and closes the
                // connection, which the sender sees as a cut: look at what it stored.
                if let ClientError::Transport { .. } = error
                    && let Ok(Some(existing)) = self.image_info(image).await
                {
                    return self.same_or_conflict(image, existing, &sha256);
                }
                return Err(error);
            }
        };
        let bytes = response
            .bytes()
            .await
            .map_err(|source| transport::transport("PUT", &url, source))?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            what: format!("PUT {url}"),
            reason: e.to_string(),
        })
    }

    fn same_or_conflict(
        &self,
        image: &ImageRef,
        existing: UploadedImage,
        sha256: &str,
    ) -> Result<UploadedImage, ClientError> {
        if existing.digest.trim_start_matches("sha256:") == sha256 {
            return Ok(existing);
        }
        Err(ClientError::Refused {
            method: "PUT",
            url: self.url(&image.path()),
            status: StatusCode::CONFLICT.as_u16(),
            code: "CONFLICT".to_owned(),
            message: format!(
                "{image} already exists with other content ({}); versions are immutable, use a new version number",
                existing.digest
            ),
        })
    }

    /// Downloads `image` to `destination` (replacing it), resuming an earlier cut download
    /// of the same destination, retrying a cut transfer a few times, and verifying the
    /// SHA-256 the server announced. Only a verified image is left at `destination`.
    pub async fn download_image(
        &self,
        image: &ImageRef,
        destination: &Path,
    ) -> Result<DownloadedImage, ClientError> {
        let url = self.url(&image.path());
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.download_once(&url, destination).await {
                Ok(done) => return Ok(done),
                Err(error) if error.is_transient() && attempt < DOWNLOAD_ATTEMPTS => {
                    tracing::warn!(%url, attempt, %error, "download cut; resuming");
                    tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn download_once(
        &self,
        url: &str,
        destination: &Path,
    ) -> Result<DownloadedImage, ClientError> {
        let partial = with_suffix(destination, ".partial");
        let digest_file = with_suffix(destination, ".partial.sha256");
        let have = match tokio::fs::metadata(&partial).await {
            Ok(meta) => meta.len(),
            Err(_) => 0,
        };
        let known_digest = tokio::fs::read_to_string(&digest_file)
            .await
            .ok()
            .map(|text| text.trim().to_owned());
        let mut request = self.request(reqwest::Method::GET, url);
        let resuming = have > 0 && known_digest.is_some();
        if resuming {
            request = request.header(RANGE, format!("bytes={have}-"));
        }
        let response = request
            .send()
            .await
            .map_err(|source| transport::transport("GET", url, source))?;
        let status = response.status();
        if status == StatusCode::RANGE_NOT_SATISFIABLE {
            // What is there is as long as the image or longer: start again.
            discard(&[&partial, &digest_file]).await;
            return Box::pin(self.download_once(url, destination)).await;
        }
        if !status.is_success() {
            return Err(transport::refused("GET", url, response).await);
        }
        let announced = response
            .headers()
            .get(CONTENT_SHA256)
            .and_then(|value| value.to_str().ok())
            .map(|value| value.trim_start_matches("sha256:").to_ascii_lowercase())
            .ok_or_else(|| ClientError::Decode {
                what: format!("GET {url}"),
                reason: format!("no `{CONTENT_SHA256}` header to verify the image with"),
            })?;
        let append = status == StatusCode::PARTIAL_CONTENT
            && resuming
            && known_digest.as_deref() == Some(announced.as_str());
        if status == StatusCode::PARTIAL_CONTENT && !append {
            // A range of another image than the one begun: start again.
            discard(&[&partial, &digest_file]).await;
            return Box::pin(self.download_once(url, destination)).await;
        }
        if let Some(parent) = destination.parent()
            && !parent.as_os_str().is_empty()
        {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(ClientError::io("creating directory", parent))?;
        }
        tokio::fs::write(&digest_file, &announced)
            .await
            .map_err(ClientError::io("writing", &digest_file))?;
        let (mut hash, mut file, resumed_from) = if append {
            let (hash, _) = hash_prefix(&partial).await?;
            let file = tokio::fs::OpenOptions::new()
                .append(true)
                .open(&partial)
                .await
                .map_err(ClientError::io("opening", &partial))?;
            (hash, file, have)
        } else {
            let file = tokio::fs::File::create(&partial)
                .await
                .map_err(ClientError::io("creating", &partial))?;
            (Sha256::new(), file, 0)
        };
        let mut size = resumed_from;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            // A cut leaves what arrived in `.partial`, for the next attempt to resume.
            let chunk = chunk.map_err(|source| transport::transport("GET", url, source))?;
            file.write_all(&chunk)
                .await
                .map_err(ClientError::io("writing", &partial))?;
            hash.update(&chunk);
            size += chunk.len() as u64;
        }
        file.flush()
            .await
            .map_err(ClientError::io("writing", &partial))?;
        file.sync_all()
            .await
            .map_err(ClientError::io("writing", &partial))?;
        drop(file);
        let actual = hex::encode(hash.finalize());
        if actual != announced {
            discard(&[&partial, &digest_file]).await;
            return Err(ClientError::Checksum {
                url: url.to_owned(),
                expected: announced,
                actual,
            });
        }
        tokio::fs::rename(&partial, destination)
            .await
            .map_err(ClientError::io(
                "renaming the finished download to",
                destination,
            ))?;
        discard(&[&digest_file]).await;
        Ok(DownloadedImage {
            path: destination.to_path_buf(),
            sha256: actual,
            size,
            resumed_from,
        })
    }
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// Removes files, ignoring those that are not there.
async fn discard(paths: &[&Path]) {
    for path in paths {
        let _ = tokio::fs::remove_file(path).await;
    }
}

/// The SHA-256 (hex) and size of a file.
pub async fn hash_file(path: &Path) -> Result<(String, u64), ClientError> {
    let (hash, size) = hash_prefix(path).await?;
    Ok((hex::encode(hash.finalize()), size))
}

/// The running hash over a whole file, to continue with more bytes.
async fn hash_prefix(path: &Path) -> Result<(Sha256, u64), ClientError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(ClientError::io("opening", path))?;
    let mut hash = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    let mut size = 0;
    loop {
        let read = file
            .read(&mut buffer)
            .await
            .map_err(ClientError::io("reading", path))?;
        if read == 0 {
            return Ok((hash, size));
        }
        hash.update(&buffer[..read]);
        size += read as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_paths_and_names() {
        let image = ImageRef::client("api", "acme-1.0.0_2");
        assert_eq!(image.path(), "/images/client/api/acme-1.0.0_2");
        assert_eq!(image.to_string(), "client image acme-1.0.0_2 of api");
        assert_eq!(
            with_suffix(Path::new("/tmp/a.zip"), ".partial"),
            Path::new("/tmp/a.zip.partial")
        );
    }
}
