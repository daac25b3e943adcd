//! The exported schema (`schema.graphql`) must be the schema the code serves.

use std::path::Path;

#[test]
fn schema_file_matches_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql");
    let actual = super::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &actual).expect("write schema.graphql");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{} is out of date with the code: run `UPDATE_SCHEMA=1 cargo test -p vupdate-distribution schema` and commit the file",
        path.display()
    );
}
