//! The GitHub Action (`action.yml`): its metadata and docs agree, the example workflows pass
//! actionlint, and the action itself, run outside GitHub by `scripts/run-action`, deploys
//! fixtures/hello to `liftoff-platform` and the local registry, restores its cache on a second
//! run (which then uploads no layer), and promotes with `command: promote`.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::image::mirrors_configured;
use common::{fixture, repo, text};
use liftoff_platform::{Platform, PlatformConfig, Seed};
use serde_json::Value;

const PROJECT: &str = "proj_liftofffixturehello";

fn run_action(args: &[&str]) -> Output {
    Command::new(repo().join("scripts/run-action"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run scripts/run-action (needs python3)")
}

/// Names in the first column of the markdown table under `## <heading>` in docs/action.md.
fn doc_table(doc: &str, heading: &str) -> BTreeSet<String> {
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with(heading))
        .unwrap_or_else(|| panic!("docs/action.md has no `## {heading}` section"));
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn action_metadata_checks_and_matches_the_docs() {
    let check = run_action(&["--check"]);
    assert!(
        check.status.success(),
        "scripts/run-action --check:\n{}",
        text(&check.stderr)
    );
    let out = run_action(&["--describe"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let declared: Value = serde_json::from_slice(&out.stdout).unwrap();
    let doc = std::fs::read_to_string(repo().join("docs/action.md")).unwrap();
    for (key, heading) in [("inputs", "Inputs"), ("outputs", "Outputs")] {
        let in_yml: BTreeSet<String> = declared[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let in_doc = doc_table(&doc, heading);
        assert!(!in_yml.is_empty());
        assert_eq!(
            in_yml, in_doc,
            "action.yml {key} (left) and the docs/action.md {heading} table (right) differ"
        );
    }
}

/// actionlint (with shellcheck for the `run:` scripts when it is on PATH) on every example
/// workflow. scripts/run-action installs actionlint into its venv when it is missing and fails,
/// saying why, when it cannot: this test never skips.
#[test]
fn example_workflows_pass_actionlint() {
    let out = run_action(&["--lint"]);
    assert!(
        out.status.success(),
        "scripts/run-action --lint failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("actionlint: no problems"),
        "{}",
        text(&out.stderr)
    );
}

struct Env {
    platform: Platform,
    seed: Seed,
    tmp: tempfile::TempDir,
    namespace: String,
    registry: String,
}

fn start() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let seed = common::platform::seed(PROJECT, &[]);
    let registry = std::env::var("LIFTOFF_TEST_REGISTRY")
        .expect("LIFTOFF_TEST_REGISTRY: source scripts/test-env/env.sh (scripts/test does)");
    let mut config = PlatformConfig::new(tmp.path().join("platform.db"), seed.clone());
    config.registry_host = Some(registry.clone());
    let platform = Platform::start(config).unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    Env {
        platform,
        seed,
        tmp,
        namespace: format!("liftoff-action-{}-{nanos}", std::process::id()),
        registry,
    }
}

impl Env {
    /// One run of the action (a fresh `RUNNER_TEMP`, as each job gets) sharing the emulated
    /// actions/cache store; returns run-action's --outputs document.
    fn action(&self, run: &str, inputs: &[(&str, &str)]) -> Value {
        mirrors_configured();
        fixture("hello");
        let outputs = self.tmp.path().join(format!("{run}.json"));
        let runner_temp = self.tmp.path().join(format!("runner-temp-{run}"));
        let cache_store = self.tmp.path().join("cache-store");
        let mut cmd = Command::new(repo().join("scripts/run-action"));
        cmd.current_dir(repo())
            .arg("--workspace")
            .arg(repo())
            .arg("--runner-temp")
            .arg(&runner_temp)
            .arg("--cache-store")
            .arg(&cache_store)
            .arg("--outputs")
            .arg(&outputs)
            .env("TRIGGER_ACCESS_TOKEN", &self.seed.personal_access_token)
            .env("XDG_CONFIG_HOME", self.tmp.path().join("config"))
            .env_remove("TRIGGER_API_URL")
            .env_remove("TRIGGER_LOG_LEVEL")
            .env_remove("TRIGGER_VERSION")
            // The action's own cache directory ($RUNNER_TEMP/liftoff-cache) is the one used.
            .env_remove("LIFTOFF_CACHE_DIR")
            .env_remove("GITHUB_OUTPUT")
            .env_remove("GITHUB_ENV");
        let bin = format!("path:{}", env!("CARGO_BIN_EXE_liftoff"));
        let api_url = self.platform.url();
        let defaults = [
            ("version", bin.as_str()),
            ("working-directory", "fixtures/hello"),
            ("api-url", api_url.as_str()),
            ("registry", self.registry.as_str()),
            ("namespace", self.namespace.as_str()),
            ("args", "--base-image node:21-bookworm-slim"),
        ];
        for (k, v) in defaults
            .iter()
            .filter(|(k, _)| !inputs.iter().any(|(i, _)| i == k))
            .chain(inputs)
        {
            cmd.arg("--input").arg(format!("{k}={v}"));
        }
        let out = cmd.output().unwrap();
        let stderr = text(&out.stderr);
        assert!(
            out.status.success(),
            "the action ({run}) failed:\n{}\n{stderr}",
            text(&out.stdout)
        );
        assert!(!stderr.contains(&self.seed.personal_access_token));
        let doc: Value = serde_json::from_slice(&std::fs::read(&outputs).unwrap()).unwrap();
        assert_eq!(doc["status"], "success");
        doc
    }

    fn repository(&self) -> String {
        format!("{}/{}/{PROJECT}", self.registry, self.namespace)
    }
}

fn output<'a>(doc: &'a Value, name: &str) -> &'a str {
    doc["outputs"][name]
        .as_str()
        .unwrap_or_else(|| panic!("no output {name}: {doc:#}"))
}

fn skopeo(args: &[&str], reference: &str) -> Value {
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .args(args)
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo is installed (scripts/install-test-deps)");
    assert!(
        out.status.success(),
        "skopeo inspect {reference}: {}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The blob digests linked into a repository of the local registry (`_layers`: layers and
/// configs, i.e. every blob pushed or mounted into it).
fn repository_blobs(env: &Env) -> BTreeSet<String> {
    let root = std::env::var_os("LIFTOFF_TEST_CACHE")
        .map_or_else(|| PathBuf::from("/var/cache/liftoff-test"), PathBuf::from);
    let dir = root
        .join("registry/data-noauth/docker/registry/v2/repositories")
        .join(&env.namespace)
        .join(PROJECT)
        .join("_layers/sha256");
    assert!(
        dir.is_dir(),
        "{} missing: is 127.0.0.1:5000 the registry of scripts/test-env/registry?",
        dir.display()
    );
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| format!("sha256:{}", e.unwrap().file_name().to_string_lossy()))
        .collect()
}

fn manifest_blobs(manifest: &Value) -> (String, BTreeSet<String>) {
    let config = manifest["config"]["digest"].as_str().unwrap().to_string();
    let layers = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    (config, layers)
}

fn cache_is_filled(doc: &Value) -> bool {
    let dir = doc["env"]["LIFTOFF_CACHE_DIR"].as_str().unwrap();
    Path::new(dir)
        .read_dir()
        .is_ok_and(|mut d| d.next().is_some())
}

#[test]
fn the_action_deploys_restores_its_cache_and_promotes() {
    let env = start();

    // 1. Deploy, cold cache.
    let first = env.action("first", &[]);
    let version = output(&first, "deploymentVersion").to_string();
    let digest = output(&first, "imageDigest").to_string();
    assert!(
        version.len() > 8 && version.contains('.'),
        "version {version:?}"
    );
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert_eq!(output(&first, "needsPromotion"), "false");
    assert_eq!(
        output(&first, "imageReference"),
        format!("{}:{version}.prod", env.repository())
    );
    assert!(
        output(&first, "deploymentUrl").contains(output(&first, "deploymentShortCode")),
        "{first:#}"
    );
    assert_eq!(first["env"]["TRIGGER_VERSION"], version.as_str());
    assert_eq!(first["steps"]["cache"]["outputs"]["cache-hit"], "false");
    assert!(
        cache_is_filled(&first),
        "the build used the action's cache dir"
    );
    let state = env.platform.state().unwrap();
    let d = state
        .deployments
        .iter()
        .find(|d| d.version == version)
        .unwrap_or_else(|| panic!("the platform has no deployment {version}"));
    assert_eq!(d.status, "DEPLOYED");
    assert_eq!(
        d.image_reference.as_deref(),
        Some(format!("{}@{digest}", output(&first, "imageReference")).as_str())
    );
    assert_eq!(
        state.current_version(PROJECT, "prod"),
        Some(version.as_str())
    );
    // The digest is the registry manifest's, found by digest.
    let first_manifest = skopeo(&["--raw"], &format!("{}@{digest}", env.repository()));
    let (first_config, first_layers) = manifest_blobs(&first_manifest);
    let before = repository_blobs(&env);
    assert!(before.contains(&first_config) && first_layers.is_subset(&before));

    // 2. Deploy again without promotion, in a new job: the cache is restored by its exact key,
    //    and the push uploads no layer, only the new version's config (and the manifest).
    let second = env.action("second", &[("skip-promotion", "true")]);
    assert_eq!(second["steps"]["cache"]["outputs"]["cache-hit"], "true");
    assert_eq!(
        second["steps"]["cache"]["outputs"]["cache-matched-key"],
        first["steps"]["cache-key"]["outputs"]["key"]
    );
    let v2 = output(&second, "deploymentVersion").to_string();
    let digest2 = output(&second, "imageDigest").to_string();
    assert_ne!(v2, version);
    assert_ne!(digest2, digest);
    assert_eq!(output(&second, "needsPromotion"), "true");
    let second_manifest = skopeo(&["--raw"], &format!("{}@{digest2}", env.repository()));
    let (second_config, second_layers) = manifest_blobs(&second_manifest);
    assert_eq!(second_layers, first_layers, "the layers are the same build");
    let after = repository_blobs(&env);
    let new: BTreeSet<String> = after.difference(&before).cloned().collect();
    assert_eq!(
        new,
        BTreeSet::from([second_config]),
        "the second push added blobs other than its config"
    );
    assert_eq!(
        env.platform
            .state()
            .unwrap()
            .current_version(PROJECT, "prod"),
        Some(version.as_str()),
        "skip-promotion left the first version current"
    );

    // 3. command: promote (the atomic-deploy example's last step).
    let third = env.action(
        "promote",
        &[
            ("command", "promote"),
            ("deploy-version", &v2),
            ("cache", "false"),
            ("args", ""),
        ],
    );
    assert_eq!(output(&third, "deploymentVersion"), v2);
    assert_eq!(third["steps"]["cache"]["outcome"], "skipped");
    assert_eq!(
        env.platform
            .state()
            .unwrap()
            .current_version(PROJECT, "prod"),
        Some(v2.as_str())
    );
}

/// `version: 0.1.0`: the release asset and its `.sha256` are downloaded from
/// `<server>/<action repository>/releases/download/v0.1.0/` (here a local HTTP server holding a
/// tarball of the liftoff under test), verified, and used for a dry run; a wrong checksum fails
/// the action before liftoff runs.
#[test]
fn the_action_installs_a_checksummed_release() {
    let tmp = tempfile::tempdir().unwrap();
    let release = tmp.path().join("www/acme/liftoff/releases/download/v0.1.0");
    let staging = tmp.path().join("staging/liftoff-0.1.0");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_liftoff"), staging.join("liftoff")).unwrap();
    let asset = "liftoff-0.1.0-x86_64-unknown-linux-gnu.tar.gz";
    let sh = |script: &str| {
        let out = Command::new("bash")
            .args(["-ec", script])
            .current_dir(&release)
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}: {}", text(&out.stderr));
    };
    sh(&format!(
        "tar -czf {asset} -C {} liftoff-0.1.0 && sha256sum {asset} > {asset}.sha256",
        staging.parent().unwrap().display()
    ));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(tmp.path().join("www"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let run = |name: &str| {
        Command::new(repo().join("scripts/run-action"))
            .current_dir(repo())
            .args(["--server-url", &url, "--action-repository", "acme/liftoff"])
            .arg("--runner-temp")
            .arg(tmp.path().join(name))
            .arg("--cache-store")
            .arg(tmp.path().join("cache-store"))
            .arg("--outputs")
            .arg(tmp.path().join(format!("{name}.json")))
            .args([
                "-i",
                "version=v0.1.0",
                "-i",
                "working-directory=fixtures/hello",
            ])
            .args([
                "-i",
                "dry-run=true",
                "-i",
                "cache=false",
                "-i",
                "args=--no-image",
            ])
            .env_remove("LIFTOFF_CACHE_DIR")
            .env_remove("TRIGGER_ACCESS_TOKEN")
            .output()
            .unwrap()
    };
    fixture("hello");
    let good = run("good");
    let bad = {
        sh(&format!("echo {} > {asset}.sha256", "0".repeat(64)));
        run("bad")
    };
    server.kill().unwrap();
    server.wait().unwrap();

    assert!(
        good.status.success(),
        "{}\n{}",
        text(&good.stdout),
        text(&good.stderr)
    );
    let doc: Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("good.json")).unwrap()).unwrap();
    assert_eq!(doc["steps"]["install"]["outputs"]["version"], "0.1.0");
    assert!(
        Path::new(output(&doc, "buildDir"))
            .join("build.json")
            .is_file(),
        "{doc:#}"
    );
    assert!(!bad.status.success());
    let stdout = text(&bad.stdout);
    assert!(stdout.contains("FAILED"), "sha256sum -c output: {stdout}");
    assert!(!tmp.path().join("bad/liftoff-bin/liftoff").exists());
}
