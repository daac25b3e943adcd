//! Accounts: people (with an argon2 password hash and a role), service accounts (builder,
//! updater) and consumer distributions.

use serde::{Deserialize, Serialize};

use crate::doc::{CollectionDef, FieldDef, FieldKind, Record, Val};

/// What an account may do; the distribution checks it on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AccountRole {
    /// Builds versions and edits desired versions.
    Developer,
    /// Everything, accounts included.
    Administrator,
    /// Another distribution that receives this one's versions.
    DistributionConsumer,
    /// The builder.
    Builder,
    /// An updater on a VM.
    Updater,
}

/// The kind of an account, with what only that kind has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum AccountKind {
    /// A person who logs in with a password.
    #[serde(rename_all = "camelCase")]
    User {
        /// The PHC string of an argon2 hash (the store never sees the password).
        password_hash: String,
        /// Where notifications go.
        email: Option<String>,
        /// Which notifications the user wants.
        #[serde(default)]
        notifications: Vec<String>,
        /// Whether the user must change the password before doing anything else (absent in
        /// records written before the field existed: false).
        #[serde(default)]
        must_change_password: bool,
    },
    /// A program (builder, updater) that uses an access token.
    #[serde(rename_all = "camelCase")]
    Service {
        /// The generation of the access tokens: a token is valid while it carries the
        /// current one, and revoking increments it (absent in older records: 0).
        #[serde(default)]
        token_generation: u64,
    },
    /// A consumer distribution.
    #[serde(rename_all = "camelCase")]
    Consumer {
        /// The profile of services it receives.
        profile: String,
        /// Its URL.
        url: String,
        /// The generation of the access tokens, as for [`AccountKind::Service`].
        #[serde(default)]
        token_generation: u64,
    },
}

/// The type of an account, without its properties (for listing by type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountType {
    /// People.
    User,
    /// Programs.
    Service,
    /// Consumer distributions.
    Consumer,
}

impl AccountType {
    /// The name stored in `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountType::User => "user",
            AccountType::Service => "service",
            AccountType::Consumer => "consumer",
        }
    }
}

impl AccountKind {
    /// The account's type.
    pub fn account_type(&self) -> AccountType {
        match self {
            AccountKind::User { .. } => AccountType::User,
            AccountKind::Service { .. } => AccountType::Service,
            AccountKind::Consumer { .. } => AccountType::Consumer,
        }
    }

    /// The access-token generation of a service or consumer account; `None` for a user.
    pub fn token_generation(&self) -> Option<u64> {
        match self {
            AccountKind::User { .. } => None,
            AccountKind::Service { token_generation }
            | AccountKind::Consumer {
                token_generation, ..
            } => Some(*token_generation),
        }
    }
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// The login name, unique.
    pub account: String,
    /// The display name.
    pub name: String,
    /// What it may do.
    pub role: AccountRole,
    /// Its kind and the kind's properties.
    #[serde(flatten)]
    pub kind: AccountKind,
}

pub(crate) static ACCOUNT: FieldDef = FieldDef::new("account", "account", FieldKind::Str);
pub(crate) static TYPE: FieldDef = FieldDef::new("type", "type", FieldKind::Str);

pub(crate) static ACCOUNTS: CollectionDef = CollectionDef {
    name: "accounts",
    fields: &[&ACCOUNT, &TYPE],
    key: &[&ACCOUNT],
    indexes: &[&[&TYPE]],
    history: true,
    present_only: &[],
    logs_db: false,
    text: None,
    newest: None,
};

impl Record for Account {
    const DEF: &'static CollectionDef = &ACCOUNTS;

    fn fields(&self) -> Vec<Val> {
        vec![
            Val::str(&self.account),
            Val::str(self.kind.account_type().as_str()),
        ]
    }

    fn validate(&self) -> Result<(), String> {
        if self.account.trim().is_empty() {
            return Err("the account name is empty".to_owned());
        }
        if let AccountKind::User { password_hash, .. } = &self.kind
            && !password_hash.starts_with("$argon2")
        {
            return Err(format!(
                "account `{}`: the password hash is not an argon2 PHC string",
                self.account
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_written_before_the_auth_fields_load_with_defaults() {
        let cases = [
            (
                r#"{"account":"ann","name":"Ann","role":"Developer","type":"user","passwordHash":"$argon2id$x","email":null}"#,
                AccountKind::User {
                    password_hash: "$argon2id$x".to_owned(),
                    email: None,
                    notifications: vec![],
                    must_change_password: false,
                },
            ),
            (
                r#"{"account":"ann","name":"Ann","role":"Builder","type":"service"}"#,
                AccountKind::Service {
                    token_generation: 0,
                },
            ),
            (
                r#"{"account":"ann","name":"Ann","role":"DistributionConsumer","type":"consumer","profile":"p","url":"u"}"#,
                AccountKind::Consumer {
                    profile: "p".to_owned(),
                    url: "u".to_owned(),
                    token_generation: 0,
                },
            ),
        ];
        for (json, kind) in cases {
            let account: Account = serde_json::from_str(json).expect(json);
            assert_eq!(account.kind, kind, "{json}");
        }
    }

    #[test]
    fn the_auth_fields_round_trip_through_json() {
        for kind in [
            AccountKind::User {
                password_hash: "$argon2id$x".to_owned(),
                email: Some("a@b".to_owned()),
                notifications: vec!["builds".to_owned()],
                must_change_password: true,
            },
            AccountKind::Service {
                token_generation: 7,
            },
            AccountKind::Consumer {
                profile: "p".to_owned(),
                url: "u".to_owned(),
                token_generation: u64::from(u32::MAX) + 1,
            },
        ] {
            let account = Account {
                account: "ann".to_owned(),
                name: "Ann".to_owned(),
                role: AccountRole::Developer,
                kind,
            };
            let json = serde_json::to_string(&account).expect("serialise");
            assert_eq!(
                serde_json::from_str::<Account>(&json).expect("parse"),
                account,
                "{json}"
            );
        }
    }
}
