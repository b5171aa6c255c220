//! Byte-for-byte comparisons against outputs produced by trigger.dev 3.3.17 itself
//! (see `tests/data/README.md`).

use std::fs;
use std::path::{Path, PathBuf};

use liftoff_manifest::{BuildManifest, External, containerfile, package_json};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn case_names(kind: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(data_dir().join(kind))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Show where two long texts first differ, with whitespace made visible.
fn assert_same(case: &str, what: &str, actual: &str, expected: &str) {
    if actual == expected {
        return;
    }
    let at = actual
        .char_indices()
        .zip(expected.chars())
        .find(|((_, a), e)| a != e)
        .map_or(actual.len().min(expected.len()), |((i, _), _)| i);
    let start = at.saturating_sub(80);
    let window = |s: &str| {
        let end = (at + 80).min(s.len());
        s.get(start..end).unwrap_or("").escape_debug().to_string()
    };
    panic!(
        "{case}: {what} differs from upstream at byte {at} (lengths {} vs {})\n  actual:   {}\n  expected: {}",
        actual.len(),
        expected.len(),
        window(actual),
        window(expected)
    );
}

fn check_manifest_case(name: &str) {
    let dir = data_dir().join("manifests").join(name);
    let input: serde_json::Value = serde_json::from_str(&read(&dir.join("input.json"))).unwrap();
    let destination = input["destination"].as_str().unwrap();
    let mut manifest = BuildManifest::from_json(&input["manifest"].to_string()).unwrap();
    manifest.rewrite_paths(Path::new(destination)).unwrap();

    assert_same(
        name,
        "build.json",
        &manifest.to_build_json(),
        &read(&dir.join("build.json")),
    );
    assert_same(
        name,
        "Containerfile",
        &containerfile(&manifest).unwrap(),
        &read(&dir.join("Containerfile")),
    );
}

fn check_package_json_case(name: &str) {
    let dir = data_dir().join("package-json").join(name);
    let project: serde_json::Value =
        serde_json::from_str(&read(&dir.join("project-package.json"))).unwrap();
    let externals: Vec<External> =
        serde_json::from_str(&read(&dir.join("externals.json"))).unwrap();
    let actual = package_json(Some(&project), &externals).unwrap();
    assert_same(
        name,
        "package.json",
        &actual,
        &read(&dir.join("expected-package.json")),
    );
}

macro_rules! oracle_cases {
    ($check:ident, $kind:literal, $list:ident: $($test:ident => $name:literal),+ $(,)?) => {
        const $list: &[&str] = &[$($name),+];
        $(
            #[test]
            fn $test() {
                $check($name);
            }
        )+
    };
}

oracle_cases!(check_manifest_case, "manifests", MANIFEST_CASES:
    manifest_node_minimal => "node-minimal",
    manifest_node_full => "node-full",
    manifest_node_edge_env_order => "node-edge-env-order",
    manifest_bun_minimal => "bun-minimal",
    manifest_bun_full => "bun-full",
    manifest_bun_commands_only => "bun-commands-only",
);

oracle_cases!(check_package_json_case, "package-json", PACKAGE_JSON_CASES:
    package_json_typical => "typical",
    package_json_no_name_tabs => "no-name-tabs",
    package_json_null_name_odd_values => "null-name-odd-values",
);

#[test]
fn every_data_case_is_tested() {
    let mut listed: Vec<&str> = MANIFEST_CASES.to_vec();
    listed.sort_unstable();
    assert_eq!(case_names("manifests"), listed);
    let mut listed: Vec<&str> = PACKAGE_JSON_CASES.to_vec();
    listed.sort_unstable();
    assert_eq!(case_names("package-json"), listed);
}
