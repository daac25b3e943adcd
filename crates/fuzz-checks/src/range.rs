//! The HTTP `Range` header of an image download, resolved against the image's size.

use vupdate_core::range::ByteRange;

/// Input: up to 8 bytes of image size (little-endian), then the header's text.
///
/// A range that parses prints back as itself; resolved against any size it selects bytes
/// of the image only, exactly those RFC 9110 says (an end past the image cut to its last
/// byte, a suffix longer than the image meaning all of it).
pub fn check(data: &[u8]) {
    let (size, header) = data.split_at(data.len().min(8));
    let mut bytes = [0u8; 8];
    bytes[..size.len()].copy_from_slice(size);
    let size = u64::from_le_bytes(bytes);
    let Ok(header) = std::str::from_utf8(header) else {
        return;
    };
    let Some(range) = ByteRange::parse(header) else {
        return;
    };
    assert_eq!(ByteRange::parse(&print(range)), Some(range));
    for size in [size, 0, 1, size / 2, size.saturating_add(1), u64::MAX] {
        check_resolved(range, size);
    }
}

fn print(range: ByteRange) -> String {
    match range {
        ByteRange::FromTo(first, last) => format!("bytes={first}-{last}"),
        ByteRange::From(first) => format!("bytes={first}-"),
        ByteRange::Suffix(length) => format!("bytes=-{length}"),
    }
}

fn check_resolved(range: ByteRange, size: u64) {
    let resolved = range.resolve(size);
    let expected = match range {
        ByteRange::FromTo(first, last) => (first < size).then(|| (first, last.min(size - 1))),
        ByteRange::From(first) => (first < size).then(|| (first, size - 1)),
        ByteRange::Suffix(length) => {
            (length > 0 && size > 0).then(|| (size - length.min(size), size - 1))
        }
    };
    assert_eq!(resolved, expected, "{range:?} of an image of {size} bytes");
    if let Some((start, end)) = resolved {
        assert!(start <= end && end < size);
    }
}
