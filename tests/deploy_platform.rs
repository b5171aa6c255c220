//! `liftoff deploy` against `liftoff-platform` (the local stand-in for the Trigger.dev deploy
//! API, with a real `SQLite` database) and the local registry: the whole handshake, atomic
//! promotion, failures reported to the platform, GitHub outputs, and the account commands.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::image::{cache_dir, mirrors_configured};
use common::{fixture, text};
use liftoff_platform::{Fault, Platform, PlatformConfig, Seed};

const PROJECT: &str = "proj_liftofffixturehello";

struct Env {
    platform: Platform,
    seed: Seed,
    home: tempfile::TempDir,
    namespace: String,
}

fn start() -> Env {
    let home = tempfile::tempdir().unwrap();
    let seed = common::platform::seed(PROJECT, &[("prod", "SERVER_ONLY", "from-platform")]);
    let mut config = PlatformConfig::new(home.path().join("platform.db"), seed.clone());
    config.registry_host = Some(std::env::var("LIFTOFF_TEST_REGISTRY").unwrap());
    let platform = Platform::start(config).unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    Env {
        platform,
        seed,
        home,
        namespace: format!("liftoff-test-{}-{nanos}", std::process::id()),
    }
}

impl Env {
    fn liftoff(&self, args: &[&str], extra_env: &[(&str, &Path)]) -> Output {
        mirrors_configured();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_liftoff"));
        cmd.args(args)
            .env("TRIGGER_ACCESS_TOKEN", &self.seed.personal_access_token)
            .env("TRIGGER_API_URL", self.platform.url())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("CI", "true")
            .env_remove("GITHUB_OUTPUT")
            .env_remove("GITHUB_ENV");
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn deploy(&self, extra: &[&str], extra_env: &[(&str, &Path)]) -> Output {
        self.deploy_from("node:21-bookworm-slim", extra, extra_env)
    }

    fn deploy_from(&self, base: &str, extra: &[&str], extra_env: &[(&str, &Path)]) -> Output {
        let project = fixture("hello");
        let cache = cache_dir();
        let mut args = vec![
            "deploy",
            project.to_str().unwrap(),
            "--base-image",
            base,
            "--cache-dir",
            cache.to_str().unwrap(),
            "--namespace",
            &self.namespace,
            "--json",
        ];
        args.extend(extra);
        self.liftoff(&args, extra_env)
    }
}

fn ok(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "liftoff failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn deploy_promote_and_skip_promotion() {
    let env = start();
    let outputs = env.home.path().join("github_output");
    let genv = env.home.path().join("github_env");
    std::fs::write(&outputs, "").unwrap();
    std::fs::write(&genv, "").unwrap();
    let out = env.deploy(&[], &[("GITHUB_OUTPUT", &outputs), ("GITHUB_ENV", &genv)]);
    let first = ok(&out);
    let stderr = text(&out.stderr);
    let version = first["version"].as_str().unwrap().to_string();
    assert!(
        stderr.contains(&format!("Successfully deployed version {version}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("Version {version} deployed with 2 detected tasks")),
        "{stderr}"
    );
    assert!(!stderr.contains(&env.seed.personal_access_token));

    let state = env.platform.state().unwrap();
    let d = state
        .deployment(first["deploymentId"].as_str().unwrap())
        .unwrap();
    assert_eq!(d.status, "DEPLOYED");
    assert!(d.self_hosted);
    let image_ref = d.image_reference.clone().unwrap();
    let registry = std::env::var("LIFTOFF_TEST_REGISTRY").unwrap();
    assert_eq!(
        image_ref,
        format!(
            "{registry}/{}/{PROJECT}:{version}.prod@{}",
            env.namespace,
            first["imageDigest"].as_str().unwrap()
        )
    );
    assert_eq!(
        state.current_version(PROJECT, "prod"),
        Some(version.as_str())
    );
    let worker = d.worker_id.clone().unwrap();
    let mut tasks: Vec<&str> = state
        .tasks_of(&worker)
        .iter()
        .map(|t| t.slug.as_str())
        .collect();
    tasks.sort_unstable();
    assert_eq!(tasks, ["hello-schema", "hello-world"]);

    // The pushed image is in the registry under the digest the platform got (and the tag).
    let by_digest = format!(
        "{registry}/{}/{PROJECT}@{}",
        env.namespace,
        first["imageDigest"].as_str().unwrap()
    );
    let by_tag = image_ref.split('@').next().unwrap().to_string();
    for reference in [&by_digest, &by_tag] {
        let inspect = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--raw"])
            .arg(format!("docker://{reference}"))
            .output()
            .unwrap();
        assert!(inspect.status.success(), "{}", text(&inspect.stderr));
    }
    // Its config carries the deployment's TRIGGER_* values.
    let config = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--config"])
        .arg(format!("docker://{by_digest}"))
        .output()
        .unwrap();
    let config_text = text(&config.stdout);
    assert!(
        config_text.contains(&format!("TRIGGER_DEPLOYMENT_VERSION={version}")),
        "{config_text}"
    );
    assert!(config_text.contains(&format!("TRIGGER_PROJECT_REF={PROJECT}")));

    let gh = std::fs::read_to_string(&outputs).unwrap();
    assert!(gh.contains("deploymentVersion<<ghadelimiter_"), "{gh}");
    assert!(gh.contains(&format!("\n{version}\n")), "{gh}");
    assert!(
        gh.contains("needsPromotion<<") && gh.contains("\nfalse\n"),
        "{gh}"
    );
    assert!(gh.contains(first["imageDigest"].as_str().unwrap()), "{gh}");
    assert!(gh.ends_with('\n'));
    let ge = std::fs::read_to_string(&genv).unwrap();
    assert!(ge.contains("TRIGGER_VERSION<<"), "{ge}");

    skip_promotion_then_promote(&env, &version);
}

/// `--skip-promotion`: deployed, not current; then an atomic promote.
fn skip_promotion_then_promote(env: &Env, version: &str) {
    let second = ok(&env.deploy(&["--skip-promotion"], &[]));
    let v2 = second["version"].as_str().unwrap().to_string();
    assert_ne!(v2, version);
    let state = env.platform.state().unwrap();
    assert_eq!(
        state
            .deployment(second["deploymentId"].as_str().unwrap())
            .unwrap()
            .status,
        "DEPLOYED"
    );
    assert_eq!(state.current_version(PROJECT, "prod"), Some(version));
    let hello = fixture("hello");
    let promoted = env.liftoff(&["promote", &v2, "--path", hello.to_str().unwrap()], &[]);
    assert!(promoted.status.success(), "{}", text(&promoted.stderr));
    assert!(text(&promoted.stderr).contains(&format!("Promoted version {v2}")));
    let state = env.platform.state().unwrap();
    assert_eq!(state.current_version(PROJECT, "prod"), Some(v2.as_str()));
    // Promoting an unknown version is an error with the server's message.
    let bad = env.liftoff(
        &["promote", "20000101.9", "--path", hello.to_str().unwrap()],
        &[],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("404"), "{}", text(&bad.stderr));
}

#[test]
fn a_finalize_error_marks_the_deployment_failed_and_nothing_is_promoted() {
    let env = start();
    env.platform.set_fault(Fault::FinalizeError {
        message: "Internal server error: registry unreachable".into(),
    });
    let out = env.deploy(&[], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Failed to deploy project"), "{stderr}");
    assert!(stderr.contains("registry unreachable"), "{stderr}");
    let state = env.platform.state().unwrap();
    let d = state.deployments.last().unwrap();
    // upstream leaves it DEPLOYING (it never calls fail on an SSE error); liftoff reports it.
    assert_eq!(d.status, "FAILED", "{d:?}");
    assert_eq!(d.error_data.as_ref().unwrap()["name"], "FinalizeError");
    assert_eq!(state.current_version(PROJECT, "prod"), None);
}

#[test]
fn a_build_failure_after_initialize_is_reported_to_the_platform() {
    let env = start();
    // The base image does not exist: the image build fails after the deployment exists.
    let out = env.deploy_from("127.0.0.1:5000/liftoff-test/missing:none", &[], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let state = env.platform.state().unwrap();
    let d = state.deployments.last().unwrap();
    assert_eq!(d.status, "FAILED");
    assert_eq!(d.error_data.as_ref().unwrap()["name"], "BuildError");
    assert!(stderr.contains("Error building image"), "{stderr}");
}

#[test]
fn login_whoami_list_profiles_logout() {
    let env = start();
    let login = env.liftoff(&["login", "--profile", "ci"], &[]);
    assert!(login.status.success(), "{}", text(&login.stderr));
    let file: PathBuf = env.home.path().join("config/trigger/default.json");
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(stored["ci"]["apiUrl"], env.platform.url().as_str());
    assert_eq!(
        stored["ci"]["accessToken"],
        env.seed.personal_access_token.as_str()
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // whoami reads the stored profile (not TRIGGER_ACCESS_TOKEN), as upstream.
    let mut who = Command::new(env!("CARGO_BIN_EXE_liftoff"));
    who.args(["whoami", "--profile", "ci"])
        .env("XDG_CONFIG_HOME", env.home.path().join("config"))
        .env_remove("TRIGGER_ACCESS_TOKEN")
        .env_remove("TRIGGER_API_URL");
    let who = who.output().unwrap();
    assert!(who.status.success(), "{}", text(&who.stderr));
    assert!(text(&who.stdout).contains(&format!("User ID: {}", env.seed.user_id)));
    assert!(!text(&who.stdout).contains(&env.seed.personal_access_token));

    let list = env.liftoff(&["list-profiles"], &[]);
    assert!(text(&list.stdout).contains(&format!("ci - {}", env.platform.url())));
    let logout = env.liftoff(&["logout", "--profile", "ci"], &[]);
    assert!(text(&logout.stdout).contains("Logged out of Trigger.dev [ci]"));
    let again = env.liftoff(&["logout", "--profile", "ci"], &[]);
    assert!(text(&again.stdout).contains("You are already logged out [ci]"));

    // A token that is not a personal access token is refused with upstream's message.
    let mut bad = Command::new(env!("CARGO_BIN_EXE_liftoff"));
    bad.args(["login"])
        .env("XDG_CONFIG_HOME", env.home.path().join("config"))
        .env("TRIGGER_ACCESS_TOKEN", "tr_prod_notapat")
        .env("TRIGGER_API_URL", env.platform.url());
    let bad = bad.output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("is not a Personal Access Token"));
}

#[test]
fn staging_has_its_own_versions_and_current() {
    let env = start();
    let prod = ok(&env.deploy(&[], &[]));
    let staging = ok(&env.deploy(&["--env", "staging"], &[]));
    let (pv, sv) = (
        prod["version"].as_str().unwrap(),
        staging["version"].as_str().unwrap(),
    );
    // Each environment numbers its own deployments (both are the first of the day).
    assert_eq!(pv, sv);
    let state = env.platform.state().unwrap();
    let d = state
        .deployment(staging["deploymentId"].as_str().unwrap())
        .unwrap();
    assert_eq!(d.environment_slug, "stg");
    assert!(
        d.image_reference
            .as_deref()
            .unwrap()
            .contains(&format!(":{sv}.stg@sha256:")),
        "{d:?}"
    );
    assert_eq!(state.current_version(PROJECT, "prod"), Some(pv));
    assert_eq!(state.current_version(PROJECT, "stg"), Some(sv));
}

#[test]
fn concurrent_deploys_get_distinct_versions_and_concurrent_promotes_leave_one_current() {
    let env = std::sync::Arc::new(start());
    // Warm the image caches once so the concurrent runs race on the platform, not on the build.
    let warm = ok(&env.deploy(&["--skip-promotion"], &[]));
    let mut versions = vec![warm["version"].as_str().unwrap().to_string()];
    let handles: Vec<_> = (0..7)
        .map(|_| {
            let env = std::sync::Arc::clone(&env);
            std::thread::spawn(move || env.deploy(&["--skip-promotion"], &[]))
        })
        .collect();
    for h in handles {
        let out = h.join().unwrap();
        versions.push(ok(&out)["version"].as_str().unwrap().to_string());
    }
    let mut unique = versions.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 8, "{versions:?}");
    let state = env.platform.state().unwrap();
    assert_eq!(state.deployments.len(), 8);
    assert!(state.deployments.iter().all(|d| d.status == "DEPLOYED"));
    assert_eq!(state.current_version(PROJECT, "prod"), None);

    // Promote all eight at once: exactly one ends up current, and it is one of them.
    let hello = fixture("hello");
    let handles: Vec<_> = versions
        .iter()
        .map(|v| {
            let env = std::sync::Arc::clone(&env);
            let (v, hello) = (v.clone(), hello.clone());
            std::thread::spawn(move || {
                env.liftoff(&["promote", &v, "--path", hello.to_str().unwrap()], &[])
            })
        })
        .collect();
    let mut promoted = 0;
    for h in handles {
        let out = h.join().unwrap();
        let err = text(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
        if out.status.success() {
            promoted += 1;
        } else {
            // Refused as older than the current one: a clean error from the platform.
            assert!(err.contains("400"), "{err}");
        }
    }
    assert!(promoted >= 1);
    let state = env.platform.state().unwrap();
    let current = state.current_version(PROJECT, "prod").unwrap().to_string();
    // Older versions are refused once a newer one is current, so the newest always wins
    // (build numbers compared as numbers: .10 is newer than .9).
    let key = |v: &String| {
        let (date, n) = v.split_once('.').unwrap();
        (date.to_string(), n.parse::<u32>().unwrap())
    };
    let newest = versions.iter().max_by_key(|v| key(v)).unwrap();
    assert_eq!(&current, newest, "{versions:?}");
}
