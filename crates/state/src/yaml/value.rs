//! [`Value`]: a plain YAML value (no locations) for the editor to compare and render.

use std::fmt;

/// A YAML value as the editor needs it: scalars other than booleans are compared as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// `true` or `false`, written plain (a string `"true"` is a [`Value::Scalar`]).
    Bool(bool),
    /// Any other scalar, as text.
    Scalar(String),
    /// A sequence.
    Seq(Vec<Value>),
    /// A mapping in file order.
    Map(Vec<(String, Value)>),
}

impl Value {
    /// A scalar from anything printable.
    pub(crate) fn scalar(text: impl fmt::Display) -> Value {
        Value::Scalar(text.to_string())
    }

    /// Whether the value is written on one line after its key when rendered in block style.
    pub(crate) fn is_inline(&self) -> bool {
        match self {
            Value::Null | Value::Bool(_) | Value::Scalar(_) => true,
            Value::Seq(items) => items.is_empty(),
            Value::Map(entries) => entries.is_empty(),
        }
    }

    /// Whether the value is a scalar (text or boolean), which is spliced in place.
    pub(crate) fn is_scalar(&self) -> bool {
        matches!(self, Value::Bool(_) | Value::Scalar(_))
    }

    /// The value of `key` when this is a mapping that has it.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Whether two values mean the same YAML: mappings compare regardless of key order (YAML
/// mappings have none), sequences and scalars exactly.
pub(crate) fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Map(a), Value::Map(b)) => {
            a.len() == b.len()
                && a.iter().all(|(key, value)| {
                    b.iter()
                        .find(|(k, _)| k == key)
                        .is_some_and(|(_, other)| same(value, other))
                })
        }
        (Value::Seq(a), Value::Seq(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        _ => a == b,
    }
}
