//! Real-client cross-check: the upstream CLI, trigger.dev 3.3.17 (installed in the fixture), is
//! pointed at `liftoff-platform` and must log in, answer `whoami` and finish `deploy --dry-run`
//! using only what the platform serves. Its build dir is then compared with the one liftoff's own
//! dry run writes for the same fixture: the same task files, the same externals with versions,
//! the same sources and the same Containerfile (entry-point paths normalised).
//!
//! The upstream dry run takes ~10 s: it downloads the forced-externals list from jsonhero.io,
//! which fails fast offline (DNS) but is retried with backoff before the documented fallback.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{dry_run, fixture, read_json, text};
use liftoff_platform::{Platform, PlatformConfig, Seed};
use serde_json::Value;

const PROJECT: &str = "proj_liftofffixturehello";

struct Env {
    platform: Platform,
    seed: Seed,
    home: tempfile::TempDir,
}

fn start() -> Env {
    let home = tempfile::tempdir().unwrap();
    let seed = common::platform::seed(PROJECT, &[("prod", "SERVER_ONLY", "from-platform")]);
    let config = PlatformConfig::new(home.path().join("platform.db"), seed.clone());
    let platform = Platform::start(config).unwrap();
    Env {
        platform,
        seed,
        home,
    }
}

impl Env {
    /// `node <fixture>/node_modules/trigger.dev/dist/esm/index.js <args…> --api-url <platform>`,
    /// run in the fixture with a private HOME/XDG config dir and no telemetry.
    fn upstream(&self, args: &[&str], with_token: bool) -> Command {
        let project = fixture("hello");
        let mut cmd = Command::new("node");
        cmd.arg(project.join("node_modules/trigger.dev/dist/esm/index.js"))
            .args(args)
            .arg("--api-url")
            .arg(self.platform.url())
            .current_dir(&project)
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("TRIGGER_API_URL", self.platform.url())
            .env("TRIGGER_TELEMETRY_DISABLED", "1")
            .env("CI", "true")
            .env_remove("TRIGGER_ACCESS_TOKEN")
            .env_remove("TRIGGER_LOG_LEVEL")
            .env_remove("TRIGGER_SECRET_KEY")
            .env_remove("TRIGGER_PROJECT_REF");
        if with_token {
            cmd.env("TRIGGER_ACCESS_TOKEN", &self.seed.personal_access_token);
        }
        cmd
    }

    fn email(&self) -> String {
        let state = self.platform.state().unwrap();
        let user = state
            .users
            .iter()
            .find(|u| u.id == self.seed.user_id)
            .unwrap();
        user.email.clone()
    }

    /// Every request the platform answered; all must have succeeded.
    fn requests_ok(&self) -> Vec<String> {
        let requests = self.platform.requests();
        for r in &requests {
            assert!(
                (200..300).contains(&r.status),
                "the platform answered {} {} with {}; all requests: {requests:#?}",
                r.method,
                r.path,
                r.status
            );
        }
        requests
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

/// The output with ANSI escapes removed (clack draws boxes and colours even when piped).
fn plain(bytes: &[u8]) -> String {
    let s = text(bytes);
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn succeeded(what: &str, out: &Output) -> String {
    let stdout = plain(&out.stdout);
    assert!(
        out.status.success(),
        "upstream {what} failed:\n{stdout}\n{}",
        plain(&out.stderr)
    );
    stdout
}

/// Writes the upstream CLI's auth profile, as `trigger.dev login` does
/// (`$XDG_CONFIG_HOME/trigger/default.json`).
fn write_profile(env: &Env, token: &str) {
    let dir = env.home.path().join("config/trigger");
    std::fs::create_dir_all(&dir).unwrap();
    let profile = serde_json::json!({
        "default": { "accessToken": token, "apiUrl": env.platform.url() }
    });
    std::fs::write(dir.join("default.json"), profile.to_string()).unwrap();
}

#[test]
fn upstream_whoami_with_the_seed_token() {
    let env = start();
    // 3.3.17's `whoami` reads the stored profile only (TRIGGER_ACCESS_TOKEN is read by `login`
    // and `deploy`), so the seed PAT is stored as `login` would store it.
    write_profile(&env, &env.seed.personal_access_token);
    let out = env
        .upstream(&["whoami", "--log-level", "debug"], true)
        .output()
        .unwrap();
    let stdout = succeeded("whoami", &out);
    assert!(
        stdout.contains(&format!("User ID: {}", env.seed.user_id)),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("Email: {}", env.email())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("URL: {}", env.platform.url())),
        "{stdout}"
    );
    // isLoggedIn() and the account lookup each call whoami.
    let requests = env.requests_ok();
    assert!(
        !requests.is_empty() && requests.iter().all(|r| r == "GET /api/v2/whoami"),
        "{requests:?}"
    );
}

#[test]
fn upstream_device_login_then_whoami() {
    let env = start();
    let mut child = env
        .upstream(&["login"], false)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read stdout on a thread to the end (closing the pipe early would kill the CLI with EPIPE);
    // each line goes through the channel so the code can be approved while login polls.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = plain(line.unwrap().as_bytes());
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    });
    let marker = "/account/authorization-code/";
    let code = rx.iter().find_map(|line| {
        let at = line.find(marker)?;
        let rest = &line[at + marker.len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(rest.len());
        Some(rest[..end].to_string())
    });
    let Some(code) = code else {
        let out = child.wait_with_output().unwrap();
        panic!(
            "upstream login printed no login URL:\n{}\n{}",
            reader.join().unwrap(),
            plain(&out.stderr)
        );
    };
    // What a person does in the dashboard.
    env.platform.approve_login(&code).unwrap();
    let out = child.wait_with_output().unwrap();
    let all = reader.join().unwrap();
    assert!(
        out.status.success(),
        "upstream login failed:\n{all}\n{}",
        plain(&out.stderr)
    );
    assert!(all.contains("Logged in successfully"), "{all}");

    // login stored the new token; whoami uses it.
    let stored = read_json(&env.home.path().join("config/trigger/default.json"));
    let token = stored["default"]["accessToken"].as_str().unwrap();
    assert!(token.starts_with("tr_pat_"), "{stored}");
    assert_ne!(token, env.seed.personal_access_token);
    assert_eq!(stored["default"]["apiUrl"], env.platform.url());

    let out = env.upstream(&["whoami"], false).output().unwrap();
    let stdout = succeeded("whoami", &out);
    assert!(
        stdout.contains(&format!("User ID: {}", env.seed.user_id)),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("Email: {}", env.email())),
        "{stdout}"
    );

    let requests = env.requests_ok();
    assert_eq!(
        requests[0], "POST /api/v1/authorization-code",
        "{requests:?}"
    );
    assert!(requests.iter().any(|r| r == "POST /api/v1/token"));
    assert_eq!(
        requests.last().map(String::as_str),
        Some("GET /api/v2/whoami")
    );
}

fn task_entries(build: &Value) -> Vec<String> {
    build["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["entry"].as_str().unwrap().to_string())
        .collect()
}

fn externals(build: &Value) -> BTreeMap<String, String> {
    build["externals"]
        .as_array()
        .expect("externals")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["version"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Each source file's own content hash (the compressed `contents` differ: zlib settings).
fn source_hashes(build: &Value) -> BTreeMap<String, String> {
    build["sources"]
        .as_object()
        .expect("sources")
        .iter()
        .map(|(k, v)| (k.clone(), v["contentHash"].as_str().unwrap().to_string()))
        .collect()
}

/// The Containerfile with the entry points (which depend on where the CLI package lives in
/// upstream's layout) replaced by placeholders.
fn normalised_containerfile(dir: &Path, build: &Value) -> String {
    let mut text = std::fs::read_to_string(dir.join("Containerfile")).unwrap();
    for key in [
        "indexControllerEntryPoint",
        "indexWorkerEntryPoint",
        "runControllerEntryPoint",
        "runWorkerEntryPoint",
    ] {
        let path = build[key].as_str().unwrap();
        text = text.replace(path, &format!("<{key}>"));
    }
    text
}

/// Removes a build dir when dropped, so a failing assertion does not leave it in the fixture.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for dir in &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[test]
fn upstream_dry_run_against_the_platform_matches_liftoff() {
    let env = start();
    let started = std::time::Instant::now();
    let out = env
        .upstream(
            &[
                "deploy",
                "--dry-run",
                "--skip-update-check",
                "--log-level",
                "debug",
            ],
            true,
        )
        .output()
        .unwrap();
    let upstream_secs = started.elapsed().as_secs_f64();
    let stdout = succeeded("deploy --dry-run", &out);
    let marker = "Dry run complete. View the built project at ";
    let at = stdout
        .find(marker)
        .unwrap_or_else(|| panic!("no dry-run summary:\n{stdout}"));
    let up_dir = PathBuf::from(stdout[at + marker.len()..].lines().next().unwrap().trim());
    let mut cleanup = Cleanup(vec![up_dir.clone()]);
    assert!(
        up_dir.starts_with(fixture("hello").join(".trigger/tmp")) && up_dir.is_dir(),
        "{}",
        up_dir.display()
    );
    // The unreachable jsonhero.io download must fail over to the fallback, not hang.
    assert!(
        upstream_secs < 120.0,
        "upstream dry run took {upstream_secs:.0}s"
    );

    // It logged in with the PAT, fetched the prod environment and its env vars, and nothing else.
    assert_eq!(
        env.requests_ok(),
        [
            "GET /api/v2/whoami".to_string(),
            format!("GET /api/v1/projects/{PROJECT}/prod"),
            format!("GET /api/v1/projects/{PROJECT}/envvars"),
        ]
    );
    // The env var served by the platform reached the build.
    assert!(
        stdout.contains("SERVER_ONLY: 'from-platform'"),
        "env vars not received:\n{stdout}"
    );

    let (ours_dir, _) = dry_run(&fixture("hello"), &[]);
    cleanup.0.push(ours_dir.clone());
    let up = read_json(&up_dir.join("build.json"));
    let ours = read_json(&ours_dir.join("build.json"));

    // Task files. (Upstream may also list dynamic-import targets outside the task dirs, see
    // README; hello has none, so the lists must be equal.)
    assert_eq!(task_entries(&ours), task_entries(&up), "task files differ");
    assert_eq!(
        task_entries(&ours),
        [
            "trigger/hello.ts",
            "trigger/lib/format.ts",
            "trigger/schema.ts"
        ]
    );
    // Externals with versions. (liftoff would add native packages, each with a note; hello has
    // none.) Upstream got the forced-externals fallback, as liftoff always does.
    assert_eq!(externals(&ours), externals(&up), "externals differ");
    assert!(externals(&up).contains_key("import-in-the-middle"));
    // The same sources, hashed per file.
    assert_eq!(source_hashes(&ours), source_hashes(&up), "sources differ");

    // The rest of build.json, minus what is allowed to differ:
    // * `contentHash`: opaque, computed differently (README "Differences from upstream");
    // * `sources`: compared above by hash (the zlib-compressed bytes differ);
    // * `otelImportHook`: upstream writes `{"include": []}` when no package is instrumented,
    //   liftoff leaves the optional field out; the workers treat both as "nothing to hook".
    let strip = |v: &Value| {
        let mut v = v.clone();
        let o = v.as_object_mut().unwrap();
        o.remove("contentHash");
        o.remove("sources");
        if o.get("otelImportHook") == Some(&serde_json::json!({ "include": [] })) {
            o.remove("otelImportHook");
        }
        v
    };
    assert_eq!(strip(&ours), strip(&up), "build.json differs");

    // The Containerfile, entry points normalised. (For hello the CLI lives in the project, so
    // the paths agree already; normalising keeps the check about the recipe, not the layout.)
    assert_eq!(
        normalised_containerfile(&ours_dir, &ours),
        normalised_containerfile(&up_dir, &up),
        "Containerfile differs"
    );
    drop(cleanup);
}
