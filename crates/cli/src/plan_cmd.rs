//! `vupdate state plan BASE..HEAD`: what merging HEAD over BASE would do, from the repo
//! alone or with a distribution's live facts (`facts`). The plan itself is
//! `vupdate_state::Plan::compute`, pure; this reads the two states and prints.
//!
//! Exit codes differ from the other state commands on purpose, so a CI job can tell a
//! broken pull request from a broken job: 2 only when HEAD is invalid, 1 for every other
//! failure (a revision that does not exist, a repository or distribution that cannot be
//! read), 0 otherwise.

mod facts;

use std::fmt;

use vupdate_state::plan::render;
use vupdate_state::{Facts, Plan, StateError, StateRepo};

use crate::args::{LiveArgs, PlanFormat, RepoArgs};
use crate::exit::InvalidInput;
use crate::state_cmd::{open, short};

/// Prints the plan of `range` (`BASE..HEAD`, or `BASE` with `head`).
pub fn run(
    repo: &RepoArgs,
    range: Option<&str>,
    head: Option<&str>,
    format: PlanFormat,
    live: &LiveArgs,
) -> anyhow::Result<()> {
    let plan = plan(repo, range, head, format, live).map_err(Failure::from_error)?;
    print!("{}", plan.output);
    if plan.valid {
        Ok(())
    } else {
        Err(InvalidInput::new(format!("HEAD `{}` is invalid (see the plan)", plan.head)).into())
    }
}

struct Printed {
    output: String,
    valid: bool,
    head: String,
}

fn plan(
    args: &RepoArgs,
    range: Option<&str>,
    head: Option<&str>,
    format: PlanFormat,
    live: &LiveArgs,
) -> anyhow::Result<Printed> {
    let (base_rev, head_rev) = parse_range(range, head)?;
    let repo = open(args, None)?;
    let base_id = repo.resolve(&base_rev)?.id;
    let head_id = repo.resolve(&head_rev)?.id;
    let base = load(&repo, &base_id)?;
    let head = load(&repo, &head_id)?;
    let facts = match &live.distribution {
        Some(url) => facts::fetch(url, live)?,
        None => Facts::default(),
    };
    let plan = Plan::compute(base.as_ref(), head.as_ref(), &facts);
    let (base_label, head_label) = (short(&base_id), short(&head_id));
    let output = match format {
        PlanFormat::Text => render::text(&plan, base_label, head_label),
        PlanFormat::Markdown => render::markdown(&plan, base_label, head_label),
        PlanFormat::Json => format!("{}\n", serde_json::to_string_pretty(&plan)?),
    };
    Ok(Printed {
        output,
        valid: plan.valid,
        head: head_rev,
    })
}

/// `BASE..HEAD`, `BASE HEAD`, or nothing (`HEAD~1..HEAD`).
fn parse_range(range: Option<&str>, head: Option<&str>) -> anyhow::Result<(String, String)> {
    let usage = |problem: &str| anyhow::anyhow!("argument `{}`: {problem}", range.unwrap_or(""));
    match (range, head) {
        (None, _) => Ok(("HEAD~1".to_owned(), "HEAD".to_owned())),
        (Some(range), None) if range.contains("...") => Err(usage(
            "`...` (from the merge base) is not supported; use BASE..HEAD",
        )),
        (Some(range), None) => match range.split_once("..") {
            Some((base, head)) => Ok((or_head(base), or_head(head))),
            None => Ok((range.to_owned(), "HEAD".to_owned())),
        },
        (Some(range), Some(_)) if range.contains("..") => {
            Err(usage("give either BASE..HEAD or BASE HEAD, not both"))
        }
        (Some(base), Some(head)) => Ok((base.to_owned(), head.to_owned())),
    }
}

/// An empty side of `A..B` means HEAD, as in Git.
fn or_head(rev: &str) -> String {
    if rev.is_empty() { "HEAD" } else { rev }.to_owned()
}

/// The state at a commit, or its validation problems.
fn load(
    repo: &StateRepo,
    id: &str,
) -> anyhow::Result<Result<vupdate_state::State, vupdate_state::ValidationErrors>> {
    match repo.load(id) {
        Ok(state) => Ok(Ok(state)),
        Err(StateError::InvalidCommit { errors, .. }) => Ok(Err(errors)),
        Err(error) => Err(error.into()),
    }
}

/// Any failure but an invalid HEAD: its whole message, as an error that maps to exit 1
/// (the state crate's invalid-input errors would otherwise map to 2).
#[derive(Debug)]
struct Failure(String);

impl Failure {
    fn from_error(error: anyhow::Error) -> anyhow::Error {
        anyhow::Error::new(Failure(format!("{error:#}")))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges_read_as_git_reads_them() {
        let cases = [
            (None, None, Some(("HEAD~1", "HEAD"))),
            (Some("main..pr"), None, Some(("main", "pr"))),
            (Some("main.."), None, Some(("main", "HEAD"))),
            (Some("main"), None, Some(("main", "HEAD"))),
            (Some("main"), Some("pr"), Some(("main", "pr"))),
            (Some("main...pr"), None, None),
            (Some("a..b"), Some("c"), None),
        ];
        for (range, head, expected) in cases {
            let got = parse_range(range, head).ok();
            let got = got.as_ref().map(|(b, h)| (b.as_str(), h.as_str()));
            assert_eq!(got, expected, "{range:?} {head:?}");
        }
    }
}
