//! Runs one built-in on its own and records what it did: the Rust side of the
//! differential test against upstream's real extensions
//! (`tests/node/record-extension.mjs` records the same for upstream's code).

use std::collections::BTreeMap;
use std::path::Path;

use liftoff_config::{ExtensionCall, ExtensionKind, ImportRef, Location, StaticValue};
use liftoff_manifest::BuildManifest;
use serde::Serialize;

use crate::builtin::{self, Recognised, data};
use crate::layer::BuildLayer;
use crate::{Context, CopiedFile, ExtensionError, LogLine, Runtime, Target};

/// What one extension did through its whole lifecycle.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    pub name: String,
    pub externals: Vec<String>,
    pub start_layers: Vec<BuildLayer>,
    pub complete_layers: Vec<BuildLayer>,
    pub logs: Vec<LogLine>,
    pub files: Vec<CopiedFile>,
}

/// A JSON value as the config evaluator would have produced it.
pub fn static_value(json: &serde_json::Value) -> StaticValue {
    match json {
        serde_json::Value::Null => StaticValue::Null,
        serde_json::Value::Bool(b) => StaticValue::Bool(*b),
        serde_json::Value::Number(n) => StaticValue::Number(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => StaticValue::String(s.clone()),
        serde_json::Value::Array(a) => StaticValue::Array(a.iter().map(static_value).collect()),
        serde_json::Value::Object(o) => StaticValue::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), static_value(v)))
                .collect(),
        ),
    }
}

/// Runs the built-in `export` from `module` with `args`, as `externalsForTarget`,
/// `onBuildStart`, then `onBuildComplete` on `manifest` (its `outputPath` is the
/// build dir files are copied to). Fails if liftoff has no native implementation.
#[allow(clippy::too_many_arguments)]
pub fn record(
    module: &str,
    export: &str,
    args: &[serde_json::Value],
    target: Target,
    runtime: Runtime,
    working_dir: &Path,
    env: &BTreeMap<String, String>,
    manifest: &BuildManifest,
) -> Result<Recording, ExtensionError> {
    let call = ExtensionCall {
        callee: Some(export.to_string()),
        import: Some(ImportRef {
            source: module.to_string(),
            imported: export.to_string(),
        }),
        args: args.iter().map(static_value).collect(),
        kind: ExtensionKind::Call,
        span: Location { line: 1, column: 1 },
        synthetic: false,
    };
    let catalogue = data::all()?;
    let Recognised::Native(mut ext) = builtin::recognise(&call, &catalogue, "case")? else {
        return Err(ExtensionError::Sidecar(format!(
            "{export} from {module} has no native implementation"
        )));
    };
    let build_dir = Path::new(&manifest.output_path);
    let name = ext.name().to_string();
    let externals = ext.externals_for_target(target)?;
    let mut start = Context::new(target, runtime, working_dir, "proj_recording", env)
        .for_extension(&name, build_dir);
    ext.on_build_start(&mut start)?;
    let mut complete = Context::new(target, runtime, working_dir, "proj_recording", env)
        .for_extension(&name, build_dir);
    ext.on_build_complete(&mut complete, manifest)?;
    let (start_layers, mut logs, mut files) = start.into_parts();
    let (complete_layers, more_logs, more_files) = complete.into_parts();
    logs.extend(more_logs);
    files.extend(more_files);
    Ok(Recording {
        name,
        externals,
        start_layers,
        complete_layers,
        logs,
        files,
    })
}
