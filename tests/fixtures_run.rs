//! Every fixture builds offline with `deploy --dry-run`, and node imports every
//! output and runs each task's `run()` through the SDK's task catalog.

mod common;

use common::{check_build, dry_run, fixture};

fn builds_and_runs(name: &str, variant: Option<&str>) {
    let project = fixture(name);
    let (config_arg, expected) = match variant {
        Some(v) => (
            vec!["--config".to_string(), format!("trigger.{v}.config.ts")],
            format!("expected.{v}.json"),
        ),
        None => (vec![], "expected.json".to_string()),
    };
    let extra: Vec<&str> = config_arg.iter().map(String::as_str).collect();
    let (dir, _) = dry_run(&project, &extra);
    let report = check_build(&dir, &project.join(expected));
    assert_eq!(report["ok"], true, "{report:#}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn hello() {
    builds_and_runs("hello", None);
}

#[test]
fn hello_bun_runtime() {
    builds_and_runs("hello", Some("bun"));
}

#[test]
fn jsx_automatic() {
    builds_and_runs("jsx", None);
}

#[test]
fn jsx_classic() {
    builds_and_runs("jsx", Some("classic"));
}

#[test]
fn cjs_deps() {
    builds_and_runs("cjs-deps", None);
}

#[test]
fn conditions() {
    builds_and_runs("conditions", None);
}

#[test]
fn externals() {
    builds_and_runs("externals", None);
}
