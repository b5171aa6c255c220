//! Shared helpers: a seeded platform and a small client speaking the API as
//! the CLI does.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use liftoff_platform::{Platform, PlatformConfig, Seed, SeedProject};
use serde_json::{Value, json};

pub const PAT: &str = "tr_pat_abcdefghijk1234567890mnopqrstuvwxyz12345";
pub const PROJECT: &str = "proj_abcdefghijklmnopqrst";
pub const OTHER_PROJECT: &str = "proj_zyxwvutsrqponmlkjihg";
pub const PROD_KEY: &str = "tr_prod_AbCdEfGhIjKlMnOpQrSt";
pub const STG_KEY: &str = "tr_stg_AbCdEfGhIjKlMnOpQrSt";
pub const OTHER_KEY: &str = "tr_prod_ZzZzZzZzZzZzZzZzZzZz";
pub const USER: &str = "user_seeded";

pub fn seed() -> Seed {
    Seed {
        personal_access_token: PAT.to_owned(),
        user_id: USER.to_owned(),
        projects: vec![
            SeedProject {
                ref_: PROJECT.to_owned(),
                name: "Hello world".to_owned(),
                env_api_keys: vec![
                    ("prod".to_owned(), PROD_KEY.to_owned()),
                    ("staging".to_owned(), STG_KEY.to_owned()),
                ],
                env_vars: vec![
                    (
                        "prod".to_owned(),
                        "DATABASE_URL".to_owned(),
                        "postgres://db/prod".to_owned(),
                    ),
                    (
                        "staging".to_owned(),
                        "DATABASE_URL".to_owned(),
                        "postgres://db/stg".to_owned(),
                    ),
                ],
            },
            SeedProject {
                ref_: OTHER_PROJECT.to_owned(),
                name: "Other".to_owned(),
                env_api_keys: vec![("prod".to_owned(), OTHER_KEY.to_owned())],
                env_vars: Vec::new(),
            },
        ],
    }
}

pub fn config(db: &Path) -> PlatformConfig {
    PlatformConfig {
        registry_host: Some("registry.test.invalid".to_owned()),
        ..PlatformConfig::new(db, seed())
    }
}

pub fn start(dir: &Path) -> Platform {
    Platform::start(config(&dir.join("platform.sqlite"))).expect("platform starts")
}

pub struct Api {
    pub base: String,
    agent: ureq::Agent,
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    pub data: Value,
}

/// A finalize stream as read by a client.
#[derive(Debug)]
pub struct Stream {
    pub status: u16,
    pub content_type: String,
    pub events: Vec<Event>,
    /// The read timed out before the stream ended.
    pub timed_out: bool,
}

fn agent(read_timeout: Option<Duration>) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_per_read(read_timeout)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn parse_body(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

impl Api {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            agent: agent(None),
        }
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Accept", "application/json");
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut response = request.call().expect("GET reaches the platform");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().expect("body");
        (status, parse_body(&text))
    }

    pub fn post_raw(&self, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
        let mut request = self.agent.post(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut response = match body {
            Some(body) => request.content_type("application/json").send(body),
            None => request.send_empty(),
        }
        .expect("POST reaches the platform");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().expect("body");
        (status, parse_body(&text))
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        self.post_raw(path, token, Some(&body.to_string()))
    }

    /// `POST /api/v3/deployments/{id}/finalize`, read as an SSE stream.
    pub fn finalize(
        &self,
        id: &str,
        token: &str,
        body: &Value,
        read_timeout: Option<Duration>,
    ) -> Stream {
        let mut response = agent(read_timeout)
            .post(format!("{}/api/v3/deployments/{id}/finalize", self.base))
            .header("Authorization", format!("Bearer {token}"))
            .header("Accept", "text/event-stream")
            .content_type("application/json")
            .send(body.to_string())
            .expect("finalize reaches the platform");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut events = Vec::new();
        let mut timed_out = false;
        let (mut name, mut data) = (String::new(), String::new());
        let reader = BufReader::new(response.body_mut().as_reader());
        for line in reader.lines() {
            let Ok(line) = line else {
                timed_out = true;
                break;
            };
            if line.is_empty() {
                if !name.is_empty() || !data.is_empty() {
                    events.push(Event {
                        name: std::mem::take(&mut name),
                        data: parse_body(&std::mem::take(&mut data)),
                    });
                }
            } else if let Some(v) = line.strip_prefix("event: ") {
                v.clone_into(&mut name);
            } else if let Some(v) = line.strip_prefix("data: ") {
                data.push_str(v);
            }
        }
        Stream {
            status,
            content_type,
            events,
            timed_out,
        }
    }

    /// Initialize a deployment in the key's environment.
    pub fn initialize(&self, key: &str, content_hash: &str) -> Value {
        let (status, body) = self.post(
            "/api/v1/deployments",
            Some(key),
            &json!({ "contentHash": content_hash, "userId": USER, "selfHosted": true }),
        );
        assert_eq!(status, 200, "initialize: {body}");
        body
    }

    /// Register a worker with `tasks` (ids) as the index controller does.
    pub fn register_worker(&self, key: &str, id: &str, tasks: &[&str]) -> (u16, Value) {
        self.post(
            &format!("/api/v1/deployments/{id}/background-workers"),
            Some(key),
            &worker_body(tasks),
        )
    }

    /// initialize + worker: a deployment in DEPLOYING.
    pub fn built(&self, key: &str, tasks: &[&str]) -> Value {
        let created = self.initialize(key, "hash-123");
        let id = created["id"].as_str().expect("id");
        let (status, body) = self.register_worker(key, id, tasks);
        assert_eq!(status, 200, "worker: {body}");
        created
    }
}

pub fn worker_body(tasks: &[&str]) -> Value {
    let tasks: Vec<Value> = tasks
        .iter()
        .map(|id| {
            json!({
                "id": id,
                "filePath": format!("src/trigger/{id}.ts"),
                "exportName": id.replace('-', "_"),
                "queue": { "name": id, "concurrencyLimit": 5 },
                "retry": { "maxAttempts": 3 },
                "maxDuration": 300,
            })
        })
        .collect();
    json!({
        "localOnly": true,
        "supportsLazyAttempts": true,
        "metadata": {
            "packageVersion": "3.3.17",
            "contentHash": "hash-123",
            "cliPackageVersion": "3.3.17",
            "tasks": tasks,
            "sourceFiles": [{
                "filePath": "src/trigger/example.ts",
                "contents": "export const x = 1;",
                "contentHash": "abc",
                "taskIds": ["hello-world"],
            }],
        },
    })
}

/// The names of a stream's events.
pub fn names(stream: &Stream) -> Vec<&str> {
    stream.events.iter().map(|e| e.name.as_str()).collect()
}

/// `YYYYMMDD` of now (UTC), for version assertions.
pub fn today(offset_days: u64) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + offset_days * 86_400;
    let days = i64::try_from(secs / 86_400).expect("days");
    // Civil-from-days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}")
}
