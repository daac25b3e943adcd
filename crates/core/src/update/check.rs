//! Field checks run while a settings file is read, used as `#[serde(deserialize_with)]`.
//!
//! Each check is a serde visitor rather than a check after the value is read, so the JSON
//! reader still points at the offending value and the error carries its line and column as
//! well as its path.

use std::fmt;
use std::path::{Component, Path};

use serde::Deserializer;
use serde::de::{self, Unexpected, Visitor};

/// Accepts an unsigned integer in `min..=max`, described as `what` in errors.
struct Bounded {
    min: u64,
    max: u64,
    what: &'static str,
}

impl Visitor<'_> for Bounded {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.max {
            u64::MAX => write!(f, "{} from {} up", self.what, self.min),
            max => write!(f, "{} from {} to {max}", self.what, self.min),
        }
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<u64, E> {
        if (self.min..=self.max).contains(&value) {
            Ok(value)
        } else {
            Err(E::invalid_value(Unexpected::Unsigned(value), &self))
        }
    }
}

fn bounded<'de, D: Deserializer<'de>>(
    deserializer: D,
    min: u64,
    max: u64,
    what: &'static str,
) -> Result<u64, D::Error> {
    deserializer.deserialize_u64(Bounded { min, max, what })
}

/// A positive `u64` (sizes, intervals).
pub(super) fn positive_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    bounded(deserializer, 1, u64::MAX, "a number")
}

/// A positive `u64` that may be left out.
pub(super) fn positive_u64_opt<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    positive_u64(deserializer).map(Some)
}

/// A positive `u32` (counts).
pub(super) fn positive_u32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let value = bounded(deserializer, 1, u32::MAX.into(), "a number")?;
    Ok(u32::try_from(value).expect("bounded to the u32 range above"))
}

/// CPU percents: 100 is one core fully busy, so the bound 10000 allows up to 100 cores.
pub(super) fn cpu_percents<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let value = bounded(deserializer, 1, 10_000, "a CPU percentage (100 per core)")?;
    Ok(u32::try_from(value).expect("bounded to 10000 above"))
}

/// Accepts a string that `check` approves; `check` says what is wrong otherwise.
struct CheckedStr<F> {
    check: F,
    what: &'static str,
}

impl<F: Fn(&str) -> Result<(), String>> Visitor<'_> for CheckedStr<F> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<String, E> {
        (self.check)(text).map_err(E::custom)?;
        Ok(text.to_owned())
    }
}

fn checked_str<'de, D: Deserializer<'de>>(
    deserializer: D,
    what: &'static str,
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<String, D::Error> {
    deserializer.deserialize_str(CheckedStr { check, what })
}

/// A program to run: not empty nor blank.
pub(super) fn command<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    checked_str(deserializer, "a program to run", |text| {
        if text.trim().is_empty() {
            Err("the command is empty: give the program to run".to_owned())
        } else {
            Ok(())
        }
    })
}

/// A file path that stays inside the version image: relative, without `..`.
pub(super) fn image_path<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    checked_str(
        deserializer,
        "a relative path inside the image",
        check_image_path,
    )
}

/// Why `text` would leave the image (or names nothing), if it would.
pub(super) fn check_image_path(text: &str) -> Result<(), String> {
    let path = Path::new(text);
    if text.is_empty() {
        return Err("the path is empty: give a path inside the image".to_owned());
    }
    if path.is_absolute() || path.has_root() {
        return Err(format!(
            "`{text}` is absolute: give a path relative to the image root"
        ));
    }
    if path.components().any(|part| part == Component::ParentDir) {
        return Err(format!(
            "`{text}` contains `..`: the path must stay inside the image"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_paths_stay_inside() {
        for good in ["a", "a/b.json", "./a", "a/./b", "a..b/c..", "."] {
            assert_eq!(check_image_path(good), Ok(()), "{good:?}");
        }
        for bad in ["", "/etc/passwd", "..", "a/../b", "a/..", "../a"] {
            assert!(check_image_path(bad).is_err(), "{bad:?}");
        }
    }
}
