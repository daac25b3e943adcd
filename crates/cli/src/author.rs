//! Who an edit is by: `--author`, else the GIT_AUTHOR_* variables, else git's own config.

use std::process::Command;

use anyhow::{Context, bail};
use vupdate_state::Author;

use crate::exit::InvalidInput;

/// Resolves the author of a commit the command is about to make.
pub fn resolve(flag: Option<&str>) -> anyhow::Result<Author> {
    if let Some(text) = flag {
        return parse(text)
            .map_err(|problem| InvalidInput::new(format!("--author {text:?}: {problem}")).into());
    }
    let from_env = (
        std::env::var("GIT_AUTHOR_NAME"),
        std::env::var("GIT_AUTHOR_EMAIL"),
    );
    if let (Ok(name), Ok(email)) = from_env {
        return Ok(Author { name, email });
    }
    match (git_config("user.name")?, git_config("user.email")?) {
        (Some(name), Some(email)) => Ok(Author { name, email }),
        _ => bail!(InvalidInput::new(
            "no author for the commit: pass --author \"Name <email>\", set GIT_AUTHOR_NAME and GIT_AUTHOR_EMAIL, or `git config user.name/user.email`"
        )),
    }
}

fn parse(text: &str) -> Result<Author, &'static str> {
    let (name, rest) = text.split_once('<').ok_or("expected `Name <email>`")?;
    let email = rest
        .strip_suffix('>')
        .ok_or("expected `Name <email>` ending with `>`")?;
    let name = name.trim();
    if name.is_empty() || email.trim().is_empty() {
        return Err("name and email must both be given, as `Name <email>`");
    }
    Ok(Author {
        name: name.to_owned(),
        email: email.trim().to_owned(),
    })
}

fn git_config(key: &str) -> anyhow::Result<Option<String>> {
    let output = Command::new("git")
        .args(["config", "--get", key])
        .output()
        .context("running `git config` to find the commit author")?;
    let value = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    Ok((output.status.success() && !value.is_empty()).then_some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_name_and_email() {
        let author = parse("Ada Lovelace <ada@example.com>").expect("valid");
        assert_eq!(
            (author.name.as_str(), author.email.as_str()),
            ("Ada Lovelace", "ada@example.com")
        );
        for bad in ["Ada", "<ada@example.com>", "Ada <>", "Ada <ada@example.com"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
