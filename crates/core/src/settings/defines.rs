//! `X.defines` files: `name=value` lines giving macro values for the file X.

use super::merge::Layer;
use super::{Position, SettingsError};
use crate::macros::is_macro_name;

/// Reads the `name=value` lines of a `.defines` file, in order (a repeated name: the last wins).
pub(super) fn parse_defines(layer: &Layer<'_>) -> Result<Vec<(String, String)>, SettingsError> {
    let text = layer.text("read for macro values")?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut values = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let parsed = trimmed
            .split_once('=')
            .map(|(name, value)| (name.trim(), value.trim()))
            .filter(|(name, _)| is_macro_name(name));
        let Some((name, value)) = parsed else {
            return Err(SettingsError::MalformedDefine {
                tree: layer.tree,
                path: layer.path.to_owned(),
                line: index + 1,
                text: line.to_owned(),
            });
        };
        values.push((name.to_owned(), value.to_owned()));
    }
    Ok(values)
}

/// The position of the first byte that is not UTF-8, for error messages.
pub(super) fn utf8_error_position(bytes: &[u8], error: &std::str::Utf8Error) -> Position {
    let valid = std::str::from_utf8(&bytes[..error.valid_up_to()])
        .expect("bytes up to valid_up_to are UTF-8");
    Position::at_offset(valid, valid.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::TreeId;

    fn layer(bytes: &[u8]) -> Layer<'_> {
        Layer {
            tree: TreeId::Overlay(1),
            path: "app.conf.defines",
            bytes,
        }
    }

    #[test]
    fn defines_lines() {
        let text =
            b"\xef\xbb\xbf# ports\n\nport = 8080\r\nhost=a=b\n  spaced.name-1 =  v  \nport=9090";
        let parsed = parse_defines(&layer(text)).expect("valid defines");
        let expected = [
            ("port", "8080"),
            ("host", "a=b"),
            ("spaced.name-1", "v"),
            ("port", "9090"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(parsed, expected);
    }

    #[test]
    fn malformed_defines_name_the_line() {
        for (text, line) in [
            ("a=1\nno equals sign\n", 2),
            ("\n\n=value\n", 3),
            ("a b=1\n", 1),
            ("%%a%%=1\n", 1),
        ] {
            let error = parse_defines(&layer(text.as_bytes())).expect_err(text);
            match error {
                SettingsError::MalformedDefine {
                    line: found,
                    ref path,
                    ..
                } => {
                    assert_eq!(found, line, "{text}");
                    assert_eq!(path, "app.conf.defines");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn non_utf8_defines_are_refused_with_position() {
        let error = parse_defines(&layer(b"a=1\nb=\xff\n")).expect_err("not UTF-8");
        assert_eq!(
            error.to_string(),
            "overlay #1: `app.conf.defines` is not UTF-8 text at line 2, column 3, so it cannot be read for macro values"
        );
    }
}
