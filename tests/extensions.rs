//! Build extensions end to end: every extension fixture builds, runs in node, and
//! its Containerfile and plan are snapshotted; secrets never leak; bad input
//! fails with the extension's name.

mod common;

use std::path::Path;

use common::{TempProject, check_build, dry_run, fixture, read_json, text, tree};
use serde_json::Value;

fn build(name: &str, variant: Option<&str>) -> (std::path::PathBuf, Value) {
    let project = fixture(name);
    let config = variant.map(|v| format!("trigger.{v}.config.ts"));
    let extra: Vec<&str> = config
        .as_deref()
        .map(|c| vec!["--config", c])
        .unwrap_or_default();
    let (dir, json) = dry_run(&project, &extra);
    let expected = project.join(variant.map_or("expected.json".to_string(), |v| {
        format!("expected.{v}.json")
    }));
    let report = check_build(&dir, &expected);
    assert_eq!(report["ok"], true, "{report:#}");
    (dir, json)
}

/// The plan with machine-specific parts removed.
fn stable_plan(json: &Value) -> Value {
    let mut plan = json["plan"].clone();
    if let Some(messages) = plan["messages"].as_array_mut() {
        for m in messages {
            if let Some(text) = m["message"].as_str() {
                m["message"] = Value::String(text.replace(env!("CARGO_MANIFEST_DIR"), "<repo>"));
            }
        }
    }
    plan
}

fn snapshot(name: &str, dir: &Path, json: &Value) {
    insta::assert_snapshot!(
        format!("{name}_containerfile"),
        std::fs::read_to_string(dir.join("Containerfile")).unwrap()
    );
    insta::assert_json_snapshot!(format!("{name}_plan"), stable_plan(json));
}

#[test]
fn extensions_core() {
    let (dir, json) = build("extensions-core", None);
    snapshot("extensions_core", &dir, &json);
    // additionalFiles: globs copied, `..` dropped.
    let files = tree(&dir);
    assert!(files.contains(&"assets/greeting.txt".into()), "{files:?}");
    assert!(
        files.contains(&"assets/nested/deep.txt".into()),
        "{files:?}"
    );
    assert!(
        !files.contains(&"assets/notes.md".into()),
        "not matched by *.txt: {files:?}"
    );
    assert!(
        files.contains(&"extensions-core-shared/data.json".into()),
        "{files:?}"
    );
    // additionalPackages: explicit version and the installed one, before the bundle's externals.
    let pkg = read_json(&dir.join("package.json"));
    assert_eq!(pkg["dependencies"]["left-pad"], "1.3.0");
    assert_eq!(
        pkg["dependencies"]["ms"],
        read_json(&fixture("extensions-core").join("node_modules/ms/package.json"))["version"]
    );
    let warnings: Vec<&str> = json["plan"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["message"].as_str())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("No files found for matcher ./missing/*.bin")),
        "{warnings:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn puppeteer_and_audio_waveform() {
    let (dir, json) = build("puppeteer-audio", None);
    snapshot("puppeteer_audio", &dir, &json);
    std::fs::remove_dir_all(dir).unwrap();
    let (dir, json) = build("puppeteer-audio", Some("audio"));
    snapshot("audio_custom_version", &dir, &json);
    assert!(
        std::fs::read_to_string(dir.join("Containerfile"))
            .unwrap()
            .contains("ADD  https://"),
        "no checksum leaves two spaces, as upstream"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn prisma_single_file() {
    let (dir, json) = build("prisma-file", None);
    snapshot("prisma_file", &dir, &json);
    assert!(dir.join("prisma/schema.prisma").is_file());
    assert!(
        tree(&dir)
            .iter()
            .any(|f| f.starts_with("prisma/migrations"))
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn prisma_schema_folder() {
    let (dir, json) = build("prisma-folder", None);
    snapshot("prisma_folder", &dir, &json);
    assert!(tree(&dir).iter().any(|f| f.starts_with("prisma/schema/")));
    assert!(tree(&dir).iter().any(|f| f.starts_with("prisma/sql/")));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn python() {
    let (dir, json) = build("python", None);
    snapshot("python", &dir, &json);
    assert!(
        tree(&dir)
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "py"))
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn decorators_emit_metadata() {
    // check-build runs the task, which returns the design:type metadata names.
    let (dir, json) = build("decorators", None);
    snapshot("decorators", &dir, &json);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn telemetry_instrumentation_is_external_and_loader_bundled() {
    let (dir, json) = build("telemetry", None);
    snapshot("telemetry", &dir, &json);
    let manifest = read_json(&dir.join("build.json"));
    let included = manifest["otelImportHook"]["include"]
        .as_array()
        .expect("otelImportHook.include")
        .clone();
    assert!(!included.is_empty());
    let pkg = read_json(&dir.join("package.json"));
    for name in &included {
        let name = name.as_str().unwrap();
        assert!(
            pkg["dependencies"][name].is_string(),
            "{name} is not an external in package.json: {pkg:#}"
        );
    }
    assert!(
        manifest["loaderEntryPoint"]
            .as_str()
            .unwrap()
            .ends_with("entryPoints/loader.mjs")
    );
    assert!(
        dir.join("node_modules/trigger.dev/dist/esm/entryPoints/loader.mjs")
            .is_file()
    );
    assert_eq!(json["plan"]["extensions"].as_array().unwrap().len(), 0);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn custom_extensions_and_secrets_never_leak() {
    let project = fixture("custom-ext");
    let out = common::liftoff([
        "deploy".as_ref(),
        "--dry-run".as_ref(),
        "--no-image".as_ref(),
        project.as_os_str(),
        "--json".as_ref(),
        "--log-level".as_ref(),
        "debug".as_ref(),
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    let json: Value = serde_json::from_str(&stdout).unwrap();
    let dir = std::path::PathBuf::from(json["buildDir"].as_str().unwrap());
    let plan = &json["plan"];
    assert_eq!(
        plan["syncEnvVars"],
        serde_json::json!(["SECRET_API_KEY", "SECOND_SECRET"])
    );
    let build_env: Vec<&str> = plan["buildEnv"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        build_env.contains(&"BUILD_TOKEN") && build_env.contains(&"HAS_DB_URL"),
        "{build_env:?}"
    );
    let containerfile = std::fs::read_to_string(dir.join("Containerfile")).unwrap();
    assert!(
        containerfile.contains("ARG BUILD_TOKEN")
            && containerfile.contains("ENV HAS_DB_URL=$HAS_DB_URL")
    );

    let secrets = [
        "sk_live_not_a_real_secret_1234",
        "s3cr3t-value-5678",
        "bt_secret_9876",
    ];
    let mut haystacks = vec![
        ("stdout".to_string(), stdout.clone()),
        ("stderr".to_string(), stderr.clone()),
    ];
    for f in tree(&dir) {
        haystacks.push((
            f.display().to_string(),
            String::from_utf8_lossy(&std::fs::read(dir.join(&f)).unwrap()).into_owned(),
        ));
    }
    for (place, content) in &haystacks {
        for s in secrets {
            assert!(!content.contains(s), "secret {s} leaked into {place}");
        }
    }
    check_build(&dir, &project.join("expected.json"));
    snapshot("custom_ext", &dir, &json);
    std::fs::remove_dir_all(dir).unwrap();
}

// ---- bad input -------------------------------------------------------------

const PACKAGE_JSON: &str = r#"{ "name": "bad-ext", "type": "module" }"#;
const TASK: &str = "import { task } from \"@trigger.dev/sdk/v3\";\nexport const ok = task({ id: \"ok\", run: async () => \"ok\" });\n";

fn project_with(extensions: &str, imports: &str) -> TempProject {
    let p = TempProject::new("extensions-core");
    p.write("package.json", PACKAGE_JSON).write("trigger/ok.ts", TASK).write(
        "trigger.config.ts",
        &format!("{imports}\nexport default {{ project: \"proj_bad\", maxDuration: 60, dirs: [\"trigger\"], build: {{ extensions: [{extensions}] }} }};\n"),
    );
    p
}

const CORE: &str = "import { aptGet, ffmpeg } from \"@trigger.dev/build/extensions/core\";";

fn fails_naming(p: &TempProject, extra: &[&str], needles: &[&str]) -> String {
    let out = p.dry_run(extra);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected failure; stderr:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "error should mention {n:?}:\n{stderr}");
    }
    let tmp = p.path().join(".trigger/tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("build-")
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "a failed build left {left:?}");
    stderr
}

#[test]
fn unknown_option() {
    let p = project_with("aptGet({ pkgs: [\"curl\"] })", CORE);
    fails_naming(
        &p,
        &[],
        &[
            "aptGet",
            "unknown option `pkgs`",
            "packages",
            "trigger.config.ts:",
        ],
    );
}

#[test]
fn wrong_option_type() {
    let p = project_with("ffmpeg({ version: 7 })", CORE);
    fails_naming(
        &p,
        &[],
        &["ffmpeg", "`version`", "a string", "the number 7"],
    );
}

#[test]
fn missing_prisma_schema() {
    let p = project_with(
        "prismaExtension({ schema: \"prisma/nope.prisma\" })",
        "import { prismaExtension } from \"@trigger.dev/build/extensions/prisma\";",
    );
    fails_naming(&p, &[], &["PrismaExtension", "prisma/nope.prisma"]);
}

#[test]
fn missing_requirements_file() {
    let p = project_with(
        "pythonExtension({ requirementsFile: \"./nope.txt\" })",
        "import { pythonExtension } from \"@trigger.dev/python/extension\";",
    );
    fails_naming(&p, &[], &["PythonExtension", "nope.txt"]);
}

const THROWS: &str =
    "{ name: \"boom\", onBuildComplete() { throw new Error(\"kaboom from the extension\"); } }";

#[test]
fn extension_that_throws() {
    let p = project_with(THROWS, "");
    fails_naming(
        &p,
        &[],
        &["boom", "kaboom from the extension", "onBuildComplete"],
    );
}

#[test]
fn keep_going_reports_and_continues() {
    let p = project_with(THROWS, "");
    let out = p.dry_run(&["--keep-going"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("boom") && stderr.contains("kaboom"),
        "{stderr}"
    );
}

#[test]
fn skip_extension_deploys_without_it_and_says_so() {
    let p = project_with(THROWS, "");
    let out = p.dry_run(&["--skip-extension", "boom", "--json"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("boom") && stderr.contains("skipped"),
        "{stderr}"
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["plan"]["extensions"][0]["implementation"], "skipped");
}

#[test]
fn sidecar_that_hangs_times_out() {
    let p = project_with(
        "{ name: \"sleepy\", onBuildComplete() { return new Promise(() => {}); } }",
        "",
    );
    fails_naming(&p, &["--extension-timeout", "1"], &["sleepy", "1 s"]);
}

#[test]
fn node_not_on_path() {
    let p = project_with("{ name: \"needs-node\", onBuildComplete() {} }", "");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_liftoff"))
        .args(["deploy", "--dry-run", "--no-image"])
        .arg(p.path())
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("node")
            && stderr.contains("needs-node")
            && stderr.contains("--skip-extension"),
        "{stderr}"
    );
}
