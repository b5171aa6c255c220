//! What `deploy` and `build` share: load the config, bundle, run the extensions, build the image.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result, bail};

use crate::output::Output;
use crate::{ImageArgs, ProjectArgs, pipeline};

/// The `.env` files upstream loads from the working dir when `--env-file` is absent.
const DEFAULT_ENV_FILES: [&str; 5] = [
    ".env",
    ".env.development",
    ".env.local",
    ".env.development.local",
    "dev.vars",
];

/// A loaded, bundled project with its extensions applied: the build directory.
pub struct Prepared {
    pub config: liftoff_config::ResolvedConfig,
    pub outcome: pipeline::BuildOutcome,
}

/// A loaded config with the environment `process.env` saw.
pub struct Loaded {
    pub project_dir: std::path::PathBuf,
    pub env: BTreeMap<String, String>,
    pub config: liftoff_config::ResolvedConfig,
}

/// Loads the config (and the `.env` files `process.env` reads).
pub fn load(args: &ProjectArgs, out: &Output) -> Result<Loaded> {
    let project_dir = std::fs::canonicalize(&args.path)
        .with_context(|| format!("the project path {} does not exist", args.path.display()))?;
    let env = environment(&project_dir, args.env_file.as_deref())?;
    let config = liftoff_config::load(&liftoff_config::LoadOptions {
        project_dir: project_dir.clone(),
        config_file: args.config.clone(),
        project_ref: args.project_ref.clone(),
        env: env.clone(),
    })?;
    for warning in &config.warnings {
        out.warn(warning);
    }
    out.debug(format!("config: {}", config.config_file.display()));
    Ok(Loaded {
        project_dir,
        env,
        config,
    })
}

/// Loads the config, bundles the tasks and runs the extensions into a fresh build directory.
pub fn prepare(args: &ProjectArgs, out: &Output) -> Result<Prepared> {
    let loaded = load(args, out)?;
    let server_env = match &args.server_env_file {
        Some(f) => {
            let path = if f.is_absolute() {
                f.clone()
            } else {
                loaded.project_dir.join(f)
            };
            if !path.is_file() {
                bail!("the server env file {} does not exist", path.display());
            }
            liftoff_config::parse_env_file(&path)?.into_iter().collect()
        }
        None => BTreeMap::new(),
    };
    bundle(args, loaded, server_env, out)
}

/// Bundles a loaded project with the platform's env vars (`manifest.deploy.env`).
pub fn bundle(
    args: &ProjectArgs,
    loaded: Loaded,
    server_env: BTreeMap<String, String>,
    out: &Output,
) -> Result<Prepared> {
    let Loaded { env, config, .. } = loaded;
    let options = pipeline::BuildOptions {
        environment: args.env.as_str().to_string(),
        server_env,
        host: liftoff_extensions::HostOptions {
            keep_going: args.keep_going,
            skip: args.skip_extension.clone(),
            env: env.clone(),
        },
        extension_timeout: std::time::Duration::from_secs(args.extension_timeout),
    };
    let outcome = pipeline::build(&config, &options, out)?;
    for ext in outcome
        .plan
        .extensions
        .iter()
        .filter(|e| e.implementation == "skipped")
    {
        out.warn(format!("extension {} was skipped (--skip-extension): the deploy does not include what it would add", ext.name));
    }
    Ok(Prepared { config, outcome })
}

/// The `--json` document of a build (`deploy --dry-run`, `build`).
pub fn build_json(
    prepared: &Prepared,
    image: Option<&liftoff_builder::BuiltImage>,
) -> serde_json::Value {
    let outcome = &prepared.outcome;
    serde_json::json!({
        "buildDir": outcome.dir.display().to_string(),
        "contentHash": outcome.manifest.content_hash,
        "project": outcome.manifest.config.project,
        "environment": outcome.manifest.environment,
        "runtime": prepared.config.runtime.as_str(),
        "taskFiles": outcome.task_files.iter().map(|p| p.to_string_lossy()).collect::<Vec<_>>(),
        "externals": outcome.manifest.externals,
        "files": outcome.bundle.files.iter().map(|f| &f.path).collect::<Vec<_>>(),
        "plan": outcome.plan,
        "image": image,
        "diagnostics": outcome.bundle.diagnostics.iter().map(|d| serde_json::json!({
            "severity": d.severity_str(),
            "code": d.code,
            "message": d.message,
            "location": d.location,
            "package": d.package,
        })).collect::<Vec<_>>(),
    })
}

/// Registry settings from the environment plus the command's flags; explicit credentials apply
/// to `target_registry`.
pub fn registry_config(
    args: &crate::RegistryArgs,
    target_registry: Option<&str>,
    out: &Output,
) -> Result<liftoff_registry::RegistryConfig> {
    let mut config = liftoff_registry::RegistryConfig::from_env()?;
    for host in &args.insecure_registry {
        config = config.with_insecure_registry(host);
    }
    config
        .extra_ca_certs
        .extend(args.registry_ca.iter().cloned());
    match (
        &args.registry_username,
        &args.registry_password,
        target_registry,
    ) {
        (Some(user), Some(password), Some(registry)) => {
            config = config.with_credentials(registry, user, password);
        }
        (Some(_), None, _) | (None, Some(_), _) => {
            bail!(
                "--registry-username and --registry-password (LIFTOFF_REGISTRY_USERNAME/_PASSWORD) go together; give both"
            )
        }
        _ => {}
    }
    if out.level_enabled(crate::LogLevel::Debug) {
        let log = out.clone();
        config.http_log = Some(std::sync::Arc::new(move |line: &str| log.debug(line)));
    }
    Ok(config)
}

/// The environment `process.env` reads in the config: the process's own
/// variables, plus those from `--env-file` (or upstream's default `.env` files)
/// that are not already set — dotenv never overrides.
pub fn environment(
    project_dir: &Path,
    env_file: Option<&Path>,
) -> Result<BTreeMap<String, String>> {
    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    let files: Vec<std::path::PathBuf> = match env_file {
        Some(f) => {
            let path = if f.is_absolute() {
                f.to_path_buf()
            } else {
                project_dir.join(f)
            };
            if !path.is_file() {
                bail!("the env file {} does not exist", path.display());
            }
            vec![path]
        }
        None => DEFAULT_ENV_FILES
            .iter()
            .map(|f| project_dir.join(f))
            .filter(|p| p.is_file())
            .collect(),
    };
    for file in files {
        for (k, v) in liftoff_config::parse_env_file(&file)? {
            env.entry(k).or_insert(v);
        }
    }
    Ok(env)
}

/// `--base-image`, else upstream's default for the runtime.
pub fn base_image(args: &ImageArgs, config: &liftoff_config::ResolvedConfig) -> String {
    args.base_image.clone().unwrap_or_else(|| {
        match config.runtime {
            liftoff_config::Runtime::Node => liftoff_builder::DEFAULT_NODE_BASE,
            liftoff_config::Runtime::Bun => liftoff_builder::DEFAULT_BUN_BASE,
        }
        .to_string()
    })
}

/// The OCI layout a built image is in: `--output oci:DIR`, else `<build dir>/image` (where a
/// docker-archive is also written from).
pub fn image_layout(
    args: &ImageArgs,
    image: &liftoff_builder::BuiltImage,
    outcome: &pipeline::BuildOutcome,
) -> std::path::PathBuf {
    match args.output.as_deref() {
        Some(o) if o.starts_with("oci:") => image.output.clone(),
        _ => outcome.dir.join("image"),
    }
}

/// Builds the image of a prepared project (an OCI layout in `<build dir>/image`, unless
/// `--output` says otherwise; a docker-archive is written from that layout).
pub fn build_image(
    args: &ImageArgs,
    registry: &liftoff_registry::RegistryConfig,
    config: &liftoff_config::ResolvedConfig,
    outcome: &pipeline::BuildOutcome,
    docker_tag: Option<&str>,
    deployment: Option<&liftoff_builder::DeploymentArgs>,
    out: &Output,
) -> Result<liftoff_builder::BuiltImage> {
    let cache_dir = args
        .cache_dir
        .clone()
        .or_else(liftoff_registry::BlobCache::default_root)
        .context("no cache directory: set --cache-dir or LIFTOFF_CACHE_DIR (or HOME)")?;
    let layout_dir = outcome.dir.join("image");
    let mut docker_archive = None;
    let output = match &args.output {
        Some(o) => {
            if let Some(file) = o.strip_prefix("docker-archive:") {
                docker_archive = Some(std::path::PathBuf::from(file));
                liftoff_builder::ImageOutput::OciDir(layout_dir.clone())
            } else {
                o.parse().map_err(|e: String| {
                    anyhow::anyhow!("{e} (or docker-archive:FILE for `docker load`)")
                })?
            }
        }
        None => liftoff_builder::ImageOutput::OciDir(layout_dir.clone()),
    };
    let base_image = base_image(args, config);
    let options = liftoff_builder::ImageOptions {
        base_image,
        cache_dir,
        compression: match args.compression {
            crate::CompressionArg::Gzip => liftoff_image::Compression::Gzip,
            crate::CompressionArg::Zstd => liftoff_image::Compression::Zstd,
        },
        output,
        network: args.network != crate::NetworkArg::None,
        registry: registry.clone(),
        source_date_epoch: liftoff_image::source_date_epoch()?,
        step_timeout: std::time::Duration::from_secs(args.step_timeout),
        index_timeout: std::time::Duration::from_secs(20),
        deployment: deployment.cloned(),
        squash_instructions: args.squash_instructions,
        url_mirrors: url_mirrors(&args.url_mirror)?,
        instruction_origins: instruction_origins(&outcome.plan, &outcome.manifest),
        source: git(&config.working_dir, &["remote", "get-url", "origin"]),
        revision: git(&config.working_dir, &["rev-parse", "HEAD"]),
    };
    let step = out.step("Building image");
    let image = liftoff_builder::build_image(&outcome.dir, &outcome.manifest, &options, &|msg| {
        out.info(msg);
    })?;
    step.done(&format!("Built image {}", image.manifest_digest));
    if let Some(file) = &docker_archive {
        let tags: Vec<String> = docker_tag.map(String::from).into_iter().collect();
        liftoff_image::write_docker_archive(&layout_dir, Some(&image.tag), &tags, file)
            .with_context(|| format!("writing the docker archive {}", file.display()))?;
        out.log(format!(
            "Wrote {} (docker load -i {})",
            file.display(),
            file.display()
        ));
    }
    for layer in &image.layers {
        out.log(format!(
            "  {:<30} {}  {:>10}{}",
            layer.name,
            &layer.digest[..19.min(layer.digest.len())],
            human_size(layer.size),
            if layer.cached { "  (cached)" } else { "" }
        ));
    }
    out.log(format!(
        "Detected {} task{}: {}",
        image.tasks.len(),
        if image.tasks.len() == 1 { "" } else { "s" },
        image
            .tasks
            .iter()
            .map(|t| t.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(image)
}

#[allow(clippy::cast_precision_loss)]
pub fn human_size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

/// A git fact about the project for the image labels, when it is a git checkout.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// `--url-mirror` values, then `LIFTOFF_URL_MIRRORS`.
fn url_mirrors(flags: &[String]) -> Result<Vec<(String, String)>> {
    let env = std::env::var("LIFTOFF_URL_MIRRORS").unwrap_or_default();
    let mut out = Vec::new();
    for item in flags
        .iter()
        .map(String::as_str)
        .chain(env.split(',').map(str::trim).filter(|s| !s.is_empty()))
    {
        let Some((prefix, url)) = item.split_once('=') else {
            bail!(
                "URL mirror {item:?} is not PREFIX=URL (e.g. https://github.com/=https://artifacts.internal/github/)"
            );
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("URL mirror {item:?}: the replacement must start with http:// or https://");
        }
        out.push((prefix.to_string(), url.to_string()));
    }
    Ok(out)
}

/// The extension behind each `image.instructions` entry, in manifest order.
fn instruction_origins(
    plan: &liftoff_extensions::plan::Plan,
    manifest: &liftoff_manifest::BuildManifest,
) -> Vec<String> {
    let mut origins = Vec::new();
    for layer in &plan.layers {
        let name = plan
            .extensions
            .iter()
            .find(|e| e.layers.contains(&layer.id))
            .map_or_else(|| layer.id.clone(), |e| e.name.clone());
        origins.extend(std::iter::repeat_n(name, layer.instructions.len()));
    }
    let total = manifest
        .image
        .as_ref()
        .and_then(|i| i.instructions.as_ref())
        .map_or(0, Vec::len);
    if origins.len() == total {
        origins
    } else {
        Vec::new()
    }
}
