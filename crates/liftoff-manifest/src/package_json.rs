//! The image's `package.json` (upstream `writeDeployFiles`, step 1-3).

use serde_json::{Map, Value};

use crate::error::ManifestError;
use crate::js_json;
use crate::manifest::External;

/// The `package.json` written to the build directory:
///
/// ```js
/// { ...pkg, name: pkg.name ?? "trigger-project", dependencies, trustedDependencies: Object.keys(dependencies),
///   devDependencies: {}, peerDependencies: {}, scripts: {} }
/// ```
///
/// `dependencies` maps each external's name to its version (a later duplicate wins but keeps
/// the first one's position). Keys that already exist in the project's package.json keep their
/// position; new ones are appended in the order above.
///
/// The text is **minified with no trailing newline**: pkg-types' `writePackageJSON` only
/// preserves the original indentation through a non-enumerable symbol that the object spread
/// drops, so it ends up calling `JSON.stringify(pkg)` (checked against trigger.dev 3.3.17 with
/// pkg-types 1.3.1 / confbox 0.1.8).
///
/// `project` is the parsed project package.json; `None` starts from `{}` (upstream aborts
/// with "Could not read the package.json file" instead; that check is the caller's).
pub fn package_json(
    project: Option<&Value>,
    externals: &[External],
) -> Result<String, ManifestError> {
    let mut pkg: Map<String, Value> = match project {
        None => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(other) => {
            return Err(ManifestError::InvalidProjectPackageJson { found: kind(other) });
        }
    };

    let name = match pkg.get("name") {
        None | Some(Value::Null) => Value::String("trigger-project".to_owned()),
        Some(existing) => existing.clone(),
    };

    let mut dependencies = Map::new();
    for external in externals {
        dependencies.insert(
            external.name.clone(),
            Value::String(external.version.clone()),
        );
    }
    let trusted: Vec<Value> = js_json::js_key_order(&dependencies)
        .into_iter()
        .map(|(key, _)| Value::String(key.clone()))
        .collect();

    // serde_json's `preserve_order` map keeps an existing key's position on insert, like
    // assigning an existing property after a JavaScript object spread.
    pkg.insert("name".to_owned(), name);
    pkg.insert("dependencies".to_owned(), Value::Object(dependencies));
    pkg.insert("trustedDependencies".to_owned(), Value::Array(trusted));
    pkg.insert("devDependencies".to_owned(), Value::Object(Map::new()));
    pkg.insert("peerDependencies".to_owned(), Value::Object(Map::new()));
    pkg.insert("scripts".to_owned(), Value::Object(Map::new()));

    Ok(js_json::stringify(&Value::Object(pkg)))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ext(name: &str, version: &str) -> External {
        External {
            name: name.into(),
            version: version.into(),
        }
    }

    #[test]
    fn overrides_in_place_and_appends_new_keys() {
        let project = json!({"scripts": {"dev": "x"}, "name": "app", "type": "module"});
        let out = package_json(
            Some(&project),
            &[ext("b", "1"), ext("a", "2"), ext("b", "3")],
        )
        .unwrap();
        assert_eq!(
            out,
            r#"{"scripts":{},"name":"app","type":"module","dependencies":{"b":"3","a":"2"},"trustedDependencies":["b","a"],"devDependencies":{},"peerDependencies":{}}"#
        );
    }

    #[test]
    fn without_project_package_json() {
        let out = package_json(None, &[]).unwrap();
        assert_eq!(
            out,
            r#"{"name":"trigger-project","dependencies":{},"trustedDependencies":[],"devDependencies":{},"peerDependencies":{},"scripts":{}}"#
        );
    }

    #[test]
    fn rejects_non_objects() {
        let err = package_json(Some(&json!([1])), &[]).unwrap_err();
        assert!(err.to_string().contains("an array"), "{err}");
        assert!(package_json(Some(&Value::Null), &[]).is_err());
    }
}
