//! prismaExtension (upstream's `PrismaExtension`, `@trigger.dev/build/extensions/prisma`).
//!
//! `onBuildStart` checks the schema exists. `onBuildComplete` copies the schema
//! (a single file, or every `*.prisma` of a Prisma 6 `schema` folder), the
//! typedSql files and the migrations into the build directory, and adds the
//! layer `{ id: "prisma", commands, dependencies: { prisma }, build: { env } }`
//! whose commands run `prisma generate` (and `migrate deploy`) in the image.

use std::path::{Component, Path, PathBuf};

use indexmap::IndexMap;
use liftoff_config::StaticValue;
use liftoff_manifest::BuildManifest;

use super::Builtin;
use crate::layer::{BuildEnvLayer, BuildLayer};
use crate::{Context, ExtensionError, LogLevel, Runtime};

const PHASE: &str = "onBuildComplete";

/// JavaScript truthiness of an option.
fn truthy(b: &Builtin, key: &str) -> bool {
    match b.options.get(key) {
        None | Some(StaticValue::Undefined | StaticValue::Null) => false,
        Some(StaticValue::Bool(v)) => *v,
        Some(StaticValue::Number(n)) => *n != 0.0 && !n.is_nan(),
        Some(StaticValue::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

fn opt_str<'a>(b: &'a Builtin, key: &str) -> Option<&'a str> {
    b.options.get(key).and_then(StaticValue::as_str)
}

/// Node's `path.resolve(base, path)`: joined, then `.` and `..` resolved lexically
/// (no symlinks followed, trailing slash dropped).
pub(crate) fn resolve(base: &Path, path: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in base.join(path).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `resolve(workingDir, options.schema)`.
fn schema_path(b: &Builtin, ctx: &Context<'_>) -> PathBuf {
    resolve(ctx.working_dir, opt_str(b, "schema").unwrap_or_default())
}

/// Upstream's `binaryForRuntime`. Upstream passes `manifest.runtime`, which is the
/// config's runtime, the same value as `ctx.runtime`.
fn binary(runtime: Runtime) -> &'static str {
    match runtime {
        Runtime::Node => "node",
        Runtime::Bun => "bun",
    }
}

pub(super) fn on_build_start(b: &Builtin, ctx: &mut Context<'_>) -> Result<(), ExtensionError> {
    let schema = opt_str(b, "schema").unwrap_or_default();
    let resolved = schema_path(b, ctx);
    ctx.log(
        LogLevel::Debug,
        format!("Resolved the prisma schema to: {}", resolved.display()),
    );
    if !resolved.exists() {
        return Err(ExtensionError::failed(
            &b.data.extension.name,
            "onBuildStart",
            format!(
                "PrismaExtension could not find the prisma schema at {}. Make sure the path is correct: {schema}, relative to the working dir {}. Set `schema` in prismaExtension({{ schema }}) to your schema.prisma file (or, with a Prisma 6 multi-file schema, to a file inside the `schema` folder).",
                resolved.display(),
                ctx.working_dir.display()
            ),
        ));
    }
    Ok(())
}

/// Copies one file (creating the destination's parents, as Node's `fs.cp` does)
/// and records the copy.
fn copy_file(
    ctx: &mut Context<'_>,
    extension: &str,
    from: &Path,
    to: &Path,
    build_dir: &Path,
) -> Result<(), ExtensionError> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|source| ExtensionError::Io {
            extension: extension.to_string(),
            action: "create",
            path: parent.to_path_buf(),
            source,
        })?;
    }
    std::fs::copy(from, to).map_err(|source| ExtensionError::Io {
        extension: extension.to_string(),
        action: "copy",
        path: from.to_path_buf(),
        source,
    })?;
    ctx.record_copy(from, to, build_dir);
    Ok(())
}

/// The names in `dir` ending with `suffix`, sorted by bytes like Node's `readdir`
/// (libuv sorts its scandir results). Only files are returned.
fn files_ending_with(
    extension: &str,
    dir: &Path,
    suffix: &str,
    what: &'static str,
) -> Result<Vec<String>, ExtensionError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ExtensionError::Io {
        extension: extension.to_string(),
        action: what,
        path: dir.to_path_buf(),
        source,
    })?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    Ok(names)
}

/// `cp(from, to, { recursive: true })`: every file and directory below `from`.
/// Symlinks are followed (their contents copied).
fn copy_dir(
    ctx: &mut Context<'_>,
    extension: &str,
    from: &Path,
    to: &Path,
    build_dir: &Path,
) -> Result<(), ExtensionError> {
    if !from.is_dir() {
        return Err(ExtensionError::failed(
            extension,
            PHASE,
            format!(
                "`migrate` is set but there is no migrations folder at {} (it must sit next to the schema, or next to the `schema` folder)",
                from.display()
            ),
        ));
    }
    for entry in walkdir::WalkDir::new(from)
        .follow_links(true)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(from).to_path_buf();
            ExtensionError::Io {
                extension: extension.to_string(),
                action: "read",
                path,
                source: e.into(),
            }
        })?;
        let rel = entry.path().strip_prefix(from).unwrap_or(entry.path());
        let dest = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).map_err(|source| ExtensionError::Io {
                extension: extension.to_string(),
                action: "create",
                path: dest.clone(),
                source,
            })?;
        } else {
            copy_file(ctx, extension, entry.path(), &dest, build_dir)?;
        }
    }
    Ok(())
}

/// The build env: server values (`undefined` kept as `None`, so the key still
/// gets `ARG`/`ENV` lines), with upstream's warnings.
fn build_env(
    b: &Builtin,
    ctx: &mut Context<'_>,
    manifest: &BuildManifest,
) -> IndexMap<String, Option<String>> {
    let server = |key: &str| {
        manifest
            .deploy
            .env
            .as_ref()
            .and_then(|e| e.get(key))
            .cloned()
    };
    let mut env: IndexMap<String, Option<String>> = IndexMap::new();
    env.insert("DATABASE_URL".into(), server("DATABASE_URL"));
    if let Some(direct) = opt_str(b, "directUrlEnvVarName").filter(|n| !n.is_empty()) {
        let value = server(direct).or_else(|| ctx.env.get(direct).cloned());
        let missing = value.as_deref().is_none_or(str::is_empty);
        env.insert(direct.to_string(), value);
        if missing {
            ctx.warn(format!("prismaExtension could not resolve the {direct} environment variable. Make sure you add it to your environment variables or provide it as an environment variable to the deploy CLI command. See our docs for more info: https://trigger.dev/docs/deploy-environment-variables"));
        }
    } else {
        env.insert("DIRECT_URL".into(), server("DIRECT_URL"));
        env.insert("DIRECT_DATABASE_URL".into(), server("DIRECT_DATABASE_URL"));
    }
    if env
        .get("DATABASE_URL")
        .and_then(Option::as_deref)
        .is_none_or(str::is_empty)
    {
        ctx.warn("prismaExtension could not resolve the DATABASE_URL environment variable. Make sure you add it to your environment variables. See our docs for more info: https://trigger.dev/docs/deploy-environment-variables");
    }

    env
}

/// The `@prisma/client` version among the externals, else `options.version`.
fn prisma_version(
    b: &Builtin,
    ctx: &mut Context<'_>,
    manifest: &BuildManifest,
) -> Result<String, ExtensionError> {
    ctx.log(
        LogLevel::Debug,
        "Looking for @prisma/client in the externals",
    );
    let external = manifest
        .externals
        .iter()
        .flatten()
        .find(|e| e.name == "@prisma/client");
    let version = external
        .map(|e| e.version.clone())
        .or_else(|| opt_str(b, "version").map(String::from))
        .unwrap_or_default();
    if version.is_empty() {
        return Err(ExtensionError::failed(
            &b.data.extension.name,
            PHASE,
            "PrismaExtension could not determine the version of @prisma/client. It's possible that the @prisma/client was not used in the project. If this isn't the case, please provide a version in the PrismaExtension options.",
        ));
    }
    ctx.log(
        LogLevel::Debug,
        format!("PrismaExtension is generating the Prisma client for version {version}"),
    );
    Ok(version)
}

pub(super) fn on_build_complete(
    b: &Builtin,
    ctx: &mut Context<'_>,
    manifest: &BuildManifest,
) -> Result<(), ExtensionError> {
    let name = b.data.extension.name.as_str();
    let schema = schema_path(b, ctx);
    let build_dir = ctx
        .build_dir
        .map_or_else(|| PathBuf::from(&manifest.output_path), Path::to_path_buf);

    let version = prisma_version(b, ctx, manifest)?;

    // `dirname(resolvedSchema).endsWith("schema")`: a string suffix, so `myschema/` counts too.
    let schema_dir = schema.parent().unwrap_or(Path::new("/")).to_path_buf();
    let using_schema_folder = schema_dir.to_string_lossy().ends_with("schema");
    let prisma_dir = if using_schema_folder {
        schema_dir.parent().unwrap_or(Path::new("/")).to_path_buf()
    } else {
        schema_dir.clone()
    };
    let bin = binary(ctx.runtime);

    let mut flags = Vec::new();
    if truthy(b, "clientGenerator") {
        flags.push(format!(
            "--generator={}",
            opt_str(b, "clientGenerator").unwrap_or_default()
        ));
    }
    if truthy(b, "typedSql") {
        flags.push("--sql".to_string());
        ctx.log(LogLevel::Debug, "Using typedSql");
        let sql_dir = prisma_dir.join("sql");
        for file in files_ending_with(name, &sql_dir, ".sql", "read the typedSql folder")? {
            copy_file(
                ctx,
                name,
                &sql_dir.join(&file),
                &build_dir.join("prisma").join("sql").join(&file),
                &build_dir,
            )?;
        }
    }
    let flags = flags.join(" ");

    let mut commands = Vec::new();
    if using_schema_folder {
        ctx.log(
            LogLevel::Debug,
            format!("Using the schema folder: {}", schema_dir.display()),
        );
        for file in files_ending_with(name, &schema_dir, ".prisma", "read the schema folder")? {
            copy_file(
                ctx,
                name,
                &schema_dir.join(&file),
                &build_dir.join("prisma").join("schema").join(&file),
                &build_dir,
            )?;
        }
        // No --schema flag: prisma finds the folder itself (upstream: "or this will fail").
        commands.push(format!(
            "{bin} node_modules/prisma/build/index.js generate {flags}"
        ));
    } else {
        copy_file(
            ctx,
            name,
            &schema,
            &build_dir.join("prisma").join("schema.prisma"),
            &build_dir,
        )?;
        commands.push(format!("{bin} node_modules/prisma/build/index.js generate --schema=./prisma/schema.prisma {flags}"));
    }

    if truthy(b, "migrate") {
        copy_dir(
            ctx,
            name,
            &prisma_dir.join("migrations"),
            &build_dir.join("prisma").join("migrations"),
            &build_dir,
        )?;
        commands.push(format!(
            "{bin} node_modules/prisma/build/index.js migrate deploy"
        ));
    }

    let env = build_env(b, ctx, manifest);

    ctx.log(
        LogLevel::Debug,
        "Adding the prisma layer with the following commands",
    );
    ctx.add_layer(BuildLayer {
        id: "prisma".into(),
        commands: Some(commands),
        dependencies: Some(IndexMap::from([("prisma".to_string(), version)])),
        build: Some(BuildEnvLayer { env: Some(env) }),
        ..BuildLayer::default()
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use liftoff_manifest::External;
    use serde_json::json;

    use super::*;

    use crate::{CopiedFile, Target};

    struct Project {
        dir: tempfile::TempDir,
    }

    impl Project {
        fn new(files: &[&str]) -> Self {
            let dir = tempfile::tempdir().unwrap();
            for f in files {
                let p = dir.path().join("app").join(f);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, format!("-- {f}")).unwrap();
            }
            std::fs::create_dir_all(dir.path().join("build")).unwrap();
            Self { dir }
        }
        fn app(&self) -> PathBuf {
            self.dir.path().join("app")
        }
        fn build(&self) -> PathBuf {
            self.dir.path().join("build")
        }
    }

    fn builtin(options: &serde_json::Value) -> Builtin {
        super::super::test_builtin("prismaExtension", options)
    }

    fn manifest(build: &Path, client: Option<&str>, server: &[(&str, &str)]) -> BuildManifest {
        let mut m = BuildManifest {
            output_path: build.display().to_string(),
            ..BuildManifest::default()
        };
        if let Some(v) = client {
            m.externals = Some(vec![External {
                name: "@prisma/client".into(),
                version: v.into(),
            }]);
        }
        if !server.is_empty() {
            m.deploy.env = Some(
                server
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                    .collect(),
            );
        }
        m
    }

    struct Outcome {
        result: Result<(), ExtensionError>,
        layers: Vec<serde_json::Value>,
        warnings: Vec<String>,
        files: Vec<CopiedFile>,
    }

    fn run(
        p: &Project,
        b: &Builtin,
        m: &BuildManifest,
        runtime: Runtime,
        env: &[(&str, &str)],
    ) -> Outcome {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        let app = p.app();
        let build = p.build();
        let mut ctx = Context::new(Target::Deploy, runtime, &app, "proj_x", &env);
        ctx.build_dir = Some(&build);
        let result = on_build_start(b, &mut ctx).and_then(|()| on_build_complete(b, &mut ctx, m));
        Outcome {
            result,
            layers: ctx
                .layers
                .iter()
                .map(|l| serde_json::to_value(l).unwrap())
                .collect(),
            warnings: ctx
                .logs
                .iter()
                .filter(|l| l.level == LogLevel::Warn)
                .map(|l| l.message.clone())
                .collect(),
            files: ctx.files,
        }
    }

    fn copied(files: &[CopiedFile]) -> Vec<String> {
        files
            .iter()
            .map(|f| format!("{} -> {}", f.from, f.to))
            .collect()
    }

    const DB_WARNING: &str = "prismaExtension could not resolve the DATABASE_URL environment variable. Make sure you add it to your environment variables. See our docs for more info: https://trigger.dev/docs/deploy-environment-variables";

    #[test]
    fn single_file_schema() {
        let p = Project::new(&["prisma/schema.prisma", "prisma/other.prisma"]);
        let b = builtin(&json!({ "schema": "prisma/schema.prisma" }));
        let o = run(
            &p,
            &b,
            &manifest(
                &p.build(),
                Some("5.19.0"),
                &[("DATABASE_URL", "postgres://db")],
            ),
            Runtime::Node,
            &[],
        );
        o.result.unwrap();
        assert_eq!(
            o.layers,
            [json!({
                "id": "prisma",
                "commands": ["node node_modules/prisma/build/index.js generate --schema=./prisma/schema.prisma "],
                "build": { "env": { "DATABASE_URL": "postgres://db", "DIRECT_URL": null, "DIRECT_DATABASE_URL": null } },
                "dependencies": { "prisma": "5.19.0" }
            })]
        );
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
        assert_eq!(
            copied(&o.files),
            ["prisma/schema.prisma -> prisma/schema.prisma"]
        );
        assert_eq!(
            std::fs::read_to_string(p.build().join("prisma/schema.prisma")).unwrap(),
            "-- prisma/schema.prisma"
        );
    }

    #[test]
    fn schema_folder_with_everything() {
        let p = Project::new(&[
            "db/schema/schema.prisma",
            "db/schema/user.prisma",
            "db/schema/notes.txt",
            "db/sql/getUsers.sql",
            "db/sql/readme.md",
            "db/migrations/migration_lock.toml",
            "db/migrations/20240101_init/migration.sql",
        ]);
        let b = builtin(
            &json!({ "schema": "./db/schema/schema.prisma", "migrate": true, "typedSql": true, "clientGenerator": "client" }),
        );
        let server = [
            ("DATABASE_URL", "postgres://db"),
            ("DIRECT_URL", "postgres://direct"),
        ];
        let o = run(
            &p,
            &b,
            &manifest(&p.build(), Some("6.1.0"), &server),
            Runtime::Node,
            &[],
        );
        o.result.unwrap();
        assert_eq!(
            o.layers[0]["commands"],
            json!([
                "node node_modules/prisma/build/index.js generate --generator=client --sql",
                "node node_modules/prisma/build/index.js migrate deploy"
            ])
        );
        assert_eq!(
            o.layers[0]["build"]["env"],
            json!({ "DATABASE_URL": "postgres://db", "DIRECT_URL": "postgres://direct", "DIRECT_DATABASE_URL": null })
        );
        // typedSql files first, then the schema folder, then the migrations (upstream's order).
        assert_eq!(
            copied(&o.files),
            [
                "db/sql/getUsers.sql -> prisma/sql/getUsers.sql",
                "db/schema/schema.prisma -> prisma/schema/schema.prisma",
                "db/schema/user.prisma -> prisma/schema/user.prisma",
                "db/migrations/20240101_init/migration.sql -> prisma/migrations/20240101_init/migration.sql",
                "db/migrations/migration_lock.toml -> prisma/migrations/migration_lock.toml",
            ]
        );
        assert!(
            p.build()
                .join("prisma/migrations/20240101_init/migration.sql")
                .is_file()
        );
    }

    #[test]
    fn single_file_with_typed_sql_and_migrate_uses_the_schema_dir() {
        let p = Project::new(&[
            "prisma/schema.prisma",
            "prisma/sql/a.sql",
            "prisma/migrations/1_init/migration.sql",
        ]);
        let b = builtin(
            &json!({ "schema": "prisma/schema.prisma", "migrate": true, "typedSql": true }),
        );
        let o = run(
            &p,
            &b,
            &manifest(&p.build(), Some("5.19.0"), &[("DATABASE_URL", "x")]),
            Runtime::Node,
            &[],
        );
        o.result.unwrap();
        assert_eq!(
            o.layers[0]["commands"],
            json!([
                "node node_modules/prisma/build/index.js generate --schema=./prisma/schema.prisma --sql",
                "node node_modules/prisma/build/index.js migrate deploy"
            ])
        );
        assert_eq!(copied(&o.files).len(), 3);
    }

    #[test]
    fn bun_runtime() {
        let p = Project::new(&["prisma/schema.prisma"]);
        let b = builtin(&json!({ "schema": "prisma/schema.prisma", "migrate": true }));
        std::fs::create_dir_all(p.app().join("prisma/migrations")).unwrap();
        let o = run(
            &p,
            &b,
            &manifest(&p.build(), Some("5.19.0"), &[]),
            Runtime::Bun,
            &[],
        );
        o.result.unwrap();
        assert_eq!(
            o.layers[0]["commands"],
            json!([
                "bun node_modules/prisma/build/index.js generate --schema=./prisma/schema.prisma ",
                "bun node_modules/prisma/build/index.js migrate deploy"
            ])
        );
        assert!(
            p.build().join("prisma/migrations").is_dir(),
            "an empty migrations folder is still copied"
        );
        assert_eq!(o.warnings, [DB_WARNING]);
        assert_eq!(
            o.layers[0]["build"]["env"],
            json!({ "DATABASE_URL": null, "DIRECT_URL": null, "DIRECT_DATABASE_URL": null })
        );
    }

    #[test]
    fn direct_url_env_var_name() {
        let p = Project::new(&["prisma/schema.prisma"]);
        let b = builtin(
            &json!({ "schema": "prisma/schema.prisma", "directUrlEnvVarName": "MY_DIRECT" }),
        );
        // Server value wins over the process env.
        let m = manifest(
            &p.build(),
            Some("5.19.0"),
            &[
                ("DATABASE_URL", "db"),
                ("MY_DIRECT", "server"),
                ("DIRECT_URL", "ignored"),
            ],
        );
        let o = run(&p, &b, &m, Runtime::Node, &[("MY_DIRECT", "process")]);
        o.result.unwrap();
        assert_eq!(
            o.layers[0]["build"]["env"],
            json!({ "DATABASE_URL": "db", "MY_DIRECT": "server" })
        );
        assert!(o.warnings.is_empty());
        // No server value: the process env.
        let m = manifest(&p.build(), Some("5.19.0"), &[("DATABASE_URL", "db")]);
        let o = run(&p, &b, &m, Runtime::Node, &[("MY_DIRECT", "process")]);
        assert_eq!(
            o.layers[0]["build"]["env"],
            json!({ "DATABASE_URL": "db", "MY_DIRECT": "process" })
        );
        // Neither: the key is kept (undefined) and both warnings fire, direct first.
        let o = run(
            &p,
            &b,
            &manifest(&p.build(), Some("5.19.0"), &[]),
            Runtime::Node,
            &[],
        );
        assert_eq!(
            o.layers[0]["build"]["env"],
            json!({ "DATABASE_URL": null, "MY_DIRECT": null })
        );
        assert_eq!(
            o.warnings,
            [
                "prismaExtension could not resolve the MY_DIRECT environment variable. Make sure you add it to your environment variables or provide it as an environment variable to the deploy CLI command. See our docs for more info: https://trigger.dev/docs/deploy-environment-variables",
                DB_WARNING
            ]
        );
    }

    #[test]
    fn version_from_externals_then_options() {
        let p = Project::new(&["prisma/schema.prisma"]);
        let b = builtin(&json!({ "schema": "prisma/schema.prisma", "version": "5.0.0" }));
        let o = run(
            &p,
            &b,
            &manifest(&p.build(), Some("5.19.0"), &[]),
            Runtime::Node,
            &[],
        );
        assert_eq!(o.layers[0]["dependencies"], json!({ "prisma": "5.19.0" }));
        let o = run(&p, &b, &manifest(&p.build(), None, &[]), Runtime::Node, &[]);
        assert_eq!(o.layers[0]["dependencies"], json!({ "prisma": "5.0.0" }));
        let b = builtin(&json!({ "schema": "prisma/schema.prisma" }));
        let o = run(&p, &b, &manifest(&p.build(), None, &[]), Runtime::Node, &[]);
        let err = o.result.unwrap_err().to_string();
        assert!(
            err.contains("PrismaExtension could not determine the version of @prisma/client"),
            "{err}"
        );
        assert!(o.layers.is_empty());
    }

    #[test]
    fn missing_schema() {
        let p = Project::new(&[]);
        let b = builtin(&json!({ "schema": "./prisma/../db/schema.prisma" }));
        let o = run(
            &p,
            &b,
            &manifest(&p.build(), Some("5.19.0"), &[]),
            Runtime::Node,
            &[],
        );
        let err = o.result.unwrap_err().to_string();
        let resolved = p.app().join("db/schema.prisma");
        assert!(
            err.contains(&format!(
                "PrismaExtension could not find the prisma schema at {}.",
                resolved.display()
            )),
            "{err}"
        );
        assert!(err.contains("Make sure the path is correct: ./prisma/../db/schema.prisma, relative to the working dir"), "{err}");
    }

    #[test]
    fn missing_typed_sql_or_migrations_folder() {
        let p = Project::new(&["prisma/schema.prisma"]);
        let b = builtin(&json!({ "schema": "prisma/schema.prisma", "typedSql": true }));
        let err = run(
            &p,
            &b,
            &manifest(&p.build(), Some("5"), &[]),
            Runtime::Node,
            &[],
        )
        .result
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("could not read the typedSql folder") && err.contains("prisma/sql"),
            "{err}"
        );
        let b = builtin(&json!({ "schema": "prisma/schema.prisma", "migrate": true }));
        let err = run(
            &p,
            &b,
            &manifest(&p.build(), Some("5"), &[]),
            Runtime::Node,
            &[],
        )
        .result
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("no migrations folder at") && err.contains("prisma/migrations"),
            "{err}"
        );
    }

    #[test]
    fn two_instances_are_independent() {
        let p = Project::new(&["a/schema.prisma", "b/schema/x.prisma"]);
        let m = manifest(&p.build(), Some("6.0.0"), &[("DATABASE_URL", "db")]);
        let first = run(
            &p,
            &builtin(&json!({ "schema": "a/schema.prisma" })),
            &m,
            Runtime::Node,
            &[],
        );
        let second = run(
            &p,
            &builtin(&json!({ "schema": "b/schema/x.prisma", "clientGenerator": "" })),
            &m,
            Runtime::Node,
            &[],
        );
        assert_eq!(
            first.layers[0]["commands"][0],
            "node node_modules/prisma/build/index.js generate --schema=./prisma/schema.prisma "
        );
        assert_eq!(
            second.layers[0]["commands"][0], "node node_modules/prisma/build/index.js generate ",
            "an empty clientGenerator is falsy"
        );
        assert_eq!(
            copied(&second.files),
            ["b/schema/x.prisma -> prisma/schema/x.prisma"]
        );
    }

    #[test]
    fn resolve_is_lexical() {
        assert_eq!(
            resolve(Path::new("/w/app"), "./prisma/../db/schema/"),
            PathBuf::from("/w/app/db/schema")
        );
        assert_eq!(
            resolve(Path::new("/w/app"), "/abs/s.prisma"),
            PathBuf::from("/abs/s.prisma")
        );
        assert_eq!(
            resolve(Path::new("/w/app"), "../../../x"),
            PathBuf::from("/x")
        );
    }
}
