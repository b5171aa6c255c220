//! Trigger.dev build extensions for liftoff.
//!
//! Built-in extensions are recognised from the config's import and call site and
//! run natively: their declarative part (packages, instructions, env, defaults)
//! lives in a data file under the repository's `extensions/` directory, the rest
//! (file copies, version look-ups) in Rust next to it. Anything else runs in a
//! Node sidecar. Layers are merged into the build manifest exactly as upstream's
//! `applyLayerToManifest` does.

mod builtin;
mod error;
mod host;
mod layer;
pub mod plan;
mod record;
mod sidecar;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use error::ExtensionError;
pub use host::{Host, HostOptions};
pub use layer::{BuildEnvLayer, BuildLayer, DeployLayer, ImageLayer, apply_layer};
pub use liftoff_manifest::{Runtime, Target};
pub use record::{Recording, record, static_value};
pub use sidecar::{DescribedExtension, Description, Sidecar, SidecarExtension, SidecarOptions};

/// One message from an extension (upstream's `context.logger`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    pub extension: String,
    pub level: LogLevel,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Log,
    Warn,
}

/// A file an extension copied into the build directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CopiedFile {
    pub extension: String,
    /// Source, relative to the working dir when inside it.
    pub from: String,
    /// Destination, relative to the build dir.
    pub to: String,
}

/// What an extension sees while it runs (upstream's `BuildContext`).
#[derive(Debug)]
pub struct Context<'a> {
    pub target: Target,
    pub runtime: Runtime,
    pub working_dir: &'a Path,
    pub project: &'a str,
    /// The environment liftoff runs in (`process.env` for extensions).
    pub env: &'a BTreeMap<String, String>,
    /// The build directory (upstream's `manifest.outputPath` before the path rewrite).
    pub build_dir: Option<&'a Path>,
    extension: String,
    layers: Vec<BuildLayer>,
    logs: Vec<LogLine>,
    files: Vec<CopiedFile>,
}

impl<'a> Context<'a> {
    pub fn new(
        target: Target,
        runtime: Runtime,
        working_dir: &'a Path,
        project: &'a str,
        env: &'a BTreeMap<String, String>,
    ) -> Self {
        Self {
            target,
            runtime,
            working_dir,
            project,
            env,
            build_dir: None,
            extension: String::new(),
            layers: Vec::new(),
            logs: Vec::new(),
            files: Vec::new(),
        }
    }

    pub fn add_layer(&mut self, layer: BuildLayer) {
        self.layers.push(layer);
    }

    pub fn log(&mut self, level: LogLevel, message: impl Into<String>) {
        self.logs.push(LogLine {
            extension: self.extension.clone(),
            level,
            message: message.into(),
        });
    }

    pub fn warn(&mut self, message: impl Into<String>) {
        self.log(LogLevel::Warn, message);
    }

    pub(crate) fn record_copy(&mut self, from: &Path, to: &Path, build_dir: &Path) {
        let from = builtin::relative_path(from, self.working_dir)
            .to_string_lossy()
            .into_owned();
        let to = to
            .strip_prefix(build_dir)
            .unwrap_or(to)
            .to_string_lossy()
            .into_owned();
        self.files.push(CopiedFile {
            extension: self.extension.clone(),
            from,
            to,
        });
    }

    /// Resolves a path relative to the working dir.
    pub fn resolve(&self, path: &str) -> PathBuf {
        self.working_dir.join(path)
    }
}

/// A build extension: upstream's `BuildExtension` lifecycle.
pub trait Extension: std::fmt::Debug + Send {
    /// Upstream's `name` (e.g. `ffmpeg`, `PrismaExtension`).
    fn name(&self) -> &str;
    /// `native` or `sidecar`, for the plan.
    fn implementation(&self) -> &'static str {
        "native"
    }
    fn externals_for_target(&mut self, _target: Target) -> Result<Vec<String>, ExtensionError> {
        Ok(Vec::new())
    }
    fn on_build_start(&mut self, _ctx: &mut Context<'_>) -> Result<(), ExtensionError> {
        Ok(())
    }
    fn on_build_complete(
        &mut self,
        _ctx: &mut Context<'_>,
        _manifest: &liftoff_manifest::BuildManifest,
    ) -> Result<(), ExtensionError> {
        Ok(())
    }
    /// The sidecar-backed extension behind this one, if it is one.
    fn as_sidecar(&mut self) -> Option<&mut SidecarExtension> {
        None
    }
}
