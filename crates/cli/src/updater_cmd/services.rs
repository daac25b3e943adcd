//! `--services a,b-role`: which services this updater runs, read by the dash rule
//! (`vupdate_core::service`): the text after the last `-` is a role when the whole text
//! is not a known service. A name without a dash needs nothing known. For the others, the
//! names known here come first (the config's `services` and the cached desired
//! versions); only when they do not settle it is the distribution asked for the services
//! it has desired versions of (retried until it answers).

use std::collections::BTreeSet;

use vupdate_client::ClientError;
use vupdate_core::service::{ServiceInstance, ServiceNameError};
use vupdate_updater::agent::DesiredVersions;
use vupdate_updater::config::UpdaterConfig;
use vupdate_updater::remote::Api;

use crate::exit::InvalidInput;

/// One item read, or `None` when the names known do not settle it.
fn read_item(
    text: &str,
    known: &BTreeSet<String>,
) -> Result<Option<ServiceInstance>, ServiceNameError> {
    if !text.contains('-') {
        return Ok(Some(ServiceInstance {
            service: text.parse()?,
            role: None,
        }));
    }
    match ServiceInstance::parse(text, |name| known.contains(name)) {
        Ok(instance) => Ok(Some(instance)),
        Err(ServiceNameError::Unknown(_)) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Every item of `list`, or the items `known` does not settle.
fn read_list(
    list: &str,
    known: &BTreeSet<String>,
) -> Result<Result<Vec<ServiceInstance>, Vec<String>>, InvalidInput> {
    let mut read = Vec::new();
    let mut unsettled = Vec::new();
    for item in list
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        match read_item(item, known) {
            Ok(Some(instance)) => read.push(instance),
            Ok(None) => unsettled.push(item.to_owned()),
            Err(error) => return Err(InvalidInput::new(format!("--services: {error}"))),
        }
    }
    if !unsettled.is_empty() {
        return Ok(Err(unsettled));
    }
    if read.is_empty() {
        return Err(InvalidInput::new(
            "--services: give at least one service, e.g. `--services api,worker-eu`",
        ));
    }
    let mut seen = BTreeSet::new();
    if let Some(twice) = read
        .iter()
        .find(|instance| !seen.insert(instance.to_string()))
    {
        return Err(InvalidInput::new(format!(
            "--services: `{twice}` is listed twice"
        )));
    }
    Ok(Ok(read))
}

/// The services `list` names, for `config`; `cached` are the last desired versions kept.
pub async fn resolve(
    list: &str,
    config: &UpdaterConfig,
    cached: Option<&DesiredVersions>,
    api: &Api,
) -> anyhow::Result<Vec<ServiceInstance>> {
    let mut known: BTreeSet<String> = config
        .services
        .iter()
        .map(|instance| instance.service.to_string())
        .chain(
            cached
                .into_iter()
                .flat_map(|map| map.keys().map(ToString::to_string)),
        )
        .collect();
    let unsettled = match read_list(list, &known)? {
        Ok(services) => return Ok(services),
        Err(unsettled) => unsettled,
    };
    tracing::info!(items = %unsettled.join(","), "asking the distribution which services it knows, to read these");
    let desired = api
        .retrying("clientDesiredVersions", |client| async move {
            client.client_desired_versions(None).await
        })
        .await
        .map_err(|error: ClientError| {
            anyhow::Error::new(error).context(format!(
                "cannot read --services `{}`: asking the distribution which services it knows failed",
                unsettled.join(",")
            ))
        })?;
    known.extend(desired.keys().map(ToString::to_string));
    match read_list(list, &known)? {
        Ok(services) => Ok(services),
        Err(unknown) => Err(InvalidInput::new(format!(
            "--services: {} names no service with a desired version, neither whole nor as `service-role`; \
             give it in the config's `services` as `{{service: NAME, role: ROLE}}` to say which part is the role",
            unknown
                .iter()
                .map(|item| format!("`{item}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    fn names(list: Vec<ServiceInstance>) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn names_without_a_dash_need_nothing_known() {
        let read = read_list("api, web ,", &known(&[]))
            .expect("valid")
            .expect("settled");
        assert_eq!(names(read), ["api", "web"]);
    }

    #[test]
    fn dashes_are_read_against_the_names_known() {
        let read = read_list(
            "payment-api,payment-api-eu,api-reader",
            &known(&["payment-api", "api"]),
        )
        .expect("valid")
        .expect("settled");
        assert_eq!(
            read.iter()
                .map(|i| (
                    i.service.to_string(),
                    i.role.as_ref().map(ToString::to_string)
                ))
                .collect::<Vec<_>>(),
            [
                ("payment-api".to_owned(), None),
                ("payment-api".to_owned(), Some("eu".to_owned())),
                ("api".to_owned(), Some("reader".to_owned())),
            ]
        );
        let unsettled = read_list("api,worker-eu", &known(&["api"]))
            .expect("valid")
            .expect_err("unsettled");
        assert_eq!(unsettled, ["worker-eu"]);
    }

    #[test]
    fn bad_lists_are_invalid_input() {
        let cases = [
            ("", "give at least one service"),
            ("api,api", "`api` is listed twice"),
            ("-api", "not valid"),
            ("api/x", "not valid"),
        ];
        for (list, expected) in cases {
            let error = read_list(list, &known(&["api"]))
                .expect_err(list)
                .to_string();
            assert!(error.contains(expected), "{list}: {error}");
        }
    }
}
