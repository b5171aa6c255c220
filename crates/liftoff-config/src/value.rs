//! Values produced by the static evaluator.

use serde::Serialize;

use crate::Location;

/// A JSON-like value read statically from the config file.
///
/// Anything the evaluator can't compute (calls, functions, imported
/// bindings, …) is kept as [`StaticValue::Unevaluable`] with its location.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "camelCase")]
pub enum StaticValue {
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<StaticValue>),
    /// Properties in source order (a later duplicate key replaces the value in place, as in JS).
    Object(Vec<(String, StaticValue)>),
    Unevaluable(Unevaluable),
}

/// Marker for a value that can only be known by running the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unevaluable {
    pub location: Location,
    /// What it is, e.g. "a call to `getDirs(...)`".
    pub description: String,
}

impl StaticValue {
    /// The value of property `key` of an object (`None` when absent, undefined or not an object).
    pub fn get(&self, key: &str) -> Option<&StaticValue> {
        match self {
            StaticValue::Object(props) => props
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .filter(|v| !matches!(v, StaticValue::Undefined)),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            StaticValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[StaticValue]> {
        match self {
            StaticValue::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            StaticValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            StaticValue::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// `true` if this value or anything inside it is [`StaticValue::Unevaluable`].
    pub fn contains_unevaluable(&self) -> bool {
        match self {
            StaticValue::Unevaluable(_) => true,
            StaticValue::Array(items) => items.iter().any(StaticValue::contains_unevaluable),
            StaticValue::Object(props) => props.iter().any(|(_, v)| v.contains_unevaluable()),
            _ => false,
        }
    }

    /// The value as JSON, with `JSON.stringify` semantics for `undefined`
    /// (dropped from objects, `null` in arrays). `None` if the value is
    /// `undefined` itself or contains anything unevaluable.
    pub fn to_json(&self) -> Option<serde_json::Value> {
        use serde_json::Value;
        Some(match self {
            StaticValue::Undefined | StaticValue::Unevaluable(_) => return None,
            StaticValue::Null => Value::Null,
            StaticValue::Bool(b) => Value::Bool(*b),
            StaticValue::Number(n) => {
                serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
            }
            StaticValue::String(s) => Value::String(s.clone()),
            StaticValue::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| match v {
                        StaticValue::Undefined => Some(Value::Null),
                        v => v.to_json(),
                    })
                    .collect::<Option<Vec<_>>>()?,
            ),
            StaticValue::Object(props) => {
                let mut map = serde_json::Map::new();
                for (k, v) in props {
                    if !matches!(v, StaticValue::Undefined) {
                        map.insert(k.clone(), v.to_json()?);
                    }
                }
                Value::Object(map)
            }
        })
    }
}

/// Where an imported binding comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportRef {
    /// The module specifier, e.g. `@trigger.dev/build/extensions/core`.
    pub source: String,
    /// The exported name: `"default"` for a default import, `"*"` for a
    /// namespace import (`import * as ns` or `const ns = require(...)`).
    /// For `ns.fn(...)` through a namespace import this is `fn`.
    pub imported: String,
}

/// How an element of `build.extensions` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ExtensionKind {
    /// `aptGet({ ... })`, `ns.fn(...)`.
    Call,
    /// `{ name: "my-ext", onBuildComplete() { ... } }`; `args[0]` holds the object.
    InlineObject,
    /// Anything else: an identifier bound to something opaque, `new Foo()`, a spread, …
    Other,
}

/// One element of `build.extensions` (or a synthetic one from a deprecated option).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExtensionCall {
    /// Local name of the callee (`aptGet`, `ns.fn`), or of the identifier/constructor for `Other`.
    pub callee: Option<String>,
    /// Where the callee is imported from, when it is an import.
    pub import: Option<ImportRef>,
    /// Call arguments, statically evaluated; for `InlineObject` the object itself.
    pub args: Vec<StaticValue>,
    pub kind: ExtensionKind,
    pub span: Location,
    /// `true` for extensions liftoff adds itself when migrating `additionalFiles`,
    /// `additionalPackages` or a `resolveEnvVars` property (upstream does the same).
    pub synthetic: bool,
}

// ---------------------------------------------------------------------------
// Internal evaluated tree: like StaticValue, but every node carries its location.

#[derive(Debug, Clone)]
pub(crate) struct Val {
    pub loc: Location,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
    Str(String),
    Array(Vec<Val>),
    Object(Vec<(String, Val)>),
    Opaque(Box<Opaque>),
}

#[derive(Debug, Clone)]
pub(crate) struct Opaque {
    pub what: String,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub(crate) enum Origin {
    Call {
        callee: Option<String>,
        import: Option<ImportRef>,
        args: Vec<Val>,
        is_new: bool,
    },
    Import {
        local: String,
        import: ImportRef,
    },
    Function,
    Other,
}

impl Val {
    pub(crate) fn new(loc: Location, kind: Kind) -> Self {
        Self { loc, kind }
    }

    pub(crate) fn opaque(loc: Location, what: impl Into<String>, origin: Origin) -> Self {
        Self {
            loc,
            kind: Kind::Opaque(Box::new(Opaque {
                what: what.into(),
                origin,
            })),
        }
    }

    /// Property lookup; `undefined` counts as absent.
    pub(crate) fn get(&self, key: &str) -> Option<&Val> {
        match &self.kind {
            Kind::Object(props) => props
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .filter(|v| !matches!(v.kind, Kind::Undefined)),
            _ => None,
        }
    }

    pub(crate) fn to_static(&self) -> StaticValue {
        match &self.kind {
            Kind::Undefined => StaticValue::Undefined,
            Kind::Null => StaticValue::Null,
            Kind::Bool(b) => StaticValue::Bool(*b),
            Kind::Number(n) => StaticValue::Number(*n),
            Kind::Str(s) => StaticValue::String(s.clone()),
            Kind::Array(items) => StaticValue::Array(items.iter().map(Val::to_static).collect()),
            Kind::Object(props) => StaticValue::Object(
                props
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_static()))
                    .collect(),
            ),
            Kind::Opaque(o) => StaticValue::Unevaluable(Unevaluable {
                location: self.loc,
                description: o.what.clone(),
            }),
        }
    }

    /// JS truthiness, `None` when unknown.
    pub(crate) fn truthy(&self) -> Option<bool> {
        Some(match &self.kind {
            Kind::Undefined | Kind::Null => false,
            Kind::Bool(b) => *b,
            Kind::Number(n) => *n != 0.0 && !n.is_nan(),
            Kind::Str(s) => !s.is_empty(),
            Kind::Array(_) | Kind::Object(_) => true,
            Kind::Opaque(_) => return None,
        })
    }

    /// Short human description of the value's type, for error messages.
    pub(crate) fn describe(&self) -> String {
        match &self.kind {
            Kind::Undefined => "undefined".into(),
            Kind::Null => "null".into(),
            Kind::Bool(b) => format!("the boolean {b}"),
            Kind::Number(n) => format!("the number {}", js_number_to_string(*n)),
            Kind::Str(s) => format!("the string {s:?}"),
            Kind::Array(_) => "an array".into(),
            Kind::Object(_) => "an object".into(),
            Kind::Opaque(o) => o.what.clone(),
        }
    }
}

/// `String(n)` in JS.
pub(crate) fn js_number_to_string(n: f64) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n.is_infinite() {
        return if n > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if n == 0.0 {
        return "0".into();
    }
    let abs = n.abs();
    if (1e-6..1e21).contains(&abs) {
        if n.fract() == 0.0 {
            format!("{n:.0}")
        } else {
            format!("{n}")
        }
    } else {
        let s = format!("{n:e}");
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::js_number_to_string as s;

    #[test]
    fn number_to_string_matches_js() {
        assert_eq!(s(300.0), "300");
        assert_eq!(s(-0.0), "0");
        assert_eq!(s(0.1), "0.1");
        assert_eq!(s(1.5e-7), "1.5e-7");
        assert_eq!(s(1e21), "1e+21");
        assert_eq!(s(123_456_789.0), "123456789");
        assert_eq!(s(f64::NAN), "NaN");
    }
}
