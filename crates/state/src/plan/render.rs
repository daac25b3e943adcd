//! A [`Plan`] as text for a terminal and as Markdown for a pull request's comment.

use std::fmt::Write;

use super::{Change, ImageNeed, Plan, PlanProblem, RoleUpdate, ServicePlan, VersionChange};

/// The plan as plain text; `base` and `head` name the two revisions.
pub fn text(plan: &Plan, base: &str, head: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "plan {base}..{head}: {}", headline(plan));
    if !plan.valid {
        for problem in &plan.problems {
            let _ = writeln!(out, "  {}", problem_line(problem));
        }
        return out;
    }
    for problem in &plan.base_problems {
        let _ = writeln!(
            out,
            "  base is invalid, taken as empty: {}",
            problem_line(problem)
        );
    }
    for service in &plan.services {
        let _ = writeln!(out, "\n{}: {}", service.service, change_words(service));
        for line in details(service) {
            let _ = writeln!(out, "  {line}");
        }
    }
    if plan.common_settings_changed {
        let _ = writeln!(out, "\ncommon.yaml: build settings of every service change");
    }
    if !plan.profiles.is_empty() {
        let _ = writeln!(out, "\nprofiles:");
        for profile in &plan.profiles {
            let _ = writeln!(
                out,
                "  {}: {}",
                profile.profile,
                members(&profile.added, &profile.removed)
            );
        }
    }
    if !plan.unknown.is_empty() {
        let _ = writeln!(out, "\nnot known:");
        for unknown in &plan.unknown {
            let _ = writeln!(out, "  {unknown}");
        }
    }
    out
}

/// The plan as Markdown, to post as a pull request's comment.
pub fn markdown(plan: &Plan, base: &str, head: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### vupdate plan `{base}..{head}`\n");
    if !plan.valid {
        let _ = writeln!(
            out,
            "**HEAD is invalid**: merging it would change nothing until fixed.\n"
        );
        for problem in &plan.problems {
            let _ = writeln!(out, "- `{}`", problem_line(problem));
        }
        return out;
    }
    let _ = writeln!(out, "{}\n", capitalised(&headline(plan)));
    for problem in &plan.base_problems {
        let _ = writeln!(
            out,
            "- base is invalid, taken as empty: `{}`",
            problem_line(problem)
        );
    }
    let warnings: Vec<&ServicePlan> = plan
        .services
        .iter()
        .filter(|s| !s.known_bad.is_empty())
        .collect();
    for service in warnings {
        for bad in &service.known_bad {
            let _ = writeln!(
                out,
                "> [!WARNING]\n> `{}` {} is known to be bad: {}\n",
                service.service, bad.version, bad.reason
            );
        }
    }
    for service in plan.services.iter().filter(|s| !s.waves.is_empty()) {
        let _ = writeln!(out, "> `{}` {}\n", service.service, waves_words(service));
    }
    if !plan.services.is_empty() {
        let _ = writeln!(
            out,
            "| service | change | developer | client | instances to update | consumers |"
        );
        let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- |");
        for service in &plan.services {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} |",
                service.service,
                change_words(service),
                cell(service.developer.as_ref(), service.developer_image),
                cell(service.client.as_ref(), service.client_image),
                instances_cell(service.instances.as_deref()),
                if service.consumers.is_empty() {
                    "".to_owned()
                } else {
                    service.consumers.join(", ")
                },
            );
        }
        let _ = writeln!(out);
    }
    if plan.common_settings_changed {
        let _ = writeln!(
            out,
            "- `common.yaml`: build settings of every service change"
        );
    }
    for profile in &plan.profiles {
        let _ = writeln!(
            out,
            "- profile `{}`: {}",
            profile.profile,
            members(&profile.added, &profile.removed)
        );
    }
    if !plan.unknown.is_empty() {
        let _ = writeln!(out, "\nNot known: {}.", plan.unknown.join("; "));
    }
    out
}

fn headline(plan: &Plan) -> String {
    if !plan.valid {
        return format!("HEAD is invalid ({} problems)", plan.problems.len());
    }
    let count = plan.services.len();
    let mut line = match count {
        0 => "no service changes".to_owned(),
        1 => "1 service changes".to_owned(),
        n => format!("{n} services change"),
    };
    let bad = plan.known_bad_count();
    if bad > 0 {
        let _ = write!(
            line,
            ", {bad} known-bad version{} desired again",
            if bad == 1 { "" } else { "s" }
        );
    }
    line
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn problem_line(problem: &PlanProblem) -> String {
    match (problem.line, problem.column) {
        (Some(line), Some(column)) => {
            format!("{}:{line}:{column}: {}", problem.path, problem.message)
        }
        _ => format!("{}: {}", problem.path, problem.message),
    }
}

fn change_words(service: &ServicePlan) -> String {
    let mut words = match (service.change, &service.renamed_from) {
        (Change::Renamed, Some(from)) => vec![format!("renamed from {from}")],
        (Change::Added, _) => vec!["added".to_owned()],
        (Change::Removed, _) => vec!["removed".to_owned()],
        _ => Vec::new(),
    };
    if service.settings_changed {
        words.push("settings change".to_owned());
    }
    if !service.profiles_joined.is_empty() {
        words.push(format!("joins {}", service.profiles_joined.join(", ")));
    }
    if !service.profiles_left.is_empty() {
        words.push(format!("leaves {}", service.profiles_left.join(", ")));
    }
    if words.is_empty() {
        words.push("versions change".to_owned());
    }
    words.join("; ")
}

fn details(service: &ServicePlan) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(change) = &service.developer {
        lines.push(format!(
            "developer {}{}",
            versions(change),
            image(service.developer_image)
        ));
    }
    if let Some(change) = &service.client {
        lines.push(format!(
            "client {}{}",
            versions(change),
            image(service.client_image)
        ));
        lines.push(format!(
            "instances to update: {}",
            instances_cell(service.instances.as_deref())
        ));
        if !service.waves.is_empty() {
            lines.push(waves_words(service));
        }
    }
    if !service.consumers.is_empty() {
        lines.push(format!(
            "consumers receiving it: {}",
            service.consumers.join(", ")
        ));
    }
    for bad in &service.known_bad {
        lines.push(format!(
            "WARNING: {} is known to be bad: {}",
            bad.version, bad.reason
        ));
    }
    lines
}

/// `goes out by waves: canary first, then early, rest`.
fn waves_words(service: &ServicePlan) -> String {
    match service.waves.split_first() {
        None => String::new(),
        Some((first, [])) => format!("goes out by waves: `{first}` only"),
        Some((first, rest)) => format!(
            "goes out by waves: `{first}` first, then {}",
            rest.iter()
                .map(|wave| format!("`{wave}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn versions(change: &VersionChange) -> String {
    match (&change.from, &change.to) {
        (Some(from), Some(to)) => format!("{from} -> {to}"),
        (None, Some(to)) => format!("(none) -> {to}"),
        (Some(from), None) => format!("{from} -> (none)"),
        (None, None) => "(none)".to_owned(),
    }
}

fn image(need: Option<ImageNeed>) -> &'static str {
    match need {
        None => "",
        Some(ImageNeed::Present) => " (image present)",
        Some(ImageNeed::Build) => " (build needed)",
        Some(ImageNeed::Download) => " (downloaded from its provider)",
        Some(ImageNeed::Unknown) => " (image not known)",
    }
}

fn cell(change: Option<&VersionChange>, need: Option<ImageNeed>) -> String {
    change
        .map(|change| format!("{}{}", versions(change), image(need)).replace("->", "→"))
        .unwrap_or_default()
}

fn instances_cell(instances: Option<&[RoleUpdate]>) -> String {
    let Some(roles) = instances else {
        return "not known".to_owned();
    };
    if roles.is_empty() {
        return "none".to_owned();
    }
    roles
        .iter()
        .map(|role| {
            let name = role.role.as_deref().unwrap_or("no role");
            format!("{name}: {}", named_instances(&role.instances))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// How many instances of a role a text or Markdown plan names; JSON has them all.
const NAMED_INSTANCES: usize = 10;

/// `instances`, the first [`NAMED_INSTANCES`] by name and a count of the rest: a fleet of
/// thousands would otherwise make a pull request comment longer than Git hosts accept.
fn named_instances(instances: &[String]) -> String {
    if instances.len() <= NAMED_INSTANCES {
        return instances.join(", ");
    }
    format!(
        "{} and {} more ({} in all)",
        instances[..NAMED_INSTANCES].join(", "),
        instances.len() - NAMED_INSTANCES,
        instances.len()
    )
}

fn members(added: &[String], removed: &[String]) -> String {
    added
        .iter()
        .map(|s| format!("+{s}"))
        .chain(removed.iter().map(|s| format!("-{s}")))
        .collect::<Vec<_>>()
        .join(" ")
}
