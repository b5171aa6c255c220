//! `check_registry`: the `/v2/` ping with the user's credentials that `liftoff doctor` runs.

mod common;

use common::{Registry, RegistryOptions, dead_port, token_service};
use liftoff_registry::{RegistryConfig, RegistryError, check_registry};

const USER: &str = "testuser";
const PASSWORD: &str = "s3cret-pass";

/// No Docker config, no explicit credentials.
fn anonymous(home: &tempfile::TempDir) -> RegistryConfig {
    let dir = home.path().join("no-docker-config");
    RegistryConfig::from_vars(|name| (name == "DOCKER_CONFIG").then(|| dir.as_os_str().to_owned()))
        .unwrap()
}

#[test]
fn open_registry_answers_without_credentials() {
    require_tools!();
    let registry = Registry::start();
    let home = tempfile::tempdir().unwrap();
    let check = check_registry(&registry.host, &anonymous(&home)).unwrap();
    assert_eq!(check.registry, registry.host);
    assert_eq!(check.base, format!("http://{}", registry.host));
    assert_eq!(check.credentials, None);
}

#[test]
fn basic_auth_credentials_are_checked() {
    require_tools!();
    let registry = Registry::start_with(RegistryOptions {
        htpasswd: Some((USER.to_string(), PASSWORD.to_string())),
        ..RegistryOptions::default()
    });
    let home = tempfile::tempdir().unwrap();

    let good = anonymous(&home).with_credentials(&registry.host, USER, PASSWORD);
    let check = check_registry(&registry.host, &good).unwrap();
    assert_eq!(
        check.credentials.as_deref(),
        Some("--registry-username/--registry-password")
    );

    let wrong = anonymous(&home).with_credentials(&registry.host, USER, "nope-nope");
    let err = check_registry(&registry.host, &wrong).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, RegistryError::Unauthorized { status: 401, .. }),
        "{message}"
    );
    assert!(
        message.contains("were rejected")
            && message.contains("--registry-username")
            && !message.contains("nope-nope")
            && !message.contains("repository name"),
        "{message}"
    );

    let err = check_registry(&registry.host, &anonymous(&home)).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, RegistryError::Unauthorized { .. }),
        "{message}"
    );
    assert!(message.contains("No credentials for"), "{message}");
}

#[test]
fn token_auth_credentials_are_checked() {
    require_tools!();
    let pki = tempfile::tempdir().unwrap();
    let tokens = token_service::start(pki.path(), USER, PASSWORD);
    let registry = Registry::start_with(RegistryOptions {
        token: Some((
            tokens.realm.clone(),
            token_service::SERVICE.to_string(),
            token_service::ISSUER.to_string(),
            tokens.cert.clone(),
        )),
        ..RegistryOptions::default()
    });
    let home = tempfile::tempdir().unwrap();

    let good = anonymous(&home).with_credentials(&registry.host, USER, PASSWORD);
    let check = check_registry(&registry.host, &good).unwrap();
    assert!(check.credentials.is_some());
    let requests = tokens.requests.lock().unwrap().clone();
    assert!(
        requests.iter().all(|r| r
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Basic "))
            && !r.params.contains_key("scope")),
        "{requests:#?}"
    );

    let wrong = anonymous(&home).with_credentials(&registry.host, USER, "nope-nope");
    let err = check_registry(&registry.host, &wrong).unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
}

#[test]
fn unreachable_registry_and_bad_names() {
    let home = tempfile::tempdir().unwrap();
    let host = format!("127.0.0.1:{}", dead_port());
    let err = check_registry(&host, &anonymous(&home)).unwrap_err();
    assert!(matches!(err, RegistryError::Transport { .. }), "{err}");
    assert!(err.to_string().contains(&host), "{err}");

    for bad in ["", "not a host", "ghcr.io/owner", "myregistry"] {
        let err = check_registry(bad, &anonymous(&home)).unwrap_err();
        assert!(
            matches!(err, RegistryError::InvalidReference { .. }),
            "{bad}: {err}"
        );
    }
}
