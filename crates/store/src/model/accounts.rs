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
    },
    /// A program (builder, updater) that uses an access token.
    Service,
    /// A consumer distribution.
    #[serde(rename_all = "camelCase")]
    Consumer {
        /// The profile of services it receives.
        profile: String,
        /// Its URL.
        url: String,
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
            AccountKind::Service => AccountType::Service,
            AccountKind::Consumer { .. } => AccountType::Consumer,
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
    logs_db: false,
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
