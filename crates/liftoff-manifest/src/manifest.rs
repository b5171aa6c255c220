//! The `BuildManifest` (upstream `core/src/v3/schemas/build.ts`, 3.3.17).

use std::path::{Component, Path};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ManifestError;
use crate::js_json;

/// Environment variables, in insertion order (a JavaScript `Record<string, string>`).
pub type EnvMap = IndexMap<String, String>;

/// `runtime`: which runtime the image runs the tasks with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// `"node"` (the default).
    #[default]
    Node,
    /// `"bun"`.
    Bun,
}

/// `target`: always `deploy` for what liftoff builds; `dev` exists so dev manifests parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// `"dev"`.
    Dev,
    /// `"deploy"` (the default).
    #[default]
    Deploy,
}

/// `config`: the project ref and the task directories.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestConfig {
    /// Project ref (`proj_...`).
    pub project: String,
    /// Task directories as configured/detected.
    pub dirs: Vec<String>,
}

/// One bundled task file: `entry` is relative to the project, `out` is the output path.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    /// Source entry, relative to the working dir; before [`BuildManifest::rewrite_paths`] it
    /// may carry a `?query` suffix.
    pub entry: String,
    /// Output `.mjs` path (absolute, or `/app/...` after the rewrite).
    pub out: String,
}

/// One source file as stored in `sources` (see [`crate::encode_source`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceFile {
    /// base64 of the zlib-deflated UTF-8 text.
    pub contents: String,
    /// md5 (lowercase hex) of the UTF-8 text.
    pub content_hash: String,
}

/// A package left external by the bundler, installed in the image via package.json.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct External {
    /// Package name (`@scope/name` or `name`).
    pub name: String,
    /// Exact installed version.
    pub version: String,
}

/// `build`: build-stage env (ARG/ENV in the image) and post-install commands.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildSection {
    /// Build-time env vars; their keys become `ARG`/`ENV` lines in the Containerfile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<EnvMap>,
    /// Commands run after `npm i` in the build stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<String>>,
}

/// `deploy`: the server's env vars and the ones extensions want synced.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploySection {
    /// The server's current env vars (read-only for the build).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<EnvMap>,
    /// Env vars to sync to the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<DeploySync>,
}

/// `deploy.sync`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploySync {
    /// Env vars to sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<EnvMap>,
}

/// `image`: extra apt packages and raw instructions for the base stage.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageSection {
    /// Extra apt packages (appended to [`crate::DEFAULT_PACKAGES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkgs: Option<Vec<String>>,
    /// Instructions inserted verbatim at the top of the base stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<Vec<String>>,
}

/// `otelImportHook`: packages the OpenTelemetry import hook instruments.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OtelImportHook {
    /// Included packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<String>>,
    /// Excluded packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<Vec<String>>,
}

/// The build manifest, field for field as upstream's zod `BuildManifest` (3.3.17).
///
/// Serde (de)serialisation uses the schema's field order; [`Self::to_build_json`] writes the
/// order upstream's `build.json` actually has.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildManifest {
    /// `"deploy"`.
    pub target: Target,
    /// `@trigger.dev/sdk` version used by the project.
    pub package_version: String,
    /// CLI version.
    pub cli_package_version: String,
    /// Opaque bundle identity (32 lowercase hex characters upstream).
    pub content_hash: String,
    /// Runtime.
    pub runtime: Runtime,
    /// `prod`, `staging`, ...
    pub environment: String,
    /// Project ref and task dirs.
    pub config: ManifestConfig,
    /// Bundled task files.
    pub files: Vec<FileEntry>,
    /// Compressed sources, keyed by project-relative path, in insertion order.
    pub sources: IndexMap<String, SourceFile>,
    /// Build directory (`/app/` after the rewrite).
    pub output_path: String,
    /// `deploy-run-worker` entry point.
    pub run_worker_entry_point: String,
    /// `deploy-run-controller` entry point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_controller_entry_point: Option<String>,
    /// `deploy-index-worker` entry point.
    pub index_worker_entry_point: String,
    /// `deploy-index-controller` entry point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_controller_entry_point: Option<String>,
    /// Telemetry loader entry point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loader_entry_point: Option<String>,
    /// Bundled config file.
    pub config_path: String,
    /// Packages installed in the image (package.json dependencies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub externals: Option<Vec<External>>,
    /// Build-stage env and commands (never written to build.json).
    pub build: BuildSection,
    /// Custom export conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_conditions: Option<Vec<String>>,
    /// Server env vars and syncs (never written to build.json).
    pub deploy: DeploySection,
    /// Extra image packages and instructions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSection>,
    /// OpenTelemetry import hook settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otel_import_hook: Option<OtelImportHook>,
}

impl BuildManifest {
    /// The Debian packages of the image: [`crate::DEFAULT_PACKAGES`] then `image.pkgs`,
    /// de-duplicated keeping the first occurrence (upstream's base-stage install).
    pub fn image_packages(&self) -> Vec<String> {
        let mut packages: Vec<String> = Vec::new();
        let extra = self
            .image
            .as_ref()
            .and_then(|i| i.pkgs.as_deref())
            .unwrap_or_default();
        for pkg in crate::DEFAULT_PACKAGES
            .iter()
            .map(|p| (*p).to_string())
            .chain(extra.iter().cloned())
        {
            if !packages.contains(&pkg) {
                packages.push(pkg);
            }
        }
        packages
    }

    /// Parse a manifest (e.g. a `build.json`). Unknown fields are ignored, as zod does.
    pub fn from_json(s: &str) -> Result<Self, ManifestError> {
        serde_json::from_str(s).map_err(ManifestError::InvalidManifestJson)
    }

    /// Rewrite the absolute local paths to their location in the image (upstream
    /// `rewriteBuildManifestPaths`): `path` becomes `/app/` + `relative(destination, path)`
    /// with `/` separators, so `outputPath` becomes exactly `/app/`; `files[].entry` loses
    /// everything from the first `?`.
    ///
    /// Unlike upstream (which would write `/app/../x`), a path outside `destination` is an
    /// error. On error the manifest is left unchanged. Paths are compared lexically (`.` and
    /// `..` are resolved, symlinks are not), like Node's `path.relative`.
    pub fn rewrite_paths(&mut self, destination: &Path) -> Result<(), ManifestError> {
        if !destination.is_absolute() {
            return Err(ManifestError::DestinationNotAbsolute(
                destination.to_path_buf(),
            ));
        }
        let dest = normalize(destination);
        let rewrite = |field: &str, path: &str| rewrite_one(&dest, destination, field, path);
        // Upstream maps falsy optional entry points (including "") to undefined.
        let rewrite_opt = |field: &str, path: Option<&String>| -> Result<_, ManifestError> {
            match path.filter(|p| !p.is_empty()) {
                Some(p) => rewrite(field, p).map(Some),
                None => Ok(None),
            }
        };

        let files = self
            .files
            .iter()
            .enumerate()
            .map(|(i, file)| {
                Ok(FileEntry {
                    entry: clean_entry_path(&file.entry).to_owned(),
                    out: rewrite(&format!("files[{i}].out"), &file.out)?,
                })
            })
            .collect::<Result<Vec<_>, ManifestError>>()?;
        let output_path = rewrite("outputPath", &self.output_path)?;
        let config_path = rewrite("configPath", &self.config_path)?;
        let run_controller = rewrite_opt(
            "runControllerEntryPoint",
            self.run_controller_entry_point.as_ref(),
        )?;
        let run_worker = rewrite("runWorkerEntryPoint", &self.run_worker_entry_point)?;
        let index_controller = rewrite_opt(
            "indexControllerEntryPoint",
            self.index_controller_entry_point.as_ref(),
        )?;
        let index_worker = rewrite("indexWorkerEntryPoint", &self.index_worker_entry_point)?;
        let loader = rewrite_opt("loaderEntryPoint", self.loader_entry_point.as_ref())?;

        self.files = files;
        self.output_path = output_path;
        self.config_path = config_path;
        self.run_controller_entry_point = run_controller;
        self.run_worker_entry_point = run_worker;
        self.index_controller_entry_point = index_controller;
        self.index_worker_entry_point = index_worker;
        self.loader_entry_point = loader;
        Ok(())
    }

    /// The `build.json` text: `JSON.stringify(buildManifestToJSON(manifest))`, i.e. minified,
    /// no trailing newline, with `deploy` and `build` replaced by `{}` (env values and build
    /// commands are never written to disk).
    ///
    /// Keys are in the order upstream's object has at write time (schema order differs):
    /// the fields `buildWorker` creates, then `externals` and `image` (added by extension
    /// layers; `image` as `{instructions, pkgs}`), then `deploy` and `build` last.
    pub fn to_build_json(&self) -> String {
        let mut o = Map::new();
        o.insert("contentHash".into(), s(&self.content_hash));
        o.insert("runtime".into(), s(self.runtime.as_str()));
        o.insert("environment".into(), s(&self.environment));
        o.insert("packageVersion".into(), s(&self.package_version));
        o.insert("cliPackageVersion".into(), s(&self.cli_package_version));
        o.insert("target".into(), s(self.target.as_str()));
        o.insert(
            "files".into(),
            self.files.iter().map(FileEntry::to_js).collect(),
        );
        o.insert(
            "sources".into(),
            Value::Object(
                self.sources
                    .iter()
                    .map(|(key, source)| (key.clone(), source.to_js()))
                    .collect(),
            ),
        );
        o.insert(
            "config".into(),
            obj([
                ("project", s(&self.config.project)),
                ("dirs", strings(&self.config.dirs)),
            ]),
        );
        o.insert("outputPath".into(), s(&self.output_path));
        let run_controller = self.run_controller_entry_point.as_deref();
        insert_opt(&mut o, "runControllerEntryPoint", run_controller.map(s));
        o.insert(
            "runWorkerEntryPoint".into(),
            s(&self.run_worker_entry_point),
        );
        let index_controller = self.index_controller_entry_point.as_deref();
        insert_opt(&mut o, "indexControllerEntryPoint", index_controller.map(s));
        o.insert(
            "indexWorkerEntryPoint".into(),
            s(&self.index_worker_entry_point),
        );
        insert_opt(
            &mut o,
            "loaderEntryPoint",
            self.loader_entry_point.as_deref().map(s),
        );
        o.insert("configPath".into(), s(&self.config_path));
        let conditions = self.custom_conditions.as_deref();
        insert_opt(&mut o, "customConditions", conditions.map(strings));
        let otel = self.otel_import_hook.as_ref();
        insert_opt(&mut o, "otelImportHook", otel.map(OtelImportHook::to_js));
        let externals = self.externals.as_ref();
        insert_opt(
            &mut o,
            "externals",
            externals.map(|list| list.iter().map(External::to_js).collect()),
        );
        insert_opt(
            &mut o,
            "image",
            self.image.as_ref().map(ImageSection::to_js),
        );
        o.insert("deploy".into(), Value::Object(Map::new()));
        o.insert("build".into(), Value::Object(Map::new()));
        js_json::stringify(&Value::Object(o))
    }
}

impl Runtime {
    /// `"node"` or `"bun"`, as in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Node => "node",
            Runtime::Bun => "bun",
        }
    }
}

impl Target {
    /// `"dev"` or `"deploy"`, as in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Dev => "dev",
            Target::Deploy => "deploy",
        }
    }
}

// JSON values with the key order upstream's objects have.
impl FileEntry {
    fn to_js(&self) -> Value {
        obj([("entry", s(&self.entry)), ("out", s(&self.out))])
    }
}

impl SourceFile {
    fn to_js(&self) -> Value {
        obj([
            ("contents", s(&self.contents)),
            ("contentHash", s(&self.content_hash)),
        ])
    }
}

impl External {
    fn to_js(&self) -> Value {
        obj([("name", s(&self.name)), ("version", s(&self.version))])
    }
}

impl OtelImportHook {
    fn to_js(&self) -> Value {
        let mut m = Map::new();
        insert_opt(&mut m, "include", self.include.as_deref().map(strings));
        insert_opt(&mut m, "exclude", self.exclude.as_deref().map(strings));
        Value::Object(m)
    }
}

impl ImageSection {
    /// Upstream's layer merge creates `image` as `{ instructions, pkgs }`.
    fn to_js(&self) -> Value {
        let mut m = Map::new();
        insert_opt(
            &mut m,
            "instructions",
            self.instructions.as_deref().map(strings),
        );
        insert_opt(&mut m, "pkgs", self.pkgs.as_deref().map(strings));
        Value::Object(m)
    }
}

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn strings(v: &[String]) -> Value {
    Value::Array(v.iter().map(|x| s(x)).collect())
}

fn obj<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

fn insert_opt(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), value);
    }
}

/// `src/trigger/ai.ts?sentryProxyModule=true` -> `src/trigger/ai.ts`.
fn clean_entry_path(entry: &str) -> &str {
    entry.split('?').next().unwrap_or(entry)
}

/// Lexically normalised components of an absolute path (`.` dropped, `..` applied; `..` at
/// the root stays at the root, like `path.resolve`).
fn normalize(path: &Path) -> Vec<Component<'_>> {
    let mut out: Vec<Component<'_>> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.last(), Some(Component::Normal(_))) {
                    out.pop();
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn rewrite_one(
    dest: &[Component<'_>],
    destination: &Path,
    field: &str,
    path: &str,
) -> Result<String, ManifestError> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(ManifestError::PathNotAbsolute {
            field: field.to_owned(),
            path: path.to_owned(),
        });
    }
    let normalized = normalize(p);
    match normalized.strip_prefix(dest) {
        Some(rest) => {
            let relative: Vec<String> = rest
                .iter()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            Ok(format!("/app/{}", relative.join("/")))
        }
        None => Err(ManifestError::PathOutsideDestination {
            field: field.to_owned(),
            path: path.to_owned(),
            destination: destination.to_path_buf(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEST: &str = "/tmp/proj/.trigger/tmp/build-AbC123";

    fn sample() -> BuildManifest {
        let cli = format!("{DEST}/node_modules/trigger.dev/dist/esm/entryPoints");
        BuildManifest {
            content_hash: "abc".into(),
            environment: "prod".into(),
            package_version: "3.3.17".into(),
            cli_package_version: "3.3.17".into(),
            config: ManifestConfig {
                project: "proj_x".into(),
                dirs: vec!["./src/trigger".into()],
            },
            files: vec![
                FileEntry {
                    entry: "src/trigger/a.ts".into(),
                    out: format!("{DEST}/src/trigger/a.mjs"),
                },
                FileEntry {
                    entry: "src/trigger/ai.ts?sentryProxyModule=true".into(),
                    out: format!("{DEST}/src/./trigger/x/../ai.mjs"),
                },
            ],
            output_path: DEST.into(),
            run_worker_entry_point: format!("{cli}/deploy-run-worker.mjs"),
            run_controller_entry_point: Some(format!("{cli}/deploy-run-controller.mjs")),
            index_worker_entry_point: format!("{cli}/deploy-index-worker.mjs"),
            index_controller_entry_point: Some(format!("{cli}/deploy-index-controller.mjs")),
            loader_entry_point: Some(String::new()),
            config_path: format!("{DEST}/trigger.config.mjs"),
            ..BuildManifest::default()
        }
    }

    #[test]
    fn rewrite_paths_maps_to_app() {
        let mut m = sample();
        m.rewrite_paths(Path::new(&format!("{DEST}/"))).unwrap();
        assert_eq!(m.output_path, "/app/");
        assert_eq!(m.config_path, "/app/trigger.config.mjs");
        assert_eq!(m.files[0].entry, "src/trigger/a.ts");
        assert_eq!(m.files[0].out, "/app/src/trigger/a.mjs");
        assert_eq!(m.files[1].entry, "src/trigger/ai.ts");
        assert_eq!(m.files[1].out, "/app/src/trigger/ai.mjs");
        assert_eq!(
            m.run_controller_entry_point.as_deref(),
            Some("/app/node_modules/trigger.dev/dist/esm/entryPoints/deploy-run-controller.mjs")
        );
        assert_eq!(
            m.index_worker_entry_point,
            "/app/node_modules/trigger.dev/dist/esm/entryPoints/deploy-index-worker.mjs"
        );
        // Upstream turns a falsy loader entry point into undefined.
        assert_eq!(m.loader_entry_point, None);
    }

    #[test]
    fn rewrite_paths_strips_everything_after_first_question_mark() {
        assert_eq!(clean_entry_path("a.ts?x=1?y=2"), "a.ts");
        assert_eq!(clean_entry_path("?x"), "");
        assert_eq!(clean_entry_path("a.ts"), "a.ts");
    }

    #[test]
    fn rewrite_paths_rejects_paths_outside_destination() {
        let mut m = sample();
        m.config_path = "/tmp/proj/trigger.config.mjs".into();
        let before = m.clone();
        let err = m.rewrite_paths(Path::new(DEST)).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ManifestError::PathOutsideDestination { .. }));
        assert!(msg.contains("configPath"), "{msg}");
        assert!(msg.contains("/tmp/proj/trigger.config.mjs"), "{msg}");
        assert_eq!(m, before, "manifest must be unchanged on error");

        // A sibling directory sharing a string prefix is outside too.
        let mut m = sample();
        m.files[0].out = format!("{DEST}-other/a.mjs");
        let err = m.rewrite_paths(Path::new(DEST)).unwrap_err();
        assert!(err.to_string().contains("files[0].out"), "{err}");

        // `..` escaping the destination.
        let mut m = sample();
        m.run_worker_entry_point = format!("{DEST}/../x.mjs");
        assert!(m.rewrite_paths(Path::new(DEST)).is_err());
    }

    #[test]
    fn rewrite_paths_rejects_relative_inputs() {
        let mut m = sample();
        assert!(matches!(
            m.rewrite_paths(Path::new("relative/dir")),
            Err(ManifestError::DestinationNotAbsolute(_))
        ));
        m.run_worker_entry_point = "/app/already-rewritten.mjs".into();
        assert!(matches!(
            m.rewrite_paths(Path::new(DEST)),
            Err(ManifestError::PathOutsideDestination { .. })
        ));
        let mut m = sample();
        m.index_worker_entry_point = "worker.mjs".into();
        let err = m.rewrite_paths(Path::new(DEST)).unwrap_err();
        assert!(
            matches!(err, ManifestError::PathNotAbsolute { .. }),
            "{err}"
        );
    }

    #[test]
    fn build_json_never_contains_env_or_commands() {
        let mut m = sample();
        m.build.env = Some(EnvMap::from_iter([(
            "DB_PASSWORD".into(),
            "hunter2".into(),
        )]));
        m.build.commands = Some(vec!["npx prisma generate".into()]);
        m.deploy.env = Some(EnvMap::from_iter([("API_SECRET".into(), "s3cr3t".into())]));
        m.deploy.sync = Some(DeploySync {
            env: Some(EnvMap::from_iter([("SYNCED".into(), "v4lue".into())])),
        });
        let json = m.to_build_json();
        for needle in [
            "hunter2",
            "DB_PASSWORD",
            "prisma",
            "s3cr3t",
            "API_SECRET",
            "SYNCED",
            "v4lue",
        ] {
            assert!(!json.contains(needle), "{needle} leaked into {json}");
        }
        assert!(json.ends_with(r#""deploy":{},"build":{}}"#), "{json}");
        assert!(!json.ends_with('\n'));
        // And it parses back (with empty deploy/build).
        let back = BuildManifest::from_json(&json).unwrap();
        assert_eq!(back.build, BuildSection::default());
        assert_eq!(back.deploy, DeploySection::default());
        assert_eq!(back.files, m.files);
    }

    #[test]
    fn serde_round_trip_uses_schema_order_and_skips_none() {
        let m = sample();
        let json = serde_json::to_string(&m).unwrap();
        assert!(
            json.starts_with(r#"{"target":"deploy","packageVersion":"3.3.17","#),
            "{json}"
        );
        assert!(!json.contains("externals"));
        assert!(!json.contains("image"));
        assert_eq!(BuildManifest::from_json(&json).unwrap(), m);
    }

    #[test]
    fn from_json_reports_bad_input() {
        let err = BuildManifest::from_json(r#"{"target":"deploy"}"#).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid build manifest JSON:"),
            "{err}"
        );
        let err = BuildManifest::from_json("not json").unwrap_err();
        assert!(matches!(err, ManifestError::InvalidManifestJson(_)));
    }
}
