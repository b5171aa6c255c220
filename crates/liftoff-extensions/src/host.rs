//! Runs the extensions in upstream's order and merges their layers.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use liftoff_config::ResolvedConfig;
use liftoff_manifest::{BuildManifest, External};

use crate::builtin::{self, Recognised, data};
use crate::layer::{BuildLayer, apply_layer};
use crate::plan::{ExtensionPlan, Plan};
use crate::sidecar::{Sidecar, SidecarExtension};
use crate::{Context, CopiedFile, Extension, ExtensionError, LogLevel, LogLine, Runtime, Target};

/// How the host behaves.
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// Report an extension whose `onBuildComplete` fails and carry on (upstream's
    /// behaviour) instead of failing the build.
    pub keep_going: bool,
    /// Extensions to leave out, by upstream name or by the config's call name.
    pub skip: Vec<String>,
    /// The environment extensions see as `process.env`.
    pub env: BTreeMap<String, String>,
}

#[derive(Debug)]
struct Slot {
    ext: Box<dyn Extension>,
    /// The name used in the config (`aptGet`, `prismaExtension`, an inline object's name).
    call_name: String,
    location: String,
    skipped: bool,
    reason: Option<String>,
    layer_ids: Vec<String>,
    failed: Option<String>,
}

/// The extension host for one build.
#[derive(Debug)]
pub struct Host {
    slots: Vec<Slot>,
    options: HostOptions,
    target: Target,
    runtime: Runtime,
    project: String,
    working_dir: std::path::PathBuf,
    pending: Vec<(usize, BuildLayer)>,
    applied: Vec<BuildLayer>,
    logs: Vec<LogLine>,
    files: Vec<CopiedFile>,
    sidecar: Option<Arc<Mutex<Sidecar>>>,
}

impl Host {
    /// Recognises every entry of `build.extensions`.
    pub fn new(config: &ResolvedConfig, options: HostOptions) -> Result<Self, ExtensionError> {
        let catalogue = data::all()?;
        let config_file = config
            .config_file
            .strip_prefix(&config.working_dir)
            .unwrap_or(&config.config_file)
            .display()
            .to_string();
        let mut slots = Vec::new();
        for (index, call) in config.build.extensions.iter().enumerate() {
            let location = format!("{config_file}:{}", call.span);
            let call_name = call.callee.clone().unwrap_or_default();
            let (ext, reason): (Box<dyn Extension>, Option<String>) =
                match builtin::recognise(call, &catalogue, &config_file)? {
                    Recognised::Native(ext) => (ext, None),
                    Recognised::Sidecar { name, reason } => {
                        (Box::new(SidecarExtension::new(index, name)), Some(reason))
                    }
                };
            let skipped = options
                .skip
                .iter()
                .any(|s| s == ext.name() || (!call_name.is_empty() && *s == call_name));
            slots.push(Slot {
                ext,
                call_name,
                location,
                skipped,
                reason,
                layer_ids: Vec::new(),
                failed: None,
            });
        }
        for s in &options.skip {
            if !slots
                .iter()
                .any(|slot| slot.ext.name() == s || slot.call_name == *s)
            {
                return Err(ExtensionError::Sidecar(format!(
                    "--skip-extension {s}: no extension of that name in build.extensions (names: {})",
                    slots
                        .iter()
                        .map(|s| s.ext.name().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        Ok(Self {
            slots,
            options,
            target: Target::Deploy,
            runtime: match config.runtime {
                liftoff_config::Runtime::Node => Runtime::Node,
                liftoff_config::Runtime::Bun => Runtime::Bun,
            },
            project: config.project.clone(),
            working_dir: config.working_dir.clone(),
            pending: Vec::new(),
            applied: Vec::new(),
            logs: Vec::new(),
            files: Vec::new(),
            sidecar: None,
        })
    }

    /// Whether any extension (not skipped) must run in the Node sidecar.
    pub fn needs_sidecar(&self) -> bool {
        self.slots
            .iter()
            .any(|s| !s.skipped && s.ext.implementation() == "sidecar")
    }

    /// Hands the running sidecar to the extensions that need it.
    pub fn attach_sidecar(&mut self, sidecar: Sidecar) -> Result<(), ExtensionError> {
        let shared = Arc::new(Mutex::new(sidecar));
        for slot in &mut self.slots {
            if let Some(ext) = slot.ext.as_sidecar() {
                ext.attach(Arc::clone(&shared))?;
            }
        }
        self.sidecar = Some(shared);
        Ok(())
    }

    fn collect(&mut self, index: usize, ctx: Context<'_>) {
        let (layers, logs, files) = ctx.into_parts();
        self.pending.extend(layers.into_iter().map(|l| (index, l)));
        self.logs.extend(logs);
        self.files.extend(files);
        self.drain_sidecar_logs();
    }

    /// Logs the sidecar printed outside any hook (while loading the config, say).
    fn drain_sidecar_logs(&mut self) {
        if let Some(Ok(mut sidecar)) = self.sidecar.as_ref().map(|s| s.lock()) {
            self.logs.extend(sidecar.take_logs());
        }
    }

    /// Every extension's `externalsForTarget`.
    pub fn externals(&mut self) -> Result<Vec<String>, ExtensionError> {
        let mut all = Vec::new();
        for slot in self.slots.iter_mut().filter(|s| !s.skipped) {
            all.extend(slot.ext.externals_for_target(self.target)?);
        }
        self.drain_sidecar_logs();
        Ok(all)
    }

    /// `onBuildStart` for every extension in order; an error aborts the build (as upstream).
    pub fn build_start(&mut self, build_dir: &Path) -> Result<(), ExtensionError> {
        let (env, working_dir, project) = (
            self.options.env.clone(),
            self.working_dir.clone(),
            self.project.clone(),
        );
        for index in 0..self.slots.len() {
            if self.slots[index].skipped {
                continue;
            }
            let name = self.slots[index].ext.name().to_string();
            let mut ctx = Context::new(self.target, self.runtime, &working_dir, &project, &env)
                .for_extension(&name, build_dir);
            let result = self.slots[index].ext.on_build_start(&mut ctx);
            self.collect(index, ctx);
            result?;
        }
        Ok(())
    }

    /// The externals layer first, then `onBuildComplete` for every extension in
    /// order, applying all pending layers after each one (upstream's rule).
    pub fn build_complete(
        &mut self,
        manifest: &mut BuildManifest,
        bundle_externals: &[External],
    ) -> Result<(), ExtensionError> {
        let build_dir = std::path::PathBuf::from(&manifest.output_path);
        self.pending.push((
            usize::MAX,
            BuildLayer {
                id: "externals".into(),
                dependencies: Some(
                    bundle_externals
                        .iter()
                        .map(|e| (e.name.clone(), e.version.clone()))
                        .collect(),
                ),
                ..BuildLayer::default()
            },
        ));
        self.apply_pending(manifest);
        let (env, working_dir, project) = (
            self.options.env.clone(),
            self.working_dir.clone(),
            self.project.clone(),
        );
        for index in 0..self.slots.len() {
            if self.slots[index].skipped {
                continue;
            }
            let name = self.slots[index].ext.name().to_string();
            let mut ctx = Context::new(self.target, self.runtime, &working_dir, &project, &env)
                .for_extension(&name, &build_dir);
            let snapshot = manifest.clone();
            let result = self.slots[index].ext.on_build_complete(&mut ctx, &snapshot);
            self.collect(index, ctx);
            if let Err(err) = result {
                if !self.options.keep_going {
                    return Err(err);
                }
                self.slots[index].failed = Some(err.to_string());
                self.logs.push(LogLine {
                    extension: name.clone(),
                    level: LogLevel::Warn,
                    message: format!("Failed to apply extension {name} onBuildComplete (continuing because of --keep-going): {err}"),
                });
                // Upstream drops nothing: layers added before the error still apply.
            }
            self.apply_pending(manifest);
        }
        Ok(())
    }

    fn apply_pending(&mut self, manifest: &mut BuildManifest) {
        for (index, layer) in std::mem::take(&mut self.pending) {
            apply_layer(manifest, &layer);
            if let Some(slot) = self.slots.get_mut(index) {
                slot.layer_ids.push(layer.id.clone());
            }
            self.applied.push(layer);
        }
    }

    /// Messages from extensions, with every secret value of the manifest redacted.
    pub fn logs(&self, manifest: &BuildManifest) -> Vec<LogLine> {
        let secrets = crate::plan::secret_values(manifest);
        self.logs
            .iter()
            .map(|l| LogLine {
                message: crate::plan::redact(&l.message, &secrets),
                ..l.clone()
            })
            .collect()
    }

    /// The resolved plan (names of env vars only, never values).
    pub fn plan(&self, manifest: &BuildManifest) -> Plan {
        let extensions = self
            .slots
            .iter()
            .map(|s| ExtensionPlan {
                name: s.ext.name().to_string(),
                call: (!s.call_name.is_empty()).then(|| s.call_name.clone()),
                location: s.location.clone(),
                implementation: if s.skipped {
                    "skipped"
                } else {
                    s.ext.implementation()
                },
                reason: s.reason.clone(),
                layers: s.layer_ids.clone(),
                failed: s.failed.clone(),
            })
            .collect();
        Plan::new(
            extensions,
            &self.applied,
            &self.files,
            manifest,
            &self.logs(manifest),
        )
    }
}

impl<'a> Context<'a> {
    pub(crate) fn for_extension(mut self, name: &str, build_dir: &'a Path) -> Self {
        self.extension = name.to_string();
        self.build_dir = Some(build_dir);
        self
    }

    pub(crate) fn into_parts(self) -> (Vec<BuildLayer>, Vec<LogLine>, Vec<CopiedFile>) {
        (self.layers, self.logs, self.files)
    }
}
