//! Extensions inside the image: their `image.instructions` run daemonlessly in the base stage
//! and what they install works when run inside the built image (chroot into the umoci-unpacked
//! rootfs, with the image config's environment). Needs root and `scripts/test-env/setup` (the
//! local registry, and the local file server standing in for GitHub releases and Google's apt
//! repository).

mod common;

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use common::image::{BASE, build, cache_dir, image_config, in_image, mirrors_configured, unpack};
use common::{TempProject, fixture, liftoff, text};
use serde_json::Value;

fn files_url() -> String {
    std::env::var("LIFTOFF_TEST_FILES_URL").expect(
        "LIFTOFF_TEST_FILES_URL is not set: run the tests through scripts/test (scripts/test-env)",
    )
}

fn files_root() -> PathBuf {
    PathBuf::from(std::env::var("LIFTOFF_TEST_FILES_ROOT").expect("LIFTOFF_TEST_FILES_ROOT"))
}

fn stdout_ok(out: &std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

const TASK: &str = "import { task } from \"@trigger.dev/sdk/v3\";\nexport const ok = task({ id: \"ok\", run: async () => 1 });\n";

fn project(node_modules_from: &str, config: &str) -> TempProject {
    let p = TempProject::new(node_modules_from);
    p.write(
        "package.json",
        r#"{ "name": "ext-image", "type": "module" }"#,
    )
    .write("trigger/ok.ts", TASK)
    .write("trigger.config.ts", config);
    p
}

/// A config with one inline extension adding `layer` (a JS object literal).
fn inline_layer_config(layer: &str) -> String {
    format!(
        "export default {{ project: \"proj_extimage\", maxDuration: 60, dirs: [\"trigger\"], build: {{ extensions: [{{ name: \"test-ext\", onBuildComplete(context) {{ context.addLayer({layer}); }} }}] }} }};\n"
    )
}

/// Every blob of the OCI layout, decompressed when it is a gzip layer.
fn all_blob_text(layout: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let path = e.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let data = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut d = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut d)
                .unwrap();
            d
        } else {
            bytes
        };
        out.push((
            path.file_name().unwrap().to_string_lossy().into_owned(),
            data,
        ));
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// A failed build leaves no image in the build dir and no half-made step in its cache.
fn assert_clean_failure(project: &Path, cache: &Path) {
    let tmp = project.join(".trigger/tmp");
    for e in std::fs::read_dir(&tmp).into_iter().flatten() {
        let dir = e.unwrap().path();
        assert!(
            !dir.join("image").exists(),
            "a failed build wrote an image in {}",
            dir.display()
        );
    }
    for kind in ["instructions", "packages", "npm"] {
        for e in std::fs::read_dir(cache.join("steps").join(kind))
            .into_iter()
            .flatten()
        {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                !name.starts_with(".tmp-"),
                "a staging dir was left behind: {kind}/{name}"
            );
        }
    }
}

/// `deploy --dry-run` with the image that must fail; returns stdout + stderr. It gets a cache of
/// its own (the shared one holds other tests' steps in progress); every failure here happens
/// before the packages step, so that costs only the base image from the local registry.
fn build_fails(project: &Path, extra: &[&str]) -> String {
    mirrors_configured();
    let cache = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = vec!["deploy".into(), "--dry-run".into()];
    args.push(project.display().to_string());
    args.extend(["--base-image", BASE, "--cache-dir"].map(String::from));
    args.push(cache.path().display().to_string());
    args.extend(extra.iter().map(ToString::to_string));
    let out = liftoff(&args);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(!all.contains("panicked"), "{all}");
    assert_clean_failure(project, cache.path());
    all
}

#[test]
fn python_requirements_file_and_scripts_work_in_the_image() {
    let project = fixture("python");
    let (dir, json) = build(&project, &cache_dir(), &[]);
    // PYTHON_BIN_PATH is synced to the platform as a deploy env var (by name in the plan).
    assert!(
        json["plan"].to_string().contains("PYTHON_BIN_PATH"),
        "{}",
        json["plan"]
    );
    let config = image_config(&dir);
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    // The extension's `ENV PATH="/opt/venv/bin:$PATH"`, expanded against the base image's PATH.
    assert!(
        env.iter()
            .any(|e| e.starts_with("PATH=/opt/venv/bin:/usr/local/sbin:")),
        "{env:?}"
    );
    let (_tmp, rootfs) = unpack(&dir);
    // requirements.txt pins requests 2.32.3; pip installed it from PyPI in the sandbox.
    let out = in_image(
        &rootfs,
        &config,
        &[],
        &[
            "/opt/venv/bin/python",
            "-c",
            "import requests, numpy; print(requests.__version__)",
        ],
    );
    assert_eq!(stdout_ok(&out, "python imports").trim(), "2.32.3");
    // The copied script runs from /app with `python` from the venv on the image's PATH.
    let out = in_image(
        &rootfs,
        &config,
        &[],
        &["/bin/sh", "-c", "cd /app && python python/hello.py liftoff"],
    );
    assert_eq!(stdout_ok(&out, "python script").trim(), "Hello, liftoff!");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn python_inline_requirements_reach_pip_as_a_build_arg_only() {
    let p = project(
        "python",
        "import { pythonExtension } from \"@trigger.dev/python/extension\";\nexport default { project: \"proj_pyinline\", maxDuration: 60, dirs: [\"trigger\"], build: { extensions: [pythonExtension({ requirements: [\"six==1.16.0\"] })] } };\n",
    );
    let (dir, _) = build(p.path(), &cache_dir(), &[]);
    let config = image_config(&dir);
    let (_tmp, rootfs) = unpack(&dir);
    let out = in_image(
        &rootfs,
        &config,
        &[],
        &[
            "/opt/venv/bin/python",
            "-c",
            "import six; print(six.__version__)",
        ],
    );
    assert_eq!(stdout_ok(&out, "import six").trim(), "1.16.0");
    // REQUIREMENTS_CONTENT was an ARG: used by the RUN, not an env var of the image, and its
    // value is not in the config (history shows the instruction text, `$REQUIREMENTS_CONTENT`).
    let env = config["config"]["Env"].to_string();
    assert!(!env.contains("REQUIREMENTS_CONTENT"), "{env}");
    assert!(!config.to_string().contains("six==1.16.0"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn audiowaveform_is_added_by_checksum_installed_and_runs() {
    let sum = std::fs::read_to_string(files_root().join("audiowaveform.sha256")).unwrap();
    let sum = sum.trim();
    let p = project(
        "puppeteer-audio",
        &format!(
            "import {{ audioWaveform }} from \"@trigger.dev/build/extensions/audioWaveform\";\nexport default {{ project: \"proj_aw\", maxDuration: 60, dirs: [\"trigger\"], build: {{ extensions: [audioWaveform({{ version: \"1.10.1\", checksum: \"sha256:{sum}\" }})] }} }};\n"
        ),
    );
    let mirror = format!("https://github.com/={}/", files_url());
    let (dir, json) = build(p.path(), &cache_dir(), &["--url-mirror", &mirror]);
    let layers: Vec<&str> = json["image"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert!(
        layers.contains(&"ADD (AudioWaveformExtension)"),
        "{layers:?}"
    );
    // The stand-in depends on libmad0, which the package step's --fix-broken pass installs.
    let packages = json["image"]["packages"].to_string();
    assert!(packages.contains("libmad0="), "{packages}");
    let config = image_config(&dir);
    let (_tmp, rootfs) = unpack(&dir);
    let out = in_image(&rootfs, &config, &[], &["audiowaveform", "--version"]);
    assert!(
        stdout_ok(&out, "audiowaveform").starts_with("AudioWaveform v1.10.1"),
        "{}",
        text(&out.stdout)
    );
    // `RUN rm audiowaveform*.deb` ran in the image's working directory (/).
    assert!(!rootfs.join("audiowaveform_1.10.1-1-12_amd64.deb").exists());
    std::fs::remove_dir_all(dir).unwrap();

    // A wrong checksum fails before anything is added, showing both digests.
    let wrong = "0".repeat(64);
    p.write(
        "trigger.config.ts",
        &format!("import {{ audioWaveform }} from \"@trigger.dev/build/extensions/audioWaveform\";\nexport default {{ project: \"proj_aw\", maxDuration: 60, dirs: [\"trigger\"], build: {{ extensions: [audioWaveform({{ version: \"1.10.1\", checksum: \"sha256:{wrong}\" }})] }} }};\n"),
    );
    let err = build_fails(p.path(), &["--url-mirror", &mirror]);
    assert!(err.contains("AudioWaveformExtension"), "{err}");
    assert!(err.contains(&format!("expected sha256:{wrong}")), "{err}");
    assert!(err.contains(&format!("got sha256:{sum}")), "{err}");
}

#[test]
fn puppeteer_style_instruction_installs_from_a_signed_apt_repo() {
    // Upstream's exact puppeteer() instruction (the extension differential test checks it is
    // what @trigger.dev/build emits), pointed at the local stand-in of Google's repository: the
    // real one needs the internet.
    let data: toml::Value = toml::from_str(
        &std::fs::read_to_string(common::repo().join("extensions/puppeteer.toml")).unwrap(),
    )
    .unwrap();
    let instruction = data["layer"]["image"]["instructions"][0].as_str().unwrap();
    assert!(instruction.contains("https://dl-ssl.google.com/linux/linux_signing_key.pub"));
    let local = instruction
        .replace("https://dl-ssl.google.com/", &format!("{}/", files_url()))
        .replace("http://dl.google.com/", &format!("{}/", files_url()));
    let layer = format!(
        "{{ id: \"puppeteer\", image: {{ instructions: [{}] }}, deploy: {{ env: {{ PUPPETEER_EXECUTABLE_PATH: \"/usr/bin/google-chrome-stable\" }}, override: true }} }}",
        serde_json::to_string(&local).unwrap()
    );
    let p = project("puppeteer-audio", &inline_layer_config(&layer));
    let (dir, json) = build(p.path(), &cache_dir(), &[]);
    assert!(
        json["plan"]
            .to_string()
            .contains("PUPPETEER_EXECUTABLE_PATH")
    );
    let chrome = "/usr/bin/google-chrome-stable";
    let config = image_config(&dir);
    let (_tmp, rootfs) = unpack(&dir);
    let out = in_image(&rootfs, &config, &[], &[chrome, "--version"]);
    assert!(
        stdout_ok(&out, "chrome").starts_with("Google Chrome 131"),
        "{}",
        text(&out.stdout)
    );
    // The instruction's `rm -rf /var/lib/apt/lists/*` cleaned up after itself.
    let lists: Vec<_> = std::fs::read_dir(rootfs.join("var/lib/apt/lists"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        lists
            .iter()
            .all(|n| n == "partial" || n == "lock" || n == "auxfiles"),
        "{lists:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn instruction_semantics_env_workdir_user_copy_and_squash() {
    let registry = std::env::var("LIFTOFF_TEST_REGISTRY").expect("LIFTOFF_TEST_REGISTRY");
    let layer = format!(
        r#"{{ id: "sem", image: {{ instructions: [
            "ENV GREETING=\"hello world\" BASE_PATH=${{PATH}}",
            "WORKDIR /opt/work",
            "COPY --chown=node:node package.json ./data/",
            "USER node",
            "RUN id -un > /home/node/whoami && echo \"$GREETING\" > /home/node/greeting && pwd > /home/node/pwd",
            "USER root",
            "RUN echo one > /one.txt",
            "RUN echo two > /two.txt",
            "COPY --from={registry}/library/node:21-bookworm-slim /usr/local/bin/node /opt/node-copy/node"
        ] }} }}"#
    );
    // COPY reads the build context: the build directory (package.json is always there).
    let p = project("hello", &inline_layer_config(&layer));
    let (dir, json) = build(p.path(), &cache_dir(), &[]);
    let names: Vec<String> = json["image"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    let count = |kw: &str| names.iter().filter(|n| n.starts_with(kw)).count();
    assert_eq!(count("RUN "), 3, "{names:?}");
    assert_eq!(count("WORKDIR "), 1, "{names:?}");
    assert_eq!(count("COPY "), 2, "{names:?}");
    let config = image_config(&dir);
    let env = config["config"]["Env"].to_string();
    assert!(env.contains("GREETING=hello world"), "{env}");
    assert!(env.contains("BASE_PATH=/usr/local/sbin:"), "{env}");
    let (_tmp, rootfs) = unpack(&dir);
    assert_eq!(
        std::fs::read_to_string(rootfs.join("home/node/whoami")).unwrap(),
        "node\n"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("home/node/greeting")).unwrap(),
        "hello world\n"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("home/node/pwd")).unwrap(),
        "/opt/work\n"
    );
    let copied = std::fs::metadata(rootfs.join("opt/work/data/package.json")).unwrap();
    assert_eq!((copied.uid(), copied.gid()), (1000, 1000));
    // `/` keeps its mode although COPY and ADD wrote into it.
    assert_eq!(std::fs::metadata(&rootfs).unwrap().mode() & 0o7777, 0o755);
    let out = in_image(
        &rootfs,
        &config,
        &[],
        &["/opt/node-copy/node", "-e", "console.log(process.version)"],
    );
    assert!(stdout_ok(&out, "copied node").starts_with("v21."));
    std::fs::remove_dir_all(&dir).unwrap();

    // --squash-instructions: consecutive RUNs share a layer.
    let (dir, json) = build(p.path(), &cache_dir(), &["--squash-instructions"]);
    let squashed = json["image"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["name"].as_str().unwrap().starts_with("RUN "))
        .count();
    assert_eq!(squashed, 2);
    let (_tmp, rootfs) = unpack(&dir);
    assert!(rootfs.join("one.txt").is_file() && rootfs.join("two.txt").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn build_secrets_reach_the_steps_but_no_blob_history_or_log() {
    const SECRET: &str = "sk_test_liftoff_5f2a9c1e77";
    let len = SECRET.len();
    let layer = format!(
        r#"{{ id: "secret", build: {{ env: {{ BUILD_TOKEN: "{SECRET}" }} }}, commands: ["test ${{#BUILD_TOKEN}} = {len} && echo used > /app/secret-used.txt"], image: {{ instructions: [
            "ARG BUILD_TOKEN",
            "RUN test -n \"$BUILD_TOKEN\" && echo set > /token-was-set && echo \"token is $BUILD_TOKEN\" >&2"
        ] }} }}"#
    );
    let p = project("hello", &inline_layer_config(&layer));
    mirrors_configured();
    let out = liftoff([
        "deploy",
        "--dry-run",
        p.path().to_str().unwrap(),
        "--base-image",
        BASE,
        "--cache-dir",
        cache_dir().to_str().unwrap(),
        "--json",
        "--log-level",
        "debug",
    ]);
    let logs = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{logs}");
    assert!(!logs.contains(SECRET), "the secret was printed:\n{logs}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let dir = PathBuf::from(json["buildDir"].as_str().unwrap());
    let (_tmp, rootfs) = unpack(&dir);
    assert!(
        rootfs.join("token-was-set").is_file(),
        "the ARG did not reach RUN"
    );
    assert!(
        rootfs.join("app/secret-used.txt").is_file(),
        "build.env did not reach build.commands"
    );
    let blobs = all_blob_text(&dir.join("image"));
    assert!(blobs.len() > 5);
    for (name, data) in &blobs {
        assert!(!contains(data, SECRET), "blob {name} holds the secret");
    }
    // Nor is it an env var of the image (the Containerfile in /app names it, as upstream's does).
    let config = image_config(&dir);
    assert!(!config["config"]["Env"].to_string().contains("BUILD_TOKEN"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_instructions_fail_cleanly_naming_the_extension() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            r#"{ id: "x", image: { instructions: ["FROM alpine AS other"] } }"#,
            &[],
            &["test-ext", "FROM alpine AS other", "new stage"],
        ),
        (
            r#"{ id: "x", image: { instructions: ["COPY ../../etc/passwd /stolen"] } }"#,
            &[],
            &["test-ext", "../../etc/passwd", "outside the build context"],
        ),
        (
            r#"{ id: "x", image: { instructions: ["RUN echo first line >&2; echo the-real-cause >&2; exit 3"] } }"#,
            &[],
            &["test-ext", "exit status 3", "the-real-cause"],
        ),
        (
            r#"{ id: "x", image: { instructions: ["RUN sleep 120"] } }"#,
            &["--step-timeout", "3"],
            &["test-ext", "RUN sleep 120", "did not finish within 3s"],
        ),
    ];
    for (layer, extra, wanted) in cases {
        let p = project("hello", &inline_layer_config(layer));
        let started = std::time::Instant::now();
        let err = build_fails(p.path(), extra);
        for w in *wanted {
            assert!(err.contains(w), "{layer}: missing {w:?} in:\n{err}");
        }
        assert!(started.elapsed() < std::time::Duration::from_mins(1));
    }
}

/// A fresh database on the test server (`scripts/test-env/postgres`); returns its URL.
fn fresh_database() -> String {
    let base = std::env::var("LIFTOFF_TEST_PG_URL").expect(
        "LIFTOFF_TEST_PG_URL is not set: run the tests through scripts/test (scripts/test-env)",
    );
    let name = format!(
        "liftoff_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let out = std::process::Command::new("psql")
        .arg(format!("{base}/postgres"))
        .args(["-qAtc", &format!("CREATE DATABASE {name}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "createdb: {}", text(&out.stderr));
    format!("{base}/{name}")
}

fn psql(url: &str, sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .arg(url)
        .args(["-qAtc", sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "psql: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

#[test]
fn prisma_generate_and_migrate_deploy_against_postgres_without_leaking_the_url() {
    prisma_in_image("prisma-migrate");
}

/// The same with a schema folder (`prisma/schema/*.prisma`: generate without --schema).
#[test]
fn prisma_schema_folder_generate_and_migrate_deploy() {
    prisma_in_image("prisma-migrate-folder");
}

fn prisma_in_image(name: &str) {
    let project = fixture(name);
    let url = fresh_database();
    let env_dir = tempfile::tempdir().unwrap();
    let env_file = env_dir.path().join("server.env");
    std::fs::write(&env_file, format!("DATABASE_URL={url}\n")).unwrap();
    mirrors_configured();
    let out = liftoff([
        "deploy",
        "--dry-run",
        project.to_str().unwrap(),
        "--base-image",
        BASE,
        "--cache-dir",
        cache_dir().to_str().unwrap(),
        "--server-env-file",
        env_file.to_str().unwrap(),
        "--json",
        "--log-level",
        "debug",
    ]);
    let logs = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{logs}");
    assert!(
        !logs.contains(&url),
        "the database URL was printed:\n{logs}"
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let dir = PathBuf::from(json["buildDir"].as_str().unwrap());

    // `migrate deploy` ran during the build, against the real server.
    assert_eq!(
        psql(
            &url,
            "SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL"
        ),
        "1"
    );
    assert_eq!(psql(&url, "SELECT count(*) FROM \"User\""), "0");

    // The URL is in no layer, not in the config or its history.
    for (name, data) in all_blob_text(&dir.join("image")) {
        assert!(!contains(&data, &url), "blob {name} holds the database URL");
    }

    // `prisma generate` ran in the build: the generated client is in the image, and node in the
    // image uses it (through the pg driver adapter) against the migrated database.
    let config = image_config(&dir);
    let (_tmp, rootfs) = unpack(&dir);
    assert!(
        rootfs
            .join("app/node_modules/.prisma/client/index.js")
            .is_file()
    );
    let script = "import { PrismaClient } from '@prisma/client'; import { PrismaPg } from '@prisma/adapter-pg'; const p = new PrismaClient({ adapter: new PrismaPg({ connectionString: process.env.DATABASE_URL }) }); const u = await p.user.create({ data: { email: 'ada@example.com', name: 'Ada' } }); console.log(JSON.stringify({ email: u.email, users: await p.user.count() })); await p.$disconnect();";
    let out = in_image(
        &rootfs,
        &config,
        &[("DATABASE_URL", url.as_str())],
        &[
            "/bin/sh",
            "-c",
            "cd /app && exec node --input-type=module -e \"$0\"",
            script,
        ],
    );
    assert_eq!(
        stdout_ok(&out, "prisma client in the image").trim(),
        r#"{"email":"ada@example.com","users":1}"#
    );
    assert_eq!(psql(&url, "SELECT name FROM \"User\""), "Ada");
    // The task file that imports @prisma/client loads in the image.
    let manifest: Value = common::read_json(&dir.join("build.json"));
    let task_file = manifest["files"][0]["out"].as_str().unwrap().to_string();
    let out = in_image(
        &rootfs,
        &config,
        &[],
        &[
            "node",
            "--input-type=module",
            "-e",
            &format!("await import({task_file:?}); console.log('loaded')"),
        ],
    );
    assert_eq!(stdout_ok(&out, "task import").trim(), "loaded");
    std::fs::remove_dir_all(&dir).unwrap();
}
