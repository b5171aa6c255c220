//! The client against a tiny in-test HTTP/1.1 server (std `TcpListener`, one thread per
//! connection, `Connection: close`), answering canned responses per path.

use liftoff_deploy::types::{
    DeploymentStatus, FinalizeDeploymentRequest, ImportEnvVarsRequest, InitializeDeploymentRequest,
};
use liftoff_deploy::{
    ApiClient, ApiClientOptions, ApiError, Deployer, RetryPolicy, Secret, StepError,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: String,
}

impl Recorded {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

enum Reply {
    Json(u16, Vec<(&'static str, String)>, String),
    /// SSE: chunks written with a pause before each, then the connection closes.
    Sse(Vec<(Duration, String)>),
}

fn json(status: u16, body: &Value) -> Reply {
    Reply::Json(status, vec![], body.to_string())
}

type Handler = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

struct Server {
    url: String,
    log: Arc<Mutex<Vec<Recorded>>>,
}

impl Server {
    /// `handler(request, n)`: `n` is how many earlier requests had the same method and path.
    fn start(handler: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let log2 = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (handler, log) = (handler.clone(), log2.clone());
                std::thread::spawn(move || serve(stream, &*handler, &log));
            }
        });
        Self { url, log }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }

    fn hits(&self, method: &str, path: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }

    fn client(&self, token: Option<&str>) -> ApiClient {
        self.client_with(token, fast_options())
    }

    fn client_with(&self, token: Option<&str>, options: ApiClientOptions) -> ApiClient {
        ApiClient::new(&format!("{}/", self.url), token.map(Secret::new), options).unwrap()
    }
}

fn fast_options() -> ApiClientOptions {
    ApiClientOptions {
        retry: RetryPolicy {
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            ..RetryPolicy::default()
        },
        request_timeout: Duration::from_secs(10),
        stream_idle_timeout: Duration::from_secs(10),
        ..ApiClientOptions::default()
    }
}

fn serve(stream: TcpStream, handler: &Handler, log: &Mutex<Vec<Recorded>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    let req = Recorded {
        method,
        path,
        headers,
        body: String::from_utf8(body).unwrap(),
    };
    let n = {
        let mut log = log.lock().unwrap();
        let n = log
            .iter()
            .filter(|r| r.method == req.method && r.path == req.path)
            .count();
        log.push(req.clone());
        n
    };
    let mut out = stream;
    match handler(&req, n) {
        Reply::Json(status, extra, body) => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in extra {
                let _ = write!(head, "{k}: {v}\r\n");
            }
            let _ = out.write_all(format!("{head}\r\n{body}").as_bytes());
        }
        Reply::Sse(chunks) => {
            let _ = out.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
            );
            let _ = out.flush();
            for (pause, chunk) in chunks {
                std::thread::sleep(pause);
                if out.write_all(chunk.as_bytes()).is_err() {
                    return;
                }
                let _ = out.flush();
            }
        }
    }
}

fn not_found() -> Reply {
    json(404, &json!({"error": "Not found"}))
}

fn deployment(status: &str, worker: bool) -> Value {
    let mut d = json!({
        "id": "deployment_abc", "status": status, "contentHash": "hash", "shortCode": "ab12cd34",
        "version": "20250228.1", "imageReference": null, "errorData": null
    });
    if worker {
        d["worker"] = json!({"id": "worker_1", "version": "20250228.1", "tasks": [
            {"id": "hello", "slug": "hello", "filePath": "src/trigger/hello.ts", "exportName": "hello"}
        ]});
    }
    d
}

#[test]
fn pat_calls_then_environment_client() {
    let server = Server::start(|req, _| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/api/v2/whoami") => json(
            200,
            &json!({"userId": "user_1", "email": "a@b.c", "dashboardUrl": "http://localhost:3030"}),
        ),
        ("GET", "/api/v1/projects/proj_abc/prod") => json(
            200,
            &json!({"apiKey": "tr_prod_secretkey", "name": "Proj", "apiUrl": "http://127.0.0.1:9", "projectId": "cuid1"}),
        ),
        ("GET", "/api/v1/projects/proj_abc/envvars") => {
            json(200, &json!({"variables": {"A": "1", "B": "2"}}))
        }
        _ => not_found(),
    });
    let pat = server.client(Some("tr_pat_personal"));
    let me = pat.whoami().unwrap();
    assert_eq!(me.user_id, "user_1");
    assert_eq!(me.dashboard_url, "http://localhost:3030");
    let env = pat.project_env("proj_abc", "prod").unwrap();
    assert_eq!(env.api_key.expose(), "tr_prod_secretkey");
    assert!(!format!("{env:?}").contains("secretkey"));
    // The env client talks to the returned apiUrl unless overridden.
    assert_eq!(
        pat.for_environment(&env, None).unwrap().base_url(),
        "http://127.0.0.1:9"
    );
    let envc = pat.for_environment(&env, Some(&server.url)).unwrap();
    let vars = envc.env_vars("proj_abc").unwrap();
    assert_eq!(vars.variables.len(), 2);

    let reqs = server.requests();
    assert_eq!(reqs[0].headers["authorization"], "Bearer tr_pat_personal");
    assert_eq!(reqs[0].headers["accept"], "application/json");
    assert!(reqs[0].headers["user-agent"].starts_with("liftoff/"));
    assert_eq!(reqs[2].headers["authorization"], "Bearer tr_prod_secretkey");
}

#[test]
fn deployment_calls_send_upstream_shapes() {
    let server = Server::start(|req, _| match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/api/v1/deployments") => json(
            200,
            &json!({"id": "deployment_abc", "contentHash": "hash", "shortCode": "ab12cd34",
                    "version": "20250228.1", "imageTag": "trigger/proj_abc:20250228.1.prod",
                    "externalBuildData": null, "registryHost": "localhost:5000"}),
        ),
        ("POST", "/api/v1/projects/proj_abc/envvars/prod/import") => {
            json(200, &json!({"success": true}))
        }
        ("POST", "/api/v1/deployments/deployment_abc/background-workers") => json(
            200,
            &json!({"id": "worker_1", "version": "20250228.1", "contentHash": "hash"}),
        ),
        ("GET", "/api/v1/deployments/deployment_abc") => json(200, &deployment("DEPLOYING", true)),
        ("POST", "/api/v1/deployments/deployment_abc/fail") => {
            json(200, &json!({"id": "deployment_abc"}))
        }
        ("POST", "/api/v1/deployments/20250228.1/promote") => json(
            200,
            &json!({"id": "deployment_abc", "version": "20250228.1", "shortCode": "ab12cd34"}),
        ),
        _ => not_found(),
    });
    let c = server.client(Some("tr_prod_key"));
    let init = c
        .initialize_deployment(&InitializeDeploymentRequest {
            content_hash: "hash".into(),
            user_id: Some("user_1".into()),
            self_hosted: Some(true),
            registry_host: Some("localhost:5000".into()),
            namespace: None,
        })
        .unwrap();
    assert_eq!(init.image_tag, "trigger/proj_abc:20250228.1.prod");
    assert_eq!(init.external_build_data, None);
    assert_eq!(init.registry_host.as_deref(), Some("localhost:5000"));

    c.import_env_vars(
        "proj_abc",
        "prod",
        &ImportEnvVarsRequest {
            variables: BTreeMap::from([("K".to_string(), "V".to_string())]),
            override_existing: Some(true),
        },
    )
    .unwrap();

    let body = liftoff_deploy::worker::background_worker_request(
        &json!({"contentHash": "hash", "packageVersion": "3.3.17", "cliPackageVersion": "3.3.17", "sources": {}}),
        &json!({"tasks": [{"id": "hello", "filePath": "src/trigger/hello.ts", "exportName": "hello", "entryPoint": "/app/x.mjs"}]}),
    )
    .unwrap();
    let w = c.create_background_worker("deployment_abc", &body).unwrap();
    assert_eq!(w.id, "worker_1");

    let d = Deployer::new(&c)
        .deployment_with_worker("deployment_abc")
        .unwrap();
    assert_eq!(d.status, DeploymentStatus::Deploying);
    assert_eq!(d.worker.unwrap().tasks.len(), 1);

    c.fail_deployment(
        "deployment_abc",
        &StepError::build("Error building image")
            .with_stderr("tail")
            .data,
    )
    .unwrap();
    let p = c.promote("20250228.1").unwrap();
    assert_eq!(p.short_code, "ab12cd34");

    let reqs = server.requests();
    assert_eq!(
        reqs[0].json(),
        json!({"contentHash": "hash", "userId": "user_1", "registryHost": "localhost:5000", "selfHosted": true})
    );
    assert_eq!(reqs[0].headers["content-type"], "application/json");
    assert_eq!(
        reqs[1].json(),
        json!({"variables": {"K": "V"}, "override": true})
    );
    assert_eq!(reqs[2].json()["localOnly"], json!(true));
    assert_eq!(reqs[2].json()["supportsLazyAttempts"], json!(true));
    assert_eq!(
        reqs[2].json()["metadata"]["tasks"][0]["entryPoint"],
        "/app/x.mjs"
    );
    assert_eq!(
        reqs[4].json(),
        json!({"error": {"name": "BuildError", "message": "Error building image", "stderr": "tail"}})
    );
    assert_eq!(reqs[5].body, "");
}

#[test]
fn retries_503_then_succeeds() {
    let server = Server::start(|req, n| match req.path.as_str() {
        "/api/v1/deployments/deployment_abc" if n == 0 => Reply::Json(
            503,
            vec![("Retry-After", "0".into())],
            "upstream unavailable".into(),
        ),
        "/api/v1/deployments/deployment_abc" => json(200, &deployment("BUILDING", false)),
        "/api/v2/whoami" if n < 2 => Reply::Json(
            429,
            vec![("retry-after-ms", "10".into())],
            json!({"error": "slow down"}).to_string(),
        ),
        "/api/v2/whoami" => json(
            200,
            &json!({"userId": "u", "email": "e@x.y", "dashboardUrl": "http://d"}),
        ),
        _ => not_found(),
    });
    // Upstream's real schedule: the first retry waits for Retry-After (0 s) not 500 ms.
    let c = server.client_with(Some("tr_prod_k"), ApiClientOptions::default());
    let started = Instant::now();
    let d = c.get_deployment("deployment_abc").unwrap();
    assert!(started.elapsed() < Duration::from_millis(400));
    assert_eq!(d.status, DeploymentStatus::Building);
    assert_eq!(server.hits("GET", "/api/v1/deployments/deployment_abc"), 2);
    c.whoami().unwrap();
    assert_eq!(server.hits("GET", "/api/v2/whoami"), 3);
}

#[test]
fn gives_up_after_max_attempts_and_never_retries_4xx() {
    let server = Server::start(|req, _| {
        match req.path.as_str() {
        "/api/v1/deployments" => json(500, &json!({"error": "Internal Server Error"})),
        "/api/v1/deployments/nope" => json(404, &json!({"error": "Deployment not found"})),
        "/api/v1/deployments/x/promote" => Reply::Json(
            400,
            vec![("x-should-retry", "true".into())],
            json!({"error": {"message": "Cannot promote a deployment that is older than the current deployment."}}).to_string(),
        ),
        _ => not_found(),
    }
    });
    let c = server.client(Some("tr_prod_k"));
    let e = c
        .initialize_deployment(&InitializeDeploymentRequest::default())
        .unwrap_err();
    assert_eq!(server.hits("POST", "/api/v1/deployments"), 5);
    assert_eq!(e.upstream_message(), "500 \"Internal Server Error\"");
    assert!(e.to_string().contains("retry later"), "{e}");

    let e = c.get_deployment("nope").unwrap_err();
    assert_eq!(server.hits("GET", "/api/v1/deployments/nope"), 1);
    assert!(e.is_not_found());
    assert_eq!(
        e.to_string(),
        "404 \"Deployment not found\" (GET /api/v1/deployments/nope); the deployment does not exist in this environment"
    );

    // x-should-retry: true retries even a 400; the object message is used as is.
    let e = c.promote("x").unwrap_err();
    assert_eq!(server.hits("POST", "/api/v1/deployments/x/promote"), 5);
    assert_eq!(
        e.upstream_message(),
        "400 Cannot promote a deployment that is older than the current deployment."
    );
}

#[test]
fn unauthorized_has_a_hint_and_no_token() {
    let server =
        Server::start(|_, _| json(401, &json!({"error": "Invalid or Missing Access Token"})));
    let e = server
        .client(Some("tr_pat_topsecretvalue"))
        .whoami()
        .unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(!text.contains("topsecretvalue"));
    assert!(text.contains("401 \"Invalid or Missing Access Token\""));
    assert!(text.contains("run `liftoff login` or set TRIGGER_ACCESS_TOKEN"));
    assert_eq!(server.hits("GET", "/api/v2/whoami"), 1);

    let e = server.client(None).whoami().unwrap_err();
    assert!(matches!(e, ApiError::MissingToken { .. }));
}

#[test]
fn connection_errors_are_retried_then_reported() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = ApiClient::new(
        &format!("http://127.0.0.1:{port}"),
        Some(Secret::new("tr_pat_x")),
        fast_options(),
    )
    .unwrap();
    let e = c.whoami().unwrap_err();
    match &e {
        ApiError::Connection { attempts, .. } => assert_eq!(*attempts, 5),
        other => panic!("{other:?}"),
    }
    assert_eq!(e.upstream_message(), "Connection error.");
}

fn sse(events: &[(&str, Value)]) -> String {
    let mut out = String::new();
    for (e, d) in events {
        let _ = write!(out, "event: {e}\ndata: {d}\n\n");
    }
    out
}

#[test]
fn finalize_streams_logs_and_completes() {
    let server = Server::start(|req, _| match req.path.as_str() {
        "/api/v3/deployments/deployment_abc/finalize" => {
            let text = format!(
                ": comment\n{}",
                sse(&[
                    ("ping", json!({})),
                    ("log", json!({"message": "pushing layer 1"})),
                    ("log", json!({"message": "pushing layer 2"})),
                    ("complete", json!({"id": "deployment_abc"})),
                ])
            );
            // Split mid-line and mid-CRLF-free boundaries, with pauses.
            let bytes = text.as_bytes();
            let chunks = bytes
                .chunks(7)
                .map(|c| {
                    (
                        Duration::from_millis(1),
                        String::from_utf8_lossy(c).into_owned(),
                    )
                })
                .collect();
            Reply::Sse(chunks)
        }
        _ => not_found(),
    });
    let c = server.client(Some("tr_prod_k"));
    let mut logs = Vec::new();
    let done = c
        .finalize_deployment(
            "deployment_abc",
            &FinalizeDeploymentRequest {
                image_reference: "localhost:5000/trigger/proj:20250228.1.prod@sha256:00".into(),
                self_hosted: Some(true),
                skip_promotion: Some(false),
                ..Default::default()
            },
            |m| logs.push(m.to_string()),
        )
        .unwrap();
    assert_eq!(done.id, "deployment_abc");
    assert_eq!(logs, ["pushing layer 1", "pushing layer 2"]);
    let req = &server.requests()[0];
    assert_eq!(req.headers["accept"], "text/event-stream");
    assert_eq!(
        req.json(),
        json!({"imageReference": "localhost:5000/trigger/proj:20250228.1.prod@sha256:00", "selfHosted": true, "skipPromotion": false})
    );
}

#[test]
fn finalize_error_event_end_of_stream_and_idle_timeout() {
    let server = Server::start(|req, _| match req.path.as_str() {
        "/api/v3/deployments/err/finalize" => Reply::Sse(vec![(
            Duration::ZERO,
            sse(&[
                ("log", json!({"message": "x"})),
                (
                    "error",
                    json!({"error": "Worker deployment is not in DEPLOYING status"}),
                ),
            ]),
        )]),
        "/api/v3/deployments/short/finalize" => {
            Reply::Sse(vec![(Duration::ZERO, sse(&[("ping", json!({}))]))])
        }
        "/api/v3/deployments/silent/finalize" => Reply::Sse(vec![
            (Duration::ZERO, sse(&[("ping", json!({}))])),
            (
                Duration::from_secs(3),
                sse(&[("complete", json!({"id": "silent"}))]),
            ),
        ]),
        "/api/v3/deployments/bad/finalize" => {
            json(400, &json!({"error": "Invalid body", "issues": []}))
        }
        _ => not_found(),
    });
    let body = FinalizeDeploymentRequest {
        image_reference: "img".into(),
        ..Default::default()
    };
    let c = server.client(Some("tr_prod_k"));
    let e = c.finalize_deployment("err", &body, |_| {}).unwrap_err();
    assert!(
        matches!(&e, ApiError::FinalizeFailed { message } if message == "Worker deployment is not in DEPLOYING status"),
        "{e:?}"
    );
    let e = c.finalize_deployment("short", &body, |_| {}).unwrap_err();
    assert!(matches!(e, ApiError::FinalizeStreamEnded { .. }), "{e:?}");
    let e = c.finalize_deployment("bad", &body, |_| {}).unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert_eq!(server.hits("POST", "/api/v3/deployments/bad/finalize"), 1);

    let quick = server.client_with(
        Some("tr_prod_k"),
        ApiClientOptions {
            stream_idle_timeout: Duration::from_millis(300),
            ..fast_options()
        },
    );
    let started = Instant::now();
    let e = quick
        .finalize_deployment("silent", &body, |_| {})
        .unwrap_err();
    assert!(matches!(e, ApiError::FinalizeStreamTimeout { .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// A platform whose finalize fails; `status` is what `GET /deployments/{id}` reports.
fn failing_platform(status: Option<&'static str>) -> Server {
    Server::start(
        move |req, _| match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/api/v1/deployments/deployment_abc") => match status {
                Some(s) => json(200, &deployment(s, true)),
                None => json(503, &json!({"error": "down"})),
            },
            ("POST", "/api/v3/deployments/deployment_abc/finalize") => Reply::Sse(vec![(
                Duration::ZERO,
                sse(&[("error", json!({"error": "Internal server error: boom"}))]),
            )]),
            ("POST", "/api/v1/deployments/deployment_abc/fail") => {
                json(200, &json!({"id": "deployment_abc"}))
            }
            _ => not_found(),
        },
    )
}

#[test]
fn deployer_reports_an_sse_error_with_fail() {
    let server = failing_platform(Some("DEPLOYING"));
    let c = server.client(Some("tr_prod_k"));
    let deployer = Deployer::new(&c);
    let body = FinalizeDeploymentRequest {
        image_reference: "img".into(),
        ..Default::default()
    };
    let err = deployer
        .run_after_initialize("deployment_abc", || {
            deployer.finalize("deployment_abc", &body, |_| {})
        })
        .unwrap_err();
    assert!(matches!(err.error, ApiError::FinalizeFailed { .. }));
    assert_eq!(
        err.to_string(),
        "finalize failed: Internal server error: boom"
    );
    assert!(err.report.reported);
    assert_eq!(err.report.server_status, Some(DeploymentStatus::Deploying));
    assert_eq!(err.report.prefix(), "Error");
    let fail = server
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/fail"))
        .unwrap();
    assert_eq!(
        fail.json(),
        json!({"error": {"name": "FinalizeError", "message": "Internal server error: boom"}})
    );
}

#[test]
fn deployer_leaves_final_states_alone() {
    let server = failing_platform(Some("DEPLOYED"));
    let c = server.client(Some("tr_prod_k"));
    let deployer = Deployer::new(&c);
    let err = deployer
        .run_after_initialize("deployment_abc", || -> Result<(), StepError> {
            Err(StepError::finalize("promotion failed"))
        })
        .unwrap_err();
    assert!(!err.report.reported);
    assert_eq!(err.report.prefix(), "Deployed with errors");
    assert_eq!(
        server.hits("POST", "/api/v1/deployments/deployment_abc/fail"),
        0
    );

    // Success passes the value through and calls nothing.
    let v = deployer
        .run_after_initialize("deployment_abc", || Ok::<_, StepError>(7))
        .unwrap();
    assert_eq!(v, 7);
}

#[test]
fn deployer_still_fails_when_the_status_is_unknown() {
    let server = failing_platform(None);
    let c = server.client(Some("tr_prod_k"));
    let err = Deployer::new(&c)
        .run_after_initialize("deployment_abc", || -> Result<(), StepError> {
            Err(StepError::build("Error building image"))
        })
        .unwrap_err();
    assert!(err.report.reported);
    assert_eq!(err.report.server_status, None);
    assert_eq!(
        err.report.problem.as_ref().and_then(ApiError::status),
        Some(503)
    );
    assert_eq!(err.to_string(), "Error building image");
    assert_eq!(
        server.hits("POST", "/api/v1/deployments/deployment_abc/fail"),
        1
    );
}

#[test]
fn deployment_without_worker_is_a_deployment_error() {
    let server = Server::start(|_, _| json(200, &deployment("BUILDING", false)));
    let c = server.client(Some("tr_prod_k"));
    let e = Deployer::new(&c)
        .deployment_with_worker("deployment_abc")
        .unwrap_err();
    assert_eq!(e.data.name, "DeploymentError");
    assert_eq!(e.data.message, "Failed to get deployment with worker");
}

#[test]
fn device_login_polls_until_approved() {
    let server = Server::start(|req, n| match req.path.as_str() {
        "/api/v1/authorization-code" => json(
            200,
            &json!({"authorizationCode": "code123", "url": "http://localhost:3030/account/authorization-code/code123"}),
        ),
        "/api/v1/token" if n < 2 => json(200, &json!({"token": null})),
        "/api/v1/token" => json(
            200,
            &json!({"token": {"token": "tr_pat_new", "obfuscatedToken": "tr_pat_new•••"}}),
        ),
        _ => not_found(),
    });
    let c = server.client(None);
    let code = c.create_authorization_code().unwrap();
    assert!(code.url.ends_with("/code123"));
    let mut polls = 0;
    let t = c
        .wait_for_token(
            &code.authorization_code,
            Duration::from_millis(5),
            60,
            |_| {
                polls += 1;
            },
        )
        .unwrap();
    assert_eq!(t.token.expose(), "tr_pat_new");
    assert_eq!(polls, 2);
    let reqs = server.requests();
    assert!(
        reqs.iter()
            .all(|r| !r.headers.contains_key("authorization"))
    );
    assert_eq!(reqs[1].json(), json!({"authorizationCode": "code123"}));

    let pending = Server::start(|_, _| json(200, &json!({"token": null})));
    let e = pending
        .client(None)
        .wait_for_token("c", Duration::from_millis(1), 3, |_| {})
        .unwrap_err();
    assert!(matches!(e, ApiError::LoginTimedOut { .. }));
    assert_eq!(pending.hits("POST", "/api/v1/token"), 3);

    let expired = Server::start(|_, _| json(400, &json!({"error": "Invalid authorization code"})));
    let e = expired
        .client(None)
        .wait_for_token("c", Duration::from_millis(1), 3, |_| {})
        .unwrap_err();
    assert!(e.to_string().contains("run `liftoff login` again"), "{e}");
    assert_eq!(expired.hits("POST", "/api/v1/token"), 1);
}
