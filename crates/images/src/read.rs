//! Reading images back: whole, by byte range (HTTP `Range`), and re-hashing to verify.

use std::fs;
use std::io::{self, Seek, SeekFrom};

use tokio::io::AsyncReadExt as _;
use vupdate_core::service::ServiceName;

use super::error::{ImageError, ImageId, io_err};
use super::fsutil::hash_file;
use super::key::{ImageInfo, ImageVersion};
use super::{ImageStore, blocking};

/// An open image: its digest and size, and the blob file positioned at `start`.
#[derive(Debug)]
pub struct ImageReader {
    /// The whole image's digest and size.
    pub info: ImageInfo,
    /// The blob, positioned at `start`; read only `len` bytes from it (see
    /// [`into_reader`](ImageReader::into_reader)).
    pub file: tokio::fs::File,
    /// The first byte served.
    pub start: u64,
    /// How many bytes are served (the whole size, or the range's length).
    pub len: u64,
}

impl ImageReader {
    /// The served bytes as a reader that stops at the end of the range.
    pub fn into_reader(self) -> tokio::io::Take<tokio::fs::File> {
        self.file.take(self.len)
    }
}

/// Opens a version's blob, whole or for `start..=end`.
pub(super) async fn open(
    store: &ImageStore,
    service: &ServiceName,
    version: &ImageVersion,
    range: Option<(u64, u64)>,
) -> Result<ImageReader, ImageError> {
    let ref_path = store.ref_path(service, version);
    let image = ImageId::boxed(service, version);
    let Some(info) = store.info(service, version).await? else {
        return Err(ImageError::NotFound {
            image,
            path: ref_path,
        });
    };
    let path = store.local_blob(service, version, &info).await?;
    let (info, file, start, len) = blocking(move || {
        let mut file = match fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ImageError::BlobMissing {
                    image,
                    digest: info.digest,
                    path,
                });
            }
            Err(e) => return Err(io_err("open blob", &path)(e)),
        };
        let actual_size = file
            .metadata()
            .map_err(io_err("read blob metadata", &path))?
            .len();
        if actual_size != info.size {
            return Err(ImageError::Corrupt {
                image,
                path,
                expected: info.digest,
                expected_size: info.size,
                actual: String::new(),
                actual_size,
            });
        }
        let (start, len) = match range {
            None => (0, info.size),
            Some((start, end)) if start <= end && end < info.size => (start, end - start + 1),
            Some((start, end)) => {
                return Err(ImageError::RangeNotSatisfiable {
                    image,
                    start,
                    end,
                    size: info.size,
                });
            }
        };
        if start > 0 {
            file.seek(SeekFrom::Start(start))
                .map_err(io_err("seek in blob", &path))?;
        }
        Ok((info, file, start, len))
    })
    .await?;
    Ok(ImageReader {
        info,
        file: tokio::fs::File::from_std(file),
        start,
        len,
    })
}

/// Re-hashes a version's blob and compares digest and size with its ref.
pub(super) async fn verify(
    store: &ImageStore,
    service: &ServiceName,
    version: &ImageVersion,
) -> Result<ImageInfo, ImageError> {
    let ref_path = store.ref_path(service, version);
    let image = ImageId::boxed(service, version);
    let Some(info) = store.info(service, version).await? else {
        return Err(ImageError::NotFound {
            image,
            path: ref_path,
        });
    };
    let path = store.local_blob(service, version, &info).await?;
    blocking(move || {
        if !path.exists() {
            return Err(ImageError::BlobMissing {
                image,
                digest: info.digest,
                path,
            });
        }
        let actual = hash_file(&path)?;
        if actual != info {
            return Err(ImageError::Corrupt {
                image,
                path,
                expected: info.digest,
                expected_size: info.size,
                actual: actual.digest,
                actual_size: actual.size,
            });
        }
        Ok(info)
    })
    .await
}
