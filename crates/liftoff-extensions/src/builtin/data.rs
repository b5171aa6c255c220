//! The declarative half of a built-in: a TOML data file under `extensions/`.
//!
//! ```toml
//! [extension]
//! name = "ffmpeg"                               # upstream's extension name
//! module = "@trigger.dev/build/extensions/core"  # where users import it from
//! export = "ffmpeg"                             # the imported function
//! handler = "declarative"                       # or the Rust handler that adds logic
//! hook = "complete"                             # when the layer is added: start | complete
//!
//! [options]                                     # name = type: string, string[], boolean, number; `?` = optional
//! version = "string?"
//!
//! [[defaults]]                                  # values used while `unless` is not given
//! unless = "version"
//! set = { version = "1.10.1" }
//!
//! [layer]                                       # upstream's BuildLayer, with templates:
//! id = "ffmpeg"                                 #   {{name}}, {{#name}}…{{/name}} (if set),
//! image.pkgs = ["ffmpeg{{#version}}={{version}}{{/version}}"]   # {{^name}}…{{/name}} (if unset),
//! deploy.env = { FFMPEG_PATH = "/usr/bin/ffmpeg" }               # and "{{*name}}" (a string[] option
//! deploy.override = true                                         #  spliced into a list)
//! ```

use indexmap::IndexMap;
use liftoff_config::StaticValue;
use serde::Deserialize;

use crate::ExtensionError;
use crate::layer::{BuildEnvLayer, BuildLayer, DeployLayer, ImageLayer};

include!(concat!(env!("OUT_DIR"), "/data_files.rs"));

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DataFile {
    pub extension: Header,
    #[serde(default)]
    pub options: IndexMap<String, String>,
    #[serde(default)]
    pub defaults: Vec<Defaults>,
    #[serde(default)]
    pub layer: Option<LayerTemplate>,
    /// Extra named templates a Rust handler uses (e.g. python's second layer).
    #[serde(default)]
    pub layers: IndexMap<String, LayerTemplate>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Header {
    pub name: String,
    pub module: String,
    pub export: String,
    #[serde(default = "declarative")]
    pub handler: String,
    #[serde(default = "complete")]
    pub hook: String,
    /// `externalsForTarget("deploy")`.
    #[serde(default)]
    pub externals: Vec<String>,
    /// Extra module paths the same export is importable from.
    #[serde(default)]
    pub also_from: Vec<String>,
}

fn declarative() -> String {
    "declarative".into()
}

fn complete() -> String {
    "complete".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Defaults {
    pub unless: String,
    pub set: IndexMap<String, toml::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LayerTemplate {
    pub id: String,
    #[serde(default)]
    pub commands: Option<Vec<String>>,
    #[serde(default)]
    pub image: Option<ImageTemplate>,
    #[serde(default)]
    pub build: Option<EnvTemplate>,
    #[serde(default)]
    pub deploy: Option<DeployTemplate>,
    #[serde(default)]
    pub dependencies: Option<IndexMap<String, String>>,
    #[serde(default)]
    pub conditions: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImageTemplate {
    #[serde(default)]
    pub pkgs: Option<Vec<String>>,
    #[serde(default)]
    pub instructions: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnvTemplate {
    #[serde(default)]
    pub env: Option<IndexMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeployTemplate {
    #[serde(default)]
    pub env: Option<IndexMap<String, String>>,
    #[serde(default, rename = "override")]
    pub override_: Option<bool>,
}

/// All built-in data files, parsed.
pub(crate) fn all() -> Result<Vec<DataFile>, ExtensionError> {
    DATA_FILES
        .iter()
        .map(|(file, text)| {
            let data: DataFile = toml::from_str(text).map_err(|e| ExtensionError::DataFile {
                file: (*file).to_string(),
                message: e.to_string(),
            })?;
            for ty in data.options.values() {
                if !matches!(
                    ty.trim_end_matches('?'),
                    "string" | "string[]" | "boolean" | "number" | "any"
                ) {
                    return Err(ExtensionError::DataFile {
                        file: (*file).to_string(),
                        message: format!("unknown option type `{ty}`"),
                    });
                }
            }
            Ok(data)
        })
        .collect()
}

/// Options after validation: option name → value (defaults applied).
pub(crate) type Options = IndexMap<String, StaticValue>;

fn describe(v: &StaticValue) -> String {
    match v {
        StaticValue::Undefined => "undefined".into(),
        StaticValue::Null => "null".into(),
        StaticValue::Bool(b) => format!("the boolean {b}"),
        StaticValue::Number(n) => format!("the number {n}"),
        StaticValue::String(s) => format!("the string {s:?}"),
        StaticValue::Array(_) => "an array".into(),
        StaticValue::Object(_) => "an object".into(),
        StaticValue::Unevaluable(u) => format!("not statically known ({})", u.description),
    }
}

fn type_matches(ty: &str, v: &StaticValue) -> bool {
    match (ty, v) {
        ("any", _)
        | ("string", StaticValue::String(_))
        | ("boolean", StaticValue::Bool(_))
        | ("number", StaticValue::Number(_)) => true,
        ("string[]", StaticValue::Array(items)) => {
            items.iter().all(|i| matches!(i, StaticValue::String(_)))
        }
        _ => false,
    }
}

/// Checks the call's first argument against the data file's option schema.
pub(crate) fn validate(
    data: &DataFile,
    arg: Option<&StaticValue>,
    location: &str,
) -> Result<Options, ExtensionError> {
    let name = &data.extension.name;
    let mut options = Options::new();
    match arg {
        None | Some(StaticValue::Undefined) => {}
        Some(StaticValue::Object(fields)) => {
            for (key, value) in fields {
                let Some(ty) = data.options.get(key) else {
                    return Err(ExtensionError::UnknownOption {
                        extension: name.clone(),
                        option: key.clone(),
                        known: if data.options.is_empty() {
                            "none".into()
                        } else {
                            data.options.keys().cloned().collect::<Vec<_>>().join(", ")
                        },
                        location: location.to_string(),
                    });
                };
                if matches!(value, StaticValue::Undefined) && ty.ends_with('?') {
                    continue;
                }
                if !type_matches(ty.trim_end_matches('?'), value) {
                    return Err(ExtensionError::WrongType {
                        extension: name.clone(),
                        option: key.clone(),
                        expected: article(ty.trim_end_matches('?')),
                        found: describe(value),
                        location: location.to_string(),
                    });
                }
                options.insert(key.clone(), value.clone());
            }
        }
        Some(other) => {
            return Err(ExtensionError::WrongType {
                extension: name.clone(),
                option: "(options)".into(),
                expected: "an object".into(),
                found: describe(other),
                location: location.to_string(),
            });
        }
    }
    for (key, ty) in &data.options {
        if !ty.ends_with('?') && !options.contains_key(key) {
            return Err(ExtensionError::MissingOption {
                extension: name.clone(),
                option: key.clone(),
                location: location.to_string(),
            });
        }
    }
    for d in &data.defaults {
        if !options.contains_key(&d.unless) {
            for (k, v) in &d.set {
                options.insert(k.clone(), toml_to_static(v));
            }
        }
    }
    Ok(options)
}

fn article(ty: &str) -> String {
    match ty {
        "string[]" => "an array of strings".into(),
        "string" => "a string".into(),
        "boolean" => "a boolean".into(),
        "number" => "a number".into(),
        other => other.into(),
    }
}

fn toml_to_static(v: &toml::Value) -> StaticValue {
    match v {
        toml::Value::String(s) => StaticValue::String(s.clone()),
        toml::Value::Boolean(b) => StaticValue::Bool(*b),
        #[allow(clippy::cast_precision_loss)]
        toml::Value::Integer(i) => StaticValue::Number(*i as f64),
        toml::Value::Float(f) => StaticValue::Number(*f),
        toml::Value::Array(a) => StaticValue::Array(a.iter().map(toml_to_static).collect()),
        toml::Value::Table(t) => StaticValue::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_static(v)))
                .collect(),
        ),
        toml::Value::Datetime(d) => StaticValue::String(d.to_string()),
    }
}

fn scalar(options: &Options, name: &str) -> Option<String> {
    match options.get(name)? {
        StaticValue::String(s) => Some(s.clone()),
        StaticValue::Number(n) => Some(n.to_string()),
        StaticValue::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Renders `{{name}}`, `{{#name}}…{{/name}}` and `{{^name}}…{{/name}}`.
pub(crate) fn render(template: &str, options: &Options) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let tag = &after[..end];
        let tail = &after[end + 2..];
        if let Some(section) = tag.strip_prefix('#').or_else(|| tag.strip_prefix('^')) {
            let close = format!("{{{{/{section}}}}}");
            let (inner, after_close) = tail.split_once(&close).unwrap_or((tail, ""));
            let set = options
                .get(section)
                .is_some_and(|v| !matches!(v, StaticValue::Undefined | StaticValue::Null));
            if set == tag.starts_with('#') {
                out.push_str(&render(inner, options));
            }
            rest = after_close;
        } else {
            out.push_str(&scalar(options, tag).unwrap_or_default());
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

fn render_list(items: &[String], options: &Options) -> Vec<String> {
    let mut out = Vec::new();
    for item in items {
        if let Some(name) = item.strip_prefix("{{*").and_then(|s| s.strip_suffix("}}")) {
            if let Some(StaticValue::Array(values)) = options.get(name) {
                out.extend(
                    values
                        .iter()
                        .filter_map(StaticValue::as_str)
                        .map(String::from),
                );
            }
        } else {
            out.push(render(item, options));
        }
    }
    out
}

fn render_map(
    map: &IndexMap<String, String>,
    options: &Options,
) -> IndexMap<String, Option<String>> {
    map.iter()
        .map(|(k, v)| (k.clone(), Some(render(v, options))))
        .collect()
}

/// Instantiates a layer template with the options.
pub(crate) fn instantiate(t: &LayerTemplate, options: &Options) -> BuildLayer {
    BuildLayer {
        id: render(&t.id, options),
        commands: t.commands.as_ref().map(|c| render_list(c, options)),
        files: None,
        image: t.image.as_ref().map(|i| ImageLayer {
            pkgs: i.pkgs.as_ref().map(|p| render_list(p, options)),
            instructions: i.instructions.as_ref().map(|p| render_list(p, options)),
        }),
        build: t.build.as_ref().map(|b| BuildEnvLayer {
            env: b.env.as_ref().map(|e| render_map(e, options)),
        }),
        deploy: t.deploy.as_ref().map(|d| DeployLayer {
            env: d.env.as_ref().map(|e| render_map(e, options)),
            override_: d.override_,
        }),
        dependencies: t.dependencies.as_ref().map(|d| {
            d.iter()
                .map(|(k, v)| (render(k, options), render(v, options)))
                .collect()
        }),
        conditions: t.conditions.as_ref().map(|c| render_list(c, options)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, StaticValue)]) -> Options {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn templates() {
        let o = opts(&[("version", StaticValue::String("7".into()))]);
        assert_eq!(
            render("ffmpeg{{#version}}={{version}}{{/version}}", &o),
            "ffmpeg=7"
        );
        assert_eq!(
            render(
                "ffmpeg{{#version}}={{version}}{{/version}}",
                &Options::new()
            ),
            "ffmpeg"
        );
        assert_eq!(
            render("ADD {{#c}}--checksum={{c}}{{/c}} url", &Options::new()),
            "ADD  url"
        );
        assert_eq!(render("{{^c}}none{{/c}}", &Options::new()), "none");
        let list = opts(&[(
            "packages",
            StaticValue::Array(vec![
                StaticValue::String("a".into()),
                StaticValue::String("b=1".into()),
            ]),
        )]);
        assert_eq!(
            render_list(&["{{*packages}}".into(), "c".into()], &list),
            ["a", "b=1", "c"]
        );
    }

    #[test]
    fn every_data_file_parses() {
        let all = all().unwrap();
        assert!(all.len() >= 4);
        let mut seen = std::collections::HashSet::new();
        for d in &all {
            assert!(
                seen.insert((d.extension.module.clone(), d.extension.export.clone())),
                "duplicate {}",
                d.extension.name
            );
        }
    }
}
