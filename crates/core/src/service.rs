//! Service names, roles, and the `name-role` instance spelling an updater is given.
//!
//! **The dash rule.** Service names may contain dashes (`payment-api`); roles may not. An
//! instance string is therefore read against the set of services the state repo declares:
//!
//! 1. if the whole string is a declared service, it is that service with no role;
//! 2. otherwise the text after the *last* dash is the role, and the text before it must be a
//!    declared service.
//!
//! So with `payment` and `payment-api` declared, `payment-api` is the service `payment-api`
//! and `payment-api-eu` is `payment-api` in role `eu`; to run `payment` in role `api`,
//! rename one of the two. Printing an instance gives `name-role` back, and the round trip
//! is exact as long as the declared set does not hold both readings.

use std::fmt;
use std::str::FromStr;

/// Why a service name, role or instance string was refused; each variant quotes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceNameError {
    /// The service name is empty or has characters outside the allowed set.
    #[error(
        "service name `{0}` is not valid: use letters, digits, `-`, `_` or `.`, starting with a letter or digit, at most 64 characters"
    )]
    BadName(String),
    /// The role is empty or has characters outside the allowed set (a dash included).
    #[error(
        "role `{0}` is not valid: use letters, digits, `_` or `.` (no `-`: it separates service and role), at most 64 characters"
    )]
    BadRole(String),
    /// Neither the whole string nor the part before its last dash is a declared service.
    #[error("`{0}` names no declared service, neither whole nor as `service-role`")]
    Unknown(String),
}

fn valid_chars(text: &str, extra: &[u8]) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(b))
}

/// A service name such as `payment-api`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceName(String);

impl ServiceName {
    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ServiceName {
    type Err = ServiceNameError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if valid_chars(text, b"-_.") {
            Ok(ServiceName(text.to_owned()))
        } else {
            Err(ServiceNameError::BadName(text.to_owned()))
        }
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ServiceName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for ServiceName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// A role a service runs in, such as `eu` or `reader`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Role(String);

impl Role {
    /// The role as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Role {
    type Err = ServiceNameError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if valid_chars(text, b"_.") {
            Ok(Role(text.to_owned()))
        } else {
            Err(ServiceNameError::BadRole(text.to_owned()))
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A service as an updater runs it: a name and an optional role, spelled `name[-role]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceInstance {
    /// The declared service.
    pub service: ServiceName,
    /// The role it runs in, if any.
    pub role: Option<Role>,
}

impl ServiceInstance {
    /// Reads `name[-role]` by the dash rule (see the module docs); `is_declared` tells
    /// whether a name is a service of the state repo.
    pub fn parse(text: &str, is_declared: impl Fn(&str) -> bool) -> Result<Self, ServiceNameError> {
        if is_declared(text) {
            return Ok(ServiceInstance {
                service: text.parse()?,
                role: None,
            });
        }
        match text.rsplit_once('-') {
            Some((service, role)) if is_declared(service) => Ok(ServiceInstance {
                service: service.parse()?,
                role: Some(role.parse()?),
            }),
            _ => {
                // Say what is wrong with the spelling before saying it is unknown.
                text.parse::<ServiceName>()?;
                Err(ServiceNameError::Unknown(text.to_owned()))
            }
        }
    }

    /// Parses a comma-separated list such as an updater's `--services a,b-role`.
    pub fn parse_list(
        text: &str,
        is_declared: impl Fn(&str) -> bool,
    ) -> Result<Vec<Self>, ServiceNameError> {
        text.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| ServiceInstance::parse(item, &is_declared))
            .collect()
    }
}

impl fmt::Display for ServiceInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.role {
            None => write!(f, "{}", self.service),
            Some(role) => write!(f, "{}-{}", self.service, role),
        }
    }
}

macro_rules! serde_as_string {
    ($type:ty) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_string!(ServiceName);
serde_as_string!(Role);

#[cfg(test)]
mod tests {
    use super::*;

    fn declared(names: &'static [&'static str]) -> impl Fn(&str) -> bool {
        move |name| names.contains(&name)
    }

    fn instance(text: &str, names: &'static [&'static str]) -> Result<String, ServiceNameError> {
        ServiceInstance::parse(text, declared(names)).map(|i| {
            format!(
                "{}|{}",
                i.service,
                i.role.map(|r| r.to_string()).unwrap_or_default()
            )
        })
    }

    #[test]
    fn dash_rule_reads_instances_against_declared_services() {
        let names: &[&str] = &["payment", "payment-api", "web"];
        assert_eq!(instance("web", names), Ok("web|".into()));
        assert_eq!(instance("web-eu", names), Ok("web|eu".into()));
        // The whole string wins over service `payment` in role `api`.
        assert_eq!(instance("payment-api", names), Ok("payment-api|".into()));
        assert_eq!(
            instance("payment-api-eu", names),
            Ok("payment-api|eu".into())
        );
        assert_eq!(instance("payment-eu", names), Ok("payment|eu".into()));
        assert_eq!(
            instance("mail", names),
            Err(ServiceNameError::Unknown("mail".into()))
        );
        assert_eq!(
            instance("pay ment", names),
            Err(ServiceNameError::BadName("pay ment".into()))
        );
        assert_eq!(
            instance("web-", names),
            Err(ServiceNameError::BadRole("".into()))
        );
    }

    #[test]
    fn instance_prints_back_as_given() {
        for text in ["web", "web-eu", "payment-api-eu"] {
            let parsed =
                ServiceInstance::parse(text, declared(&["web", "payment-api"])).expect("declared");
            assert_eq!(parsed.to_string(), text);
        }
    }

    #[test]
    fn parses_comma_separated_lists() {
        let list =
            ServiceInstance::parse_list("web, payment-api-eu,", declared(&["web", "payment-api"]))
                .expect("all declared");
        let printed: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(printed, ["web", "payment-api-eu"]);
    }

    #[test]
    fn names_and_roles_have_their_own_alphabets() {
        assert!("payment-api.v2_x".parse::<ServiceName>().is_ok());
        for bad in ["", "-web", "we b", "wéb", &"x".repeat(65)] {
            assert!(bad.parse::<ServiceName>().is_err(), "{bad:?}");
        }
        assert!("eu_1".parse::<Role>().is_ok());
        assert_eq!(
            "e-u".parse::<Role>(),
            Err(ServiceNameError::BadRole("e-u".into()))
        );
    }
}
