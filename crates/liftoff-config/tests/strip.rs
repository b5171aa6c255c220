//! `strip_build` for each export form.

use std::path::Path;

use liftoff_config::strip_build;
use oxc::allocator::Allocator;
use oxc::parser::Parser;
use oxc::span::SourceType;

fn strip(source: &str) -> String {
    let out = strip_build(Path::new("/p/trigger.config.ts"), source).expect("strips");
    let allocator = Allocator::default();
    let ret = Parser::new(&allocator, &out, SourceType::ts()).parse();
    assert!(
        !ret.diagnostics.has_errors(),
        "stripped source must parse:\n{out}"
    );
    out
}

const BUILD: &str = "build: {\n    extensions: [aptGet({ packages: [\"ffmpeg\"] })],\n    external: [\"sharp\"],\n  }";

#[test]
fn export_default_define_config() {
    let src = format!(
        "import {{ defineConfig }} from \"@trigger.dev/sdk/v3\";\nimport {{ aptGet }} from \"@trigger.dev/build/extensions/core\";\n\nexport default defineConfig({{\n  project: \"p\",\n  {BUILD},\n  maxDuration: 60, // keep me\n}});\n"
    );
    insta::assert_snapshot!("strip_default_define_config", strip(&src));
}

#[test]
fn other_forms() {
    let forms = [
        format!("export default {{ project: \"p\", {BUILD} }};\n"),
        format!("export const config = defineConfig({{ project: \"p\", {BUILD} }});\n"),
        format!("export const config: TriggerConfig = {{ project: \"p\", {BUILD} }};\n"),
        format!(
            "const cfg = {{ project: \"p\", {BUILD} }} satisfies TriggerConfig;\nexport default defineConfig(cfg);\n"
        ),
        "module.exports = { project: \"p\", \"build\": { external: [\"x\"] } };\n".to_string(),
    ];
    for src in &forms {
        let out = strip(src);
        assert!(
            out.contains("build: {}") || out.contains("\"build\": {}"),
            "{out}"
        );
        assert!(!out.contains("aptGet({"), "{out}");
        assert!(out.contains("project: \"p\""), "{out}");
    }
}

#[test]
fn shorthand_and_method_build() {
    let src = "import { defineConfig } from \"@trigger.dev/sdk/v3\";\nconst build = { extensions: [] };\nexport default defineConfig({ project: \"p\", build, maxDuration: 60 });\n";
    insta::assert_snapshot!("strip_shorthand", strip(src));
    let src = "export default { project: \"p\", get build() { return {}; } };\n";
    assert_eq!(
        strip(src),
        "export default { project: \"p\", build: {} };\n"
    );
}

#[test]
fn resolve_env_vars_is_neutralised() {
    let src = "export const resolveEnvVars: ResolveEnvVarsFn = async (ctx) => ({ variables: {} });\nexport async function helper() {}\nexport default { project: \"p\", build: { external: [] } };\n";
    insta::assert_snapshot!("strip_resolve_env_vars_const", strip(src));
    let src = "export default { project: \"p\", resolveEnvVars };\nexport async function resolveEnvVars(ctx) {\n  return { variables: {} };\n}\n";
    insta::assert_snapshot!("strip_resolve_env_vars_function", strip(src));
}

#[test]
fn no_build_is_unchanged() {
    let src = "// comment\nexport default defineConfig({ project: \"p\", maxDuration: 60, retries: { enabledInDev: false } });\n";
    assert_eq!(strip(src), src);
    // `build` nested deeper is not the config's `build`.
    let src = "export default { project: \"p\", telemetry: { build: 1 } };\n";
    assert_eq!(strip(src), src);
}

#[test]
fn errors() {
    let err = strip_build(Path::new("/p/trigger.config.ts"), "export default {").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/p/trigger.config.ts:1:17: syntax error:"),
        "{err}"
    );
    let err = strip_build(Path::new("/p/trigger.config.ts"), "export const x = 1;").unwrap_err();
    assert!(
        err.to_string().contains("couldn't find the config object"),
        "{err}"
    );
}
