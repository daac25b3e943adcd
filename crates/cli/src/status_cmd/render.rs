//! `vupdate status` as readable text: a line on the state repo, a table of services, then
//! rollouts, known-bad versions and hosts not on the commit, each only when there are any.

use std::fmt::Write as _;

use super::fleet::{Fleet, Service, hosts_text, short};

/// The whole text, ending with a newline.
pub fn text(fleet: &Fleet) -> String {
    let status = &fleet.status;
    let mut out = String::new();
    let commit = status
        .state_repo
        .commit
        .as_deref()
        .map_or("none yet", short);
    let synced = if status.synced {
        "synced"
    } else {
        "not synced"
    };
    let _ = writeln!(
        out,
        "{}: state commit {commit} of {}, {synced}",
        fleet.distribution, status.state_repo.branch
    );
    if let Some(error) = &status.state_repo.fetch_error {
        let _ = writeln!(out, "the last fetch of the state repo failed: {error}");
    }
    let rows: Vec<[String; 4]> = status.services.iter().map(row).collect();
    let header = [
        "SERVICE".to_owned(),
        "SYNC".to_owned(),
        "DESIRED".to_owned(),
        "ON DESIRED".to_owned(),
    ];
    let widths: Vec<usize> = (0..4)
        .map(|c| {
            rows.iter()
                .chain(std::iter::once(&header))
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in std::iter::once(&header).chain(&rows) {
        let line = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect::<Vec<_>>()
            .join("  ");
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let live: Vec<_> = status
        .rollouts
        .iter()
        .filter(|r| r.state != "done")
        .collect();
    if !live.is_empty() {
        let _ = writeln!(out, "rollouts:");
        for r in live {
            let _ = write!(
                out,
                "  {} {} -> {}: {}, wave {}",
                r.service, r.from_version, r.to_version, r.state, r.current_wave
            );
            if let Some(why) = &r.halted_because {
                let _ = write!(out, " ({why})");
            }
            out.push('\n');
        }
    }
    if !status.known_bad_versions.is_empty() {
        let _ = writeln!(out, "known-bad versions:");
        for k in &status.known_bad_versions {
            let _ = writeln!(out, "  {} {}: {}", k.service, k.version, k.reason);
        }
    }
    if let (Some(target), Some(hosts)) = (&fleet.target, &fleet.not_on_target)
        && !hosts.is_empty()
    {
        let _ = writeln!(out, "hosts not on {}: {}", short(target), hosts_text(hosts));
    }
    out
}

/// SERVICE, SYNC, DESIRED, ON DESIRED ("2/3").
fn row(service: &Service) -> [String; 4] {
    let on = service.instances.iter().filter(|i| i.on_desired).count();
    let sync = match service.held_back {
        Some(_) => "held back".to_owned(),
        None => service.sync.to_lowercase().replace('_', " "),
    };
    [
        service.service.clone(),
        sync,
        service
            .desired_client_version
            .clone()
            .unwrap_or_else(|| "-".to_owned()),
        format!("{on}/{}", service.instances.len()),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_table_then_only_the_sections_that_have_lines() {
        let fleet: Fleet = serde_json::from_value(json!({
            "distribution": "acme",
            "status": {
                "synced": false,
                "stateRepo": {"branch": "main", "commit": "3f1c0a9e5b7d2c4e6f8a", "fetchError": null},
                "services": [
                    {"service": "api", "sync": "OUT_OF_SYNC", "desiredClientVersion": "acme-1.1.0",
                     "heldBack": null, "builds": [], "instances": [
                        {"instance": "vm-1", "role": null, "version": "acme-1.1.0", "onDesired": true, "updateToVersion": null, "updateError": null},
                        {"instance": "vm-2", "role": null, "version": "acme-1.0.0", "onDesired": false, "updateToVersion": null, "updateError": null}]},
                    {"service": "web-frontend", "sync": "SYNCED", "desiredClientVersion": "acme-2.0.0",
                     "heldBack": null, "builds": [], "instances": []},
                ],
                "rollouts": [{"service": "api", "fromVersion": "acme-1.0.0", "toVersion": "acme-1.1.0",
                              "state": "rolling", "currentWave": "canary", "haltedBecause": null}],
                "knownBadVersions": [],
            },
            "target": "3f1c0a9e5b7d2c4e6f8a",
            "notOnTarget": [{"instance": "vm-2", "stateCommit": null}],
        }))
        .expect("a fleet");
        assert_eq!(
            text(&fleet),
            "acme: state commit 3f1c0a9e5b7d of main, not synced\n\
             SERVICE       SYNC         DESIRED     ON DESIRED\n\
             api           out of sync  acme-1.1.0  1/2\n\
             web-frontend  synced       acme-2.0.0  0/0\n\
             rollouts:\n  api acme-1.0.0 -> acme-1.1.0: rolling, wave canary\n\
             hosts not on 3f1c0a9e5b7d: vm-2 (commit unknown)\n"
        );
    }
}
