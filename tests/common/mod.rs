//! Shared helpers for the end-to-end tests: run the real `liftoff` binary on real
//! fixture projects and check the results with node.
#![allow(dead_code)]

pub mod image;
pub mod platform;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture project with its `node_modules` installed.
pub fn fixture(name: &str) -> PathBuf {
    let dir = repo().join("fixtures").join(name);
    assert!(
        dir.join("node_modules").is_dir(),
        "fixture {name} has no node_modules: run scripts/install-test-deps (scripts/test does it)"
    );
    dir
}

/// Runs the liftoff binary.
pub fn liftoff<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_liftoff"))
        .args(args)
        .env_remove("TRIGGER_LOG_LEVEL")
        .output()
        .expect("run liftoff")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `liftoff deploy --dry-run <project> [extra…] --json --no-image` must succeed; returns the build dir.
pub fn dry_run(project: &Path, extra: &[&str]) -> (PathBuf, serde_json::Value) {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("deploy"),
        OsStr::new("--dry-run"),
        project.as_os_str(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    args.push(OsStr::new("--json"));
    args.push(OsStr::new("--no-image"));
    let out = liftoff(&args);
    assert!(
        out.status.success(),
        "liftoff deploy --dry-run {} {extra:?} failed:\n{}",
        project.display(),
        text(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("--json output is not JSON ({e}):\n{}", text(&out.stdout)));
    let dir = PathBuf::from(
        json["buildDir"]
            .as_str()
            .expect("buildDir in --json output"),
    );
    assert!(dir.is_dir(), "build dir {} missing", dir.display());
    (dir, json)
}

/// Runs node with the given args from the repo root.
pub fn node<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new("node")
        .args(args)
        .current_dir(repo())
        .output()
        .expect("node is installed (scripts/install-test-deps)")
}

/// `tests/node/check-build.mjs <dir> <expected> --json`; panics with its report on failure.
pub fn check_build(dir: &Path, expected: &Path) -> serde_json::Value {
    let out = node([
        repo().join("tests/node/check-build.mjs").as_os_str(),
        dir.as_os_str(),
        expected.as_os_str(),
        OsStr::new("--json"),
    ]);
    assert!(
        out.status.success(),
        "check-build failed for {}:\n{}\n{}",
        dir.display(),
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("check-build --json prints JSON")
}

/// Builds the fixture with upstream's own trigger.dev@3.3.17 code (esbuild) into
/// a fresh dir inside the project; returns (dir, summary).
pub fn upstream_build(project: &Path, config: Option<&str>) -> (PathBuf, serde_json::Value) {
    let tmp = project.join(".trigger/tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let out_dir = tempfile::Builder::new()
        .prefix("upstream-")
        .tempdir_in(&tmp)
        .unwrap()
        .keep();
    std::fs::remove_dir(&out_dir).unwrap();
    let mut args = vec![
        repo()
            .join("tests/node/upstream-build.mjs")
            .into_os_string(),
        project.as_os_str().to_owned(),
        out_dir.as_os_str().to_owned(),
    ];
    if let Some(c) = config {
        args.push("--config".into());
        args.push(c.into());
    }
    let out = node(&args);
    assert!(
        out.status.success(),
        "upstream build failed:\n{}",
        text(&out.stderr)
    );
    (
        out_dir,
        serde_json::from_slice(&out.stdout).expect("upstream-build prints JSON"),
    )
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file under `dir`, relative, sorted.
pub fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    files.sort();
    files
}

/// A throwaway project in a temp dir whose `node_modules` links to a fixture's.
pub struct TempProject {
    pub dir: tempfile::TempDir,
}

impl TempProject {
    pub fn new(node_modules_from: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(
            fixture(node_modules_from).join("node_modules"),
            dir.path().join("node_modules"),
        )
        .unwrap();
        Self { dir }
    }

    pub fn empty() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, contents: &str) -> &Self {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
        self
    }

    /// Runs `liftoff deploy --dry-run` on it.
    pub fn dry_run(&self, extra: &[&str]) -> Output {
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("deploy"),
            OsStr::new("--dry-run"),
            OsStr::new("--no-image"),
            self.path().as_os_str(),
        ];
        args.extend(extra.iter().map(OsStr::new));
        liftoff(&args)
    }
}
