//! Sidecar tests with a real `node` and hand-written config modules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use liftoff_manifest::BuildManifest;
use serde_json::json;

use super::{Sidecar, SidecarExtension, SidecarOptions};
use crate::{Context, Extension, ExtensionError, LogLevel, Runtime, Target};

/// A project dir with `config.mjs` (and `node_modules` linked to a fixture's, when asked).
struct Project {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

impl Project {
    fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.mjs"), config).unwrap();
        std::fs::write(
            dir.path().join("package.json"),
            r#"{"name":"p","type":"module"}"#,
        )
        .unwrap();
        let mut env = BTreeMap::new();
        if let Some(path) = std::env::var_os("PATH") {
            env.insert("PATH".into(), path.to_string_lossy().into_owned());
        }
        Self { dir, env }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn options(&self) -> SidecarOptions {
        SidecarOptions {
            node: PathBuf::from("node"),
            config_module: self.path().join("config.mjs"),
            working_dir: self.path().to_path_buf(),
            timeout: Duration::from_secs(30),
            resolved_config: json!({ "project": "proj_test", "workingDir": self.path(), "runtime": "node", "build": { "external": [] } }),
            env: self.env.clone(),
        }
    }

    fn start(&self) -> Sidecar {
        Sidecar::start(self.options()).unwrap()
    }

    fn ctx(&self) -> Context<'_> {
        Context::new(
            Target::Deploy,
            Runtime::Node,
            self.path(),
            "proj_test",
            &self.env,
        )
    }
}

/// `@trigger.dev/build` 3.3.17 from a fixture, if it has been installed.
fn fixture_node_modules() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/custom-ext/node_modules");
    dir.join("@trigger.dev/build/package.json")
        .is_file()
        .then(|| dir.canonicalize().unwrap())
}

fn manifest_with_server_env(env: &[(&str, &str)]) -> BuildManifest {
    let mut m = BuildManifest {
        environment: "prod".into(),
        ..BuildManifest::default()
    };
    m.deploy.env = Some(
        env.iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect::<IndexMap<_, _>>(),
    );
    m
}

fn messages(ctx: &Context<'_>) -> Vec<(LogLevel, String)> {
    ctx.logs
        .iter()
        .map(|l| (l.level, l.message.clone()))
        .collect()
}

#[test]
fn on_build_complete_adds_a_build_env_layer_from_the_server_env() {
    let p = Project::new(
        r#"
export default {
  project: "proj_test",
  build: {
    extensions: [{
      name: "db-url",
      onBuildComplete(context, manifest) {
        context.logger.log("copying", Object.keys(manifest.deploy.env).length, "var");
        context.addLayer({
          id: "db-url",
          build: { env: { DATABASE_URL: manifest.deploy.env.DATABASE_URL, NOT_SET: manifest.deploy.env.NOT_SET } },
          deploy: { env: { FROM_EXT: "yes", EMPTY: "", ZERO: 0 } },
        });
      },
    }],
  },
};
"#,
    );
    let mut sidecar = p.start();
    let d = sidecar.describe().unwrap();
    assert_eq!(d.extensions.len(), 1);
    assert_eq!(d.extensions[0].name, "db-url");
    assert_eq!(d.extensions[0].hooks, ["onBuildComplete"]);
    let mut ctx = p.ctx();
    sidecar
        .on_build_complete(
            0,
            &mut ctx,
            &manifest_with_server_env(&[("DATABASE_URL", "postgres://db")]),
        )
        .unwrap();
    assert_eq!(ctx.layers.len(), 1);
    let env = ctx.layers[0].build.as_ref().unwrap().env.as_ref().unwrap();
    assert_eq!(
        env.get("DATABASE_URL"),
        Some(&Some("postgres://db".to_string()))
    );
    assert_eq!(
        env.get("NOT_SET"),
        Some(&None),
        "an undefined value keeps its key"
    );
    let deploy = ctx.layers[0].deploy.as_ref().unwrap().env.as_ref().unwrap();
    assert_eq!(deploy.get("FROM_EXT"), Some(&Some("yes".to_string())));
    assert_eq!(deploy.get("EMPTY"), Some(&None));
    assert_eq!(
        deploy.get("ZERO"),
        Some(&None),
        "falsy deploy values are never synced"
    );
    assert_eq!(
        messages(&ctx),
        [(LogLevel::Log, "copying 1 var".to_string())]
    );
    // No onBuildStart: nothing is sent and nothing is added.
    let mut ctx = p.ctx();
    sidecar.on_build_start(0, &mut ctx).unwrap();
    assert!(ctx.layers.is_empty());
}

#[test]
fn on_build_start_sees_an_upstream_build_context() {
    let p = Project::new(
        r#"
export default {
  project: "proj_test",
  build: {
    extensions: [{
      name: "starter",
      async onBuildStart(context) {
        const resolved = await context.resolvePath("./config.mjs");
        const missing = await context.resolvePath("definitely-not-installed");
        context.logger.debug("debug line");
        context.logger.warn("warn line");
        context.logger.progress("progress line");
        const spinner = context.logger.spinner("spinning");
        spinner.message("still spinning");
        spinner.stop("done");
        context.addLayer({
          id: "starter",
          commands: [`echo ${context.target} ${context.config.project} ${context.workingDir === process.cwd()}`],
          image: { pkgs: ["curl"], instructions: ["ENV A=1"] },
          dependencies: { sharp: "0.33.0" },
          conditions: ["worker"],
          files: { "a.txt": "ignored" },
        });
        context.addLayer({
          id: "paths",
          commands: [String(String(resolved).endsWith("config.mjs")), String(missing),
                     String(context.config.build.extensions.length), typeof context.config.build.extensions[0].onBuildStart],
        });
      },
    }],
  },
};
"#,
    );
    let mut sidecar = p.start();
    let mut ctx = p.ctx();
    sidecar.on_build_start(0, &mut ctx).unwrap();
    assert_eq!(ctx.layers.len(), 2);
    let l = &ctx.layers[0];
    assert_eq!(l.id, "starter");
    assert_eq!(
        l.commands.as_deref().unwrap(),
        ["echo deploy proj_test true"]
    );
    let image = l.image.as_ref().unwrap();
    assert_eq!(image.pkgs.as_deref().unwrap(), ["curl"]);
    assert_eq!(image.instructions.as_deref().unwrap(), ["ENV A=1"]);
    assert_eq!(l.dependencies.as_ref().unwrap()["sharp"], "0.33.0");
    assert_eq!(l.conditions.as_deref().unwrap(), ["worker"]);
    assert_eq!(
        ctx.layers[1].commands.as_deref().unwrap(),
        ["true", "undefined", "1", "function"]
    );
    assert_eq!(
        messages(&ctx),
        [
            (LogLevel::Debug, "debug line".into()),
            (LogLevel::Warn, "warn line".into()),
            (LogLevel::Log, "progress line".into()),
            (LogLevel::Log, "spinning".into()),
            (LogLevel::Log, "still spinning".into()),
            (LogLevel::Log, "done".into()),
        ]
    );
}

#[test]
fn externals_for_target() {
    let p = Project::new(
        r#"
export default {
  build: {
    extensions: [
      { name: "ext", externalsForTarget(target) { console.log("asked for", target); return ["sharp", `pkg-${target}`]; } },
      { name: "none", externalsForTarget() { return undefined; } },
    ],
  },
};
"#,
    );
    let mut sidecar = p.start();
    assert_eq!(
        sidecar.externals_for_target(0, Target::Deploy).unwrap(),
        ["sharp", "pkg-deploy"]
    );
    assert_eq!(
        sidecar.externals_for_target(1, Target::Deploy).unwrap(),
        Vec::<String>::new()
    );
    let logs = sidecar.take_logs();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].extension, "ext");
    assert_eq!(logs[0].message, "asked for deploy");
}

#[test]
fn a_throwing_hook_names_the_extension_and_keeps_the_stack() {
    let p = Project::new(
        r#"
function explode() { throw new TypeError("boom: the bucket is missing"); }
export default {
  build: { extensions: [{ name: "exploder", onBuildComplete(context) { context.logger.log("before"); explode(); } }] },
};
"#,
    );
    let mut sidecar = p.start();
    sidecar.describe().unwrap();
    let mut ctx = p.ctx();
    let err = sidecar
        .on_build_complete(0, &mut ctx, &BuildManifest::default())
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            ExtensionError::Failed {
                phase: "onBuildComplete",
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.starts_with(
            "exploder failed in onBuildComplete: TypeError: boom: the bucket is missing"
        ),
        "{text}"
    );
    assert!(
        text.contains("at explode ("),
        "the JS stack is kept: {text}"
    );
    assert_eq!(
        messages(&ctx),
        [(LogLevel::Log, "before".to_string())],
        "logs before the throw are kept"
    );
    // The sidecar is still usable after a thrown error.
    let err = sidecar
        .on_build_complete(0, &mut p.ctx(), &BuildManifest::default())
        .unwrap_err();
    assert!(err.to_string().contains("boom"));
}

#[test]
fn a_non_error_throw_is_reported() {
    let p = Project::new(
        r#"export default { build: { extensions: [{ name: "str", onBuildStart() { throw "just a string"; } }] } };"#,
    );
    let mut sidecar = p.start();
    let err = sidecar
        .on_build_start(0, &mut p.ctx())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("str failed in onBuildStart") && err.contains("'just a string'"),
        "{err}"
    );
}

#[test]
fn a_hanging_hook_times_out_and_stops_node() {
    let p = Project::new(
        r#"export default { build: { extensions: [{ name: "sleepy", onBuildStart() { return new Promise(() => {}); } }] } };"#,
    );
    let mut sidecar = Sidecar::start(SidecarOptions {
        timeout: Duration::from_secs(1),
        ..p.options()
    })
    .unwrap();
    sidecar.describe().unwrap();
    let started = Instant::now();
    let err = sidecar
        .on_build_start(0, &mut p.ctx())
        .unwrap_err()
        .to_string();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        err,
        "sleepy: onBuildStart did not finish within 1 s; raise it with --extension-timeout or skip it with --skip-extension sleepy"
    );
    let err = sidecar.externals_for_target(0, Target::Deploy);
    assert!(err.is_ok(), "no externalsForTarget hook: not sent");
    let err = sidecar
        .on_build_start(0, &mut p.ctx())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "the Node sidecar is no longer running (it was stopped after onBuildStart timed out)"
        ),
        "{err}"
    );
}

#[test]
fn a_config_that_hangs_while_loading_times_out() {
    let p = Project::new(
        "await new Promise(() => { setInterval(() => {}, 1000); });\nexport default {};\n",
    );
    let mut sidecar = Sidecar::start(SidecarOptions {
        timeout: Duration::from_secs(1),
        ..p.options()
    })
    .unwrap();
    let err = sidecar.describe().unwrap_err().to_string();
    assert!(
        err.contains("did not finish within 1 s; raise it with --extension-timeout"),
        "{err}"
    );
}

#[test]
fn node_missing() {
    let p = Project::new("export default {};");
    let err = Sidecar::start(SidecarOptions {
        node: "/nonexistent/node".into(),
        ..p.options()
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("`/nonexistent/node` was not found: "),
        "{err}"
    );

    // Looked up on the PATH node gets; extension names come from the static config.
    let mut opts = p.options();
    opts.env.insert(
        "PATH".into(),
        p.path().join("empty-bin").display().to_string(),
    );
    opts.resolved_config = json!({
        "build": { "extensions": [
            { "callee": "aptGet", "import": { "source": "@trigger.dev/build/extensions/core", "imported": "aptGet" },
              "args": [{ "type": "object", "value": [] }], "kind": "call" },
            { "callee": "syncEnvVars", "import": { "source": "@trigger.dev/build/extensions/core", "imported": "syncEnvVars" },
              "args": [{ "type": "unevaluable", "value": { "description": "a function" } }], "kind": "call" },
            { "callee": null, "import": null, "kind": "inlineObject",
              "args": [{ "type": "object", "value": [["name", { "type": "string", "value": "my-ext" }]] }] },
        ] }
    });
    let err = Sidecar::start(opts).unwrap_err().to_string();
    assert_eq!(
        err,
        "`node` was not found on PATH: liftoff runs custom build extensions (syncEnvVars, my-ext) with Node.js. Install Node 18+ or skip them with --skip-extension syncEnvVars --skip-extension my-ext"
    );
}

#[test]
fn console_output_in_hooks_does_not_break_the_protocol() {
    let p = Project::new(
        r#"
import { spawnSync } from "node:child_process";
console.log("loading the config");
export default {
  build: {
    extensions: [{
      name: "chatty",
      onBuildComplete(context) {
        console.log("plain log", { a: 1 });
        console.info("info");
        console.debug("debugging");
        console.warn("careful");
        console.error("bad");
        console.log('{"id":1,"result":{"layers":[]}}');
        process.stdout.write("partial ");
        process.stdout.write("line\nsecond line\n");
        process.stdout.write("no newline");
        spawnSync("sh", ["-c", "printf 'from a child\\n'"], { stdio: "inherit" });
        context.addLayer({ id: "chatty", commands: ["ok"] });
      },
    }],
  },
};
"#,
    );
    let mut sidecar = p.start();
    let d = sidecar.describe().unwrap();
    assert_eq!(d.logs.len(), 1);
    assert_eq!(d.logs[0].message, "loading the config");
    assert_eq!(d.logs[0].extension, "trigger.config");
    let mut ctx = p.ctx();
    sidecar
        .on_build_complete(0, &mut ctx, &BuildManifest::default())
        .unwrap();
    assert_eq!(ctx.layers.len(), 1);
    assert_eq!(ctx.layers[0].commands.as_deref().unwrap(), ["ok"]);
    let logs = messages(&ctx);
    let expected = [
        (LogLevel::Log, "plain log { a: 1 }"),
        (LogLevel::Log, "info"),
        (LogLevel::Debug, "debugging"),
        (LogLevel::Warn, "careful"),
        (LogLevel::Warn, "bad"),
        (LogLevel::Log, r#"{"id":1,"result":{"layers":[]}}"#),
        (LogLevel::Log, "partial line"),
        (LogLevel::Log, "second line"),
        (LogLevel::Log, "from a child"),
        (LogLevel::Log, "no newline"),
    ];
    for (level, message) in expected {
        assert!(
            logs.contains(&(level, message.to_string())),
            "missing {level:?} {message:?} in {logs:#?}"
        );
    }
    assert_eq!(logs.len(), expected.len(), "{logs:#?}");
    // Still in sync afterwards.
    let mut ctx = p.ctx();
    sidecar
        .on_build_complete(0, &mut ctx, &BuildManifest::default())
        .unwrap();
    assert_eq!(ctx.layers.len(), 1);
}

#[test]
fn instrumented_package_names_skip_builtins_and_duplicates() {
    let p = Project::new(
        r#"
class FakeInstrumentation {
  constructor(names) { this.names = names; }
  getModuleDefinitions() { return this.names.map((name) => ({ name, supportedVersions: ["*"] })); }
}
export default {
  telemetry: {
    instrumentations: [
      new FakeInstrumentation(["http", "node:https", "openai", "@prisma/client"]),
      { getModuleDefinitions: () => undefined },
      {},
      new FakeInstrumentation(["openai", "fs", "undici"]),
    ],
  },
  instrumentations: [new FakeInstrumentation(["ignored-when-telemetry-is-set"])],
};
"#,
    );
    let mut sidecar = p.start();
    let d = sidecar.describe().unwrap();
    assert_eq!(
        d.instrumented_package_names,
        ["openai", "@prisma/client", "undici"]
    );
    assert!(d.extensions.is_empty());

    let p = Project::new(
        r#"export const config = { instrumentations: [{ getModuleDefinitions: () => [{ name: "pg" }, { name: "net" }] }] };"#,
    );
    let d = p.start().describe().unwrap();
    assert_eq!(
        d.instrumented_package_names,
        ["pg"],
        "deprecated top-level instrumentations, `config` export"
    );
}

#[test]
fn register_plugin_is_a_clear_error() {
    let p = Project::new(
        r#"
const plugin = { name: "my-esbuild-plugin", setup(build) {} };
export default {
  build: {
    extensions: [
      { name: "with-plugin", onBuildStart(context) { context.addLayer({ id: "kept" }); context.registerPlugin(plugin, { placement: "last" }); } },
      { name: "dev-only-plugin", onBuildStart(context) { context.registerPlugin(plugin, { target: "dev" }); } },
    ],
  },
};
"#,
    );
    let mut sidecar = p.start();
    sidecar.describe().unwrap();
    let mut ctx = p.ctx();
    let err = sidecar.on_build_start(0, &mut ctx).unwrap_err().to_string();
    assert_eq!(
        err,
        "with-plugin failed in onBuildStart: it registers the esbuild plugin `my-esbuild-plugin`, but liftoff bundles with rolldown and cannot run esbuild plugins. Skip the extension with --skip-extension with-plugin"
    );
    assert_eq!(ctx.layers.len(), 1);
    // A plugin for another target is dropped, as upstream.
    sidecar.on_build_start(1, &mut p.ctx()).unwrap();
}

#[test]
fn node_exiting_reports_its_stderr() {
    let p = Project::new(
        r#"export default { build: { extensions: [{ name: "quitter", onBuildComplete() { process.stderr.write("fatal: giving up\n"); process.exit(3); } }] } };"#,
    );
    let mut sidecar = p.start();
    let err = sidecar
        .on_build_complete(0, &mut p.ctx(), &BuildManifest::default())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("quitter failed in onBuildComplete: Node exited unexpectedly (exit status: 3) while it ran"), "{err}");
    assert!(err.contains("\n  fatal: giving up"), "{err}");
    let err = sidecar
        .on_build_complete(0, &mut p.ctx(), &BuildManifest::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no longer running (it exited unexpectedly (exit status: 3))"),
        "{err}"
    );
}

#[test]
fn config_load_errors() {
    let p = Project::new("throw new Error(\"config exploded\");\nexport default {};\n");
    let err = p.start().describe().unwrap_err().to_string();
    assert!(
        err.starts_with("could not load the config in Node ("),
        "{err}"
    );
    assert!(err.contains("Error: config exploded\n    at "), "{err}");

    let p = Project::new("export const something = 1;\n");
    let err = p.start().describe().unwrap_err().to_string();
    assert!(err.contains("has no config object"), "{err}");

    let p = Project::new(
        r#"export default { telemetry: { instrumentations: [{ getModuleDefinitions() { throw new Error("no defs"); } }] } };"#,
    );
    let err = p.start().describe().unwrap_err().to_string();
    assert!(
        err.contains("telemetry.instrumentations[0].getModuleDefinitions() threw: no defs"),
        "{err}"
    );
}

#[test]
fn deprecated_options_append_extensions_like_upstream() {
    let p = Project::new(
        r#"
export default {
  project: "proj_test",
  build: { extensions: [{ name: "first" }] },
  additionalFiles: ["./a.txt"],
  additionalPackages: [],
  resolveEnvVars: async ({ env, projectRef }) => ({ variables: { FROM_RESOLVE: `${projectRef}:${env.SERVER}`, TRIGGER_SECRET: "x" } }),
};
"#,
    );
    let mut sidecar = p.start();
    let d = sidecar.describe().unwrap();
    let names: Vec<_> = d.extensions.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["first", "AdditionalFiles", "SyncEnvVarsExtension"]);
    let mut ctx = p.ctx();
    sidecar
        .on_build_complete(2, &mut ctx, &manifest_with_server_env(&[("SERVER", "s")]))
        .unwrap();
    let deploy = ctx.layers[0].deploy.as_ref().unwrap();
    assert_eq!(deploy.override_, Some(true));
    let env = deploy.env.as_ref().unwrap();
    assert_eq!(env.keys().collect::<Vec<_>>(), ["FROM_RESOLVE"]);
    assert_eq!(env["FROM_RESOLVE"], Some("proj_test:s".to_string()));
}

#[test]
fn upstream_sync_env_vars_filters_and_accepts_both_result_forms() {
    let Some(node_modules) = fixture_node_modules() else {
        // The fixture is not installed (`npm ci` in fixtures/custom-ext); the
        // embedded port is covered by deprecated_options_append_extensions_like_upstream.
        return;
    };
    let p = Project::new(
        r#"
import { syncEnvVars } from "@trigger.dev/build/extensions/core";
export default {
  project: "proj_test",
  build: {
    extensions: [
      syncEnvVars(async ({ env, environment, projectRef }) => ({
        API_KEY: `${projectRef}-${environment}-${env.SERVER_ONLY}`,
        SECOND: "2",
        PATH: "/usr/bin",
        HOME: "/root",
        GITHUB_TOKEN: "ghp",
        TRIGGER_SECRET_KEY: "tr_dev",
        TRIGGER_API_URL: "https://x",
      })),
      syncEnvVars(() => [{ name: "ONE", value: "1" }, { name: "BAD", value: 2 }, "junk", { name: "TRIGGER_X", value: "x" }], { override: false }),
      syncEnvVars(() => { throw new Error("vault down"); }),
      syncEnvVars(() => ({ PWD: "/x" })),
    ],
  },
};
"#,
    );
    std::os::unix::fs::symlink(node_modules, p.path().join("node_modules")).unwrap();
    let mut sidecar = p.start();
    let d = sidecar.describe().unwrap();
    assert!(
        d.extensions
            .iter()
            .all(|e| e.name == "SyncEnvVarsExtension" && e.hooks == ["onBuildComplete"])
    );
    let manifest = manifest_with_server_env(&[("SERVER_ONLY", "srv")]);

    let mut ctx = p.ctx();
    sidecar.on_build_complete(0, &mut ctx, &manifest).unwrap();
    let deploy = ctx.layers[0].deploy.as_ref().unwrap();
    assert_eq!(ctx.layers[0].id, "sync-env-vars");
    assert_eq!(deploy.override_, Some(true));
    let env = deploy.env.as_ref().unwrap();
    assert_eq!(
        env.keys().collect::<Vec<_>>(),
        ["API_KEY", "SECOND"],
        "deny-list and TRIGGER_ prefix are dropped"
    );
    assert_eq!(env["API_KEY"], Some("proj_test-prod-srv".to_string()));
    assert_eq!(
        messages(&ctx),
        [
            (LogLevel::Log, "Invoking syncEnvVars callback".into()),
            (LogLevel::Log, "Found 2 env vars to sync".into())
        ]
    );

    let mut ctx = p.ctx();
    sidecar.on_build_complete(1, &mut ctx, &manifest).unwrap();
    let deploy = ctx.layers[0].deploy.as_ref().unwrap();
    assert_eq!(deploy.override_, Some(false));
    assert_eq!(
        deploy.env.as_ref().unwrap().keys().collect::<Vec<_>>(),
        ["ONE"],
        "array form: only string name/value items"
    );
    assert_eq!(messages(&ctx)[1].1, "Found 1 env var");

    let mut ctx = p.ctx();
    sidecar.on_build_complete(2, &mut ctx, &manifest).unwrap();
    assert!(ctx.layers.is_empty());
    let logs = messages(&ctx);
    assert_eq!(logs[1].0, LogLevel::Warn);
    assert!(
        logs[1]
            .1
            .starts_with("Error calling syncEnvVars function Error: vault down"),
        "{logs:?}"
    );
    assert_eq!(logs[2].1, "No env vars detected");

    let mut ctx = p.ctx();
    sidecar.on_build_complete(3, &mut ctx, &manifest).unwrap();
    assert!(ctx.layers.is_empty());
    assert_eq!(messages(&ctx)[1].1, "No env vars detected");

    // Dev target: upstream's syncEnvVars does nothing.
    let mut ctx = Context::new(Target::Dev, Runtime::Node, p.path(), "proj_test", &p.env);
    sidecar.on_build_complete(0, &mut ctx, &manifest).unwrap();
    assert!(ctx.layers.is_empty() && ctx.logs.is_empty());
}

#[test]
fn process_env_is_the_given_env() {
    let mut p = Project::new(
        r#"export default { build: { extensions: [{ name: "env", onBuildStart(c) { c.addLayer({ id: "env", commands: [String(process.env.MY_TOKEN), String(process.env.CARGO_MANIFEST_DIR)] }); } }] } };"#,
    );
    p.env.insert("MY_TOKEN".into(), "t0k".into());
    assert!(
        std::env::var_os("CARGO_MANIFEST_DIR").is_some(),
        "set for the test process, not passed to node"
    );
    let mut sidecar = p.start();
    let mut ctx = p.ctx();
    sidecar.on_build_start(0, &mut ctx).unwrap();
    assert_eq!(
        ctx.layers[0].commands.as_deref().unwrap(),
        ["t0k", "undefined"]
    );
}

#[test]
fn sidecar_extension_delegates_and_takes_the_runtime_name() {
    let p = Project::new(
        r#"export default { build: { extensions: [{ name: "runtime-name", externalsForTarget: () => ["x"], onBuildStart(c) { c.addLayer({ id: "s" }); } }] } };"#,
    );
    let mut ext = SidecarExtension::new(0, "staticName".into());
    let err = ext.on_build_start(&mut p.ctx()).unwrap_err().to_string();
    assert!(
        err.contains("staticName (build.extensions[0]) cannot run onBuildStart")
            && err.contains("--skip-extension staticName"),
        "{err}"
    );
    ext.attach(Arc::new(Mutex::new(p.start()))).unwrap();
    assert_eq!(ext.name(), "runtime-name");
    assert_eq!(ext.implementation(), "sidecar");
    assert_eq!(ext.externals_for_target(Target::Deploy).unwrap(), ["x"]);
    let mut ctx = p.ctx();
    ext.on_build_start(&mut ctx).unwrap();
    assert_eq!(ctx.layers[0].id, "s");
    ext.on_build_complete(&mut p.ctx(), &BuildManifest::default())
        .unwrap();
}

#[test]
fn an_invalid_layer_is_an_error() {
    let p = Project::new(
        r#"export default { build: { extensions: [{ name: "bad-layer", onBuildStart(c) { c.addLayer({ id: "bad", commands: "not an array" }); } }] } };"#,
    );
    let err = p
        .start()
        .on_build_start(0, &mut p.ctx())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "bad-layer failed in onBuildStart: added an invalid layer `bad`: invalid type"
        ),
        "{err}"
    );
}

#[test]
fn a_node_that_dies_at_startup_reports_its_stderr() {
    use std::os::unix::fs::PermissionsExt;
    let p = Project::new("export default {};");
    let fake = p.path().join("fake-node");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho \"fake-node: bad option: --input-type=module\" >&2\nexit 9\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = Sidecar::start(SidecarOptions {
        node: fake.clone(),
        ..p.options()
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("exited right after starting (exit status: 9); liftoff needs Node 18+"),
        "{err}"
    );
    assert!(
        err.ends_with("\n  fake-node: bad option: --input-type=module"),
        "{err}"
    );

    // Too old: the version check.
    std::fs::write(
        &fake,
        "#!/bin/sh\nread line\nprintf '%s{\"id\":1,\"result\":{\"node\":\"16.20.0\"}}\\n' \"$4\"\nsleep 5\n",
    )
    .unwrap();
    let err = Sidecar::start(SidecarOptions {
        node: fake,
        ..p.options()
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("with Node.js 18 or newer, but") && err.contains("is v16.20.0"),
        "{err}"
    );
}
