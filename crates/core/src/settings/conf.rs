//! HOCON (`.conf`) layers merged with `hocon-parser`: parse, merge, resolve, render, verify.
//!
//! Every layer is parsed without resolving substitutions and without the process
//! environment, and `include` is refused before parsing, so nothing is read from outside
//! the inputs. Layers merge with the later one winning and objects merged by key
//! (`with_fallback`); substitutions resolve once, on the merged tree; the crate's renderer
//! writes the result, which is parsed again and must equal the merged tree.

use std::collections::HashMap;

use hocon::{
    Config, HoconError, HoconValue, ParseOptions, ResolveOptions, ScalarType, Token, TokenKind,
};
use indexmap::IndexMap;

use super::merge::Layer;
use super::{Format, Position, SettingsError};

/// Marks a value that only the environment could have given (see [`check_environment`]).
const SENTINEL: &str = "\u{1}vupdate-environment-";

/// A `${…}` in one of the layers.
struct Substitution<'a> {
    layer: Layer<'a>,
    position: Position,
    /// The path's segments, unquoted.
    segments: Vec<String>,
    /// As written, for messages: `${?DB_PASSWORD}`.
    written: String,
}

/// Merges `layers` of `target` (the first is the base of the rest) and renders the result.
pub(super) fn merge(target: &str, layers: &[Layer<'_>]) -> Result<Vec<u8>, SettingsError> {
    let mut substitutions = Vec::new();
    let mut order = KeyOrder::default();
    let mut merged: Option<Config> = None;
    for layer in layers {
        let text = layer.text("merged")?;
        let tokens = hocon::tokenize(text)
            .map_err(|error| parse_error(layer, Some((error.line, error.col)), error.message))?;
        check_includes(target, layer, &tokens)?;
        substitutions.extend(tokens.iter().filter_map(|token| substitution(layer, token)));
        let options = ParseOptions::defaults()
            .with_resolve_substitutions(false)
            .with_env(HashMap::new());
        let config = hocon::parse_string_with_options(text, options)
            .map_err(|error| hocon_parse_error(layer, error))?;
        order.learn(&root_map(&config));
        merged = Some(match merged {
            None => config,
            Some(below) => config.with_fallback(&below),
        });
    }
    let merged = merged.expect("a merge has at least one layer");

    // Unresolved substitutions may stay for now: `check_environment` names them better.
    let resolved = merged
        .resolve(resolve_options().with_allow_unresolved(true))
        .map_err(|error| {
            let (position, message) = match error {
                HoconError::Resolve(error) => (position(error.line, error.col), error.message),
                other => (None, other.to_string()),
            };
            SettingsError::HoconResolve {
                target: target.to_owned(),
                position,
                message,
            }
        })?;
    check_environment(target, &merged, &resolved, &substitutions)?;
    if !resolved.is_resolved() {
        return Err(SettingsError::HoconResolve {
            target: target.to_owned(),
            position: None,
            message: "some substitutions have no value".to_owned(),
        });
    }
    // `with_fallback` moves keys an overlay sets after the base's other keys; put them back
    // where the base has them, so the file reads (and diffs) like the developer's.
    let resolved = Config::new(order.apply(root_map(&resolved)));
    let rendered = resolved
        .render_hocon()
        .map_err(|error| render_error(target, error.to_string()))?;
    verify_round_trip(target, &resolved, &rendered)?;
    Ok(rendered.into_bytes())
}

/// Resolution against the document only: never the process environment.
fn resolve_options() -> ResolveOptions {
    ResolveOptions::defaults().with_use_system_environment(false)
}

fn position(line: usize, column: usize) -> Option<Position> {
    (line > 0).then_some(Position { line, column })
}

fn parse_error(layer: &Layer<'_>, at: Option<(usize, usize)>, message: String) -> SettingsError {
    SettingsError::Parse {
        tree: layer.tree,
        path: layer.path.to_owned(),
        format: Format::Hocon,
        position: at.and_then(|(line, column)| position(line, column)),
        message,
    }
}

fn hocon_parse_error(layer: &Layer<'_>, error: HoconError) -> SettingsError {
    match error {
        HoconError::Parse(error) => {
            parse_error(layer, Some((error.line, error.col)), error.message)
        }
        HoconError::Resolve(error) => {
            parse_error(layer, Some((error.line, error.col)), error.message)
        }
        other => parse_error(layer, None, other.to_string()),
    }
}

fn render_error(target: &str, message: String) -> SettingsError {
    SettingsError::HoconRender {
        target: target.to_owned(),
        message,
    }
}

/// Refuses `include` directives: a rendered value tree cannot keep them, and parsing them
/// would read files relative to the process's directory.
fn check_includes(target: &str, layer: &Layer<'_>, tokens: &[Token]) -> Result<(), SettingsError> {
    // Open braces and brackets: a key (and so an `include`) can only start a field of an
    // object, i.e. at the start, after `{`, or after a newline or comma outside an array.
    let mut open: Vec<bool> = Vec::new(); // true for an array
    let mut field_start = true;
    for token in tokens {
        match token.kind {
            TokenKind::Newline | TokenKind::Comma => {
                field_start = open.last() != Some(&true);
            }
            TokenKind::LBrace => {
                open.push(false);
                field_start = true;
            }
            TokenKind::LBracket => {
                open.push(true);
                field_start = false;
            }
            TokenKind::RBrace | TokenKind::RBracket => {
                open.pop();
                field_start = false;
            }
            TokenKind::Unquoted if field_start && token.value == "include" => {
                return Err(SettingsError::HoconInclude {
                    tree: layer.tree,
                    path: layer.path.to_owned(),
                    position: Position {
                        line: token.line,
                        column: token.col,
                    },
                    target: target.to_owned(),
                });
            }
            _ => field_start = false,
        }
    }
    Ok(())
}

fn substitution<'a>(layer: &Layer<'a>, token: &Token) -> Option<Substitution<'a>> {
    let payload = token.subst.as_ref()?;
    Some(Substitution {
        layer: *layer,
        position: Position {
            line: token.line,
            column: token.col,
        },
        segments: payload
            .segments
            .iter()
            .map(|segment| segment.text.clone())
            .collect(),
        written: format!(
            "${{{}{}{}}}",
            if payload.optional { "?" } else { "" },
            token.value,
            if payload.list_suffix { "[]" } else { "" }
        ),
    })
}

/// Refuses a merged file whose values would come from the program's environment;
/// `resolved` is `merged` resolved without the environment, unresolved parts allowed.
///
/// Every substitution's path gets a marked stand-in value *below* the merged tree, so the
/// document's own values still win; whatever resolves to a stand-in is a lookup the merged,
/// rendered file would lose. (An optional `${?X}` with no value just disappears, so it cannot
/// be found by resolving without the stand-ins.)
fn check_environment(
    target: &str,
    merged: &Config,
    resolved: &Config,
    substitutions: &[Substitution<'_>],
) -> Result<(), SettingsError> {
    if substitutions.is_empty() {
        return Ok(());
    }
    let mut stand_ins = IndexMap::new();
    for (index, substitution) in substitutions.iter().enumerate() {
        insert_at_path(
            &mut stand_ins,
            &substitution.segments,
            &format!("{SENTINEL}{index}\u{1}"),
        );
    }
    // `resolve_with` looks stand-ins up but leaves them out of the result.
    let probe = merged.resolve_with(
        &Config::new(stand_ins),
        resolve_options().with_allow_unresolved(true),
    );
    let culprit = match probe {
        Ok(probe) => {
            let mut found = Vec::new();
            for value in root_map(&probe).values() {
                collect_sentinels(value, &mut found);
            }
            found.into_iter().min()
        }
        // A stand-in string in a place that needs an array or object (`[1] ${?MORE}`): the
        // substitution is environment-dependent; name the first that the document lacks.
        Err(_) => substitutions
            .iter()
            .position(|substitution| !resolved.has(&quote_path(&substitution.segments))),
    };
    match culprit.and_then(|index| substitutions.get(index)) {
        None => Ok(()),
        Some(substitution) => Err(SettingsError::HoconEnvironment {
            tree: substitution.layer.tree,
            path: substitution.layer.path.to_owned(),
            position: substitution.position,
            substitution: substitution.written.clone(),
            target: target.to_owned(),
        }),
    }
}

/// Key order by first appearance across the layers, object by object.
#[derive(Default)]
struct KeyOrder(IndexMap<String, KeyOrder>);

impl KeyOrder {
    /// Adds the keys of one layer (base first) that are not known yet, at every depth.
    fn learn(&mut self, map: &IndexMap<String, HoconValue>) {
        for (key, value) in map {
            let child = self.0.entry(key.clone()).or_default();
            if let HoconValue::Object(object) = value {
                child.learn(object);
            }
        }
    }

    /// `map` with its keys in learnt order (keys never seen, if any, keep their place at the end).
    fn apply(&self, mut map: IndexMap<String, HoconValue>) -> IndexMap<String, HoconValue> {
        let mut ordered = IndexMap::with_capacity(map.len());
        for (key, child) in &self.0 {
            if let Some(value) = map.shift_remove(key) {
                let value = match value {
                    HoconValue::Object(object) => HoconValue::Object(child.apply(object)),
                    other => other,
                };
                ordered.insert(key.clone(), value);
            }
        }
        ordered.extend(map);
        ordered
    }
}

/// Sets `value` at `segments` unless something is already on the way.
fn insert_at_path(map: &mut IndexMap<String, HoconValue>, segments: &[String], value: &str) {
    let Some((last, parents)) = segments.split_last() else {
        return;
    };
    let mut map = map;
    for segment in parents {
        let entry = map
            .entry(segment.clone())
            .or_insert_with(|| HoconValue::Object(IndexMap::new()));
        match entry {
            HoconValue::Object(child) => map = child,
            _ => return,
        }
    }
    map.entry(last.clone())
        .or_insert_with(|| HoconValue::Scalar(hocon::ScalarValue::string(value.to_owned())));
}

/// The indexes of the stand-ins found in string values under `value`.
fn collect_sentinels(value: &HoconValue, found: &mut Vec<usize>) {
    match value {
        HoconValue::Object(map) => map
            .values()
            .for_each(|value| collect_sentinels(value, found)),
        HoconValue::Array(items) => items
            .iter()
            .for_each(|value| collect_sentinels(value, found)),
        HoconValue::Scalar(scalar) if scalar.value_type == ScalarType::String => {
            for (at, _) in scalar.raw.match_indices(SENTINEL) {
                let digits = &scalar.raw[at + SENTINEL.len()..];
                let digits = &digits[..digits.find('\u{1}').unwrap_or(digits.len())];
                if let Ok(index) = digits.parse() {
                    found.push(index);
                }
            }
        }
        _ => {}
    }
}

/// A path expression naming exactly `segments`, whatever characters they hold.
fn quote_path<S: AsRef<str>>(segments: &[S]) -> String {
    let quoted: Vec<String> = segments
        .iter()
        .map(|segment| {
            let escaped = segment.as_ref().replace('\\', "\\\\").replace('"', "\\\"");
            format!("\"{escaped}\"")
        })
        .collect();
    quoted.join(".")
}

/// The root object of a config (the crate exposes keys and path lookups, not the map).
pub(super) fn root_map(config: &Config) -> IndexMap<String, HoconValue> {
    config
        .keys()
        .into_iter()
        .filter_map(|key| {
            let value = config.get(&quote_path(&[key]))?;
            Some((key.to_owned(), value.clone()))
        })
        .collect()
}

/// Refuses a rendering that does not read back as exactly the merged tree.
fn verify_round_trip(target: &str, merged: &Config, rendered: &str) -> Result<(), SettingsError> {
    let options = ParseOptions::defaults().with_env(HashMap::new());
    let reread = hocon::parse_string_with_options(rendered, options).map_err(|error| {
        render_error(target, format!("the rendered text does not parse: {error}"))
    })?;
    let (expected, found) = (root_map(merged), root_map(&reread));
    if expected == found {
        return Ok(());
    }
    let differing = expected
        .iter()
        .find(|(key, value)| found.get(*key) != Some(*value))
        .map(|(key, _)| key.clone())
        .or_else(|| {
            found
                .keys()
                .find(|key| !expected.contains_key(*key))
                .cloned()
        })
        .unwrap_or_default();
    Err(render_error(
        target,
        format!("the rendered text reads back differently at key `{differing}`"),
    ))
}
