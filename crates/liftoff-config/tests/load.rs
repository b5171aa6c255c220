//! Config discovery, static evaluation, validation and resolution.
#![allow(clippy::float_cmp)] // exact literals are compared

mod common;

use common::*;
use liftoff_config::{
    DirsSource, ExtensionKind, ImportRef, LoadOptions, Runtime, StaticValue, load,
};
use serde_json::json;

#[test]
fn fixture_project_loads() {
    let dir = fixture("basic");
    let c = load_env(&dir, &[("PRISMA_VERSION", "6.1.0")]).expect("loads");
    assert_eq!(c.config_file, dir.join("trigger.config.ts"));
    assert_eq!(c.working_dir, dir);
    assert_eq!(c.package_json_path, Some(dir.join("package.json")));
    assert_eq!(c.tsconfig_path, Some(dir.join("tsconfig.json")));
    assert_eq!(c.project, "proj_basicfixture");
    assert_eq!(c.runtime, Runtime::Node);
    assert_eq!(c.max_duration, 3600.0);
    assert_eq!(c.dirs, vec!["./src/trigger"]);
    assert_eq!(c.dirs_source, DirsSource::Config);
    assert_eq!(c.ignore_patterns.len(), 12);
    assert_eq!(
        c.tsconfig.as_deref(),
        Some(dir.join("tsconfig.json").to_str().unwrap())
    );
    assert_eq!(c.build.external, vec!["sharp", "@napi-rs/canvas"]);
    assert_eq!(c.build.conditions, vec!["react-server"]);
    assert_eq!(c.build.jsx.factory, "React.createElement");
    assert_eq!(c.build.jsx.fragment, "React.Fragment");
    assert!(!c.build.jsx.automatic);
    assert!(c.has_instrumentations);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);

    let ext = &c.build.extensions;
    assert_eq!(ext.len(), 5);
    assert_eq!(ext[0].kind, ExtensionKind::Call);
    assert_eq!(ext[0].callee.as_deref(), Some("aptGet"));
    assert_eq!(
        ext[0].import,
        Some(ImportRef {
            source: "@trigger.dev/build/extensions/core".into(),
            imported: "aptGet".into()
        })
    );
    assert_eq!(
        ext[0].args[0].to_json(),
        Some(json!({ "packages": ["ffmpeg"] }))
    );
    assert_eq!((ext[0].span.line, ext[0].span.column), (34, 7));
    assert_eq!(ext[1].callee.as_deref(), Some("additionalFiles"));
    assert_eq!(
        ext[2].import.as_ref().map(|i| i.source.as_str()),
        Some("@trigger.dev/build/extensions/prisma")
    );
    assert_eq!(
        ext[2].args[0].to_json(),
        Some(json!({ "schema": "prisma/schema.prisma", "version": "6.1.0" }))
    );
    // Namespace import: `py.pythonExtension(...)`.
    assert_eq!(ext[3].callee.as_deref(), Some("py.pythonExtension"));
    assert_eq!(
        ext[3].import,
        Some(ImportRef {
            source: "@trigger.dev/python/extension".into(),
            imported: "pythonExtension".into()
        })
    );
    assert_eq!(ext[4].kind, ExtensionKind::InlineObject);
    assert_eq!(
        ext[4].args[0].get("name").and_then(StaticValue::as_str),
        Some("inline")
    );
    assert!(matches!(
        ext[4].args[0].get("onBuildComplete"),
        Some(StaticValue::Unevaluable(_))
    ));
    assert!(ext.iter().all(|e| !e.synthetic));

    // Runtime-only fields are kept (as far as they evaluate) in `raw`.
    assert_eq!(
        c.raw.get("logLevel").and_then(StaticValue::as_str),
        Some("log")
    );
    assert_eq!(
        c.raw
            .get("retries")
            .and_then(|r| r.get("default"))
            .and_then(|d| d.get("maxTimeoutInMs"))
            .and_then(StaticValue::as_f64),
        Some(10_000.0)
    );
    assert!(matches!(
        c.raw.get("init"),
        Some(StaticValue::Unevaluable(_))
    ));

    // Default for an unset env var with a `??` fallback.
    let c = load_dir(&dir).expect("loads");
    assert_eq!(
        c.build.extensions[2].args[0]
            .get("version")
            .and_then(StaticValue::as_str),
        Some("5.20.0")
    );
}

#[test]
fn export_forms() {
    let forms = [
        "import { defineConfig } from \"@trigger.dev/sdk/v3\";\nexport default defineConfig({ project: \"proj_a\", maxDuration: 60 });",
        "export default { project: \"proj_a\", maxDuration: 60 };",
        "import { defineConfig } from \"@trigger.dev/sdk/v3\";\nexport const config = defineConfig({ project: \"proj_a\", maxDuration: 60 });",
        "import type { TriggerConfig } from \"@trigger.dev/sdk/v3\";\nexport const config: TriggerConfig = { project: \"proj_a\", maxDuration: 60 };",
        "import { defineConfig as dc } from \"@trigger.dev/sdk\";\nexport default dc(({ project: \"proj_a\", maxDuration: 60 }) satisfies object);",
        "const cfg = { project: \"proj_a\", maxDuration: 60 } as const;\nexport default defineConfig(cfg!);",
        "const inner = { project: \"proj_a\", maxDuration: 60 };\nconst cfg = defineConfig(inner);\nexport default cfg;",
        "const cfg = { project: \"proj_a\", maxDuration: 60 };\nexport { cfg as default };",
        "const config = { project: \"proj_a\", maxDuration: 60 };\nexport { config };",
        // The default export wins over `config`, as in c12.
        "export const config = { project: \"proj_b\", maxDuration: 60 };\nexport default { project: \"proj_a\", maxDuration: 60 };",
    ];
    for (i, source) in forms.iter().enumerate() {
        let (_dir, result) = load_source(source);
        let c = result.unwrap_or_else(|e| panic!("form {i}: {e}"));
        assert_eq!(c.project, "proj_a", "form {i}");
        assert_eq!(c.max_duration, 60.0, "form {i}");
    }
}

#[test]
fn commonjs_config() {
    let dir = project(&[(
        "trigger.config.cjs",
        "const { defineConfig } = require(\"@trigger.dev/sdk/v3\");\nconst { aptGet } = require(\"@trigger.dev/build/extensions/core\");\nmodule.exports = defineConfig({ project: \"proj_cjs\", maxDuration: 30, build: { extensions: [aptGet({ packages: [\"git\"] })] } });\n",
    )]);
    let c = load_dir(dir.path()).expect("loads");
    assert_eq!(c.project, "proj_cjs");
    assert_eq!(
        c.build.extensions[0].import,
        Some(ImportRef {
            source: "@trigger.dev/build/extensions/core".into(),
            imported: "aptGet".into()
        })
    );
}

#[test]
fn config_file_order_and_override() {
    let dir = project(&[
        ("trigger.config.ts", &config_with("  dirs: [\"ts\"],")),
        ("trigger.config.js", &config_with("  dirs: [\"js\"],")),
        (
            "other/custom.config.mts",
            &config_with("  dirs: [\"mts\"],"),
        ),
    ]);
    // `.js` is tried before `.ts` (c12/jiti order).
    assert_eq!(load_dir(dir.path()).unwrap().dirs, vec!["js"]);

    let mut o = opts(dir.path());
    o.config_file = Some("other/custom.config.mts".into());
    let c = load(&o).unwrap();
    assert_eq!(c.dirs, vec!["mts"]);
    assert_eq!(c.working_dir, dir.path().join("other"));

    // The extension may be left out, as with c12.
    o.config_file = Some("trigger.config".into());
    assert_eq!(load(&o).unwrap().dirs, vec!["js"]);

    o.config_file = Some("nope.config.ts".into());
    let msg = message(&load(&o).unwrap_err(), dir.path());
    insta::assert_snapshot!("explicit_config_missing", msg);
}

#[test]
fn missing_config() {
    let dir = project(&[("package.json", "{}")]);
    insta::assert_snapshot!(
        "missing_config",
        err_message(dir.path(), load_dir(dir.path()))
    );
}

#[test]
fn syntax_error_has_line_and_column() {
    let (dir, result) = load_source(
        "export default {\n  project: \"proj_x\",\n  maxDuration: 300\n  dirs: [\"a\"],\n};\n",
    );
    let msg = err_message(dir.path(), result);
    assert!(
        msg.starts_with("[DIR]/trigger.config.ts:4:3: syntax error:"),
        "{msg}"
    );
    insta::assert_snapshot!("syntax_error", msg);
}

#[test]
fn process_env_reads() {
    let source = "const ref = process.env.TRIGGER_PROJECT_REF;\nexport default {\n  project: ref,\n  maxDuration: 300,\n  dirs: [process.env[\"TASK_DIR\"] ?? \"./default\", process.env.OTHER || \"fallback\"],\n  tsconfig: process.env.TSCONFIG,\n};\n";
    let dir = project(&[("trigger.config.ts", source)]);
    let c = load_env(
        dir.path(),
        &[
            ("TRIGGER_PROJECT_REF", "proj_env"),
            ("TASK_DIR", "./from-env"),
            ("OTHER", ""),
        ],
    )
    .unwrap();
    assert_eq!(c.project, "proj_env");
    assert_eq!(c.dirs, vec!["./from-env", "fallback"]);
    // Unset env var → the field is absent → the default (no tsconfig.json here).
    assert_eq!(c.tsconfig, None);

    let c = load_env(dir.path(), &[("TRIGGER_PROJECT_REF", "proj_env")]).unwrap();
    assert_eq!(c.dirs, vec!["./default", "fallback"]);

    // Missing env var for `project`: the error says which one.
    insta::assert_snapshot!(
        "project_from_missing_env",
        err_message(dir.path(), load_dir(dir.path()))
    );
}

#[test]
fn literals_numbers_and_templates() {
    let (_d, c) = load_source(
        "const base = \"src\";\nexport default {\n  project: `proj_${\"tmpl\"}`,\n  maxDuration: 1_000,\n  dirs: [`./${base}/trigger`, `plain`],\n  build: { external: [`a-b`], jsx: { factory: 'h', fragment: \"Fragment\" } },\n};\n",
    );
    let c = c.unwrap();
    assert_eq!(c.project, "proj_tmpl");
    assert_eq!(c.max_duration, 1000.0);
    assert_eq!(c.dirs, vec!["./src/trigger", "plain"]);
    assert_eq!(c.build.external, vec!["a-b"]);
    assert_eq!(c.build.jsx.factory, "h");
    assert_eq!(c.build.jsx.fragment, "Fragment");
    assert!(c.build.jsx.automatic);

    let (_d, c) =
        load_source("export default { project: \"p\", maxDuration: 60 * 5, runtime: 'bun' };");
    let c = c.unwrap();
    assert_eq!(c.max_duration, 300.0);
    assert_eq!(c.runtime, Runtime::Bun);
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].contains("\"bun\" runtime is currently experimental"));
}

#[test]
fn project_ref_override() {
    let dir = project(&[("trigger.config.ts", "export default { maxDuration: 60 };")]);
    let mut o = opts(dir.path());
    insta::assert_snapshot!(
        "missing_project",
        message(&load(&o).unwrap_err(), dir.path())
    );
    o.project_ref = Some("proj_cli".into());
    assert_eq!(load(&o).unwrap().project, "proj_cli");

    let dir = project(&[("trigger.config.ts", &config_with(""))]);
    let o = LoadOptions {
        project_ref: Some("proj_cli".into()),
        ..opts(dir.path())
    };
    assert_eq!(load(&o).unwrap().project, "proj_cli");

    // An unevaluable `project` doesn't matter when --project-ref is given.
    let dir = project(&[(
        "trigger.config.ts",
        "export default { project: getRef(), maxDuration: 60 };",
    )]);
    let o = LoadOptions {
        project_ref: Some("proj_cli".into()),
        ..opts(dir.path())
    };
    assert_eq!(load(&o).unwrap().project, "proj_cli");
}

#[test]
fn max_duration_validation() {
    let (dir, r) = load_source("export default { project: \"p\" };");
    insta::assert_snapshot!("max_duration_missing", err_message(dir.path(), r));
    let (dir, r) = load_source("export default { project: \"p\", maxDuration: 3 };");
    insta::assert_snapshot!("max_duration_too_small", err_message(dir.path(), r));
    let (dir, r) = load_source("export default { project: \"p\", maxDuration: \"300\" };");
    assert!(
        err_message(dir.path(), r)
            .contains("must be at least 5 seconds. (found: the string \"300\")")
    );
    let (_dir, r) = load_source("export default { project: \"p\", maxDuration: 5 };");
    assert_eq!(r.unwrap().max_duration, 5.0);
}

#[test]
fn runtime_validation() {
    let (dir, r) =
        load_source("export default { project: \"p\", maxDuration: 60, runtime: \"deno\" };");
    insta::assert_snapshot!("unsupported_runtime", err_message(dir.path(), r));
}

#[test]
fn unevaluable_needed_fields_are_errors() {
    let (dir, r) = load_source(
        "import { getDirs } from \"./dirs\";\nexport default {\n  project: \"p\",\n  maxDuration: 60,\n  dirs: getDirs(),\n};\n",
    );
    let msg = err_message(dir.path(), r);
    assert!(
        msg.starts_with("[DIR]/trigger.config.ts:5:9: `dirs`"),
        "{msg}"
    );
    insta::assert_snapshot!("unevaluable_dirs", msg);

    let (dir, r) = load_source(
        "import { extra } from \"./externals\";\nexport default {\n  project: \"p\",\n  maxDuration: 60,\n  build: { external: [\"a\", extra] },\n};\n",
    );
    insta::assert_snapshot!("unevaluable_external", err_message(dir.path(), r));

    let (dir, r) = load_source(
        "export default { project: \"p\", maxDuration: 60, build: { jsx: { factory: pick() } } };",
    );
    assert!(
        err_message(dir.path(), r)
            .contains("`build.jsx.factory` must be known without running code")
    );

    let (dir, r) = load_source(
        "export default { project: \"p\", maxDuration: 60, ignorePatterns: [...base] };",
    );
    assert!(err_message(dir.path(), r).contains("`ignorePatterns[0]`"));

    let (dir, r) =
        load_source("export default { project: \"p\", maxDuration: Number(process.env.MAX) };");
    assert!(err_message(dir.path(), r).contains(
        "`maxDuration` must be known without running code, but it is a call to `Number(...)`"
    ));

    let (dir, r) = load_source("export default { project: \"p\", maxDuration: 60, dirs: [1] };");
    insta::assert_snapshot!("invalid_dirs_type", err_message(dir.path(), r));
}

#[test]
fn unevaluable_runtime_fields_are_fine() {
    let (_dir, r) = load_source(
        "import { retryPolicy, exporter } from \"./runtime\";\nexport default {\n  project: \"p\",\n  maxDuration: 60,\n  retries: retryPolicy(),\n  machine: process.env.MACHINE,\n  logLevel: pickLevel(),\n  telemetry: { exporters: [exporter] },\n  onSuccess: async () => {},\n  get enableConsoleLogging() { return true; },\n  ...{ extra: 1 },\n};\n",
    );
    let c = r.unwrap();
    assert!(
        matches!(c.raw.get("retries"), Some(StaticValue::Unevaluable(u)) if u.description == "a call to `retryPolicy(...)`")
    );
    assert_eq!(c.raw.get("extra").and_then(StaticValue::as_f64), Some(1.0));
    assert!(!c.has_instrumentations);
}

#[test]
fn whole_config_must_be_static() {
    let (dir, r) =
        load_source("import base from \"./base\";\nexport default defineConfig(base);\n");
    insta::assert_snapshot!("config_imported", err_message(dir.path(), r));
    let (dir, r) = load_source(
        "import base from \"./base\";\nexport default defineConfig({ ...base, maxDuration: 60 });\n",
    );
    assert!(err_message(dir.path(), r).contains("an object that spreads `base`"));
    let (dir, r) = load_source("export default defineConfig(() => ({ project: \"p\" }));");
    assert!(err_message(dir.path(), r).contains("the config is a function"));
    let (dir, r) = load_source("export const foo = 1;");
    insta::assert_snapshot!("no_config_export", err_message(dir.path(), r));
    let (dir, r) = load_source(
        "const cfg = { project: \"p\", maxDuration: 60 };\ncfg.project = process.env.REF;\nexport default cfg;",
    );
    assert!(err_message(dir.path(), r).contains(":2:1: liftoff reads trigger.config without running it, so the config must be an object literal, but `cfg` is modified after it is declared"));
}

#[test]
fn identifiers_and_mutations() {
    let (_d, r) = load_source(
        "const dirs = [\"./a\"];\nconst shared = { external: [\"x\"] };\nlet max = 120;\nvar proj = \"p\";\nexport default { project: proj, maxDuration: max, dirs, build: { external: shared.external } };",
    );
    let c = r.unwrap();
    assert_eq!(c.dirs, vec!["./a"]);
    assert_eq!(c.build.external, vec!["x"]);
    assert_eq!(c.max_duration, 120.0);

    // A binding modified elsewhere is not trusted.
    let (dir, r) = load_source(
        "const dirs = [\"./a\"];\nif (process.env.EXTRA) {\n  dirs.push(\"./b\");\n}\nexport default { project: \"p\", maxDuration: 60, dirs };",
    );
    insta::assert_snapshot!("mutated_dirs", err_message(dir.path(), r));
}

#[test]
fn instrumentations() {
    let cases = [
        (
            "telemetry: { instrumentations: [new PrismaInstrumentation()] },",
            true,
        ),
        ("telemetry: { instrumentations: [] },", false),
        ("instrumentations: [new OpenAIInstrumentation()],", true),
        ("telemetry: { exporters: [] },", false),
        ("telemetry: makeTelemetry(),", true),
        ("", false),
    ];
    for (extra, expected) in cases {
        let (_d, r) = load_source(&config_with(extra));
        assert_eq!(r.unwrap().has_instrumentations, expected, "{extra}");
    }
}

#[test]
fn deprecated_options_migrate_with_warnings() {
    let (_d, r) = load_source(&config_with(
        "  triggerDirectories: [\"./jobs\"],\n  tsconfigPath: \"./tsconfig.build.json\",\n  additionalFiles: [\"./prisma/schema.prisma\"],\n  additionalPackages: [\"prisma@5.x\"],\n  dependenciesToBundle: [/.*/],\n  resolveEnvVars: async () => ({ variables: {} }),\n  build: { extensions: [aptGet({ packages: [\"curl\"] })] },",
    ));
    let c = r.unwrap();
    assert_eq!(c.dirs, vec!["./jobs"]);
    assert_eq!(c.dirs_source, DirsSource::TriggerDirectories);
    assert_eq!(c.tsconfig.as_deref(), Some("./tsconfig.build.json"));
    let names: Vec<_> = c
        .build
        .extensions
        .iter()
        .map(|e| (e.callee.clone().unwrap_or_default(), e.synthetic))
        .collect();
    assert_eq!(
        names,
        vec![
            ("aptGet".into(), false),
            ("additionalFiles".into(), true),
            ("additionalPackages".into(), true),
            ("syncEnvVars".into(), true)
        ]
    );
    assert_eq!(
        c.build.extensions[1].args[0].to_json(),
        Some(json!({ "files": ["./prisma/schema.prisma"] }))
    );
    assert_eq!(
        c.build.extensions[2].args[0].to_json(),
        Some(json!({ "packages": ["prisma@5.x"] }))
    );
    assert_eq!(
        c.build.extensions[3].args[1].to_json(),
        Some(json!({ "override": true }))
    );
    insta::assert_snapshot!("deprecation_warnings", c.warnings.join("\n"));
}

#[test]
fn odd_inputs_never_panic() {
    let nested = format!(
        "export default {{ project: \"p\", maxDuration: 60, dirs: {}\"a\"{} }};",
        "[".repeat(150),
        "]".repeat(150)
    );
    let sources = [
        String::new(),
        "export default 5;".into(),
        "export default defineConfig();".into(),
        "export default defineConfig(a, b);".into(),
        "export default function () { return {}; }".into(),
        "const a = b; const b = a; export default { project: a, maxDuration: 60 };".into(),
        "const cfg = cfg2; const cfg2 = cfg; export default cfg;".into(),
        "export default { project: \"p\", maxDuration: 60, [key]: 1 };".into(),
        "export default { project: \"p\", maxDuration: 60, dirs: [...\"ab\"], build: { external: [`${1 + 1}`] } };".into(),
        "export default { project: '\\u{D800}', maxDuration: 1e400 };".into(),
        nested,
    ];
    for source in &sources {
        let (_d, _r) = load_source(source);
        let _ = liftoff_config::strip_build(std::path::Path::new("trigger.config.ts"), source);
    }
}

#[test]
fn esm_syntax_in_commonjs_extensions() {
    for name in [
        "trigger.config.cts",
        "trigger.config.cjs",
        "trigger.config.mjs",
        "trigger.config.mts",
        "trigger.config.js",
    ] {
        let dir = project(&[(
            name,
            "import { defineConfig } from \"@trigger.dev/sdk/v3\";\nexport default defineConfig({ project: \"p\", maxDuration: 60 });\n",
        )]);
        let c = load_dir(dir.path()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(c.config_file.file_name().unwrap().to_str(), Some(name));
    }
}

#[test]
fn assigned_env_vars_are_not_trusted() {
    let (dir, r) = load_source(
        "process.env.REF ??= \"proj_default\";\nexport default { project: process.env.REF, maxDuration: 60 };\n",
    );
    let msg = err_message(dir.path(), r);
    assert!(msg.contains(":2:27: `project` must be known without running code, but it is process.env.REF, which the config file assigns at line 1:1"), "{msg}");
}

#[test]
fn dotenv_import_warns() {
    let (_d, r) = load_source(
        "import \"dotenv/config\";\nexport default { project: \"p\", maxDuration: 60 };\n",
    );
    let c = r.unwrap();
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].contains("imports dotenv"));
}
