//! Snapshots of the generated files of a dry run (hashes redacted).

mod common;

use common::{dry_run, fixture, read_json};
use serde_json::Value;

fn redact(mut build: Value) -> Value {
    build["contentHash"] = "[contentHash]".into();
    if let Some(sources) = build["sources"].as_object_mut() {
        for source in sources.values_mut() {
            source["contents"] = "[base64 deflate]".into();
            source["contentHash"] = "[md5]".into();
        }
    }
    build
}

fn snapshot_variant(variant: Option<&str>, suffix: &str) {
    let project = fixture("hello");
    let config = variant.map(|v| format!("trigger.{v}.config.ts"));
    let extra: Vec<&str> = config
        .as_deref()
        .map(|c| vec!["--config", c])
        .unwrap_or_default();
    let (dir, _) = dry_run(&project, &extra);
    let build = redact(read_json(&dir.join("build.json")));
    insta::assert_snapshot!(
        format!("build_json_{suffix}"),
        serde_json::to_string_pretty(&build).unwrap()
    );
    insta::assert_snapshot!(
        format!("package_json_{suffix}"),
        std::fs::read_to_string(dir.join("package.json")).unwrap()
    );
    insta::assert_snapshot!(
        format!("containerfile_{suffix}"),
        std::fs::read_to_string(dir.join("Containerfile")).unwrap()
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn hello_node() {
    snapshot_variant(None, "node");
}

#[test]
fn hello_bun() {
    snapshot_variant(Some("bun"), "bun");
}
