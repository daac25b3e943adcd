//! `waves:` of `rollout.yaml` (common and per service): each wave named once, with a
//! selector, a human duration and a share or count of failures.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_saphyr::Spanned;

use crate::schema::Problems;
use crate::schema::raw::{RawMaxFailures, RawWave};
use crate::waves::{MaxFailures, Wave};

/// The waves of one list of `path`; a wave with a problem is recorded and left out.
pub(super) fn convert(
    path: &str,
    raw: Spanned<Vec<RawWave>>,
    problems: &mut Problems,
) -> Vec<Wave> {
    if raw.value.is_empty() {
        problems.at(
            path,
            &raw.referenced,
            "waves is empty: list at least one wave, or leave `waves` out",
        );
    }
    let mut names = BTreeSet::new();
    let mut waves = Vec::new();
    for wave in raw.value {
        let name = &wave.name;
        if name.value.trim().is_empty() {
            problems.at(path, &name.referenced, "a wave's name is empty");
        } else if !names.insert(name.value.clone()) {
            problems.at(
                path,
                &name.referenced,
                format!("wave `{}` is named twice in this list", name.value),
            );
        }
        if let Some(wave) = convert_wave(path, wave, problems) {
            waves.push(wave);
        }
    }
    waves
}

fn convert_wave(path: &str, raw: RawWave, problems: &mut Problems) -> Option<Wave> {
    let before = problems.list.len();
    let name = raw.name.value;
    let mut instances = Vec::new();
    if let Some(list) = raw.instances {
        if list.value.is_empty() {
            problems.at(
                path,
                &list.referenced,
                format!(
                    "wave `{name}`: instances is empty: name at least one pattern, or leave it out"
                ),
            );
        }
        for pattern in list.value {
            if pattern.value.is_empty() {
                problems.at(
                    path,
                    &pattern.referenced,
                    format!("wave `{name}`: an instance pattern is empty"),
                );
            }
            instances.push(pattern.value);
        }
    }
    let mut labels = BTreeMap::new();
    if let Some(entries) = raw.labels {
        if entries.value.0.is_empty() {
            problems.at(
                path,
                &entries.referenced,
                format!("wave `{name}`: labels is empty: name at least one label, or leave it out"),
            );
        }
        for (key, value) in entries.value.0 {
            if key.value.is_empty() {
                problems.at(
                    path,
                    &key.referenced,
                    format!("wave `{name}`: a label's name is empty"),
                );
            }
            if value.value.is_empty() {
                problems.at(
                    path,
                    &value.referenced,
                    format!("wave `{name}`: label `{}` has an empty value", key.value),
                );
            }
            labels.insert(key.value, value.value);
        }
    }
    if instances.is_empty() && labels.is_empty() {
        problems.at(
            path,
            &raw.name.referenced,
            format!("wave `{name}` selects no instance: give `instances` (name patterns) and/or `labels`"),
        );
    }
    let healthy_for = match raw.healthy_for {
        None => Duration::ZERO,
        Some(text) => humantime::parse_duration(&text.value).unwrap_or_else(|error| {
            problems.at(
                path,
                &text.referenced,
                format!(
                    "wave `{name}`: healthyFor `{}` is not a duration ({error}); write e.g. `30s`, `10m` or `1h`",
                    text.value
                ),
            );
            Duration::ZERO
        }),
    };
    let max_failures = match raw.max_failures {
        None => MaxFailures::default(),
        Some(raw) => max_failures(&raw.value).unwrap_or_else(|message| {
            problems.at(path, &raw.referenced, format!("wave `{name}`: {message}"));
            MaxFailures::default()
        }),
    };
    (problems.list.len() == before).then_some(Wave {
        name,
        instances,
        labels,
        healthy_for,
        max_failures,
    })
}

/// `maxFailures` as written: `0%`..`100%`, or a count of instances.
fn max_failures(raw: &RawMaxFailures) -> Result<MaxFailures, String> {
    let text = match raw {
        RawMaxFailures::Count(count) => {
            return u32::try_from(*count)
                .map(MaxFailures::Count)
                .map_err(|_| format!("maxFailures {count} is too large"));
        }
        RawMaxFailures::Text(text) => text.trim(),
    };
    let wrong = || {
        format!(
            "maxFailures `{text}` is neither a share from `0%` to `100%` nor a count of instances such as `2`"
        )
    };
    match text.strip_suffix('%') {
        Some(percent) => match percent.trim().parse::<u8>() {
            Ok(percent) if percent <= 100 => Ok(MaxFailures::Share(percent)),
            _ => Err(wrong()),
        },
        None => text
            .parse::<u32>()
            .map(MaxFailures::Count)
            .map_err(|_| wrong()),
    }
}
