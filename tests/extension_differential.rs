//! Differential test of the native built-in extensions against the real
//! `@trigger.dev/build@3.3.17` / `@trigger.dev/python@3.3.17` code: every case of
//! `tests/node/extension-cases.json` is recorded live by
//! `tests/node/record-extension.mjs` (upstream's code in node, with a recording
//! `BuildContext`) and run through liftoff's native implementation; the layers,
//! externals, copied files and warnings must be equal.
//!
//! Deliberate differences (documented in the README): where upstream only logs an
//! `onBuildComplete` error (prisma without a version), liftoff fails; cases whose
//! arguments are JavaScript (`native: false`) run in the sidecar, not here; and
//! additionalPackages pins the installed version of a package whose ESM entry has
//! a nested type-only package.json, where upstream falls back to `latest`
//! (`KNOWN_DIFFERENCES`, checked for liftoff's behaviour instead).

/// Cases where liftoff deliberately differs, with what liftoff must do instead.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[(
    "additionalPackages-scoped-nested-pkgjson",
    "@trigger.dev/core",
)];

/// The audioWaveform instruction liftoff leaves out (see extensions/audioWaveform.toml).
const AUDIOWAVEFORM_FIX_BROKEN: &str = "RUN apt-get install -y --fix-broken";

/// `v` with every array element equal to `line` removed.
fn without_line(v: &Value, line: &str) -> Value {
    match v {
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|e| e.as_str() != Some(line))
                .map(|e| without_line(e, line))
                .collect(),
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, e)| (k.clone(), without_line(e, line)))
                .collect(),
        ),
        other => other.clone(),
    }
}

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{node, repo, text};
use serde_json::{Value, json};

fn default_manifest(case: &Value, output: &Path) -> Value {
    let out = output.to_string_lossy();
    let runtime = case["manifest"]["runtime"].as_str().unwrap_or("node");
    let mut m = json!({
        "target": case["target"].as_str().unwrap_or("deploy"),
        "packageVersion": "3.3.17", "cliPackageVersion": "3.3.17", "contentHash": "record-extension",
        "runtime": runtime, "environment": "prod",
        "config": { "project": "proj_recordextension", "dirs": ["trigger"] },
        "files": [], "sources": {}, "outputPath": out,
        "runWorkerEntryPoint": format!("{out}/deploy-run-worker.mjs"),
        "runControllerEntryPoint": format!("{out}/deploy-run-controller.mjs"),
        "indexWorkerEntryPoint": format!("{out}/deploy-index-worker.mjs"),
        "indexControllerEntryPoint": format!("{out}/deploy-index-controller.mjs"),
        "configPath": format!("{out}/trigger.config.mjs"),
        "externals": [], "build": {}, "customConditions": [], "deploy": { "env": {} },
        "otelImportHook": { "include": [] }
    });
    if let Some(overrides) = case["manifest"].as_object() {
        for (k, v) in overrides {
            if k == "deploy" {
                for (dk, dv) in v.as_object().unwrap() {
                    m["deploy"][dk] = dv.clone();
                }
            } else {
                m[k] = v.clone();
            }
        }
    }
    m
}

/// Our layer JSON in upstream's terms: `null` env values (JS `undefined`) and
/// missing keys compare equal, as JSON.stringify drops both.
fn normalize_layers(v: &Value, output: &Path, working_dir: &Path, project: &Path) -> Value {
    let text = serde_json::to_string(v).unwrap();
    let text = text
        .replace(&output.to_string_lossy().to_string(), "$OUTPUT_PATH")
        .replace(&working_dir.to_string_lossy().to_string(), "$WORKING_DIR")
        .replace(&project.to_string_lossy().to_string(), "$PROJECT_DIR");
    strip_nulls(serde_json::from_str(&text).unwrap())
}

fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

fn warnings(logs: &Value) -> Vec<String> {
    logs.as_array()
        .unwrap()
        .iter()
        .filter(|l| l["level"] == "warn")
        .map(|l| l["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn native_builtins_match_upstream() {
    let cases_file = repo().join("tests/node/extension-cases.json");
    let cases: Value = common::read_json(&cases_file);
    let cases = cases.get("cases").cloned().unwrap_or(cases);
    let recorded = record_upstream(&cases_file);
    let by_id: BTreeMap<&str, &Value> = recorded
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), &r["result"]))
        .collect();

    let mut compared = 0;
    let mut failures = Vec::new();
    for case in cases.as_array().unwrap() {
        if case["native"] == false {
            continue;
        }
        let id = case["id"].as_str().unwrap();
        let adjusted;
        let upstream = if id.starts_with("audioWaveform") {
            // Deliberate difference: liftoff's audioWaveform leaves out upstream 3.3.17's
            // `RUN apt-get install -y --fix-broken`, which uninstalls audiowaveform (README).
            adjusted = without_line(by_id[id], AUDIOWAVEFORM_FIX_BROKEN);
            &adjusted
        } else {
            by_id[id]
        };
        let project = common::fixture(case["project"].as_str().unwrap());
        let working_dir = project.join(case["workingDir"].as_str().unwrap_or("."));
        let output = tempfile::tempdir().unwrap();
        let mut env: BTreeMap<String, String> = std::env::vars().collect();
        for (k, v) in case["env"].as_object().into_iter().flatten() {
            match v.as_str() {
                Some(v) => env.insert(k.clone(), v.to_string()),
                None => env.remove(k),
            };
        }
        let manifest = liftoff_manifest::BuildManifest::from_json(
            &default_manifest(case, output.path()).to_string(),
        )
        .unwrap();
        let target = if case["target"] == "dev" {
            liftoff_extensions::Target::Dev
        } else {
            liftoff_extensions::Target::Deploy
        };
        let runtime = if manifest.runtime == liftoff_extensions::Runtime::Bun {
            liftoff_extensions::Runtime::Bun
        } else {
            liftoff_extensions::Runtime::Node
        };
        let args: Vec<Value> = case["args"].as_array().cloned().unwrap_or_default();
        let ours = liftoff_extensions::record(
            case["module"].as_str().unwrap(),
            case["export"].as_str().unwrap(),
            &args,
            target,
            runtime,
            &working_dir,
            &env,
            &manifest,
        );
        compared += 1;
        match (&upstream["error"], ours) {
            (Value::Null, Err(e)) => {
                failures.push(format!("{id}: upstream succeeded, liftoff failed: {e}"));
            }
            (err, Ok(_)) if !err.is_null() => {
                failures.push(format!("{id}: upstream failed ({err}), liftoff succeeded"));
            }
            (Value::Null, Ok(rec)) if KNOWN_DIFFERENCES.iter().any(|(k, _)| *k == id) => {
                // liftoff pins the version installed in node_modules instead of `latest`.
                let package = KNOWN_DIFFERENCES.iter().find(|(k, _)| *k == id).unwrap().1;
                let installed = common::read_json(
                    &project
                        .join("node_modules")
                        .join(package)
                        .join("package.json"),
                )["version"]
                    .clone();
                let ours = rec.start_layers[0].dependencies.as_ref().unwrap()[package].clone();
                assert_eq!(Value::String(ours), installed, "{id}");
            }
            (Value::Null, Ok(rec)) => failures.extend(compare(
                id,
                &rec,
                upstream,
                output.path(),
                &working_dir,
                &project,
            )),
            _ => {} // both failed
        }
    }
    assert!(compared > 50, "only {compared} native cases compared");
    assert!(
        failures.is_empty(),
        "{} of {compared} cases differ from upstream:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// What differs between liftoff's recording and upstream's for one case.
fn compare(
    id: &str,
    rec: &liftoff_extensions::Recording,
    upstream: &Value,
    output: &Path,
    working_dir: &Path,
    project: &Path,
) -> Vec<String> {
    let mut failures = Vec::new();
    let ours = serde_json::to_value(rec).unwrap();
    let norm = |v: &Value| normalize_layers(v, output, working_dir, project);
    for field in ["name", "externals", "startLayers", "completeLayers"] {
        let (a, b) = (norm(&ours[field]), strip_nulls(upstream[field].clone()));
        if a != b {
            failures.push(format!(
                "{id}: {field} differs\n  liftoff:  {a}\n  upstream: {b}"
            ));
        }
    }
    let mut our_files: Vec<String> = rec.files.iter().map(|f| f.to.clone()).collect();
    our_files.sort();
    let mut up_files: Vec<String> = upstream["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    up_files.sort();
    up_files.dedup();
    our_files.dedup();
    if our_files != up_files {
        failures.push(format!(
            "{id}: copied files differ\n  liftoff:  {our_files:?}\n  upstream: {up_files:?}"
        ));
    }
    let our_warnings = warnings(&norm(&ours["logs"]));
    let up_warnings = warnings(&upstream["logs"]);
    if our_warnings != up_warnings {
        failures.push(format!(
            "{id}: warnings differ\n  liftoff:  {our_warnings:?}\n  upstream: {up_warnings:?}"
        ));
    }
    failures
}

/// Records every case with upstream's code (`record-extension.mjs --all`).
fn record_upstream(cases_file: &Path) -> Value {
    let recorded = node([
        repo().join("tests/node/record-extension.mjs").as_os_str(),
        "--all".as_ref(),
        cases_file.as_os_str(),
        "--fixtures".as_ref(),
        repo().join("fixtures").as_os_str(),
        "--normalize".as_ref(),
    ]);
    assert!(
        recorded.status.success(),
        "recorder failed:\n{}",
        text(&recorded.stderr)
    );
    serde_json::from_slice(&recorded.stdout).unwrap()
}
