//! `enrolUpdater`: a new VM exchanges an enrolment token for the access token of its own
//! updater account (what `vupdate updater install` does first).

use serde::Deserialize;
use serde_json::json;

use crate::Client;
use crate::error::ClientError;

/// A service an enrolled updater runs, with its role apart.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EnrolledService {
    /// The service.
    pub service: String,
    /// Its role, if any.
    pub role: Option<String>,
}

/// What an instance gets when it enrols.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrolment {
    /// The instance's updater account, `updater@<instance>`.
    pub account: String,
    /// Its access token.
    pub access_token: String,
    /// The services to run.
    pub services: Vec<EnrolledService>,
    /// The distribution's name.
    pub distribution: String,
}

const MUTATION: &str =
    "mutation EnrolUpdater($token: String!, $instance: String!, $services: [String!]) {
  enrolUpdater(token: $token, instance: $instance, services: $services) {
    account accessToken distribution services { service role }
  }
}";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    enrol_updater: Enrolment,
}

impl Client {
    /// Spends one use of the enrolment `token` on `instance`, for `services` (default:
    /// every service the token allows).
    pub async fn enrol_updater(
        &self,
        token: &str,
        instance: &str,
        services: Option<&[String]>,
    ) -> Result<Enrolment, ClientError> {
        let answer: Answer = self
            .graphql(
                MUTATION,
                json!({"token": token, "instance": instance, "services": services}),
            )
            .await?;
        Ok(answer.enrol_updater)
    }
}
