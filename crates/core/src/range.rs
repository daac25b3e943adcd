//! [`ByteRange`]: the single byte range of an HTTP `Range` header (an image download
//! resumed or read in part), resolved against the image's size.

/// One `bytes=` range as the client wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=a-b`: bytes `a` to `b` inclusive.
    FromTo(u64, u64),
    /// `bytes=a-`: from `a` to the end.
    From(u64),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Parses a `Range` header value; `None` for anything but one well-formed `bytes=`
    /// range (several ranges, other units, `a > b`), which the server then ignores and
    /// answers with the whole image, as RFC 9110 14.2 allows.
    pub fn parse(header: &str) -> Option<ByteRange> {
        let spec = header.trim().strip_prefix("bytes=")?.trim();
        if spec.contains(',') {
            return None;
        }
        let (first, last) = spec.split_once('-')?;
        let number = |text: &str| -> Option<u64> {
            (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| text.parse().ok())
                .flatten()
        };
        match (first.trim(), last.trim()) {
            ("", "") => None,
            ("", n) => number(n).map(ByteRange::Suffix),
            (a, "") => number(a).map(ByteRange::From),
            (a, b) => {
                let (a, b) = (number(a)?, number(b)?);
                (a <= b).then_some(ByteRange::FromTo(a, b))
            }
        }
    }

    /// The inclusive `(start, end)` this range selects in an image of `size` bytes (an
    /// end past the image is cut to its last byte); `None` when no byte is selected.
    pub fn resolve(self, size: u64) -> Option<(u64, u64)> {
        let last = size.checked_sub(1)?;
        match self {
            ByteRange::FromTo(a, b) => (a <= last).then(|| (a, b.min(last))),
            ByteRange::From(a) => (a <= last).then_some((a, last)),
            ByteRange::Suffix(0) => None,
            ByteRange::Suffix(n) => Some((size.saturating_sub(n), last)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ByteRange::{self, From, FromTo, Suffix};

    #[test]
    fn parses_single_byte_ranges() {
        let table: &[(&str, Option<ByteRange>)] = &[
            ("bytes=0-9", Some(FromTo(0, 9))),
            ("bytes=5-5", Some(FromTo(5, 5))),
            ("bytes=7-", Some(From(7))),
            ("bytes=-3", Some(Suffix(3))),
            (" bytes=1-2 ", Some(FromTo(1, 2))),
            ("bytes=9-1", None),
            ("bytes=-", None),
            ("bytes=0-1,4-5", None),
            ("items=0-1", None),
            ("bytes=a-1", None),
            ("bytes=+1-2", None),
            ("bytes=0-99999999999999999999999", None),
        ];
        for (header, expected) in table {
            assert_eq!(ByteRange::parse(header), *expected, "{header}");
        }
    }

    #[test]
    fn resolves_against_the_size() {
        type Case = (ByteRange, u64, Option<(u64, u64)>);
        let table: &[Case] = &[
            (FromTo(0, 3), 10, Some((0, 3))),
            (FromTo(8, 20), 10, Some((8, 9))),
            (FromTo(10, 12), 10, None),
            (From(9), 10, Some((9, 9))),
            (From(10), 10, None),
            (Suffix(4), 10, Some((6, 9))),
            (Suffix(40), 10, Some((0, 9))),
            (Suffix(0), 10, None),
            (From(0), 0, None),
            (Suffix(1), 0, None),
        ];
        for (range, size, expected) in table {
            assert_eq!(range.resolve(*size), *expected, "{range:?} of {size}");
        }
    }
}
