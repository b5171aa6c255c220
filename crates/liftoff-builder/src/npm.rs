//! `npm i` in the sandbox, with the user's npm configuration mounted read-only,
//! cached by everything that decides its result.

use std::path::{Path, PathBuf};

use liftoff_image::{LayerBlob, LayerOptions};
use liftoff_sandbox::{Bind, RunSpec};

use crate::steps::{PATH, layer_of_upper, run_step};
use crate::{BuildError, ImageOptions, io, stepcache};

pub(crate) struct Modules {
    /// The step's upper dir (overlay form), a lower for later steps.
    pub upper: PathBuf,
    pub blob: LayerBlob,
    pub cached: bool,
}

/// The npm configuration liftoff passes in: the user's `.npmrc` (which may hold
/// tokens: bound read-only, never in a layer), CA files, and proxy variables.
pub(crate) fn npm_config() -> (Vec<Bind>, Vec<(String, String)>) {
    let mut binds = Vec::new();
    let mut env = Vec::new();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let userconfig = std::env::var_os("NPM_CONFIG_USERCONFIG")
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".npmrc")))
        .filter(|p| p.is_file());
    let mut cafile = None;
    if let Some(rc) = &userconfig {
        binds.push(Bind {
            host: rc.clone(),
            target: "/run/liftoff/npm/npmrc".into(),
            read_only: true,
        });
        env.push((
            "NPM_CONFIG_USERCONFIG".into(),
            "/run/liftoff/npm/npmrc".into(),
        ));
    }
    // The global npmrc of the host's npm installation (registry, cafile).
    let global = ["/usr/etc/npmrc", "/usr/local/etc/npmrc", "/etc/npmrc"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    let read = |rc: &PathBuf| -> Vec<(String, String)> {
        std::fs::read_to_string(rc)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                l.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            })
            .collect()
    };
    // npm reads the mounted user config itself; the global one is not mounted, so
    // its registry is passed on (the host's npm would use it too).
    for (k, v) in global.iter().flat_map(read) {
        if k == "registry" {
            env.push(("NPM_CONFIG_REGISTRY".into(), v));
        }
    }
    for (k, v) in userconfig.iter().chain(global.iter()).flat_map(read) {
        if k == "cafile" && cafile.is_none() {
            cafile = Some(PathBuf::from(v));
        }
    }
    if let Some(ca) = cafile.filter(|p| p.is_file()) {
        binds.push(Bind {
            host: ca,
            target: "/run/liftoff/npm/ca.pem".into(),
            read_only: true,
        });
        env.push(("NPM_CONFIG_CAFILE".into(), "/run/liftoff/npm/ca.pem".into()));
    }
    if let Some(extra) = std::env::var_os("NODE_EXTRA_CA_CERTS")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
    {
        binds.push(Bind {
            host: extra,
            target: "/run/liftoff/npm/extra-ca.pem".into(),
            read_only: true,
        });
        env.push((
            "NODE_EXTRA_CA_CERTS".into(),
            "/run/liftoff/npm/extra-ca.pem".into(),
        ));
    }
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
    ] {
        if let Ok(v) = std::env::var(var) {
            env.push((var.into(), v));
        }
    }
    (binds, env)
}

/// Installs the production dependencies of `/app/package.json`.
pub(crate) fn install(
    build_dir: &Path,
    base_digest: &str,
    packages: &[String],
    lowers: &[PathBuf],
    work: &Path,
    opts: &ImageOptions,
    layer: &LayerOptions,
) -> Result<Modules, BuildError> {
    let package_json = build_dir.join("package.json");
    let pkg = std::fs::read(&package_json).map_err(io("read", &package_json))?;
    let key = stepcache::key(&[
        &pkg[..],
        base_digest.as_bytes(),
        packages.join("\n").as_bytes(),
        format!("{layer:?}").as_bytes(),
    ]);
    let (cached, exists) = stepcache::entry(&opts.cache_dir, "npm", &key)?;
    if exists && let Some(blob) = stepcache::load_blob(&cached, "layer", &opts.cache_dir) {
        return Ok(Modules {
            upper: cached.join("upper"),
            blob,
            cached: true,
        });
    }

    let staging = stepcache::staging(&opts.cache_dir, "npm")?;
    let upper = staging.path().join("upper");
    std::fs::create_dir_all(&upper).map_err(io("create", &upper))?;
    let (binds, npm_env) = npm_config();
    let mut env = vec![
        ("PATH".to_string(), PATH.to_string()),
        ("HOME".to_string(), "/home/node".to_string()),
        ("NODE_ENV".to_string(), "production".to_string()),
        (
            "NPM_CONFIG_UPDATE_NOTIFIER".to_string(),
            "false".to_string(),
        ),
        // The npm cache stays out of the image.
        ("NPM_CONFIG_CACHE".to_string(), "/tmp/npm-cache".to_string()),
    ];
    env.extend(npm_env);
    run_step(
        "npm i --no-audit --no-fund --no-save --no-package-lock",
        &RunSpec {
            lowers: lowers.to_vec(),
            upper: upper.clone(),
            command: [
                "npm",
                "i",
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--no-package-lock",
            ]
            .map(String::from)
            .to_vec(),
            env,
            user: Some("node".into()),
            workdir: "/app".into(),
            network: opts.network,
            binds,
            timeout: opts.step_timeout,
        },
    )?;
    let blob = layer_of_upper(
        &upper,
        lowers,
        work,
        "node_modules-layer",
        &opts.cache_dir.join("blobs"),
        layer,
    )?
    .ok_or_else(|| BuildError::Invalid("npm i changed nothing in /app".into()))?;
    stepcache::store_blob(staging.path(), "layer", &blob)?;
    let dir = stepcache::commit(staging, &cached);
    Ok(Modules {
        upper: dir.join("upper"),
        blob,
        cached: false,
    })
}
