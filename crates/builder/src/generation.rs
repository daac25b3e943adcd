//! Which client version a client build makes: the same one when nothing changed, the next
//! generation `_N` when the merged content did. Pure.

use vupdate_core::version::{ClientVersion, DeveloperVersion};

/// What [`next_client_version`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextClient {
    /// The newest existing client version already has this content: keep it, build nothing.
    Unchanged(ClientVersion),
    /// The content is new: this is the version to store it as.
    New(ClientVersion),
}

impl NextClient {
    /// The version decided on, either way.
    pub fn version(&self) -> &ClientVersion {
        match self {
            NextClient::Unchanged(version) | NextClient::New(version) => version,
        }
    }
}

/// Decides the client version of `developer` for content with `content_digest`, given the
/// existing client versions with their stored content digests.
///
/// With no client version of `developer` yet, it is generation 0 (written without `_0`). When
/// the newest one has the same digest, nothing changed. Otherwise it is one past the highest
/// generation of `developer`. Client versions of other developer versions are ignored.
pub fn next_client_version<'a>(
    developer: &DeveloperVersion,
    existing: impl IntoIterator<Item = (&'a ClientVersion, &'a str)>,
    content_digest: &str,
) -> NextClient {
    let own: Vec<(&ClientVersion, &str)> = existing
        .into_iter()
        .filter(|(version, _)| &version.developer == developer)
        .collect();
    match own.iter().max_by_key(|(version, _)| version.generation) {
        Some((newest, digest)) if *digest == content_digest => {
            NextClient::Unchanged((*newest).clone())
        }
        _ => NextClient::New(ClientVersion::next_for(
            developer,
            own.iter().map(|(version, _)| *version),
        )),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn client(text: &str) -> ClientVersion {
        text.parse().expect("client version")
    }

    #[test]
    fn decisions() {
        let developer: DeveloperVersion = "acme-1.2.3".parse().expect("version");
        let existing = [
            (client("acme-1.2.3"), "d0"),
            (client("acme-1.2.3_1"), "d1"),
            (client("acme-1.2.4_7"), "other"),
        ];
        let pairs = || existing.iter().map(|(version, digest)| (version, *digest));
        let cases: &[(&[usize], &str, NextClient)] = &[
            (&[], "x", NextClient::New(client("acme-1.2.3"))),
            (&[0], "d0", NextClient::Unchanged(client("acme-1.2.3"))),
            (&[0], "x", NextClient::New(client("acme-1.2.3_1"))),
            (&[0, 1], "d1", NextClient::Unchanged(client("acme-1.2.3_1"))),
            // Back to older content is still a change from the newest.
            (&[0, 1], "d0", NextClient::New(client("acme-1.2.3_2"))),
            (&[2], "other", NextClient::New(client("acme-1.2.3"))),
        ];
        for (indexes, digest, expected) in cases {
            let chosen = pairs()
                .enumerate()
                .filter(|(i, _)| indexes.contains(i))
                .map(|(_, pair)| pair);
            assert_eq!(
                &next_client_version(&developer, chosen, digest),
                expected,
                "{indexes:?} {digest}"
            );
        }
    }

    proptest! {
        #[test]
        fn a_new_version_is_newer_than_every_existing_one(
            generations in proptest::collection::btree_set(0u32..50, 0..6),
            digest in "[ab]",
        ) {
            let developer: DeveloperVersion = "acme-2.0".parse().expect("version");
            let version = |generation: u32| ClientVersion {
                developer: developer.clone(),
                generation,
            };
            let digest_of = |generation: u32| if generation.is_multiple_of(2) { "a" } else { "b" };
            let existing: Vec<(ClientVersion, String)> = generations
                .iter()
                .map(|g| (version(*g), digest_of(*g).to_owned()))
                .collect();
            let pairs = existing.iter().map(|(v, d)| (v, d.as_str()));
            let decided = next_client_version(&developer, pairs, &digest);
            let newest = existing.iter().max_by_key(|(v, _)| v.generation);
            match (&decided, newest) {
                (NextClient::Unchanged(version), Some((newest, newest_digest))) => {
                    prop_assert_eq!(version, newest);
                    prop_assert_eq!(newest_digest, &digest);
                }
                (NextClient::Unchanged(_), None) => {
                    prop_assert!(false, "unchanged with nothing existing")
                }
                (NextClient::New(version), _) => {
                    prop_assert!(existing.iter().all(|(v, _)| v < version));
                    prop_assert!(newest.is_none_or(|(_, d)| d != &digest));
                }
            }
        }
    }
}
