//! `dirs` auto-detection/normalisation and task file discovery.

mod common;

use std::path::PathBuf;

use common::*;
use liftoff_config::DirsSource;

fn files(list: &[&str]) -> Vec<PathBuf> {
    list.iter().map(PathBuf::from).collect()
}

#[test]
fn fixture_task_files() {
    let c = load_dir(&fixture("basic")).unwrap();
    assert_eq!(
        c.discover_task_files().unwrap(),
        files(&["src/trigger/a.ts", "src/trigger/nested/b.tsx"])
    );
}

#[test]
fn dirs_auto_detection() {
    let dir = project(&[
        ("trigger.config.ts", &config_with("")),
        ("src/trigger/a.ts", ""),
        ("src/trigger/sub/trigger/b.ts", ""),
        ("packages/web/trigger/c.ts", ""),
        ("trigger/d.ts", ""),
        ("node_modules/pkg/trigger/x.ts", ""),
        (".hidden/trigger/x.ts", ""),
        ("dist/trigger/x.ts", ""),
        ("build/trigger/x.ts", ""),
        ("out/trigger/x.ts", ""),
        ("src/app/api/trigger/route.ts", ""),
        ("myapp/api/trigger/route.ts", ""),
        ("src/triggers/x.ts", ""),
        ("src/trigger.ts", ""),
    ]);
    let c = load_dir(dir.path()).unwrap();
    assert_eq!(c.dirs_source, DirsSource::AutoDetected);
    // Depth-first, entries sorted by name, `trigger` dirs recursed into too;
    // `…app/api/trigger` is a string-suffix check upstream, so `myapp/api/trigger` is skipped as well.
    assert_eq!(
        c.dirs,
        vec![
            "packages/web/trigger",
            "src/trigger",
            "src/trigger/sub/trigger",
            "trigger"
        ]
    );
    assert_eq!(
        c.discover_task_files().unwrap(),
        files(&[
            "packages/web/trigger/c.ts",
            "src/trigger/a.ts",
            "src/trigger/sub/trigger/b.ts",
            "trigger/d.ts"
        ])
    );
}

#[test]
fn dirs_normalisation_and_dedup() {
    let dir = project(&[("trigger.config.ts", "")]);
    let abs = dir.path().join("jobs").display().to_string();
    let source = config_with(&format!(
        "  dirs: [\"/trigger\", \"/src/trigger\", {abs:?}, \"./x\", \"./x\", \"/trigger\", {:?}],",
        dir.path()
            .parent()
            .unwrap()
            .join("elsewhere")
            .display()
            .to_string()
    ));
    write(dir.path(), "trigger.config.ts", &source);
    let c = load_dir(dir.path()).unwrap();
    assert_eq!(
        c.dirs,
        vec!["./trigger", "./src/trigger", "jobs", "./x", "../elsewhere"]
    );
}

#[test]
fn default_ignores() {
    let dir = project(&[
        (
            "trigger.config.ts",
            &config_with("  dirs: [\"./src/trigger\"],"),
        ),
        ("src/trigger/task.ts", ""),
        ("src/trigger/task.test.ts", ""),
        ("src/trigger/task.spec.mjs", ""),
        ("src/trigger/view.test.tsx", ""),
        ("src/trigger/types.d.ts", ""),
        ("src/trigger/data.json", ""),
        ("src/trigger/README.md", ""),
        ("src/trigger/.hidden.ts", ""),
        ("src/trigger/.cache/x.ts", ""),
        ("src/trigger/node_modules/dep/index.js", ""),
        ("src/trigger/deep/er/job.cjs", ""),
        ("src/other/not-a-task.ts", ""),
    ]);
    let c = load_dir(dir.path()).unwrap();
    assert_eq!(
        c.discover_task_files().unwrap(),
        // `.test.tsx` is not among upstream's 12 default ignores, and `.d.ts` matches `*.ts`.
        files(&[
            "src/trigger/deep/er/job.cjs",
            "src/trigger/task.ts",
            "src/trigger/types.d.ts",
            "src/trigger/view.test.tsx"
        ])
    );
}

#[test]
fn custom_ignore_patterns_replace_defaults() {
    let dir = project(&[
        (
            "trigger.config.ts",
            &config_with(
                "  dirs: [\"src/trigger\"],\n  ignorePatterns: [\"**/legacy/**\", \"./src/trigger/skip.ts\"],",
            ),
        ),
        ("src/trigger/task.ts", ""),
        ("src/trigger/task.test.ts", ""),
        ("src/trigger/skip.ts", ""),
        ("src/trigger/legacy/old.ts", ""),
        ("src/trigger/node_modules/x.ts", ""),
    ]);
    let c = load_dir(dir.path()).unwrap();
    assert_eq!(
        c.ignore_patterns,
        vec!["**/legacy/**", "./src/trigger/skip.ts"]
    );
    assert_eq!(
        c.discover_task_files().unwrap(),
        files(&["src/trigger/task.test.ts", "src/trigger/task.ts"])
    );
}

#[test]
fn glob_dir_is_not_recursive() {
    let dir = project(&[
        (
            "trigger.config.ts",
            &config_with("  dirs: [\"./src/*/jobs\"],"),
        ),
        ("src/a/jobs/one.ts", ""),
        ("src/b/jobs/two.mts", ""),
        ("src/b/jobs/deeper/three.ts", ""),
        ("src/b/other/four.ts", ""),
        ("src/jobs/five.ts", ""),
    ]);
    let c = load_dir(dir.path()).unwrap();
    assert_eq!(
        c.task_search_patterns(),
        vec!["./src/*/jobs/*.{ts,tsx,mts,cts,js,jsx,mjs,cjs}"]
    );
    assert_eq!(
        c.discover_task_files().unwrap(),
        files(&["src/a/jobs/one.ts", "src/b/jobs/two.mts"])
    );
}

#[test]
fn overlapping_dirs_are_deduplicated() {
    let root = project(&[
        (
            "app/trigger.config.ts",
            &config_with("  dirs: [\"src\", \"./src/trigger\", \"../shared/tasks\"],"),
        ),
        ("app/src/trigger/a.ts", ""),
        ("app/src/b.js", ""),
        ("shared/tasks/c.ts", ""),
    ]);
    let c = load_dir(&root.path().join("app")).unwrap();
    // Dirs outside the working dir are walked too (tinyglobby does the same), giving `../` paths.
    assert_eq!(
        c.discover_task_files().unwrap(),
        files(&["../shared/tasks/c.ts", "src/b.js", "src/trigger/a.ts"])
    );
}

#[test]
fn no_trigger_files_found() {
    let dir = project(&[
        (
            "trigger.config.ts",
            &config_with("  dirs: [\"./src/trigger\", \"src/*/jobs\"],"),
        ),
        ("src/trigger/only.test.ts", ""),
    ]);
    let c = load_dir(dir.path()).unwrap();
    insta::assert_snapshot!(
        "no_trigger_files",
        message(&c.discover_task_files().unwrap_err(), dir.path())
    );

    let dir = project(&[("trigger.config.ts", &config_with(""))]);
    let c = load_dir(dir.path()).unwrap();
    assert!(c.dirs.is_empty());
    insta::assert_snapshot!(
        "no_trigger_dirs",
        message(&c.discover_task_files().unwrap_err(), dir.path())
    );
}

#[test]
fn missing_dir_is_an_error() {
    let dir = project(&[
        (
            "trigger.config.ts",
            &config_with("  dirs: [\"./src/trigger\", \"./src/jobs\"],"),
        ),
        ("src/trigger/a.ts", ""),
    ]);
    let c = load_dir(dir.path()).unwrap();
    insta::assert_snapshot!(
        "missing_dir",
        message(&c.discover_task_files().unwrap_err(), dir.path())
    );
}

#[test]
fn invalid_ignore_glob() {
    let dir = project(&[
        (
            "trigger.config.ts",
            &config_with("  dirs: [\"t\"],\n  ignorePatterns: [\"**/[z-a].ts\"],"),
        ),
        ("t/a.ts", ""),
    ]);
    let c = load_dir(dir.path()).unwrap();
    insta::assert_snapshot!(
        "invalid_ignore_glob",
        message(&c.discover_task_files().unwrap_err(), dir.path())
    );
}

#[test]
fn project_files_found_upward() {
    let dir = project(&[
        ("package.json", "{}"),
        ("pnpm-lock.yaml", ""),
        ("pnpm-workspace.yaml", ""),
        ("tsconfig.json", "{}"),
        ("apps/jobs/package.json", "{}"),
        (
            "apps/jobs/trigger.config.ts",
            &config_with("  dirs: [\"src\"],"),
        ),
    ]);
    let project_dir = dir.path().join("apps/jobs");
    let c = load_dir(&project_dir).unwrap();
    assert_eq!(c.package_json_path, Some(project_dir.join("package.json")));
    assert_eq!(c.tsconfig_path, Some(dir.path().join("tsconfig.json")));
    assert_eq!(c.lockfile_path, Some(dir.path().join("pnpm-lock.yaml")));
    assert_eq!(c.workspace_dir, Some(dir.path().to_path_buf()));
}
