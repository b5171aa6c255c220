//! Bad input gets a clear error and a non-zero exit, never a panic, and leaves
//! no build directory behind.

mod common;

use common::{TempProject, text};

const PACKAGE_JSON: &str =
    r#"{ "name": "broken", "type": "module", "dependencies": { "@trigger.dev/sdk": "3.3.17" } }"#;
const CONFIG: &str = r#"import { defineConfig } from "@trigger.dev/sdk/v3";
export default defineConfig({ project: "proj_broken", maxDuration: 60, dirs: ["trigger"] });
"#;
const TASK: &str = r#"import { task } from "@trigger.dev/sdk/v3";
export const ok = task({ id: "ok", run: async () => "ok" });
"#;

fn project() -> TempProject {
    let p = TempProject::new("hello");
    p.write("package.json", PACKAGE_JSON)
        .write("trigger.config.ts", CONFIG)
        .write("trigger/ok.ts", TASK);
    p
}

/// Runs the dry run, expects failure, returns stderr.
fn fails(p: &TempProject) -> String {
    let out = p.dry_run(&[]);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit 1, got {:?}; stderr:\n{stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "liftoff panicked:\n{stderr}");
    assert!(stderr.contains("error:"), "no error line:\n{stderr}");
    let tmp = p.path().join(".trigger/tmp");
    let leftovers: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "a failed build left {leftovers:?}");
    stderr
}

#[test]
fn the_valid_base_project_builds() {
    // Guards the other tests: each breaks exactly one thing of this project.
    let out = project().dry_run(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn no_config_file() {
    let p = TempProject::new("hello");
    p.write("package.json", PACKAGE_JSON)
        .write("trigger/ok.ts", TASK);
    let err = fails(&p);
    assert!(err.contains("trigger.config"), "{err}");
    assert!(
        err.contains("--config"),
        "should say how to point at a config: {err}"
    );
}

#[test]
fn config_syntax_error_names_file_line_and_column() {
    let p = project();
    p.write("trigger.config.ts", "import { defineConfig } from \"@trigger.dev/sdk/v3\";\nexport default defineConfig({\n  project: \"proj_x\",\n  maxDuration: 60,,\n});\n");
    let err = fails(&p);
    assert!(err.contains("trigger.config.ts:4:"), "{err}");
}

#[test]
fn missing_max_duration() {
    let p = project();
    p.write(
        "trigger.config.ts",
        "export default { project: \"proj_x\", dirs: [\"trigger\"] };\n",
    );
    let err = fails(&p);
    assert!(err.contains(r#"The "maxDuration" trigger.config option is now required, and must be at least 5 seconds."#), "{err}");
}

#[test]
fn dirs_pointing_nowhere() {
    let p = project();
    p.write(
        "trigger.config.ts",
        "export default { project: \"proj_x\", maxDuration: 60, dirs: [\"src/jobs\"] };\n",
    );
    let err = fails(&p);
    assert!(err.contains("src/jobs"), "{err}");
}

#[test]
fn no_task_files_found() {
    let p = project();
    std::fs::remove_file(p.path().join("trigger/ok.ts")).unwrap();
    p.write("trigger/ok.test.ts", TASK);
    let err = fails(&p);
    assert!(err.contains("No trigger files found"), "{err}");
    assert!(
        err.contains("trigger/**/*.{ts,tsx,mts,cts,js,jsx,mjs,cjs}"),
        "should list the search pattern: {err}"
    );
}

#[test]
fn task_importing_a_missing_module() {
    let p = project();
    p.write("trigger/broken.ts", "import { nope } from \"./does-not-exist\";\nimport left from \"left-pad-not-installed\";\nexport const x = [nope, left];\n");
    let err = fails(&p);
    assert!(
        err.contains("does-not-exist"),
        "should name the import: {err}"
    );
    assert!(
        err.contains("trigger/broken.ts"),
        "should name the importing file: {err}"
    );
}

#[test]
fn task_importing_a_missing_package() {
    let p = project();
    p.write(
        "trigger/broken.ts",
        "import left from \"left-pad-not-installed\";\nexport const x = left;\n",
    );
    let err = fails(&p);
    assert!(
        err.contains("left-pad-not-installed"),
        "should name the package: {err}"
    );
    assert!(
        err.contains("trigger/broken.ts"),
        "should name the importing file: {err}"
    );
}

#[test]
fn trigger_dev_package_missing() {
    let p = TempProject::empty();
    p.write("package.json", PACKAGE_JSON)
        .write("trigger.config.ts", CONFIG)
        .write("trigger/ok.ts", TASK);
    let sdk_only = p.path().join("node_modules/@trigger.dev");
    std::fs::create_dir_all(&sdk_only).unwrap();
    std::os::unix::fs::symlink(
        common::fixture("hello").join("node_modules/@trigger.dev/sdk"),
        sdk_only.join("sdk"),
    )
    .unwrap();
    let err = fails(&p);
    assert!(
        err.contains("`trigger.dev` package is not installed"),
        "{err}"
    );
    assert!(
        err.contains("npm install -D trigger.dev@3.3.17"),
        "should suggest the SDK's version: {err}"
    );
}

#[test]
fn unknown_environment_is_a_usage_error() {
    let out = project().dry_run(&["--env", "dev"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("prod"), "{}", text(&out.stderr));
}

/// Upstream 3.3.17's hidden deploy flags are accepted so workflows keep working (`--no-cache`,
/// `--tag`, `--save-logs` have no effect there either); a platform other than amd64 is refused.
#[test]
fn upstream_hidden_deploy_flags_are_accepted() {
    let (dir, _) = common::dry_run(
        &common::fixture("hello"),
        &[
            "--no-cache",
            "--tag",
            "v1",
            "--save-logs",
            "--build-platform",
            "linux/amd64",
            "--self-hosted",
        ],
    );
    assert!(dir.join("build.json").is_file());
    let out = common::liftoff([
        "deploy",
        "--dry-run",
        "--no-image",
        common::fixture("hello").to_str().unwrap(),
        "--build-platform",
        "linux/arm64",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(common::text(&out.stderr).contains("linux/amd64 images only"));
    std::fs::remove_dir_all(dir).unwrap();
}
