//! A small registry client (distribution API v2) on `ureq`, with the Docker auth flows:
//! anonymous or credentialed bearer tokens (`WWW-Authenticate: Bearer realm=…`), `OAuth2`
//! refresh tokens (`identitytoken`) and HTTP Basic.
//!
//! [`Endpoint::send`] does the auth dance for any request, so uploads (`push_blob`,
//! `push_manifest_raw`, with scope `pull,push`) can be added next to the download methods.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use ureq::http::{self, Method, Response};
use ureq::{Agent, Body};

use crate::config::{CredentialLookup, Credentials, RegistryConfig};
use crate::manifest;
use crate::{RegistryError, reference::DOCKER_HUB};

const USER_AGENT: &str = concat!("liftoff/", env!("CARGO_PKG_VERSION"));
/// Registries cap manifests at 4 MiB; leave room for large indexes.
pub(crate) const MANIFEST_LIMIT: u64 = 8 * 1024 * 1024;
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// Builds the HTTP agent: Mozilla roots plus `extra_ca_certs`, redirects that keep the
/// `Authorization` header only on the same host, and no status-as-error.
pub(crate) fn agent(config: &RegistryConfig) -> Result<Agent, RegistryError> {
    let mut tls = ureq::tls::TlsConfig::builder();
    if !config.extra_ca_certs.is_empty() {
        let mut roots: Vec<ureq::tls::Certificate<'static>> =
            webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .map(|der| ureq::tls::Certificate::from_der(der.as_ref()))
                .collect();
        for path in &config.extra_ca_certs {
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
    Ok(Agent::config_builder()
        .http_status_as_error(false)
        .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
        .user_agent(USER_AGENT)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_mins(2)))
        .timeout_per_read(Some(Duration::from_mins(2)))
        .tls_config(tls.build())
        .build()
        .into())
}

/// The base URLs to try for `registry`, in order.
pub(crate) fn registry_bases(registry: &str, config: &RegistryConfig) -> Vec<String> {
    let host = if registry == DOCKER_HUB {
        "registry-1.docker.io"
    } else {
        registry
    };
    if config.is_insecure(registry) {
        vec![format!("https://{host}"), format!("http://{host}")]
    } else {
        vec![format!("https://{host}")]
    }
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

/// One registry (or mirror) at one base URL, with its auth state.
pub(crate) struct Endpoint {
    agent: Agent,
    /// How errors and events name it: `ghcr.io`, `mirror http://127.0.0.1:5000`.
    pub(crate) name: String,
    /// The name credentials are stored under (`docker login <login>`).
    login: String,
    base: String,
    lookup: CredentialLookup,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<String, Arc<str>>>,
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
        agent: &Agent,
        name: &str,
        login: &str,
        bases: &[String],
        lookup: &CredentialLookup,
    ) -> Result<Self, RegistryError> {
        // (url, what went wrong)
        let mut failures: Vec<(String, String)> = Vec::new();
        for base in bases {
            let mut endpoint = Self {
                agent: agent.clone(),
                name: name.to_string(),
                login: login.to_string(),
                base: base.clone(),
                lookup: lookup.clone(),
                challenge: Mutex::new(None),
                tokens: Mutex::new(HashMap::new()),
            };
            let url = format!("{base}/v2/");
            match endpoint.raw(Method::GET, &url, &[], None) {
                Err(RegistryError::Transport { message, .. }) => failures.push((url, message)),
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
                    ));
                }
            }
        }
        let (url, mut message) = failures.pop().expect("at least one base URL");
        for (other_url, other) in failures {
            let _ = write!(message, "; also tried {other_url}: {other}");
        }
        Err(RegistryError::Transport {
            registry: name.to_string(),
            method: "GET",
            url,
            message,
        })
    }

    /// The manifest `reference` (tag or digest) of `repository`.
    pub(crate) fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest, RegistryError> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let mut response = self.send(
            Method::GET,
            &url,
            repository,
            &[("Accept", manifest::ACCEPT)],
        )?;
        self.check_manifest_status(&mut response, "GET", &url, repository, reference)?;
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
        let mut response = self.send(
            Method::HEAD,
            &url,
            repository,
            &[("Accept", manifest::ACCEPT)],
        )?;
        if matches!(response.status().as_u16(), 403 | 404) {
            self.check_manifest_status(&mut response, "HEAD", &url, repository, reference)?;
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
        let mut response = self.send(Method::GET, &url, repository, &[])?;
        match response.status().as_u16() {
            200..=299 => Ok(response),
            403 => Err(self.unauthorized(repository, 403, &mut response)),
            _ => Err(self.status_error("GET", &url, &mut response)),
        }
    }

    fn check_manifest_status(
        &self,
        response: &mut Response<Body>,
        method: &'static str,
        url: &str,
        repository: &str,
        reference: &str,
    ) -> Result<(), RegistryError> {
        match response.status().as_u16() {
            200..=299 => Ok(()),
            403 => Err(self.unauthorized(repository, 403, response)),
            404 => Err(RegistryError::ManifestNotFound {
                registry: self.name.clone(),
                repository: repository.to_string(),
                reference: reference.to_string(),
                message: error_message(response),
            }),
            _ => Err(self.status_error(method, url, response)),
        }
    }

    /// Sends a request with the right `Authorization`, fetching or refreshing a token (or
    /// switching to Basic) once if the registry answers 401.
    fn send(
        &self,
        method: Method,
        url: &str,
        repository: &str,
        headers: &[(&str, &str)],
    ) -> Result<Response<Body>, RegistryError> {
        let scope = format!("repository:{repository}:pull");
        let authorization = self.authorization(&scope, repository, false)?;
        let mut response =
            self.raw_authorized(method.clone(), url, headers, authorization.as_deref())?;
        if response.status().as_u16() != 401 {
            return Ok(response);
        }
        if let Some(challenge) = challenge_of(&response) {
            *self
                .challenge
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(challenge);
        }
        let retry = self.authorization(&scope, repository, true)?;
        if retry.is_none() || retry == authorization {
            return Err(self.unauthorized(repository, 401, &mut response));
        }
        let mut response = self.raw_authorized(method, url, headers, retry.as_deref())?;
        if response.status().as_u16() == 401 {
            return Err(self.unauthorized(repository, 401, &mut response));
        }
        Ok(response)
    }

    /// The `Authorization` value for the current challenge, if any.
    fn authorization(
        &self,
        scope: &str,
        repository: &str,
        refresh: bool,
    ) -> Result<Option<String>, RegistryError> {
        let challenge = self
            .challenge
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match (challenge, &self.lookup.credentials) {
            (Some(Challenge::Basic), Credentials::Basic { username, password }) => {
                Ok(Some(basic(username, password)))
            }
            (None | Some(Challenge::Basic), _) => Ok(None),
            (Some(Challenge::Bearer { .. }), Credentials::RegistryToken(token)) => {
                Ok(Some(format!("Bearer {token}")))
            }
            (
                Some(Challenge::Bearer {
                    realm,
                    service,
                    scope: challenge_scope,
                }),
                _,
            ) => {
                if !refresh
                    && let Some(token) = self
                        .tokens
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get(scope)
                {
                    return Ok(Some(format!("Bearer {token}")));
                }
                let mut scopes = vec![scope.to_string()];
                if let Some(extra) = challenge_scope
                    && extra != scope
                {
                    scopes.push(extra);
                }
                let token: Arc<str> = self
                    .fetch_token(&realm, service.as_deref(), &scopes, repository)?
                    .into();
                self.tokens
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(scope.to_string(), token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        repository: &str,
    ) -> Result<String, RegistryError> {
        let shown = realm.split('?').next().unwrap_or(realm).to_string();
        let mut params: Vec<(&str, &str)> = Vec::new();
        if let Some(service) = service {
            params.push(("service", service));
        }
        for scope in scopes {
            params.push(("scope", scope));
        }
        let mut response = match &self.lookup.credentials {
            Credentials::IdentityToken(refresh_token) => {
                params.extend([
                    ("grant_type", "refresh_token"),
                    ("client_id", "liftoff"),
                    ("refresh_token", refresh_token),
                ]);
                let form = encode_query(&params);
                self.raw(
                    Method::POST,
                    realm,
                    &[("Content-Type", "application/x-www-form-urlencoded")],
                    Some(form.as_bytes()),
                )?
            }
            credentials => {
                let separator = if realm.contains('?') { '&' } else { '?' };
                let url = format!("{realm}{separator}{}", encode_query(&params));
                let auth = match credentials {
                    Credentials::Basic { username, password } => Some(basic(username, password)),
                    _ => None,
                };
                let headers: Vec<(&str, &str)> = auth
                    .as_deref()
                    .map(|a| ("Authorization", a))
                    .into_iter()
                    .collect();
                self.raw(Method::GET, &url, &headers, None)?
            }
        };
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Err(self.unauthorized(repository, status, &mut response));
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
            })?;
        ["token", "access_token"]
            .iter()
            .find_map(|key| body.get(key).and_then(serde_json::Value::as_str))
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .ok_or_else(|| RegistryError::Transport {
                registry: self.name.clone(),
                method: "GET",
                url: shown,
                message: "the token service answered without a `token`".to_string(),
            })
    }

    /// One HTTP exchange, no auth logic. Transport failures name the endpoint and the URL
    /// (without its query, which may carry token-request parameters).
    fn raw(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response<Body>, RegistryError> {
        let method_name = method_name(&method);
        let mut builder = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        match body {
            Some(body) => builder
                .body(body.to_vec())
                .map_err(|e| self.transport_message(method_name, url, e.to_string()))
                .and_then(|req| {
                    self.agent
                        .run(req)
                        .map_err(|e| self.transport(method_name, url, &e))
                }),
            None => builder
                .body(())
                .map_err(|e| self.transport_message(method_name, url, e.to_string()))
                .and_then(|req| {
                    self.agent
                        .run(req)
                        .map_err(|e| self.transport(method_name, url, &e))
                }),
        }
    }

    fn raw_authorized(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        authorization: Option<&str>,
    ) -> Result<Response<Body>, RegistryError> {
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(authorization) = authorization {
            all.push(("Authorization", authorization));
        }
        self.raw(method, url, &all, None)
    }

    fn transport(&self, method: &'static str, url: &str, error: &ureq::Error) -> RegistryError {
        self.transport_message(method, url, error.to_string())
    }

    fn transport_message(&self, method: &'static str, url: &str, message: String) -> RegistryError {
        RegistryError::Transport {
            registry: self.name.clone(),
            method,
            url: url.split('?').next().unwrap_or(url).to_string(),
            message,
        }
    }

    fn status_error(
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

    fn unauthorized(
        &self,
        repository: &str,
        status: u16,
        response: &mut Response<Body>,
    ) -> RegistryError {
        RegistryError::Unauthorized {
            registry: self.name.clone(),
            repository: repository.to_string(),
            status,
            message: error_message(response),
            hint: self.login_hint(),
        }
    }

    /// How to get working credentials, given what the Docker config held.
    fn login_hint(&self) -> String {
        let login = &self.login;
        let config = match (&self.lookup.config_path, self.lookup.config_exists) {
            (Some(path), true) => path.display().to_string(),
            (Some(path), false) => format!("{} (which does not exist)", path.display()),
            (None, _) => "no Docker config (neither DOCKER_CONFIG nor HOME is set)".to_string(),
        };
        match &self.lookup.credentials {
            Credentials::None => {
                let mut hint = format!(
                    "No credentials for {login} were found in {config}. If the repository exists and is private, run `docker login {login}` (liftoff reads the `auths` entries of the Docker config; set DOCKER_CONFIG to use another directory)"
                );
                if let Some(store) = &self.lookup.creds_store {
                    let _ = write!(
                        hint,
                        "; note that this config keeps logins in the credential helper `docker-credential-{store}`, which liftoff cannot run yet, so put an `auths` entry with `auth` (base64 of `user:password`) in a separate DOCKER_CONFIG"
                    );
                }
                hint
            }
            Credentials::Helper(helper) => format!(
                "{config} keeps the credentials for {login} in the credential helper `docker-credential-{helper}`, which liftoff cannot run yet; put an `auths` entry for {login} with `auth` (base64 of `user:password`) in a config.json and point DOCKER_CONFIG at its directory"
            ),
            Credentials::Basic { .. }
            | Credentials::IdentityToken(_)
            | Credentials::RegistryToken(_) => format!(
                "The credentials for {login} in {config} were rejected or do not grant pull access to this repository; check the repository name, then run `docker login {login}` again"
            ),
        }
    }
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

fn header(response: &Response<Body>, name: &str) -> Option<String> {
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
fn error_message(response: &mut Response<Body>) -> String {
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
fn encode_query(params: &[(&str, &str)]) -> String {
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
}
