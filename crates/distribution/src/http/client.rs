//! [`ClientAddress`]: the address a request came from, as the server's connection loop
//! recorded it (`ConnectInfo<SocketAddr>` in the request's extensions), and
//! [`AddressSlots`]: how many connections or requests each client has open.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::auth::ClientKey;

/// The client's IP address; `None` when the router is called without a connection
/// (in-process tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub Option<IpAddr>);

impl ClientAddress {
    /// The address recorded in `extensions`.
    pub fn of(extensions: &axum::http::Extensions) -> ClientAddress {
        ClientAddress(
            extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(address)| address.ip()),
        )
    }
}

impl<S: Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(ClientAddress::of(&parts.extensions))
    }
}

/// How many things (connections, requests) each client has in progress; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct AddressSlots(Arc<Mutex<HashMap<ClientKey, usize>>>);

/// One thing in progress of a client; given back on drop.
#[derive(Debug)]
pub struct AddressSlot {
    slots: AddressSlots,
    key: ClientKey,
}

impl AddressSlots {
    /// A place for `key` when it has fewer than `max` in progress; otherwise how many it has.
    pub fn take(&self, key: ClientKey, max: usize) -> Result<AddressSlot, usize> {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(key).or_default();
        if *count >= max {
            return Err(*count);
        }
        *count += 1;
        Ok(AddressSlot {
            slots: self.clone(),
            key,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.slots.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AddressSlots;
    use crate::auth::ClientKey;

    #[test]
    fn each_address_has_its_own_bounded_count() {
        let slots = AddressSlots::default();
        let a = ClientKey::of("10.0.0.1".parse().expect("address"));
        let b = ClientKey::of("10.0.0.2".parse().expect("address"));
        let first = slots.take(a, 2).expect("one");
        let _second = slots.take(a, 2).expect("two");
        assert_eq!(slots.take(a, 2).expect_err("full"), 2);
        let _other = slots.take(b, 2).expect("another address");
        drop(first);
        assert!(slots.take(a, 2).is_ok());
    }
}
