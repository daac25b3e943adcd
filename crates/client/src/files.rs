//! Private files of builds: `GET /private-files/{kind}/{service}/{*path}` into a file, and
//! `PUT` of a file's content (administrators).
//!
//! The distribution answers with the service's own file, else the one common to every
//! service; the content never lives in Git. The file is written next to its destination
//! and renamed into place, so a half file is never left under the destination's name.

use std::path::Path;

use futures::StreamExt as _;
use tokio::io::AsyncWriteExt as _;

use crate::error::ClientError;
use crate::images::ImageKind;
use crate::transport;
use crate::{Client, encode_segment};

impl Client {
    /// Stores the content of `file` as the private file `path` of `service` (or of
    /// `_common`, every service's) for `kind` builds, replacing an older content.
    pub async fn upload_private_file(
        &self,
        kind: ImageKind,
        service: &str,
        path: &str,
        file: &Path,
    ) -> Result<(), ClientError> {
        let url = self.private_url(kind, service, path);
        let content = tokio::fs::File::open(file)
            .await
            .map_err(ClientError::io("opening", file))?;
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(content));
        let request = self.request(reqwest::Method::PUT, &url).body(body);
        transport::send("PUT", &url, request).await?;
        Ok(())
    }

    fn private_url(&self, kind: ImageKind, service: &str, path: &str) -> String {
        let segments: Vec<String> = path
            .split('/')
            .filter(|part| !part.is_empty())
            .map(encode_segment)
            .collect();
        self.url(&format!(
            "/private-files/{kind}/{}/{}",
            encode_segment(service),
            segments.join("/")
        ))
    }

    /// Downloads the private file `path` (its path inside the image) that a `kind` build of
    /// `service` uses into `destination`; returns its size. `NOT_FOUND` when the
    /// distribution has no such file for the service nor in common.
    pub async fn download_private_file(
        &self,
        kind: ImageKind,
        service: &str,
        path: &str,
        destination: &Path,
    ) -> Result<u64, ClientError> {
        let url = self.private_url(kind, service, path);
        let request = self.request(reqwest::Method::GET, &url);
        let response = transport::send("GET", &url, request).await?;
        if let Some(parent) = destination.parent()
            && !parent.as_os_str().is_empty()
        {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(ClientError::io("creating directory", parent))?;
        }
        let mut temporary = destination.as_os_str().to_owned();
        temporary.push(".partial");
        let temporary = std::path::PathBuf::from(temporary);
        let mut file = tokio::fs::File::create(&temporary)
            .await
            .map_err(ClientError::io("creating", &temporary))?;
        let mut size = 0u64;
        let mut body = response.bytes_stream();
        let written: Result<(), ClientError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|source| transport::transport("GET", &url, source))?;
                file.write_all(&chunk)
                    .await
                    .map_err(ClientError::io("writing", &temporary))?;
                size += chunk.len() as u64;
            }
            file.flush()
                .await
                .map_err(ClientError::io("writing", &temporary))
        }
        .await;
        drop(file);
        if let Err(error) = written {
            let _ = tokio::fs::remove_file(&temporary).await;
            return Err(error);
        }
        tokio::fs::rename(&temporary, destination)
            .await
            .map_err(ClientError::io("renaming the download to", destination))?;
        Ok(size)
    }
}
