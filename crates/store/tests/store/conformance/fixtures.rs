//! Record builders for the cases: small, explicit, one per record type.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use vupdate_core::log::Level;
use vupdate_core::service::{Role, ServiceName};
use vupdate_store::model::accounts::{Account, AccountKind, AccountRole};
use vupdate_store::model::builds::{BuildState, BuildStatus, BuildTarget};
use vupdate_store::model::faults::{FaultFile, FaultInfo, FaultReport};
use vupdate_store::model::logs::LogRecord;
use vupdate_store::model::states::{ServiceState, ServiceStateRecord};
use vupdate_store::model::tasks::Task;
use vupdate_store::model::versions::{
    BuildInfo, ClientVersionRecord, DeveloperVersionRecord, ImageInfo, InstallInfo, SourceRef,
};

/// The cases' start time: the wall clock's current minute (UTC), taken once per process.
///
/// Not a fixed date: a MongoDB server removes archived versions through the TTL index on
/// `_archiveTime` by its own clock (a real server every 60 s, the nx-27017 stand-in on every
/// read and write), so versions stamped with a clock more than the 7-day restore window
/// behind the server's vanish under the case. The cases' clocks only move forward from here.
pub fn t0() -> DateTime<Utc> {
    static T0: OnceLock<DateTime<Utc>> = OnceLock::new();
    *T0.get_or_init(|| {
        Utc::now()
            .duration_trunc(TimeDelta::minutes(1))
            .expect("the current time rounds to a minute")
    })
}

/// `t0` plus `seconds`.
pub fn at(seconds: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(seconds)
}

/// Days as a time delta.
pub fn days(n: i64) -> TimeDelta {
    TimeDelta::days(n)
}

/// A service name.
pub fn service(name: &str) -> ServiceName {
    name.parse().expect("valid service name")
}

/// A person's account.
pub fn user(account: &str, role: AccountRole) -> Account {
    Account {
        account: account.to_owned(),
        name: format!("{account} (person)"),
        role,
        kind: AccountKind::User {
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
            email: Some(format!("{account}@example.invalid")),
            notifications: vec!["builds".to_owned()],
            must_change_password: false,
        },
    }
}

/// A service account.
pub fn service_account(account: &str, role: AccountRole) -> Account {
    Account {
        account: account.to_owned(),
        name: account.to_owned(),
        role,
        kind: AccountKind::Service {
            token_generation: 0,
        },
    }
}

/// A consumer account.
pub fn consumer(account: &str) -> Account {
    Account {
        account: account.to_owned(),
        name: account.to_owned(),
        role: AccountRole::DistributionConsumer,
        kind: AccountKind::Consumer {
            profile: "common".to_owned(),
            url: format!("https://{account}.example.invalid"),
            token_generation: 0,
        },
    }
}

fn build_info(seconds: i64) -> BuildInfo {
    BuildInfo {
        author: "ann".to_owned(),
        sources: vec![SourceRef {
            name: "main".to_owned(),
            url: "https://git.example.invalid/api.git".to_owned(),
            branch: "main".to_owned(),
            commit: Some("0123abcd".to_owned()),
        }],
        time: at(seconds),
        comment: "a build".to_owned(),
    }
}

/// A developer version record, e.g. `dev("api", "jetto-1.2.3")`.
pub fn dev(service_name: &str, version: &str) -> DeveloperVersionRecord {
    DeveloperVersionRecord {
        service: service(service_name),
        version: version.parse().expect("valid developer version"),
        build_info: build_info(0),
        image: ImageInfo {
            digest: format!("sha256:{version}"),
            size: 1024,
        },
    }
}

/// A client version record, e.g. `client("api", "jetto-1.2.3_1")`.
pub fn client(service_name: &str, version: &str) -> ClientVersionRecord {
    ClientVersionRecord {
        service: service(service_name),
        version: version.parse().expect("valid client version"),
        build_info: build_info(0),
        install_info: InstallInfo {
            author: "distribution".to_owned(),
            time: at(60),
        },
        image: ImageInfo {
            digest: format!("sha256:{version}"),
            size: 2048,
        },
        content_digest: None,
        settings: None,
    }
}

/// A task created `seconds` after `t0`.
pub fn task(id: &str, task_type: &str, services: &[&str], seconds: i64, active: bool) -> Task {
    Task {
        id: id.to_owned(),
        task_type: task_type.to_owned(),
        parameters: BTreeMap::from([("author".to_owned(), "ann".to_owned())]),
        services: services.iter().map(|s| service(s)).collect(),
        creation_time: at(seconds),
        active,
        termination_time: None,
        termination_status: None,
    }
}

/// A service log line written `seconds` after `t0`.
pub fn log(
    service_name: &str,
    instance: &str,
    level: Level,
    seconds: i64,
    message: &str,
) -> LogRecord {
    LogRecord {
        service: service(service_name),
        role: None,
        instance: instance.to_owned(),
        directory: "/srv".to_owned(),
        process: "100".to_owned(),
        task: None,
        time: at(seconds),
        level,
        unit: "main".to_owned(),
        message: message.to_owned(),
        termination_status: None,
        source_sequence: None,
    }
}

/// A task log line.
pub fn task_log(task_id: &str, seconds: i64, message: &str) -> LogRecord {
    LogRecord {
        task: Some(task_id.to_owned()),
        ..log("builder", "hub", Level::Info, seconds, message)
    }
}

/// A running service's state taken `seconds` after `t0`.
pub fn state(
    distribution: &str,
    instance: &str,
    service_name: &str,
    seconds: i64,
) -> ServiceStateRecord {
    ServiceStateRecord {
        state_commit: None,
        labels: Default::default(),
        distribution: distribution.to_owned(),
        instance: instance.to_owned(),
        service: service(service_name),
        role: None,
        directory: "/srv".to_owned(),
        state: ServiceState {
            time: at(seconds),
            install_time: Some(at(-3600)),
            start_time: Some(at(-60)),
            version: Some("jetto-1.2.3_1".parse().expect("valid client version")),
            update_to_version: None,
            update_error: None,
            failures_count: Some(0),
            last_exit_code: None,
            failed_version: None,
        },
    }
}

/// A role, e.g. `eu`.
pub fn role(name: &str) -> Role {
    name.parse().expect("valid role")
}

/// A fault report of `service_name` at `seconds` after `t0`.
pub fn fault(distribution: &str, id: &str, service_name: &str, seconds: i64) -> FaultReport {
    FaultReport {
        distribution: distribution.to_owned(),
        id: id.to_owned(),
        info: FaultInfo {
            time: at(seconds),
            instance: "vm-1".to_owned(),
            service: service(service_name),
            service_role: None,
            service_directory: "/srv".to_owned(),
            state: state(distribution, "vm-1", service_name, seconds).state,
            log_tail: vec!["line 1".to_owned(), "panic: boom".to_owned()],
        },
        files: vec![FaultFile {
            path: "core".to_owned(),
            size: 4096,
        }],
    }
}

/// A build state.
pub fn build(
    service_name: &str,
    target: BuildTarget,
    status: BuildStatus,
    seconds: i64,
) -> BuildState {
    BuildState {
        service: service(service_name),
        target,
        author: "ann".to_owned(),
        version: "jetto-1.2.3".to_owned(),
        comment: "release".to_owned(),
        task: Some("t-1".to_owned()),
        status,
        time: at(seconds),
    }
}
