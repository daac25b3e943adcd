//! `vupdate state ...`: validate, show, history, diff, set-desired and revert; `plan` is
//! in `plan_cmd`.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::Path;

use vupdate_core::service::ServiceName;
use vupdate_state::{DesiredDiff, ListDiff, Revision, State, StateEdit, StateRepo};

use crate::args::{EditArgs, RepoArgs, ShowFormat, StateCommand};
use crate::author;
use crate::exit::InvalidInput;

/// Runs one `state` subcommand.
pub fn run(command: StateCommand) -> anyhow::Result<()> {
    match command {
        StateCommand::Validate { path } => validate(&path),
        StateCommand::Show { repo, rev, format } => show(&repo, rev.as_deref(), format),
        StateCommand::History { repo, limit } => history(&repo, limit),
        StateCommand::Diff { repo, from, to } => diff(&repo, &from, to.as_deref()),
        StateCommand::SetDesired {
            repo,
            edit,
            client,
            message,
            changes,
        } => set_desired(&repo, &edit, client, &message, &changes),
        StateCommand::Plan {
            repo,
            range,
            head,
            format,
            live,
        } => crate::plan_cmd::run(&repo, range.as_deref(), head.as_deref(), format, &live),
        StateCommand::Revert {
            repo,
            edit,
            rev,
            message,
        } => revert(&repo, &edit, &rev, message.as_deref()),
    }
}

fn validate(path: &Path) -> anyhow::Result<()> {
    let state = State::load_dir(path)?;
    println!(
        "{}: valid ({} services, {} desired developer versions, {} profiles)",
        path.display(),
        state.services.len(),
        state.desired.developer.len(),
        state.profiles.len()
    );
    Ok(())
}

fn show(args: &RepoArgs, rev: Option<&str>, format: ShowFormat) -> anyhow::Result<()> {
    let repo = open(args, None)?;
    let revision = match rev {
        Some(rev) => repo.resolve(rev)?,
        None => repo.head()?,
    };
    let state = repo.load(&revision.id)?;
    match format {
        ShowFormat::Names => state.services.keys().for_each(|name| println!("{name}")),
        ShowFormat::Text => print_state(&revision, &state),
    }
    Ok(())
}

fn print_state(revision: &Revision, state: &State) {
    println!("{}", describe(revision));
    println!("\n{} services declared", state.services.len());
    println!("\ndesired developer versions:");
    print_list(&state.desired.developer, |_| "");
    println!("\ndesired client versions:");
    print_list(&state.effective_client_versions(), |service| {
        if state.desired.client.contains_key(service) {
            ""
        } else {
            "  (follows its developer version)"
        }
    });
    println!("\nprofiles:");
    for (name, services) in &state.profiles {
        let services: Vec<&str> = services.iter().map(ServiceName::as_str).collect();
        println!("  {name}: {}", services.join(", "));
    }
}

fn print_list<V: Display>(
    list: &BTreeMap<ServiceName, V>,
    note: impl Fn(&ServiceName) -> &'static str,
) {
    if list.is_empty() {
        println!("  (none)");
    }
    let width = list.keys().map(|s| s.as_str().len()).max().unwrap_or(0);
    for (service, version) in list {
        println!("  {:width$}  {version}{}", service.as_str(), note(service));
    }
}

fn history(args: &RepoArgs, limit: usize) -> anyhow::Result<()> {
    let repo = open(args, None)?;
    // One more than shown, so the oldest entry shown can be compared with its predecessor.
    let entries = repo.history(limit.saturating_add(1))?;
    if entries.is_empty() {
        println!(
            "no revision of branch `{}` changed the desired versions",
            repo.branch()
        );
    }
    for (index, entry) in entries.iter().take(limit).enumerate() {
        println!("{}", describe(&entry.revision));
        match (
            &entry.desired,
            entries.get(index + 1).map(|older| &older.desired),
        ) {
            (Err(errors), _) => println!(
                "    (desired versions invalid at this revision: {} problems)",
                errors.len()
            ),
            (Ok(new), Some(Ok(old))) => print_diff(&vupdate_state::Desired::diff(old, new), "    "),
            (Ok(_), _) => {}
        }
    }
    Ok(())
}

fn diff(args: &RepoArgs, from: &str, to: Option<&str>) -> anyhow::Result<()> {
    let repo = open(args, None)?;
    let to = match to {
        Some(to) => to.to_owned(),
        None => repo.head()?.id,
    };
    let diff = repo.diff(from, &to)?;
    if diff.is_empty() {
        println!("no change in the desired versions");
    }
    print_diff(&diff, "");
    Ok(())
}

fn print_diff(diff: &DesiredDiff, indent: &str) {
    print_list_diff("developer", &diff.developer, indent);
    print_list_diff("client", &diff.client, indent);
}

fn print_list_diff<V: Display>(list: &str, diff: &ListDiff<V>, indent: &str) {
    for (service, (old, new)) in &diff.changed {
        println!("{indent}{list} {service}: {old} -> {new}");
    }
    for (service, version) in &diff.added {
        println!("{indent}{list} {service}: added {version}");
    }
    for (service, version) in &diff.removed {
        println!("{indent}{list} {service}: removed (was {version})");
    }
}

fn set_desired(
    args: &RepoArgs,
    edit: &EditArgs,
    client: bool,
    message: &str,
    changes: &[String],
) -> anyhow::Result<()> {
    let changes = parse_changes(changes)?;
    let author = author::resolve(edit.author.as_deref())?;
    let repo = open(args, edit.push.as_deref())?;
    let parent = match &edit.expect {
        Some(rev) => repo.resolve(rev)?,
        None => repo.head()?,
    };
    let desired = repo.load(&parent.id)?.desired;
    let change = if client {
        StateEdit::SetDesiredClient(apply_changes(desired.client, &changes, "--client")?)
    } else {
        StateEdit::SetDesiredDeveloper(apply_changes(desired.developer, &changes, "")?)
    };
    let revision = repo.edit(change, &parent.id, &author, message)?;
    report_commit(&repo, &parent, &revision);
    Ok(())
}

/// `SERVICE=VERSION` (set) or `SERVICE=` (remove), with the version still unparsed.
fn parse_changes(changes: &[String]) -> anyhow::Result<Vec<(ServiceName, Option<String>)>> {
    changes
        .iter()
        .map(|change| {
            let invalid =
                |problem: String| InvalidInput::new(format!("argument `{change}`: {problem}"));
            let (service, version) = change.split_once('=').ok_or_else(|| {
                invalid("expected SERVICE=VERSION (or SERVICE= to remove)".into())
            })?;
            let service = service
                .parse::<ServiceName>()
                .map_err(|e| invalid(e.to_string()))?;
            let version = (!version.is_empty()).then(|| version.to_owned());
            Ok((service, version))
        })
        .collect()
}

fn apply_changes<V: std::str::FromStr<Err: Display>>(
    mut list: BTreeMap<ServiceName, V>,
    changes: &[(ServiceName, Option<String>)],
    flag: &str,
) -> anyhow::Result<BTreeMap<ServiceName, V>> {
    for (service, version) in changes {
        match version {
            None => {
                if list.remove(service).is_none() {
                    let list_name = if flag.is_empty() {
                        "developer"
                    } else {
                        "client"
                    };
                    return Err(InvalidInput::new(format!(
                        "argument `{service}=`: `{service}` has no desired {list_name} version to remove"
                    ))
                    .into());
                }
            }
            Some(text) => {
                let version = text
                    .parse::<V>()
                    .map_err(|e| InvalidInput::new(format!("argument `{service}={text}`: {e}")))?;
                list.insert(service.clone(), version);
            }
        }
    }
    Ok(list)
}

fn revert(
    args: &RepoArgs,
    edit: &EditArgs,
    rev: &str,
    message: Option<&str>,
) -> anyhow::Result<()> {
    let author = author::resolve(edit.author.as_deref())?;
    let repo = open(args, edit.push.as_deref())?;
    let parent = match &edit.expect {
        Some(rev) => repo.resolve(rev)?,
        None => repo.head()?,
    };
    let revision = repo.revert(rev, &parent.id, &author, message)?;
    report_commit(&repo, &parent, &revision);
    Ok(())
}

fn report_commit(repo: &StateRepo, parent: &Revision, revision: &Revision) {
    if revision.id == parent.id {
        println!(
            "nothing to change: branch `{}` stays at {}",
            repo.branch(),
            short(&parent.id)
        );
        return;
    }
    println!("{}", describe(revision));
    if let Some(remote) = repo.remote() {
        println!("pushed to `{remote}` branch `{}`", repo.branch());
    }
}

pub(crate) fn open(args: &RepoArgs, push: Option<&str>) -> anyhow::Result<StateRepo> {
    let branch = match &args.branch {
        Some(branch) => branch.clone(),
        None => StateRepo::checked_out_branch(&args.repo).unwrap_or_else(|| "main".to_owned()),
    };
    let repo = StateRepo::open(&args.repo, &branch)?;
    Ok(match push {
        Some(remote) => repo.with_remote(remote)?,
        None => repo,
    })
}

fn describe(revision: &Revision) -> String {
    format!(
        "{}  {}  {} <{}>  {}",
        short(&revision.id),
        revision.time.format("%Y-%m-%d %H:%M:%S %z"),
        revision.author.name,
        revision.author.email,
        revision.summary
    )
}

pub(crate) fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vupdate_core::version::{ClientVersion, DeveloperVersion};

    #[test]
    fn changes_set_and_remove() {
        let changes = parse_changes(&["api=jetto-1.2".into(), "web=".into()]).expect("valid");
        let list: BTreeMap<ServiceName, DeveloperVersion> = [
            (
                "api".parse().expect("name"),
                "jetto-1.1".parse().expect("version"),
            ),
            (
                "web".parse().expect("name"),
                "jetto-1.0".parse().expect("version"),
            ),
        ]
        .into();
        let list = apply_changes(list, &changes, "").expect("applies");
        let printed: Vec<String> = list.iter().map(|(s, v)| format!("{s}={v}")).collect();
        assert_eq!(printed, ["api=jetto-1.2"]);
    }

    #[test]
    fn bad_changes_name_the_argument() {
        for (arg, expected) in [
            ("api", "argument `api`: expected SERVICE=VERSION"),
            ("a b=jetto-1", "argument `a b=jetto-1`: service name `a b`"),
        ] {
            let error = parse_changes(&[arg.to_owned()]).expect_err(arg).to_string();
            assert!(error.starts_with(expected), "{error}");
        }
        let changes = parse_changes(&["api=1.2".into()]).expect("syntax is fine");
        let error = apply_changes(BTreeMap::<_, ClientVersion>::new(), &changes, "--client")
            .expect_err("malformed version")
            .to_string();
        assert!(
            error.contains("argument `api=1.2`: version `1.2`"),
            "{error}"
        );
        let removal = parse_changes(&["api=".into()]).expect("syntax is fine");
        let error = apply_changes(BTreeMap::<_, DeveloperVersion>::new(), &removal, "")
            .expect_err("nothing to remove")
            .to_string();
        assert!(
            error.contains("has no desired developer version"),
            "{error}"
        );
    }
}
