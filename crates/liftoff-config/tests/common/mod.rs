#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use liftoff_config::{ConfigError, LoadOptions, ResolvedConfig, load};
use tempfile::TempDir;

/// A temp project with the given files (paths relative to its root).
pub fn project(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (rel, contents) in files {
        write(dir.path(), rel, contents);
    }
    dir
}

pub fn write(root: &Path, rel: &str, contents: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, contents).expect("write");
}

pub fn opts(dir: &Path) -> LoadOptions {
    LoadOptions {
        project_dir: dir.to_path_buf(),
        ..LoadOptions::default()
    }
}

pub fn load_dir(dir: &Path) -> Result<ResolvedConfig, ConfigError> {
    load(&opts(dir))
}

pub fn load_env(dir: &Path, env: &[(&str, &str)]) -> Result<ResolvedConfig, ConfigError> {
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    load(&LoadOptions { env, ..opts(dir) })
}

/// Loads a project whose only file is `trigger.config.ts` with `source`.
pub fn load_source(source: &str) -> (TempDir, Result<ResolvedConfig, ConfigError>) {
    let dir = project(&[("trigger.config.ts", source)]);
    let result = load_dir(dir.path());
    (dir, result)
}

/// The error's message with the temp dir replaced by `[DIR]`.
pub fn message(err: &ConfigError, dir: &Path) -> String {
    err.to_string().replace(&dir.display().to_string(), "[DIR]")
}

pub fn err_message(dir: &Path, result: Result<ResolvedConfig, ConfigError>) -> String {
    match result {
        Ok(c) => panic!("expected an error, got {c:#?}"),
        Err(e) => message(&e, dir),
    }
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A minimal valid config with `extra` spliced into the object.
pub fn config_with(extra: &str) -> String {
    format!("export default {{\n  project: \"proj_test\",\n  maxDuration: 300,\n{extra}\n}};\n")
}
