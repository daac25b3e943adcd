//! Sizes written in `distribution.yaml` as a number of bytes or with a unit (`64KiB`,
//! `4MiB`, `1GiB`).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};

/// A size in bytes; the error names the text and shows examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Size(pub(crate) u64);

impl<'de> de::Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SizeVisitor)
    }
}

/// What a size may be written as.
const EXAMPLES: &str = "write a number of bytes or one with a unit, e.g. `64KiB`, `4MiB` or `1GiB`";

struct SizeVisitor;

impl Visitor<'_> for SizeVisitor {
    type Value = Size;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a size; {EXAMPLES}")
    }

    fn visit_u64<E: de::Error>(self, bytes: u64) -> Result<Size, E> {
        Ok(Size(bytes))
    }

    fn visit_i64<E: de::Error>(self, bytes: i64) -> Result<Size, E> {
        u64::try_from(bytes).map(Size).map_err(|_| {
            E::custom(format!(
                "invalid size `{bytes}`: it is negative; {EXAMPLES}"
            ))
        })
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Size, E> {
        text.trim()
            .parse::<bytesize::ByteSize>()
            .map(|size| Size(size.as_u64()))
            .map_err(|_| E::custom(format!("invalid size `{text}`; {EXAMPLES}")))
    }
}

#[cfg(test)]
mod tests {
    use super::Size;

    fn size(yaml: &str) -> Result<u64, String> {
        serde_saphyr::from_str::<Size>(yaml)
            .map(|size| size.0)
            .map_err(|error| error.to_string())
    }

    #[test]
    fn a_size_is_bytes_or_a_number_with_a_unit_and_anything_else_says_how_to_write_one() {
        assert_eq!(size("1048576"), Ok(1 << 20));
        assert_eq!(size("64KiB"), Ok(64 << 10));
        assert_eq!(size("4 MiB"), Ok(4 << 20));
        for bad in ["lots", "-5", "true"] {
            let error = size(bad).expect_err(bad);
            assert!(
                error.contains("`64KiB`, `4MiB` or `1GiB`"),
                "{bad}: {error}"
            );
        }
        assert!(
            size("lots")
                .expect_err("lots")
                .contains("invalid size `lots`")
        );
    }
}
