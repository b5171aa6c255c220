//! Custom extensions in a Node sidecar.
//!
//! Extensions liftoff does not implement natively (inline objects, third-party
//! packages, built-ins whose options are only known at runtime, `syncEnvVars`
//! callbacks) run in a `node` child process. It imports the user's config (bundled
//! with `build` kept), and runs the hooks of `build.extensions[index]` with an
//! upstream-shaped `BuildContext`. The layers they add come back as JSON in
//! upstream's `BuildLayer` shape; log lines come back as data.
//!
//! Protocol (see `sidecar/host.mjs`): newline-delimited JSON. Requests
//! `{id, method, params}` on node's stdin; on its stdout, lines starting with a
//! per-process marker carry replies `{id, result}` / `{id, error: {name, message,
//! stack}}` and log notifications `{method: "log", params: {level, message}}`.
//! Any other stdout line becomes a log line. Each call has a timeout; on expiry
//! node is killed and later calls fail.

mod process;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use liftoff_manifest::BuildManifest;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::layer::BuildLayer;
use crate::{Context, Extension, ExtensionError, LogLevel, LogLine, Target};
use process::{CallError, NodeProcess};

/// The `extension` of log lines printed while the config loads.
const CONFIG_LOG_SOURCE: &str = "trigger.config";

/// Oldest Node major version the sidecar supports.
const MIN_NODE_MAJOR: u64 = 18;

/// How to start the sidecar.
#[derive(Debug, Clone)]
pub struct SidecarOptions {
    /// The `node` executable: a bare name is looked up on `PATH` (the `PATH` of
    /// `env`, else liftoff's own); a path is used as given.
    pub node: PathBuf,
    /// An ES module (`.mjs`): the user's config bundled with `build` kept. Its
    /// `default` export (else its `config` export) is the config object.
    pub config_module: PathBuf,
    /// The project dir: node's cwd and `context.workingDir`.
    pub working_dir: PathBuf,
    /// How long one call (config load or hook) may take.
    pub timeout: Duration,
    /// The resolved config as JSON, for `context.config`. Computed fields win over
    /// the live config object; `build.extensions` is the live array.
    pub resolved_config: Value,
    /// The whole environment node gets (`process.env` for extensions).
    pub env: BTreeMap<String, String>,
}

impl Default for SidecarOptions {
    fn default() -> Self {
        Self {
            node: PathBuf::from("node"),
            config_module: PathBuf::new(),
            working_dir: PathBuf::new(),
            timeout: Duration::from_mins(1),
            resolved_config: Value::Null,
            env: BTreeMap::new(),
        }
    }
}

/// What the config contains when it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Description {
    /// Every entry of `build.extensions`, then the ones upstream appends for the
    /// deprecated `additionalFiles`, `additionalPackages` and `resolveEnvVars`.
    pub extensions: Vec<DescribedExtension>,
    /// Non-builtin `moduleDefinition.name`s of `telemetry.instrumentations` (or
    /// the deprecated top-level `instrumentations`), deduplicated, in order.
    pub instrumented_package_names: Vec<String>,
    /// What the config printed while it was imported.
    pub logs: Vec<LogLine>,
}

/// One entry of `build.extensions` as the config defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescribedExtension {
    pub index: usize,
    /// The object's `name` (empty when it has none).
    pub name: String,
    /// Which of `externalsForTarget`, `onBuildStart` and `onBuildComplete` it has.
    pub hooks: Vec<String>,
}

impl DescribedExtension {
    pub fn has_hook(&self, hook: &str) -> bool {
        self.hooks.iter().any(|h| h == hook)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeReply {
    extensions: Vec<DescribedExtension>,
    instrumented_package_names: Vec<String>,
}

#[derive(Deserialize)]
struct HookReply {
    #[serde(default)]
    layers: Vec<Value>,
    #[serde(default)]
    plugins: Vec<PluginReply>,
}

#[derive(Deserialize)]
struct PluginReply {
    name: String,
}

/// The running Node sidecar.
#[derive(Debug)]
pub struct Sidecar {
    process: NodeProcess,
    timeout: Duration,
    config_module: PathBuf,
    description: Option<Description>,
    /// Log lines not tied to a [`Context`] (from `externalsForTarget`).
    logs: Vec<LogLine>,
}

impl Sidecar {
    /// Starts `node` with the host script and checks it is Node 18 or newer.
    /// The config is not imported until [`Sidecar::describe`] or the first hook.
    #[allow(clippy::needless_pass_by_value)] // the options are handed over for good
    pub fn start(opts: SidecarOptions) -> Result<Self, ExtensionError> {
        if !opts.working_dir.is_dir() {
            return Err(ExtensionError::Sidecar(format!(
                "cannot start the Node sidecar: the working dir {} does not exist",
                opts.working_dir.display()
            )));
        }
        let node =
            process::find_node(&opts.node, &opts.env).ok_or_else(|| node_not_found(&opts))?;
        let process = NodeProcess::spawn(&node, &opts.working_dir, &opts.env).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                node_not_found(&opts)
            } else {
                ExtensionError::Sidecar(format!("could not start {}: {e}", node.display()))
            }
        })?;
        let mut sidecar = Self {
            process,
            timeout: opts.timeout,
            config_module: opts.config_module.clone(),
            description: None,
            logs: Vec::new(),
        };
        let mut logs = Vec::new();
        let params = json!({
            "configModule": opts.config_module,
            "workingDir": opts.working_dir,
            "resolvedConfig": opts.resolved_config,
        });
        let reply = sidecar
            .process
            .call("init", &params, opts.timeout, &mut logs);
        sidecar.keep_logs(CONFIG_LOG_SOURCE, logs);
        let reply = reply.map_err(|err| startup_error(&node, err, opts.timeout))?;
        let version = reply
            .get("node")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let major = version
            .split('.')
            .next()
            .and_then(|m| m.parse::<u64>().ok())
            .unwrap_or(0);
        if major < MIN_NODE_MAJOR {
            return Err(ExtensionError::Sidecar(format!(
                "liftoff runs custom build extensions with Node.js {MIN_NODE_MAJOR} or newer, but {} is v{version}. Install Node {MIN_NODE_MAJOR}+",
                node.display()
            )));
        }
        Ok(sidecar)
    }

    /// Imports the config (once) and reports its extensions and instrumented packages.
    pub fn describe(&mut self) -> Result<Description, ExtensionError> {
        if let Some(d) = &self.description {
            return Ok(d.clone());
        }
        let mut logs = Vec::new();
        let reply = self
            .process
            .call("describe", &json!({}), self.timeout, &mut logs);
        let logs: Vec<LogLine> = logs
            .into_iter()
            .map(|(level, message)| LogLine {
                extension: CONFIG_LOG_SOURCE.into(),
                level,
                message,
            })
            .collect();
        let reply = reply.map_err(|err| self.load_error(err))?;
        let reply: DescribeReply = serde_json::from_value(reply).map_err(|e| {
            ExtensionError::Sidecar(format!(
                "the Node sidecar sent an unexpected description of the config: {e}"
            ))
        })?;
        let description = Description {
            extensions: reply.extensions,
            instrumented_package_names: reply.instrumented_package_names,
            logs,
        };
        self.description = Some(description.clone());
        Ok(description)
    }

    /// The description, once [`Sidecar::describe`] has run.
    pub fn description(&self) -> Option<&Description> {
        self.description.as_ref()
    }

    /// Log lines that had no [`Context`] to go to (printed while the sidecar
    /// started or during `externalsForTarget`); drains them.
    pub fn take_logs(&mut self) -> Vec<LogLine> {
        std::mem::take(&mut self.logs)
    }

    /// `build.extensions[index].externalsForTarget(target)`.
    pub fn externals_for_target(
        &mut self,
        index: usize,
        target: Target,
    ) -> Result<Vec<String>, ExtensionError> {
        if !self.wants(index, "externalsForTarget")? {
            return Ok(Vec::new());
        }
        let name = self.name_of(index);
        let mut logs = Vec::new();
        let reply = self.process.call(
            "externalsForTarget",
            &json!({ "index": index, "target": target }),
            self.timeout,
            &mut logs,
        );
        self.keep_logs(&name, logs);
        let reply = reply.map_err(|err| Self::hook_error(&name, "externalsForTarget", err))?;
        let externals = reply
            .get("externals")
            .cloned()
            .unwrap_or(Value::Array(Vec::new()));
        serde_json::from_value(externals).map_err(|e| {
            ExtensionError::failed(
                &name,
                "externalsForTarget",
                format!("returned something other than package names: {e}"),
            )
        })
    }

    /// `build.extensions[index].onBuildStart(context)`. Layers and log lines go to
    /// `ctx`. Registering an esbuild plugin (for this target) is an error:
    /// liftoff bundles with rolldown.
    pub fn on_build_start(
        &mut self,
        index: usize,
        ctx: &mut Context<'_>,
    ) -> Result<(), ExtensionError> {
        let reply = self.run_hook(
            index,
            "onBuildStart",
            &json!({ "index": index, "target": ctx.target }),
            ctx,
        )?;
        let Some(reply) = reply else { return Ok(()) };
        if reply.plugins.is_empty() {
            return Ok(());
        }
        let name = self.name_of(index);
        let plugins = reply
            .plugins
            .iter()
            .map(|p| format!("`{}`", p.name))
            .collect::<Vec<_>>()
            .join(", ");
        let what = if reply.plugins.len() == 1 {
            "the esbuild plugin"
        } else {
            "the esbuild plugins"
        };
        Err(ExtensionError::failed(
            &name,
            "onBuildStart",
            format!(
                "it registers {what} {plugins}, but liftoff bundles with rolldown and cannot run esbuild plugins. Skip the extension with --skip-extension {name}"
            ),
        ))
    }

    /// `build.extensions[index].onBuildComplete(context, manifest)`. Layers and
    /// log lines go to `ctx`.
    pub fn on_build_complete(
        &mut self,
        index: usize,
        ctx: &mut Context<'_>,
        manifest: &BuildManifest,
    ) -> Result<(), ExtensionError> {
        let manifest = serde_json::to_value(manifest).map_err(|e| {
            ExtensionError::failed(
                &self.name_of(index),
                "onBuildComplete",
                format!("could not serialise the build manifest: {e}"),
            )
        })?;
        self.run_hook(
            index,
            "onBuildComplete",
            &json!({ "index": index, "target": ctx.target, "manifest": manifest }),
            ctx,
        )?;
        Ok(())
    }

    /// Runs one context hook; `None` when the extension does not have it.
    fn run_hook(
        &mut self,
        index: usize,
        hook: &'static str,
        params: &Value,
        ctx: &mut Context<'_>,
    ) -> Result<Option<HookReply>, ExtensionError> {
        if !self.wants(index, hook)? {
            return Ok(None);
        }
        let name = self.name_of(index);
        let mut logs = Vec::new();
        let reply = self.process.call(hook, params, self.timeout, &mut logs);
        for (level, message) in logs {
            ctx.log(level, message);
        }
        let reply = reply.map_err(|err| Self::hook_error(&name, hook, err))?;
        let reply: HookReply = serde_json::from_value(reply).map_err(|e| {
            ExtensionError::failed(
                &name,
                hook,
                format!("the Node sidecar sent an unexpected reply: {e}"),
            )
        })?;
        for layer in &reply.layers {
            let id = layer
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let layer: BuildLayer = serde_json::from_value(layer.clone()).map_err(|e| {
                ExtensionError::failed(&name, hook, format!("added an invalid layer `{id}`: {e}"))
            })?;
            ctx.add_layer(layer);
        }
        Ok(Some(reply))
    }

    /// Whether to call `hook` of extension `index` (not when it lacks it). Loads
    /// the config first if [`Sidecar::describe`] has not run yet.
    fn wants(&mut self, index: usize, hook: &str) -> Result<bool, ExtensionError> {
        if self.description.is_none() {
            let logs = self.describe()?.logs;
            self.logs.extend(logs);
        }
        let Some(d) = &self.description else {
            return Ok(true);
        };
        match d.extensions.get(index) {
            Some(ext) => Ok(ext.has_hook(hook)),
            None => Err(ExtensionError::Sidecar(format!(
                "build.extensions[{index}] does not exist when the config runs: it has {} entries",
                d.extensions.len()
            ))),
        }
    }

    fn name_of(&self, index: usize) -> String {
        self.description
            .as_ref()
            .and_then(|d| d.extensions.get(index))
            .map(|e| e.name.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("build.extensions[{index}]"))
    }

    fn keep_logs(&mut self, extension: &str, logs: Vec<(LogLevel, String)>) {
        self.logs
            .extend(logs.into_iter().map(|(level, message)| LogLine {
                extension: extension.to_string(),
                level,
                message,
            }));
    }

    fn hook_error(name: &str, hook: &'static str, err: CallError) -> ExtensionError {
        match err {
            CallError::Js {
                name: error_name,
                message,
                stack,
            } => ExtensionError::failed(
                name,
                hook,
                CallError::js_text(&error_name, &message, stack.as_deref()),
            ),
            CallError::Timeout(timeout) => ExtensionError::Sidecar(format!(
                "{name}: {hook} did not finish within {}; raise it with --extension-timeout or skip it with --skip-extension {name}",
                human(timeout)
            )),
            CallError::Exited { status, stderr } => ExtensionError::failed(
                name,
                hook,
                format!(
                    "Node exited unexpectedly ({}) while it ran{}",
                    status_text(status),
                    stderr_text(&stderr)
                ),
            ),
            CallError::Dead(reason) => ExtensionError::Sidecar(format!(
                "{name}: cannot run {hook}: the Node sidecar is no longer running ({reason})"
            )),
        }
    }

    fn load_error(&self, err: CallError) -> ExtensionError {
        let module = self.config_module.display();
        ExtensionError::Sidecar(match err {
            CallError::Js {
                name,
                message,
                stack,
            } => {
                format!(
                    "could not load the config in Node ({module}): {}",
                    CallError::js_text(&name, &message, stack.as_deref())
                )
            }
            CallError::Timeout(timeout) => format!(
                "loading the config in Node ({module}) did not finish within {}; raise it with --extension-timeout",
                human(timeout)
            ),
            CallError::Exited { status, stderr } => format!(
                "Node exited unexpectedly ({}) while loading the config ({module}){}",
                status_text(status),
                stderr_text(&stderr)
            ),
            CallError::Dead(reason) => {
                format!("cannot load the config: the Node sidecar is no longer running ({reason})")
            }
        })
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        self.process.stop("it was shut down".into());
    }
}

fn startup_error(node: &std::path::Path, err: CallError, timeout: Duration) -> ExtensionError {
    let node = node.display();
    ExtensionError::Sidecar(match err {
        CallError::Js {
            name,
            message,
            stack,
        } => {
            format!(
                "the Node sidecar ({node}) failed to start: {}",
                CallError::js_text(&name, &message, stack.as_deref())
            )
        }
        CallError::Timeout(_) => format!(
            "the Node sidecar ({node}) did not start within {}",
            human(timeout)
        ),
        CallError::Exited { status, stderr } => format!(
            "the Node sidecar ({node}) exited right after starting ({}); liftoff needs Node {MIN_NODE_MAJOR}+{}",
            status_text(status),
            stderr_text(&stderr)
        ),
        CallError::Dead(reason) => format!("the Node sidecar ({node}) is not running ({reason})"),
    })
}

fn node_not_found(opts: &SidecarOptions) -> ExtensionError {
    let node = opts.node.display();
    let what = if opts.node.components().count() > 1 || opts.node.is_absolute() {
        format!("`{node}` was not found")
    } else {
        format!("`{node}` was not found on PATH")
    };
    let names = sidecar_extension_names(&opts.resolved_config);
    if names.is_empty() {
        let instrumentations = opts
            .resolved_config
            .get("hasInstrumentations")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let why = if instrumentations {
            "liftoff loads the config's telemetry instrumentations with Node.js to find the instrumented packages"
        } else {
            "liftoff runs custom build extensions with Node.js"
        };
        return ExtensionError::Sidecar(format!("{what}: {why}. Install Node {MIN_NODE_MAJOR}+"));
    }
    let skips = names
        .iter()
        .map(|n| format!("--skip-extension {n}"))
        .collect::<Vec<_>>()
        .join(" ");
    ExtensionError::Sidecar(format!(
        "{what}: liftoff runs custom build extensions ({}) with Node.js. Install Node {MIN_NODE_MAJOR}+ or skip them with {skips}",
        names.join(", ")
    ))
}

/// Best guess, from the serialised static config, of which extensions need the
/// sidecar (for the "node not found" message only): everything except calls to
/// `@trigger.dev/*` exports whose arguments are all statically known.
fn sidecar_extension_names(resolved: &Value) -> Vec<String> {
    let Some(extensions) = resolved
        .pointer("/build/extensions")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for (index, ext) in extensions.iter().enumerate() {
        let kind = ext.get("kind").and_then(Value::as_str).unwrap_or_default();
        let source = ext
            .pointer("/import/source")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let args = ext.get("args").unwrap_or(&Value::Null);
        if kind == "call" && source.starts_with("@trigger.dev/") && !contains_unevaluable(args) {
            continue;
        }
        let name = ext
            .get("callee")
            .and_then(Value::as_str)
            .map(String::from)
            .or_else(|| inline_name(args))
            .unwrap_or_else(|| format!("build.extensions[{index}]"));
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

fn contains_unevaluable(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            map.get("type").and_then(Value::as_str) == Some("unevaluable")
                || map.values().any(contains_unevaluable)
        }
        Value::Array(items) => items.iter().any(contains_unevaluable),
        _ => false,
    }
}

/// `args[0].name` of an inline object, in the static value's JSON shape.
fn inline_name(args: &Value) -> Option<String> {
    let properties = args.get(0)?.get("value")?.as_array()?;
    properties.iter().find_map(|p| {
        (p.get(0)?.as_str()? == "name").then_some(())?;
        p.get(1)?.get("value")?.as_str().map(String::from)
    })
}

fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

fn status_text(status: Option<std::process::ExitStatus>) -> String {
    status.map_or_else(|| "unknown exit status".to_string(), |s| s.to_string())
}

fn stderr_text(lines: &[String]) -> String {
    if lines.is_empty() {
        return "; it wrote nothing to stderr".to_string();
    }
    let mut text = String::from("; the end of its stderr:");
    for line in lines {
        text.push_str("\n  ");
        text.push_str(line);
    }
    text
}

/// An extension that runs in the sidecar.
#[derive(Debug)]
pub struct SidecarExtension {
    index: usize,
    name: String,
    sidecar: Option<Arc<Mutex<Sidecar>>>,
}

impl SidecarExtension {
    pub(crate) fn new(index: usize, name: String) -> Self {
        Self {
            index,
            name,
            sidecar: None,
        }
    }

    /// Its index in the config's `build.extensions`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Connects the extension to the running sidecar, describing the config if
    /// that has not happened yet, and takes the extension's runtime `name`.
    pub(crate) fn attach(&mut self, sidecar: Arc<Mutex<Sidecar>>) -> Result<(), ExtensionError> {
        {
            let mut guard = sidecar.lock().unwrap_or_else(PoisonError::into_inner);
            let description = guard.describe()?;
            if let Some(ext) = description
                .extensions
                .get(self.index)
                .filter(|e| !e.name.is_empty())
            {
                self.name.clone_from(&ext.name);
            }
        }
        self.sidecar = Some(sidecar);
        Ok(())
    }

    fn sidecar(&self, hook: &str) -> Result<&Arc<Mutex<Sidecar>>, ExtensionError> {
        self.sidecar.as_ref().ok_or_else(|| {
            ExtensionError::Sidecar(format!(
                "{} (build.extensions[{}]) cannot run {hook}: it is a custom extension that runs in the Node sidecar, which was not started. Skip it with --skip-extension {}",
                self.name, self.index, self.name
            ))
        })
    }
}

impl Extension for SidecarExtension {
    fn name(&self) -> &str {
        &self.name
    }

    fn implementation(&self) -> &'static str {
        "sidecar"
    }

    fn as_sidecar(&mut self) -> Option<&mut SidecarExtension> {
        Some(self)
    }

    fn externals_for_target(&mut self, target: Target) -> Result<Vec<String>, ExtensionError> {
        let sidecar = self.sidecar("externalsForTarget")?;
        sidecar
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .externals_for_target(self.index, target)
    }

    fn on_build_start(&mut self, ctx: &mut Context<'_>) -> Result<(), ExtensionError> {
        let sidecar = self.sidecar("onBuildStart")?;
        sidecar
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .on_build_start(self.index, ctx)
    }

    fn on_build_complete(
        &mut self,
        ctx: &mut Context<'_>,
        manifest: &BuildManifest,
    ) -> Result<(), ExtensionError> {
        let sidecar = self.sidecar("onBuildComplete")?;
        sidecar
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .on_build_complete(self.index, ctx, manifest)
    }
}
