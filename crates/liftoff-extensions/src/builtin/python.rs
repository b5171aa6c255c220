//! pythonExtension (upstream's `PythonExtension`, `@trigger.dev/python/extension`).
//!
//! Upstream's constructor checks the options and reads the requirements file;
//! liftoff does that in `onBuildStart`, which runs before anything else is
//! built, so a bad option still stops the deploy before any work. The layers'
//! exact instructions are the named templates of `extensions/python.toml`.

use liftoff_config::StaticValue;
use liftoff_manifest::BuildManifest;

use super::{Builtin, data, files};
use crate::{Context, ExtensionError, LogLevel, Target};

/// The name upstream passes to `addAdditionalFilesToBuild` (it prefixes warnings).
const COPY_SOURCE: &str = "pythonExtension";

fn opt_str<'a>(b: &'a Builtin, key: &str) -> Option<&'a str> {
    b.options.get(key).and_then(StaticValue::as_str)
}

/// `options.requirementsFile`, when truthy.
fn requirements_file(b: &Builtin) -> Option<&str> {
    opt_str(b, "requirementsFile").filter(|f| !f.is_empty())
}

/// `options.requirements`, when truthy (an empty array is truthy in JavaScript).
fn requirements(b: &Builtin) -> Option<Vec<String>> {
    match b.options.get("requirements")? {
        StaticValue::Array(items) => Some(
            items
                .iter()
                .filter_map(StaticValue::as_str)
                .map(String::from)
                .collect(),
        ),
        _ => None,
    }
}

/// Upstream's `splitAndCleanComments`: lines split on `\n`, trimmed (as
/// JavaScript's `trim`, which also strips a BOM), empty ones and `#` comments dropped.
fn split_and_clean_comments(text: &str) -> Vec<String> {
    text.split('\n')
        .map(|l| l.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}'))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// Upstream's constructor: `requirements` and `requirementsFile` exclude each
/// other, and the file's requirements replace `options.requirements`.
pub(super) fn on_build_start(b: &mut Builtin, ctx: &mut Context<'_>) -> Result<(), ExtensionError> {
    let name = b.data.extension.name.clone();
    if requirements(b).is_some() && requirements_file(b).is_some() {
        return Err(ExtensionError::failed(
            &name,
            "onBuildStart",
            "Cannot specify both requirements and requirementsFile. Keep one of the two options of pythonExtension().",
        ));
    }
    let Some(file) = requirements_file(b).map(String::from) else {
        return Ok(());
    };
    // Upstream checks and reads the file relative to the process's current directory
    // (`fs.existsSync(requirementsFile)`), while it copies it relative to the working
    // dir. liftoff resolves it relative to the working dir for both, so the result does
    // not depend on where the command is run from; they agree when the CLI runs from
    // the project directory, which is the usual case.
    let path = ctx.resolve(&file);
    if !path.is_file() {
        return Err(ExtensionError::failed(
            &name,
            "onBuildStart",
            format!(
                "Requirements file not found: {file} (looked for {}). Check pythonExtension's `requirementsFile`; it is relative to the working dir.",
                path.display()
            ),
        ));
    }
    let bytes = std::fs::read(&path).map_err(|source| ExtensionError::Io {
        extension: name.clone(),
        action: "read",
        path: path.clone(),
        source,
    })?;
    let lines = split_and_clean_comments(&String::from_utf8_lossy(&bytes));
    b.options.insert(
        "requirements".into(),
        StaticValue::Array(lines.into_iter().map(StaticValue::String).collect()),
    );
    Ok(())
}

fn named_layer(
    b: &Builtin,
    ctx: &mut Context<'_>,
    template: &str,
    options: &data::Options,
) -> Result<(), ExtensionError> {
    let t = b
        .data
        .layers
        .get(template)
        .ok_or_else(|| ExtensionError::DataFile {
            file: format!("{}.toml", b.data.extension.handler),
            message: format!("missing [layers.{template}]"),
        })?;
    ctx.add_layer(data::instantiate(t, options));
    Ok(())
}

pub(super) fn on_build_complete(
    b: &Builtin,
    ctx: &mut Context<'_>,
    manifest: &BuildManifest,
) -> Result<(), ExtensionError> {
    let scripts = b.strings("scripts");
    files::copy_matches(ctx, COPY_SOURCE, &scripts, manifest)?;
    if ctx.target == Target::Dev {
        // Upstream sets `process.env.PYTHON_BIN_PATH = devPythonBinaryPath` for the dev
        // workers; liftoff only deploys, so there is nothing to set.
        return Ok(());
    }
    ctx.log(
        LogLevel::Debug,
        format!("Adding {} to the build", b.data.extension.name),
    );
    named_layer(b, ctx, "python-installation", &b.options)?;
    if let Some(file) = requirements_file(b) {
        // Always true here: onBuildStart filled `requirements` from the file, as upstream's constructor does.
        if requirements(b).is_some() {
            ctx.warn("[pythonExtension] Both options.requirements and options.requirementsFile are specified. requirements will be ignored.");
        }
        files::copy_matches(ctx, COPY_SOURCE, &[file.to_string()], manifest)?;
        named_layer(b, ctx, "python-dependencies-file", &b.options)?;
    } else if let Some(requirements) = requirements(b) {
        let mut options = b.options.clone();
        options.insert(
            "requirementsContent".into(),
            StaticValue::String(requirements.join("\n")),
        );
        named_layer(b, ctx, "python-dependencies-inline", &options)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use serde_json::json;

    use super::*;
    use crate::Runtime;

    fn builtin(options: &serde_json::Value) -> Builtin {
        super::super::test_builtin("pythonExtension", options)
    }

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (f, text) in files {
            let p = dir.path().join("app").join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("build")).unwrap();
        dir
    }

    struct Outcome {
        result: Result<(), ExtensionError>,
        layers: Vec<serde_json::Value>,
        warnings: Vec<String>,
        files: Vec<String>,
    }

    fn run(dir: &Path, b: &mut Builtin, target: Target) -> Outcome {
        let env = BTreeMap::new();
        let app: PathBuf = dir.join("app");
        let build = dir.join("build");
        let m = BuildManifest {
            output_path: build.display().to_string(),
            ..BuildManifest::default()
        };
        let mut ctx = Context::new(target, Runtime::Node, &app, "proj_x", &env);
        ctx.build_dir = Some(&build);
        let result = on_build_start(b, &mut ctx).and_then(|()| on_build_complete(b, &mut ctx, &m));
        Outcome {
            result,
            layers: ctx
                .layers
                .iter()
                .map(|l| serde_json::to_value(l).unwrap())
                .collect(),
            warnings: ctx
                .logs
                .iter()
                .filter(|l| l.level == LogLevel::Warn)
                .map(|l| l.message.clone())
                .collect(),
            files: ctx
                .files
                .iter()
                .map(|f| format!("{} -> {}", f.from, f.to))
                .collect(),
        }
    }

    fn installation() -> serde_json::Value {
        json!({
            "id": "python-installation",
            "image": { "instructions": [
                "RUN apt-get update && apt-get install -y --no-install-recommends               python3 python3-pip python3-venv &&               apt-get clean && rm -rf /var/lib/apt/lists/*",
                "RUN python3 -m venv /opt/venv",
                "ENV PATH=\"/opt/venv/bin:$PATH\""
            ]},
            "deploy": { "env": { "PYTHON_BIN_PATH": "/opt/venv/bin/python" }, "override": true }
        })
    }

    #[test]
    fn no_options() {
        let dir = project(&[]);
        let o = run(dir.path(), &mut builtin(&json!({})), Target::Deploy);
        o.result.unwrap();
        assert_eq!(o.layers, [installation()]);
        assert!(o.warnings.is_empty() && o.files.is_empty());
    }

    #[test]
    fn inline_requirements() {
        let dir = project(&[]);
        let o = run(
            dir.path(),
            &mut builtin(&json!({ "requirements": ["numpy==2.0.0", "pandas"] })),
            Target::Deploy,
        );
        o.result.unwrap();
        assert_eq!(
            o.layers,
            [
                installation(),
                json!({
                    "id": "python-dependencies",
                    "build": { "env": { "REQUIREMENTS_CONTENT": "numpy==2.0.0\npandas" } },
                    "image": { "instructions": [
                        "ARG REQUIREMENTS_CONTENT",
                        "RUN echo \"$REQUIREMENTS_CONTENT\" > requirements.txt",
                        "RUN pip install --no-cache-dir -r requirements.txt"
                    ]},
                    "deploy": { "override": true }
                })
            ]
        );
        // An empty array is truthy upstream: the layer is still added, with empty content.
        let o = run(
            dir.path(),
            &mut builtin(&json!({ "requirements": [] })),
            Target::Deploy,
        );
        assert_eq!(o.layers[1]["build"]["env"]["REQUIREMENTS_CONTENT"], "");
    }

    #[test]
    fn requirements_file() {
        let dir = project(&[(
            "requirements.txt",
            "# comment\n\n  numpy==2.0.0  \r\nrequests\n   # indented comment\n",
        )]);
        let mut b = builtin(&json!({ "requirementsFile": "./requirements.txt" }));
        let o = run(dir.path(), &mut b, Target::Deploy);
        o.result.unwrap();
        assert_eq!(
            o.layers,
            [
                installation(),
                json!({
                    "id": "python-dependencies",
                    "image": { "instructions": ["COPY ./requirements.txt .", "RUN pip install --no-cache-dir -r ./requirements.txt"] },
                    "deploy": { "override": true }
                })
            ]
        );
        assert_eq!(
            o.warnings,
            [
                "[pythonExtension] Both options.requirements and options.requirementsFile are specified. requirements will be ignored."
            ]
        );
        assert_eq!(o.files, ["requirements.txt -> requirements.txt"]);
        assert_eq!(
            b.options["requirements"],
            StaticValue::Array(vec![
                StaticValue::String("numpy==2.0.0".into()),
                StaticValue::String("requests".into())
            ])
        );
        assert!(dir.path().join("build/requirements.txt").is_file());
    }

    #[test]
    fn scripts_are_copied_in_every_target() {
        let dir = project(&[
            ("src/python/a.py", "print(1)"),
            ("src/python/lib/b.py", ""),
            ("src/python/c.txt", ""),
        ]);
        let mut b = builtin(&json!({ "scripts": ["./src/python/**/*.py", "./missing/*.py"] }));
        let o = run(dir.path(), &mut b, Target::Deploy);
        o.result.unwrap();
        assert_eq!(
            o.files,
            [
                "src/python/a.py -> src/python/a.py",
                "src/python/lib/b.py -> src/python/lib/b.py"
            ]
        );
        assert_eq!(
            o.warnings,
            ["[pythonExtension] No files found for matcher ./missing/*.py"]
        );
        assert_eq!(o.layers, [installation()]);
        let o = run(dir.path(), &mut b, Target::Dev);
        assert_eq!(o.files.len(), 2);
        assert!(o.layers.is_empty(), "dev adds no layer");
    }

    #[test]
    fn both_given() {
        let dir = project(&[("requirements.txt", "numpy")]);
        let o = run(
            dir.path(),
            &mut builtin(
                &json!({ "requirements": ["numpy"], "requirementsFile": "requirements.txt" }),
            ),
            Target::Deploy,
        );
        let err = o.result.unwrap_err().to_string();
        assert!(
            err.contains("Cannot specify both requirements and requirementsFile"),
            "{err}"
        );
        assert!(o.layers.is_empty());
    }

    #[test]
    fn missing_requirements_file() {
        let dir = project(&[]);
        let o = run(
            dir.path(),
            &mut builtin(&json!({ "requirementsFile": "py/requirements.txt" })),
            Target::Deploy,
        );
        let err = o.result.unwrap_err().to_string();
        assert!(
            err.contains("Requirements file not found: py/requirements.txt"),
            "{err}"
        );
        assert!(
            err.contains(
                &dir.path()
                    .join("app/py/requirements.txt")
                    .display()
                    .to_string()
            ),
            "{err}"
        );
    }

    #[test]
    fn split_like_upstream() {
        assert_eq!(
            split_and_clean_comments("\u{feff}a\n#b\n c \n\n"),
            ["a", "c"]
        );
    }
}
