//! The spelling rules for names and paths that appear in the state repo, with their messages.

use vupdate_core::macros::is_macro_name;
use vupdate_core::service::ServiceName;
use vupdate_core::version::is_distribution_name;

/// A profile name follows the service-name alphabet (letters, digits, `-`, `_`, `.`).
pub(crate) fn check_profile_name(name: &str) -> Result<(), String> {
    name.parse::<ServiceName>().map(drop).map_err(|_| {
        format!(
            "profile name `{name}` is not valid: use letters, digits, `-`, `_` or `.`, starting with a letter or digit, at most 64 characters"
        )
    })
}

/// A distribution name is what a version starts with: letters, digits, `.`, `_` or `-`.
pub(crate) fn check_distribution_name(name: &str, what: &str) -> Result<(), String> {
    if is_distribution_name(name) && name.len() <= 64 {
        Ok(())
    } else {
        Err(format!(
            "{what} `{name}` is not a valid distribution name: use letters, digits, `.`, `_` or `-`, at most 64 characters"
        ))
    }
}

/// A repository name is a directory name under `source/` or `settings/`.
pub(crate) fn check_repository_name(name: &str) -> Result<(), String> {
    name.parse::<ServiceName>().map(drop).map_err(|_| {
        format!(
            "repository name `{name}` is not valid: it is a directory name, so use letters, digits, `-`, `_` or `.`, starting with a letter or digit"
        )
    })
}

/// A macro name as written between `%%` in build commands and files.
pub(crate) fn check_macro_name(name: &str) -> Result<(), String> {
    if is_macro_name(name) {
        Ok(())
    } else {
        Err(format!(
            "macro name `{name}` is not valid: use letters, digits, `_`, `.` or `-` (it is written `%%{name}%%`)"
        ))
    }
}

/// An environment variable name.
pub(crate) fn check_environment_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    let valid = !bytes.is_empty()
        && !bytes[0].is_ascii_digit()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "environment variable name `{name}` is not valid: use letters, digits and `_`, not starting with a digit"
        ))
    }
}

/// A path inside an image or a repository: relative, and never leaving it through `..`.
pub(crate) fn check_relative_path(path: &str, what: &str) -> Result<(), String> {
    let escapes = path.split(['/', '\\']).any(|part| part == "..");
    if path.trim().is_empty() || path.starts_with('/') || path.starts_with('\\') || escapes {
        Err(format!(
            "{what} `{path}` must be a relative path without `..`"
        ))
    } else {
        Ok(())
    }
}

/// A URL this distribution calls: `http://` or `https://`.
pub(crate) fn check_http_url(url: &str, what: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !url.contains(char::is_whitespace) => Ok(()),
        _ => Err(format!("{what} `{url}` must be an http:// or https:// URL")),
    }
}

/// The name of a secret kept on the distribution (never the secret itself).
pub(crate) fn check_secret_name(name: &str) -> Result<(), String> {
    // Secret names share the distribution names' alphabet (they usually name one).
    if is_distribution_name(name) && name.len() <= 64 {
        Ok(())
    } else {
        Err(format!(
            "accessTokenSecret `{}` must name a secret kept on the distribution (letters, digits, `.`, `_` or `-`, at most 64 characters), never hold the token itself",
            shorten(name)
        ))
    }
}

/// Quotes at most the start of a value that might be a secret pasted by mistake.
fn shorten(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(8).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths_follow_their_rules() {
        assert!(check_profile_name("self").is_ok());
        assert!(check_profile_name("eu west").is_err());
        assert!(check_distribution_name("jetto-test.1", "provider").is_ok());
        assert!(check_distribution_name("", "provider").is_err());
        assert!(check_macro_name("db.host-1").is_ok());
        assert!(check_macro_name("a b").is_err());
        assert!(check_environment_name("JAVA_OPTS").is_ok());
        assert!(check_environment_name("1X").is_err());
        assert!(check_environment_name("A-B").is_err());
        for good in ["keys/api.pem", "a/./b", "a..b/c"] {
            assert!(check_relative_path(good, "p").is_ok(), "{good}");
        }
        for bad in ["/etc/passwd", "../x", "a/../../b", "", "a\\..\\b"] {
            assert!(check_relative_path(bad, "p").is_err(), "{bad}");
        }
        assert!(check_http_url("https://jetto.example.com/graphql", "url").is_ok());
        assert!(check_http_url("ftp://x", "url").is_err());
        assert!(check_http_url("https://", "url").is_err());
        assert!(check_secret_name("jetto-token").is_ok());
        let pasted = "eyJhbGciOiJIUzI1NiJ9.eyJhY2NvdW50IjoiYWRtaW4ifQ.c2lnbmF0dXJlc2lnbmF0dXJlc2ln";
        let message = check_secret_name(pasted).expect_err("a token is no secret name");
        assert!(
            !message.contains("eyJhY2Nv"),
            "the message must not repeat the token: {message}"
        );
    }
}
