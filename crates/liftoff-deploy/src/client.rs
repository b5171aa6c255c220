//! The platform API client: blocking `ureq`, upstream's retry policy, upstream's error strings.

use crate::error::ApiError;
use crate::retry::{RetryHeaders, RetryPolicy, is_retryable_status};
use crate::secret::Secret;
use crate::sse::SseParser;
use crate::types::{
    AuthorizationCode, CreateBackgroundWorkerRequest, CreateBackgroundWorkerResponse, Deployment,
    DeploymentErrorData, DeviceToken, EnvVars, FailDeploymentRequest, FinalizeDeploymentRequest,
    IdResponse, ImportEnvVarsRequest, InitializeDeploymentRequest, InitializeDeploymentResponse,
    ProjectEnv, PromoteResponse, SuccessResponse, TokenRequest, TokenResponse, WhoAmI,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Write as _;
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

const USER_AGENT: &str = concat!("liftoff/", env!("CARGO_PKG_VERSION"));
/// JSON answers larger than this are refused (the biggest real one, a deployment with its
/// worker's tasks, is a few hundred KiB).
const MAX_JSON_BODY: u64 = 32 * 1024 * 1024;
/// How much of an error body goes into an error message.
const MAX_ERROR_TEXT: usize = 500;

/// Settings of an [`ApiClient`].
#[derive(Debug, Clone)]
pub struct ApiClientOptions {
    pub retry: RetryPolicy,
    /// Extra PEM CA certificates trusted on top of the Mozilla roots (self-hosted servers).
    pub ca_files: Vec<PathBuf>,
    /// Upper bound for one JSON request (connect, send, answer).
    pub request_timeout: Duration,
    /// The longest silence accepted on the finalize event stream. The server pings every 10 s.
    pub stream_idle_timeout: Duration,
}

impl Default for ApiClientOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            ca_files: Vec::new(),
            request_timeout: Duration::from_mins(2),
            stream_idle_timeout: Duration::from_mins(1),
        }
    }
}

/// What a call is, for the error hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    WhoAmI,
    ProjectEnv,
    EnvVars,
    ImportEnvVars,
    Initialize,
    BackgroundWorker,
    GetDeployment,
    Fail,
    Finalize,
    Promote,
    AuthorizationCode,
    Token,
}

/// A client for one API base URL and one token: a personal access token for
/// [`ApiClient::whoami`] and [`ApiClient::project_env`], the environment's secret key (from
/// [`ProjectEnv`], against its `apiUrl`) for the rest, none for the device login.
pub struct ApiClient {
    base_url: String,
    token: Option<Secret>,
    agent: ureq::Agent,
    options: ApiClientOptions,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base_url", &self.base_url)
            .field("token", &self.token.as_ref().map(Secret::kind))
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client for `base_url` (one trailing `/` is dropped, as upstream does).
    pub fn new(
        base_url: &str,
        token: Option<Secret>,
        options: ApiClientOptions,
    ) -> Result<Self, ApiError> {
        let base_url = normalize_base_url(base_url)?;
        let agent = build_agent(&base_url, &options)?;
        Ok(Self {
            base_url,
            token,
            agent,
            options,
        })
    }

    /// A client for the environment returned by [`ApiClient::project_env`]: its `apiUrl` and
    /// secret key, with this client's options. Pass `api_url_override` to ignore the server's
    /// `apiUrl` (a self-hosted `APP_ORIGIN` the CLI cannot reach).
    pub fn for_environment(
        &self,
        env: &ProjectEnv,
        api_url_override: Option<&str>,
    ) -> Result<Self, ApiError> {
        Self::new(
            api_url_override.unwrap_or(&env.api_url),
            Some(env.api_key.clone()),
            self.options.clone(),
        )
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    // --- PAT calls -------------------------------------------------------------------------

    /// `GET /api/v2/whoami`.
    pub fn whoami(&self) -> Result<WhoAmI, ApiError> {
        self.json(Call::WhoAmI, "GET", "/api/v2/whoami", None::<&()>)
    }

    /// `GET /api/v1/projects/{ref}/{env}`: the environment's secret key and `apiUrl`. `env` is
    /// `prod`, `staging` or `dev`.
    pub fn project_env(&self, project_ref: &str, env: &str) -> Result<ProjectEnv, ApiError> {
        let path = format!("/api/v1/projects/{}/{}", seg(project_ref), seg(env));
        self.json(Call::ProjectEnv, "GET", &path, None::<&()>)
    }

    // --- Device login (no token) -----------------------------------------------------------

    /// `POST /api/v1/authorization-code`.
    pub fn create_authorization_code(&self) -> Result<AuthorizationCode, ApiError> {
        self.json(
            Call::AuthorizationCode,
            "POST",
            "/api/v1/authorization-code",
            None::<&()>,
        )
    }

    /// One `POST /api/v1/token`: `None` while the user has not approved yet.
    pub fn poll_token_once(
        &self,
        authorization_code: &str,
    ) -> Result<Option<DeviceToken>, ApiError> {
        let body = TokenRequest {
            authorization_code: authorization_code.to_string(),
        };
        let r: TokenResponse = self.json(Call::Token, "POST", "/api/v1/token", Some(&body))?;
        Ok(r.token)
    }

    /// Polls `POST /api/v1/token` every `interval` until the user approves, at most
    /// `max_polls` times (upstream: 1 s × 60). `on_poll` runs before each wait. An error
    /// answer stops polling.
    pub fn wait_for_token(
        &self,
        authorization_code: &str,
        interval: Duration,
        max_polls: u32,
        mut on_poll: impl FnMut(u32),
    ) -> Result<DeviceToken, ApiError> {
        for poll in 1..=max_polls.max(1) {
            if let Some(token) = self.poll_token_once(authorization_code)? {
                return Ok(token);
            }
            on_poll(poll);
            if poll < max_polls {
                std::thread::sleep(interval);
            }
        }
        Err(ApiError::LoginTimedOut {
            seconds: interval.as_secs().saturating_mul(u64::from(max_polls)),
        })
    }

    // --- Environment-key calls -------------------------------------------------------------

    /// `GET /api/v1/projects/{ref}/envvars`.
    pub fn env_vars(&self, project_ref: &str) -> Result<EnvVars, ApiError> {
        let path = format!("/api/v1/projects/{}/envvars", seg(project_ref));
        self.json(Call::EnvVars, "GET", &path, None::<&()>)
    }

    /// `POST /api/v1/projects/{ref}/envvars/{env}/import` with `{variables, override}`.
    pub fn import_env_vars(
        &self,
        project_ref: &str,
        env: &str,
        body: &ImportEnvVarsRequest,
    ) -> Result<(), ApiError> {
        let path = format!(
            "/api/v1/projects/{}/envvars/{}/import",
            seg(project_ref),
            seg(env)
        );
        let _: SuccessResponse = self.json(Call::ImportEnvVars, "POST", &path, Some(body))?;
        Ok(())
    }

    /// `POST /api/v1/deployments`. Retried like every call, so a retry after a lost answer can
    /// create a second deployment (as upstream); the orphan times out server-side.
    pub fn initialize_deployment(
        &self,
        body: &InitializeDeploymentRequest,
    ) -> Result<InitializeDeploymentResponse, ApiError> {
        self.json(Call::Initialize, "POST", "/api/v1/deployments", Some(body))
    }

    /// `POST /api/v1/deployments/{id}/background-workers`.
    pub fn create_background_worker(
        &self,
        deployment_id: &str,
        body: &CreateBackgroundWorkerRequest,
    ) -> Result<CreateBackgroundWorkerResponse, ApiError> {
        let path = format!(
            "/api/v1/deployments/{}/background-workers",
            seg(deployment_id)
        );
        self.json(Call::BackgroundWorker, "POST", &path, Some(body))
    }

    /// `GET /api/v1/deployments/{id}`.
    pub fn get_deployment(&self, deployment_id: &str) -> Result<Deployment, ApiError> {
        let path = format!("/api/v1/deployments/{}", seg(deployment_id));
        self.json(Call::GetDeployment, "GET", &path, None::<&()>)
    }

    /// `POST /api/v1/deployments/{id}/fail` with `{error:{name,message,stack?,stderr?}}`.
    pub fn fail_deployment(
        &self,
        deployment_id: &str,
        error: &DeploymentErrorData,
    ) -> Result<(), ApiError> {
        let path = format!("/api/v1/deployments/{}/fail", seg(deployment_id));
        let body = FailDeploymentRequest {
            error: error.clone(),
        };
        let _: IdResponse = self.json(Call::Fail, "POST", &path, Some(&body))?;
        Ok(())
    }

    /// `POST /api/v1/deployments/{version}/promote` (no body).
    pub fn promote(&self, version: &str) -> Result<PromoteResponse, ApiError> {
        let path = format!("/api/v1/deployments/{}/promote", seg(version));
        self.json(Call::Promote, "POST", &path, None::<&()>)
    }

    /// `POST /api/v3/deployments/{id}/finalize`, reading the event stream: `log` messages go to
    /// `on_log`, `ping` and unknown events are ignored, `complete` returns its `{id}`, `error`
    /// returns [`ApiError::FinalizeFailed`]. A stream that ends first, or stays silent longer
    /// than [`ApiClientOptions::stream_idle_timeout`], is an error. The request is retried only
    /// until the stream starts (finalize is idempotent once `DEPLOYED`).
    pub fn finalize_deployment(
        &self,
        deployment_id: &str,
        body: &FinalizeDeploymentRequest,
        mut on_log: impl FnMut(&str),
    ) -> Result<IdResponse, ApiError> {
        let path = format!("/api/v3/deployments/{}/finalize", seg(deployment_id));
        let bytes = to_json(body)?;
        let resp = self.send(Call::Finalize, "POST", &path, Some(&bytes), true)?;
        let is_json = header(&resp, "content-type")
            .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json"));
        let mut reader = resp.into_body().into_reader();
        if is_json {
            // A server without the v3 stream answering `{id}` synchronously (v1/v2 finalize).
            let mut text = String::new();
            read_limited(&mut reader, &mut text).map_err(|e| invalid("POST", &path, &e))?;
            return serde_json::from_str(&text).map_err(|e| invalid("POST", &path, &e));
        }
        let mut parser = SseParser::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => {
                    return Err(ApiError::FinalizeStreamTimeout {
                        deployment_id: deployment_id.to_string(),
                        seconds: self.options.stream_idle_timeout.as_secs(),
                        cause: e.to_string(),
                    });
                }
                Err(e) => {
                    return Err(ApiError::FinalizeStreamEnded {
                        deployment_id: deployment_id.to_string(),
                        cause: Some(e.to_string()),
                    });
                }
            };
            if n == 0 {
                return Err(ApiError::FinalizeStreamEnded {
                    deployment_id: deployment_id.to_string(),
                    cause: None,
                });
            }
            for event in parser.push(&buf[..n]) {
                match event.event.as_str() {
                    "log" => {
                        let message = serde_json::from_str::<serde_json::Value>(&event.data)
                            .ok()
                            .and_then(|v| {
                                v.get("message").and_then(|m| m.as_str()).map(String::from)
                            })
                            .unwrap_or(event.data);
                        on_log(&message);
                    }
                    "complete" => {
                        return Ok(serde_json::from_str(&event.data).unwrap_or(IdResponse {
                            id: deployment_id.to_string(),
                        }));
                    }
                    "error" => {
                        let message = serde_json::from_str::<serde_json::Value>(&event.data)
                            .ok()
                            .and_then(|v| v.get("error").map(error_field_message))
                            .unwrap_or(event.data);
                        return Err(ApiError::FinalizeFailed { message });
                    }
                    _ => {}
                }
            }
        }
    }

    // --- Plumbing ----------------------------------------------------------------------------

    fn json<B: Serialize, R: DeserializeOwned>(
        &self,
        call: Call,
        method: &'static str,
        path: &str,
        body: Option<&B>,
    ) -> Result<R, ApiError> {
        let bytes = body.map(to_json).transpose()?;
        let resp = self.send(call, method, path, bytes.as_deref(), false)?;
        let mut text = String::new();
        read_limited(&mut resp.into_body().into_reader(), &mut text)
            .map_err(|e| invalid(method, path, &e))?;
        serde_json::from_str(&text).map_err(|e| invalid(method, path, &e))
    }

    /// Sends with retries; returns the first 2xx answer.
    fn send(
        &self,
        call: Call,
        method: &'static str,
        path: &str,
        body: Option<&[u8]>,
        stream: bool,
    ) -> Result<ureq::http::Response<ureq::Body>, ApiError> {
        let needs_token = !matches!(call, Call::AuthorizationCode | Call::Token);
        if needs_token && self.token.is_none() {
            return Err(ApiError::MissingToken {
                method,
                path: path.to_string(),
            });
        }
        let url = format!("{}{}", self.base_url, path);
        let policy = self.options.retry;
        let max_attempts = policy.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.send_once(method, &url, body, stream, needs_token);
            let (retry, headers, error) = match result {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let retry =
                        is_retryable_status(status, header(&resp, "x-should-retry").as_deref());
                    let headers = RetryHeaders {
                        retry_after: header(&resp, "retry-after"),
                        retry_after_ms: header(&resp, "retry-after-ms"),
                        ratelimit_reset: header(&resp, "x-ratelimit-reset"),
                    };
                    let mut text = String::new();
                    // A body that cannot be read leaves an empty message: the status remains.
                    let _ = read_limited(&mut resp.body_mut().as_reader(), &mut text);
                    let error = ApiError::Status {
                        status,
                        message: error_message(&text, status),
                        method,
                        path: path.to_string(),
                        hint: hint(call, status, self.token.as_ref()),
                    };
                    (retry, headers, error)
                }
                Err(e) => {
                    let error = ApiError::Connection {
                        url: url.clone(),
                        cause: e.to_string(),
                        attempts: attempt,
                    };
                    (is_transient(&e), RetryHeaders::default(), error)
                }
            };
            if !retry || attempt >= max_attempts {
                return Err(error);
            }
            std::thread::sleep(policy.delay(attempt, &headers, SystemTime::now()));
        }
    }

    fn send_once(
        &self,
        method: &'static str,
        url: &str,
        body: Option<&[u8]>,
        stream: bool,
        auth: bool,
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let accept = if stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let bearer = match (&self.token, auth) {
            (Some(t), true) => Some(format!("Bearer {}", t.expose())),
            _ => None,
        };
        if method == "GET" {
            let mut req = self.agent.get(url).header("Accept", accept);
            if let Some(b) = &bearer {
                req = req.header("Authorization", b);
            }
            req.config()
                .timeout_global(Some(self.options.request_timeout))
                .build()
                .call()
        } else {
            let mut req = self
                .agent
                .post(url)
                .header("Accept", accept)
                .header("Content-Type", "application/json");
            if let Some(b) = &bearer {
                req = req.header("Authorization", b);
            }
            let req = if stream {
                req.config()
                    .timeout_recv_response(Some(self.options.request_timeout))
                    .timeout_per_read(Some(self.options.stream_idle_timeout))
                    .build()
            } else {
                req.config()
                    .timeout_global(Some(self.options.request_timeout))
                    .build()
            };
            match body {
                Some(b) => req.send(b),
                None => req.send_empty(),
            }
        }
    }
}

fn normalize_base_url(url: &str) -> Result<String, ApiError> {
    let trimmed = url.trim();
    let u = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let bad = |reason: &str| ApiError::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .ok_or_else(|| bad("it must start with http:// or https://"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("it has no host"));
    }
    if u.contains(['?', '#', ' ']) {
        return Err(bad("it must not contain a query, fragment or spaces"));
    }
    u.parse::<ureq::http::Uri>()
        .map_err(|e| bad(&e.to_string()))?;
    Ok(u.to_string())
}

fn host_of(base_url: &str) -> &str {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    host.split(':').next().unwrap_or(host)
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn build_agent(base_url: &str, options: &ApiClientOptions) -> Result<ureq::Agent, ApiError> {
    let mut tls = ureq::tls::TlsConfig::builder();
    if !options.ca_files.is_empty() {
        let mut roots: Vec<ureq::tls::Certificate<'static>> =
            webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .map(|der| ureq::tls::Certificate::from_der(der.as_ref()))
                .collect();
        for path in &options.ca_files {
            let pem = std::fs::read(path).map_err(|e| ApiError::CaCertificate {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let before = roots.len();
            for item in ureq::tls::parse_pem(&pem) {
                if let Ok(ureq::tls::PemItem::Certificate(cert)) = item {
                    roots.push(cert);
                }
            }
            if roots.len() == before {
                return Err(ApiError::CaCertificate {
                    path: path.clone(),
                    reason: "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
                });
            }
        }
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&roots));
    }
    // Loopback servers are never proxied (ureq would send them to HTTP(S)_PROXY).
    let proxy = if is_loopback(host_of(base_url)) {
        None
    } else {
        ureq::Proxy::try_from_env()
    };
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .user_agent(USER_AGENT)
        .proxy(proxy)
        .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
        .timeout_connect(Some(Duration::from_secs(30)))
        .tls_config(tls.build())
        .build()
        .into())
}

fn to_json<B: Serialize + ?Sized>(body: &B) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(body).map_err(|e| ApiError::InvalidResponse {
        method: "POST",
        path: String::new(),
        detail: format!("could not encode the request body: {e}"),
    })
}

fn header(resp: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn read_limited(reader: &mut impl Read, out: &mut String) -> std::io::Result<()> {
    let mut bytes = Vec::new();
    reader.take(MAX_JSON_BODY).read_to_end(&mut bytes)?;
    *out = String::from_utf8_lossy(&bytes).into_owned();
    Ok(())
}

fn invalid(method: &'static str, path: &str, e: &dyn std::fmt::Display) -> ApiError {
    ApiError::InvalidResponse {
        method,
        path: path.to_string(),
        detail: e.to_string(),
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::TimedOut
        || e.get_ref()
            .and_then(|inner| inner.downcast_ref::<ureq::Error>())
            .is_some_and(|u| matches!(u, ureq::Error::Timeout(_)))
}

/// Connection-level failures worth another attempt (upstream retries every network error).
fn is_transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
            | ureq::Error::BodyStalled
    )
}

/// `error.message` when `error` is an object with a string message, otherwise the JSON text of
/// `error` (so a string keeps its quotes, as upstream shows it).
fn error_field_message(error: &serde_json::Value) -> String {
    match error.get("message") {
        Some(serde_json::Value::String(m)) => m.clone(),
        _ => match error {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    }
}

/// Upstream's `APIError` message (without the status): `"Deployment not found"` in quotes
/// for `{"error":"Deployment not found"}`, the raw text for other bodies, `status code (no
/// body)` for none.
fn error_message(body: &str, _status: u16) -> String {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return "status code (no body)".to_string();
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(trimmed)
        && let Some(err) = v.get("error")
    {
        let message = match err.get("message") {
            Some(serde_json::Value::String(m)) => m.clone(),
            _ => err.to_string(),
        };
        return truncate(&message);
    }
    truncate(trimmed)
}

fn truncate(s: &str) -> String {
    if s.len() <= MAX_ERROR_TEXT {
        return s.to_string();
    }
    let mut end = MAX_ERROR_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn hint(call: Call, status: u16, token: Option<&Secret>) -> Option<String> {
    let pat_call = matches!(call, Call::WhoAmI | Call::ProjectEnv);
    let h = match status {
        401 if pat_call || token.is_some_and(Secret::is_personal_access_token) => {
            "the personal access token was rejected: run `liftoff login` or set TRIGGER_ACCESS_TOKEN"
        }
        401 => {
            "the environment's secret key was rejected: run `liftoff login` or set TRIGGER_ACCESS_TOKEN, and check the project ref and --env"
        }
        403 => "this token has no access to the project: check the project ref and --profile",
        404 => match call {
            Call::ProjectEnv => {
                "check the project ref (`project` in trigger.config or --project-ref), --env, and that the profile (--profile) or TRIGGER_API_URL points at the server that owns the project"
            }
            Call::GetDeployment | Call::Fail | Call::Finalize | Call::BackgroundWorker => {
                "the deployment does not exist in this environment"
            }
            Call::Promote => {
                "no deployment has this version in this environment: check the version and --env"
            }
            _ => "the server has no such endpoint: is the API URL a Trigger.dev v3 server?",
        },
        405 => "the server has no such endpoint: is the API URL a Trigger.dev v3 server?",
        400 if call == Call::Token => {
            "the login code expired (10 minutes) or was already used: run `liftoff login` again"
        }
        400 if call == Call::Finalize => {
            "the server rejected the finalize request; the deployment must have a worker (status DEPLOYING)"
        }
        429 => "the server is rate limiting this client: wait a minute and retry",
        500 if call == Call::BackgroundWorker => {
            "the deployment is no longer BUILDING (it may have timed out or failed); start a new deploy"
        }
        s if s >= 500 => "the server failed: retry later, or check the server's logs",
        _ => return None,
    };
    Some(h.to_string())
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters).
fn seg(s: &str) -> String {
    if s == "." || s == ".." {
        return s.replace('.', "%2E");
    }
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
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
    fn base_url_normalization() {
        assert_eq!(
            normalize_base_url("https://api.trigger.dev/").unwrap(),
            "https://api.trigger.dev"
        );
        assert_eq!(
            normalize_base_url("http://localhost:3030").unwrap(),
            "http://localhost:3030"
        );
        assert!(normalize_base_url("api.trigger.dev").is_err());
        assert!(normalize_base_url("https://").is_err());
        assert!(normalize_base_url("https://x/?a").is_err());
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback(host_of("http://localhost:3030")));
        assert!(is_loopback(host_of("http://127.0.0.1:1")));
        assert!(is_loopback(host_of("http://[::1]:8080/x")));
        assert!(!is_loopback(host_of("https://api.trigger.dev")));
    }

    #[test]
    fn upstream_error_messages() {
        assert_eq!(
            error_message(r#"{"error":"Deployment not found"}"#, 404),
            "\"Deployment not found\""
        );
        assert_eq!(
            error_message(r#"{"error":{"message":"boom","code":1}}"#, 400),
            "boom"
        );
        assert_eq!(
            error_message(r#"{"error":{"code":1}}"#, 400),
            r#"{"code":1}"#
        );
        assert_eq!(error_message("", 502), "status code (no body)");
        assert_eq!(
            error_message("Method Not Allowed", 405),
            "Method Not Allowed"
        );
        assert!(error_message(&"x".repeat(2000), 500).len() < 600);
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(seg("proj_abc"), "proj_abc");
        assert_eq!(seg("20250101.1"), "20250101.1");
        assert_eq!(seg("a/../b c"), "a%2F..%2Fb%20c");
        assert_eq!(seg(".."), "%2E%2E");
    }

    #[test]
    fn debug_hides_the_token() {
        let c = ApiClient::new(
            "http://localhost:1",
            Some(Secret::new("tr_pat_supersecret")),
            ApiClientOptions::default(),
        )
        .unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("supersecret"), "{d}");
        assert!(d.contains("tr_pat"));
    }
}
