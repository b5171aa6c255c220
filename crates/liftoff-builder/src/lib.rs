//! Builds the deploy image from a liftoff build directory, without a Docker
//! daemon or a Dockerfile interpreter. It produces what upstream's Containerfile
//! produces for the standard stages:
//!
//! 1. **base**: the base image, pulled into a verified blob cache; each layer is
//!    unpacked once into a cached directory used as an overlay lower;
//! 2. **packages**: the default packages plus `image.pkgs`, resolved against the
//!    base image's own apt sources and keyring, `.deb`s verified and unpacked into
//!    one layer, then `dpkg --configure -a` in the sandbox (its diff is a layer);
//! 3. **build**: the build directory staged at `/app` (owned by `node`), then
//!    `npm i` in the sandbox as `node` (the `node_modules` layer, cached by the
//!    inputs that decide it), then `build.commands` with `build.env`;
//! 4. **index**: the bundled index worker runs in the sandbox and writes
//!    `/app/index.json`;
//! 5. **final**: base + packages + `node_modules` + code + index layers, with
//!    upstream's final-stage config, written as an OCI image layout.

mod instructions;
mod npm;
mod stepcache;
mod steps;
mod view;

use std::path::{Path, PathBuf};
use std::time::Duration;

use liftoff_image::{Compression, ImageConfigBuilder, ImageManifest, LayerBlob, LayerOptions};
use liftoff_manifest::BuildManifest;
use liftoff_registry::{BlobCache, PulledImage, RegistryConfig};

/// The script run inside the image to index the tasks (upstream's index controller without the platform).
pub const INDEXER_SCRIPT: &str = include_str!("indexer.mjs");

/// Upstream's default base images (`deploy/buildImage.ts`, 3.3.17).
pub const DEFAULT_NODE_BASE: &str =
    "node:21-bookworm-slim@sha256:99afef5df7400a8d118e0504576d32ca700de5034c4f9271d2ff7c91cc12d170";
pub const DEFAULT_BUN_BASE: &str = "imbios/bun-node:1.1.24-22-slim@sha256:9cfb7cd87529261c482fe17d8894c0986263f3a5ccf84ad65c00ec0e1ed539c6";

/// Where the image goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageOutput {
    /// An OCI image layout directory.
    OciDir(PathBuf),
    /// A single-file OCI archive.
    OciArchive(PathBuf),
}

impl std::str::FromStr for ImageOutput {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(p) = s.strip_prefix("oci:") {
            Ok(Self::OciDir(PathBuf::from(p)))
        } else if let Some(p) = s.strip_prefix("oci-archive:") {
            Ok(Self::OciArchive(PathBuf::from(p)))
        } else {
            Err(format!(
                "unknown output {s:?}: use oci:DIR or oci-archive:FILE"
            ))
        }
    }
}

/// How to build the image.
#[derive(Debug, Clone)]
pub struct ImageOptions {
    /// A registry reference, `oci:PATH[:TAG]` or `oci-archive:FILE[:TAG]`.
    pub base_image: String,
    /// Blobs, unpacked base layers, `.deb`s and cached steps.
    pub cache_dir: PathBuf,
    pub compression: Compression,
    pub output: ImageOutput,
    /// Network for `npm i` and build commands (package downloads are done by liftoff itself).
    pub network: bool,
    pub registry: RegistryConfig,
    /// `SOURCE_DATE_EPOCH`: every file's mtime and the image's creation time.
    pub source_date_epoch: u64,
    /// Limit for each sandboxed step (`npm i`, `dpkg --configure`, a build command).
    pub step_timeout: Duration,
    /// Limit for indexing (upstream: 20 s).
    pub index_timeout: Duration,
    /// The deployment the image is for (a deploy sets upstream's `TRIGGER_*` build args in the
    /// final env; a dry run leaves them empty).
    pub deployment: Option<DeploymentArgs>,
    /// Put consecutive `RUN` instructions of extensions into one layer.
    pub squash_instructions: bool,
    /// `(prefix, replacement)` URL rewrites for `ADD <url>` (air-gapped builds, local stand-ins);
    /// checksums are still enforced against the original.
    pub url_mirrors: Vec<(String, String)>,
    /// Which extension contributed each `image.instructions` entry (for messages); missing
    /// entries are shown as `image.instructions`.
    pub instruction_origins: Vec<String>,
    /// The git remote and commit of the project, for the OCI labels.
    pub source: Option<String>,
    pub revision: Option<String>,
}

/// Upstream's `TRIGGER_*` build args of a deploy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentArgs {
    pub project_id: String,
    pub deployment_id: String,
    pub version: String,
    pub project_ref: String,
}

/// One layer of the built image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LayerInfo {
    /// What it holds: `base`, `packages`, `dpkg-configure`, `node_modules`, `app`, `index`.
    pub name: String,
    pub digest: String,
    pub size: u64,
    /// Reused from the cache (not rebuilt).
    pub cached: bool,
}

/// A task found by the indexer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexedTask {
    pub id: String,
    pub file_path: String,
    pub export_name: String,
}

/// The result of a build.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuiltImage {
    pub manifest_digest: String,
    pub config_digest: String,
    pub layers: Vec<LayerInfo>,
    pub tasks: Vec<IndexedTask>,
    /// The OCI layout or archive written.
    pub output: PathBuf,
    pub tag: String,
    /// Debian packages added to the base image.
    pub packages: Vec<String>,
    /// `/app/index.json` as the indexer wrote it (upstream's index format: the worker's tasks).
    #[serde(skip)]
    pub index: serde_json::Value,
}

/// Why the image could not be built. Each names the step and what to do.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("could not get the base image {image}: {source}")]
    Base {
        image: String,
        source: Box<liftoff_registry::RegistryError>,
    },
    #[error("image packages: {0}")]
    Packages(Box<liftoff_debian::DebianError>),
    #[error("sandbox: {0}")]
    Sandbox(Box<liftoff_sandbox::SandboxError>),
    #[error("image: {0}")]
    Image(Box<liftoff_image::ImageError>),
    #[error("{step} failed with exit status {status}:\n{stderr}")]
    Step {
        step: String,
        status: i32,
        stderr: String,
    },
    #[error("{origin}: image instruction `{line}`: {message}")]
    Instruction {
        origin: String,
        line: String,
        message: String,
    },
    #[error("indexing the tasks failed: {message}")]
    Index { message: String },
    #[error("could not {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl From<liftoff_debian::DebianError> for BuildError {
    fn from(e: liftoff_debian::DebianError) -> Self {
        Self::Packages(Box::new(e))
    }
}

impl From<liftoff_sandbox::SandboxError> for BuildError {
    fn from(e: liftoff_sandbox::SandboxError) -> Self {
        Self::Sandbox(Box::new(e))
    }
}

impl From<liftoff_image::ImageError> for BuildError {
    fn from(e: liftoff_image::ImageError) -> Self {
        Self::Image(Box::new(e))
    }
}

pub(crate) fn io<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> BuildError + 'a {
    move |source| BuildError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Builds the image for the build directory `build_dir` (a dry-run directory:
/// bundle, `package.json`, `build.json` with `/app` paths).
// One straight-line pipeline of the steps in `steps.rs`; splitting it would only
// move the argument lists around.
#[allow(clippy::too_many_lines)]
pub fn build_image(
    build_dir: &Path,
    manifest: &BuildManifest,
    opts: &ImageOptions,
    progress: &dyn Fn(&str),
) -> Result<BuiltImage, BuildError> {
    // Fail before any download if build steps cannot run here.
    liftoff_sandbox::available()?;
    std::fs::create_dir_all(&opts.cache_dir).map_err(io("create", &opts.cache_dir))?;
    let blobs = BlobCache::new(&opts.cache_dir);
    let work = tempfile::Builder::new()
        .prefix("build-")
        .tempdir_in(ensure_dir(&opts.cache_dir.join("work"))?)
        .map_err(io("create a work dir in", &opts.cache_dir))?;
    let layer_opts = |owner: Option<(u32, u32)>, prefix: Option<&str>| LayerOptions {
        compression: opts.compression,
        mtime: opts.source_date_epoch,
        owner_override: owner,
        prefix: prefix.map(String::from),
        exclude: Vec::new(),
    };

    progress(&format!("Pulling the base image {}", opts.base_image));
    let base = steps::pull_base(&opts.base_image, &opts.registry, &blobs)?;
    let base_dirs = steps::unpack_base(&base, &blobs, &opts.cache_dir)?;
    let mut lowers: Vec<PathBuf> = base_dirs.iter().rev().cloned().collect();

    let mut layers: Vec<(LayerInfo, Option<LayerBlob>)> = base
        .layers
        .iter()
        .map(|l| {
            (
                LayerInfo {
                    name: "base".into(),
                    digest: l.digest.clone(),
                    size: l.size,
                    cached: true,
                },
                None,
            )
        })
        .collect();

    // The extensions' image.instructions, first in upstream's base stage.
    let secrets = secret_values(manifest);
    let sources = instruction_sources(manifest, &opts.instruction_origins);
    let parsed = liftoff_instructions::parse(&sources).map_err(|e| BuildError::Instruction {
        origin: e.origin,
        line: instructions::redact(&e.line, &secrets),
        message: e.message,
    })?;
    let build_args: std::collections::BTreeMap<String, String> = manifest
        .build
        .env
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut state = instructions::StageState::from_base_config(&base.config_bytes);
    let mut chain = base.manifest_digest.clone();
    let mut history = Vec::new();
    if !parsed.is_empty() {
        progress(&format!("Running {} image instruction(s)", parsed.len()));
        let outcome = instructions::execute(
            &parsed,
            state,
            &chain,
            &mut lowers,
            &instructions::Env {
                build_context: build_dir,
                build_args: &build_args,
                work: work.path(),
                opts,
                layer: &layer_opts(None, None),
                progress,
                secrets: &secrets,
            },
        )?;
        for l in outcome.layers {
            layers.push(steps::info(&l.name, &l.blob, l.cached));
            history.push(l.created_by);
        }
        state = outcome.state;
        chain = outcome.chain;
    }
    let bottom_to_top: Vec<PathBuf> = lowers.iter().rev().cloned().collect();
    let view = view::View::new(&bottom_to_top);

    // Packages: the defaults plus image.pkgs, as upstream's base stage.
    let requested = manifest.image_packages();
    let packages = steps::packages(
        &chain,
        &requested,
        &view,
        &lowers,
        work.path(),
        opts,
        &layer_opts(None, None),
        progress,
    )?;
    let mut package_names = Vec::new();
    if let Some(p) = packages {
        package_names = p.names;
        lowers.insert(0, p.unpacked.clone());
        layers.push(steps::info("packages", &p.unpacked_blob, p.cached));
        history.push(format!(
            "liftoff: Debian packages {}",
            package_names.join(" ")
        ));
        if let Some((dir, blob)) = p.configured {
            lowers.insert(0, dir);
            layers.push(steps::info("dpkg-configure", &blob, p.cached));
            history.push("liftoff: dpkg --configure -a".into());
        }
    }

    let node = view.user_ids("node")?;
    let app = steps::stage_app(build_dir, work.path(), node)?;
    // `npm i` sees the staged app; it rewrites /app/node_modules (pruning the bundled
    // trigger.dev entry points), so every later step sees the code on top again, as
    // upstream's second `COPY . .` does.
    let with_app = |lowers: &[PathBuf]| -> Vec<PathBuf> {
        std::iter::once(app.clone())
            .chain(lowers.iter().cloned())
            .collect()
    };

    progress("Installing dependencies (npm i)");
    let modules = npm::install(
        build_dir,
        &chain,
        &package_names,
        &with_app(&lowers),
        work.path(),
        opts,
        &layer_opts(None, None),
    )?;
    lowers.insert(0, modules.upper.clone());
    layers.push(steps::info("node_modules", &modules.blob, modules.cached));
    history.push("liftoff: npm i --no-audit --no-fund --no-save --no-package-lock".into());

    let commands = manifest.build.commands.clone().unwrap_or_default();
    if !commands.is_empty() {
        progress(&format!("Running {} build command(s)", commands.len()));
        let (upper, blob) = steps::build_commands(
            &commands,
            manifest,
            &with_app(&lowers),
            work.path(),
            opts,
            &layer_opts(None, None),
        )?;
        lowers.insert(0, upper);
        layers.push(steps::info("build-commands", &blob, false));
        history.push(format!(
            "liftoff: build.commands: {}",
            instructions::redact(&commands.join(" && "), &secrets)
        ));
    }

    let layer_blobs = opts.cache_dir.join("blobs");
    let code = liftoff_image::layer_from_dir(
        &app.join("app"),
        &layer_blobs,
        &layer_opts(Some(node), Some("app/")),
    )?;
    layers.push(steps::info("app", &code, false));
    history.push("liftoff: COPY --chown=node:node . /app".into());

    progress("Indexing tasks");
    let (tasks, index_dir) = steps::index(&with_app(&lowers), work.path(), opts)?;
    let index_json: serde_json::Value = std::fs::read(index_dir.join("app/index.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let index =
        liftoff_image::layer_from_dir(&index_dir, &layer_blobs, &layer_opts(Some(node), None))?;
    layers.push(steps::info("index", &index, false));
    history.push("liftoff: index tasks -> /app/index.json".into());

    let config = final_config(&base, manifest, &state, &layers, &history, opts)?;
    let mut descriptors = Vec::new();
    for (i, (info, _)) in layers.iter().enumerate() {
        let media_type = if i < base.layers.len() {
            base.layers[i].media_type.clone()
        } else {
            opts.compression.media_type().to_string()
        };
        descriptors.push(liftoff_image::Descriptor::for_base_layer(
            &media_type,
            &info.digest,
            info.size,
        )?);
    }
    let image_manifest = ImageManifest::new(config.descriptor(), descriptors);
    let mut blob_list: Vec<liftoff_image::Blob> = Vec::new();
    for l in &base.layers {
        let path = blobs.path(&l.digest).ok_or_else(|| {
            BuildError::Invalid(format!("base layer {} vanished from the cache", l.digest))
        })?;
        blob_list.push(liftoff_image::Blob::File {
            digest: l.digest.clone(),
            path,
        });
    }
    for b in layers.iter().filter_map(|(_, b)| b.as_ref()) {
        blob_list.push(liftoff_image::Blob::from(b));
    }
    blob_list.push(liftoff_image::Blob::from(&config));

    let tag = "latest".to_string();
    let (written, output) =
        write_output(&opts.output, work.path(), &image_manifest, &blob_list, &tag)?;
    Ok(BuiltImage {
        manifest_digest: written.digest,
        config_digest: config.digest.clone(),
        layers: layers.into_iter().map(|(i, _)| i).collect(),
        tasks,
        output,
        tag,
        packages: package_names,
        index: index_json,
    })
}

/// Writes the image as an OCI layout, or as an archive of one.
fn write_output(
    output: &ImageOutput,
    work: &Path,
    manifest: &ImageManifest,
    blobs: &[liftoff_image::Blob],
    tag: &str,
) -> Result<(liftoff_image::ManifestRef, PathBuf), BuildError> {
    let (layout_dir, archive) = match output {
        ImageOutput::OciDir(dir) => (dir.clone(), None),
        ImageOutput::OciArchive(file) => (work.join("layout"), Some(file.clone())),
    };
    if layout_dir.exists() {
        std::fs::remove_dir_all(&layout_dir).map_err(io("replace", &layout_dir))?;
    }
    let written = liftoff_image::write_oci_layout(&layout_dir, manifest, blobs, tag)?;
    let path = match archive {
        Some(file) => {
            liftoff_image::write_oci_archive(&layout_dir, &file)?;
            file
        }
        None => layout_dir,
    };
    Ok((written, path))
}

pub(crate) fn ensure_dir(p: &Path) -> Result<&Path, BuildError> {
    std::fs::create_dir_all(p).map_err(io("create", p))?;
    Ok(p)
}

/// Upstream's final stage: `USER node`, `WORKDIR /app`, the final `ENV` line (the
/// `TRIGGER_*` build args are empty in a dry run; a deploy sets them),
/// `ENTRYPOINT ["dumb-init","node",<runController>]`, `CMD []`.
fn final_config(
    base: &PulledImage,
    manifest: &BuildManifest,
    state: &instructions::StageState,
    layers: &[(LayerInfo, Option<LayerBlob>)],
    history: &[String],
    opts: &ImageOptions,
) -> Result<liftoff_image::ConfigBlob, BuildError> {
    let mut cfg = ImageConfigBuilder::from_base_bytes(&base.config_bytes)?;
    cfg.created(opts.source_date_epoch)
        .user("node")
        .workdir("/app");
    // The base stage's ENV lines (the instructions', then upstream's own) stay in the image.
    for (k, v) in &state.env_set {
        cfg.env(k.clone(), v.clone());
    }
    cfg.env("DEBIAN_FRONTEND", "noninteractive");
    for key in [
        "TRIGGER_PROJECT_ID",
        "TRIGGER_DEPLOYMENT_ID",
        "TRIGGER_DEPLOYMENT_VERSION",
        "TRIGGER_CONTENT_HASH",
        "TRIGGER_PROJECT_REF",
        "NODE_EXTRA_CA_CERTS",
    ] {
        let d = opts.deployment.as_ref();
        let value = match key {
            "TRIGGER_CONTENT_HASH" => manifest.content_hash.clone(),
            "TRIGGER_PROJECT_ID" => d.map(|d| d.project_id.clone()).unwrap_or_default(),
            "TRIGGER_DEPLOYMENT_ID" => d.map(|d| d.deployment_id.clone()).unwrap_or_default(),
            "TRIGGER_DEPLOYMENT_VERSION" => d.map(|d| d.version.clone()).unwrap_or_default(),
            "TRIGGER_PROJECT_REF" => d.map(|d| d.project_ref.clone()).unwrap_or_default(),
            _ => String::new(),
        };
        cfg.env(key, value);
    }
    cfg.env("NODE_ENV", "production");
    if manifest.runtime == liftoff_manifest::Runtime::Node {
        cfg.env("NODE_OPTIONS", "--max_old_space_size=8192");
    }
    let controller = manifest
        .run_controller_entry_point
        .clone()
        .ok_or_else(|| BuildError::Invalid("build.json has no runControllerEntryPoint".into()))?;
    cfg.entrypoint(Some(vec!["dumb-init".into(), "node".into(), controller]))
        .cmd(Some(Vec::new()));
    cfg.oci_labels(opts.source.as_deref(), opts.revision.as_deref());
    let mut lines = history.iter();
    for (info, blob) in layers {
        if let Some(b) = blob {
            let line = lines
                .next()
                .cloned()
                .unwrap_or_else(|| format!("liftoff: {}", info.name));
            cfg.add_layer(b.diff_id.clone(), line);
        }
    }
    Ok(cfg.build()?)
}

/// The manifest's `image.instructions` with the extension each came from.
fn instruction_sources(
    manifest: &BuildManifest,
    origins: &[String],
) -> Vec<liftoff_instructions::Source> {
    manifest
        .image
        .as_ref()
        .and_then(|i| i.instructions.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, text)| liftoff_instructions::Source {
            origin: origins
                .get(i)
                .cloned()
                .unwrap_or_else(|| "image.instructions".to_string()),
            text: text.clone(),
        })
        .collect()
}

/// `build.env` values: they exist only while building and are never printed.
pub(crate) fn secret_values(manifest: &BuildManifest) -> Vec<String> {
    let mut v: Vec<String> = manifest
        .build
        .env
        .iter()
        .flatten()
        .map(|(_, v)| v.clone())
        .filter(|v| v.len() >= 4)
        .collect();
    v.sort_by_key(|s| std::cmp::Reverse(s.len()));
    v.dedup();
    v
}
