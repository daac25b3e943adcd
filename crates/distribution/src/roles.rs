//! The service and role of what updaters send, and of what older updaters stored.
//!
//! Updaters send a service and its role apart (`service: worker, role: eu`, or
//! `role: null` for none). One from before roles had a field of their own sends
//! `service: worker-eu` and leaves `role` out altogether; its name is read by the dash
//! rule of `vupdate_core::service` against the services the state in force knows, the
//! rule that made the name. [`split_stored`] reads what such updaters stored the same way,
//! once, when the distribution starts.

use std::sync::Arc;

use async_graphql::MaybeUndefined;
use tokio::sync::watch;
use vupdate_core::service::{Role, ServiceInstance, ServiceName};
use vupdate_state::State;
use vupdate_store::{RoleSplit, Store, StoreError};

use crate::graphql::parse_arg;
use crate::http::ApiError;
use crate::intake::LogIntake;
use crate::watcher::InForce;

/// Whether `name` is a service `state` knows: declared, or named by a desired version.
fn knows(state: &State, name: &str) -> bool {
    state.services.contains_key(name)
        || state.desired.developer.contains_key(name)
        || state.desired.client.contains_key(name)
}

/// `name` read by the dash rule against `state`: the service and role when it names a
/// known service in a role, `None` when the whole name is the service or explains nothing.
pub fn legacy_split(state: &State, name: &str) -> Option<(ServiceName, Role)> {
    let instance = ServiceInstance::parse(name, |n| knows(state, n)).ok()?;
    Some((instance.service, instance.role?))
}

/// [`legacy_split`] against the state in force; `None` while there is none.
pub fn split_in_force(in_force: &Option<InForce>, name: &str) -> Option<(ServiceName, Role)> {
    in_force
        .as_ref()
        .and_then(|in_force| legacy_split(&in_force.state, name))
}

/// The service and role a sender gave in the arguments `field` and its `role` sibling: as
/// given, or, when `role` was left out by an older sender, as `legacy` reads the name
/// ([`legacy_split`] against the state in force; the whole name when it says nothing).
pub fn read_instance(
    field: &str,
    service: &str,
    role: MaybeUndefined<String>,
    legacy: impl FnOnce(&str) -> Option<(ServiceName, Role)>,
) -> Result<(ServiceName, Option<Role>), ApiError> {
    let role_field = || match field.rsplit_once('.') {
        Some((parent, _)) => format!("{parent}.role"),
        None => "role".to_owned(),
    };
    match role {
        MaybeUndefined::Value(role) => Ok((
            parse_arg(field, service)?,
            Some(parse_arg(&role_field(), &role)?),
        )),
        MaybeUndefined::Null => Ok((parse_arg(field, service)?, None)),
        MaybeUndefined::Undefined => {
            if let Some((service, role)) = legacy(service) {
                return Ok((service, Some(role)));
            }
            Ok((parse_arg(field, service)?, None))
        }
    }
}

/// Splits the `name-role` states and log records older updaters stored, by `state`; each
/// record is looked at once across starts (see [`Store::split_legacy_roles`]).
pub async fn split_stored(store: &Store, state: &State) -> Result<RoleSplit, StoreError> {
    store
        .split_legacy_roles(|name| legacy_split(state, name))
        .await
}

/// Once the first state is in force (it says which names are services), splits what
/// older updaters stored as `name-role` since the last start; then `intake` reads the
/// last numbers of its log sources afresh, as some moved. Ends early when `stopped`.
pub async fn split_stored_when_in_force(
    store: Store,
    mut in_force: watch::Receiver<Option<InForce>>,
    intake: LogIntake,
    mut stopped: watch::Receiver<bool>,
) {
    let state = tokio::select! {
        found = in_force.wait_for(Option::is_some) => match found {
            Ok(found) => found.as_ref().map(|f| Arc::clone(&f.state)),
            Err(_) => return,
        },
        _ = stopped.wait_for(|stop| *stop) => return,
    };
    let Some(state) = state else { return };
    match split_stored(&store, &state).await {
        Ok(done) => {
            if done != RoleSplit::default() {
                tracing::info!(
                    states = done.states,
                    log_roles = done.log_roles,
                    log_directories = done.log_directories,
                    "gave records of older updaters their role apart and a clean directory"
                );
            }
            intake.forget().await;
        }
        Err(error) => tracing::error!(
            %error,
            "cannot split the `name-role` records of older updaters; tried again at the next start"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`legacy_split`]'s reading with `worker`, `payment` and `payment-api` known.
    fn legacy(name: &str) -> Option<(ServiceName, Role)> {
        let known = |n: &str| ["worker", "payment", "payment-api"].contains(&n);
        let instance = ServiceInstance::parse(name, known).ok()?;
        Some((instance.service, instance.role?))
    }

    fn read(service: &str, role: MaybeUndefined<String>) -> Result<String, String> {
        read_instance("states[0].service", service, role, legacy)
            .map(|(service, role)| {
                format!(
                    "{service}|{}",
                    role.map(|r| r.to_string()).unwrap_or_default()
                )
            })
            .map_err(|error| error.to_string())
    }

    #[test]
    fn a_role_given_is_kept_and_a_missing_one_is_read_by_the_dash_rule() {
        use MaybeUndefined::{Null, Undefined, Value};
        assert_eq!(read("worker", Value("eu".into())), Ok("worker|eu".into()));
        assert_eq!(read("worker", Null), Ok("worker|".into()));
        // A sender that gives `role` means the whole name, known or not.
        assert_eq!(read("worker-eu", Null), Ok("worker-eu|".into()));
        assert_eq!(read("worker-eu", Undefined), Ok("worker|eu".into()));
        assert_eq!(read("payment-api", Undefined), Ok("payment-api|".into()));
        assert_eq!(
            read("payment-api-eu", Undefined),
            Ok("payment-api|eu".into())
        );
        assert_eq!(read("gone-eu", Undefined), Ok("gone-eu|".into()));
        let error = read("worker", Value("e-u".into())).expect_err("a dash in a role");
        assert!(error.contains("argument `states[0].role`"), "{error}");
    }
}
