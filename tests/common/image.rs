//! Helpers for the image tests: build with the local base image stand-in, unpack with umoci,
//! run programs in the image's rootfs with chroot.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::{liftoff, text};

pub const BASE: &str = "node:21-bookworm-slim";

pub fn cache_dir() -> PathBuf {
    let root = std::env::var_os("LIFTOFF_TEST_CACHE")
        .map_or_else(|| PathBuf::from("/var/cache/liftoff-test"), PathBuf::from);
    root.join("liftoff-cache")
}

pub fn mirrors_configured() {
    assert!(
        std::env::var_os("LIFTOFF_REGISTRY_MIRRORS").is_some(),
        "LIFTOFF_REGISTRY_MIRRORS is not set: run the image tests through scripts/test (it sources scripts/test-env/env.sh)"
    );
}

/// `deploy --dry-run` with the image; returns the build dir and the --json result.
pub fn build(project: &Path, cache: &Path, extra: &[&str]) -> (PathBuf, Value) {
    mirrors_configured();
    let mut args: Vec<String> = vec![
        "deploy".into(),
        "--dry-run".into(),
        project.display().to_string(),
        "--json".into(),
    ];
    args.extend(["--base-image", BASE, "--cache-dir"].map(String::from));
    args.push(cache.display().to_string());
    args.extend(extra.iter().map(ToString::to_string));
    let out = liftoff(&args);
    assert!(
        out.status.success(),
        "image build failed:\n{}",
        text(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    (PathBuf::from(json["buildDir"].as_str().unwrap()), json)
}

/// The image build must fail cleanly (exit 1, no panic); returns stderr.
pub fn fails_to_build(project: &Path) -> String {
    mirrors_configured();
    let out = liftoff([
        "deploy".as_ref(),
        "--dry-run".as_ref(),
        project.as_os_str(),
        "--base-image".as_ref(),
        BASE.as_ref(),
        "--cache-dir".as_ref(),
        cache_dir().as_os_str(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Unpacks `<build dir>/image` with umoci; returns the temp dir holding `bundle/rootfs`.
pub fn unpack(build_dir: &Path) -> (tempfile::TempDir, PathBuf) {
    let bundle = tempfile::tempdir().unwrap();
    let bundle_dir = bundle.path().join("bundle");
    run(Command::new("umoci")
        .args([
            "unpack",
            "--image",
            &format!("{}:latest", build_dir.join("image").display()),
        ])
        .arg(&bundle_dir));
    let rootfs = bundle_dir.join("rootfs");
    (bundle, rootfs)
}

/// The image config (`skopeo inspect --config`).
pub fn image_config(build_dir: &Path) -> Value {
    let layout = format!("oci:{}:latest", build_dir.join("image").display());
    serde_json::from_str(&run(
        Command::new("skopeo").args(["inspect", "--config", "--raw", &layout])
    ))
    .unwrap()
}

/// Runs `argv` chrooted in `rootfs` with exactly the image config's environment (plus `extra`).
pub fn in_image(
    rootfs: &Path,
    config: &Value,
    extra: &[(&str, &str)],
    argv: &[&str],
) -> std::process::Output {
    let mut cmd = Command::new("env");
    cmd.arg("-i");
    for e in config["config"]["Env"].as_array().into_iter().flatten() {
        cmd.arg(e.as_str().unwrap());
    }
    for (k, v) in extra {
        cmd.arg(format!("{k}={v}"));
    }
    cmd.arg("/usr/sbin/chroot").arg(rootfs).args(argv);
    cmd.output().unwrap()
}
