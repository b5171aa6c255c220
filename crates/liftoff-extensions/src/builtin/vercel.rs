//! syncVercelEnvVars (upstream's `SyncVercelEnvVarsExtension`, which wraps
//! syncEnvVars): fetches the Vercel project's env vars for the deploy's
//! environment and syncs them.
//!
//! Differences from upstream, on purpose: upstream's syncEnvVars catches every
//! error of its callback and only logs a warning (the deploy then goes on
//! without syncing anything); liftoff fails the extension with a clear message
//! instead (the host's `--keep-going` turns that back into a warning). Neither
//! the token nor any env value ever appears in a message.

use std::fmt::Write as _;
use std::time::Duration;

use liftoff_config::StaticValue;
use liftoff_manifest::BuildManifest;

use super::{Builtin, envsync};
use crate::{Context, ExtensionError, LogLevel};

const PHASE: &str = "onBuildComplete";
const DEFAULT_API: &str = "https://api.vercel.com";
/// Overrides the API's base URL (tests, proxies).
pub(crate) const API_URL_VAR: &str = "LIFTOFF_VERCEL_API_URL";

/// `options.<option> ?? process.env[key] ?? serverEnv[key]` (first one defined).
fn lookup(
    b: &Builtin,
    ctx: &Context<'_>,
    manifest: &BuildManifest,
    option: &str,
    key: &str,
) -> Option<String> {
    b.options
        .get(option)
        .and_then(StaticValue::as_str)
        .map(String::from)
        .or_else(|| ctx.env.get(key).cloned())
        .or_else(|| {
            manifest
                .deploy
                .env
                .as_ref()
                .and_then(|e| e.get(key))
                .cloned()
        })
}

/// `application/x-www-form-urlencoded`, as `URLSearchParams` serialises a value.
fn form_encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

/// A path segment. Upstream interpolates the project id raw; Vercel ids
/// (`prj_…` or a project name) only use characters left as they are here.
fn segment_encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte));
            }
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

/// Vercel's environment for the deploy's.
fn vercel_environment(environment: &str) -> Option<&'static str> {
    match environment {
        "prod" => Some("production"),
        "staging" => Some("preview"),
        "dev" => Some("development"),
        _ => None,
    }
}

/// `env.target.includes(environment)`: an array's element, or (as JavaScript's
/// `String.prototype.includes`) a substring of a string.
fn targets(value: Option<&serde_json::Value>, environment: &str) -> bool {
    match value {
        Some(serde_json::Value::Array(items)) => {
            items.iter().any(|t| t.as_str() == Some(environment))
        }
        Some(serde_json::Value::String(s)) => s.contains(environment),
        _ => false,
    }
}

/// Keeps the entries with a non-empty string value whose target includes the
/// environment, as `(key, value)` in response order.
fn select(body: &serde_json::Value, environment: &str) -> Option<Vec<(String, String)>> {
    let envs = body.get("envs")?.as_array()?;
    Some(
        envs.iter()
            .filter_map(|e| {
                let key = e.get("key")?.as_str()?;
                let value = e.get("value")?.as_str().filter(|v| !v.is_empty())?;
                targets(e.get("target"), environment).then(|| (key.to_string(), value.to_string()))
            })
            .collect(),
    )
}

/// A short, token-free description of an error answer: Vercel's `error.code`
/// and `error.message` when the body has them.
fn describe_error_body(body: &str, token: &str) -> String {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
        return String::new();
    };
    let Some(error) = json.get("error") else {
        return String::new();
    };
    let field = |name: &str| {
        error
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map(|s| s.chars().take(200).collect::<String>())
    };
    let text = match (field("code"), field("message")) {
        (Some(code), Some(message)) => format!(" ({code}: {message})"),
        (Some(one), None) | (None, Some(one)) => format!(" ({one})"),
        (None, None) => String::new(),
    };
    if token.is_empty() {
        text
    } else {
        text.replace(token, "[redacted]")
    }
}

pub(super) fn on_build_complete(
    b: &Builtin,
    ctx: &mut Context<'_>,
    manifest: &BuildManifest,
) -> Result<(), ExtensionError> {
    let name = b.data.extension.name.clone();
    let fail = |message: String| ExtensionError::failed(&name, PHASE, message);
    ctx.log(LogLevel::Log, "Invoking syncEnvVars callback");

    let project_id =
        lookup(b, ctx, manifest, "projectId", "VERCEL_PROJECT_ID").filter(|v| !v.is_empty());
    let token = lookup(b, ctx, manifest, "vercelAccessToken", "VERCEL_ACCESS_TOKEN")
        .filter(|v| !v.is_empty());
    let team_id =
        lookup(b, ctx, manifest, "vercelTeamId", "VERCEL_TEAM_ID").filter(|v| !v.is_empty());
    let Some(project_id) = project_id else {
        return Err(fail("syncVercelEnvVars: you did not pass in a projectId or set the VERCEL_PROJECT_ID env var.".into()));
    };
    let Some(token) = token else {
        return Err(fail("syncVercelEnvVars: you did not pass in a vercelAccessToken or set the VERCEL_ACCESS_TOKEN env var.".into()));
    };
    let Some(environment) = vercel_environment(&manifest.environment) else {
        return Err(fail(format!(
            "Invalid environment '{}'. Expected 'prod', 'staging', or 'dev'.",
            manifest.environment
        )));
    };

    let base = ctx
        .env
        .get(API_URL_VAR)
        .map_or(DEFAULT_API, String::as_str)
        .trim_end_matches('/');
    let mut url = format!(
        "{base}/v8/projects/{}/env?decrypt=true",
        segment_encode(&project_id)
    );
    if let Some(team) = &team_id {
        url.push_str("&teamId=");
        url.push_str(&form_encode(team));
    }
    // The URL holds the project and team ids, which are not secrets; the token only travels in the header.
    let shown_url = url.split('?').next().unwrap_or(&url).to_string();

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_mins(1)))
        .user_agent(concat!("liftoff/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut response = agent
        .get(&url)
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .map_err(|e| {
            fail(format!(
                "could not reach the Vercel API (GET {shown_url}): {}",
                e.to_string().replace(token.as_str(), "[redacted]")
            ))
        })?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| {
            fail(format!(
                "could not read the Vercel API's answer (GET {shown_url}, HTTP {status}): {e}"
            ))
        })?;
    if !(200..300).contains(&status) {
        let hint = match status {
            401 | 403 => {
                " Check the access token (vercelAccessToken / VERCEL_ACCESS_TOKEN) and, for a team project, the team id (vercelTeamId / VERCEL_TEAM_ID)."
            }
            404 => {
                " Check the project id (projectId / VERCEL_PROJECT_ID) and, for a team project, the team id (vercelTeamId / VERCEL_TEAM_ID)."
            }
            _ => "",
        };
        return Err(fail(format!(
            "the Vercel API answered HTTP error! status: {status}{} (GET {shown_url}).{hint}",
            describe_error_body(&body, &token)
        )));
    }
    let json: serde_json::Value = serde_json::from_str(&body).map_err(|e| {
        fail(format!(
            "the Vercel API's answer (GET {shown_url}) is not JSON: {e}"
        ))
    })?;
    let selected = select(&json, environment).ok_or_else(|| {
        fail(format!(
            "the Vercel API's answer (GET {shown_url}) has no `envs` array"
        ))
    })?;
    envsync::add_sync_layer(ctx, envsync::filter_env(selected), true);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::path::Path;
    use std::sync::mpsc;

    use serde_json::json;

    use super::*;

    use crate::{Runtime, Target};

    /// A one-request HTTP/1.1 server on loopback: answers `status` with `body` and
    /// sends back the request line and the Authorization header.
    fn serve(status: u16, body: String) -> (String, mpsc::Receiver<(String, Option<String>)>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut auth = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("authorization")
                {
                    auth = Some(v.trim().to_string());
                }
            }
            let mut stream = stream;
            write!(stream, "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
            stream.flush().unwrap();
            tx.send((request_line.trim_end().to_string(), auth))
                .unwrap();
        });
        (format!("http://{addr}"), rx)
    }

    fn builtin(options: &serde_json::Value) -> Builtin {
        super::super::test_builtin("syncVercelEnvVars", options)
    }

    struct Outcome {
        result: Result<(), ExtensionError>,
        layers: Vec<serde_json::Value>,
        messages: Vec<String>,
    }

    fn run(
        b: &Builtin,
        env: &[(&str, &str)],
        environment: &str,
        server: &[(&str, &str)],
    ) -> Outcome {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        let mut m = BuildManifest {
            environment: environment.into(),
            ..BuildManifest::default()
        };
        if !server.is_empty() {
            m.deploy.env = Some(
                server
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                    .collect(),
            );
        }
        let mut ctx = Context::new(
            Target::Deploy,
            Runtime::Node,
            Path::new("/p"),
            "proj_x",
            &env,
        );
        let result = on_build_complete(b, &mut ctx, &m);
        Outcome {
            result,
            layers: ctx
                .layers
                .iter()
                .map(|l| serde_json::to_value(l).unwrap())
                .collect(),
            messages: ctx.logs.iter().map(|l| l.message.clone()).collect(),
        }
    }

    fn vercel_body() -> String {
        json!({ "envs": [
            { "key": "API_KEY", "value": "prod-key", "target": ["production", "preview"], "type": "encrypted" },
            { "key": "PREVIEW_ONLY", "value": "p", "target": ["preview"], "type": "plain" },
            { "key": "EMPTY", "value": "", "target": ["production"], "type": "plain" },
            { "key": "SENSITIVE", "target": ["production"], "type": "sensitive" },
            { "key": "TRIGGER_SECRET_KEY", "value": "tr_x", "target": ["production"], "type": "encrypted" },
            { "key": "PATH", "value": "/bin", "target": ["production"], "type": "plain" },
            { "key": "DATABASE_URL", "value": "postgres://x", "target": "production", "type": "plain" },
        ]})
        .to_string()
    }

    #[test]
    fn fetches_filters_and_syncs() {
        let (base, rx) = serve(200, vercel_body());
        let b = builtin(&json!({ "projectId": "prj_123", "vercelTeamId": "team a&b" }));
        let o = run(
            &b,
            &[(API_URL_VAR, &base), ("VERCEL_ACCESS_TOKEN", "tok_secret")],
            "prod",
            &[],
        );
        o.result.unwrap();
        let (request, auth) = rx.recv().unwrap();
        assert_eq!(
            request,
            "GET /v8/projects/prj_123/env?decrypt=true&teamId=team+a%26b HTTP/1.1"
        );
        assert_eq!(auth.as_deref(), Some("Bearer tok_secret"));
        assert_eq!(
            o.layers,
            [
                json!({ "id": "sync-env-vars", "deploy": { "env": { "API_KEY": "prod-key", "DATABASE_URL": "postgres://x" }, "override": true } })
            ]
        );
        assert_eq!(
            o.messages,
            ["Invoking syncEnvVars callback", "Found 2 env vars to sync"]
        );
    }

    #[test]
    fn staging_maps_to_preview_and_server_env_is_the_last_fallback() {
        let (base, rx) = serve(200, vercel_body());
        let b = builtin(&json!({}));
        let o = run(
            &b,
            &[(API_URL_VAR, &base), ("VERCEL_PROJECT_ID", "prj_env")],
            "staging",
            &[
                ("VERCEL_ACCESS_TOKEN", "server_tok"),
                ("VERCEL_PROJECT_ID", "prj_server"),
            ],
        );
        o.result.unwrap();
        let (request, auth) = rx.recv().unwrap();
        assert_eq!(
            request, "GET /v8/projects/prj_env/env?decrypt=true HTTP/1.1",
            "the process env comes before the server's"
        );
        assert_eq!(auth.as_deref(), Some("Bearer server_tok"));
        assert_eq!(
            o.layers[0]["deploy"]["env"],
            json!({ "API_KEY": "prod-key", "PREVIEW_ONLY": "p" })
        );
    }

    #[test]
    fn nothing_to_sync() {
        let (base, _rx) = serve(200, json!({ "envs": [] }).to_string());
        let b = builtin(&json!({ "projectId": "prj", "vercelAccessToken": "tok" }));
        let o = run(&b, &[(API_URL_VAR, &base)], "prod", &[]);
        o.result.unwrap();
        assert!(o.layers.is_empty());
        assert_eq!(
            o.messages.last().map(String::as_str),
            Some("No env vars detected")
        );
    }

    #[test]
    fn http_errors_never_show_the_token() {
        for (status, body) in [
            (401, json!({ "error": { "code": "forbidden", "message": "Not authorized: tok_very_secret_123" } }).to_string()),
            (500, "oops tok_very_secret_123".to_string()),
        ] {
            let (base, _rx) = serve(status, body);
            let b = builtin(&json!({ "projectId": "prj_1", "vercelAccessToken": "tok_very_secret_123" }));
            let o = run(&b, &[(API_URL_VAR, &base)], "prod", &[]);
            let err = o.result.unwrap_err().to_string();
            assert!(err.contains(&format!("HTTP error! status: {status}")), "{err}");
            assert!(err.contains("/v8/projects/prj_1/env"), "{err}");
            assert!(!err.contains("tok_very_secret_123"), "{err}");
            assert!(o.layers.is_empty());
            if status == 401 {
                assert!(err.contains("forbidden") && err.contains("Check the access token"), "{err}");
            }
        }
    }

    #[test]
    fn unreachable_api() {
        // A port nothing listens on: bind, take the address, close.
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let b =
            builtin(&json!({ "projectId": "prj_1", "vercelAccessToken": "tok_very_secret_123" }));
        let o = run(&b, &[(API_URL_VAR, &format!("http://{addr}"))], "prod", &[]);
        let err = o.result.unwrap_err().to_string();
        assert!(
            err.contains("could not reach the Vercel API") && !err.contains("tok_very_secret_123"),
            "{err}"
        );
    }

    #[test]
    fn missing_settings() {
        let err = run(
            &builtin(&json!({})),
            &[("VERCEL_ACCESS_TOKEN", "t")],
            "prod",
            &[],
        )
        .result
        .unwrap_err()
        .to_string();
        assert!(err.contains("syncVercelEnvVars: you did not pass in a projectId or set the VERCEL_PROJECT_ID env var."), "{err}");
        let err = run(&builtin(&json!({ "projectId": "p" })), &[], "prod", &[])
            .result
            .unwrap_err()
            .to_string();
        assert!(err.contains("syncVercelEnvVars: you did not pass in a vercelAccessToken or set the VERCEL_ACCESS_TOKEN env var."), "{err}");
        // An empty option is used as given (`??`), so it does not fall back.
        let err = run(
            &builtin(&json!({ "projectId": "" })),
            &[("VERCEL_PROJECT_ID", "p"), ("VERCEL_ACCESS_TOKEN", "t")],
            "prod",
            &[],
        )
        .result
        .unwrap_err()
        .to_string();
        assert!(err.contains("projectId"), "{err}");
        let err = run(
            &builtin(&json!({ "projectId": "p", "vercelAccessToken": "t" })),
            &[],
            "preview",
            &[],
        )
        .result
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("Invalid environment 'preview'. Expected 'prod', 'staging', or 'dev'."),
            "{err}"
        );
    }

    #[test]
    fn encoding() {
        assert_eq!(form_encode("a b&c=d/é*"), "a+b%26c%3Dd%2F%C3%A9*");
        assert_eq!(segment_encode("prj_AbC-1.x"), "prj_AbC-1.x");
        assert_eq!(segment_encode("a/b?c"), "a%2Fb%3Fc");
    }
}
