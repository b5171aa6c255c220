//! Registry settings: mirrors, plain-HTTP registries, extra CA certificates (including Docker's
//! `certs.d`), where credentials come from, and an HTTP debug log.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::RegistryError;
use crate::reference::normalize_registry;

/// `docker.io=http://127.0.0.1:5000,ghcr.io=https://mirror.example` (like dockerd's
/// `registry-mirrors`, but for any registry).
pub const MIRRORS_VAR: &str = "LIFTOFF_REGISTRY_MIRRORS";
/// `registry.local:5000,10.0.0.5:5000`: registries reached over plain HTTP.
pub const INSECURE_VAR: &str = "LIFTOFF_INSECURE_REGISTRIES";
/// Extra PEM CA certificate files, separated like `PATH`.
pub const CA_CERTS_VAR: &str = "LIFTOFF_REGISTRY_CA_CERTS";
/// The user name of explicit registry credentials (the CLI's `--registry-username`).
pub const USERNAME_VAR: &str = "LIFTOFF_REGISTRY_USERNAME";
/// The password of explicit registry credentials (the CLI's `--registry-password`).
pub const PASSWORD_VAR: &str = "LIFTOFF_REGISTRY_PASSWORD";
/// Docker's per-registry CA directory: `<dir>/<host[:port]>/*.crt`.
pub const DEFAULT_CERTS_D: &str = "/etc/docker/certs.d";

/// Receives one line per HTTP exchange (`PUT https://r.example/v2/a/manifests/v1 -> 201`).
/// Headers are never included, and query parameters that may carry secrets are redacted.
pub type HttpLog = Arc<dyn Fn(&str) + Send + Sync>;

/// Credentials given explicitly (command line or environment) for one registry. They win over
/// every other credential source. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ExplicitCredentials {
    /// The registry they are for (`ghcr.io`, `127.0.0.1:5000`; Docker Hub's aliases are
    /// normalised to `docker.io`).
    pub registry: String,
    pub username: String,
    pub password: String,
}

impl fmt::Debug for ExplicitCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExplicitCredentials")
            .field("registry", &self.registry)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How to reach registries.
///
/// Credentials are looked up in this order: [`RegistryConfig::explicit`], Docker's
/// `config.json` (`credHelpers`, then `credsStore`, then `auths`; helpers are run as
/// `docker-credential-<name> get`), then the podman/skopeo auth files
/// ([`RegistryConfig::containers_auth`]). Helpers only run when a registry asks for
/// credentials.
#[derive(Clone)]
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
    /// Docker's per-registry CA directory: the `*.crt` files in `<certs_d>/<host[:port]>/` are
    /// trusted for that registry only. Defaults to [`DEFAULT_CERTS_D`]; `None` turns it off.
    pub certs_d: Option<PathBuf>,
    /// Docker's `config.json`. A missing file means no credentials from it.
    pub docker_config: Option<PathBuf>,
    /// podman/skopeo auth files (`auths`, same shape as Docker's), consulted in order after the
    /// Docker config. Missing files are skipped.
    pub containers_auth: Vec<PathBuf>,
    /// Explicit credentials for one registry (see [`RegistryConfig::with_credentials`]).
    pub explicit: Option<ExplicitCredentials>,
    /// The `PATH` searched for `docker-credential-*` helpers (and given to them); `None` means
    /// this process's `PATH`.
    pub helper_path: Option<OsString>,
    /// Called with one line per HTTP exchange, for `--debug` output.
    pub http_log: Option<HttpLog>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            mirrors: Vec::new(),
            insecure: Vec::new(),
            extra_ca_certs: Vec::new(),
            certs_d: Some(PathBuf::from(DEFAULT_CERTS_D)),
            docker_config: None,
            containers_auth: Vec::new(),
            explicit: None,
            helper_path: None,
            http_log: None,
        }
    }
}

impl fmt::Debug for RegistryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryConfig")
            .field("mirrors", &self.mirrors)
            .field("insecure", &self.insecure)
            .field("extra_ca_certs", &self.extra_ca_certs)
            .field("certs_d", &self.certs_d)
            .field("docker_config", &self.docker_config)
            .field("containers_auth", &self.containers_auth)
            .field("explicit", &self.explicit)
            .field("helper_path", &self.helper_path)
            .field("http_log", &self.http_log.as_ref().map(|_| "<fn>"))
            .finish()
    }
}

impl RegistryConfig {
    /// Reads [`MIRRORS_VAR`], [`INSECURE_VAR`], [`CA_CERTS_VAR`], the Docker config location
    /// (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`), the podman auth files
    /// (`$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json` and
    /// `~/.config/containers/auth.json`) and `PATH` (for credential helpers) from the environment.
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
            for registry in value.split(',') {
                config.add_insecure(registry);
            }
        }
        if let Some(value) = var(CA_CERTS_VAR) {
            config.extra_ca_certs = std::env::split_paths(&value)
                .filter(|p| !p.as_os_str().is_empty())
                .collect();
        }
        let nonempty = |name: &str| var(name).filter(|v| !v.is_empty());
        let home = nonempty("HOME").map(PathBuf::from);
        config.docker_config = match nonempty("DOCKER_CONFIG") {
            Some(dir) => Some(PathBuf::from(dir).join("config.json")),
            None => home.as_ref().map(|h| h.join(".docker").join("config.json")),
        };
        config.containers_auth = match nonempty("REGISTRY_AUTH_FILE") {
            Some(file) => vec![PathBuf::from(file)],
            None => nonempty("XDG_RUNTIME_DIR")
                .map(|dir| PathBuf::from(dir).join("containers").join("auth.json"))
                .into_iter()
                .chain(
                    home.as_ref()
                        .map(|h| h.join(".config").join("containers").join("auth.json")),
                )
                .collect(),
        };
        config.helper_path = var("PATH");
        Ok(config)
    }

    /// Sets explicit credentials for `registry` (the CLI's `--registry-username` and
    /// `--registry-password`, or [`USERNAME_VAR`] and [`PASSWORD_VAR`]). They are used for that
    /// registry before any other source.
    #[must_use]
    pub fn with_credentials(mut self, registry: &str, username: &str, password: &str) -> Self {
        self.explicit = Some(ExplicitCredentials {
            registry: registry_name(registry),
            username: username.to_string(),
            password: password.to_string(),
        });
        self
    }

    /// Allows plain HTTP for `registry` (`host[:port]`, the CLI's `--insecure-registry`; a
    /// leading `http://` or `https://` and a trailing `/` are ignored).
    #[must_use]
    pub fn with_insecure_registry(mut self, registry: &str) -> Self {
        self.add_insecure(registry);
        self
    }

    fn add_insecure(&mut self, registry: &str) {
        let registry = registry_name(registry);
        if !registry.is_empty() && !self.insecure.contains(&registry) {
            self.insecure.push(registry);
        }
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

/// `https://Host:5000/` → `host:5000`; Docker Hub's aliases → `docker.io`.
fn registry_name(value: &str) -> String {
    let value = value.trim();
    let value = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .unwrap_or(value);
    let host = value.split('/').next().unwrap_or(value);
    normalize_registry(&host.to_ascii_lowercase())
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

/// The host of `host[:port]` / `[v6]:port`.
pub(crate) fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else if registry.matches(':').count() > 1 {
        // A bare IPv6 address.
        registry
    } else {
        registry.split(':').next().unwrap_or_default()
    }
}

/// `localhost`, `127.0.0.0/8` and `::1`, with or without a port.
pub(crate) fn is_loopback(registry: &str) -> bool {
    let host = host_of(registry);
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Loopback, private-range, link-local and unspecified addresses, and `localhost`: where a
/// public registry must never send liftoff. Host names other than `localhost` are not resolved.
pub(crate) fn is_private(registry: &str) -> bool {
    use std::net::IpAddr;
    let host = host_of(registry);
    if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    let private_v4 = |ip: std::net::Ipv4Addr| {
        let [a, b, ..] = ip.octets();
        ip.is_loopback()
            || ip.is_private()
            || ip.is_link_local()
            || ip.is_unspecified()
            // 100.64.0.0/10, carrier-grade NAT.
            || (a == 100 && (64..128).contains(&b))
    };
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => private_v4(ip),
        Ok(IpAddr::V6(ip)) => {
            let first = ip.segments()[0];
            ip.is_loopback()
                || ip.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || ip.to_ipv4_mapped().is_some_and(private_v4)
        }
        Err(_) => false,
    }
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
            "XDG_RUNTIME_DIR" => Some("/run/user/1".into()),
            "PATH" => Some("/opt/bin:/usr/bin".into()),
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
        assert_eq!(
            config.containers_auth,
            [
                PathBuf::from("/run/user/1/containers/auth.json"),
                PathBuf::from("/home/u/.config/containers/auth.json")
            ]
        );
        assert_eq!(config.certs_d, Some(PathBuf::from(DEFAULT_CERTS_D)));
        assert_eq!(config.helper_path, Some("/opt/bin:/usr/bin".into()));

        let config = RegistryConfig::from_vars(|name| match name {
            "DOCKER_CONFIG" => Some("/etc/dc".into()),
            "REGISTRY_AUTH_FILE" => Some("/etc/auth.json".into()),
            "XDG_RUNTIME_DIR" => Some("/run/user/1".into()),
            "HOME" => Some("/home/u".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            config.docker_config,
            Some(PathBuf::from("/etc/dc/config.json"))
        );
        assert_eq!(config.containers_auth, [PathBuf::from("/etc/auth.json")]);
    }

    #[test]
    fn builder_methods_and_secret_free_debug() {
        let log: HttpLog = Arc::new(|_| {});
        let config = RegistryConfig {
            http_log: Some(log),
            ..RegistryConfig::default()
        }
        .with_credentials("https://index.docker.io/v1/", "me", "hunter2-secret")
        .with_insecure_registry("http://Registry.Local:5000/")
        .with_insecure_registry("registry.local:5000");
        assert_eq!(config.insecure, ["registry.local:5000"]);
        assert!(config.is_insecure("registry.local:5000"));
        let explicit = config.explicit.as_ref().unwrap();
        assert_eq!(explicit.registry, "docker.io");
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("me") && shown.contains("<fn>"),
            "{shown}"
        );
    }

    #[test]
    fn private_addresses() {
        for private in [
            "localhost:5000",
            "127.0.0.1",
            "10.1.2.3:443",
            "172.16.0.1",
            "192.168.1.1:5000",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "[::1]:5000",
            "[fd00::1]",
            "[fe80::1]:80",
            "[::ffff:10.0.0.1]",
            "registry.localhost",
        ] {
            assert!(is_private(private), "{private}");
        }
        for public in ["ghcr.io", "8.8.8.8:443", "[2001:db8::1]", "172.32.0.1"] {
            assert!(!is_private(public), "{public}");
        }
    }
}
