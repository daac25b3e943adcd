//! Version strings (`DIST-1.2.3[_N]`), service names, roles and `name-role` lists: from the
//! state repo, the API, an updater's `--services` and the distribution's records.

use vupdate_core::service::{Role, ServiceInstance, ServiceName};
use vupdate_core::version::{ClientVersion, DeveloperVersion};

/// The services the `name-role` reading is checked against: with and without dashes, and a
/// pair (`payment`, `payment-api`) where the dash rule decides.
const DECLARED: &[&str] = &["api", "payment", "payment-api", "geo-db"];

/// Every version has one spelling: what parses prints back as the input, and an error
/// quotes the input. Names and instances read back as they print.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_version(text);
    check_names(text);
}

fn check_version(text: &str) {
    match text.parse::<ClientVersion>() {
        Ok(version) => {
            assert_eq!(version.to_string(), text, "a version has one spelling");
            let developer = text.parse::<DeveloperVersion>();
            assert_eq!(
                developer.is_ok(),
                version.generation == 0,
                "a developer version is a client version of generation 0: `{text}`"
            );
            if let Ok(developer) = developer {
                assert_eq!(developer, version.developer);
            }
            assert!(version.developer.next() >= version.developer);
        }
        Err(error) => {
            assert!(
                error.to_string().contains(text),
                "the error quotes the input: {error}"
            );
            assert!(text.parse::<DeveloperVersion>().is_err());
        }
    }
}

fn check_names(text: &str) {
    if let Ok(name) = text.parse::<ServiceName>() {
        assert_eq!(name.as_str(), text);
    }
    if let Ok(role) = text.parse::<Role>() {
        assert_eq!(role.as_str(), text);
        assert!(!text.contains('-'), "a role has no dash");
    }
    let declared = |name: &str| DECLARED.contains(&name);
    let Ok(instances) = ServiceInstance::parse_list(text, declared) else {
        return;
    };
    for instance in instances {
        let printed = instance.to_string();
        // `payment` in role `api` prints as the declared service `payment-api`: the one
        // reading the dash rule gives up, documented in vupdate_core::service.
        if instance.role.is_some() && declared(&printed) {
            continue;
        }
        let back =
            ServiceInstance::parse(&printed, declared).expect("a printed instance reads back");
        assert_eq!(back, instance);
    }
}
