//! `liftoff doctor`: every check green against the local registries of `scripts/test-env` and an
//! in-process `liftoff-platform`, then each check failing on purpose with its hint.

mod common;

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Output};

use common::{fixture, text};
use liftoff_platform::{Platform, PlatformConfig, Seed};
use serde_json::Value;

const PROJECT: &str = "proj_liftofffixturehello";

/// A home for profiles and the cache, so nothing of the developer's machine leaks in.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `liftoff doctor <args>` with `env` on top of a clean environment (no token, no registry
    /// credentials, profiles and cache in this home).
    fn command(&self, args: &[&str], env: &[(&str, &OsStr)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_liftoff"));
        cmd.arg("doctor")
            .args(args)
            .env("LIFTOFF_CACHE_DIR", self.dir.path().join("cache"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("CI", "true")
            .env_remove("TRIGGER_ACCESS_TOKEN")
            .env_remove("TRIGGER_API_URL")
            .env_remove("TRIGGER_LOG_LEVEL")
            .env_remove("LIFTOFF_REGISTRY_USERNAME")
            .env_remove("LIFTOFF_REGISTRY_PASSWORD");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    fn run(&self, args: &[&str], env: &[(&str, &OsStr)]) -> Output {
        self.command(args, env).output().unwrap()
    }

    /// `--json`, returning the exit code and the document.
    fn json(&self, args: &[&str], env: &[(&str, &OsStr)]) -> (Option<i32>, Value) {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all, env);
        let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "--json output is not JSON ({e}):\n{}\n{}",
                text(&out.stdout),
                text(&out.stderr)
            )
        });
        (out.status.code(), doc)
    }
}

fn check<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {doc:#}"))
}

/// Exit 1, `name` failed with a hint containing `hint`, and `ok` is false.
fn assert_fails(result: &(Option<i32>, Value), name: &str, hint: &str) {
    let (code, doc) = result;
    assert_eq!(*code, Some(1), "{doc:#}");
    assert_eq!(doc["ok"], false, "{doc:#}");
    let c = check(doc, name);
    assert_eq!(c["status"], "fail", "{doc:#}");
    let got = c["hint"].as_str().unwrap_or_default();
    assert!(got.contains(hint), "{name} hint {got:?} lacks {hint:?}");
    assert!(!got.contains('\n'), "the hint is one line: {got:?}");
}

fn registry() -> String {
    std::env::var("LIFTOFF_TEST_REGISTRY").expect("LIFTOFF_TEST_REGISTRY (scripts/test-env)")
}

fn start_platform(home: &Home) -> (Platform, Seed) {
    let seed = common::platform::seed(PROJECT, &[]);
    let config = PlatformConfig::new(home.dir.path().join("platform.db"), seed.clone());
    (Platform::start(config).unwrap(), seed)
}

fn project_arg(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

#[test]
fn all_green_with_the_registry_and_the_platform() {
    let home = Home::new();
    let (platform, seed) = start_platform(&home);
    let project = fixture("hello");
    let url = platform.url();
    let env: [(&str, &OsStr); 2] = [
        (
            "TRIGGER_ACCESS_TOKEN",
            OsStr::new(&seed.personal_access_token),
        ),
        ("TRIGGER_API_URL", OsStr::new(&url)),
    ];
    let registry = registry();
    let args = [project_arg(&project), "--registry", &registry];

    let out = home.run(&args, &env);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for name in [
        "config", "versions", "node", "sandbox", "cache", "registry", "platform",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("ok ") && l.contains(&format!(" {name} "))),
            "no ok line for {name}:\n{stdout}"
        );
    }
    assert!(
        !stdout.contains("FAIL") && !stdout.contains("hint:"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(&seed.personal_access_token)
            && !stderr.contains(&seed.personal_access_token),
        "the token is never printed"
    );

    let (code, doc) = home.json(&args, &env);
    assert_eq!(code, Some(0), "{doc:#}");
    assert_eq!(doc["ok"], true);
    let checks = doc["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 7, "{doc:#}");
    for c in checks {
        assert_eq!(c["status"], "ok", "{doc:#}");
        assert!(c["hint"].is_null(), "{doc:#}");
        assert!(
            c["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{doc:#}"
        );
    }
    assert!(
        check(&doc, "platform")["detail"]
            .as_str()
            .unwrap()
            .contains(&url),
        "{doc:#}"
    );
}

#[test]
fn skipped_checks_do_not_fail() {
    let home = Home::new();
    let project = fixture("hello");
    let (code, doc) = home.json(&[project_arg(&project)], &[]);
    assert_eq!(code, Some(0), "{doc:#}");
    assert_eq!(check(&doc, "registry")["status"], "skipped");
    assert_eq!(check(&doc, "platform")["status"], "skipped");
    assert!(
        check(&doc, "platform")["detail"]
            .as_str()
            .unwrap()
            .contains("no TRIGGER_ACCESS_TOKEN"),
        "{doc:#}"
    );
    // An explicit API URL without a token is a failure, not a skip.
    let result = home.json(
        &[project_arg(&project), "--api-url", "http://127.0.0.1:1"],
        &[],
    );
    assert_fails(&result, "platform", "liftoff login");
}

#[test]
fn a_bad_token_fails_the_platform_check() {
    let home = Home::new();
    let (platform, _seed) = start_platform(&home);
    let project = fixture("hello");
    let url = platform.url();
    let token = format!("tr_pat_{}", "x".repeat(40));
    let result = home.json(
        &[project_arg(&project)],
        &[
            ("TRIGGER_ACCESS_TOKEN", OsStr::new(&token)),
            ("TRIGGER_API_URL", OsStr::new(&url)),
        ],
    );
    assert_fails(&result, "platform", "liftoff login");
    let detail = check(&result.1, "platform")["detail"].as_str().unwrap();
    assert!(detail.contains("rejected the token"), "{detail}");
    assert!(!detail.contains(&token), "{detail}");
    for name in ["config", "versions", "node", "sandbox", "cache"] {
        assert_eq!(check(&result.1, name)["status"], "ok", "{:#}", result.1);
    }
}

#[test]
fn a_registry_that_is_down_fails_the_registry_check() {
    let home = Home::new();
    let project = fixture("hello");
    let result = home.json(&[project_arg(&project), "--registry", "127.0.0.1:1"], &[]);
    assert_fails(
        &result,
        "registry",
        "check that a registry runs at 127.0.0.1:1",
    );
    let detail = check(&result.1, "registry")["detail"].as_str().unwrap();
    assert!(detail.contains("could not reach 127.0.0.1:1"), "{detail}");
}

#[test]
fn registry_credentials_are_checked() {
    let home = Home::new();
    let project = fixture("hello");
    let auth = std::env::var("LIFTOFF_TEST_AUTH_REGISTRY").expect("LIFTOFF_TEST_AUTH_REGISTRY");
    let user = std::env::var("LIFTOFF_TEST_AUTH_USERNAME").unwrap();
    let password = std::env::var("LIFTOFF_TEST_AUTH_PASSWORD").unwrap();
    let docker_config = home.dir.path().join("docker");
    let args = [project_arg(&project), "--registry", &auth];

    let (code, doc) = home.json(
        &args,
        &[
            ("LIFTOFF_REGISTRY_USERNAME", OsStr::new(&user)),
            ("LIFTOFF_REGISTRY_PASSWORD", OsStr::new(&password)),
            ("DOCKER_CONFIG", docker_config.as_os_str()),
        ],
    );
    assert_eq!(code, Some(0), "{doc:#}");
    assert!(
        check(&doc, "registry")["detail"]
            .as_str()
            .unwrap()
            .contains("--registry-username/--registry-password are accepted"),
        "{doc:#}"
    );

    let wrong = "not-the-password";
    let result = home.json(
        &args,
        &[
            ("LIFTOFF_REGISTRY_USERNAME", OsStr::new(&user)),
            ("LIFTOFF_REGISTRY_PASSWORD", OsStr::new(wrong)),
            ("DOCKER_CONFIG", docker_config.as_os_str()),
        ],
    );
    assert_fails(&result, "registry", "were rejected");
    assert!(!result.1.to_string().contains(wrong), "{:#}", result.1);

    // No credentials at all.
    let result = home.json(&args, &[("DOCKER_CONFIG", docker_config.as_os_str())]);
    assert_fails(&result, "registry", "No credentials for");
}

#[test]
fn no_sandbox_fails_the_sandbox_check() {
    // The real thing: user namespaces disabled (inside a user namespace, as in tests/image.rs).
    let home = Home::new();
    let project = fixture("hello");
    let doctor = home.command(&[project_arg(&project), "--json"], &[]);
    let mut script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces && exec {}",
        env!("CARGO_BIN_EXE_liftoff")
    );
    for arg in doctor.get_args() {
        let _ = write!(script, " '{}'", arg.to_str().unwrap());
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["--user", "--map-root-user", "sh", "-c", &script]);
    for (k, v) in doctor.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd.output().unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)));
    assert_fails(
        &(out.status.code(), doc.clone()),
        "sandbox",
        "user namespaces",
    );
    let detail = check(&doc, "sandbox")["detail"].as_str().unwrap();
    assert!(
        detail.contains("cannot run build steps on this machine"),
        "{detail}"
    );
    assert_eq!(check(&doc, "config")["status"], "ok", "{doc:#}");
}

#[test]
fn missing_node_fails_the_node_check() {
    // liftoff itself is started by absolute path and needs nothing from PATH for these checks.
    let home = Home::new();
    let project = fixture("hello");
    let empty = tempfile::tempdir().unwrap();
    let result = home.json(
        &[project_arg(&project)],
        &[("PATH", empty.path().as_os_str())],
    );
    assert_fails(&result, "node", "install Node.js 18 or newer");
    assert_eq!(
        check(&result.1, "sandbox")["status"],
        "ok",
        "{:#}",
        result.1
    );
}

#[test]
fn a_broken_config_fails_the_config_check() {
    let home = Home::new();
    let project = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("package.json"), r#"{"name":"broken"}"#).unwrap();
    std::fs::write(
        project.path().join("trigger.config.ts"),
        "export default defineConfig({ project: \"proj_x\",\n",
    )
    .unwrap();
    let result = home.json(&[project_arg(project.path())], &[]);
    assert_fails(&result, "config", "syntax error");

    // Human output: FAIL and the hint on the next line.
    let out = home.run(&[project_arg(project.path())], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("FAIL config"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        lines[at + 1].trim_start().starts_with("hint: ") && lines[at + 1].contains("syntax error"),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).contains("checks failed"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn mismatched_versions_fail_the_versions_check() {
    let home = Home::new();
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("package.json"),
        r#"{"dependencies":{"@trigger.dev/sdk":"3.3.0"},"devDependencies":{"trigger.dev":"3.3.17"}}"#,
    )
    .unwrap();
    let installed = project.path().join("node_modules/trigger.dev");
    std::fs::create_dir_all(&installed).unwrap();
    std::fs::write(
        installed.join("package.json"),
        r#"{"name":"trigger.dev","version":"3.3.17"}"#,
    )
    .unwrap();
    let result = home.json(&[project_arg(project.path())], &[]);
    assert_fails(&result, "versions", "--skip-update-check");
    let detail = check(&result.1, "versions")["detail"].as_str().unwrap();
    assert!(detail.contains("@trigger.dev/sdk@3.3.0"), "{detail}");
}

#[test]
fn an_unwritable_cache_fails_the_cache_check() {
    let home = Home::new();
    let project = fixture("hello");
    let file = home.dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let cache = file.join("cache");
    // --cache-dir wins over LIFTOFF_CACHE_DIR.
    let result = home.json(
        &[
            project_arg(&project),
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
        &[],
    );
    assert_fails(&result, "cache", "--cache-dir");
}
