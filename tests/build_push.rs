//! `liftoff build --image REF --push / --load-image / --output docker-archive:FILE` end to end:
//! the real local registries of `scripts/test-env` (open on 127.0.0.1:5000, htpasswd on :5001),
//! skopeo to check what landed, and a private dockerd (`scripts/test-env/dockerd`) to load and
//! run the image.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::image::{cache_dir, mirrors_configured};
use common::{fixture, liftoff, text};
use serde_json::Value;

/// The local registry's copy of the base image: pushes mount its layers.
fn local_base() -> String {
    format!(
        "{}/library/node:21-bookworm-slim",
        std::env::var("LIFTOFF_TEST_REGISTRY").expect("LIFTOFF_TEST_REGISTRY")
    )
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("liftoff-test/{name}-{}-{nanos}", std::process::id())
}

fn build(project: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    mirrors_configured();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_liftoff"));
    cmd.args(["build", project.to_str().unwrap(), "--json", "--base-image"])
        .arg(local_base())
        .arg("--cache-dir")
        .arg(cache_dir())
        .args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "liftoff build failed:\n{}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn skopeo_digest(reference: &str) -> String {
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "skopeo: {}", text(&out.stderr));
    format!(
        "sha256:{}",
        liftoff_registry::sha256(&out.stdout).trim_start_matches("sha256:")
    )
}

#[test]
fn push_round_trip_mounts_the_base_and_a_repush_uploads_nothing() {
    let registry = std::env::var("LIFTOFF_TEST_REGISTRY").unwrap();
    let reference = format!("{registry}/{}:v1", unique("hello"));
    let json = ok_json(&build(
        &fixture("hello"),
        &["--image", &reference, "--push"],
        &[],
    ));
    let pushed = &json["pushed"];
    assert_eq!(pushed["digest"], json["image"]["manifestDigest"]);
    assert_eq!(
        skopeo_digest(&reference),
        pushed["digest"].as_str().unwrap()
    );
    // The two base layers already live in library/node on the same registry: mounted.
    assert_eq!(pushed["mounted"], 2, "{pushed}");
    assert!(pushed["uploaded"].as_u64().unwrap() >= 3, "{pushed}");

    // The same image again: every blob is already there.
    let again = ok_json(&build(
        &fixture("hello"),
        &["--image", &reference, "--push"],
        &[],
    ));
    assert_eq!(again["pushed"]["digest"], pushed["digest"]);
    assert_eq!(again["pushed"]["uploaded"], 0, "{}", again["pushed"]);
    assert_eq!(again["pushed"]["mounted"], 0);
}

#[test]
fn credentials_from_flags_and_a_wrong_password_is_a_clean_failure() {
    let registry = std::env::var("LIFTOFF_TEST_AUTH_REGISTRY").unwrap();
    let user = std::env::var("LIFTOFF_TEST_AUTH_USERNAME").unwrap();
    let password = std::env::var("LIFTOFF_TEST_AUTH_PASSWORD").unwrap();
    let reference = format!("{registry}/{}:v1", unique("auth"));
    let json = ok_json(&build(
        &fixture("hello"),
        &[
            "--image",
            &reference,
            "--push",
            "--registry-username",
            &user,
        ],
        // The password through the environment, as CI secrets are.
        &[("LIFTOFF_REGISTRY_PASSWORD", &password)],
    ));
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw", "--creds"])
        .arg(format!("{user}:{password}"))
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        format!(
            "sha256:{}",
            liftoff_registry::sha256(&out.stdout).trim_start_matches("sha256:")
        ),
        json["pushed"]["digest"].as_str().unwrap()
    );

    let wrong = "not-the-password-93ad1";
    let out = build(
        &fixture("hello"),
        &[
            "--image",
            &reference,
            "--push",
            "--registry-username",
            &user,
            "--registry-password",
            wrong,
        ],
        &[],
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains(&registry), "{all}");
    assert!(!all.contains(wrong), "the password was printed:\n{all}");
    assert!(!all.contains("Pushed"), "{all}");
    assert!(!all.contains("panicked"), "{all}");
}

#[test]
fn load_image_into_docker_and_run_it() {
    let docker_host = std::env::var("LIFTOFF_TEST_DOCKER_HOST").expect("LIFTOFF_TEST_DOCKER_HOST");
    let reference = format!("{}:load", unique("hello"));
    let archive = tempfile::tempdir().unwrap();
    let archive_file = archive.path().join("image.tar");
    let json = ok_json(&build(
        &fixture("hello"),
        &[
            "--image",
            &reference,
            "--load-image",
            "--output",
            &format!("docker-archive:{}", archive_file.display()),
        ],
        &[("DOCKER_HOST", &docker_host)],
    ));
    assert_eq!(json["loaded"], reference.as_str());
    // The docker archive is a valid image too.
    let out = Command::new("skopeo")
        .arg("inspect")
        .arg(format!("docker-archive:{}", archive_file.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    let run = Command::new("/usr/bin/docker")
        .env("DOCKER_HOST", &docker_host)
        .args(["run", "--rm", "--network", "host", "--entrypoint", "node", &reference])
        .args([
            "-e",
            "const i = require('/app/index.json'); console.log(process.env.NODE_ENV, require('os').userInfo().username, i.tasks.map(t => t.id).sort().join(','))",
        ])
        .output()
        .unwrap();
    assert!(run.status.success(), "docker run: {}", text(&run.stderr));
    assert_eq!(
        text(&run.stdout).trim(),
        "production node hello-schema,hello-world"
    );
    let _ = Command::new("/usr/bin/docker")
        .env("DOCKER_HOST", &docker_host)
        .args(["rmi", "-f", &reference])
        .output();
}

#[test]
fn load_image_without_an_engine_says_how_to_point_at_one() {
    let out = build(
        &fixture("hello"),
        &["--image", "liftoff-test/none:v1", "--load-image"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("DOCKER_HOST"), "{err}");
    assert!(err.contains("unix:///nonexistent/docker.sock"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn push_needs_an_image_reference_with_a_tag() {
    let out = liftoff(["build", ".", "--push"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--image"));
    let out = build(
        &fixture("hello"),
        &["--image", "127.0.0.1:5000/liftoff-test/notag", "--push"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("give a tag"),
        "{}",
        text(&out.stderr)
    );
}
