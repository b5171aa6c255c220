//! The rolldown plugin carrying Trigger.dev's resolve/load rules.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rolldown::ModuleType;
use rolldown_common::ResolvedExternal;
use rolldown_plugin::{
    HookLoadArgs, HookLoadOutput, HookLoadReturn, HookResolveIdArgs, HookResolveIdOutput,
    HookResolveIdReturn, HookUsage, Plugin, PluginContext, SharedLoadPluginContext,
};

use crate::diagnostics::{Diagnostic, Severity};
use crate::externals::{self, PackageCache, SeenExternals};
use crate::{ALWAYS_EXTERNAL, BundleSpec};

const SERVER_ONLY_ID: &str = "\0liftoff:server-only";

/// What the plugin learns during one build.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub externals: SeenExternals,
    pub notes: Vec<Diagnostic>,
    cache: PackageCache,
    native_noted: HashSet<PathBuf>,
}

#[derive(Debug)]
pub(crate) struct TriggerPlugin {
    working_dir: PathBuf,
    externals: Vec<String>,
    overrides: HashMap<PathBuf, String>,
    bun: bool,
    external_packages: bool,
    state: Arc<Mutex<State>>,
}

impl TriggerPlugin {
    pub(crate) fn new(spec: &BundleSpec, state: Arc<Mutex<State>>) -> Self {
        let mut names: Vec<String> = ALWAYS_EXTERNAL.iter().map(ToString::to_string).collect();
        names.extend(spec.externals.iter().cloned());
        Self {
            working_dir: spec.working_dir.clone(),
            externals: names,
            overrides: spec.overrides.clone(),
            bun: spec.bun,
            external_packages: spec.external_packages,
            state,
        }
    }

    fn rel<'a>(&self, p: &'a Path) -> Cow<'a, str> {
        p.strip_prefix(&self.working_dir)
            .unwrap_or(p)
            .to_string_lossy()
    }

    /// Decides whether a bare import stays external; records it if so.
    fn external_for(&self, specifier: &str, importer: &Path) -> Option<HookResolveIdOutput> {
        let importer_dir = importer.parent()?;
        let pkg_name = externals::package_name(specifier);
        let configured = externals::matches(specifier, &self.externals);
        let mut state = self.state.lock().ok()?;
        let pkg = liftoff_config::find_node_module(importer_dir, pkg_name)
            .and_then(|dir| state.cache.get(&dir));

        let version = match (&pkg, configured) {
            (Some(p), true) if p.name.as_deref() == Some(pkg_name) && p.version.is_some() => {
                p.version.clone()
            }
            (_, true) => {
                if !ALWAYS_EXTERNAL.contains(&pkg_name) {
                    state.notes.push(Diagnostic::about_package(
                        Severity::Warning,
                        "EXTERNAL_NOT_INSTALLED",
                        pkg_name,
                        format!(
                            "`{pkg_name}` is listed as external but is not installed where {} can resolve it, so it is bundled instead. Install it (npm install {pkg_name}) to keep it external.",
                            self.rel(importer)
                        ),
                    ));
                }
                return None;
            }
            (Some(p), false) => {
                let reason = externals::native_reason(p, specifier)?;
                let version = p.version.clone()?;
                if state.native_noted.insert(p.dir.clone()) {
                    state.notes.push(Diagnostic::about_package(
                        Severity::Note,
                        "NATIVE_EXTERNAL",
                        pkg_name,
                        format!(
                            "`{pkg_name}@{version}` ships native code ({reason}), so it is kept external and installed in the image instead of bundled."
                        ),
                    ));
                }
                Some(version)
            }
            (None, false) => return None,
        }?;
        let dir = pkg.map(|p| p.dir).unwrap_or_default();
        state
            .externals
            .entry(pkg_name.to_string())
            .or_default()
            .insert((dir.components().count(), dir, version));
        Some(HookResolveIdOutput {
            id: specifier.into(),
            external: Some(ResolvedExternal::Bool(true)),
            ..Default::default()
        })
    }
}

impl Plugin for TriggerPlugin {
    fn name(&self) -> Cow<'static, str> {
        "liftoff:trigger".into()
    }

    fn register_hook_usage(&self) -> HookUsage {
        HookUsage::ResolveId | HookUsage::Load
    }

    async fn resolve_id(
        &self,
        _ctx: &PluginContext,
        args: &HookResolveIdArgs<'_>,
    ) -> HookResolveIdReturn {
        let specifier = args.specifier;
        if specifier == "server-only" {
            return Ok(Some(HookResolveIdOutput::from_id(SERVER_ONLY_ID)));
        }
        if self.bun && specifier.starts_with("bun:") {
            return Ok(Some(HookResolveIdOutput {
                id: specifier.into(),
                external: Some(ResolvedExternal::Bool(true)),
                ..Default::default()
            }));
        }
        if args.is_entry || !externals::is_bare(specifier) {
            return Ok(None);
        }
        if self.external_packages {
            return Ok(Some(HookResolveIdOutput {
                id: specifier.into(),
                external: Some(ResolvedExternal::Bool(true)),
                ..Default::default()
            }));
        }
        let Some(importer) = args.importer.filter(|i| !i.starts_with('\0')) else {
            return Ok(None);
        };
        Ok(self.external_for(specifier, Path::new(importer)))
    }

    async fn load(&self, _ctx: SharedLoadPluginContext, args: &HookLoadArgs<'_>) -> HookLoadReturn {
        if args.id == SERVER_ONLY_ID {
            return Ok(Some(HookLoadOutput {
                code: "export default true;\n".into(),
                module_type: Some(ModuleType::Js),
                ..Default::default()
            }));
        }
        if let Some(code) = self.overrides.get(Path::new(args.id)) {
            return Ok(Some(HookLoadOutput {
                code: code.as_str().into(),
                ..Default::default()
            }));
        }
        Ok(None)
    }
}
