//! Loads a Trigger.dev `trigger.config.*` file **statically** (parsed with oxc,
//! never executed), resolves it the way `trigger.dev@3.3.17`'s CLI does, and
//! discovers the task files.
//!
//! * [`load`]: find, parse and evaluate the config, validate it, migrate
//!   deprecated options and resolve project paths and `dirs`.
//! * [`ResolvedConfig::discover_task_files`]: the task entry points.
//! * [`strip_build`]: the config source with `build` emptied, for bundling.
//! * [`parse_env_file`]: a dotenv reader for `--env-file`.
//!
//! Nothing here prints; warnings come back in [`ResolvedConfig::warnings`].

mod dotenv;
mod error;
mod eval;
mod location;
mod module;
mod node_modules;
mod paths;
mod resolve;
mod strip;
mod tasks;
mod value;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oxc::allocator::Allocator;
use serde::Serialize;

pub use dotenv::parse_env_file;
pub use error::ConfigError;
pub use location::Location;
pub use node_modules::{find_node_module, package_version};
pub use strip::strip_build;
pub use tasks::{ALWAYS_IGNORED_PATTERNS, DEFAULT_IGNORE_PATTERNS, TASK_FILE_EXTENSIONS};
pub use value::{ExtensionCall, ExtensionKind, ImportRef, StaticValue, Unevaluable};

/// Inputs of [`load`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The project directory (the CLI's `[path]`, default `.`); relative paths
    /// are made absolute against the current directory.
    pub project_dir: PathBuf,
    /// `--config <path>`, relative to `project_dir`. The extension may be omitted.
    pub config_file: Option<PathBuf>,
    /// `--project-ref`: wins over the config's `project`.
    pub project_ref: Option<String>,
    /// The environment `process.env.X` reads in the config see.
    pub env: BTreeMap<String, String>,
}

/// Supported runtimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    #[default]
    Node,
    Bun,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Node => "node",
            Runtime::Bun => "bun",
        }
    }
}

/// `build.jsx` with upstream's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Jsx {
    pub factory: String,
    pub fragment: String,
    pub automatic: bool,
}

impl Default for Jsx {
    fn default() -> Self {
        Self {
            factory: "React.createElement".into(),
            fragment: "React.Fragment".into(),
            automatic: true,
        }
    }
}

/// The `build` options liftoff needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BuildConfig {
    pub external: Vec<String>,
    pub conditions: Vec<String>,
    pub jsx: Jsx,
    /// `build.extensions` in order, then synthetic ones from deprecated options.
    pub extensions: Vec<ExtensionCall>,
}

/// Where [`ResolvedConfig::dirs`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DirsSource {
    /// The `dirs` option.
    Config,
    /// The deprecated `triggerDirectories` option.
    TriggerDirectories,
    /// Not configured: every directory named `trigger` under the working dir.
    AutoDetected,
}

impl DirsSource {
    /// The config property to point users at.
    pub fn property(self) -> &'static str {
        match self {
            DirsSource::Config | DirsSource::AutoDetected => "dirs",
            DirsSource::TriggerDirectories => "triggerDirectories",
        }
    }
}

/// The config after loading and resolution (upstream `ResolvedConfig`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedConfig {
    /// Absolute path of the config file.
    pub config_file: PathBuf,
    /// The config file's directory; `dirs`, globs and task paths are relative to it.
    pub working_dir: PathBuf,
    /// Nearest `package.json` from the project dir upward.
    pub package_json_path: Option<PathBuf>,
    /// Nearest `tsconfig.json` from the project dir upward.
    pub tsconfig_path: Option<PathBuf>,
    /// Nearest lockfile (yarn.lock, package-lock.json, pnpm-lock.yaml, npm-shrinkwrap.json, bun.lockb, bun.lock).
    pub lockfile_path: Option<PathBuf>,
    /// pkg-types' `findWorkspaceDir` (best effort).
    pub workspace_dir: Option<PathBuf>,
    pub project: String,
    pub runtime: Runtime,
    /// Normalised and deduplicated trigger dirs, relative to `working_dir` (or globs).
    pub dirs: Vec<String>,
    pub dirs_source: DirsSource,
    /// The effective ignore patterns: `ignorePatterns`, else [`DEFAULT_IGNORE_PATTERNS`].
    /// [`ALWAYS_IGNORED_PATTERNS`] are appended at discovery time.
    pub ignore_patterns: Vec<String>,
    pub max_duration: f64,
    /// `tsconfig` (or deprecated `tsconfigPath`) from the config, else `tsconfig_path` as a string.
    pub tsconfig: Option<String>,
    pub build: BuildConfig,
    /// `telemetry.instrumentations` or `instrumentations` is present and non-empty
    /// (or can't be evaluated, in which case it is assumed non-empty).
    pub has_instrumentations: bool,
    /// Deprecation and other warnings, for the caller to show.
    pub warnings: Vec<String>,
    /// The whole config object as evaluated (runtime-only fields are mostly `Unevaluable`).
    pub raw: StaticValue,
}

impl ResolvedConfig {
    /// Task files matched by `dirs` and the ignore patterns, relative to
    /// `working_dir`, sorted and deduplicated (upstream `createEntryPointManager`).
    pub fn discover_task_files(&self) -> Result<Vec<PathBuf>, ConfigError> {
        tasks::discover(self)
    }

    /// Upstream's search pattern for each dir (for messages and debugging).
    pub fn task_search_patterns(&self) -> Vec<String> {
        self.dirs.iter().map(|d| tasks::search_pattern(d)).collect()
    }
}

/// Finds, parses, statically evaluates and resolves the config.
pub fn load(opts: &LoadOptions) -> Result<ResolvedConfig, ConfigError> {
    let project_dir = paths::normalize(
        &std::path::absolute(&opts.project_dir).unwrap_or_else(|_| opts.project_dir.clone()),
    );
    let config_file = match &opts.config_file {
        Some(p) => paths::explicit_config_file(&project_dir, p)?,
        None => {
            paths::find_config_file(&project_dir).ok_or_else(|| ConfigError::ConfigNotFound {
                dir: project_dir.clone(),
            })?
        }
    };
    let source = std::fs::read_to_string(&config_file).map_err(|source| ConfigError::Io {
        path: config_file.clone(),
        source,
    })?;
    let working_dir = config_file
        .parent()
        .map_or_else(|| project_dir.clone(), Path::to_path_buf);

    let (fields, raw) = evaluate(&config_file, &source, opts)?;

    let package_json_path = paths::find_nearest(&project_dir, &["package.json"]);
    let tsconfig_path = paths::find_nearest(&project_dir, &["tsconfig.json"]);
    let lockfile_path = paths::find_nearest(&project_dir, paths::LOCKFILES);
    let workspace_dir = paths::find_workspace_dir(&project_dir);

    let (dirs, dirs_source) = match fields.dirs {
        Some((dirs, "triggerDirectories")) => (dirs, DirsSource::TriggerDirectories),
        Some((dirs, _)) => (dirs, DirsSource::Config),
        None => (
            paths::auto_detect_dirs(&working_dir),
            DirsSource::AutoDetected,
        ),
    };
    let mut seen = std::collections::HashSet::new();
    let dirs: Vec<String> = dirs
        .iter()
        .map(|d| paths::resolve_trigger_dir(d, &working_dir))
        .filter(|d| seen.insert(d.clone()))
        .collect();

    let tsconfig = fields
        .tsconfig
        .or_else(|| tsconfig_path.as_ref().map(|p| p.display().to_string()));

    Ok(ResolvedConfig {
        config_file,
        working_dir,
        package_json_path,
        tsconfig_path,
        lockfile_path,
        workspace_dir,
        project: fields.project,
        runtime: fields.runtime,
        dirs,
        dirs_source,
        ignore_patterns: fields.ignore_patterns.unwrap_or_else(|| {
            DEFAULT_IGNORE_PATTERNS
                .iter()
                .map(ToString::to_string)
                .collect()
        }),
        max_duration: fields.max_duration,
        tsconfig,
        build: fields.build,
        has_instrumentations: fields.has_instrumentations,
        warnings: fields.warnings,
        raw,
    })
}

fn evaluate(
    path: &Path,
    source: &str,
    opts: &LoadOptions,
) -> Result<(resolve::Fields, StaticValue), ConfigError> {
    let allocator = Allocator::default();
    let program = module::parse(&allocator, path, source)?;
    let module = module::Module::new(&program, source);
    let lines = location::LineIndex::new(source);
    let not_static = |(span, reason): (oxc::span::Span, String)| ConfigError::ConfigNotStatic {
        path: path.to_path_buf(),
        location: lines.location(span.start),
        reason,
    };
    let start = module.config_export().map_err(not_static)?.ok_or_else(|| {
        ConfigError::ConfigObjectNotFound {
            path: path.to_path_buf(),
        }
    })?;
    let object = module.config_object(start, true).map_err(not_static)?;

    let mut evaluator = eval::Evaluator::new(&module, &lines, &opts.env);
    let root = evaluator.eval_object(object, 0);
    let imports_dotenv = module
        .import_sources
        .iter()
        .any(|s| s == "dotenv" || s.starts_with("dotenv/"));
    let fields = resolve::resolve(
        &root,
        &resolve::Inputs {
            path,
            project_ref: opts.project_ref.as_deref(),
            env_reads: &evaluator.env_reads,
            exports_resolve_env_vars: module.exports_resolve_env_vars(),
            imports_dotenv,
        },
    )?;
    Ok((fields, root.to_static()))
}
