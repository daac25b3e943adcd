//! What an overlay file's name means: a layer of a target file, its macro values, or nothing.

use std::cmp::Ordering;

use super::{Format, SettingsError, TreeId};

/// The role of one overlay file, from its path alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Role<'a> {
    /// Under a `.git` directory (or a submodule's `.git` file): ignored.
    Git,
    /// Content for `target`: the file itself or a numbered layer of it.
    Layer {
        /// The file the content is for.
        target: &'a str,
        /// Where it goes among the target's layers in the same overlay.
        order: LayerOrder<'a>,
    },
    /// `target.defines`: macro values for `target`.
    Defines {
        /// The file to expand.
        target: &'a str,
    },
}

/// The place of a layer among the layers of one target in one overlay: the file itself
/// first, then `X.N` by N compared as a number (so `X.2` before `X.10`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LayerOrder<'a> {
    /// The target file itself.
    Itself,
    /// `X.N`, holding N's digits as written.
    Index(&'a str),
}

impl Ord for LayerOrder<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (LayerOrder::Itself, LayerOrder::Itself) => Ordering::Equal,
            (LayerOrder::Itself, LayerOrder::Index(_)) => Ordering::Less,
            (LayerOrder::Index(_), LayerOrder::Itself) => Ordering::Greater,
            (LayerOrder::Index(a), LayerOrder::Index(b)) => {
                // Compared as numbers of any size without parsing: fewer significant digits is
                // smaller; then digit by digit; then `1` before `01` so the order stays total.
                let (a_trim, b_trim) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
                a_trim
                    .len()
                    .cmp(&b_trim.len())
                    .then_with(|| a_trim.cmp(b_trim))
                    .then_with(|| a.len().cmp(&b.len()))
            }
        }
    }
}

impl PartialOrd for LayerOrder<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The role of an overlay file at `path`.
pub(super) fn role(path: &str) -> Role<'_> {
    if path.split('/').any(|segment| segment == ".git") {
        return Role::Git;
    }
    if let Some(target) = path.strip_suffix(".defines")
        && has_file_name(target)
    {
        return Role::Defines { target };
    }
    if let Some((target, digits)) = path.rsplit_once('.')
        && !digits.is_empty()
        && digits.bytes().all(|byte| byte.is_ascii_digit())
        && Format::of(target).is_some()
    {
        return Role::Layer {
            target,
            order: LayerOrder::Index(digits),
        };
    }
    Role::Layer {
        target: path,
        order: LayerOrder::Itself,
    }
}

/// Whether `path` ends in a non-empty file name (so `dir/.defines` is a plain file).
fn has_file_name(path: &str) -> bool {
    !path.is_empty() && !path.ends_with('/')
}

/// Refuses a path that could not be written below an image directory as it reads.
pub(super) fn check_path(tree: TreeId, path: &str) -> Result<(), SettingsError> {
    let usable = !path.is_empty()
        && path
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..");
    if usable {
        Ok(())
    } else {
        Err(SettingsError::InvalidPath {
            tree,
            path: path.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_by_name() {
        let itself = LayerOrder::Itself;
        let cases: &[(&str, Role<'_>)] = &[
            (
                "a.conf",
                Role::Layer {
                    target: "a.conf",
                    order: itself,
                },
            ),
            (
                "d/a.json.1",
                Role::Layer {
                    target: "d/a.json",
                    order: LayerOrder::Index("1"),
                },
            ),
            (
                "a.properties.10",
                Role::Layer {
                    target: "a.properties",
                    order: LayerOrder::Index("10"),
                },
            ),
            // Not a mergeable kind: `X.N` is a file of its own.
            (
                "lib/libssl.so.1",
                Role::Layer {
                    target: "lib/libssl.so.1",
                    order: itself,
                },
            ),
            (
                "a.json.x1",
                Role::Layer {
                    target: "a.json.x1",
                    order: itself,
                },
            ),
            (
                "a.json.",
                Role::Layer {
                    target: "a.json.",
                    order: itself,
                },
            ),
            ("a.json.defines", Role::Defines { target: "a.json" }),
            ("run.sh.defines", Role::Defines { target: "run.sh" }),
            (
                "d/.defines",
                Role::Layer {
                    target: "d/.defines",
                    order: itself,
                },
            ),
            (
                ".defines",
                Role::Layer {
                    target: ".defines",
                    order: itself,
                },
            ),
            (".git/config", Role::Git),
            ("sub/.git/HEAD", Role::Git),
            ("sub/.git", Role::Git),
            (
                "a.git/x",
                Role::Layer {
                    target: "a.git/x",
                    order: itself,
                },
            ),
        ];
        for (path, expected) in cases {
            assert_eq!(&role(path), expected, "{path}");
        }
    }

    #[test]
    fn layer_indexes_compare_as_numbers() {
        let mut orders = [
            "10",
            "2",
            "1",
            "01",
            "0",
            "100",
            "9",
            "99999999999999999999999",
        ]
        .map(LayerOrder::Index)
        .to_vec();
        orders.push(LayerOrder::Itself);
        orders.sort();
        let written: Vec<String> = orders
            .iter()
            .map(|order| match order {
                LayerOrder::Itself => "itself".to_owned(),
                LayerOrder::Index(digits) => (*digits).to_owned(),
            })
            .collect();
        assert_eq!(
            written,
            [
                "itself",
                "0",
                "1",
                "01",
                "2",
                "9",
                "10",
                "100",
                "99999999999999999999999"
            ]
        );
    }

    #[test]
    fn paths_are_checked() {
        for good in ["a", "a/b.conf", ".hidden/x", "a..b"] {
            assert!(check_path(TreeId::Base, good).is_ok(), "{good}");
        }
        for bad in ["", "/a", "a/", "a//b", "./a", "a/../b", ".."] {
            assert_eq!(
                check_path(TreeId::Overlay(2), bad),
                Err(SettingsError::InvalidPath {
                    tree: TreeId::Overlay(2),
                    path: bad.to_owned()
                }),
                "{bad}"
            );
        }
    }
}
