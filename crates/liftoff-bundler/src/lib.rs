//! Bundles a Trigger.dev task project into ESM for Node.
//!
//! The engine is rolldown (pinned at 1.2.5 for Rust 1.95). This crate owns the
//! Trigger.dev semantics on top of it: entry naming that mirrors the source tree,
//! the `require`/`__filename`/`__dirname` shim, `server-only`, import conditions,
//! externals recorded with their installed versions, native addons kept external,
//! source overrides (the config with `build` stripped), and a content hash.
//!
//! The public surface is [`BundleSpec`] → [`bundle`] → [`Bundle`], and
//! [`Bundle::write_to`] to put the files on disk. Nothing is written when the
//! build fails.

mod externals;
mod plugin;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use md5::{Digest, Md5};
use rolldown::{
    AddonOutputOption, BundlerOptions, BundlerTransformOptions, ChunkFilenamesOutputOption, Either,
    InputItem, JsxOptions, ModuleType, OutputFormat, Platform, ResolveOptions, SourceMapType,
    TsConfig,
};
use rolldown_common::Output;
use rustc_hash::FxHashMap;

pub mod diagnostics;
pub use diagnostics::Diagnostic;
pub use externals::External;

/// The shim every chunk starts with: upstream injects an equivalent module
/// (`shims/esm.js`). Names are aliased so they never collide with rolldown's own
/// runtime imports, and values go on `globalThis` so user modules may still declare
/// their own `__dirname`.
pub const ESM_SHIM: &str = concat!(
    "import { createRequire as __liftoff_createRequire } from \"node:module\";",
    "import { fileURLToPath as __liftoff_fileURLToPath } from \"node:url\";",
    "import { dirname as __liftoff_dirname } from \"node:path\";\n",
    "globalThis.require ??= __liftoff_createRequire(import.meta.url);",
    "globalThis.__filename ??= __liftoff_fileURLToPath(import.meta.url);",
    "globalThis.__dirname ??= __liftoff_dirname(globalThis.__filename);"
);

/// Packages upstream always keeps external (its fallback list when the remote
/// list cannot be fetched; liftoff never fetches it).
pub const ALWAYS_EXTERNAL: &[&str] = &["import-in-the-middle", "header-generator"];

/// One entry point of the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Output name without extension, relative to the output dir, `/`-separated
    /// (e.g. `src/trigger/hello` → `src/trigger/hello.mjs`).
    pub name: String,
    /// Absolute path of the source file.
    pub path: PathBuf,
}

/// How JSX is compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jsx {
    /// Automatic runtime (`react/jsx-runtime`); otherwise classic with factory/fragment.
    pub automatic: bool,
    pub factory: String,
    pub fragment: String,
}

impl Default for Jsx {
    fn default() -> Self {
        Self {
            automatic: true,
            factory: "React.createElement".into(),
            fragment: "React.Fragment".into(),
        }
    }
}

/// Everything the bundler needs to know.
#[derive(Debug, Clone)]
pub struct BundleSpec {
    /// The project's working directory (where the config lives). Relative names,
    /// source map paths and diagnostics are relative to it.
    pub working_dir: PathBuf,
    pub entries: Vec<Entry>,
    /// User conditions (`build.conditions`); `trigger.dev`, `module`, `node` are appended.
    pub conditions: Vec<String>,
    /// Package names kept external together with their subpaths
    /// (`build.external`, instrumented packages, extensions' externals).
    pub externals: Vec<String>,
    pub jsx: Jsx,
    /// The tsconfig to use; `None` lets each file find its nearest one.
    pub tsconfig: Option<PathBuf>,
    /// Source text to use instead of a file's contents (the config with `build` stripped).
    pub overrides: HashMap<PathBuf, String>,
    /// `runtime: "bun"`: `bun:*` imports stay external.
    pub bun: bool,
    /// Write `.map` files next to the outputs.
    pub sourcemaps: bool,
    /// Keep every package import external (for code that runs next to its
    /// `node_modules`, like the config evaluated by the extension sidecar).
    pub external_packages: bool,
}

/// One file of the bundle, path relative to the output dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    pub path: String,
    pub contents: Vec<u8>,
}

/// Which output an entry became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryOutput {
    pub name: String,
    pub source: PathBuf,
    /// Output path relative to the output dir.
    pub output: String,
}

/// The result of a successful build.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// All outputs, sorted by path.
    pub files: Vec<OutputFile>,
    /// One per [`Entry`], in the order given.
    pub entries: Vec<EntryOutput>,
    /// External packages the bundle imports or requires, with installed versions, sorted by name.
    pub externals: Vec<External>,
    /// Warnings and notes (bundled externals, native addons made external, …).
    pub diagnostics: Vec<Diagnostic>,
    /// 32 hex chars; changes iff any output byte or path changes.
    pub content_hash: String,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("the bundle failed with {} error{}:\n{}", .0.len(), if .0.len() == 1 { "" } else { "s" }, render(.0))]
    Build(Vec<Diagnostic>),
    #[error("entry point {path} does not exist")]
    MissingEntry { path: PathBuf },
    #[error("could not set up the bundler: {0}")]
    Setup(String),
    #[error("could not write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn render(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Bundles the project. Runs rolldown on the current tokio runtime or, if there is
/// none, on a private one.
pub fn bundle(spec: &BundleSpec) -> Result<Bundle, BundleError> {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        tokio::task::block_in_place(|| handle.block_on(bundle_async(spec)))
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| BundleError::Setup(e.to_string()))?
            .block_on(bundle_async(spec))
    }
}

/// The async form of [`bundle`].
pub async fn bundle_async(spec: &BundleSpec) -> Result<Bundle, BundleError> {
    for entry in &spec.entries {
        if !entry.path.is_file() {
            return Err(BundleError::MissingEntry {
                path: entry.path.clone(),
            });
        }
    }
    let state = Arc::new(Mutex::new(plugin::State::default()));
    let trigger_plugin = plugin::TriggerPlugin::new(spec, Arc::clone(&state));

    let mut bundler =
        rolldown::Bundler::with_plugins(options(spec), vec![Arc::new(trigger_plugin)]).map_err(
            |e| {
                BundleError::Setup(
                    diagnostics::from_batch(&e, &spec.working_dir)
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            },
        )?;
    let result = bundler.generate().await;
    let _ = bundler.close().await;
    let output =
        result.map_err(|e| BundleError::Build(diagnostics::from_batch(&e, &spec.working_dir)))?;

    let mut diags = Vec::new();
    let mut errors = Vec::new();
    for warning in &output.warnings {
        let diag = diagnostics::from_rolldown(warning, &spec.working_dir);
        if diagnostics::is_fatal_warning(warning, &diag) {
            errors.push(diagnostics::into_missing_module_error(diag));
        } else {
            diags.push(diag);
        }
    }
    if !errors.is_empty() {
        return Err(BundleError::Build(errors));
    }

    let mut files = Vec::new();
    let mut by_facade: HashMap<PathBuf, String> = HashMap::new();
    for asset in &output.assets {
        let path = asset.filename().to_string();
        match asset {
            Output::Chunk(chunk) => {
                if chunk.is_entry
                    && let Some(facade) = &chunk.facade_module_id
                {
                    by_facade.insert(PathBuf::from(facade.as_str()), path.clone());
                }
            }
            Output::Asset(_) => {}
        }
        files.push(OutputFile {
            path,
            contents: asset.content_as_bytes().to_vec(),
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));

    let mut entries = Vec::with_capacity(spec.entries.len());
    for entry in &spec.entries {
        let output = by_facade.get(&entry.path).cloned().ok_or_else(|| {
            BundleError::Setup(format!(
                "rolldown produced no output for entry {}",
                entry.path.display()
            ))
        })?;
        entries.push(EntryOutput {
            name: entry.name.clone(),
            source: entry.path.clone(),
            output,
        });
    }

    let mut state = state
        .lock()
        .map_err(|_| BundleError::Setup("bundler state poisoned".into()))?;
    diags.append(&mut state.notes);
    let externals = externals::chosen(&state.externals);
    diags.sort_by_key(ToString::to_string);
    diags.dedup_by(|a, b| a.to_string() == b.to_string());

    let content_hash = content_hash(&files);
    Ok(Bundle {
        files,
        entries,
        externals,
        diagnostics: diags,
        content_hash,
    })
}

fn content_hash(files: &[OutputFile]) -> String {
    let mut hasher = Md5::new();
    for f in files {
        hasher.update(f.path.as_bytes());
        hasher.update([0]);
        hasher.update((f.contents.len() as u64).to_le_bytes());
        hasher.update(&f.contents);
    }
    hasher
        .finalize()
        .iter()
        .fold(String::with_capacity(32), |mut hex, b| {
            use std::fmt::Write as _;
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

fn options(spec: &BundleSpec) -> BundlerOptions {
    let mut conditions = spec.conditions.clone();
    for c in ["trigger.dev", "module", "node"] {
        conditions.push(c.to_string());
    }
    let jsx = if spec.jsx.automatic {
        JsxOptions {
            runtime: Some("automatic".into()),
            ..Default::default()
        }
    } else {
        JsxOptions {
            runtime: Some("classic".into()),
            pragma: Some(spec.jsx.factory.clone()),
            pragma_frag: Some(spec.jsx.fragment.clone()),
            ..Default::default()
        }
    };
    let mut module_types: FxHashMap<String, ModuleType> = FxHashMap::default();
    for ext in ["js", "mjs", "cjs"] {
        module_types.insert(ext.to_string(), ModuleType::Jsx);
    }
    BundlerOptions {
        input: Some(
            spec.entries
                .iter()
                .map(|e| InputItem {
                    name: Some(e.name.clone()),
                    import: e.path.to_string_lossy().into_owned(),
                })
                .collect(),
        ),
        cwd: Some(spec.working_dir.clone()),
        platform: Some(Platform::Node),
        format: Some(OutputFormat::Esm),
        entry_filenames: Some(ChunkFilenamesOutputOption::String("[name].mjs".into())),
        chunk_filenames: Some(ChunkFilenamesOutputOption::String(
            "chunk-[hash].mjs".into(),
        )),
        sourcemap: spec.sourcemaps.then_some(SourceMapType::File),
        // upstream only embeds sources in dev builds
        sourcemap_exclude_sources: Some(true),
        banner: Some(AddonOutputOption::String(Some(ESM_SHIM.into()))),
        module_types: Some(module_types),
        resolve: Some(ResolveOptions {
            condition_names: Some(conditions),
            ..Default::default()
        }),
        transform: Some(BundlerTransformOptions {
            jsx: Some(Either::Right(jsx)),
            target: Some(Either::Right(vec!["node20".into(), "es2022".into()])),
            ..Default::default()
        }),
        tsconfig: Some(
            spec.tsconfig
                .clone()
                .map_or(TsConfig::Auto(true), TsConfig::Manual),
        ),
        ..Default::default()
    }
}

impl Bundle {
    /// Writes every output file under `dir`, creating directories as needed.
    pub fn write_to(&self, dir: &Path) -> Result<(), BundleError> {
        for f in &self.files {
            let path = dir.join(&f.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| BundleError::Write {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            std::fs::write(&path, &f.contents)
                .map_err(|source| BundleError::Write { path, source })?;
        }
        Ok(())
    }
}

/// The output name for a source file: its path relative to `working_dir`,
/// without extension, `/`-separated. `..` segments are dropped so a file outside
/// the project still lands inside the output dir.
pub fn entry_name(working_dir: &Path, source: &Path) -> String {
    let rel = source.strip_prefix(working_dir).unwrap_or(source);
    let without_ext = rel.with_extension("");
    let parts: Vec<String> = without_ext
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    parts.join("/")
}
