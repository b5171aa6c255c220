//! Registry authentication: htpasswd Basic auth with a Docker config, and the bearer token flow.

mod common;

use std::fs;
use std::path::Path;

use base64::Engine as _;
use common::{
    AMD64, Registry, RegistryOptions, assert_image, fixture, pull_with_events, token_service,
};
use liftoff_registry::{BlobCache, RegistryConfig, RegistryError};

const USER: &str = "testuser";
const PASSWORD: &str = "s3cret-pass";

/// The configuration `from_env` would build with `DOCKER_CONFIG=<dir>`.
fn with_docker_config(dir: &Path) -> RegistryConfig {
    RegistryConfig::from_vars(|name| (name == "DOCKER_CONFIG").then(|| dir.as_os_str().to_owned()))
        .unwrap()
}

fn write_docker_config(dir: &Path, json: &str) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("config.json"), json).unwrap();
}

fn auth_entry(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// An htpasswd registry holding `private/app:v1` (the amd64 image).
fn basic_registry(fx: &common::Fixture) -> Registry {
    let registry = Registry::start_with(RegistryOptions {
        htpasswd: Some((USER.to_string(), PASSWORD.to_string())),
        ..RegistryOptions::default()
    });
    let creds = format!("--dest-creds={USER}:{PASSWORD}");
    registry.push(&fx.layout, "v1", "private/app", "v1", &[&creds]);
    registry
}

/// A Docker config directory holding `json`.
fn docker_config(home: &tempfile::TempDir, name: &str, json: &str) -> RegistryConfig {
    let dir = home.path().join(name);
    write_docker_config(&dir, json);
    with_docker_config(&dir)
}

fn auths(registry: &str, entry: &str) -> String {
    format!(r#"{{"auths":{{"{registry}":{entry}}}}}"#)
}

fn pull_error(reference: &str, config: &RegistryConfig) -> RegistryError {
    let cache_dir = tempfile::tempdir().unwrap();
    pull_with_events(reference, AMD64, config, &BlobCache::new(cache_dir.path()))
        .0
        .unwrap_err()
}

#[test]
fn basic_auth_without_credentials_says_how_to_log_in() {
    require_tools!();
    let fx = fixture();
    let registry = basic_registry(&fx);
    let reference = format!("{}/private/app:v1", registry.host);
    let home = tempfile::tempdir().unwrap();

    // No config.json at all.
    let err = pull_error(&reference, &with_docker_config(&home.path().join("empty")));
    let message = err.to_string();
    assert!(
        matches!(err, RegistryError::Unauthorized { status: 401, .. }),
        "{message}"
    );
    assert!(
        message.contains(&registry.host) && message.contains("private/app"),
        "{message}"
    );
    assert!(
        message.contains(&format!("`docker login {}`", registry.host)),
        "{message}"
    );
    assert!(message.contains("does not exist"), "{message}");

    // Credentials for another registry only.
    let entry = format!(r#"{{"auth":"{}"}}"#, auth_entry(USER, PASSWORD));
    let config = docker_config(&home, "other", &auths("ghcr.io", &entry));
    let message = pull_error(&reference, &config).to_string();
    assert!(
        message.contains(&format!(
            "No credentials for {} were found in",
            registry.host
        )),
        "{message}"
    );
}

#[test]
fn basic_auth_with_docker_config_credentials() {
    require_tools!();
    let fx = fixture();
    let registry = basic_registry(&fx);
    let reference = format!("{}/private/app:v1", registry.host);
    let home = tempfile::tempdir().unwrap();

    // `auth` (base64 of user:password), keyed as `docker login` writes it.
    let entry = format!(r#"{{"auth":"{}"}}"#, auth_entry(USER, PASSWORD));
    let config = docker_config(&home, "auth", &auths(&registry.host, &entry));
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());
    let pulled = pull_with_events(&reference, AMD64, &config, &cache)
        .0
        .unwrap();
    assert_image(&pulled, &fx.amd64, &cache);

    // `username`/`password` fields under an `http://…/v2/` key.
    let entry = format!(r#"{{"username":"{USER}","password":"{PASSWORD}"}}"#);
    let key = format!("http://{}/v2/", registry.host);
    let config = docker_config(&home, "fields", &auths(&key, &entry));
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());
    let pulled = pull_with_events(&reference, AMD64, &config, &cache)
        .0
        .unwrap();
    assert_image(&pulled, &fx.amd64, &cache);
}

#[test]
fn basic_auth_wrong_password_is_rejected_without_showing_it() {
    require_tools!();
    let fx = fixture();
    let registry = basic_registry(&fx);
    let reference = format!("{}/private/app:v1", registry.host);
    let home = tempfile::tempdir().unwrap();
    let wrong = "wr0ng-pa55";
    let entry = format!(r#"{{"auth":"{}"}}"#, auth_entry(USER, wrong));
    let err = pull_error(
        &reference,
        &docker_config(&home, "wrong", &auths(&registry.host, &entry)),
    );
    let message = err.to_string();
    let debug = format!("{err:?}");
    assert!(
        message.contains("were rejected")
            && message.contains(&format!("docker login {}", registry.host)),
        "{message}"
    );
    for secret in [wrong, &auth_entry(USER, wrong)] {
        assert!(
            !message.contains(secret) && !debug.contains(secret),
            "{message}"
        );
    }
}

#[test]
fn missing_credential_helpers_are_named_in_the_error() {
    require_tools!();
    let fx = fixture();
    let registry = basic_registry(&fx);
    let reference = format!("{}/private/app:v1", registry.host);
    let home = tempfile::tempdir().unwrap();
    let empty_path = home.path().join("no-helpers");
    fs::create_dir_all(&empty_path).unwrap();
    // The configuration `from_env` would build, with a PATH that has no helpers.
    let config_in = |name: &str, json: &str| {
        let dir = home.path().join(name);
        write_docker_config(&dir, json);
        RegistryConfig::from_vars(|var| match var {
            "DOCKER_CONFIG" => Some(dir.as_os_str().to_owned()),
            "PATH" => Some(empty_path.as_os_str().to_owned()),
            _ => None,
        })
        .unwrap()
    };

    let json = format!(
        r#"{{"credHelpers":{{"{}":"secretservice"}}}}"#,
        registry.host
    );
    let message = pull_error(&reference, &config_in("helper", &json)).to_string();
    assert!(
        message.contains("docker-credential-secretservice")
            && message.contains("not installed")
            && message.contains("credHelpers in"),
        "{message}"
    );

    // `docker login` with a `credsStore` leaves an empty `auths` entry.
    let json = format!(
        r#"{{"auths":{{"{}":{{}}}},"credsStore":"desktop"}}"#,
        registry.host
    );
    let message = pull_error(&reference, &config_in("store", &json)).to_string();
    assert!(
        message.contains("docker-credential-desktop") && message.contains("credsStore in"),
        "{message}"
    );
}

/// A token-auth registry holding `public/app:v1` (amd64) and `private/app:v1` (arm64), with
/// its token service.
struct TokenSetup {
    fx: common::Fixture,
    tokens: token_service::TokenService,
    registry: Registry,
    _populate: Registry,
    _pki: tempfile::TempDir,
    home: tempfile::TempDir,
}

fn token_setup() -> TokenSetup {
    let fx = fixture();
    let pki = tempfile::tempdir().unwrap();
    let tokens = token_service::start(pki.path(), USER, PASSWORD);
    // Populate without auth, then serve the same storage with token auth.
    let mut populate = Registry::start();
    populate.push(&fx.layout, "v1", "public/app", "v1", &[]);
    populate.push(&fx.layout, "arm", "private/app", "v1", &[]);
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
        home: tempfile::tempdir().unwrap(),
    }
}

impl TokenSetup {
    fn private(&self) -> String {
        format!("{}/private/app:v1", self.registry.host)
    }

    fn token_requests(&self) -> Vec<token_service::Request> {
        self.tokens.requests.lock().unwrap().clone()
    }
}

const ARM64: (&str, &str) = ("linux", "arm64");

#[test]
fn bearer_token_anonymous_pull() {
    require_tools!();
    let t = token_setup();
    let anonymous = with_docker_config(&t.home.path().join("none"));
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());
    let reference = format!("{}/public/app:v1", t.registry.host);
    let pulled = pull_with_events(&reference, AMD64, &anonymous, &cache)
        .0
        .unwrap();
    assert_image(&pulled, &t.fx.amd64, &cache);
    // One token serves every request of the pull.
    let requests = t.token_requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let request = &requests[0];
    assert_eq!(request.method, "GET");
    assert_eq!(request.authorization, None);
    assert_eq!(request.params["service"], [token_service::SERVICE]);
    assert_eq!(request.params["scope"], ["repository:public/app:pull"]);

    // A private repository: the anonymous token grants nothing, the registry says 401.
    let cache_dir = tempfile::tempdir().unwrap();
    let err = pull_with_events(
        &t.private(),
        ARM64,
        &anonymous,
        &BlobCache::new(cache_dir.path()),
    )
    .0
    .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, RegistryError::Unauthorized { .. }),
        "{message}"
    );
    assert!(
        message.contains(&t.registry.host) && message.contains("private/app"),
        "{message}"
    );
    assert!(
        message.contains(&format!("docker login {}", t.registry.host)),
        "{message}"
    );
}

#[test]
fn bearer_token_with_basic_credentials() {
    require_tools!();
    let t = token_setup();
    let entry = format!(r#"{{"auth":"{}"}}"#, auth_entry(USER, PASSWORD));
    let config = docker_config(&t.home, "basic", &auths(&t.registry.host, &entry));
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());
    let pulled = pull_with_events(&t.private(), ARM64, &config, &cache)
        .0
        .unwrap();
    assert_image(&pulled, &t.fx.arm64, &cache);
    let requests = t.token_requests();
    assert!(!requests.is_empty());
    assert!(requests.iter().all(|r| {
        r.method == "GET"
            && r.authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Basic "))
    }));

    // Wrong credentials: the token service refuses them; no secret in the message.
    let entry = format!(r#"{{"auth":"{}"}}"#, auth_entry(USER, "nope-nope"));
    let config = docker_config(&t.home, "wrong", &auths(&t.registry.host, &entry));
    let cache_dir = tempfile::tempdir().unwrap();
    let err = pull_with_events(
        &t.private(),
        ARM64,
        &config,
        &BlobCache::new(cache_dir.path()),
    )
    .0
    .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, RegistryError::Unauthorized { .. }),
        "{message}"
    );
    assert!(
        message.contains("were rejected") && !message.contains("nope-nope"),
        "{message}"
    );
}

#[test]
fn bearer_token_from_an_identity_token() {
    require_tools!();
    let t = token_setup();
    // `docker login` against an OAuth2 registry stores a refresh token, exchanged with a POST.
    let entry = format!(
        r#"{{"auth":"{}","identitytoken":"{}"}}"#,
        auth_entry("<token>", ""),
        token_service::REFRESH
    );
    let config = docker_config(&t.home, "identity", &auths(&t.registry.host, &entry));
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());
    let pulled = pull_with_events(&t.private(), ARM64, &config, &cache)
        .0
        .unwrap();
    assert_image(&pulled, &t.fx.arm64, &cache);
    let requests = t.token_requests();
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].params["grant_type"], ["refresh_token"]);
    assert_eq!(
        requests[0].params["refresh_token"],
        [token_service::REFRESH]
    );
    assert_eq!(requests[0].params["scope"], ["repository:private/app:pull"]);
    assert_eq!(requests[0].params["service"], [token_service::SERVICE]);
}
