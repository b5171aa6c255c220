//! `liftoff deploy` when things go wrong, against `liftoff-platform` (the local stand-in for the
//! Trigger.dev deploy API) and the local registries: the platform dying mid-finalize, a registry
//! that refuses the push, bad tokens, tolerant/strict response shapes, and secrets that must not
//! leak into logs, GitHub files or the pushed image.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use liftoff_platform::{Fault, Platform, PlatformConfig, Seed, State};

const HELLO: &str = "proj_liftofffixturehello";
const CUSTOM_EXT: &str = "proj_liftofffixturecustomext";

// --- helpers (copied in spirit from deploy_platform.rs / common) ---------------------------

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    let dir = repo().join("fixtures").join(name);
    assert!(
        dir.join("node_modules").is_dir(),
        "fixture {name} has no node_modules: run scripts/install-test-deps"
    );
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn cache_dir() -> PathBuf {
    let root = std::env::var_os("LIFTOFF_TEST_CACHE")
        .map_or_else(|| PathBuf::from("/var/cache/liftoff-test"), PathBuf::from);
    root.join("liftoff-cache")
}

fn test_registry() -> String {
    std::env::var("LIFTOFF_TEST_REGISTRY")
        .expect("LIFTOFF_TEST_REGISTRY is not set: source scripts/test-env/env.sh")
}

struct Env {
    platform: Option<Platform>,
    seed: Seed,
    home: tempfile::TempDir,
    namespace: String,
}

fn seed_for(project_ref: &str) -> Seed {
    common::platform::seed(project_ref, &[("prod", "SERVER_ONLY", "from-platform")])
}

fn config(db: &Path, seed: &Seed) -> PlatformConfig {
    let mut config = PlatformConfig::new(db, seed.clone());
    config.registry_host = Some(test_registry());
    config
}

fn start(project_ref: &str) -> Env {
    let home = tempfile::tempdir().unwrap();
    let seed = seed_for(project_ref);
    let platform = Platform::start(config(&home.path().join("platform.db"), &seed)).unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    Env {
        platform: Some(platform),
        seed,
        home,
        namespace: format!("liftoff-faults-{}-{nanos}", std::process::id()),
    }
}

impl Env {
    fn platform(&self) -> &Platform {
        self.platform.as_ref().expect("platform running")
    }

    fn db(&self) -> PathBuf {
        self.home.path().join("platform.db")
    }

    fn state(&self) -> State {
        self.platform().state().unwrap()
    }

    /// The `liftoff` command with the platform's URL, the seeded PAT, an isolated config home
    /// and no registry credentials.
    fn command(&self, args: &[&str]) -> Command {
        assert!(
            std::env::var_os("LIFTOFF_REGISTRY_MIRRORS").is_some(),
            "LIFTOFF_REGISTRY_MIRRORS is not set: source scripts/test-env/env.sh"
        );
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_liftoff"));
        cmd.args(args)
            .env("TRIGGER_ACCESS_TOKEN", &self.seed.personal_access_token)
            .env("TRIGGER_API_URL", self.platform().url())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("DOCKER_CONFIG", self.home.path().join("docker"))
            .env("REGISTRY_AUTH_FILE", self.home.path().join("auth.json"))
            .env("CI", "true")
            .env_remove("TRIGGER_LOG_LEVEL")
            .env_remove("GITHUB_OUTPUT")
            .env_remove("GITHUB_ENV");
        cmd
    }

    fn deploy_args(&self, fixture_name: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "deploy".into(),
            fixture(fixture_name).display().to_string(),
            "--base-image".into(),
            "node:21-bookworm-slim".into(),
            "--cache-dir".into(),
            cache_dir().display().to_string(),
            "--namespace".into(),
            self.namespace.clone(),
            "--json".into(),
        ];
        args.extend(extra.iter().map(ToString::to_string));
        args
    }

    fn deploy_command(&self, fixture_name: &str, extra: &[&str]) -> Command {
        let args = self.deploy_args(fixture_name, extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.command(&args)
    }

    fn deploy(&self, extra: &[&str]) -> Output {
        self.deploy_command("hello", extra).output().unwrap()
    }
}

/// Exit code 1, no panic; returns stderr.
fn fails(out: &Output) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{stderr}",
        text(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// Polls `cond` every 50 ms for up to `limit`.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Waits for the child with a deadline (kills it and panics when it is exceeded).
fn wait_child(mut child: std::process::Child, limit: Duration) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "liftoff did not exit within {limit:?}:\n{}",
                text(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A plain HTTP/1.1 GET; returns (status, body).
fn http_get(base: &str, path: &str, bearer: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {bearer}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A TCP forwarder in front of the platform, so that the platform can "die" the way a killed
/// process does from the client's side: every connection closed at once and the port refusing
/// connections (an in-process `Platform::stop` drains and leaves kept-alive connections open).
struct Proxy {
    addr: std::net::SocketAddr,
    dead: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    fn start(bind: std::net::SocketAddr, target: std::net::SocketAddr) -> Proxy {
        let listener = TcpListener::bind(bind).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let dead = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let accept = {
            let dead = dead.clone();
            let conns = conns.clone();
            std::thread::spawn(move || {
                while !dead.load(Ordering::SeqCst) {
                    let Ok((client, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    client.set_nonblocking(false).unwrap();
                    let Ok(server) = TcpStream::connect(target) else {
                        continue;
                    };
                    let mut all = conns.lock().unwrap();
                    all.push(client.try_clone().unwrap());
                    all.push(server.try_clone().unwrap());
                    for (mut from, mut to) in [
                        (client.try_clone().unwrap(), server.try_clone().unwrap()),
                        (server, client),
                    ] {
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut from, &mut to);
                            let _ = to.shutdown(std::net::Shutdown::Write);
                        });
                    }
                }
            })
        };
        Proxy {
            addr,
            dead,
            conns,
            accept: Some(accept),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Closes the port and every open connection.
    fn kill(mut self) {
        self.dead.store(true, Ordering::SeqCst);
        self.accept.take().unwrap().join().unwrap();
        for conn in self.conns.lock().unwrap().drain(..) {
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Deploys hello through a proxy, with the finalize stream hanging; returns once the platform
/// holds the open finalize request.
fn deploy_until_finalize_hangs(env: &Env) -> (Proxy, std::process::Child, String) {
    let proxy = Proxy::start(([127, 0, 0, 1], 0).into(), env.platform().addr());
    env.platform().set_app_origin(Some(proxy.url()));
    env.platform().set_fault(Fault::FinalizeHang);
    let child = env
        .deploy_command("hello", &[])
        .env("TRIGGER_API_URL", proxy.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let saw_finalize = wait_for(Duration::from_mins(5), || {
        env.platform()
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/finalize"))
    });
    assert!(saw_finalize, "liftoff never reached finalize");
    assert_eq!(env.platform().pending_fault(), Fault::None);
    let deployment_id = env.state().deployments.last().unwrap().id.clone();
    (proxy, child, deployment_id)
}

// --- 1. the platform dies during finalize ---------------------------------------------------

/// The finalize stream hangs and the platform is stopped under it; a platform restarted on the
/// same database and port while liftoff reports the failure gets the `fail` call.
#[test]
fn platform_killed_during_finalize() {
    let mut env = start(HELLO);
    let (proxy, child, deployment_id) = deploy_until_finalize_hangs(&env);
    let proxy_addr = proxy.addr;
    proxy.kill();
    env.platform.take().unwrap().stop();

    // Back on the same database file (and, through the proxy, the same address) while liftoff
    // retries its failure report: the report reaches the new instance.
    env.platform = Some(Platform::start(config(&env.db(), &env.seed)).unwrap());
    env.platform()
        .set_app_origin(Some(format!("http://{proxy_addr}")));
    let proxy = Proxy::start(proxy_addr, env.platform().addr());

    let (out, stderr) = finalize_cut_short(child);
    assert!(stderr.contains("marked failed on the platform"), "{stderr}");
    assert!(!stderr.contains(&env.seed.personal_access_token));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));

    // The restarted instance is the one that got the report.
    let seen: Vec<String> = env
        .platform()
        .requests()
        .iter()
        .map(|r| format!("{} {} {}", r.method, r.path, r.status))
        .collect();
    let fail_call = format!("POST /api/v1/deployments/{deployment_id}/fail 2");
    assert!(seen.iter().any(|r| r.starts_with(&fail_call)), "{seen:?}");
    let state = env.state();
    let d = state.deployment(&deployment_id).unwrap();
    assert_eq!(d.status, "FAILED", "{d:?}");
    assert_eq!(d.error_data.as_ref().unwrap()["name"], "FinalizeError");
    assert!(d.image_reference.is_none(), "{d:?}");
    assert_eq!(state.current_version(HELLO, "prod"), None);
    let env_state = state.environment(HELLO, "prod").unwrap();
    assert_eq!(env_state.current_deployment_id, None);
    proxy.kill();
}

/// Waits for the deploy whose finalize stream was cut; it must fail saying so.
fn finalize_cut_short(child: std::process::Child) -> (Output, String) {
    let out = wait_child(child, Duration::from_secs(90));
    let stderr = fails(&out);
    assert!(stderr.contains("Failed to deploy project"), "{stderr}");
    assert!(
        stderr.contains("ended before the server reported the outcome"),
        "{stderr}"
    );
    (out, stderr)
}

/// Same, but the platform stays down until liftoff gives up: liftoff says it could not report
/// the failure; the restarted platform still has the deployment unfinished (the worker was
/// registered, so it is `DEPLOYING`, which the platform's deploy timeout — `BUILDING` only, as
/// upstream's — never ends) and nothing promoted, even long after.
#[test]
fn platform_killed_during_finalize_and_down_while_liftoff_reports() {
    let mut env = start(HELLO);
    let (proxy, child, deployment_id) = deploy_until_finalize_hangs(&env);
    proxy.kill();
    env.platform.take().unwrap().stop();

    let (_out, stderr) = finalize_cut_short(child);
    assert!(
        stderr.contains("left as the platform reports it (unknown)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("reporting the failure failed too:"),
        "{stderr}"
    );
    assert!(!stderr.contains(&env.seed.personal_access_token));

    env.platform = Some(Platform::start(config(&env.db(), &env.seed)).unwrap());
    let check = |env: &Env| {
        let state = env.state();
        let d = state.deployment(&deployment_id).unwrap().clone();
        assert_ne!(d.status, "DEPLOYED", "{d:?}");
        assert!(d.image_reference.is_none(), "{d:?}");
        assert_eq!(state.current_version(HELLO, "prod"), None);
        assert_eq!(
            state
                .environment(HELLO, "prod")
                .unwrap()
                .current_deployment_id,
            None
        );
        d.status
    };
    assert_eq!(check(&env), "DEPLOYING");
    env.platform().set_deploy_timeout(Duration::from_mins(1));
    env.platform().advance_clock(Duration::from_hours(1));
    let status = check(&env);
    assert!(
        ["DEPLOYING", "TIMED_OUT", "FAILED"].contains(&status.as_str()),
        "{status}"
    );
}

/// The finalize stream closes without `complete`: reported as a `FinalizeError`, not promoted.
#[test]
fn finalize_stream_closed_without_outcome() {
    let env = start(HELLO);
    env.platform().set_fault(Fault::FinalizeDisconnect);
    let started = Instant::now();
    let out = env.deploy(&[]);
    let stderr = fails(&out);
    // Not the 60 s idle timeout: the closed stream is noticed at once.
    assert!(started.elapsed() < Duration::from_secs(55), "{stderr}");
    assert!(
        stderr.contains("ended before the server reported the outcome"),
        "{stderr}"
    );
    assert!(stderr.contains("marked failed on the platform"), "{stderr}");
    assert_last_failed(
        &env.state(),
        "FinalizeError",
        "ended before the server reported the outcome",
    );
}

/// The last deployment failed with `name`, its message containing `message`, and nothing is
/// current.
fn assert_last_failed(state: &State, name: &str, message: &str) {
    let d = state.deployments.last().unwrap();
    assert_eq!(d.status, "FAILED", "{d:?}");
    let error = d.error_data.as_ref().unwrap();
    assert_eq!(error["name"], name);
    assert!(
        error["message"].as_str().unwrap().contains(message),
        "{error}"
    );
    assert_eq!(state.current_version(HELLO, "prod"), None);
}

// --- 2. the registry refuses the push ---------------------------------------------------------

#[test]
fn registry_push_refused_after_initialize() {
    let env = start(HELLO);
    let auth_registry =
        std::env::var("LIFTOFF_TEST_AUTH_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5001".into());
    let out = env.deploy(&["--registry", &auth_registry]);
    let stderr = fails(&out);
    assert!(stderr.contains("Error pushing image"), "{stderr}");
    assert!(stderr.contains(&auth_registry), "{stderr}");
    assert!(stderr.contains("marked failed on the platform"), "{stderr}");
    let state = env.state();
    let d = state.deployments.last().unwrap();
    assert_eq!(d.registry_host.as_deref(), Some(auth_registry.as_str()));
    assert_last_failed(&state, "BuildError", "Error pushing image");
    // Never finalized.
    assert!(
        !env.platform()
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/finalize"))
    );
}

// --- 4. bad tokens ----------------------------------------------------------------------------

#[test]
fn unknown_pat_and_environment_key_are_refused() {
    let env = start(HELLO);
    let hello = fixture("hello");
    let hello = hello.to_str().unwrap();

    // A well-formed PAT the platform does not know.
    let unknown = format!("tr_pat_{}", "q".repeat(40));
    let out = env
        .command(&["deploy", hello, "--skip-update-check"])
        .env("TRIGGER_ACCESS_TOKEN", &unknown)
        .output()
        .unwrap();
    let stderr = fails(&out);
    assert!(stderr.contains("You must login first"), "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    assert!(
        stderr.contains("Invalid or Missing Access Token"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&unknown),
        "the token was printed:\n{stderr}"
    );
    assert!(!text(&out.stdout).contains(&unknown));
    assert!(env.state().deployments.is_empty());

    // An environment secret key is not a PAT: refused before any request.
    let before = env.platform().requests().len();
    let out = env
        .command(&["deploy", hello])
        .env("TRIGGER_ACCESS_TOKEN", common::platform::PROD_KEY)
        .output()
        .unwrap();
    let stderr = fails(&out);
    assert!(
        stderr.contains("is not a Personal Access Token, they start with 'tr_pat_'"),
        "{stderr}"
    );
    assert!(!stderr.contains(common::platform::PROD_KEY), "{stderr}");
    assert_eq!(env.platform().requests().len(), before);
    assert!(env.state().deployments.is_empty());

    // The platform itself refuses an environment key on the PAT route.
    let (status, body) = http_get(
        &env.platform().url(),
        "/api/v2/whoami",
        common::platform::PROD_KEY,
    );
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("Invalid or Missing Access Token"), "{body}");
    let (status, body) = http_get(
        &env.platform().url(),
        "/api/v2/whoami",
        &env.seed.personal_access_token,
    );
    assert_eq!(status, 200, "{body}");
}

// --- 5. tolerant and strict response shapes -----------------------------------------------------

#[test]
fn whoami_shapes_extra_fields_tolerated_missing_fields_refused() {
    let env = start(HELLO);
    let hello = fixture("hello");
    let hello = hello.to_str().unwrap();

    // An unknown field is tolerated: the deploy goes on to the project environment (an unknown
    // project ref stops it there, cheaply).
    env.platform().set_fault(Fault::FailNextRequest {
        path_contains: "/api/v2/whoami".into(),
        status: 200,
        body: r#"{"userId":"u","email":"e@example.com","dashboardUrl":"http://x","extra":1}"#
            .into(),
    });
    let out = env
        .command(&[
            "deploy",
            hello,
            "--project-ref",
            "proj_doesnotexistatall",
            "--skip-update-check",
        ])
        .output()
        .unwrap();
    let stderr = fails(&out);
    assert_eq!(env.platform().pending_fault(), Fault::None);
    assert!(!stderr.contains("You must login first"), "{stderr}");
    assert!(
        stderr.contains("Failed to initialize prod environment"),
        "{stderr}"
    );
    assert!(
        env.platform()
            .requests()
            .iter()
            .any(|r| r.path == "/api/v1/projects/proj_doesnotexistatall/prod"),
        "{:?}",
        env.platform().requests()
    );

    // A missing required field is refused, naming it.
    env.platform().set_fault(Fault::FailNextRequest {
        path_contains: "/api/v2/whoami".into(),
        status: 200,
        body: r#"{"userId":"u","dashboardUrl":"http://x"}"#.into(),
    });
    let before = env.platform().requests().len();
    let out = env
        .command(&["deploy", hello, "--skip-update-check"])
        .output()
        .unwrap();
    let stderr = fails(&out);
    assert!(stderr.contains("`email`"), "{stderr}");
    assert!(stderr.contains("unexpected response"), "{stderr}");
    // Nothing after the whoami.
    let after: Vec<String> = env.platform().requests()[before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(after, ["/api/v2/whoami"]);
    assert!(env.state().deployments.is_empty());
}

// --- 6. secrets stay secret ------------------------------------------------------------------

/// Every file under `dir` (absolute paths).
fn files(dir: &Path) -> Vec<PathBuf> {
    common::tree(dir).into_iter().map(|p| dir.join(p)).collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// A blob's bytes, gunzipped when it is gzip (layers); tar content is searched as is.
fn blob_bytes(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap();
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut plain)
            .unwrap();
        plain
    } else if raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        panic!("zstd layer {}: not expected", path.display());
    } else {
        raw
    }
}

#[test]
fn secrets_do_not_leak_into_logs_outputs_or_the_image() {
    let env = start(CUSTOM_EXT);
    let outputs = env.home.path().join("github_output");
    let genv = env.home.path().join("github_env");
    std::fs::write(&outputs, "").unwrap();
    std::fs::write(&genv, "").unwrap();
    let out = env
        .deploy_command("custom-ext", &["--log-level", "debug"])
        .env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_ENV", &genv)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(
        out.status.success(),
        "liftoff failed:\n{}\n{stderr}",
        text(&out.stdout)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        stderr.contains("Successfully synced 2 env vars with the server"),
        "{stderr}"
    );

    // The platform got the synced values (blocked and TRIGGER_* names dropped).
    let state = env.state();
    let vars = &state.environment(CUSTOM_EXT, "prod").unwrap().env_vars;
    assert_eq!(
        vars.get("SECRET_API_KEY").map(String::as_str),
        Some("sk_live_not_a_real_secret_1234")
    );
    assert_eq!(
        vars.get("SECOND_SECRET").map(String::as_str),
        Some("s3cr3t-value-5678")
    );
    assert!(!vars.contains_key("TRIGGER_SECRET_KEY"), "{vars:?}");
    assert!(!vars.contains_key("PATH"), "{vars:?}");
    let d = state
        .deployment(result["deploymentId"].as_str().unwrap())
        .unwrap();
    assert_eq!(d.status, "DEPLOYED");

    let secrets = [
        env.seed.personal_access_token.as_str(),
        common::platform::PROD_KEY,
        common::platform::STAGING_KEY,
        "sk_live_not_a_real_secret_1234",
        "s3cr3t-value-5678",
    ];
    let gh_output = std::fs::read(&outputs).unwrap();
    let gh_env = std::fs::read(&genv).unwrap();
    assert!(!gh_output.is_empty() && !gh_env.is_empty());
    for secret in secrets {
        for (what, bytes) in [
            ("stdout", &out.stdout),
            ("stderr", &out.stderr),
            ("GITHUB_OUTPUT", &gh_output),
            ("GITHUB_ENV", &gh_env),
        ] {
            assert!(!contains(bytes, secret), "{secret} in {what}");
        }
    }

    // Nor in any blob of the image that was pushed (the OCI layout in the build dir).
    let build_dir = PathBuf::from(result["buildDir"].as_str().unwrap());
    let blobs = files(&build_dir.join("image/blobs"));
    assert!(blobs.len() >= 3, "{blobs:?}");
    let digest = result["imageDigest"].as_str().unwrap().replace(':', "/");
    assert!(
        blobs.iter().any(|b| b.ends_with(&digest)),
        "the pushed manifest {digest} is not in the layout"
    );
    let mut with_project_ref = 0;
    for blob in &blobs {
        let bytes = blob_bytes(blob);
        for secret in secrets {
            assert!(!contains(&bytes, secret), "{secret} in {}", blob.display());
        }
        if contains(&bytes, CUSTOM_EXT) {
            with_project_ref += 1;
        }
    }
    // The search does see into the image: the project ref is in its config (TRIGGER_PROJECT_REF)
    // and in the app layer (the bundled config).
    assert!(with_project_ref >= 2, "{with_project_ref}");
}
