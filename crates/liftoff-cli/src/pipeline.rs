//! config → bundle → manifest: turns a project into a build directory.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use liftoff_bundler::{BundleSpec, Entry, Jsx};
use liftoff_config::ResolvedConfig;
use liftoff_extensions::{Host, HostOptions, Sidecar, SidecarOptions};
use liftoff_manifest::{BuildManifest, Runtime};

use crate::output::Output;

/// The CLI entry points taken from the installed `trigger.dev` package.
const DEPLOY_ENTRY_POINTS: [&str; 4] = [
    "deploy-run-controller",
    "deploy-run-worker",
    "deploy-index-controller",
    "deploy-index-worker",
];

/// The installed `trigger.dev` package.
pub struct TriggerPackage {
    pub dir: PathBuf,
    pub version: String,
}

/// Finds `node_modules/trigger.dev` from the project, as Node would.
pub fn find_trigger_package(
    working_dir: &Path,
    sdk_version: Option<&str>,
) -> Result<TriggerPackage> {
    let hint = sdk_version.map_or_else(
        || "npm install -D trigger.dev@<your @trigger.dev/sdk version>".to_string(),
        |v| format!("npm install -D trigger.dev@{v}"),
    );
    let Some(dir) = liftoff_config::find_node_module(working_dir, "trigger.dev") else {
        bail!(
            "the `trigger.dev` package is not installed in {} (nor in a parent node_modules).\n  liftoff bundles its runtime entry points into your deploy. Add it to devDependencies at your SDK's version and install: {hint}",
            working_dir.display()
        );
    };
    let version = liftoff_config::package_version(&dir)
        .with_context(|| format!("{} has no readable package.json", dir.display()))?;
    for name in DEPLOY_ENTRY_POINTS {
        let path = entry_point(&dir, name);
        if !path.is_file() {
            bail!(
                "the installed trigger.dev@{version} has no {} — it is not a v3 CLI package or its install is incomplete. Reinstall it: {hint}",
                path.display()
            );
        }
    }
    Ok(TriggerPackage { dir, version })
}

fn entry_point(trigger_dir: &Path, name: &str) -> PathBuf {
    trigger_dir
        .join("dist/esm/entryPoints")
        .join(format!("{name}.js"))
}

/// What a build produced, for the command to report.
pub struct BuildOutcome {
    pub dir: PathBuf,
    pub manifest: BuildManifest,
    pub bundle: liftoff_bundler::Bundle,
    pub task_files: Vec<PathBuf>,
    pub plan: liftoff_extensions::plan::Plan,
}

/// How extensions run during a build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub environment: String,
    /// The environment's env vars as the platform holds them (`manifest.deploy.env`, which
    /// extensions read: prisma's `DATABASE_URL`). Empty when building offline without
    /// `--server-env-file`.
    pub server_env: BTreeMap<String, String>,
    pub host: HostOptions,
    pub extension_timeout: Duration,
}

/// Builds the project into a fresh `<workingDir>/.trigger/tmp/build-XXXXXX`:
/// extensions' `onBuildStart`, the bundle, the manifest, extensions'
/// `onBuildComplete` with their layers, then `package.json`, `build.json` and the
/// `Containerfile`. On any failure the directory is removed.
pub fn build(
    config: &ResolvedConfig,
    options: &BuildOptions,
    out: &Output,
) -> Result<BuildOutcome> {
    let working_dir = &config.working_dir;
    let task_files = config.discover_task_files()?;

    let sdk_dir = liftoff_config::find_node_module(working_dir, "@trigger.dev/sdk");
    let sdk_version = sdk_dir.as_deref().and_then(liftoff_config::package_version);
    let trigger = find_trigger_package(working_dir, sdk_version.as_deref())?;

    let tmp_root = working_dir.join(".trigger/tmp");
    std::fs::create_dir_all(&tmp_root)
        .with_context(|| format!("could not create {}", tmp_root.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix("build-")
        .rand_bytes(6)
        .tempdir_in(&tmp_root)
        .with_context(|| {
            format!(
                "could not create a build directory in {}",
                tmp_root.display()
            )
        })?;
    let dir = canonical(tmp.path())?;

    let mut host = Host::new(config, options.host.clone())?;
    // The sidecar (and its temp dir) must outlive every extension hook.
    let (instrumented, _sidecar_dir) = if host.needs_sidecar() || config.has_instrumentations {
        let step = out.step("Loading the config for custom extensions");
        let (mut sidecar, sidecar_dir) = start_sidecar(config, &tmp_root, options)?;
        let instrumented = sidecar.describe()?.instrumented_package_names.clone();
        host.attach_sidecar(sidecar)?;
        drop(step);
        (instrumented, Some(sidecar_dir))
    } else {
        (Vec::new(), None)
    };

    let mut externals = config.build.external.clone();
    externals.extend(instrumented.iter().cloned());
    externals.extend(host.externals()?);
    host.build_start(&dir)?;

    let spec = bundle_spec(config, &task_files, &trigger, externals, &instrumented)?;
    let step = out.step("Building trigger code");
    let bundle = liftoff_bundler::bundle(&spec)?;
    step.done("Successfully built code");
    for d in &bundle.diagnostics {
        match d.severity {
            liftoff_bundler::diagnostics::Severity::Note => out.note(d.to_string()),
            _ => out.warn(d.to_string()),
        }
    }
    bundle.write_to(&dir)?;

    let mut manifest = initial_manifest(
        config,
        &options.environment,
        &dir,
        &bundle,
        &task_files,
        &trigger,
        sdk_version,
        &instrumented,
    )?;
    if !options.server_env.is_empty() {
        manifest.deploy.env = Some(
            options
                .server_env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        );
    }
    host.build_complete(&mut manifest, &externals_of(&bundle))?;
    for line in host.logs(&manifest) {
        match line.level {
            liftoff_extensions::LogLevel::Warn => {
                out.warn(format!("{}: {}", line.extension, line.message));
            }
            liftoff_extensions::LogLevel::Log => {
                out.log(format!("{}: {}", line.extension, line.message));
            }
            liftoff_extensions::LogLevel::Debug => {
                out.debug(format!("{}: {}", line.extension, line.message));
            }
        }
    }
    let plan = host.plan(&manifest);
    manifest.rewrite_paths(&dir)?;
    write_files(config, &dir, &manifest)?;

    // Success: keep the directory (dry runs hand it to the user).
    let _ = tmp.keep();
    Ok(BuildOutcome {
        dir,
        manifest,
        bundle,
        task_files,
        plan,
    })
}

/// What to bundle: task files, the config (with `build` stripped) and the
/// `trigger.dev` runtime entry points.
fn bundle_spec(
    config: &ResolvedConfig,
    task_files: &[PathBuf],
    trigger: &TriggerPackage,
    externals: Vec<String>,
    instrumented: &[String],
) -> Result<BundleSpec> {
    let working_dir = &config.working_dir;
    let config_file = canonical(&config.config_file)?;
    let mut entries: Vec<Entry> = Vec::new();
    for rel in task_files {
        let path = canonical(&working_dir.join(rel))?;
        entries.push(Entry {
            name: liftoff_bundler::entry_name(working_dir, &working_dir.join(rel)),
            path,
        });
    }
    entries.push(Entry {
        name: liftoff_bundler::entry_name(working_dir, &config.config_file),
        path: config_file.clone(),
    });
    let mut trigger_entries = DEPLOY_ENTRY_POINTS.to_vec();
    if !instrumented.is_empty() {
        trigger_entries.push("loader");
    }
    for name in &trigger_entries {
        entries.push(Entry {
            name: format!("node_modules/trigger.dev/dist/esm/entryPoints/{name}"),
            path: canonical(&entry_point(&trigger.dir, name))?,
        });
    }

    let config_source = std::fs::read_to_string(&config.config_file)
        .with_context(|| format!("could not read {}", config.config_file.display()))?;
    let stripped = liftoff_config::strip_build(&config.config_file, &config_source)?;
    let overrides: HashMap<PathBuf, String> = HashMap::from([(config_file.clone(), stripped)]);

    Ok(BundleSpec {
        working_dir: working_dir.clone(),
        entries,
        conditions: config.build.conditions.clone(),
        externals,
        jsx: Jsx {
            automatic: config.build.jsx.automatic,
            factory: config.build.jsx.factory.clone(),
            fragment: config.build.jsx.fragment.clone(),
        },
        // Like esbuild under upstream: each file uses its nearest tsconfig.
        tsconfig: None,
        overrides,
        bun: matches!(config.runtime, liftoff_config::Runtime::Bun),
        sourcemaps: true,
        external_packages: false,
    })
}

fn externals_of(bundle: &liftoff_bundler::Bundle) -> Vec<liftoff_manifest::External> {
    bundle
        .externals
        .iter()
        .map(|e| liftoff_manifest::External {
            name: e.name.clone(),
            version: e.version.clone(),
        })
        .collect()
}

/// Bundles the config with `build` kept (every package stays external: it runs
/// next to `node_modules`) and starts the Node sidecar on it.
fn start_sidecar(
    config: &ResolvedConfig,
    tmp_root: &Path,
    options: &BuildOptions,
) -> Result<(Sidecar, tempfile::TempDir)> {
    let working_dir = &config.working_dir;
    let dir = tempfile::Builder::new()
        .prefix("sidecar-")
        .tempdir_in(tmp_root)
        .with_context(|| format!("could not create a temp dir in {}", tmp_root.display()))?;
    let spec = BundleSpec {
        working_dir: working_dir.clone(),
        entries: vec![Entry {
            name: "trigger.config".into(),
            path: canonical(&config.config_file)?,
        }],
        conditions: config.build.conditions.clone(),
        externals: Vec::new(),
        jsx: Jsx::default(),
        tsconfig: None,
        overrides: HashMap::new(),
        bun: false,
        sourcemaps: false,
        external_packages: true,
    };
    let bundle = liftoff_bundler::bundle(&spec)
        .context("could not bundle the config for the extension sidecar")?;
    bundle.write_to(dir.path())?;
    let config_module = dir.path().join(
        bundle
            .entries
            .first()
            .map(|e| e.output.clone())
            .context("the config bundle has no output")?,
    );
    let sidecar = Sidecar::start(SidecarOptions {
        node: PathBuf::from("node"),
        config_module,
        working_dir: working_dir.clone(),
        timeout: options.extension_timeout,
        resolved_config: serde_json::to_value(config).unwrap_or_default(),
        env: options.host.env.clone(),
    })?;
    Ok((sidecar, dir))
}

fn canonical(p: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(p).with_context(|| format!("{} does not exist", p.display()))
}

#[allow(clippy::too_many_arguments)]
fn initial_manifest(
    config: &ResolvedConfig,
    environment: &str,
    dir: &Path,
    bundle: &liftoff_bundler::Bundle,
    task_files: &[PathBuf],
    trigger: &TriggerPackage,
    sdk_version: Option<String>,
    instrumented: &[String],
) -> Result<BuildManifest> {
    let working_dir = &config.working_dir;
    let out = |rel: &str| dir.join(rel).to_string_lossy().into_owned();
    let output_of = |name: &str| -> Result<String> {
        bundle
            .entries
            .iter()
            .find(|e| e.name == name)
            .map(|e| out(&e.output))
            .with_context(|| format!("the bundle has no output for {name}"))
    };
    let trigger_out = |name: &str| {
        output_of(&format!(
            "node_modules/trigger.dev/dist/esm/entryPoints/{name}"
        ))
    };

    let mut files = Vec::new();
    let mut sources = liftoff_manifest::IndexMap::new();
    for rel in task_files {
        let rel_str = slash(rel);
        let name = liftoff_bundler::entry_name(working_dir, &working_dir.join(rel));
        files.push(liftoff_manifest::FileEntry {
            entry: rel_str.clone(),
            out: output_of(&name)?,
        });
        if let Ok(text) = std::fs::read_to_string(working_dir.join(rel)) {
            sources.insert(rel_str, liftoff_manifest::encode_source(&text));
        }
    }
    for extra in [
        Some(&config.config_file),
        config.tsconfig_path.as_ref(),
        config.package_json_path.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        if let (Ok(rel), Ok(text)) = (
            extra.strip_prefix(working_dir),
            std::fs::read_to_string(extra),
        ) {
            sources.insert(slash(rel), liftoff_manifest::encode_source(&text));
        }
    }

    let config_name = liftoff_bundler::entry_name(working_dir, &config.config_file);
    Ok(BuildManifest {
        target: liftoff_manifest::Target::Deploy,
        package_version: sdk_version.unwrap_or_else(|| trigger.version.clone()),
        cli_package_version: trigger.version.clone(),
        content_hash: bundle.content_hash.clone(),
        runtime: match config.runtime {
            liftoff_config::Runtime::Node => Runtime::Node,
            liftoff_config::Runtime::Bun => Runtime::Bun,
        },
        environment: environment.to_string(),
        config: liftoff_manifest::ManifestConfig {
            project: config.project.clone(),
            dirs: config.dirs.clone(),
        },
        files,
        sources,
        output_path: dir.to_string_lossy().into_owned(),
        run_worker_entry_point: trigger_out("deploy-run-worker")?,
        run_controller_entry_point: Some(trigger_out("deploy-run-controller")?),
        index_worker_entry_point: trigger_out("deploy-index-worker")?,
        index_controller_entry_point: Some(trigger_out("deploy-index-controller")?),
        loader_entry_point: if instrumented.is_empty() {
            None
        } else {
            Some(trigger_out("loader")?)
        },
        config_path: output_of(&config_name)?,
        // Filled by the externals layer, first of all layers (as upstream).
        externals: Some(Vec::new()),
        build: liftoff_manifest::BuildSection::default(),
        custom_conditions: Some(config.build.conditions.clone()),
        // The server's env vars: none in an offline dry run.
        deploy: liftoff_manifest::DeploySection::default(),
        image: None,
        otel_import_hook: (!instrumented.is_empty()).then(|| liftoff_manifest::OtelImportHook {
            include: Some(instrumented.to_vec()),
            exclude: None,
        }),
    })
}

/// Where externals that are not from a registry (`file:` dependencies, workspace
/// links) are copied in the build dir.
const LOCAL_PACKAGES: &str = ".liftoff-packages";

/// An external installed from a local directory (its real path is not inside a
/// `node_modules`) cannot be installed by name from the registry in the image:
/// copy it into the build dir and depend on it with `file:` (upstream writes the
/// bare version, and `npm i` in the image then fails).
fn vendor_local_packages(
    working_dir: &Path,
    dir: &Path,
    externals: &mut [liftoff_manifest::External],
) -> Result<()> {
    for ext in externals.iter_mut() {
        let Some(installed) = liftoff_config::find_node_module(working_dir, &ext.name) else {
            continue;
        };
        let Ok(real) = std::fs::canonicalize(&installed) else {
            continue;
        };
        if real.components().any(|c| c.as_os_str() == "node_modules") {
            continue;
        }
        let vendored = format!("{LOCAL_PACKAGES}/{}", ext.name);
        copy_package(&real, &dir.join(&vendored))?;
        ext.version = format!("file:./{vendored}");
    }
    Ok(())
}

fn copy_package(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("could not create {}", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("could not read {}", from.display()))?
    {
        let entry = entry?;
        let name = entry.file_name();
        if name == "node_modules" || name == ".git" {
            continue;
        }
        let (src, dest) = (entry.path(), to.join(&name));
        if entry.file_type()?.is_dir() {
            copy_package(&src, &dest)?;
        } else {
            std::fs::copy(&src, &dest)
                .with_context(|| format!("could not copy {}", src.display()))?;
        }
    }
    Ok(())
}

fn write_files(config: &ResolvedConfig, dir: &Path, manifest: &BuildManifest) -> Result<()> {
    let project_pkg: Option<serde_json::Value> = config
        .package_json_path
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str(&t).ok());
    let mut externals = manifest.externals.clone().unwrap_or_default();
    vendor_local_packages(&config.working_dir, dir, &mut externals)?;
    write(
        dir,
        "package.json",
        &liftoff_manifest::package_json(project_pkg.as_ref(), &externals)?,
    )?;
    write(dir, "build.json", &manifest.to_build_json())?;
    write(
        dir,
        "Containerfile",
        &liftoff_manifest::containerfile(manifest)?,
    )?;
    Ok(())
}

fn write(dir: &Path, name: &str, contents: &str) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, contents).with_context(|| format!("could not write {}", path.display()))
}

fn slash(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
