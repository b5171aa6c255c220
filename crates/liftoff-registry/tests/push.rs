//! Pushes OCI layouts to real `docker-registry` processes (see `common`): open, htpasswd, TLS
//! with a test CA and token auth; and through a proxy that injects failures.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::fault_proxy::{self, FaultProxy};
use common::{AMD64, Registry, RegistryOptions, assert_image, fixture, run, token_service};
use liftoff_registry::{
    BlobCache, BlobOutcome, PushEvent, PushOptions, PushedImage, Reference, RegistryConfig,
    RegistryError, push_layout, sha256,
};

const USER: &str = "pushuser";
const PASSWORD: &str = "pu5h-s3cret";

fn reference(host: &str, path: &str) -> Reference {
    format!("{host}/{path}").parse().unwrap()
}

/// No mirrors, no credential sources, no system `certs.d`: never the developer's own setup.
fn config() -> RegistryConfig {
    RegistryConfig {
        certs_d: None,
        ..RegistryConfig::default()
    }
}

/// What a push reported.
struct Pushed {
    result: Result<PushedImage, RegistryError>,
    events: Vec<PushEvent>,
    log: Vec<String>,
}

impl Pushed {
    fn ok(&self) -> &PushedImage {
        match &self.result {
            Ok(image) => image,
            Err(e) => panic!("push failed: {e}"),
        }
    }

    fn err(&self) -> &RegistryError {
        match &self.result {
            Ok(image) => panic!("push succeeded: {image:?}"),
            Err(e) => e,
        }
    }

    /// `digest → outcome` of every finished blob.
    fn outcomes(&self) -> Vec<(String, BlobOutcome)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                PushEvent::BlobDone {
                    digest, outcome, ..
                } => Some((digest.clone(), outcome.clone())),
                _ => None,
            })
            .collect()
    }
}

/// Pushes with these options (progress goes to an event collector), logging HTTP exchanges.
fn push_with(
    layout: &Path,
    tag: &str,
    target: &Reference,
    config: &RegistryConfig,
    mount_from: &[&str],
    chunk_size: Option<u64>,
) -> Pushed {
    push_jobs(layout, tag, target, config, mount_from, chunk_size, 4)
}

/// [`push_with`], `jobs` blobs at a time.
fn push_jobs(
    layout: &Path,
    tag: &str,
    target: &Reference,
    config: &RegistryConfig,
    mount_from: &[&str],
    chunk_size: Option<u64>,
    jobs: usize,
) -> Pushed {
    let events = Mutex::new(Vec::new());
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    let config = RegistryConfig {
        http_log: Some(Arc::new(move |line: &str| {
            sink.lock().unwrap().push(line.to_string());
        })),
        ..config.clone()
    };
    let progress = |event: &PushEvent| events.lock().unwrap().push(event.clone());
    let opts = PushOptions {
        mount_from: mount_from.iter().map(ToString::to_string).collect(),
        chunk_size,
        jobs,
        ..PushOptions::new(&progress)
    };
    let result = push_layout(layout, Some(tag), target, &config, &opts);
    let log = log.lock().unwrap().clone();
    Pushed {
        result,
        events: events.into_inner().unwrap(),
        log,
    }
}

fn push(layout: &Path, tag: &str, target: &Reference, config: &RegistryConfig) -> Pushed {
    push_with(layout, tag, target, config, &[], None)
}

/// The amd64 image's blobs: its layers and its config.
fn amd64_blobs(fx: &common::Fixture) -> Vec<String> {
    let mut blobs: Vec<String> = fx.amd64.layers.iter().map(|(d, _)| d.clone()).collect();
    blobs.push(fx.amd64.config_digest.clone());
    blobs.sort();
    blobs
}

fn sorted_digests(outcomes: &[(String, BlobOutcome)]) -> Vec<String> {
    let mut digests: Vec<String> = outcomes.iter().map(|(d, _)| d.clone()).collect();
    digests.sort();
    digests
}

fn skopeo_inspect(host: &str, path: &str, raw: bool) -> Vec<u8> {
    let mut command = Command::new("skopeo");
    command.args(["inspect", "--tls-verify=false"]);
    if raw {
        command.arg("--raw");
    }
    run(command.arg(format!("docker://{host}/{path}")))
}

/// Every log line is `METHOD url -> status` (or `-> failed: …`), and holds no secret.
fn assert_log_is_clean(log: &[String], secrets: &[&str]) {
    assert!(!log.is_empty());
    for line in log {
        let (request, outcome) = line.split_once(" -> ").unwrap_or_else(|| panic!("{line}"));
        let (method, url) = request.split_once(' ').unwrap();
        assert!(
            ["GET", "HEAD", "POST", "PUT", "PATCH"].contains(&method),
            "{line}"
        );
        assert!(url.starts_with("http"), "{line}");
        assert!(
            outcome.parse::<u16>().is_ok() || outcome.starts_with("failed: "),
            "{line}"
        );
        assert!(
            line.matches("_state=").count() == line.matches("_state=REDACTED").count(),
            "upload state not redacted: {line}"
        );
        for secret in secrets {
            assert!(!line.contains(secret), "secret in the log: {line}");
        }
    }
}

/// On the wire: blobs, the config after the layers, the manifest, then the checks.
fn assert_wire_order(registry: &Registry, fx: &common::Fixture) {
    let requests = registry.liftoff_requests();
    let position = |needle: &str| {
        requests
            .iter()
            .position(|r| r.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in {requests:#?}"))
    };
    let last_position = |needle: &str| {
        requests
            .iter()
            .rposition(|r| r.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in {requests:#?}"))
    };
    let manifest_put = position("PUT /v2/test/push/manifests/v1");
    let config_hex = fx.amd64.config_digest.strip_prefix("sha256:").unwrap();
    let config_put = requests
        .iter()
        .position(|r| r.starts_with("PUT ") && r.contains(config_hex))
        .unwrap();
    for (layer, _) in &fx.amd64.layers {
        let hex = layer.strip_prefix("sha256:").unwrap();
        let put = requests
            .iter()
            .position(|r| r.starts_with("PUT ") && r.contains(hex))
            .unwrap();
        assert!(put < config_put, "{requests:#?}");
    }
    assert!(config_put < manifest_put, "{requests:#?}");
    assert!(
        last_position(&format!(
            "HEAD /v2/test/push/manifests/{}",
            fx.amd64.manifest_digest
        )) > manifest_put
    );
    assert!(last_position("HEAD /v2/test/push/blobs/") > manifest_put);
}

#[test]
fn push_to_an_open_registry_round_trips_byte_exact() {
    require_tools!();
    let fx = fixture();
    let registry = Registry::start();
    let target = reference(&registry.host, "test/push:v1");

    let first = push(&fx.layout, "v1", &target, &config());
    let image = first.ok();
    assert_eq!(image.digest, fx.amd64.manifest_digest);
    assert_eq!(image.reference, format!("{}/test/push:v1", registry.host));
    assert_eq!((image.uploaded, image.mounted, image.skipped), (4, 0, 0));
    assert!(
        first
            .outcomes()
            .iter()
            .all(|(_, o)| *o == BlobOutcome::Uploaded)
    );
    assert_eq!(sorted_digests(&first.outcomes()), amd64_blobs(&fx));
    // The manifest is pushed after every blob and verified last.
    let manifest_at = first
        .events
        .iter()
        .position(|e| matches!(e, PushEvent::ManifestPushed { .. }))
        .unwrap();
    assert!(
        first.events[..manifest_at]
            .iter()
            .filter(|e| matches!(e, PushEvent::BlobDone { .. }))
            .count()
            == 4
    );
    assert_eq!(
        first.events.last(),
        Some(&PushEvent::Verified {
            digest: fx.amd64.manifest_digest.clone()
        })
    );

    assert_wire_order(&registry, &fx);

    // skopeo sees the same bytes and digest.
    let raw = skopeo_inspect(&registry.host, "test/push:v1", true);
    assert!(raw == fx.amd64.manifest, "the registry serves other bytes");
    let inspected: serde_json::Value =
        serde_json::from_slice(&skopeo_inspect(&registry.host, "test/push:v1", false)).unwrap();
    assert_eq!(inspected["Digest"], fx.amd64.manifest_digest.as_str());
    assert_eq!(inspected["Architecture"], "amd64");

    // Pulling it back gives identical blobs.
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());
    let pulled = common::pull_with_events(&target.to_string(), AMD64, &config(), &cache)
        .0
        .unwrap();
    assert_image(&pulled, &fx.amd64, &cache);

    assert_log_is_clean(&first.log, &[]);
    assert!(
        first.log.contains(&format!(
            "PUT http://{}/v2/test/push/manifests/v1 -> 201",
            registry.host
        )),
        "{:#?}",
        first.log
    );

    // Again: everything is there already, nothing is uploaded.
    let before = registry.liftoff_requests().len();
    let second = push(&fx.layout, "v1", &target, &config());
    let image = second.ok();
    assert_eq!((image.uploaded, image.mounted, image.skipped), (0, 0, 4));
    assert!(
        second
            .outcomes()
            .iter()
            .all(|(_, o)| *o == BlobOutcome::AlreadyPresent)
    );
    assert!(
        !second
            .events
            .iter()
            .any(|e| matches!(e, PushEvent::BlobBytes { .. }))
    );
    let new = &registry.liftoff_requests()[before..];
    assert!(
        !new.iter().any(|r| r.starts_with("POST")
            || r.starts_with("PATCH")
            || (r.starts_with("PUT") && r.contains("/blobs/"))),
        "{new:#?}"
    );
}

#[test]
fn pushing_an_index_pushes_every_image() {
    require_tools!();
    let fx = fixture();
    let registry = Registry::start();
    let target = reference(&registry.host, "test/multi:latest");
    let pushed = push(&fx.layout, "multi", &target, &config());
    let image = pushed.ok();
    assert_eq!(image.digest, fx.index_digest);
    // 3 amd64 layers + 1 arm64 layer (the base is shared) + 2 configs.
    assert_eq!(image.uploaded, 6);
    let manifests: Vec<&String> = pushed
        .events
        .iter()
        .filter_map(|e| match e {
            PushEvent::ManifestPushed { digest } => Some(digest),
            _ => None,
        })
        .collect();
    assert_eq!(
        manifests,
        [
            &fx.amd64.manifest_digest,
            &fx.arm64.manifest_digest,
            &fx.index_digest
        ]
    );
    assert!(skopeo_inspect(&registry.host, "test/multi:latest", true) == fx.index);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());
    let arm = common::pull_with_events(&target.to_string(), ("linux", "arm64"), &config(), &cache)
        .0
        .unwrap();
    assert_image(&arm, &fx.arm64, &cache);
    assert_eq!(arm.index_digest.as_deref(), Some(fx.index_digest.as_str()));

    // Pinned by digest instead of a tag: fine when it is the layout's digest.
    let pinned = reference(
        &registry.host,
        &format!("test/pinned@{}", fx.amd64.manifest_digest),
    );
    assert_eq!(
        push(&fx.layout, "v1", &pinned, &config()).ok().digest,
        fx.amd64.manifest_digest
    );
    let wrong = reference(
        &registry.host,
        &format!("test/pinned@{}", fx.arm64.manifest_digest),
    );
    let message = push(&fx.layout, "v1", &wrong, &config()).err().to_string();
    assert!(message.contains("has digest"), "{message}");
}

#[test]
fn layers_are_mounted_from_another_repository() {
    require_tools!();
    let fx = fixture();
    let registry = Registry::start();
    push(
        &fx.layout,
        "v1",
        &reference(&registry.host, "base/a:v1"),
        &config(),
    )
    .ok();

    let before = registry.liftoff_requests().len();
    let target = reference(&registry.host, "app/b:v1");
    // The first source does not have the blobs: the registry refuses, the next one is tried.
    let pushed = push_with(
        &fx.layout,
        "v1",
        &target,
        &config(),
        &[
            "base/nothing-here",
            &format!("{}/base/a:v1", registry.host),
            "ghcr.io/x/y",
        ],
        None,
    );
    let image = pushed.ok();
    assert_eq!((image.uploaded, image.mounted, image.skipped), (0, 4, 0));
    let outcomes = pushed.outcomes();
    assert_eq!(sorted_digests(&outcomes), amd64_blobs(&fx));
    assert!(
        outcomes.iter().all(|(_, o)| *o
            == BlobOutcome::Mounted {
                from: "base/a".to_string()
            }),
        "{outcomes:?}"
    );
    let new = &registry.liftoff_requests()[before..];
    assert_eq!(
        new.iter()
            .filter(
                |r| r.starts_with("POST /v2/app/b/blobs/uploads/?mount=sha256")
                    && r.contains("&from=base%2Fa ")
            )
            .count(),
        4,
        "{new:#?}"
    );
    assert!(
        !new.iter()
            .any(|r| r.starts_with("PUT") && r.contains("/blobs/")),
        "{new:#?}"
    );
    assert!(skopeo_inspect(&registry.host, "app/b:v1", true) == fx.amd64.manifest);
}

#[test]
fn a_layout_missing_a_blob_fails_before_anything_is_sent() {
    require_tools!();
    let fx = fixture();
    let registry = Registry::start();
    let target = reference(&registry.host, "test/broken:v1");
    let (layer, _) = &fx.amd64.layers[1];
    let path = fx
        .layout
        .join("blobs/sha256")
        .join(layer.strip_prefix("sha256:").unwrap());
    let saved = fs::read(&path).unwrap();
    fs::remove_file(&path).unwrap();

    let pushed = push(&fx.layout, "v1", &target, &config());
    let err = pushed.err();
    let message = err.to_string();
    assert!(matches!(err, RegistryError::Layout { .. }), "{message}");
    assert!(
        message.contains(layer.as_str())
            && message.contains("layer 2 of manifest")
            && message.contains("is missing")
            && message.contains("nothing was pushed"),
        "{message}"
    );
    assert!(pushed.events.is_empty(), "{:?}", pushed.events);
    assert!(pushed.log.is_empty(), "{:?}", pushed.log);
    assert!(registry.liftoff_requests().is_empty());

    // Truncated instead of missing.
    fs::write(&path, &saved[..saved.len() / 2]).unwrap();
    let message = push(&fx.layout, "v1", &target, &config()).err().to_string();
    assert!(
        message.contains(layer.as_str()) && message.contains("damaged"),
        "{message}"
    );
    // An unknown tag.
    fs::write(&path, &saved).unwrap();
    let message = push(&fx.layout, "nope", &target, &config())
        .err()
        .to_string();
    assert!(message.contains("no image is tagged `nope`"), "{message}");
    assert!(registry.liftoff_requests().is_empty());
}

/// An htpasswd registry.
fn basic_registry() -> Registry {
    Registry::start_with(RegistryOptions {
        htpasswd: Some((USER.to_string(), PASSWORD.to_string())),
        ..RegistryOptions::default()
    })
}

fn auth_value(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// A config as `from_env` would build it from `vars` (nothing else from the real environment).
fn config_from(vars: &[(&str, &std::ffi::OsStr)]) -> RegistryConfig {
    let config = RegistryConfig::from_vars(|name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
    })
    .unwrap();
    RegistryConfig {
        certs_d: None,
        ..config
    }
}

/// Writes `docker-credential-liftofftest` into `bin`: it answers for `host` only and records
/// what it was asked in `bin/asked.log`.
fn write_helper(bin: &Path, host: &str, username: &str, secret: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    fs::create_dir_all(bin).unwrap();
    let script = format!(
        r#"#!/bin/sh
[ "$1" = get ] || exit 3
read -r server
echo "$server" >> "{log}"
if [ "$server" = "{host}" ]; then
  printf '{{"ServerURL":"%s","Username":"{username}","Secret":"{secret}"}}\n' "$server"
  exit 0
fi
echo "credentials not found in native keychain"
exit 1
"#,
        log = bin.join("asked.log").display()
    );
    let path = bin.join("docker-credential-liftofftest");
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// `bin` in front of the real `PATH` (the helper script needs `sh` and `printf`).
fn path_with(bin: &Path) -> std::ffi::OsString {
    let mut dirs = vec![bin.to_path_buf()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

#[test]
fn credentials_come_from_every_source() {
    require_tools!();
    let fx = fixture();
    let registry = basic_registry();
    let home = tempfile::tempdir().unwrap();
    let dir = |name: &str| {
        let dir = home.path().join(name);
        fs::create_dir_all(&dir).unwrap();
        dir
    };
    let mut repository = 0;
    let mut target = || {
        repository += 1;
        reference(&registry.host, &format!("private/app{repository}:v1"))
    };
    let good = format!(r#"{{"auth":"{}"}}"#, auth_value(USER, PASSWORD));
    let wrong = format!(r#"{{"auth":"{}"}}"#, auth_value(USER, "not-it"));

    // 1. Explicit credentials win over a Docker config with a wrong password.
    let docker = dir("docker-wrong");
    fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"{}":{wrong}}}}}"#, registry.host),
    )
    .unwrap();
    let explicit = config_from(&[("DOCKER_CONFIG", docker.as_os_str())]).with_credentials(
        &registry.host,
        USER,
        PASSWORD,
    );
    let pushed = push(&fx.layout, "v1", &target(), &explicit);
    assert_eq!(pushed.ok().uploaded, 4);
    assert_log_is_clean(&pushed.log, &[PASSWORD, &auth_value(USER, PASSWORD)]);

    // 2. Docker config `auths`, keyed by URL.
    let docker = dir("docker-good");
    fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"http://{}/v2/":{good}}}}}"#, registry.host),
    )
    .unwrap();
    let config = config_from(&[("DOCKER_CONFIG", docker.as_os_str())]);
    push(&fx.layout, "v1", &target(), &config).ok();

    // 3. A credential helper named by `credHelpers`, found on the configured PATH…
    let bin = dir("bin");
    write_helper(&bin, &registry.host, USER, PASSWORD);
    let path = path_with(&bin);
    let docker = dir("docker-helper");
    fs::write(
        docker.join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"liftofftest"}}}}"#, registry.host),
    )
    .unwrap();
    let config = config_from(&[("DOCKER_CONFIG", docker.as_os_str()), ("PATH", &path)]);
    push(&fx.layout, "v1", &target(), &config).ok();
    let asked = fs::read_to_string(bin.join("asked.log")).unwrap();
    assert_eq!(asked.lines().collect::<Vec<_>>(), [registry.host.as_str()]);

    // 4. …and by `credsStore` (with the empty `auths` entry `docker login` leaves).
    let docker = dir("docker-store");
    fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{}}}},"credsStore":"liftofftest"}}"#,
            registry.host
        ),
    )
    .unwrap();
    let config = config_from(&[("DOCKER_CONFIG", docker.as_os_str()), ("PATH", &path)]);
    push(&fx.layout, "v1", &target(), &config).ok();

    // 5. A podman/skopeo auth file: `REGISTRY_AUTH_FILE`, and the XDG_RUNTIME_DIR default.
    let auth_file = home.path().join("auth.json");
    fs::write(
        &auth_file,
        format!(r#"{{"auths":{{"{}":{good}}}}}"#, registry.host),
    )
    .unwrap();
    let empty = dir("docker-empty");
    let config = config_from(&[
        ("DOCKER_CONFIG", empty.as_os_str()),
        ("REGISTRY_AUTH_FILE", auth_file.as_os_str()),
    ]);
    push(&fx.layout, "v1", &target(), &config).ok();
    let runtime = dir("run");
    fs::create_dir_all(runtime.join("containers")).unwrap();
    fs::copy(&auth_file, runtime.join("containers/auth.json")).unwrap();
    let config = config_from(&[
        ("DOCKER_CONFIG", empty.as_os_str()),
        ("XDG_RUNTIME_DIR", runtime.as_os_str()),
    ]);
    push(&fx.layout, "v1", &target(), &config).ok();

    // No credentials anywhere: how to log in, naming what was looked at.
    let config = config_from(&[("DOCKER_CONFIG", empty.as_os_str())]);
    let err = push(&fx.layout, "v1", &target(), &config)
        .result
        .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, RegistryError::Unauthorized { status: 401, .. }),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "No credentials for {} were found in",
            registry.host
        )) && message.contains("Pushing needs credentials")
            && message.contains(&format!("`docker login {}`", registry.host))
            && message.contains("--registry-password"),
        "{message}"
    );
}

#[test]
fn a_wrong_password_is_refused_without_showing_it() {
    require_tools!();
    let fx = fixture();
    let wrong = "wr0ng-pa55word";
    let secrets = [wrong.to_string(), auth_value(USER, wrong)];
    let check = |pushed: &Pushed, host: &str, origin: &str| {
        let err = pushed.err();
        let message = err.to_string();
        let debug = format!("{err:?}");
        assert!(
            matches!(err, RegistryError::Unauthorized { status: 401, .. }),
            "{message}"
        );
        assert!(
            message.contains(host)
                && message.contains("private/x")
                && message.contains(&format!("(user `{USER}`) from {origin} were rejected"))
                && message.contains("push access")
                && message.contains(&format!("`docker login {host}`")),
            "{message}"
        );
        for secret in &secrets {
            assert!(
                !message.contains(secret.as_str()) && !debug.contains(secret.as_str()),
                "{message}\n{debug}"
            );
        }
        assert_log_is_clean(&pushed.log, &[wrong, &auth_value(USER, wrong)]);
        assert!(
            !pushed
                .events
                .iter()
                .any(|e| matches!(e, PushEvent::ManifestPushed { .. }))
        );
    };

    // htpasswd, with --registry-username/--registry-password.
    let registry = basic_registry();
    let config = config().with_credentials(&registry.host, USER, wrong);
    let target = reference(&registry.host, "private/x:v1");
    let pushed = push(&fx.layout, "v1", &target, &config);
    check(
        &pushed,
        &registry.host,
        "--registry-username/--registry-password",
    );

    // Token auth, with a Docker config: the token service refuses them.
    let pki = tempfile::tempdir().unwrap();
    let tokens = token_service::start(pki.path(), USER, PASSWORD);
    let (registry, _proxy) = slow_token_registry(&tokens, Duration::ZERO);
    let docker = tempfile::tempdir().unwrap();
    let docker_config = docker.path().join("config.json");
    fs::write(
        &docker_config,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
            registry.host,
            auth_value(USER, wrong)
        ),
    )
    .unwrap();
    let config = config_from(&[("DOCKER_CONFIG", docker.path().as_os_str())]);
    let target = reference(&registry.host, "private/x:v1");
    let pushed = push(&fx.layout, "v1", &target, &config);
    check(
        &pushed,
        &registry.host,
        &format!("Docker config {}", docker_config.display()),
    );
    let asked = tokens.requests.lock().unwrap().clone();
    assert!(
        !asked.is_empty() && asked.iter().all(|r| r.authorization.is_some()),
        "{asked:#?}"
    );
}

#[test]
fn tls_registry_trusted_through_certs_d() {
    require_tools!();
    let fx = fixture();
    let pki = common::pki();
    let registry = Registry::start_with(RegistryOptions {
        tls: Some((pki.chain.clone(), pki.key.clone())),
        ..RegistryOptions::default()
    });
    let target = reference(&registry.host, "test/tls:v1");

    // Unknown CA: refused, and plain HTTP is no way out.
    let message = push(&fx.layout, "v1", &target, &config()).err().to_string();
    assert!(
        message.contains(&registry.host) && message.contains("https://"),
        "{message}"
    );

    // Docker's convention: <certs.d>/<host:port>/ca.crt.
    let certs_d = tempfile::tempdir().unwrap();
    let host_dir = certs_d.path().join(&registry.host);
    fs::create_dir_all(&host_dir).unwrap();
    fs::copy(&pki.ca, host_dir.join("ca.crt")).unwrap();
    let trusted = RegistryConfig {
        certs_d: Some(certs_d.path().to_path_buf()),
        ..RegistryConfig::default()
    };
    let pushed = push(&fx.layout, "v1", &target, &trusted);
    assert_eq!(pushed.ok().digest, fx.amd64.manifest_digest);
    assert!(
        pushed
            .log
            .iter()
            .all(|line| line.contains(&format!("https://{}", registry.host))),
        "{:#?}",
        pushed.log
    );

    // The directory is per registry: the CA is not trusted for another host name.
    let other = tempfile::tempdir().unwrap();
    let other_dir = other.path().join("localhost:1");
    fs::create_dir_all(&other_dir).unwrap();
    fs::copy(&pki.ca, other_dir.join("ca.crt")).unwrap();
    let elsewhere = RegistryConfig {
        certs_d: Some(other.path().to_path_buf()),
        ..RegistryConfig::default()
    };
    push(&fx.layout, "v1", &target, &elsewhere).err();
}

/// A token-auth registry (anonymous: pull on `public/*` only) holding `public/base:v1`.
struct TokenSetup {
    fx: common::Fixture,
    tokens: token_service::TokenService,
    registry: Registry,
    _populate: Registry,
    _pki: tempfile::TempDir,
}

fn token_setup() -> TokenSetup {
    let fx = fixture();
    let pki = tempfile::tempdir().unwrap();
    let tokens = token_service::start(pki.path(), USER, PASSWORD);
    let mut populate = Registry::start();
    populate.push(&fx.layout, "v1", "public/base", "v1", &[]);
    populate.stop();
    let registry = Registry::start_with(RegistryOptions {
        token: Some((
            tokens.realm.clone(),
            token_service::SERVICE.to_string(),
            token_service::ISSUER.to_string(),
            tokens.cert.clone(),
        )),
        data: Some(populate.data.clone()),
        ..RegistryOptions::default()
    });
    TokenSetup {
        fx,
        tokens,
        registry,
        _populate: populate,
        _pki: pki,
    }
}

#[test]
fn token_auth_push_needs_the_push_scope() {
    require_tools!();
    let t = token_setup();
    let host = &t.registry.host;

    // Anonymous: the token service grants pull only, so the upload is refused.
    let anonymous = push(
        &t.fx.layout,
        "v1",
        &reference(host, "public/app:v1"),
        &config(),
    );
    let err = anonymous.err();
    let message = err.to_string();
    assert!(
        matches!(err, RegistryError::Unauthorized { status: 401, .. }),
        "{message}"
    );
    assert!(
        message.contains(host)
            && message.contains("public/app")
            && message.contains(&format!("`docker login {host}`")),
        "{message}"
    );
    let requests = t.tokens.requests.lock().unwrap().clone();
    assert!(
        requests
            .iter()
            .all(|r| r.params["scope"] == ["repository:public/app:pull,push"]),
        "{requests:#?}"
    );
    t.tokens.requests.lock().unwrap().clear();

    // With credentials: one token, for push to the target and pull from the mount source.
    let config = config().with_credentials(host, USER, PASSWORD);
    let target = reference(host, "team/app:v1");
    let pushed = push_with(&t.fx.layout, "v1", &target, &config, &["public/base"], None);
    let image = pushed.ok();
    assert_eq!((image.uploaded, image.mounted), (0, 4));
    let requests = t.tokens.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].method, "GET");
    assert_eq!(
        requests[0].params["scope"],
        [
            "repository:team/app:pull,push",
            "repository:public/base:pull"
        ]
    );
    assert_eq!(requests[0].params["service"], [token_service::SERVICE]);
    assert_log_is_clean(&pushed.log, &[PASSWORD]);
    t.tokens.requests.lock().unwrap().clear();

    // An identity token from a credential helper (`Username: <token>`): the OAuth2 flow.
    let bin = tempfile::tempdir().unwrap();
    write_helper(bin.path(), host, "<token>", token_service::REFRESH);
    let docker = tempfile::tempdir().unwrap();
    fs::write(
        docker.path().join("config.json"),
        format!(r#"{{"credHelpers":{{"{host}":"liftofftest"}}}}"#),
    )
    .unwrap();
    let path = path_with(bin.path());
    let config = config_from(&[
        ("DOCKER_CONFIG", docker.path().as_os_str()),
        ("PATH", &path),
    ]);
    let pushed = push(
        &t.fx.layout,
        "v1",
        &reference(host, "team/other:v1"),
        &config,
    );
    assert_eq!(pushed.ok().uploaded, 4);
    let requests = t.tokens.requests.lock().unwrap().clone();
    assert_eq!(requests[0].method, "POST", "{requests:#?}");
    assert_eq!(requests[0].params["grant_type"], ["refresh_token"]);
    assert_eq!(
        requests[0].params["refresh_token"],
        [token_service::REFRESH]
    );
    assert_eq!(
        requests[0].params["scope"],
        ["repository:team/other:pull,push"]
    );
    assert_log_is_clean(&pushed.log, &[token_service::REFRESH]);
}

/// A proxy in front of `registry` that answers the first blob-upload `POST` and the first blob
/// `PUT` with 503 and `Retry-After: 1`, and drops the connection of the first manifest `PUT`.
fn flaky_proxy(registry: &Registry) -> FaultProxy {
    let (posts, puts, manifests) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    FaultProxy::start(
        &registry.host,
        Box::new(move |method, path| {
            let (counter, answer) = match method {
                "POST" if path.contains("/blobs/uploads/") => (&posts, None),
                "PUT" if path.contains("/blobs/uploads/") => (&puts, None),
                "PUT" if path.contains("/manifests/") => (&manifests, Some(fault_proxy::DROP)),
                _ => return None,
            };
            (counter.fetch_add(1, Ordering::SeqCst) == 0).then(|| {
                answer
                    .unwrap_or("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1")
                    .to_string()
            })
        }),
    )
}

#[test]
fn transient_failures_are_retried_after_retry_after() {
    require_tools!();
    let fx = fixture();
    let registry = Registry::start();
    let proxy = flaky_proxy(&registry);
    let target = reference(&proxy.host, "test/retry:v1");
    let started = Instant::now();
    let pushed = push(&fx.layout, "v1", &target, &config());
    let elapsed = started.elapsed();
    let image = pushed.ok();
    assert_eq!(image.digest, fx.amd64.manifest_digest);
    assert_eq!(image.uploaded, 4);
    let requests = proxy.requests();
    let injected: Vec<&String> = requests.iter().filter(|r| r.contains("injected")).collect();
    assert_eq!(injected.len(), 3, "{requests:#?}");
    assert_eq!(
        pushed.log.iter().filter(|l| l.ends_with("-> 503")).count(),
        2,
        "{:#?}",
        pushed.log
    );
    assert!(
        pushed
            .log
            .iter()
            .any(|l| l.starts_with("PUT ") && l.contains("/manifests/v1 -> failed: ")),
        "{:#?}",
        pushed.log
    );
    // Retry-After: 1 was honoured (twice, possibly in parallel jobs).
    assert!(elapsed.as_secs_f64() >= 1.0, "{elapsed:?}");
    assert!(skopeo_inspect(&registry.host, "test/retry:v1", true) == fx.amd64.manifest);
}

#[test]
fn a_registry_that_keeps_failing_gives_up_after_five_attempts() {
    require_tools!();
    let fx = fixture();
    let registry = Registry::start();
    let proxy = FaultProxy::start(
        &registry.host,
        Box::new(|method, path| {
            (method == "PUT" && path.contains("/manifests/"))
                .then(|| "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0".to_string())
        }),
    );
    let pushed = push(
        &fx.layout,
        "v1",
        &reference(&proxy.host, "test/down:v1"),
        &config(),
    );
    let err = pushed.err();
    let message = err.to_string();
    assert!(
        matches!(err, RegistryError::Status { status: 503, .. }),
        "{message}"
    );
    assert!(
        message.contains(&proxy.host)
            && message.contains("/v2/test/down/manifests/v1")
            && message.contains("injected by the test proxy"),
        "{message}"
    );
    let attempts = proxy
        .requests()
        .iter()
        .filter(|r| r.starts_with("PUT /v2/test/down/manifests/v1"))
        .count();
    assert_eq!(attempts, 5);
    assert!(!pushed.events.iter().any(|e| matches!(
        e,
        PushEvent::ManifestPushed { .. } | PushEvent::Verified { .. }
    )));
}

/// An OCI layout with one image whose layers are uncompressed tars of pseudo-random files of
/// `sizes` bytes (so they do not compress and are big enough to be uploaded in chunks).
fn random_layout(dir: &Path, sizes: &[usize]) -> (PathBuf, String) {
    let layout = dir.join("random-layout");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let write_blob = |bytes: &[u8]| {
        let digest = sha256(bytes);
        fs::write(blobs.join(digest.strip_prefix("sha256:").unwrap()), bytes).unwrap();
        digest
    };
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..*size)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        builder
            .append_data(&mut header, format!("data/file{i}.bin"), data.as_slice())
            .unwrap();
        let tar = builder.into_inner().unwrap();
        diff_ids.push(format!("\"{}\"", sha256(&tar)));
        layers.push(format!(
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}"#,
            write_blob(&tar),
            tar.len()
        ));
    }
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        diff_ids.join(",")
    );
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{}]}}"#,
        write_blob(config.as_bytes()),
        config.len(),
        layers.join(",")
    );
    let digest = write_blob(manifest.as_bytes());
    fs::write(
        layout.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"latest"}}}}]}}"#,
            manifest.len()
        ),
    )
    .unwrap();
    (layout, digest)
}

#[test]
fn chunked_uploads_and_the_monolithic_fallback() {
    require_tools!();
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let (layout, digest) = random_layout(work.path(), &[2_500_000, 700_000, 10]);
    let chunk = 1024 * 1024;

    let pushed = push_with(
        &layout,
        "latest",
        &reference(&registry.host, "test/chunked:v1"),
        &config(),
        &[],
        Some(chunk),
    );
    assert_eq!(pushed.ok().digest, digest);
    assert_eq!(pushed.ok().uploaded, 4);
    let requests = registry.liftoff_requests();
    let patches = requests.iter().filter(|r| r.starts_with("PATCH")).count();
    // 3 + 1 + 1 chunks for the layers, 1 for the config.
    assert_eq!(patches, 6, "{requests:#?}");
    // Progress reaches the full size of the big layer in steps.
    let big: Vec<(u64, u64)> = pushed
        .events
        .iter()
        .filter_map(|e| match e {
            PushEvent::BlobBytes { sent, size, .. } if *size > 2_000_000 => Some((*sent, *size)),
            _ => None,
        })
        .collect();
    assert!(big.len() >= 3, "{big:?}");
    assert!(big.windows(2).all(|w| w[0].0 < w[1].0), "{big:?}");
    let (sent, size) = *big.last().unwrap();
    assert_eq!(sent, size);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());
    let pulled = common::pull_with_events(
        &format!("{}/test/chunked:v1", registry.host),
        AMD64,
        &config(),
        &cache,
    )
    .0
    .unwrap();
    assert_eq!(pulled.manifest_digest, digest);

    // A registry (here: a proxy) that refuses PATCH: each blob falls back to one PUT.
    let proxy = FaultProxy::start(
        &registry.host,
        Box::new(|method, _| {
            (method == "PATCH").then(|| "HTTP/1.1 405 Method Not Allowed".to_string())
        }),
    );
    let pushed = push_with(
        &layout,
        "latest",
        &reference(&proxy.host, "test/fallback:v1"),
        &config(),
        &[],
        Some(chunk),
    );
    assert_eq!(pushed.ok().uploaded, 4);
    let requests = proxy.requests();
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.starts_with("PATCH") && r.contains("injected 405"))
            .count(),
        4,
        "{requests:#?}"
    );
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.starts_with("PUT") && r.contains("digest=") && r.contains("forwarded"))
            .count(),
        4,
        "{requests:#?}"
    );
}

/// Bytes the registry holds in upload sessions of `repository` (`_uploads/<id>/data`).
fn uploading_bytes(registry: &Registry, repository: &str) -> u64 {
    let uploads = registry
        .data
        .join("docker/registry/v2/repositories")
        .join(repository)
        .join("_uploads");
    fs::read_dir(uploads)
        .into_iter()
        .flatten()
        .filter_map(|entry| fs::metadata(entry.ok()?.path().join("data")).ok())
        .map(|metadata| metadata.len())
        .sum()
}

fn verified(pushed: &Pushed) -> bool {
    pushed
        .events
        .iter()
        .any(|e| matches!(e, PushEvent::Verified { .. }))
}

#[test]
fn a_registry_restarted_mid_upload() {
    require_tools!();
    let mut registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let (layout, digest) = random_layout(work.path(), &[30_000_000, 300_000]);
    let target = reference(&registry.host, "test/restart:v1");

    // Chunks of 1 MiB, so the big layer takes many requests; once 8 MB of it are in the
    // registry's upload session, the registry is killed and started again (same port, same
    // storage) while the push goes on.
    let mut restarted = false;
    let first = std::thread::scope(|scope| {
        let push = scope.spawn(|| {
            push_with(
                &layout,
                "latest",
                &target,
                &config(),
                &[],
                Some(1024 * 1024),
            )
        });
        let started = Instant::now();
        while !push.is_finished() && started.elapsed() < Duration::from_mins(2) {
            if uploading_bytes(&registry, "test/restart") >= 8_000_000 {
                registry.restart();
                restarted = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        push.join().unwrap()
    });
    assert!(
        restarted,
        "the push ended before the registry could be restarted"
    );
    // The outage was seen: an upload request failed while the registry was down.
    assert!(
        first
            .log
            .iter()
            .any(|l| l.contains("/v2/test/restart/blobs/") && l.contains(" -> failed: ")),
        "{:#?}",
        first.log
    );
    match &first.result {
        Ok(image) => {
            assert_eq!(image.digest, digest);
            assert!(verified(&first));
        }
        // Giving up is acceptable, if it says where.
        Err(e) => {
            assert!(e.to_string().contains(&registry.host), "{e}");
            assert!(!verified(&first));
        }
    }

    // Pushing again completes, and the registry serves the image intact.
    let second = push(&layout, "latest", &target, &config());
    assert_eq!(second.ok().digest, digest);
    assert!(verified(&second));
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());
    let pulled = common::pull_with_events(&target.to_string(), AMD64, &config(), &cache)
        .0
        .unwrap();
    assert_eq!(pulled.manifest_digest, digest);
    let big = &pulled.layers[0];
    assert_eq!(
        sha256(&fs::read(cache.path(&big.digest).unwrap()).unwrap()),
        big.digest
    );
}

/// A token-auth registry (trusting `tokens`) behind a proxy that holds every request for
/// `delay`, so that a push outlives short-lived tokens.
fn slow_token_registry(
    tokens: &token_service::TokenService,
    delay: Duration,
) -> (Registry, FaultProxy) {
    let registry = Registry::start_with(RegistryOptions {
        token: Some((
            tokens.realm.clone(),
            token_service::SERVICE.to_string(),
            token_service::ISSUER.to_string(),
            tokens.cert.clone(),
        )),
        ..RegistryOptions::default()
    });
    let proxy = FaultProxy::start(
        &registry.host,
        Box::new(move |_, _| {
            std::thread::sleep(delay);
            None
        }),
    );
    (registry, proxy)
}

/// Requests the registry refused with 401 during the push, apart from the first ping.
fn refused(pushed: &Pushed) -> Vec<&String> {
    pushed
        .log
        .iter()
        .filter(|l| l.ends_with(" -> 401") && !l.contains("/v2/ -> "))
        .collect()
}

#[test]
fn expiring_tokens_are_renewed_during_a_push() {
    require_tools!();
    let fx = fixture();
    let pki = tempfile::tempdir().unwrap();
    let tokens = token_service::start(pki.path(), USER, PASSWORD);
    let (_registry, proxy) = slow_token_registry(&tokens, Duration::from_millis(250));
    let config = config().with_credentials(&proxy.host, USER, PASSWORD);

    // Tokens that say they last 4 s (and do): renewed before they expire, reused until then.
    tokens.set_lifetime(4, 4);
    let started = Instant::now();
    let pushed = push_jobs(
        &fx.layout,
        "v1",
        &reference(&proxy.host, "team/short:v1"),
        &config,
        &[],
        None,
        1,
    );
    let elapsed = started.elapsed();
    assert_eq!(pushed.ok().digest, fx.amd64.manifest_digest);
    assert!(verified(&pushed));
    assert!(elapsed > Duration::from_secs(5), "{elapsed:?}");
    let fetched = tokens.requests.lock().unwrap().len();
    let sent = pushed
        .log
        .iter()
        .filter(|l| l.contains(&format!("http://{}/", proxy.host)))
        .count();
    assert!(fetched >= 2, "{fetched} tokens for a push of {elapsed:?}");
    assert!(
        fetched * 3 <= sent,
        "{fetched} tokens for {sent} requests: tokens are not reused while valid"
    );
    assert!(refused(&pushed).is_empty(), "{:#?}", pushed.log);
    assert_log_is_clean(&pushed.log, &[PASSWORD]);
    tokens.requests.lock().unwrap().clear();

    // Tokens that claim 5 minutes but expire after 2 s: the registry's 401 gets a new one.
    tokens.set_lifetime(300, 2);
    let pushed = push_jobs(
        &fx.layout,
        "v1",
        &reference(&proxy.host, "team/revoked:v1"),
        &config,
        &[],
        None,
        1,
    );
    assert_eq!(pushed.ok().digest, fx.amd64.manifest_digest);
    assert!(verified(&pushed));
    assert!(!refused(&pushed).is_empty(), "{:#?}", pushed.log);
    assert!(tokens.requests.lock().unwrap().len() >= 2);
    assert!(skopeo_inspect_with_credentials(&proxy.host, "team/revoked:v1") == fx.amd64.manifest);
}

/// The manifest as served, read by skopeo with the test credentials.
fn skopeo_inspect_with_credentials(host: &str, path: &str) -> Vec<u8> {
    run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("--creds={USER}:{PASSWORD}"))
        .arg(format!("docker://{host}/{path}")))
}

#[test]
fn a_500_on_the_manifest_put_fails_the_push() {
    require_tools!();
    let fx = fixture();
    let registry = Registry::start();
    let proxy = FaultProxy::start(
        &registry.host,
        Box::new(|method, path| {
            (method == "PUT" && path.contains("/manifests/"))
                .then(|| "HTTP/1.1 500 Internal Server Error".to_string())
        }),
    );
    let started = Instant::now();
    let pushed = push(
        &fx.layout,
        "v1",
        &reference(&proxy.host, "test/five-hundred:v1"),
        &config(),
    );
    let elapsed = started.elapsed();
    let err = pushed.err();
    let message = err.to_string();
    assert!(
        matches!(err, RegistryError::Status { status: 500, .. }),
        "{message}"
    );
    assert!(
        message.contains(&proxy.host)
            && message.contains("PUT")
            && message.contains("/v2/test/five-hundred/manifests/v1")
            && message.contains("HTTP 500")
            && message.contains("injected by the test proxy"),
        "{message}"
    );
    // Retried with exponential backoff (0.5 + 1 + 2 + 4 s at least), then given up.
    let attempts = proxy
        .requests()
        .iter()
        .filter(|r| r.starts_with("PUT /v2/test/five-hundred/manifests/v1"))
        .count();
    assert_eq!(attempts, 5);
    assert!(elapsed >= Duration::from_millis(7500), "{elapsed:?}");
    // The blobs went up; nothing after the manifest was reported.
    assert_eq!(pushed.outcomes().len(), 4);
    assert!(!pushed.events.iter().any(|e| matches!(
        e,
        PushEvent::ManifestPushed { .. } | PushEvent::Verified { .. }
    )));
    let inspect = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}/test/five-hundred:v1", registry.host))
        .output()
        .unwrap();
    assert!(!inspect.status.success(), "the manifest is in the registry");
}

#[test]
fn a_manifest_missing_after_the_put_fails_verification() {
    require_tools!();
    let fx = fixture();
    let registry = Registry::start();
    let put = AtomicBool::new(false);
    let proxy = FaultProxy::start(
        &registry.host,
        Box::new(move |method, path| {
            if !path.contains("/manifests/") {
                return None;
            }
            match method {
                "PUT" => {
                    put.store(true, Ordering::SeqCst);
                    None
                }
                "HEAD" if put.load(Ordering::SeqCst) => Some("HTTP/1.1 404 Not Found".to_string()),
                _ => None,
            }
        }),
    );
    let pushed = push(
        &fx.layout,
        "v1",
        &reference(&proxy.host, "test/vanished:v1"),
        &config(),
    );
    let err = pushed.err();
    let message = err.to_string();
    assert!(matches!(err, RegistryError::Protocol { .. }), "{message}");
    assert!(
        message.contains(&proxy.host)
            && message.contains("verifying the push failed")
            && message.contains("test/vanished")
            && message.contains(&fx.amd64.manifest_digest)
            && message.contains("404"),
        "{message}"
    );
    assert!(pushed.events.contains(&PushEvent::ManifestPushed {
        digest: fx.amd64.manifest_digest.clone()
    }));
    assert!(!verified(&pushed));
    // A 404 is not retried.
    let heads = proxy
        .requests()
        .iter()
        .filter(|r| r.starts_with("HEAD /v2/test/vanished/manifests/"))
        .count();
    assert_eq!(heads, 1, "{:#?}", proxy.requests());
    // The registry itself has it: only the check failed.
    assert!(skopeo_inspect(&registry.host, "test/vanished:v1", true) == fx.amd64.manifest);
}
