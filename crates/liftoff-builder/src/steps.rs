//! The build steps: base, packages, app staging, build commands, indexing.

use std::path::{Path, PathBuf};

use liftoff_image::{LayerBlob, LayerOptions};
use liftoff_manifest::BuildManifest;
use liftoff_registry::{BlobCache, PulledImage, Reference, RegistryConfig};
use liftoff_sandbox::{Bind, RunSpec};

use crate::view::View;
use crate::{BuildError, ImageOptions, IndexedTask, LayerInfo, ensure_dir, io, stepcache};

const PLATFORM: (&str, &str) = ("linux", "amd64");
pub(crate) const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub(crate) fn info(name: &str, blob: &LayerBlob, cached: bool) -> (LayerInfo, Option<LayerBlob>) {
    (
        LayerInfo {
            name: name.into(),
            digest: blob.digest.clone(),
            size: blob.size,
            cached,
        },
        Some(blob.clone()),
    )
}

/// `oci:PATH[:TAG]`, `oci-archive:FILE[:TAG]` or a registry reference.
pub(crate) fn pull_base(
    image: &str,
    registry: &RegistryConfig,
    blobs: &BlobCache,
) -> Result<PulledImage, BuildError> {
    let err = |source: liftoff_registry::RegistryError| BuildError::Base {
        image: image.to_string(),
        source: Box::new(source),
    };
    let split = |rest: &str| -> (PathBuf, Option<String>) {
        match rest.rsplit_once(':') {
            Some((path, tag)) if !tag.contains('/') => (PathBuf::from(path), Some(tag.to_string())),
            _ => (PathBuf::from(rest), None),
        }
    };
    if let Some(rest) = image.strip_prefix("oci:") {
        let (path, tag) = split(rest);
        return liftoff_registry::read_oci_layout(&path, tag.as_deref(), PLATFORM, blobs)
            .map_err(err);
    }
    if let Some(rest) = image.strip_prefix("oci-archive:") {
        let (path, tag) = split(rest);
        return liftoff_registry::read_oci_archive(&path, tag.as_deref(), PLATFORM, blobs)
            .map_err(err);
    }
    let reference: Reference = image
        .parse()
        .map_err(|e| BuildError::Invalid(format!("--base-image {image}: {e}")))?;
    liftoff_registry::pull(&reference, PLATFORM, registry, blobs, &|_| {}).map_err(err)
}

/// Unpacks each base layer once into `<cache>/layers/sha256/<hex>` (overlay form),
/// bottom-most first. A directory only gets its final name once complete.
pub(crate) fn unpack_base(
    base: &PulledImage,
    blobs: &BlobCache,
    cache: &Path,
) -> Result<Vec<PathBuf>, BuildError> {
    let root = cache.join("layers");
    ensure_dir(&root)?;
    let mut dirs = Vec::new();
    for layer in &base.layers {
        let hex = layer.digest.trim_start_matches("sha256:");
        let dir = root.join(hex);
        if !dir.is_dir() {
            let blob = blobs.path(&layer.digest).ok_or_else(|| {
                BuildError::Invalid(format!("base layer {} is not in the cache", layer.digest))
            })?;
            let tmp = tempfile::Builder::new()
                .prefix(".tmp-")
                .tempdir_in(&root)
                .map_err(io("create a temp dir in", &root))?;
            liftoff_image::unpack_layer(&blob, &layer.media_type, tmp.path())?;
            liftoff_sandbox::oci_whiteouts_to_overlay(tmp.path())?;
            let tmp = tmp.keep();
            if let Err(e) = std::fs::rename(&tmp, &dir) {
                let _ = std::fs::remove_dir_all(&tmp);
                if !dir.is_dir() {
                    return Err(io("store", &dir)(e));
                }
            }
        }
        dirs.push(dir);
    }
    Ok(dirs)
}

pub(crate) struct Packages {
    pub names: Vec<String>,
    pub unpacked: PathBuf,
    pub unpacked_blob: LayerBlob,
    pub configured: Option<(PathBuf, LayerBlob)>,
    /// Reused from the step cache.
    pub cached: bool,
}

/// Resolves, fetches and unpacks the packages the base image lacks, then runs
/// `dpkg --configure -a` in the sandbox. `None` when everything is installed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn packages(
    base_digest: &str,
    requested: &[String],
    view: &View,
    lowers: &[PathBuf],
    work: &Path,
    opts: &ImageOptions,
    layer: &LayerOptions,
    progress: &dyn Fn(&str),
) -> Result<Option<Packages>, BuildError> {
    let requested: Vec<liftoff_debian::Requested> = requested
        .iter()
        .map(|r| liftoff_debian::Requested::parse(r))
        .collect::<Result<_, _>>()?;
    let rootfs = work.join("base-view");
    view.materialize(
        &[
            "var/lib/dpkg/status",
            "var/lib/dpkg/arch",
            "etc/apt",
            "usr/share/keyrings",
            "etc/os-release",
            "etc/dpkg",
            "bin",
            "sbin",
            "lib",
            "lib64",
        ],
        &rootfs,
    )?;
    let base = liftoff_debian::BaseSystem::read_for(&rootfs, &requested)?;
    let debs_cache = opts.cache_dir.join("debian");
    let plan = liftoff_debian::resolve(&base, &requested, &debs_cache, progress)?;
    if plan.packages.is_empty() {
        return Ok(None);
    }
    let names: Vec<String> = plan
        .packages
        .iter()
        .map(|p| format!("{}={}", p.name, p.version))
        .collect();
    let fingerprint: Vec<String> = plan
        .packages
        .iter()
        .map(|p| format!("{} {} {}", p.name, p.version, p.sha256))
        .collect();
    let key = stepcache::key(&[
        base_digest.as_bytes(),
        fingerprint.join("\n").as_bytes(),
        format!("{layer:?}").as_bytes(),
    ]);
    let (entry, exists) = stepcache::entry(&opts.cache_dir, "packages", &key)?;
    if exists && let Some(hit) = cached_packages(&entry, &names, &opts.cache_dir) {
        return Ok(Some(hit));
    }
    let staging = stepcache::staging(&opts.cache_dir, "packages")?;
    progress(&format!(
        "Installing {} Debian packages",
        plan.packages.len()
    ));
    let debs = liftoff_debian::fetch(&plan, &debs_cache, progress)?;
    let unpacked = staging.path().join("unpacked");
    std::fs::create_dir_all(&unpacked).map_err(io("create", &unpacked))?;
    liftoff_debian::unpack(&base, &plan, &debs, &unpacked)?;
    let blobs = opts.cache_dir.join("blobs");
    let unpacked_blob = liftoff_image::layer_from_dir(&unpacked, &blobs, layer)?;

    let mut step_lowers = vec![unpacked.clone()];
    step_lowers.extend(lowers.iter().cloned());
    let upper = staging.path().join("configure");
    std::fs::create_dir_all(&upper).map_err(io("create", &upper))?;
    run_step(
        "dpkg --configure -a",
        &RunSpec {
            lowers: step_lowers.clone(),
            upper: upper.clone(),
            command: vec!["dpkg".into(), "--configure".into(), "-a".into()],
            env: vec![
                ("PATH".into(), PATH.into()),
                ("DEBIAN_FRONTEND".into(), "noninteractive".into()),
            ],
            user: None,
            workdir: "/".into(),
            network: false,
            binds: Vec::new(),
            timeout: opts.step_timeout,
        },
    )?;
    // Logs and caches that record when the build ran would make the layer differ
    // between identical builds (reproducible-builds practice drops them).
    let reproducible = LayerOptions {
        exclude: [
            "var/log/dpkg.log",
            "var/log/alternatives.log",
            "var/log/apt/**",
            "var/cache/ldconfig/aux-cache",
            "var/cache/debconf/*-old",
            "var/lib/dpkg/status-old",
            "var/lib/dpkg/lock",
            "var/lib/dpkg/lock-frontend",
            "var/lib/dpkg/triggers/Lock",
        ]
        .map(String::from)
        .to_vec(),
        ..layer.clone()
    };
    let configured = layer_of_upper(
        &upper,
        &step_lowers,
        work,
        "dpkg-configure-layer",
        &blobs,
        &reproducible,
    )?;
    stepcache::store_blob(staging.path(), "unpacked", &unpacked_blob)?;
    if let Some(b) = &configured {
        stepcache::store_blob(staging.path(), "configured", b)?;
    }
    let dir = stepcache::commit(staging, &entry);
    Ok(Some(Packages {
        names,
        unpacked: dir.join("unpacked"),
        unpacked_blob,
        configured: configured.map(|b| (dir.join("configure"), b)),
        cached: false,
    }))
}

/// A stored packages step whose blobs are all still in the cache.
fn cached_packages(entry: &Path, names: &[String], cache: &Path) -> Option<Packages> {
    let unpacked_blob = stepcache::load_blob(entry, "unpacked", cache)?;
    let configured = if entry.join("configured.json").is_file() {
        Some((
            entry.join("configure"),
            stepcache::load_blob(entry, "configured", cache)?,
        ))
    } else {
        None
    };
    Some(Packages {
        names: names.to_vec(),
        unpacked: entry.join("unpacked"),
        unpacked_blob,
        configured,
        cached: true,
    })
}

/// Runs a sandboxed step; a non-zero exit is an error with the stderr tail.
pub(crate) fn run_step(
    name: &str,
    spec: &RunSpec,
) -> Result<liftoff_sandbox::RunOutput, BuildError> {
    let out = liftoff_sandbox::run(spec)?;
    if out.status != 0 {
        let mut stderr = out.stderr_tail.clone();
        if stderr.trim().is_empty() {
            stderr.clone_from(&out.stdout_tail);
        }
        return Err(BuildError::Step {
            step: name.to_string(),
            status: out.status,
            stderr,
        });
    }
    Ok(out)
}

/// The OCI layer of a step's upper dir, or `None` when it changed nothing.
pub(crate) fn layer_of_upper(
    upper: &Path,
    lowers: &[PathBuf],
    work: &Path,
    name: &str,
    blobs: &Path,
    layer: &LayerOptions,
) -> Result<Option<LayerBlob>, BuildError> {
    let empty = std::fs::read_dir(upper)
        .map_err(io("read", upper))?
        .next()
        .is_none();
    if empty {
        return Ok(None);
    }
    let out = work.join(name);
    liftoff_sandbox::upper_to_layer(upper, lowers, &out)?;
    Ok(Some(liftoff_image::layer_from_dir(&out, blobs, layer)?))
}

/// Copies the build directory to `<work>/app/app`, owned by `node`, as the
/// Containerfile's `COPY --chown=node:node . .` does.
pub(crate) fn stage_app(
    build_dir: &Path,
    work: &Path,
    owner: (u32, u32),
) -> Result<PathBuf, BuildError> {
    let root = work.join("app");
    let app = root.join("app");
    copy_tree(build_dir, &app, owner)?;
    Ok(root)
}

fn copy_tree(src: &Path, dest: &Path, owner: (u32, u32)) -> Result<(), BuildError> {
    std::fs::create_dir_all(dest).map_err(io("create", dest))?;
    chown(dest, owner);
    for entry in std::fs::read_dir(src).map_err(io("read", src))? {
        let entry = entry.map_err(io("read", src))?;
        let name = entry.file_name();
        // The image this build writes may live inside the build dir.
        if name == "image" && src.join("build.json").is_file() {
            continue;
        }
        let (from, to) = (entry.path(), dest.join(&name));
        let ty = entry.file_type().map_err(io("read", &from))?;
        if ty.is_dir() {
            copy_tree(&from, &to, owner)?;
        } else if ty.is_symlink() {
            let link = std::fs::read_link(&from).map_err(io("read", &from))?;
            std::os::unix::fs::symlink(link, &to).map_err(io("create", &to))?;
        } else {
            std::fs::copy(&from, &to).map_err(io("copy", &from))?;
            chown(&to, owner);
        }
    }
    Ok(())
}

fn chown(path: &Path, (uid, gid): (u32, u32)) {
    // Only root can give files away; otherwise the layer writer records the owner.
    let _ = std::os::unix::fs::lchown(path, Some(uid), Some(gid));
}

/// Runs `build.commands` (with `build.env`) as `node` in `/app`.
pub(crate) fn build_commands(
    commands: &[String],
    manifest: &BuildManifest,
    lowers: &[PathBuf],
    work: &Path,
    opts: &ImageOptions,
    layer: &LayerOptions,
) -> Result<(PathBuf, LayerBlob), BuildError> {
    let upper = work.join("build-commands");
    std::fs::create_dir_all(&upper).map_err(io("create", &upper))?;
    let mut env = vec![
        ("PATH".to_string(), PATH.to_string()),
        ("HOME".to_string(), "/home/node".to_string()),
        ("NODE_ENV".to_string(), "production".to_string()),
        (
            "NPM_CONFIG_UPDATE_NOTIFIER".to_string(),
            "false".to_string(),
        ),
    ];
    // The user's npm configuration and TLS trust, for `npx` and downloads (never in a layer).
    let (mut binds, npm_env) = crate::npm::npm_config();
    env.extend(npm_env);
    let (trust_binds, trust_env) = crate::instructions::build_trust();
    for (k, v) in trust_env {
        if !env.iter().any(|(e, _)| *e == k) {
            env.push((k, v));
        }
    }
    for b in trust_binds {
        if !binds.iter().any(|x| x.target == b.target) {
            binds.push(b);
        }
    }
    env.push(("NPM_CONFIG_CACHE".to_string(), "/tmp/npm-cache".to_string()));
    for (k, v) in manifest.build.env.iter().flatten() {
        env.push((k.clone(), v.clone()));
    }
    let secrets = crate::secret_values(manifest);
    for command in commands {
        run_step(
            &crate::instructions::redact(command, &secrets),
            &RunSpec {
                lowers: lowers.to_vec(),
                upper: upper.clone(),
                command: vec!["/bin/sh".into(), "-c".into(), command.clone()],
                env: env.clone(),
                user: Some("node".into()),
                workdir: "/app".into(),
                network: opts.network,
                binds: binds.clone(),
                timeout: opts.step_timeout,
            },
        )
        .map_err(|e| match e {
            BuildError::Step {
                step,
                status,
                stderr,
            } => BuildError::Step {
                step,
                status,
                stderr: crate::instructions::redact(&stderr, &secrets),
            },
            other => other,
        })?;
    }
    // Upstream's final stage copies only /app from the build stage: what the commands wrote
    // elsewhere (caches under /home/node, /tmp) is not part of the image.
    let out = work.join("build-commands-layer");
    liftoff_sandbox::upper_to_layer(&upper, lowers, &out)?;
    let app_only = work.join("build-commands-app");
    std::fs::create_dir_all(&app_only).map_err(io("create", &app_only))?;
    if out.join("app").exists() {
        std::fs::rename(out.join("app"), app_only.join("app")).map_err(io("move", &out))?;
    }
    // The layer of the app's changes; the upper (a later lower) is trimmed the same way.
    for entry in std::fs::read_dir(&upper)
        .map_err(io("read", &upper))?
        .flatten()
    {
        if entry.file_name() != "app" {
            let p = entry.path();
            let _ = if p.is_dir() && !p.is_symlink() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
    }
    let blob = liftoff_image::layer_from_dir(&app_only, &opts.cache_dir.join("blobs"), layer)?;
    Ok((upper, blob))
}

/// Runs the bundled index worker in the sandbox; returns the tasks and a dir
/// holding `app/index.json` for the index layer.
pub(crate) fn index(
    lowers: &[PathBuf],
    work: &Path,
    opts: &ImageOptions,
) -> Result<(Vec<IndexedTask>, PathBuf), BuildError> {
    let script = work.join("indexer.mjs");
    std::fs::write(&script, crate::INDEXER_SCRIPT).map_err(io("write", &script))?;
    let upper = work.join("index-upper");
    std::fs::create_dir_all(&upper).map_err(io("create", &upper))?;
    let timeout_ms = opts.index_timeout.as_millis().to_string();
    let out = liftoff_sandbox::run(&RunSpec {
        lowers: lowers.to_vec(),
        upper: upper.clone(),
        command: vec![
            "node".into(),
            "/run/liftoff/indexer.mjs".into(),
            "/app/build.json".into(),
            "/app/index.json".into(),
            timeout_ms,
        ],
        env: vec![
            ("PATH".into(), PATH.into()),
            ("HOME".into(), "/home/node".into()),
            ("NODE_ENV".into(), "production".into()),
        ],
        user: Some("node".into()),
        workdir: "/app".into(),
        network: false,
        binds: vec![Bind {
            host: script,
            target: "/run/liftoff/indexer.mjs".into(),
            read_only: true,
        }],
        timeout: opts.index_timeout + std::time::Duration::from_secs(10),
    })?;
    let report: serde_json::Value = out
        .stdout_tail
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| serde_json::json!({ "ok": false, "error": format!("the indexer printed no result (exit status {})", out.status), "stderr": out.stderr_tail }));
    if report["ok"] != true {
        return Err(BuildError::Index {
            message: format!(
                "{}\n{}",
                report["error"].as_str().unwrap_or("unknown error"),
                report["stderr"].as_str().unwrap_or_default()
            )
            .trim_end()
            .to_string(),
        });
    }
    let tasks: Vec<IndexedTask> =
        serde_json::from_value(report["tasks"].clone()).unwrap_or_default();
    let index_dir = work.join("index");
    let dest = index_dir.join("app");
    std::fs::create_dir_all(&dest).map_err(io("create", &dest))?;
    let written = upper.join("app/index.json");
    std::fs::copy(&written, dest.join("index.json")).map_err(io("read", &written))?;
    Ok((tasks, index_dir))
}
