//! Developer versions (`DIST-1.2.3`) and client versions (`DIST-1.2.3_N`).
//!
//! A version names the distribution that built it and a build of dot-separated numbers.
//! The distribution name may contain dashes, the build may not, so a version splits at its
//! last `-`. A client version adds a generation `_N` (N >= 1); generation 0 is the developer
//! build itself and is written without a suffix, so every version has exactly one spelling.
//!
//! Order is total and agrees with equality: distribution name, then the build compared
//! numerically part by part (a build that is a prefix of another is older: `1.2 < 1.2.0`),
//! then the generation.

use std::fmt;
use std::str::FromStr;

/// Why a version string was refused; each variant quotes the string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// The string has no `-` between distribution and build.
    #[error(
        "version `{0}` has no `-` between distribution and build (expected e.g. `jetto-1.2.3`)"
    )]
    NoDistribution(String),
    /// The distribution part is empty or has characters other than letters, digits, `.`, `_`, `-`.
    #[error("version `{0}`: distribution name must be non-empty letters, digits, `.`, `_` or `-`")]
    BadDistribution(String),
    /// The build part is not dot-separated numbers.
    #[error(
        "version `{0}`: build must be dot-separated numbers without leading zeros (e.g. `1.2.3`)"
    )]
    BadBuild(String),
    /// The client generation after `_` is not a positive number.
    #[error(
        "version `{0}`: client generation after `_` must be a number from 1 up (generation 0 is written without `_0`)"
    )]
    BadGeneration(String),
    /// A client generation was given where only a developer version is allowed.
    #[error("version `{0}` has a client generation `_N`, but a developer version is expected")]
    UnexpectedGeneration(String),
}

/// Whether `name` can name a distribution (the part of a version before the build):
/// non-empty letters, digits, `.`, `_` or `-`. The one rule everywhere a distribution is named.
pub fn is_distribution_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A build number: dot-separated numbers such as `1.2.3`, compared part by part.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Build(Vec<u64>);

impl Build {
    /// The first build of a service, `1.0.0`.
    pub fn initial() -> Self {
        Build(vec![1, 0, 0])
    }

    /// Builds from its parts; `None` when there are none.
    pub fn new(parts: Vec<u64>) -> Option<Self> {
        (!parts.is_empty()).then_some(Build(parts))
    }

    /// The numbers of the build, most significant first.
    pub fn parts(&self) -> &[u64] {
        &self.0
    }

    /// The next build: the last number plus one (`1.2.9` -> `1.2.10`).
    pub fn next(&self) -> Self {
        let mut parts = self.0.clone();
        let last = parts
            .last_mut()
            .expect("a build always has at least one part");
        *last = last.saturating_add(1);
        Build(parts)
    }

    fn parse(text: &str) -> Option<Self> {
        let parts = text
            .split('.')
            .map(|part| {
                let valid = !part.is_empty()
                    && part.bytes().all(|b| b.is_ascii_digit())
                    && (part == "0" || !part.starts_with('0'));
                if valid { part.parse().ok() } else { None }
            })
            .collect::<Option<Vec<u64>>>()?;
        Build::new(parts)
    }
}

impl fmt::Display for Build {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{part}")?;
        }
        Ok(())
    }
}

/// A developer version `DIST-BUILD`, built from source repositories.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeveloperVersion {
    /// The distribution that built it.
    pub distribution: String,
    /// Its build number.
    pub build: Build,
}

impl DeveloperVersion {
    /// A version from its parts.
    pub fn new(distribution: impl Into<String>, build: Build) -> Self {
        DeveloperVersion {
            distribution: distribution.into(),
            build,
        }
    }

    /// The version after this one on the same distribution.
    pub fn next(&self) -> Self {
        DeveloperVersion::new(self.distribution.clone(), self.build.next())
    }

    /// The next developer version for `distribution` given the existing ones: one past the
    /// newest build of that distribution, or `1.0.0` when it has none.
    pub fn next_for<'a>(
        distribution: &str,
        existing: impl IntoIterator<Item = &'a DeveloperVersion>,
    ) -> Self {
        existing
            .into_iter()
            .filter(|v| v.distribution == distribution)
            .max()
            .map(DeveloperVersion::next)
            .unwrap_or_else(|| DeveloperVersion::new(distribution, Build::initial()))
    }
}

impl fmt::Display for DeveloperVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.distribution, self.build)
    }
}

impl FromStr for DeveloperVersion {
    type Err = VersionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let version: ClientVersion = text.parse()?;
        if version.generation != 0 {
            return Err(VersionError::UnexpectedGeneration(text.to_owned()));
        }
        Ok(version.developer)
    }
}

/// A client version: a developer version customised for one distribution, `DIST-BUILD[_N]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientVersion {
    /// The developer version it was made from.
    pub developer: DeveloperVersion,
    /// The generation; 0 is the first client build, written without a suffix.
    pub generation: u32,
}

impl ClientVersion {
    /// The first client version of a developer version (generation 0).
    pub fn first(developer: DeveloperVersion) -> Self {
        ClientVersion {
            developer,
            generation: 0,
        }
    }

    /// The next client version of the same developer version given the existing client
    /// versions: one past the highest generation of that developer version, or generation 0.
    pub fn next_for<'a>(
        developer: &DeveloperVersion,
        existing: impl IntoIterator<Item = &'a ClientVersion>,
    ) -> Self {
        let generation = existing
            .into_iter()
            .filter(|v| &v.developer == developer)
            .map(|v| v.generation.saturating_add(1))
            .max()
            .unwrap_or(0);
        ClientVersion {
            developer: developer.clone(),
            generation,
        }
    }
}

impl From<DeveloperVersion> for ClientVersion {
    fn from(developer: DeveloperVersion) -> Self {
        ClientVersion::first(developer)
    }
}

impl fmt::Display for ClientVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.developer)?;
        if self.generation != 0 {
            write!(f, "_{}", self.generation)?;
        }
        Ok(())
    }
}

impl FromStr for ClientVersion {
    type Err = VersionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |make: fn(String) -> VersionError| make(text.to_owned());
        let (distribution, rest) = text
            .rsplit_once('-')
            .ok_or_else(|| error(VersionError::NoDistribution))?;
        if !is_distribution_name(distribution) {
            return Err(error(VersionError::BadDistribution));
        }
        let (build, generation) = match rest.split_once('_') {
            None => (rest, 0),
            Some((build, generation)) => {
                let valid = !generation.is_empty()
                    && generation.bytes().all(|b| b.is_ascii_digit())
                    && !generation.starts_with('0');
                let generation = valid
                    .then(|| generation.parse::<u32>().ok())
                    .flatten()
                    .ok_or_else(|| error(VersionError::BadGeneration))?;
                (build, generation)
            }
        };
        let build = Build::parse(build).ok_or_else(|| error(VersionError::BadBuild))?;
        Ok(ClientVersion {
            developer: DeveloperVersion::new(distribution, build),
            generation,
        })
    }
}

macro_rules! serde_as_string {
    ($type:ty, $expecting:literal) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $type;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<$type, E> {
                        text.parse().map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(Visitor)
            }
        }
    };
}

serde_as_string!(
    DeveloperVersion,
    "a developer version such as `jetto-1.2.3`"
);
serde_as_string!(
    ClientVersion,
    "a client version such as `jetto-1.2.3` or `jetto-1.2.3_2`"
);

#[cfg(test)]
mod tests;
