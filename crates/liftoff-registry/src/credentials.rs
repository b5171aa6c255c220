//! Where registry credentials come from, in order: explicit credentials, Docker's `config.json`
//! (`credHelpers`, `credsStore`, `auths`), then podman/skopeo auth files.
//!
//! Looking credentials up is cheap and runs no program; credential helpers
//! (`docker-credential-<name> get`) run only when a registry asks for credentials
//! ([`CredentialLookup::resolve`]). Nothing here ever formats a secret: `Debug` redacts them, and
//! error messages about config files never quote values.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::reference::{DOCKER_HUB, normalize_registry};
use crate::{RegistryConfig, RegistryError};

/// The key `docker login` uses for Docker Hub, and what its credential helpers are asked for.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
/// The user name credential helpers return with an identity (refresh) token as the secret.
const TOKEN_USERNAME: &str = "<token>";
const HELPER_TIMEOUT: Duration = Duration::from_mins(1);
const HELPER_OUTPUT_LIMIT: u64 = 1024 * 1024;

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
    IdentityToken {
        username: String,
        token: String,
    },
    /// A bearer token to use as is (`registrytoken`).
    RegistryToken(String),
    /// Kept by a credential helper, run when needed: `docker-credential-<helper>`.
    Helper {
        helper: String,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Self::IdentityToken { username, .. } => {
                write!(f, "IdentityToken({username}, <redacted>)")
            }
            Self::RegistryToken(_) => f.write_str("RegistryToken(<redacted>)"),
            Self::Helper { helper } => write!(f, "Helper({helper})"),
        }
    }
}

/// One place credentials may come from.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// For messages: `--registry-username/--registry-password`, `credHelpers in /x/config.json`.
    pub origin: String,
    pub credentials: Credentials,
}

/// What the sources hold for one registry; [`CredentialLookup::resolve`] turns it into
/// credentials.
#[derive(Debug, Clone, Default)]
pub(crate) struct CredentialLookup {
    /// The registry (normalised), which helpers are asked about.
    pub registry: String,
    /// In order of precedence; helpers are run when reached.
    pub candidates: Vec<Candidate>,
    /// The files consulted, for hints: `/home/u/.docker/config.json (which does not exist)`.
    pub consulted: Vec<String>,
    helper_path: Option<OsString>,
}

/// The credentials to use, and what happened on the way.
#[derive(Debug, Clone, Default)]
pub(crate) struct Resolved {
    /// Never [`Credentials::Helper`].
    pub credentials: Credentials,
    /// Where they came from (for "the credentials from … were rejected").
    pub origin: Option<String>,
    /// Helpers that could not be run or failed, with why; the next source was used.
    pub helper_failures: Vec<String>,
}

impl CredentialLookup {
    /// Runs helpers as needed and returns the first credentials found.
    pub(crate) fn resolve(&self) -> Resolved {
        let mut failures = Vec::new();
        for candidate in &self.candidates {
            let credentials = match &candidate.credentials {
                Credentials::None => continue,
                Credentials::Helper { helper } => {
                    match run_helper(helper, &self.registry, self.helper_path.as_deref()) {
                        Ok(Some(credentials)) => credentials,
                        Ok(None) => continue,
                        Err(reason) => {
                            failures.push(format!(
                                "`docker-credential-{helper}` (from {}) {reason}",
                                candidate.origin
                            ));
                            continue;
                        }
                    }
                }
                other => other.clone(),
            };
            return Resolved {
                credentials,
                origin: Some(candidate.origin.clone()),
                helper_failures: failures,
            };
        }
        Resolved {
            helper_failures: failures,
            ..Resolved::default()
        }
    }
}

/// Every credential source, loaded once per pull or push.
#[derive(Debug, Default)]
pub(crate) struct Keychain {
    explicit: Option<(String, Credentials)>,
    docker: AuthFile,
    containers: Vec<AuthFile>,
    helper_path: Option<OsString>,
}

impl Keychain {
    /// Reads the Docker config and the auth files (missing files are empty).
    pub(crate) fn load(config: &RegistryConfig) -> Result<Self, RegistryError> {
        let explicit = config.explicit.as_ref().map(|e| {
            (
                normalize_registry(&e.registry),
                Credentials::Basic {
                    username: e.username.clone(),
                    password: e.password.clone(),
                },
            )
        });
        let docker = AuthFile::load(config.docker_config.as_deref(), "Docker config", false)?;
        let containers = config
            .containers_auth
            .iter()
            .map(|path| AuthFile::load(Some(path), "auth file", true))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            explicit,
            docker,
            containers,
            helper_path: config.helper_path.clone(),
        })
    }

    /// The credential sources for `repository` on `registry` (a normalised `host[:port]`).
    pub(crate) fn lookup(&self, registry: &str, repository: &str) -> CredentialLookup {
        let mut candidates = Vec::new();
        if let Some((explicit_registry, credentials)) = &self.explicit
            && explicit_registry == registry
        {
            candidates.push(Candidate {
                origin: "--registry-username/--registry-password".to_string(),
                credentials: credentials.clone(),
            });
        }
        let mut consulted = Vec::new();
        for file in std::iter::once(&self.docker).chain(&self.containers) {
            if let Some(description) = file.description() {
                consulted.push(description);
            }
            candidates.extend(file.candidates(registry, repository));
        }
        CredentialLookup {
            registry: registry.to_string(),
            candidates,
            consulted,
            helper_path: self.helper_path.clone(),
        }
    }
}

/// A Docker `config.json` or a podman `auth.json`: the parts liftoff uses.
#[derive(Debug, Default)]
pub(crate) struct AuthFile {
    /// `Docker config` or `auth file`.
    kind: &'static str,
    path: Option<PathBuf>,
    exists: bool,
    /// Key (`host[:port]`, or `host/namespace` in podman files) → credentials.
    auths: BTreeMap<String, Credentials>,
    cred_helpers: BTreeMap<String, String>,
    creds_store: Option<String>,
}

impl AuthFile {
    /// Loads `path`; a missing file is empty. Error messages never quote values.
    /// `namespaced`: keys may name a repository namespace (`quay.io/org`), as in podman's files.
    pub(crate) fn load(
        path: Option<&Path>,
        kind: &'static str,
        namespaced: bool,
    ) -> Result<Self, RegistryError> {
        let Some(path) = path else {
            return Ok(Self {
                kind,
                ..Self::default()
            });
        };
        let empty = Self {
            kind,
            path: Some(path.to_path_buf()),
            ..Self::default()
        };
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(empty),
            Err(e) => return Err(RegistryError::io("read", path, e)),
        };
        let invalid = |message: String| RegistryError::InvalidConfig {
            setting: format!("{kind} {}", path.display()),
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
        let mut file = Self {
            exists: true,
            ..empty
        };
        if let Some(auths) = json.get("auths").and_then(serde_json::Value::as_object) {
            for (key, entry) in auths {
                let credentials = entry_credentials(entry)
                    .map_err(|message| invalid(format!("auths.\"{key}\": {message}")))?;
                file.auths.insert(config_key(key, namespaced), credentials);
            }
        }
        if let Some(helpers) = json
            .get("credHelpers")
            .and_then(serde_json::Value::as_object)
        {
            for (key, helper) in helpers {
                if let Some(helper) = helper.as_str().filter(|h| !h.is_empty()) {
                    file.cred_helpers
                        .insert(config_key(key, false), helper.to_string());
                }
            }
        }
        file.creds_store = json
            .get("credsStore")
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        Ok(file)
    }

    fn description(&self) -> Option<String> {
        let path = self.path.as_ref()?;
        Some(if self.exists {
            format!("{} {}", self.kind, path.display())
        } else {
            format!("{} {} (which does not exist)", self.kind, path.display())
        })
    }

    /// As Docker does: `credHelpers` for the registry, else `credsStore`; then the `auths`
    /// entry (Docker itself ignores `auths` when a store is set; liftoff falls back to it when
    /// the store has nothing).
    fn candidates(&self, registry: &str, repository: &str) -> Vec<Candidate> {
        let Some(path) = &self.path else {
            return Vec::new();
        };
        let shown = path.display();
        let mut candidates = Vec::new();
        if let Some(helper) = self.cred_helpers.get(registry) {
            candidates.push(Candidate {
                origin: format!("credHelpers in {shown}"),
                credentials: Credentials::Helper {
                    helper: helper.clone(),
                },
            });
        } else if let Some(store) = &self.creds_store {
            candidates.push(Candidate {
                origin: format!("credsStore in {shown}"),
                credentials: Credentials::Helper {
                    helper: store.clone(),
                },
            });
        }
        // The most specific namespace first: `registry/a/b`, `registry/a`, `registry`.
        let mut key = format!("{registry}/{repository}");
        loop {
            if let Some(credentials) = self.auths.get(&key)
                && !matches!(credentials, Credentials::None)
            {
                candidates.push(Candidate {
                    origin: format!("{} {shown}", self.kind),
                    credentials: credentials.clone(),
                });
                break;
            }
            match key.rfind('/') {
                Some(slash) => key.truncate(slash),
                None => break,
            }
        }
        candidates
    }
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://host:5000/v2/` → `host:5000`; with
/// `namespaced`, `quay.io/org/repo` stays as it is.
fn config_key(key: &str, namespaced: bool) -> String {
    let key = key.trim();
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key)
        .trim_end_matches('/');
    let (host, path) = key.split_once('/').unwrap_or((key, ""));
    let host = normalize_registry(&host.to_ascii_lowercase());
    let api_path = matches!(path, "" | "v1" | "v2");
    if namespaced && !api_path {
        format!("{host}/{path}")
    } else {
        host
    }
}

fn entry_credentials(entry: &serde_json::Value) -> Result<Credentials, String> {
    let field = |name: &str| {
        entry
            .get(name)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let mut user_pass = None;
    if let Some(auth) = field("auth") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| "the `auth` value is not valid base64".to_string())?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| "the decoded `auth` value is not UTF-8".to_string())?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| "the decoded `auth` value is not `username:password`".to_string())?;
        user_pass = Some((username.to_string(), password.to_string()));
    } else if let (Some(username), Some(password)) = (field("username"), field("password")) {
        user_pass = Some((username.to_string(), password.to_string()));
    }
    if let Some(token) = field("identitytoken") {
        let username = user_pass
            .map(|(u, _)| u)
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| TOKEN_USERNAME.to_string());
        return Ok(Credentials::IdentityToken {
            username,
            token: token.to_string(),
        });
    }
    if let Some(token) = field("registrytoken") {
        return Ok(Credentials::RegistryToken(token.to_string()));
    }
    Ok(match user_pass {
        Some((username, password)) if !username.is_empty() || !password.is_empty() => {
            Credentials::Basic { username, password }
        }
        _ => Credentials::None,
    })
}

/// The server URLs a helper is asked about, in order: Docker Hub's legacy key, else the registry
/// as `docker login` stores it, then with an `https://` prefix (some logins store that).
fn helper_servers(registry: &str) -> Vec<String> {
    if registry == DOCKER_HUB {
        vec![DOCKER_HUB_KEY.to_string(), DOCKER_HUB.to_string()]
    } else {
        vec![registry.to_string(), format!("https://{registry}")]
    }
}

/// Runs `docker-credential-<helper> get` for `registry`. `Ok(None)`: the helper has nothing
/// for it. `Err`: why it could not be used (never containing its output's secrets).
pub(crate) fn run_helper(
    helper: &str,
    registry: &str,
    path: Option<&std::ffi::OsStr>,
) -> Result<Option<Credentials>, String> {
    let program = format!("docker-credential-{helper}");
    if helper.contains(['/', '\\']) || helper.starts_with('.') {
        return Err(format!("is not a valid helper name (`{helper}`)"));
    }
    let search = path
        .map(OsString::from)
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    let Some(executable) = std::env::split_paths(&search)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(&program))
        .find(|candidate| candidate.is_file())
    else {
        return Err(
            "is not installed (not found on PATH); install it, or remove the entry from the config"
                .to_string(),
        );
    };
    for server in helper_servers(registry) {
        match helper_get(&executable, &server, path)? {
            HelperAnswer::Found { username, secret } => {
                return Ok(Some(if username == TOKEN_USERNAME {
                    Credentials::IdentityToken {
                        username,
                        token: secret,
                    }
                } else {
                    Credentials::Basic {
                        username,
                        password: secret,
                    }
                }));
            }
            HelperAnswer::NotFound => {}
        }
    }
    Ok(None)
}

enum HelperAnswer {
    Found { username: String, secret: String },
    NotFound,
}

fn helper_get(
    executable: &Path,
    server: &str,
    path: Option<&std::ffi::OsStr>,
) -> Result<HelperAnswer, String> {
    let mut command = Command::new(executable);
    command
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("could not be started: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its input is not an error in itself.
        let _ = stdin.write_all(server.as_bytes());
    }
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out_thread = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(out) = stdout.as_mut() {
            let _ = out.take(HELPER_OUTPUT_LIMIT).read_to_end(&mut bytes);
        }
        bytes
    });
    let err_thread = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(err) = stderr.as_mut() {
            let _ = err.take(HELPER_OUTPUT_LIMIT).read_to_end(&mut bytes);
        }
        bytes
    });
    let deadline = Instant::now() + HELPER_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "did not answer within {} seconds (is it waiting for a password prompt or a desktop session?)",
                    HELPER_TIMEOUT.as_secs()
                ));
            }
            Err(e) => return Err(format!("could not be waited for: {e}")),
        }
    };
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    if !status.success() {
        let text = String::from_utf8_lossy(&stdout);
        let text = text.trim();
        if text.contains("credentials not found") || text.is_empty() && stderr.is_empty() {
            return Ok(HelperAnswer::NotFound);
        }
        // Error output of helpers names the problem; keep it short.
        let mut message: String = if text.is_empty() {
            String::from_utf8_lossy(&stderr).trim().to_string()
        } else {
            text.to_string()
        };
        if message.chars().count() > 200 {
            message = message.chars().take(200).collect::<String>() + "…";
        }
        return Err(format!("failed ({status}): {message}"));
    }
    // Only the two fields are read; the output is never quoted (it holds the secret).
    let json: serde_json::Value = serde_json::from_slice(&stdout)
        .map_err(|_| "answered with something that is not JSON".to_string())?;
    let field = |name: &str| {
        json.get(name)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (username, secret) = (field("Username"), field("Secret"));
    if secret.is_empty() {
        return Ok(HelperAnswer::NotFound);
    }
    Ok(HelperAnswer::Found { username, secret })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(json: &str, namespaced: bool) -> (tempfile::TempDir, AuthFile) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, json).unwrap();
        let file = AuthFile::load(Some(&path), "Docker config", namespaced).unwrap();
        (dir, file)
    }

    fn first(file: &AuthFile, registry: &str, repository: &str) -> Credentials {
        file.candidates(registry, repository)
            .into_iter()
            .next()
            .map(|c| c.credentials)
            .unwrap_or_default()
    }

    #[test]
    fn docker_config_credentials() {
        let (dir, config) = load(
            r#"{
              "auths": {
                "https://index.docker.io/v1/": {"auth": "dXNlcjpwYTpzcw=="},
                "ghcr.io": {"username": "u", "password": "p"},
                "quay.io": {"identitytoken": "refresh"},
                "helped.example": {}
              },
              "credHelpers": {"gcr.io": "gcloud"}
            }"#,
            false,
        );
        match first(&config, "docker.io", "library/node") {
            Credentials::Basic { username, password } => {
                assert_eq!((username.as_str(), password.as_str()), ("user", "pa:ss"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            first(&config, "ghcr.io", "a/b"),
            Credentials::Basic { .. }
        ));
        assert!(matches!(
            first(&config, "quay.io", "a/b"),
            Credentials::IdentityToken { username, .. } if username == "<token>"
        ));
        assert!(
            matches!(first(&config, "gcr.io", "p/i"), Credentials::Helper { helper } if helper == "gcloud")
        );
        assert!(config.candidates("helped.example", "x").is_empty());
        assert!(config.candidates("other.example", "x").is_empty());
        let shown = format!("{:?}", config.candidates("docker.io", "library/node"));
        assert!(
            !shown.contains("pa:ss") && !shown.contains("dXNlcjpwYTpzcw"),
            "{shown}"
        );

        // A credential store is asked for every registry, before `auths`.
        let (_dir2, store) = load(
            r#"{"auths":{"ghcr.io":{"auth":"dTpw"}},"credsStore":"desktop"}"#,
            false,
        );
        let candidates = store.candidates("ghcr.io", "a");
        assert!(
            matches!(&candidates[0].credentials, Credentials::Helper { helper } if helper == "desktop")
        );
        assert!(matches!(
            candidates[1].credentials,
            Credentials::Basic { .. }
        ));

        // Errors never quote values.
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"auths": {"x.io": {"auth": "s3cr3t!!"}}}"#).unwrap();
        let err = AuthFile::load(Some(&path), "Docker config", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.io") && !err.contains("s3cr3t"), "{err}");

        let missing =
            AuthFile::load(Some(&dir.path().join("nope.json")), "Docker config", false).unwrap();
        assert!(missing.description().unwrap().contains("does not exist"));
    }

    #[test]
    fn podman_auth_files_match_namespaces() {
        let (_dir, file) = load(
            r#"{"auths":{
                "quay.io/org/app": {"auth":"YXBwOjE="},
                "quay.io/org": {"auth":"b3JnOjI="},
                "quay.io": {"auth":"YWxsOjM="},
                "docker.io": {"auth":"aHViOjQ="}
            }}"#,
            true,
        );
        let user = |registry, repository| match first(&file, registry, repository) {
            Credentials::Basic { username, .. } => username,
            other => panic!("{other:?}"),
        };
        assert_eq!(user("quay.io", "org/app"), "app");
        assert_eq!(user("quay.io", "org/other"), "org");
        assert_eq!(user("quay.io", "elsewhere/x"), "all");
        assert_eq!(user("docker.io", "library/node"), "hub");
    }

    #[test]
    fn explicit_credentials_come_first() {
        let dir = tempfile::tempdir().unwrap();
        let docker = dir.path().join("config.json");
        std::fs::write(&docker, r#"{"auths":{"ghcr.io":{"auth":"dTpw"}}}"#).unwrap();
        let config = RegistryConfig {
            docker_config: Some(docker),
            containers_auth: vec![dir.path().join("missing-auth.json")],
            ..RegistryConfig::default()
        }
        .with_credentials("ghcr.io", "explicit", "pw");
        let keychain = Keychain::load(&config).unwrap();
        let lookup = keychain.lookup("ghcr.io", "a/b");
        assert_eq!(lookup.candidates.len(), 2);
        let resolved = lookup.resolve();
        assert!(
            matches!(&resolved.credentials, Credentials::Basic { username, .. } if username == "explicit")
        );
        assert_eq!(
            resolved.origin.as_deref(),
            Some("--registry-username/--registry-password")
        );
        assert_eq!(lookup.consulted.len(), 2, "{:?}", lookup.consulted);
        assert!(lookup.consulted[1].contains("does not exist"));
        // Other registries do not get them.
        assert_eq!(keychain.lookup("quay.io", "a").candidates.len(), 0);
    }

    #[test]
    fn missing_helpers_are_reported_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let err = run_helper("nonexistent", "ghcr.io", Some(dir.path().as_os_str())).unwrap_err();
        assert!(err.contains("not installed"), "{err}");
        assert!(run_helper("../evil", "ghcr.io", None).is_err());
    }
}
