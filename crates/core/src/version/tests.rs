use super::*;
use proptest::prelude::*;

fn dev(text: &str) -> DeveloperVersion {
    text.parse().expect("test version parses")
}

fn client(text: &str) -> ClientVersion {
    text.parse().expect("test version parses")
}

#[test]
fn parses_and_prints_developer_versions() {
    for text in ["jetto-1.2.3", "jetto-0", "my-dist-10.0.1", "a_b.c-1.0"] {
        assert_eq!(dev(text).to_string(), text);
    }
    let version = dev("my-dist-3.5.1");
    assert_eq!(version.distribution, "my-dist");
    assert_eq!(version.build.parts(), &[3, 5, 1]);
}

#[test]
fn parses_and_prints_client_versions() {
    assert_eq!(client("jetto-3.5.1").generation, 0);
    assert_eq!(client("jetto-3.5.1_2").generation, 2);
    assert_eq!(client("jetto-3.5.1_2").to_string(), "jetto-3.5.1_2");
    assert_eq!(client("jetto-3.5.1").developer, dev("jetto-3.5.1"));
}

#[test]
fn refuses_malformed_versions_quoting_them() {
    let cases = [
        ("1.2.3", "no `-`"),
        ("-1.2.3", "distribution name"),
        ("jet to-1.2", "distribution name"),
        ("jetto-", "build must be"),
        ("jetto-1..2", "build must be"),
        ("jetto-1.02", "build must be"),
        ("jetto-1.x", "build must be"),
        ("jetto-1.2_", "generation"),
        ("jetto-1.2_0", "generation"),
        ("jetto-1.2_x", "generation"),
        ("jetto-1.2_1_2", "generation"),
    ];
    for (text, expected) in cases {
        let error = text.parse::<ClientVersion>().expect_err(text).to_string();
        assert!(
            error.contains(&format!("`{text}`")),
            "{error} quotes {text}"
        );
        assert!(
            error.contains(expected),
            "{error} should mention {expected}"
        );
    }
    let error = "jetto-1.2_3"
        .parse::<DeveloperVersion>()
        .expect_err("generation");
    assert_eq!(
        error,
        VersionError::UnexpectedGeneration("jetto-1.2_3".into())
    );
}

#[test]
fn orders_numerically_per_part_then_generation() {
    let ordered = [
        "jetto-1.2",
        "jetto-1.2_1",
        "jetto-1.2_10",
        "jetto-1.2.0",
        "jetto-1.9",
        "jetto-1.10",
        "jetto-2",
        "jetto-10.0.0",
    ];
    for pair in ordered.windows(2) {
        assert!(
            client(pair[0]) < client(pair[1]),
            "{} < {}",
            pair[0],
            pair[1]
        );
    }
}

#[test]
fn next_build_and_generation() {
    assert_eq!(dev("jetto-1.2.9").next().to_string(), "jetto-1.2.10");
    let existing = [dev("jetto-1.2.9"), dev("jetto-1.10"), dev("other-5.0")];
    assert_eq!(
        DeveloperVersion::next_for("jetto", &existing).to_string(),
        "jetto-1.11"
    );
    assert_eq!(
        DeveloperVersion::next_for("new", &existing).to_string(),
        "new-1.0.0"
    );
    let clients = [
        client("jetto-1.2"),
        client("jetto-1.2_3"),
        client("jetto-1.3_7"),
    ];
    assert_eq!(
        ClientVersion::next_for(&dev("jetto-1.2"), &clients).to_string(),
        "jetto-1.2_4"
    );
    assert_eq!(
        ClientVersion::next_for(&dev("jetto-1.4"), &clients).to_string(),
        "jetto-1.4"
    );
}

#[test]
fn initial_build_is_one_zero_zero() {
    assert_eq!(Build::initial().to_string(), "1.0.0");
}

#[test]
fn serde_round_trips_as_strings() {
    let json = serde_json::to_string(&client("jetto-1.2_3")).expect("serializes");
    assert_eq!(json, "\"jetto-1.2_3\"");
    let back: ClientVersion = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, client("jetto-1.2_3"));
    let error = serde_json::from_str::<DeveloperVersion>("\"nope\"").expect_err("malformed");
    assert!(error.to_string().contains("`nope`"));
}

fn arb_version() -> impl Strategy<Value = ClientVersion> {
    (
        "[a-z][a-z0-9-]{0,6}",
        proptest::collection::vec(0u64..20, 1..4),
        0u32..4,
    )
        .prop_map(|(distribution, parts, generation)| ClientVersion {
            developer: DeveloperVersion::new(distribution, Build::new(parts).expect("non-empty")),
            generation,
        })
}

proptest! {
    #[test]
    fn print_then_parse_is_identity(version in arb_version()) {
        prop_assert_eq!(version.to_string().parse::<ClientVersion>(), Ok(version));
    }

    #[test]
    fn order_is_total_and_agrees_with_equality(a in arb_version(), b in arb_version()) {
        prop_assert_eq!(a == b, a.cmp(&b) == std::cmp::Ordering::Equal);
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        prop_assert_eq!(a.cmp(&a.clone()), std::cmp::Ordering::Equal);
    }

    #[test]
    fn order_is_transitive(a in arb_version(), b in arb_version(), c in arb_version()) {
        if a <= b && b <= c {
            prop_assert!(a <= c);
        }
    }

    #[test]
    fn next_is_always_newer(version in arb_version()) {
        prop_assert!(version.developer.next() > version.developer);
        let next = ClientVersion::next_for(&version.developer, [&version]);
        prop_assert!(next > version);
    }
}
