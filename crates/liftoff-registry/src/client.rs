//! A small registry client (distribution API v2) on `ureq`, with the Docker auth flows:
//! anonymous or credentialed bearer tokens (`WWW-Authenticate: Bearer realm=…`), `OAuth2`
//! refresh tokens (`identitytoken`) and HTTP Basic.
//!
//! [`Endpoint::request`] does the auth dance for any request and any [`Access`] (pull, or
//! push plus pull on the repositories blobs are mounted from); tokens are cached per scope set
//! until they expire.
//!
//! Transport: HTTPS with the Mozilla roots, the configured extra CAs and Docker's
//! `certs.d/<host[:port]>/*.crt` for that registry; plain HTTP only for loopback and the
//! configured insecure registries. Proxies come from `ALL_PROXY`/`HTTPS_PROXY`/`HTTP_PROXY`
//! (first set wins, lowercase variants too) with `NO_PROXY` (host names, `.suffix`/`*.suffix`
//! and `*`; a plain name also covers its subdomains; CIDR ranges are not supported); loopback
//! hosts are never proxied.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use ureq::http::{self, Method, Response};
use ureq::{Agent, Body, SendBody};

use crate::config::{HttpLog, PASSWORD_VAR, RegistryConfig, USERNAME_VAR, is_private};
use crate::credentials::{CredentialLookup, Credentials, Resolved};
use crate::manifest;
use crate::{RegistryError, reference::DOCKER_HUB};

const USER_AGENT: &str = concat!("liftoff/", env!("CARGO_PKG_VERSION"));
/// Registries cap manifests at 4 MiB; leave room for large indexes.
pub(crate) const MANIFEST_LIMIT: u64 = 8 * 1024 * 1024;
const ERROR_BODY_LIMIT: u64 = 64 * 1024;
/// What the token spec says to assume when a token service gives no `expires_in`.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_mins(1);
/// Tokens are renewed this long before they expire (requests take time), or after three
/// quarters of their lifetime for short-lived ones.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);

/// The HTTP agent for registries in general: Mozilla roots plus `extra_ca_certs`.
pub(crate) fn agent(config: &RegistryConfig) -> Result<Agent, RegistryError> {
    build_agent(&config.extra_ca_certs)
}

/// The agent and debug log for talking to the registry or mirror at `hosts` (its names, e.g.
/// `docker.io` and `registry-1.docker.io`): also trusts `<certs_d>/<host>/*.crt`.
pub(crate) fn http_for(config: &RegistryConfig, hosts: &[&str]) -> Result<Http, RegistryError> {
    let mut files = config.extra_ca_certs.clone();
    if let Some(root) = &config.certs_d {
        for host in hosts {
            files.extend(certs_d_files(&root.join(host))?);
        }
    }
    Ok(Http {
        agent: build_agent(&files)?,
        log: config.http_log.clone(),
    })
}

/// Docker's convention: every `*.crt` in the directory is a CA certificate.
fn certs_d_files(dir: &Path) -> Result<Vec<PathBuf>, RegistryError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RegistryError::io("read the certificate directory", dir, e)),
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "crt"))
        .collect();
    files.sort();
    Ok(files)
}

/// Mozilla roots plus `ca_files`, redirects that keep the `Authorization` header only on the
/// same host, no status-as-error, and the environment's proxy.
fn build_agent(ca_files: &[PathBuf]) -> Result<Agent, RegistryError> {
    let mut tls = ureq::tls::TlsConfig::builder();
    if !ca_files.is_empty() {
        let mut roots: Vec<ureq::tls::Certificate<'static>> =
            webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .map(|der| ureq::tls::Certificate::from_der(der.as_ref()))
                .collect();
        for path in ca_files {
            let pem = std::fs::read(path)
                .map_err(|e| RegistryError::io("read CA certificate", path, e))?;
            let before = roots.len();
            for item in ureq::tls::parse_pem(&pem) {
                if let Ok(ureq::tls::PemItem::Certificate(cert)) = item {
                    roots.push(cert);
                }
            }
            if roots.len() == before {
                return Err(RegistryError::InvalidConfig {
                    setting: format!("CA certificate file {}", path.display()),
                    message: "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
                        .to_string(),
                });
            }
        }
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&roots));
    }
    let proxy = proxy_from(&|name| std::env::var(name).ok());
    Ok(Agent::config_builder()
        .http_status_as_error(false)
        .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
        .user_agent(USER_AGENT)
        .proxy(proxy)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_mins(2)))
        .timeout_per_read(Some(Duration::from_mins(2)))
        .timeout_per_write(Some(Duration::from_mins(2)))
        .tls_config(tls.build())
        .build()
        .into())
}

/// The proxy from the environment, as `ureq` reads it, plus: loopback hosts are never proxied
/// (as in Go's `net/http`), and a plain `NO_PROXY` name also covers its subdomains.
fn proxy_from(var: &dyn Fn(&str) -> Option<String>) -> Option<ureq::Proxy> {
    let value = [
        "ALL_PROXY",
        "all_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
    ]
    .iter()
    .find_map(|name| var(name).filter(|v| !v.trim().is_empty()))?;
    let parsed = ureq::Proxy::new(value.trim()).ok()?;
    let mut builder = ureq::Proxy::builder(parsed.protocol())
        .host(parsed.host())
        .port(parsed.port());
    if let Some(username) = parsed.username() {
        builder = builder.username(username);
    }
    if let Some(password) = parsed.password() {
        builder = builder.password(password);
    }
    for loopback in ["localhost", ".localhost", "127.", "::1", "[::1]"] {
        builder = builder.no_proxy(loopback);
    }
    let list = var("NO_PROXY")
        .or_else(|| var("no_proxy"))
        .unwrap_or_default();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if entry.contains('/') {
            continue; // CIDR ranges: not supported by ureq.
        }
        // `host:port` → `host` (not for IPv6 addresses).
        let entry = match entry.split_once(':') {
            Some((host, port)) if !port.contains(':') && !entry.starts_with('[') => host,
            _ => entry,
        };
        builder = builder.no_proxy(entry);
        if !entry.starts_with(['.', '*']) {
            builder = builder.no_proxy(&format!(".{entry}"));
        }
    }
    builder.build().ok()
}

/// The base URLs to try for `registry`, in order.
pub(crate) fn registry_bases(registry: &str, config: &RegistryConfig) -> Vec<String> {
    let host = registry_host(registry);
    if config.is_insecure(registry) {
        vec![format!("https://{host}"), format!("http://{host}")]
    } else {
        vec![format!("https://{host}")]
    }
}

/// The host that serves `registry`'s API.
pub(crate) fn registry_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        "registry-1.docker.io"
    } else {
        registry
    }
}

/// An agent and where to log its exchanges.
#[derive(Clone)]
pub(crate) struct Http {
    pub agent: Agent,
    pub log: Option<HttpLog>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// What a request needs: the token scopes to ask for, and the repository errors name.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    pub repository: String,
    scopes: Vec<String>,
    push: bool,
}

impl Access {
    /// `repository:<repository>:pull`.
    pub(crate) fn pull(repository: &str) -> Self {
        Self {
            repository: repository.to_string(),
            scopes: vec![format!("repository:{repository}:pull")],
            push: false,
        }
    }

    /// `repository:<repository>:pull,push`, plus `repository:<from>:pull` for each repository
    /// blobs may be mounted from (one token then serves the whole push).
    pub(crate) fn push(repository: &str, mount_from: &[String]) -> Self {
        let mut scopes = vec![format!("repository:{repository}:pull,push")];
        for from in mount_from {
            let scope = format!("repository:{from}:pull");
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        Self {
            repository: repository.to_string(),
            scopes,
            push: true,
        }
    }

    /// No repository scope, as `docker login` asks: enough to prove the credentials work.
    pub(crate) fn login() -> Self {
        Self {
            repository: "its API (/v2/)".to_string(),
            scopes: Vec::new(),
            push: false,
        }
    }
}

/// A request body that can be sent again (after a 401, or on a retry).
pub(crate) enum Payload<'a> {
    /// No body (`GET`, `HEAD`, `DELETE`).
    None,
    Bytes(&'a [u8]),
    /// `len` bytes of `path` from `offset`; `on_sent` gets the bytes sent so far.
    File {
        path: &'a Path,
        offset: u64,
        len: u64,
        on_sent: &'a (dyn Fn(u64) + Sync),
    },
}

struct CachedToken {
    token: Arc<str>,
    expires: Instant,
}

/// One registry (or mirror) at one base URL, with its auth state.
pub(crate) struct Endpoint {
    http: Http,
    /// How errors and events name it: `ghcr.io`, `mirror http://127.0.0.1:5000`.
    pub(crate) name: String,
    /// The name credentials are stored under (`docker login <login>`).
    login: String,
    base: String,
    lookup: CredentialLookup,
    resolved: OnceLock<Resolved>,
    challenge: Mutex<Option<Challenge>>,
    /// Scope set → token.
    tokens: Mutex<HashMap<String, CachedToken>>,
    /// Held while a token is fetched.
    fetching: Mutex<()>,
}

/// A manifest as served.
pub(crate) struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    pub digest_header: Option<String>,
}

impl Endpoint {
    /// Pings `<base>/v2/` for each candidate base in turn (HTTPS before HTTP for insecure
    /// registries) and keeps the first that answers, with its auth challenge.
    pub(crate) fn connect(
        http: &Http,
        name: &str,
        login: &str,
        bases: &[String],
        lookup: &CredentialLookup,
    ) -> Result<Self, RegistryError> {
        // (url, what went wrong, whether trying again may help)
        let mut failures: Vec<(String, String, bool)> = Vec::new();
        for base in bases {
            let mut endpoint = Self {
                http: http.clone(),
                name: name.to_string(),
                login: login.to_string(),
                base: base.clone(),
                lookup: lookup.clone(),
                resolved: OnceLock::new(),
                challenge: Mutex::new(None),
                tokens: Mutex::new(HashMap::new()),
                fetching: Mutex::new(()),
            };
            let url = format!("{base}/v2/");
            match endpoint.raw(Method::GET, &url, &[], &Payload::None) {
                Err(RegistryError::Transport {
                    message, retryable, ..
                }) => failures.push((url, message, retryable)),
                Err(other) => return Err(other),
                // 200: open; 401: tells how to authenticate. Anything else is not a registry API.
                Ok(response) if matches!(response.status().as_u16(), 200 | 401) => {
                    *endpoint
                        .challenge
                        .get_mut()
                        .unwrap_or_else(PoisonError::into_inner) = challenge_of(&response);
                    return Ok(endpoint);
                }
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let message = error_message(&mut response);
                    let separator = if message.is_empty() { "" } else { ": " };
                    failures.push((
                        url,
                        format!(
                            "HTTP {status}{separator}{message}, which is not a registry API answer"
                        ),
                        false,
                    ));
                }
            }
        }
        let retryable = failures.iter().any(|(_, _, retryable)| *retryable);
        let (url, mut message, _) = failures.pop().expect("at least one base URL");
        for (other_url, other, _) in failures {
            let _ = write!(message, "; also tried {other_url}: {other}");
        }
        Err(RegistryError::Transport {
            registry: name.to_string(),
            method: "GET",
            url,
            message,
            retryable,
        })
    }

    /// `https://host[:port]` (or a mirror's base URL).
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// The manifest `reference` (tag or digest) of `repository`.
    pub(crate) fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest, RegistryError> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let access = Access::pull(repository);
        let mut response = self.request(
            Method::GET,
            &url,
            &access,
            &[("Accept", manifest::ACCEPT)],
            &Payload::None,
        )?;
        self.check_manifest_status(&mut response, "GET", &url, &access, reference)?;
        let content_type = header(&response, "content-type");
        let digest_header = header(&response, "docker-content-digest");
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MANIFEST_LIMIT)
            .read_to_vec()
            .map_err(|e| self.transport("GET", &url, &e))?;
        Ok(FetchedManifest {
            bytes,
            content_type,
            digest_header,
        })
    }

    /// `HEAD` of a manifest: `(digest, content type)` when the registry reports the digest.
    pub(crate) fn head_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<(String, Option<String>)>, RegistryError> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let access = Access::pull(repository);
        let mut response = self.request(
            Method::HEAD,
            &url,
            &access,
            &[("Accept", manifest::ACCEPT)],
            &Payload::None,
        )?;
        if matches!(response.status().as_u16(), 403 | 404) {
            self.check_manifest_status(&mut response, "HEAD", &url, &access, reference)?;
        }
        if !response.status().is_success() {
            return Ok(None);
        }
        Ok(header(&response, "docker-content-digest")
            .map(|digest| (digest, header(&response, "content-type"))))
    }

    /// A streaming `GET` of the blob `digest` (redirects followed).
    pub(crate) fn get_blob(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Response<Body>, RegistryError> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let access = Access::pull(repository);
        let mut response = self.request(Method::GET, &url, &access, &[], &Payload::None)?;
        match response.status().as_u16() {
            200..=299 => Ok(response),
            403 => Err(self.unauthorized(&access, 403, &mut response)),
            _ => Err(self.status_error("GET", &url, &mut response)),
        }
    }

    pub(crate) fn check_manifest_status(
        &self,
        response: &mut Response<Body>,
        method: &'static str,
        url: &str,
        access: &Access,
        reference: &str,
    ) -> Result<(), RegistryError> {
        match response.status().as_u16() {
            200..=299 => Ok(()),
            403 => Err(self.unauthorized(access, 403, response)),
            404 => Err(RegistryError::ManifestNotFound {
                registry: self.name.clone(),
                repository: access.repository.clone(),
                reference: reference.to_string(),
                message: error_message(response),
            }),
            _ => Err(self.status_error(method, url, response)),
        }
    }

    /// Sends a request with the right `Authorization` (only to the registry's own origin),
    /// fetching or refreshing a token (or switching to Basic) once if the registry answers 401.
    /// A final 401 is an [`RegistryError::Unauthorized`]; other statuses are returned.
    pub(crate) fn request(
        &self,
        method: Method,
        url: &str,
        access: &Access,
        headers: &[(&str, &str)],
        payload: &Payload<'_>,
    ) -> Result<Response<Body>, RegistryError> {
        if !same_origin(url, &self.base) {
            return self.raw(method, url, headers, payload);
        }
        let authorization = self.authorization(access, false, None)?;
        let mut response = self.raw_authorized(
            method.clone(),
            url,
            headers,
            authorization.as_deref(),
            payload,
        )?;
        if response.status().as_u16() != 401 {
            return Ok(response);
        }
        if let Some(challenge) = challenge_of(&response) {
            *self
                .challenge
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(challenge);
        }
        let retry = self.authorization(access, true, authorization.as_deref())?;
        if retry.is_none() || retry == authorization {
            return Err(self.unauthorized(access, 401, &mut response));
        }
        let mut response = self.raw_authorized(method, url, headers, retry.as_deref(), payload)?;
        if response.status().as_u16() == 401 {
            return Err(self.unauthorized(access, 401, &mut response));
        }
        Ok(response)
    }

    /// Where the credentials in use come from, once the registry has asked for authentication
    /// and there were some (`None` for an open registry, or anonymous access).
    pub(crate) fn credentials_origin(&self) -> Option<String> {
        let challenged = self
            .challenge
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        if challenged {
            self.credentials().origin.clone()
        } else {
            None
        }
    }

    /// The credentials, resolved (running credential helpers) on first use.
    fn credentials(&self) -> &Resolved {
        self.resolved.get_or_init(|| self.lookup.resolve())
    }

    /// The `Authorization` value for the current challenge, if any.
    /// With `refresh`, the token in `rejected` (the `Authorization` the registry just refused)
    /// is not reused. One thread at a time fetches tokens, so parallel jobs share one.
    fn authorization(
        &self,
        access: &Access,
        refresh: bool,
        rejected: Option<&str>,
    ) -> Result<Option<String>, RegistryError> {
        let challenge = self
            .challenge
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(challenge) = challenge else {
            return Ok(None);
        };
        match (challenge, &self.credentials().credentials) {
            (Challenge::Basic, Credentials::Basic { username, password }) => {
                Ok(Some(basic(username, password)))
            }
            (Challenge::Basic, _) => Ok(None),
            (Challenge::Bearer { .. }, Credentials::RegistryToken(token)) => {
                Ok(Some(format!("Bearer {token}")))
            }
            (
                Challenge::Bearer {
                    realm,
                    service,
                    scope: challenge_scope,
                },
                _,
            ) => {
                let key = access.scopes.join(" ");
                let cached = || {
                    let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
                    let cached = tokens.get(&key)?;
                    let header = format!("Bearer {}", cached.token);
                    let usable = Instant::now() < cached.expires
                        && !(refresh && rejected == Some(header.as_str()));
                    usable.then_some(header)
                };
                if let Some(header) = cached() {
                    return Ok(Some(header));
                }
                let _fetching = self.fetching.lock().unwrap_or_else(PoisonError::into_inner);
                // Another job may have fetched one while this one waited.
                if let Some(header) = cached() {
                    return Ok(Some(header));
                }
                let mut scopes = access.scopes.clone();
                if let Some(extra) = challenge_scope
                    && !scopes.iter().any(|s| same_scope(s, &extra))
                {
                    scopes.push(extra);
                }
                let (token, lifetime) =
                    self.fetch_token(&realm, service.as_deref(), &scopes, access)?;
                let expires = Instant::now() + usable_for(lifetime);
                let header = format!("Bearer {token}");
                self.tokens
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(
                        key,
                        CachedToken {
                            token: token.into(),
                            expires,
                        },
                    );
                Ok(Some(header))
            }
        }
    }

    /// A token from the token service: `OAuth2` (`POST`, `grant_type=refresh_token`) for an
    /// identity token, falling back to `GET` with Basic if the service has no `OAuth2` endpoint;
    /// else `GET`, with Basic credentials if there are any.
    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        access: &Access,
    ) -> Result<(String, Duration), RegistryError> {
        let shown = realm.split('?').next().unwrap_or(realm).to_string();
        let mut params: Vec<(&str, &str)> = Vec::new();
        if let Some(service) = service {
            params.push(("service", service));
        }
        let get = |credentials: Option<(&str, &str)>| {
            let mut params = params.clone();
            for scope in scopes {
                params.push(("scope", scope));
            }
            let separator = if realm.contains('?') { '&' } else { '?' };
            let url = format!("{realm}{separator}{}", encode_query(&params));
            let auth = credentials.map(|(user, password)| basic(user, password));
            let headers: Vec<(&str, &str)> = auth
                .as_deref()
                .map(|a| ("Authorization", a))
                .into_iter()
                .collect();
            self.raw(Method::GET, &url, &headers, &Payload::None)
        };
        let mut response = match &self.credentials().credentials {
            Credentials::IdentityToken { username, token } => {
                let joined = scopes.join(" ");
                let mut form = params.clone();
                form.extend([
                    ("scope", joined.as_str()),
                    ("grant_type", "refresh_token"),
                    ("client_id", "liftoff"),
                    ("refresh_token", token.as_str()),
                ]);
                let form = encode_query(&form);
                let response = self.raw(
                    Method::POST,
                    realm,
                    &[("Content-Type", "application/x-www-form-urlencoded")],
                    &Payload::Bytes(form.as_bytes()),
                )?;
                if matches!(response.status().as_u16(), 404 | 405) {
                    get(Some((username, token)))?
                } else {
                    response
                }
            }
            Credentials::Basic { username, password } => get(Some((username, password)))?,
            _ => get(None)?,
        };
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Err(self.unauthorized(access, status, &mut response));
        }
        if !response.status().is_success() {
            return Err(self.status_error("GET", &shown, &mut response));
        }
        let body: serde_json::Value = response
            .body_mut()
            .with_config()
            .limit(MANIFEST_LIMIT)
            .read_to_vec()
            .map_err(|e| e.to_string())
            .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
            .map_err(|e| RegistryError::Transport {
                registry: self.name.clone(),
                method: "GET",
                url: shown.clone(),
                message: format!("the token service's answer is unreadable: {e}"),
                retryable: true,
            })?;
        let lifetime = body
            .get("expires_in")
            .and_then(serde_json::Value::as_u64)
            .filter(|&s| s > 0)
            .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
        ["token", "access_token"]
            .iter()
            .find_map(|key| body.get(key).and_then(serde_json::Value::as_str))
            .filter(|t| !t.is_empty())
            .map(|t| (t.to_string(), lifetime))
            .ok_or_else(|| RegistryError::Transport {
                registry: self.name.clone(),
                method: "GET",
                url: shown,
                message: "the token service answered without a `token`".to_string(),
                retryable: false,
            })
    }

    /// One HTTP exchange, no auth logic, logged to the debug log. Transport failures name the
    /// endpoint and the URL (without its query, which may carry token-request parameters).
    fn raw(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        payload: &Payload<'_>,
    ) -> Result<Response<Body>, RegistryError> {
        let method_name = method_name(&method);
        let mut builder = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let build_error = |e: http::Error| self.transport_message(method_name, url, e.to_string());
        // Only `GET`/`HEAD` follow redirects (blob downloads are redirected to storage); an
        // upload redirected elsewhere is returned as is, never re-sent blindly.
        let follow = matches!(method_name, "GET" | "HEAD");
        let result = match payload {
            Payload::None => builder
                .body(())
                .map_err(build_error)
                .and_then(|req| self.run(req, follow, method_name, url)),
            Payload::Bytes(bytes) => builder
                .body(*bytes)
                .map_err(build_error)
                .and_then(|req| self.run(req, follow, method_name, url)),
            Payload::File {
                path,
                offset,
                len,
                on_sent,
            } => {
                let mut file = File::open(path).map_err(|e| RegistryError::io("open", *path, e))?;
                file.seek(SeekFrom::Start(*offset))
                    .map_err(|e| RegistryError::io("read", *path, e))?;
                let mut reader = Counting {
                    inner: file.take(*len),
                    sent: 0,
                    on_sent: *on_sent,
                };
                builder
                    .header("Content-Length", len.to_string())
                    .body(SendBody::from_reader(&mut reader))
                    .map_err(build_error)
                    .and_then(|req| self.run(req, follow, method_name, url))
            }
        };
        if let Some(log) = &self.http.log {
            let shown = redact_url(url);
            match &result {
                Ok(response) => log(&format!(
                    "{method_name} {shown} -> {}",
                    response.status().as_u16()
                )),
                Err(RegistryError::Transport { message, .. }) => {
                    log(&format!("{method_name} {shown} -> failed: {message}"));
                }
                Err(other) => log(&format!("{method_name} {shown} -> failed: {other}")),
            }
        }
        result
    }

    fn run<S: ureq::AsSendBody>(
        &self,
        request: http::Request<S>,
        follow_redirects: bool,
        method_name: &'static str,
        url: &str,
    ) -> Result<Response<Body>, RegistryError> {
        let request = if follow_redirects {
            request
        } else {
            self.http
                .agent
                .configure_request(request)
                .max_redirects(0)
                .max_redirects_will_error(false)
                .build()
        };
        self.http
            .agent
            .run(request)
            .map_err(|e| self.transport(method_name, url, &e))
    }

    fn raw_authorized(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        authorization: Option<&str>,
        payload: &Payload<'_>,
    ) -> Result<Response<Body>, RegistryError> {
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(authorization) = authorization {
            all.push(("Authorization", authorization));
        }
        self.raw(method, url, &all, payload)
    }

    fn transport(&self, method: &'static str, url: &str, error: &ureq::Error) -> RegistryError {
        let mut transport = self.transport_message(method, url, error.to_string());
        if let RegistryError::Transport { retryable, .. } = &mut transport {
            *retryable = is_retryable(error);
        }
        transport
    }

    /// A transport failure that trying again will not fix.
    pub(crate) fn transport_message(
        &self,
        method: &'static str,
        url: &str,
        message: String,
    ) -> RegistryError {
        RegistryError::Transport {
            registry: self.name.clone(),
            method,
            url: url.split('?').next().unwrap_or(url).to_string(),
            message,
            retryable: false,
        }
    }

    pub(crate) fn status_error(
        &self,
        method: &'static str,
        url: &str,
        response: &mut Response<Body>,
    ) -> RegistryError {
        RegistryError::Status {
            registry: self.name.clone(),
            method,
            url: url.split('?').next().unwrap_or(url).to_string(),
            status: response.status().as_u16(),
            message: error_message(response),
        }
    }

    pub(crate) fn unauthorized(
        &self,
        access: &Access,
        status: u16,
        response: &mut Response<Body>,
    ) -> RegistryError {
        RegistryError::Unauthorized {
            registry: self.name.clone(),
            repository: access.repository.clone(),
            status,
            message: error_message(response),
            hint: self.login_hint(access),
        }
    }

    /// How to get working credentials, given what was found.
    fn login_hint(&self, access: &Access) -> String {
        let login = &self.login;
        let resolved = self.credentials();
        let how = format!(
            "run `docker login {login}`, or pass --registry-username and --registry-password (or set {USERNAME_VAR} and {PASSWORD_VAR})"
        );
        let mut hint = match &resolved.origin {
            None => {
                let consulted = if self.lookup.consulted.is_empty() {
                    "no credential source (none were given, and neither DOCKER_CONFIG nor HOME is set)".to_string()
                } else {
                    self.lookup.consulted.join(", ")
                };
                if access.push {
                    format!(
                        "No credentials for {login} were found in {consulted}. Pushing needs credentials with push access: {how}"
                    )
                } else {
                    format!(
                        "No credentials for {login} were found in {consulted}. If the repository exists and is private, {how}"
                    )
                }
            }
            Some(origin) => {
                let action = if access.push { "push" } else { "pull" };
                // The user name (never the secret), unless it is the `<token>` placeholder
                // identity tokens are stored with.
                let user = match &resolved.credentials {
                    Credentials::Basic { username, .. }
                    | Credentials::IdentityToken { username, .. }
                        if !username.is_empty() && username != "<token>" =>
                    {
                        format!(" (user `{username}`)")
                    }
                    _ => String::new(),
                };
                if access.scopes.is_empty() {
                    format!(
                        "The credentials for {login}{user} from {origin} were rejected: {how} with valid credentials"
                    )
                } else {
                    format!(
                        "The credentials for {login}{user} from {origin} were rejected or do not grant {action} access to this repository; check the repository name, then {how} with credentials that have {action} access"
                    )
                }
            }
        };
        for failure in &resolved.helper_failures {
            let _ = write!(hint, ". Note: the credential helper {failure}");
        }
        hint
    }

    /// Where an upload continues: the response's `Location`, resolved against the request URL.
    ///
    /// Relative locations resolve against the registry. An absolute one may name the registry's
    /// own host (an `http://` location there is upgraded to `https://` when the registry is
    /// reached over HTTPS: TLS-terminating proxies send those), or another host, unless the
    /// registry is public and that host is private (loopback, private ranges, link-local,
    /// `localhost`: a public registry must not steer liftoff into the local network; host names
    /// are not resolved for this check), or the redirect would downgrade HTTPS to plain HTTP.
    pub(crate) fn location(
        &self,
        current: &str,
        response: &Response<Body>,
    ) -> Result<String, RegistryError> {
        let location = header(response, "location").ok_or_else(|| RegistryError::Protocol {
            registry: self.name.clone(),
            message: format!(
                "{} answered HTTP {} without a Location header, so the upload cannot continue",
                current.split('?').next().unwrap_or(current),
                response.status().as_u16()
            ),
        })?;
        resolve_location(&self.base, current, &location).map_err(|message| {
            RegistryError::Protocol {
                registry: self.name.clone(),
                message,
            }
        })
    }
}

/// See [`Endpoint::location`].
fn resolve_location(base: &str, current: &str, location: &str) -> Result<String, String> {
    let (base_scheme, base_rest) = base.split_once("://").unwrap_or(("https", base));
    let base_authority = base_rest.split('/').next().unwrap_or(base_rest);
    let origin = format!("{base_scheme}://{base_authority}");
    if let Some(path) = location.strip_prefix("//") {
        return resolve_location(base, current, &format!("{base_scheme}://{path}"));
    }
    if location.starts_with('/') {
        return Ok(format!("{origin}{location}"));
    }
    let Some((scheme, rest)) = location.split_once("://") else {
        // Relative to the current URL's directory.
        let current = current.split('?').next().unwrap_or(current);
        let dir = current.rsplit_once('/').map_or(current, |(dir, _)| dir);
        return Ok(format!("{dir}/{location}"));
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "the upload Location `{}` is not an http(s) URL; refusing to follow it",
            location.split('?').next().unwrap_or(location)
        ));
    }
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let after = &rest[authority.len()..];
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if authority.eq_ignore_ascii_case(base_authority) {
        // The registry's own host: keep the scheme liftoff reached it with.
        return Ok(format!("{base_scheme}://{authority}{after}"));
    }
    let shown = format!("{scheme}://{authority}");
    if base_scheme == "https" && scheme == "http" {
        return Err(format!(
            "the registry sent the upload to {shown}, which would downgrade HTTPS to plain HTTP; refusing"
        ));
    }
    if is_private(authority) && !is_private(base_authority) {
        return Err(format!(
            "the registry sent the upload to {shown}, a private or loopback address, while the registry itself is public; refusing to follow it (a public registry must not redirect into private networks)"
        ));
    }
    Ok(format!("{scheme}://{authority}{after}"))
}

/// How long a token that lives `lifetime` is used before a new one is fetched.
fn usable_for(lifetime: Duration) -> Duration {
    lifetime.saturating_sub(TOKEN_MARGIN.min(lifetime / 4))
}

/// `repository:a:pull,push` and `repository:a:push,pull` are the same scope.
fn same_scope(a: &str, b: &str) -> bool {
    let split = |scope: &str| {
        let (resource, actions) = scope.rsplit_once(':').unwrap_or((scope, ""));
        let mut actions: Vec<&str> = actions.split(',').map(str::trim).collect();
        actions.sort_unstable();
        (resource.to_string(), actions.join(","))
    };
    split(a) == split(b)
}

/// Connection failures that may go away: refused or reset connections, timeouts, responses cut
/// short. TLS verification failures and unknown hosts will not.
fn is_retryable(error: &ureq::Error) -> bool {
    use std::io::ErrorKind;
    match error {
        ureq::Error::Io(e) => matches!(
            e.kind(),
            ErrorKind::ConnectionRefused
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::NotConnected
                | ErrorKind::BrokenPipe
                | ErrorKind::UnexpectedEof
                | ErrorKind::TimedOut
                | ErrorKind::Interrupted
                | ErrorKind::WouldBlock
        ),
        ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed | ureq::Error::Protocol(_) => true,
        _ => false,
    }
}

/// Whether `url` is on the same scheme, host and port as `base` (credentials go only there).
fn same_origin(url: &str, base: &str) -> bool {
    let origin = |u: &str| {
        let (scheme, rest) = u.split_once("://").unwrap_or(("", u));
        let authority = rest.split(['/', '?']).next().unwrap_or(rest);
        (scheme.to_ascii_lowercase(), authority.to_ascii_lowercase())
    };
    origin(url) == origin(base)
}

/// Counts what goes out.
struct Counting<'a, R> {
    inner: R,
    sent: u64,
    on_sent: &'a (dyn Fn(u64) + Sync),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent += n as u64;
        (self.on_sent)(self.sent);
        Ok(n)
    }
}

/// A URL for the debug log: query values that may be secrets (signatures, tokens, credentials,
/// upload state) are replaced by `REDACTED`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((path, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let sensitive = [
        "sig",
        "token",
        "key",
        "secret",
        "password",
        "credential",
        "state",
        "auth",
        "code",
        "session",
    ];
    let redacted: Vec<String> = query
        .split('&')
        .map(|pair| {
            let (name, _) = pair.split_once('=').unwrap_or((pair, ""));
            let lower = name.to_ascii_lowercase();
            if sensitive.iter().any(|s| lower.contains(s)) {
                format!("{name}=REDACTED")
            } else {
                pair.to_string()
            }
        })
        .collect();
    format!("{path}?{}", redacted.join("&"))
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "GET",
    }
}

fn basic(username: &str, password: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

pub(crate) fn header(response: &Response<Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn challenge_of(response: &Response<Body>) -> Option<Challenge> {
    let challenges: Vec<Challenge> = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(parse_challenge)
        .collect();
    challenges
        .iter()
        .find(|c| matches!(c, Challenge::Bearer { .. }))
        .or_else(|| challenges.first())
        .cloned()
}

/// `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="…"`.
fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let params = parse_params(rest);
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
    };
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        })
    } else {
        None
    }
}

fn parse_params(mut rest: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',', '\t']);
        let Some(eq) = rest.find('=') else {
            return params;
        };
        let key = rest[..eq].trim().to_string();
        rest = &rest[eq + 1..];
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            out.push(next);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => out.push(c),
                }
            }
            value = out;
            rest = &quoted[end.min(quoted.len())..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        params.push((key, value));
    }
}

/// The registry's error text: `CODE: message` from `{"errors":[…]}`, else a short excerpt.
pub(crate) fn error_message(response: &mut Response<Body>) -> String {
    let Ok(body) = response
        .body_mut()
        .with_config()
        .limit(ERROR_BODY_LIMIT)
        .lossy_utf8(true)
        .read_to_string()
    else {
        return String::new();
    };
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(&body)
        && let Some(errors) = json.get("errors").and_then(serde_json::Value::as_array)
    {
        let parts: Vec<String> = errors
            .iter()
            .map(|e| {
                let code = e
                    .get("code")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("");
                let message = e
                    .get("message")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("");
                match (code.is_empty(), message.is_empty()) {
                    (false, false) => format!("{code}: {message}"),
                    (false, true) => code.to_string(),
                    _ => message.to_string(),
                }
            })
            .filter(|s| !s.is_empty())
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    let trimmed = body.trim();
    let mut excerpt: String = trimmed.chars().take(200).collect();
    if excerpt.len() < trimmed.len() {
        excerpt.push('…');
    }
    excerpt
}

/// `application/x-www-form-urlencoded` / query encoding.
pub(crate) fn encode_query(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/node:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".to_string(),
                service: Some("registry.docker.io".to_string()),
                scope: Some("repository:library/node:pull,push".to_string()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="basic-realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(
            parse_challenge(r#"bearer realm=http://t/token, error="insufficient_scope""#),
            Some(Challenge::Bearer {
                realm: "http://t/token".to_string(),
                service: None,
                scope: None
            })
        );
    }

    #[test]
    fn encodes_queries() {
        assert_eq!(
            encode_query(&[("scope", "repository:a/b:pull,push"), ("service", "x y")]),
            "scope=repository%3Aa%2Fb%3Apull%2Cpush&service=x%20y"
        );
    }

    #[test]
    fn upload_locations() {
        let public = "https://registry.example";
        let current = "https://registry.example/v2/a/blobs/uploads/";
        assert_eq!(
            resolve_location(public, current, "/v2/a/blobs/uploads/u1?_state=x").unwrap(),
            "https://registry.example/v2/a/blobs/uploads/u1?_state=x"
        );
        assert_eq!(
            resolve_location(public, current, "u2").unwrap(),
            "https://registry.example/v2/a/blobs/uploads/u2"
        );
        // Its own host over http: upgraded.
        assert_eq!(
            resolve_location(public, current, "http://REGISTRY.example/v2/a/x?y=1").unwrap(),
            "https://REGISTRY.example/v2/a/x?y=1"
        );
        // Another public host (a storage backend) is fine.
        assert_eq!(
            resolve_location(public, current, "https://storage.example/up?sig=1").unwrap(),
            "https://storage.example/up?sig=1"
        );
        for refused in [
            "https://127.0.0.1:5000/v2/a",
            "https://10.0.0.8/v2/a",
            "https://169.254.169.254/latest",
            "https://[::1]/x",
            "https://localhost/x",
            "http://storage.example/up",
            "file:///etc/passwd",
        ] {
            let err = resolve_location(public, current, refused).expect_err(refused);
            assert!(err.contains("refus"), "{err}");
        }
        // A private registry may point anywhere (another local port, say).
        let local = "http://127.0.0.1:5000";
        assert_eq!(
            resolve_location(
                local,
                "http://127.0.0.1:5000/v2/",
                "http://127.0.0.1:6000/u"
            )
            .unwrap(),
            "http://127.0.0.1:6000/u"
        );
    }

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        assert_eq!(usable_for(Duration::from_mins(5)), Duration::from_secs(290));
        assert_eq!(usable_for(Duration::from_mins(1)), Duration::from_secs(50));
        // Short-lived tokens are still reused for most of their life.
        assert_eq!(usable_for(Duration::from_secs(4)), Duration::from_secs(3));
        assert_eq!(
            usable_for(Duration::from_secs(1)),
            Duration::from_millis(750)
        );
    }

    #[test]
    fn equivalent_scopes() {
        assert!(same_scope(
            "repository:a/b:pull,push",
            "repository:a/b:push,pull"
        ));
        assert!(!same_scope(
            "repository:a/b:pull",
            "repository:a/b:pull,push"
        ));
        assert!(!same_scope("repository:a/b:pull", "repository:a/c:pull"));
    }

    #[test]
    fn origins_and_log_redaction() {
        assert!(same_origin("https://r.example/v2/x?y", "https://R.example"));
        assert!(!same_origin(
            "https://r.example:444/v2/x",
            "https://r.example"
        ));
        assert!(!same_origin("http://r.example/v2/x", "https://r.example"));
        assert_eq!(
            redact_url("https://s.example/b?X-Amz-Signature=abc&digest=sha256:1&_state=zz"),
            "https://s.example/b?X-Amz-Signature=REDACTED&digest=sha256:1&_state=REDACTED"
        );
        assert_eq!(redact_url("https://r.example/v2/"), "https://r.example/v2/");
    }

    #[test]
    fn proxies_from_the_environment() {
        let uri = |u: &str| u.parse::<http::Uri>().unwrap();
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_string())
            }
        };
        assert!(proxy_from(&env(&[])).is_none());
        let proxy = proxy_from(&env(&[
            ("https_proxy", "http://user:p%40ss@proxy.example:3128"),
            (
                "NO_PROXY",
                "internal.example, .corp.example,registry.local:5000,10.0.0.0/8",
            ),
        ]))
        .unwrap();
        assert_eq!((proxy.host(), proxy.port()), ("proxy.example", 3128));
        assert_eq!(proxy.password(), Some("p@ss"));
        for direct in [
            "http://127.0.0.1:5000/v2/",
            "http://localhost:5000/v2/",
            "http://[::1]:5000/v2/",
            "https://internal.example/v2/",
            "https://sub.internal.example/v2/",
            "https://a.corp.example/v2/",
            "http://registry.local:5000/v2/",
        ] {
            assert!(proxy.is_no_proxy(&uri(direct)), "{direct}");
        }
        for proxied in ["https://ghcr.example/v2/", "https://notinternal.example/"] {
            assert!(!proxy.is_no_proxy(&uri(proxied)), "{proxied}");
        }
    }
}
