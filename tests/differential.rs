//! Differential test against upstream: each fixture is built by liftoff and by
//! upstream's own trigger.dev@3.3.17 build code (esbuild 0.23, the versions
//! upstream uses), and the two must agree on the task files, the exported tasks
//! and the externals with their versions.
//!
//! Two deliberate differences are allowed, both documented in the README:
//! * upstream lists dynamic-import targets outside the task dirs in `files`
//!   (an esbuild metafile artefact); liftoff lists task files only;
//! * liftoff keeps packages that ship native code external (upstream HEAD
//!   behaviour); 3.3.17 bundles them. Each such package is reported as a
//!   `NATIVE_EXTERNAL` note.

mod common;

use std::collections::BTreeSet;

use common::{check_build, dry_run, fixture, read_json, upstream_build};
use serde_json::Value;

fn externals(v: &Value) -> BTreeSet<(String, String)> {
    v.as_array()
        .expect("externals array")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["version"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn tasks(report: &Value) -> Vec<Value> {
    report["tasks"].as_array().expect("tasks").clone()
}

fn compare(name: &str, variant: Option<&str>) {
    let project = fixture(name);
    let config = variant.map(|v| format!("trigger.{v}.config.ts"));
    let expected = project.join(variant.map_or("expected.json".to_string(), |v| {
        format!("expected.{v}.json")
    }));
    let mut extra = vec![];
    if let Some(c) = &config {
        extra = vec!["--config", c.as_str()];
    }

    let (ours_dir, ours_json) = dry_run(&project, &extra);
    let (up_dir, up_summary) = upstream_build(&project, config.as_deref());
    let ours = read_json(&ours_dir.join("build.json"));

    // Task files: upstream's `files` restricted to the task dirs == ours.
    let dirs: Vec<String> = ours["config"]["dirs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d.as_str()
                .unwrap()
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_string()
        })
        .collect();
    let ours_files: Vec<&str> = ours["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["entry"].as_str().unwrap())
        .collect();
    let up_files: Vec<&str> = up_summary["taskFiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .filter(|f| dirs.iter().any(|d| f.starts_with(&format!("{d}/"))))
        .collect();
    assert_eq!(ours_files, up_files, "task files differ from upstream's");

    // Externals: the same names and versions, except native packages liftoff keeps external.
    let native: BTreeSet<String> = ours_json["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == "NATIVE_EXTERNAL")
        .filter_map(|d| d["package"].as_str().map(String::from))
        .collect();
    let ours_ext = externals(&ours["externals"]);
    let up_ext = externals(&up_summary["externals"]);
    let extra_in_ours: BTreeSet<_> = ours_ext.difference(&up_ext).cloned().collect();
    let missing_in_ours: BTreeSet<_> = up_ext.difference(&ours_ext).cloned().collect();
    assert!(
        missing_in_ours.is_empty(),
        "upstream has externals liftoff lacks: {missing_in_ours:?}"
    );
    for (name, _) in &extra_in_ours {
        assert!(
            native.contains(name),
            "liftoff made {name} external but upstream did not, and it is not a native package"
        );
    }

    // The same exported tasks (id, file, export name), as node sees them.
    let ours_report = check_build(&ours_dir, &expected);
    let up_report = check_build(&up_dir, &expected);
    assert_eq!(
        tasks(&ours_report),
        tasks(&up_report),
        "exported tasks differ"
    );
    assert!(!tasks(&ours_report).is_empty());

    std::fs::remove_dir_all(ours_dir).unwrap();
    std::fs::remove_dir_all(up_dir).unwrap();
}

#[test]
fn hello_matches_upstream() {
    compare("hello", None);
}

#[test]
fn jsx_matches_upstream() {
    compare("jsx", None);
}

#[test]
fn jsx_classic_matches_upstream() {
    compare("jsx", Some("classic"));
}

#[test]
fn cjs_deps_match_upstream() {
    compare("cjs-deps", None);
}

#[test]
fn conditions_match_upstream() {
    compare("conditions", None);
}

#[test]
fn externals_match_upstream() {
    compare("externals", None);
}
