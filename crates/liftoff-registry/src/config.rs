//! Registry settings: mirrors, plain-HTTP registries, extra CA certificates and Docker's
//! `config.json` credentials.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::RegistryError;
use crate::reference::normalize_registry;

/// `docker.io=http://127.0.0.1:5000,ghcr.io=https://mirror.example` (like dockerd's
/// `registry-mirrors`, but for any registry).
pub const MIRRORS_VAR: &str = "LIFTOFF_REGISTRY_MIRRORS";
/// `registry.local:5000,10.0.0.5:5000`: registries reached over plain HTTP.
pub const INSECURE_VAR: &str = "LIFTOFF_INSECURE_REGISTRIES";
/// Extra PEM CA certificate files, separated like `PATH`.
pub const CA_CERTS_VAR: &str = "LIFTOFF_REGISTRY_CA_CERTS";

/// How to reach registries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryConfig {
    /// `(registry, mirror base URL)`, tried in order before the registry itself. The registry is
    /// a normalised name (`docker.io`, `ghcr.io`); the URL starts with `http://` or `https://`.
    pub mirrors: Vec<(String, String)>,
    /// Registries (`host[:port]`) that may be reached over plain HTTP: HTTPS is tried first and
    /// HTTP used when the TLS connection fails, as Docker does. `localhost`, `127.0.0.0/8` and
    /// `[::1]`, with any port, are insecure by default.
    pub insecure: Vec<String>,
    /// PEM files with extra root certificates, trusted in addition to the Mozilla roots.
    pub extra_ca_certs: Vec<PathBuf>,
    /// Docker's `config.json` (its `auths`). A missing file means no credentials.
    pub docker_config: Option<PathBuf>,
}

impl RegistryConfig {
    /// Reads [`MIRRORS_VAR`], [`INSECURE_VAR`], [`CA_CERTS_VAR`] and the Docker config location
    /// (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`) from the environment.
    pub fn from_env() -> Result<Self, RegistryError> {
        Self::from_vars(|name| std::env::var_os(name))
    }

    /// [`RegistryConfig::from_env`] with the variables looked up through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<OsString>) -> Result<Self, RegistryError> {
        let text = |name: &str| -> Result<Option<String>, RegistryError> {
            match var(name) {
                None => Ok(None),
                Some(value) => {
                    value
                        .into_string()
                        .map(Some)
                        .map_err(|_| RegistryError::InvalidConfig {
                            setting: name.to_string(),
                            message: "it is not valid UTF-8".to_string(),
                        })
                }
            }
        };
        let mut config = Self::default();
        if let Some(value) = text(MIRRORS_VAR)? {
            config.mirrors = parse_mirrors(&value, MIRRORS_VAR)?;
        }
        if let Some(value) = text(INSECURE_VAR)? {
            config.insecure = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(normalize_registry)
                .collect();
        }
        if let Some(value) = var(CA_CERTS_VAR) {
            config.extra_ca_certs = std::env::split_paths(&value)
                .filter(|p| !p.as_os_str().is_empty())
                .collect();
        }
        config.docker_config = match var("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
            Some(dir) => Some(PathBuf::from(dir).join("config.json")),
            None => var("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".docker").join("config.json")),
        };
        Ok(config)
    }

    /// Whether `registry` may be reached over plain HTTP.
    pub fn is_insecure(&self, registry: &str) -> bool {
        is_loopback(registry) || self.insecure.iter().any(|r| r == registry)
    }

    /// Mirror base URLs for `registry`, in order.
    pub fn mirrors_for<'a>(&'a self, registry: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.mirrors
            .iter()
            .filter(move |(r, _)| normalize_registry(r) == registry)
            .map(|(_, url)| url.as_str())
    }
}

/// Parses `registry=url,registry=url`.
pub(crate) fn parse_mirrors(
    value: &str,
    setting: &str,
) -> Result<Vec<(String, String)>, RegistryError> {
    let invalid = |message: String| RegistryError::InvalidConfig {
        setting: setting.to_string(),
        message,
    };
    let mut mirrors = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((registry, url)) = entry.split_once('=') else {
            return Err(invalid(format!(
                "`{entry}` is not `registry=url` (for example `docker.io=http://127.0.0.1:5000`)"
            )));
        };
        let (registry, url) = (registry.trim(), url.trim().trim_end_matches('/'));
        if registry.is_empty() {
            return Err(invalid(format!("`{entry}` names no registry")));
        }
        let host = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| {
                invalid(format!(
                    "mirror URL `{url}` must start with http:// or https://"
                ))
            })?;
        if host.is_empty() || host.starts_with('/') {
            return Err(invalid(format!("mirror URL `{url}` has no host")));
        }
        mirrors.push((normalize_registry(registry), url.to_string()));
    }
    Ok(mirrors)
}

/// `localhost`, `127.0.0.0/8` and `::1`, with or without a port.
fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        registry.split(':').next().unwrap_or_default()
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Credentials for one registry. `Debug` never shows the secrets.
#[derive(Clone, Default)]
pub(crate) enum Credentials {
    #[default]
    None,
    Basic {
        username: String,
        password: String,
    },
    /// An `OAuth2` refresh token (`identitytoken`), exchanged at the token service.
    IdentityToken(String),
    /// A bearer token to use as is (`registrytoken`).
    RegistryToken(String),
    /// The Docker config keeps them in a credential helper, which liftoff cannot run yet.
    Helper(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Self::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
            Self::RegistryToken(_) => f.write_str("RegistryToken(<redacted>)"),
            Self::Helper(helper) => write!(f, "Helper({helper})"),
        }
    }
}

/// Credentials found for a registry, plus where they came from (for error hints).
#[derive(Debug, Clone, Default)]
pub(crate) struct CredentialLookup {
    pub credentials: Credentials,
    /// The config file that was consulted (it may not exist).
    pub config_path: Option<PathBuf>,
    pub config_exists: bool,
    /// `credsStore`, when set: the credentials may live there.
    pub creds_store: Option<String>,
}

/// The parts of Docker's `config.json` liftoff uses.
#[derive(Debug, Default)]
pub(crate) struct DockerConfig {
    path: Option<PathBuf>,
    exists: bool,
    auths: BTreeMap<String, Credentials>,
    /// Registries listed in `auths` without credentials (`docker login` with a `credsStore`).
    empty_auths: Vec<String>,
    cred_helpers: BTreeMap<String, String>,
    creds_store: Option<String>,
}

impl DockerConfig {
    /// Loads `path`; a missing file is an empty config. Error messages never quote values.
    pub(crate) fn load(path: Option<&Path>) -> Result<Self, RegistryError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    path: Some(path.to_path_buf()),
                    ..Self::default()
                });
            }
            Err(e) => return Err(RegistryError::io("read Docker config", path, e)),
        };
        let invalid = |message: String| RegistryError::InvalidConfig {
            setting: format!("Docker config {}", path.display()),
            message,
        };
        // Parse untyped first: serde's type errors would quote the offending (secret) value.
        let json: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
            invalid(format!(
                "it is not JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let mut config = Self {
            path: Some(path.to_path_buf()),
            exists: true,
            ..Self::default()
        };
        if let Some(auths) = json.get("auths").and_then(serde_json::Value::as_object) {
            for (key, entry) in auths {
                let registry = config_key_registry(key);
                let credentials = entry_credentials(entry)
                    .map_err(|message| invalid(format!("auths.\"{key}\": {message}")))?;
                if matches!(credentials, Credentials::None) {
                    config.empty_auths.push(registry);
                } else {
                    config.auths.insert(registry, credentials);
                }
            }
        }
        if let Some(helpers) = json
            .get("credHelpers")
            .and_then(serde_json::Value::as_object)
        {
            for (key, helper) in helpers {
                if let Some(helper) = helper.as_str() {
                    config
                        .cred_helpers
                        .insert(config_key_registry(key), helper.to_string());
                }
            }
        }
        config.creds_store = json
            .get("credsStore")
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        Ok(config)
    }

    /// Credentials for `registry` (a normalised `host[:port]`).
    pub(crate) fn lookup(&self, registry: &str) -> CredentialLookup {
        let credentials = if let Some(helper) = self.cred_helpers.get(registry) {
            Credentials::Helper(helper.clone())
        } else if let Some(credentials) = self.auths.get(registry) {
            credentials.clone()
        } else if let (Some(store), true) = (
            &self.creds_store,
            self.empty_auths.iter().any(|r| r == registry),
        ) {
            Credentials::Helper(store.clone())
        } else {
            Credentials::None
        };
        CredentialLookup {
            credentials,
            config_path: self.path.clone(),
            config_exists: self.exists,
            creds_store: self.creds_store.clone(),
        }
    }
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://host:5000/x` → `host:5000`.
fn config_key_registry(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key);
    normalize_registry(&host.to_ascii_lowercase())
}

fn entry_credentials(entry: &serde_json::Value) -> Result<Credentials, String> {
    let field = |name: &str| {
        entry
            .get(name)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if let Some(token) = field("identitytoken") {
        return Ok(Credentials::IdentityToken(token.to_string()));
    }
    if let Some(token) = field("registrytoken") {
        return Ok(Credentials::RegistryToken(token.to_string()));
    }
    if let Some(auth) = field("auth") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| "the `auth` value is not valid base64".to_string())?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| "the decoded `auth` value is not UTF-8".to_string())?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| "the decoded `auth` value is not `username:password`".to_string())?;
        return Ok(Credentials::Basic {
            username: username.to_string(),
            password: password.to_string(),
        });
    }
    if let (Some(username), Some(password)) = (field("username"), field("password")) {
        return Ok(Credentials::Basic {
            username: username.to_string(),
            password: password.to_string(),
        });
    }
    Ok(Credentials::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_from_env_syntax() {
        let mirrors = parse_mirrors(
            " docker.io=http://127.0.0.1:5000/ , index.docker.io=https://m.example,ghcr.io=https://g.example/prefix",
            MIRRORS_VAR,
        )
        .unwrap();
        assert_eq!(
            mirrors,
            [
                ("docker.io".to_string(), "http://127.0.0.1:5000".to_string()),
                ("docker.io".to_string(), "https://m.example".to_string()),
                (
                    "ghcr.io".to_string(),
                    "https://g.example/prefix".to_string()
                ),
            ]
        );
        for bad in [
            "docker.io",
            "docker.io=ftp://x",
            "=http://x",
            "docker.io=http://",
        ] {
            let err = parse_mirrors(bad, MIRRORS_VAR).expect_err(bad).to_string();
            assert!(err.contains(MIRRORS_VAR), "{err}");
        }
    }

    #[test]
    fn from_vars_reads_everything() {
        let config = RegistryConfig::from_vars(|name| match name {
            MIRRORS_VAR => Some("docker.io=http://127.0.0.1:5000".into()),
            INSECURE_VAR => Some("registry.local:5000, ".into()),
            CA_CERTS_VAR => Some("/a.pem:/b.pem".into()),
            "HOME" => Some("/home/u".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            config.mirrors_for("docker.io").collect::<Vec<_>>(),
            ["http://127.0.0.1:5000"]
        );
        assert!(config.is_insecure("registry.local:5000"));
        assert!(config.is_insecure("127.0.0.1:5000") && config.is_insecure("localhost"));
        assert!(config.is_insecure("[::1]:5000") && config.is_insecure("127.1.2.3:80"));
        assert!(!config.is_insecure("ghcr.io") && !config.is_insecure("10.0.0.1:5000"));
        assert_eq!(
            config.extra_ca_certs,
            [PathBuf::from("/a.pem"), PathBuf::from("/b.pem")]
        );
        assert_eq!(
            config.docker_config,
            Some(PathBuf::from("/home/u/.docker/config.json"))
        );

        let config = RegistryConfig::from_vars(|name| match name {
            "DOCKER_CONFIG" => Some("/etc/dc".into()),
            "HOME" => Some("/home/u".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            config.docker_config,
            Some(PathBuf::from("/etc/dc/config.json"))
        );
    }

    #[test]
    fn docker_config_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{
              "auths": {
                "https://index.docker.io/v1/": {"auth": "dXNlcjpwYTpzcw=="},
                "ghcr.io": {"username": "u", "password": "p"},
                "quay.io": {"identitytoken": "refresh"},
                "helped.example": {}
              },
              "credHelpers": {"gcr.io": "gcloud"},
              "credsStore": "desktop"
            }"#,
        )
        .unwrap();
        let config = DockerConfig::load(Some(&path)).unwrap();
        match config.lookup("docker.io").credentials {
            Credentials::Basic { username, password } => {
                assert_eq!((username.as_str(), password.as_str()), ("user", "pa:ss"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            config.lookup("ghcr.io").credentials,
            Credentials::Basic { .. }
        ));
        assert!(matches!(
            config.lookup("quay.io").credentials,
            Credentials::IdentityToken(_)
        ));
        assert!(
            matches!(config.lookup("gcr.io").credentials, Credentials::Helper(h) if h == "gcloud")
        );
        assert!(
            matches!(config.lookup("helped.example").credentials, Credentials::Helper(h) if h == "desktop")
        );
        assert!(matches!(
            config.lookup("other.example").credentials,
            Credentials::None
        ));
        let shown = format!("{:?}", config.lookup("docker.io").credentials);
        assert!(
            !shown.contains("pa:ss") && !shown.contains("dXNlcjpwYTpzcw"),
            "{shown}"
        );

        // Errors never quote values.
        std::fs::write(&path, r#"{"auths": {"x.io": {"auth": "s3cr3t!!"}}}"#).unwrap();
        let err = DockerConfig::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("x.io") && !err.contains("s3cr3t"), "{err}");

        let missing = DockerConfig::load(Some(&dir.path().join("nope.json"))).unwrap();
        assert!(!missing.lookup("docker.io").config_exists);
    }
}
