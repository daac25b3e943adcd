//! Where the auth state that the store's account record has no field for is kept.
//!
//! The record (`vupdate_store::model::accounts::Account`) has no "must change password"
//! flag and no access-token id. Until it does, both are derived from what it has:
//!
//! - must-change-password: a reserved entry in a user's `notifications` list
//!   ([`MUST_CHANGE`]); it is hidden from [`super::AccountInfo`] and never a real
//!   notification name (those are plain words).
//! - access-token generation: the account version's `_sequence`. A token records the
//!   sequence it was issued at and is valid while the account is unchanged;
//!   [`super::AuthService::revoke_access_tokens`] rewrites the account, which gives it a
//!   new sequence. So any change to a service or consumer account also revokes its
//!   tokens: safe, but a reissue is needed after a rename or a profile change.

use vupdate_store::model::accounts::{Account, AccountKind};

/// The reserved `notifications` entry that means "must change the password".
pub(crate) const MUST_CHANGE: &str = "vupdate:must-change-password";

/// Whether the account must change its password before doing anything else.
pub(crate) fn must_change_password(account: &Account) -> bool {
    match &account.kind {
        AccountKind::User { notifications, .. } => notifications.iter().any(|n| n == MUST_CHANGE),
        _ => false,
    }
}

/// Sets or clears the must-change mark (users only; others have no password).
pub(crate) fn set_must_change_password(account: &mut Account, on: bool) {
    if let AccountKind::User { notifications, .. } = &mut account.kind {
        notifications.retain(|n| n != MUST_CHANGE);
        if on {
            notifications.push(MUST_CHANGE.to_owned());
        }
    }
}

/// The user's notifications without the reserved marks.
pub(crate) fn visible_notifications(notifications: &[String]) -> Vec<String> {
    notifications
        .iter()
        .filter(|n| n.as_str() != MUST_CHANGE)
        .cloned()
        .collect()
}
