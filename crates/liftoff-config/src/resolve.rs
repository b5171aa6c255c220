//! Evaluated config object → typed fields, with upstream's validation and
//! deprecated-option migration (`validateConfig`).

use std::path::Path;

use crate::eval::EnvRead;
use crate::value::{Kind, Origin, Val};
use crate::{
    BuildConfig, ConfigError, ExtensionCall, ExtensionKind, ImportRef, Location, Runtime,
    StaticValue,
};

const CORE_EXTENSIONS: &str = "@trigger.dev/build/extensions/core";

pub(crate) struct Fields {
    pub project: String,
    pub runtime: Runtime,
    /// The configured dirs and the property they came from.
    pub dirs: Option<(Vec<String>, &'static str)>,
    pub ignore_patterns: Option<Vec<String>>,
    pub max_duration: f64,
    pub tsconfig: Option<String>,
    pub build: BuildConfig,
    pub has_instrumentations: bool,
    pub warnings: Vec<String>,
}

pub(crate) struct Inputs<'x> {
    pub path: &'x Path,
    pub project_ref: Option<&'x str>,
    pub env_reads: &'x [EnvRead],
    pub exports_resolve_env_vars: bool,
    pub imports_dotenv: bool,
}

struct Ctx<'x> {
    path: &'x Path,
}

impl Ctx<'_> {
    fn unevaluable(&self, property: &str, v: &Val) -> ConfigError {
        let reason = match &v.kind {
            Kind::Opaque(o) => o.what.clone(),
            _ => v.describe(),
        };
        ConfigError::Unevaluable {
            path: self.path.to_path_buf(),
            location: v.loc,
            property: property.to_string(),
            reason,
        }
    }

    fn invalid(&self, property: &str, v: &Val, expected: &str) -> ConfigError {
        if let Kind::Opaque(_) = v.kind {
            return self.unevaluable(property, v);
        }
        ConfigError::InvalidValue {
            path: self.path.to_path_buf(),
            location: Some(v.loc),
            property: property.to_string(),
            expected: expected.to_string(),
            found: v.describe(),
        }
    }

    fn string(&self, property: &str, v: &Val) -> Result<String, ConfigError> {
        match &v.kind {
            Kind::Str(s) => Ok(s.clone()),
            _ => Err(self.invalid(property, v, "a string")),
        }
    }

    fn boolean(&self, property: &str, v: &Val) -> Result<bool, ConfigError> {
        match &v.kind {
            Kind::Bool(b) => Ok(*b),
            _ => Err(self.invalid(property, v, "true or false")),
        }
    }

    /// An array of strings (a single string is accepted as a one-element list when `allow_single`).
    fn string_list(
        &self,
        property: &str,
        v: &Val,
        allow_single: bool,
    ) -> Result<Vec<String>, ConfigError> {
        match &v.kind {
            Kind::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| self.string(&format!("{property}[{i}]"), item))
                .collect(),
            Kind::Str(s) if allow_single => Ok(vec![s.clone()]),
            _ => Err(self.invalid(property, v, "an array of strings")),
        }
    }
}

pub(crate) fn resolve(root: &Val, inputs: &Inputs<'_>) -> Result<Fields, ConfigError> {
    let ctx = Ctx { path: inputs.path };
    if let Kind::Opaque(o) = &root.kind {
        return Err(ConfigError::ConfigNotStatic {
            path: inputs.path.to_path_buf(),
            location: root.loc,
            reason: format!("it is {}", o.what),
        });
    }
    let mut warnings = Vec::new();

    let Deprecated {
        dirs_value,
        tsconfig_value,
        synthetic,
    } = migrate_deprecated(root, inputs, &mut warnings);

    // --- maxDuration ------------------------------------------------------
    let max_duration = match root.get("maxDuration") {
        None => {
            return Err(ConfigError::MaxDuration {
                path: inputs.path.to_path_buf(),
                location: None,
                found: None,
            });
        }
        Some(v) => match &v.kind {
            Kind::Opaque(_) => return Err(ctx.unevaluable("maxDuration", v)),
            Kind::Number(n) if *n >= 5.0 => *n,
            _ => {
                return Err(ConfigError::MaxDuration {
                    path: inputs.path.to_path_buf(),
                    location: Some(v.loc),
                    found: Some(v.describe()),
                });
            }
        },
    };

    // --- runtime ------------------------------------------------------------
    let runtime = match root.get("runtime") {
        None => Runtime::Node,
        Some(v) => match ctx.string("runtime", v)?.as_str() {
            "node" => Runtime::Node,
            "bun" => {
                warnings.push("The \"bun\" runtime is currently experimental, and certain features may not work, especially opentelemetry instrumentation of 3rd party packages.".to_string());
                Runtime::Bun
            }
            other => {
                return Err(ConfigError::UnsupportedRuntime {
                    path: inputs.path.to_path_buf(),
                    location: v.loc,
                    value: other.to_string(),
                });
            }
        },
    };

    let project = resolve_project(&ctx, root, inputs)?;

    // --- paths ------------------------------------------------------------------
    let dirs = match dirs_value {
        Some((v, prop)) => Some((ctx.string_list(prop, v, true)?, prop)),
        None => None,
    };
    let ignore_patterns = root
        .get("ignorePatterns")
        .map(|v| ctx.string_list("ignorePatterns", v, false))
        .transpose()?;
    let tsconfig = tsconfig_value
        .map(|(v, prop)| ctx.string(prop, v))
        .transpose()?;

    let mut build = resolve_build(&ctx, root)?;
    build.extensions.extend(synthetic);

    let has_instrumentations = has_instrumentations(root);

    if inputs.imports_dotenv {
        warnings.push(format!(
            "{} imports dotenv, but liftoff reads the config without running it: variables that dotenv would load are not visible to process.env reads in the config. Set them in the environment or pass --env-file.",
            inputs.path.display()
        ));
    }

    Ok(Fields {
        project,
        runtime,
        dirs,
        ignore_patterns,
        max_duration,
        tsconfig,
        build,
        has_instrumentations,
        warnings,
    })
}

/// `--project-ref` wins; else `project`, which must be a non-empty string.
fn resolve_project(ctx: &Ctx<'_>, root: &Val, inputs: &Inputs<'_>) -> Result<String, ConfigError> {
    if let Some(r) = inputs.project_ref.filter(|r| !r.is_empty()) {
        return Ok(r.to_string());
    }
    let value = match root.get("project") {
        Some(v) => ctx.string("project", v)?,
        None => String::new(),
    };
    if value.is_empty() {
        return Err(ConfigError::MissingProject {
            path: inputs.path.to_path_buf(),
            hint: env_hint(root, inputs),
        });
    }
    Ok(value)
}

/// `telemetry.instrumentations` or the deprecated top-level `instrumentations`
/// is non-empty (an opaque value counts as non-empty).
fn has_instrumentations(root: &Val) -> bool {
    let telemetry = root.get("telemetry");
    let telemetry_instr = match telemetry.map(|t| &t.kind) {
        Some(Kind::Opaque(_)) => Some(true),
        _ => telemetry
            .and_then(|t| t.get("instrumentations"))
            .and_then(non_empty),
    };
    telemetry_instr.unwrap_or(false)
        || root
            .get("instrumentations")
            .and_then(non_empty)
            .unwrap_or(false)
}

struct Deprecated<'v> {
    dirs_value: Option<(&'v Val, &'static str)>,
    tsconfig_value: Option<(&'v Val, &'static str)>,
    synthetic: Vec<ExtensionCall>,
}

/// Upstream's `validateConfig` migrations, in its order, each with its warning.
fn migrate_deprecated<'v>(
    root: &'v Val,
    inputs: &Inputs<'_>,
    warnings: &mut Vec<String>,
) -> Deprecated<'v> {
    let mut synthetic = Vec::new();
    if let Some(v) = root
        .get("additionalFiles")
        .filter(|v| non_empty(v) != Some(false))
    {
        warnings.push("The \"additionalFiles\" option is deprecated and will be removed. Use the \"additionalFiles\" build extension instead. See https://trigger.dev/docs/config/config-file#additionalfiles for more information.".to_string());
        synthetic.push(synthetic_call(
            "additionalFiles",
            vec![object(v.loc, "files", v)],
            v.loc,
        ));
    }
    if let Some(v) = root
        .get("additionalPackages")
        .filter(|v| non_empty(v) != Some(false))
    {
        warnings.push("The \"additionalPackages\" option is deprecated and will be removed. Use the \"additionalPackages\" build extension instead. See https://trigger.dev/docs/config/config-file#additionalpackages for more information.".to_string());
        synthetic.push(synthetic_call(
            "additionalPackages",
            vec![object(v.loc, "packages", v)],
            v.loc,
        ));
    }
    let mut dirs_value = root.get("dirs").map(|v| (v, "dirs"));
    if let Some(v) = root
        .get("triggerDirectories")
        .filter(|v| v.truthy() != Some(false))
    {
        warnings.push("The \"triggerDirectories\" option is deprecated and will be removed. Use the \"dirs\" option instead.".to_string());
        dirs_value = Some((v, "triggerDirectories"));
    }
    if root
        .get("dependenciesToBundle")
        .is_some_and(|v| v.truthy() != Some(false))
    {
        warnings.push("The \"dependenciesToBundle\" option is deprecated and will be removed. Dependencies are now bundled by default. If you want to exclude some dependencies from the bundle, use the \"build.external\" option.".to_string());
    }
    let mut tsconfig_value = root.get("tsconfig").map(|v| (v, "tsconfig"));
    if let Some(v) = root
        .get("tsconfigPath")
        .filter(|v| v.truthy() != Some(false))
    {
        warnings.push("The \"tsconfigPath\" option is deprecated and will be removed. Use the \"tsconfig\" option instead.".to_string());
        tsconfig_value = Some((v, "tsconfigPath"));
    }
    if let Some(v) = root
        .get("resolveEnvVars")
        .filter(|v| matches!(v.kind, Kind::Opaque(_)))
    {
        warnings.push("The \"resolveEnvVars\" option is deprecated and will be removed. Use the \"syncEnvVars\" build extension instead. See https://trigger.dev/docs/config/config-file#syncenvvars for more information.".to_string());
        let override_true = Val::new(
            v.loc,
            Kind::Object(vec![("override".into(), Val::new(v.loc, Kind::Bool(true)))]),
        );
        synthetic.push(synthetic_call(
            "syncEnvVars",
            vec![v.to_static(), override_true.to_static()],
            v.loc,
        ));
    }
    if inputs.exports_resolve_env_vars {
        warnings.push(format!(
            "{}: the exported `resolveEnvVars` function is not used by trigger.dev 3.x (it is removed from the bundle). Use the \"syncEnvVars\" build extension instead.",
            inputs.path.display()
        ));
    }
    Deprecated {
        dirs_value,
        tsconfig_value,
        synthetic,
    }
}

fn resolve_build(ctx: &Ctx<'_>, root: &Val) -> Result<BuildConfig, ConfigError> {
    let mut build = BuildConfig::default();
    if let Some(b) = root.get("build") {
        if !matches!(b.kind, Kind::Object(_)) {
            return Err(ctx.invalid("build", b, "an object"));
        }
        if let Some(v) = b.get("external") {
            build.external = ctx.string_list("build.external", v, false)?;
        }
        if let Some(v) = b.get("conditions") {
            build.conditions = ctx.string_list("build.conditions", v, false)?;
        }
        if let Some(jsx) = b.get("jsx") {
            if !matches!(jsx.kind, Kind::Object(_)) {
                return Err(ctx.invalid("build.jsx", jsx, "an object"));
            }
            if let Some(v) = jsx.get("factory") {
                build.jsx.factory = ctx.string("build.jsx.factory", v)?;
            }
            if let Some(v) = jsx.get("fragment") {
                build.jsx.fragment = ctx.string("build.jsx.fragment", v)?;
            }
            if let Some(v) = jsx.get("automatic") {
                build.jsx.automatic = ctx.boolean("build.jsx.automatic", v)?;
            }
        }
        if let Some(v) = b.get("extensions") {
            match &v.kind {
                Kind::Array(items) => build.extensions = items.iter().map(extension_call).collect(),
                _ => return Err(ctx.invalid("build.extensions", v, "an array")),
            }
        }
    }
    Ok(build)
}

/// Whether an array-ish value is non-empty; opaque values count as non-empty.
fn non_empty(v: &Val) -> Option<bool> {
    match &v.kind {
        Kind::Array(items) => Some(!items.is_empty()),
        Kind::Opaque(_) => Some(true),
        Kind::Undefined | Kind::Null => Some(false),
        _ => None,
    }
}

fn object(loc: Location, key: &str, v: &Val) -> StaticValue {
    Val::new(loc, Kind::Object(vec![(key.to_string(), v.clone())])).to_static()
}

fn synthetic_call(name: &str, args: Vec<StaticValue>, span: Location) -> ExtensionCall {
    ExtensionCall {
        callee: Some(name.to_string()),
        import: Some(ImportRef {
            source: CORE_EXTENSIONS.to_string(),
            imported: name.to_string(),
        }),
        args,
        kind: ExtensionKind::Call,
        span,
        synthetic: true,
    }
}

fn extension_call(v: &Val) -> ExtensionCall {
    let base = ExtensionCall {
        callee: None,
        import: None,
        args: Vec::new(),
        kind: ExtensionKind::Other,
        span: v.loc,
        synthetic: false,
    };
    match &v.kind {
        Kind::Object(_) => ExtensionCall {
            kind: ExtensionKind::InlineObject,
            args: vec![v.to_static()],
            ..base
        },
        Kind::Opaque(o) => match &o.origin {
            Origin::Call {
                callee,
                import,
                args,
                is_new,
            } => ExtensionCall {
                callee: callee.clone(),
                import: import.clone(),
                args: args.iter().map(Val::to_static).collect(),
                kind: if *is_new {
                    ExtensionKind::Other
                } else {
                    ExtensionKind::Call
                },
                ..base
            },
            Origin::Import { local, import } => ExtensionCall {
                callee: Some(local.clone()),
                import: Some(import.clone()),
                ..base
            },
            Origin::Function | Origin::Other => base,
        },
        _ => base,
    }
}

/// When `project` evaluated to `undefined` because of an unset `process.env`
/// read, says which variable it was.
fn env_hint(root: &Val, inputs: &Inputs<'_>) -> String {
    let Kind::Object(props) = &root.kind else {
        return String::new();
    };
    let Some((_, value)) = props.iter().find(|(k, _)| k == "project") else {
        return String::new();
    };
    match inputs
        .env_reads
        .iter()
        .find(|r| !r.present && r.location == value.loc)
    {
        Some(read) => format!(
            " The config sets it from process.env.{} (line {}), which is not set in liftoff's environment: set it or pass --env-file.",
            read.name, read.location
        ),
        None => String::new(),
    }
}
