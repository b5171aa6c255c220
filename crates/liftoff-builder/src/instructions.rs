//! Upstream's base stage runs the extensions' `image.instructions` before the package line.
//! liftoff executes the parsed instructions itself: `RUN` in the sandbox, `COPY`/`ADD` by
//! staging the files on the host and copying them in inside the sandbox (so parent directories
//! keep the image's metadata in the diff), `ENV`/`ARG`/`USER`/`WORKDIR` as config state.
//!
//! Every filesystem step is cached by a chain key (the base digest, then each step's text and
//! expanded inputs, as Docker's cache does); a failed step stores nothing.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Component, Path, PathBuf};

use liftoff_image::{LayerBlob, LayerOptions};
use liftoff_instructions::{Command, Instruction, Step, Transfer, expand};
use liftoff_sandbox::{Bind, RunSpec};
use sha2::{Digest as _, Sha256};

use crate::steps::{PATH, run_step};
use crate::view::View;
use crate::{BuildError, ImageOptions, ensure_dir, io, stepcache};

/// The base image's config state as the base stage changes it.
#[derive(Debug, Clone)]
pub(crate) struct StageState {
    /// The image's environment, in order.
    pub env: Vec<(String, String)>,
    /// `ENV` pairs set by the instructions (they reach the final image).
    pub env_set: Vec<(String, String)>,
    /// Declared `ARG`s with their values: the build only.
    pub args: Vec<(String, String)>,
    pub user: Option<String>,
    pub workdir: String,
}

impl StageState {
    /// From the base image's config blob.
    pub(crate) fn from_base_config(bytes: &[u8]) -> Self {
        let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
        let c = &v["config"];
        let env = c["Env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_str()?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let user = c["User"]
            .as_str()
            .filter(|u| !u.is_empty())
            .map(String::from);
        let workdir = c["WorkingDir"]
            .as_str()
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_string();
        Self {
            env,
            env_set: Vec::new(),
            args: Vec::new(),
            user,
            workdir,
        }
    }

    fn lookup(&self, name: &str) -> Option<String> {
        // ENV wins over ARG, as in Docker.
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .or_else(|| self.args.iter().rev().find(|(k, _)| k == name))
            .map(|(_, v)| v.clone())
    }

    fn expand(&self, raw: &str) -> Result<String, String> {
        expand(raw, &|n| self.lookup(n))
    }

    fn set_env(&mut self, key: &str, value: String) {
        match self.env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1.clone_from(&value),
            None => self.env.push((key.to_string(), value.clone())),
        }
        self.env_set.push((key.to_string(), value));
    }

    /// The environment of a `RUN`: the image's env, then declared ARGs not shadowed by it.
    fn run_env(&self) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        for (k, v) in &self.args {
            if !env.iter().any(|(e, _)| e == k) {
                env.push((k.clone(), v.clone()));
            }
        }
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.push(("PATH".into(), PATH.into()));
        }
        env
    }
}

/// A layer made by an instruction.
pub(crate) struct InstructionLayer {
    pub name: String,
    pub created_by: String,
    /// Its upper directory (overlay form), the next steps' top lower.
    pub dir: PathBuf,
    pub blob: LayerBlob,
    pub cached: bool,
}

pub(crate) struct Outcome {
    pub layers: Vec<InstructionLayer>,
    pub state: StageState,
    /// The cache key after the last step (later steps key on it).
    pub chain: String,
}

/// Everything the instructions need from the build.
pub(crate) struct Env<'a> {
    /// The build context (the build directory).
    pub build_context: &'a Path,
    /// `--build-arg`s: upstream passes `build.env`.
    pub build_args: &'a BTreeMap<String, String>,
    pub work: &'a Path,
    pub opts: &'a ImageOptions,
    pub layer: &'a LayerOptions,
    pub progress: &'a dyn Fn(&str),
    /// Values never to print (build env values).
    pub secrets: &'a [String],
}

/// Logs and caches that record when a step ran (dropped from every layer, as in the packages step).
pub(crate) const REPRODUCIBLE_EXCLUDES: &[&str] = &[
    "var/log/dpkg.log",
    "var/log/alternatives.log",
    "var/log/apt/**",
    "var/cache/ldconfig/aux-cache",
    "var/cache/debconf/*-old",
    "var/lib/dpkg/status-old",
    "var/lib/dpkg/lock",
    "var/lib/dpkg/lock-frontend",
    "var/lib/dpkg/triggers/Lock",
    "var/cache/apt/*.bin",
];

/// Copies the staged entries into the destination. Entry by entry: `cp -a dir/. dest` would
/// also copy the staging directory's own mode and owner onto an existing `dest` (such as `/`).
const COPY_SCRIPT: &str = r#"set -e
src=/run/liftoff/copy
if [ "$2" = file ] && [ ! -d "$1" ]; then
  mkdir -p "$(dirname "$1")"
  for f in "$src"/* "$src"/.[!.]* "$src"/..?*; do
    if [ -e "$f" ] || [ -L "$f" ]; then cp -a "$f" "$1"; fi
  done
else
  mkdir -p "$1"
  for f in "$src"/* "$src"/.[!.]* "$src"/..?*; do
    if [ -e "$f" ] || [ -L "$f" ]; then cp -a "$f" "$1/"; fi
  done
fi
"#;

/// Runs `steps` on top of `lowers` (top-most first; extended in place with each layer).
#[allow(clippy::too_many_lines)] // one match over the instruction kinds
pub(crate) fn execute(
    steps: &[Step],
    mut state: StageState,
    chain: &str,
    lowers: &mut Vec<PathBuf>,
    cx: &Env<'_>,
) -> Result<Outcome, BuildError> {
    let mut chain = chain.to_string();
    let mut layers: Vec<InstructionLayer> = Vec::new();
    let mut i = 0;
    while i < steps.len() {
        let step = &steps[i];
        let fail = |message: String| BuildError::Instruction {
            origin: step.origin.clone(),
            line: redact(&step.line, cx.secrets),
            message: redact(&message, cx.secrets),
        };
        match &step.instruction {
            Instruction::Env(pairs) => {
                for (k, raw) in pairs {
                    let value = state.expand(raw).map_err(fail)?;
                    state.set_env(k, value);
                }
                chain = stepcache::key(&[chain.as_bytes(), step.line.as_bytes()]);
            }
            Instruction::Arg(list) => {
                for (name, default) in list {
                    let value = match (cx.build_args.get(name), default) {
                        (Some(v), _) => v.clone(),
                        (None, Some(d)) => state.expand(d).map_err(fail)?,
                        (None, None) => String::new(),
                    };
                    // The cache key takes a digest of the value (an ARG may carry a secret).
                    chain = stepcache::key(&[
                        chain.as_bytes(),
                        step.line.as_bytes(),
                        Sha256::digest(value.as_bytes()).as_slice(),
                    ]);
                    state.args.retain(|(k, _)| k != name);
                    state.args.push((name.clone(), value));
                }
            }
            Instruction::User(raw) => {
                let user = state.expand(raw).map_err(fail)?;
                state.user = (!user.is_empty() && user != "root" && user != "0").then_some(user);
                chain = stepcache::key(&[chain.as_bytes(), step.line.as_bytes()]);
            }
            Instruction::Workdir(raw) => {
                let dir = absolute(&state.workdir, &state.expand(raw).map_err(fail)?);
                state.workdir.clone_from(&dir);
                let command = vec!["/bin/mkdir".to_string(), "-p".to_string(), dir.clone()];
                let spec = RunSpecParts {
                    command,
                    env: state.run_env(),
                    user: None,
                    workdir: "/".into(),
                    network: false,
                    binds: Vec::new(),
                };
                let key = stepcache::key(&[chain.as_bytes(), step.line.as_bytes(), dir.as_bytes()]);
                if let Some(l) = fs_step(&key, &[(step, spec)], lowers, cx)? {
                    lowers.insert(0, l.dir.clone());
                    layers.push(l);
                }
                chain = key;
            }
            Instruction::Run(_) => {
                // With --squash-instructions, consecutive RUNs share one layer.
                let mut group = vec![step];
                if cx.opts.squash_instructions {
                    while let Some(next) = steps.get(i + group.len())
                        && matches!(next.instruction, Instruction::Run(_))
                    {
                        group.push(next);
                    }
                }
                let mut parts = Vec::new();
                // A squashed group is a different layer from its last RUN alone.
                let mut key = if group.len() > 1 {
                    stepcache::key(&[chain.as_bytes(), b"squash", &group.len().to_le_bytes()])
                } else {
                    chain.clone()
                };
                for s in &group {
                    let Instruction::Run(command) = &s.instruction else {
                        continue;
                    };
                    let argv = match command {
                        Command::Shell(c) => vec!["/bin/sh".into(), "-c".into(), c.clone()],
                        Command::Exec(a) => a.clone(),
                    };
                    let env = state.run_env();
                    let env_digest = Sha256::digest(format!("{env:?}").as_bytes());
                    key = stepcache::key(&[
                        key.as_bytes(),
                        s.line.as_bytes(),
                        env_digest.as_slice(),
                        format!("{:?} {} {}", state.user, state.workdir, cx.opts.network)
                            .as_bytes(),
                    ]);
                    let (binds, extra) = build_trust();
                    let mut env = env;
                    env.extend(extra);
                    // Reproducible-builds convention: tools that embed times (Python's .pyc
                    // files, gzip, dpkg) use this instead of the clock. Build-time only.
                    if !env.iter().any(|(k, _)| k == "SOURCE_DATE_EPOCH") {
                        env.push((
                            "SOURCE_DATE_EPOCH".into(),
                            cx.opts.source_date_epoch.to_string(),
                        ));
                    }
                    parts.push((
                        *s,
                        RunSpecParts {
                            command: argv,
                            env,
                            user: state.user.clone(),
                            workdir: state.workdir.clone(),
                            network: cx.opts.network,
                            binds,
                        },
                    ));
                }
                if let Some(l) = fs_step(&key, &parts, lowers, cx)? {
                    lowers.insert(0, l.dir.clone());
                    layers.push(l);
                }
                chain = key;
                i += group.len();
                continue;
            }
            Instruction::Copy(t) | Instruction::Add(t) => {
                let add = matches!(step.instruction, Instruction::Add(_));
                let staged = tempfile::Builder::new()
                    .prefix("copy-")
                    .tempdir_in(cx.work)
                    .map_err(io("create a temp dir in", cx.work))?;
                let view = View::new(&lowers.iter().rev().cloned().collect::<Vec<_>>());
                let plan = stage_transfer(t, add, &state, &view, staged.path(), cx).map_err(
                    |e| match e {
                        StageError::Build(b) => b,
                        StageError::Message(m) => fail(m),
                    },
                )?;
                let key = stepcache::key(&[
                    chain.as_bytes(),
                    step.line.as_bytes(),
                    plan.fingerprint.as_bytes(),
                    plan.dest.as_bytes(),
                ]);
                let script = COPY_SCRIPT;
                let spec = RunSpecParts {
                    command: vec![
                        "/bin/sh".into(),
                        "-c".into(),
                        script.into(),
                        "liftoff-copy".into(),
                        plan.dest.clone(),
                        if plan.file { "file" } else { "dir" }.into(),
                    ],
                    env: vec![("PATH".into(), PATH.into())],
                    user: None,
                    workdir: "/".into(),
                    network: false,
                    binds: vec![Bind {
                        host: staged.path().to_path_buf(),
                        target: "/run/liftoff/copy".into(),
                        read_only: true,
                    }],
                };
                if let Some(l) = fs_step(&key, &[(step, spec)], lowers, cx)? {
                    lowers.insert(0, l.dir.clone());
                    layers.push(l);
                }
                chain = key;
            }
        }
        i += 1;
    }
    Ok(Outcome {
        layers,
        state,
        chain,
    })
}

struct RunSpecParts {
    command: Vec<String>,
    env: Vec<(String, String)>,
    user: Option<String>,
    workdir: String,
    network: bool,
    binds: Vec<Bind>,
}

/// Runs one filesystem step (or a squashed group) unless its result is cached; `None` when it
/// changed nothing.
fn fs_step(
    key: &str,
    parts: &[(&Step, RunSpecParts)],
    lowers: &[PathBuf],
    cx: &Env<'_>,
) -> Result<Option<InstructionLayer>, BuildError> {
    let first = parts[0].0;
    let name = format!("{} ({})", first.instruction.keyword(), first.origin);
    let created_by = parts
        .iter()
        .map(|(s, _)| format!("{}: {}", s.origin, redact(&s.line, cx.secrets)))
        .collect::<Vec<_>>()
        .join(" && ");
    let (entry, exists) = stepcache::entry(&cx.opts.cache_dir, "instructions", key)?;
    if exists {
        if entry.join("empty").is_file() {
            (cx.progress)(&format!("{} (cached, no changes)", shorten(&first.line)));
            return Ok(None);
        }
        if let Some(blob) = stepcache::load_blob(&entry, "layer", &cx.opts.cache_dir) {
            (cx.progress)(&format!("{} (cached)", shorten(&first.line)));
            return Ok(Some(InstructionLayer {
                name,
                created_by,
                dir: entry.join("upper"),
                blob,
                cached: true,
            }));
        }
    }
    let staging = stepcache::staging(&cx.opts.cache_dir, "instructions")?;
    let upper = staging.path().join("upper");
    std::fs::create_dir_all(&upper).map_err(io("create", &upper))?;
    for (step, p) in parts {
        (cx.progress)(&shorten(&redact(&step.line, cx.secrets)));
        let spec = RunSpec {
            lowers: lowers.to_vec(),
            upper: upper.clone(),
            command: p.command.clone(),
            env: p.env.clone(),
            user: p.user.clone(),
            workdir: p.workdir.clone(),
            network: p.network,
            binds: p.binds.clone(),
            timeout: cx.opts.step_timeout,
        };
        let label = format!("{}: {}", step.origin, shorten(&step.line));
        run_step(&label, &spec).map_err(|e| match e {
            BuildError::Step {
                step,
                status,
                stderr,
            } => BuildError::Step {
                step: redact(&step, cx.secrets),
                status,
                stderr: redact(&stderr, cx.secrets),
            },
            BuildError::Sandbox(e) => BuildError::Instruction {
                origin: step.origin.clone(),
                line: redact(&shorten(&step.line), cx.secrets),
                message: redact(&e.to_string(), cx.secrets),
            },
            other => other,
        })?;
    }
    let layer = LayerOptions {
        exclude: REPRODUCIBLE_EXCLUDES
            .iter()
            .map(|s| (*s).to_string())
            .collect(),
        ..cx.layer.clone()
    };
    let blob = crate::steps::layer_of_upper(
        &upper,
        lowers,
        staging.path(),
        "layer-dir",
        &cx.opts.cache_dir.join("blobs"),
        &layer,
    )?;
    let _ = std::fs::remove_dir_all(staging.path().join("layer-dir"));
    let Some(blob) = blob else {
        std::fs::write(staging.path().join("empty"), b"").map_err(io("write", staging.path()))?;
        stepcache::commit(staging, &entry);
        return Ok(None);
    };
    stepcache::store_blob(staging.path(), "layer", &blob)?;
    let dir = stepcache::commit(staging, &entry);
    Ok(Some(InstructionLayer {
        name,
        created_by,
        dir: dir.join("upper"),
        blob,
        cached: false,
    }))
}

fn shorten(line: &str) -> String {
    const MAX: usize = 100;
    if line.chars().count() <= MAX {
        line.to_string()
    } else {
        format!("{}…", line.chars().take(MAX).collect::<String>())
    }
}

/// Replaces each secret value with `[redacted]`.
pub(crate) fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if !s.is_empty() {
            out = out.replace(s.as_str(), "[redacted]");
        }
    }
    out
}

/// The host's TLS trust and proxy settings, for build steps only (a corporate proxy's CA must
/// reach `pip`/`curl` in the step, never the image): CA bundles named by the usual variables are
/// bound read-only and the variables point at them; proxy variables pass through.
pub(crate) fn build_trust() -> (Vec<Bind>, Vec<(String, String)>) {
    let mut binds = Vec::new();
    let mut env = Vec::new();
    let vars = [
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "PIP_CERT",
        "CURL_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
    ];
    let mut bound: Vec<(PathBuf, String)> = Vec::new();
    for var in vars {
        let Some(path) = std::env::var_os(var).map(PathBuf::from) else {
            continue;
        };
        if !path.is_file() {
            continue;
        }
        let target = if let Some((_, t)) = bound.iter().find(|(p, _)| *p == path) {
            t.clone()
        } else {
            let t = format!("/run/liftoff/trust/{}.pem", bound.len());
            binds.push(Bind {
                host: path.clone(),
                target: t.clone(),
                read_only: true,
            });
            bound.push((path, t.clone()));
            t
        };
        env.push((var.to_string(), target));
    }
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
    ] {
        if let Ok(v) = std::env::var(var) {
            env.push((var.into(), v));
        }
    }
    (binds, env)
}

/// `path` resolved against the working directory, normalised (no `.`/`..`).
fn absolute(workdir: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        PathBuf::from(path)
    } else {
        Path::new(workdir).join(path)
    };
    let mut parts: Vec<String> = Vec::new();
    for c in joined.components() {
        match c {
            Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    let mut out = format!("/{}", parts.join("/"));
    if path.ends_with('/') && out != "/" {
        out.push('/');
    }
    out
}

enum StageError {
    Build(BuildError),
    Message(String),
}

impl From<BuildError> for StageError {
    fn from(e: BuildError) -> Self {
        Self::Build(e)
    }
}

impl From<String> for StageError {
    fn from(e: String) -> Self {
        Self::Message(e)
    }
}

struct TransferPlan {
    /// Absolute destination in the image.
    dest: String,
    /// One file copied to a file path (else the staged dir's contents go into `dest`).
    file: bool,
    /// A digest of everything staged (names, modes, owners, contents).
    fingerprint: String,
}

/// Stages what a COPY/ADD adds: `staged/` holds the entries to put into the destination.
fn stage_transfer(
    t: &Transfer,
    add: bool,
    state: &StageState,
    view: &View,
    staged: &Path,
    cx: &Env<'_>,
) -> Result<TransferPlan, StageError> {
    let expand = |raw: &str| state.expand(raw);
    let dest_raw = expand(&t.dest)?;
    let dest = absolute(&state.workdir, &dest_raw);
    let dest_is_dir = dest_raw.ends_with('/') || dest_raw == "." || t.sources.len() > 1;
    let owner = match &t.chown {
        Some(spec) => Some(owner_ids(view, &expand(spec)?)?),
        None => None,
    };
    let mode = match &t.chmod {
        Some(m) => Some(
            u32::from_str_radix(&expand(m)?, 8)
                .map_err(|_| format!("--chmod={m}: only octal modes (e.g. 755) are supported"))?,
        ),
        None => None,
    };
    // (source path on the host or in the staged image, name in dest)
    let mut items: Vec<(PathBuf, String, bool)> = Vec::new();
    let image_root;
    let root: &Path = if let Some(from) = &t.from {
        let from = expand(from)?;
        image_root = materialize_image(&from, t, state, staged, cx)?;
        &image_root
    } else {
        cx.build_context
    };
    for raw in &t.sources {
        let src = expand(raw)?;
        if add && (src.starts_with("http://") || src.starts_with("https://")) {
            let file = download(&src, t.checksum.as_deref(), cx)?;
            let name = url_file_name(&src)?;
            items.push((file, name, true));
            continue;
        }
        for path in resolve_sources(root, &src, t.from.is_some())? {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            items.push((path, name, false));
        }
    }
    if items.is_empty() {
        return Err(StageError::Message("no source files".into()));
    }
    let single_file = items.len() == 1
        && !dest_is_dir
        && std::fs::metadata(&items[0].0).is_ok_and(|m| m.is_file());
    let mut h = Sha256::new();
    let mut extracted = false;
    for (path, name, downloaded) in &items {
        let meta = std::fs::symlink_metadata(path).map_err(io("read", path))?;
        let is_archive = add && !downloaded && meta.is_file() && is_tar_archive(path);
        extracted |= is_archive;
        if is_archive {
            // ADD extracts local tar archives into the destination.
            extract_archive(path, staged)?;
        } else if meta.is_dir() {
            copy_into(path, staged, owner, mode)?;
        } else {
            let target = staged.join(name);
            copy_entry(path, &target, owner, mode)?;
            if *downloaded && mode.is_none() {
                // Docker gives files ADDed from a URL mode 600.
                set_mode(&target, 0o600)?;
            }
        }
        h.update(name.as_bytes());
    }
    fingerprint_tree(staged, &mut h)?;
    Ok(TransferPlan {
        dest,
        file: single_file && !extracted,
        fingerprint: hex(&h.finalize()),
    })
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Paths of `src` under `root`, which they may not leave (`..`, absolute paths and symlinks are
/// all confined). `*`, `?` and `[...]` match within one path component.
fn resolve_sources(root: &Path, src: &str, from_image: bool) -> Result<Vec<PathBuf>, String> {
    let where_ = if from_image {
        "the image"
    } else {
        "the build context"
    };
    let rel = src.trim_start_matches('/');
    let mut normal = PathBuf::new();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(n) => normal.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                if !normal.pop() {
                    return Err(format!(
                        "{src} is outside {where_}; COPY and ADD only read files inside it (the build directory)"
                    ));
                }
            }
            Component::Prefix(_) => return Err(format!("{src}: not a Unix path")),
        }
    }
    let root_real = root
        .canonicalize()
        .map_err(|e| format!("{}: {e}", root.display()))?;
    let pattern = normal.to_string_lossy().into_owned();
    let candidates = if pattern.contains(['*', '?', '[']) {
        glob_in(&root_real, &pattern)
    } else {
        vec![root_real.join(&normal)]
    };
    let mut out = Vec::new();
    for c in candidates {
        let resolved = c
            .canonicalize()
            .map_err(|_| format!("{src} does not exist in {where_} ({})", root.display()))?;
        if !resolved.starts_with(&root_real) {
            return Err(format!(
                "{src} resolves to {} outside {where_}; COPY and ADD only read files inside it",
                resolved.display()
            ));
        }
        out.push(resolved);
    }
    if out.is_empty() {
        return Err(format!("no file in {where_} matches {src}"));
    }
    out.sort();
    Ok(out)
}

fn glob_in(root: &Path, pattern: &str) -> Vec<PathBuf> {
    let mut current = vec![root.to_path_buf()];
    for part in pattern.split('/') {
        let mut next = Vec::new();
        for dir in &current {
            if part.contains(['*', '?', '[']) {
                let Ok(entries) = std::fs::read_dir(dir) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| wildcard(part, n))
                    .collect();
                names.sort();
                next.extend(names.into_iter().map(|n| dir.join(n)));
            } else {
                let p = dir.join(part);
                if std::fs::symlink_metadata(&p).is_ok() {
                    next.push(p);
                }
            }
        }
        current = next;
    }
    current
}

/// Shell wildcard match of one path component (`*`, `?`, `[abc]`, `[a-z]`, `[!x]`).
fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    wildcard_chars(&p, &n)
}

fn wildcard_chars(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|i| wildcard_chars(&p[1..], &n[i..])),
        Some('?') => !n.is_empty() && wildcard_chars(&p[1..], &n[1..]),
        Some('[') => {
            let Some(end) = p.iter().position(|c| *c == ']') else {
                return n.first() == Some(&'[') && wildcard_chars(&p[1..], &n[1..]);
            };
            let Some(c) = n.first() else { return false };
            let set = &p[1..end];
            let (neg, set) = match set.first() {
                Some('!' | '^') => (true, &set[1..]),
                _ => (false, set),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == '-' {
                    hit |= set[i] <= *c && *c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == *c;
                    i += 1;
                }
            }
            hit != neg && wildcard_chars(&p[end + 1..], &n[1..])
        }
        Some(ch) => n.first() == Some(ch) && wildcard_chars(&p[1..], &n[1..]),
    }
}

fn owner_ids(view: &View, spec: &str) -> Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid_gid = if let Ok(uid) = user.parse::<u32>() {
        (uid, uid)
    } else {
        view.user_ids(user).map_err(|e| e.to_string())?
    };
    let gid = match group {
        None => uid_gid.1,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => view
                .read("etc/group")
                .unwrap_or_default()
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() > 2 && f[0] == g).then(|| f[2].parse().ok())?
                })
                .ok_or_else(|| format!("--chown: the image has no group {g:?} in /etc/group"))?,
        },
    };
    Ok((uid_gid.0, gid))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io("chmod", path))
}

fn copy_entry(
    src: &Path,
    dest: &Path,
    owner: Option<(u32, u32)>,
    mode: Option<u32>,
) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::symlink_metadata(src).map_err(io("read", src))?;
    if meta.file_type().is_symlink() {
        let link = std::fs::read_link(src).map_err(io("read", src))?;
        std::os::unix::fs::symlink(link, dest).map_err(io("create", dest))?;
    } else if meta.is_dir() {
        std::fs::create_dir_all(dest).map_err(io("create", dest))?;
        set_mode(dest, mode.unwrap_or(meta.permissions().mode() & 0o7777))?;
        copy_into(src, dest, owner, mode)?;
    } else if meta.is_file() {
        std::fs::copy(src, dest).map_err(io("copy", src))?;
        set_mode(dest, mode.unwrap_or(meta.permissions().mode() & 0o7777))?;
    } else {
        // Devices, fifos, sockets: not something a build context should carry.
        return Ok(());
    }
    // COPY without --chown gives root:root (the context's owners never leak in).
    let (uid, gid) = owner.unwrap_or((0, 0));
    // Only root can give files away (user-namespace builds keep the caller's ids).
    let _ = std::os::unix::fs::lchown(dest, Some(uid), Some(gid));
    Ok(())
}

fn copy_into(
    src_dir: &Path,
    dest_dir: &Path,
    owner: Option<(u32, u32)>,
    mode: Option<u32>,
) -> Result<(), BuildError> {
    let mut entries: Vec<_> = std::fs::read_dir(src_dir)
        .map_err(io("read", src_dir))?
        .flatten()
        .collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        copy_entry(&e.path(), &dest_dir.join(e.file_name()), owner, mode)?;
    }
    Ok(())
}

fn fingerprint_tree(dir: &Path, h: &mut Sha256) -> Result<(), BuildError> {
    use std::os::unix::fs::MetadataExt as _;
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io("read", dir))?
        .flatten()
        .collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let p = e.path();
        let m = std::fs::symlink_metadata(&p).map_err(io("read", &p))?;
        h.update(e.file_name().as_encoded_bytes());
        h.update(format!("{:o} {} {}", m.mode(), m.uid(), m.gid()).as_bytes());
        if m.file_type().is_symlink() {
            h.update(
                std::fs::read_link(&p)
                    .map_err(io("read", &p))?
                    .as_os_str()
                    .as_encoded_bytes(),
            );
        } else if m.is_dir() {
            fingerprint_tree(&p, h)?;
        } else if m.is_file() {
            let mut f = std::fs::File::open(&p).map_err(io("read", &p))?;
            std::io::copy(&mut f, h).map_err(io("read", &p))?;
        }
    }
    Ok(())
}

fn is_tar_archive(path: &Path) -> bool {
    let mut head = [0u8; 512];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    if n >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        return true;
    }
    n >= 262 && &head[257..262] == b"ustar"
}

fn extract_archive(path: &Path, dest: &Path) -> Result<(), BuildError> {
    let mut f = std::fs::File::open(path).map_err(io("read", path))?;
    let mut head = [0u8; 2];
    let gz = f.read_exact(&mut head).is_ok() && head == [0x1f, 0x8b];
    std::io::Seek::rewind(&mut f).map_err(io("read", path))?;
    let reader: Box<dyn std::io::Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(f))
    } else {
        Box::new(f)
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    // `unpack` refuses entries that would land outside `dest` (.. and absolute paths).
    archive.unpack(dest).map_err(|e| {
        BuildError::Invalid(format!(
            "ADD {}: could not extract the archive: {e}",
            path.display()
        ))
    })
}

fn url_file_name(url: &str) -> Result<String, String> {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['?', '#'])
        .next()
        .unwrap_or_default();
    let name = path.rsplit('/').next().unwrap_or_default();
    if name.is_empty() || !path.contains('/') {
        return Err(format!(
            "ADD {url}: the URL has no file name; give a destination file path"
        ));
    }
    Ok(name.to_string())
}

/// The URL to fetch instead of `url`, from `--url-mirror`/`LIFTOFF_URL_MIRRORS` prefixes.
fn mirrored(url: &str, mirrors: &[(String, String)]) -> String {
    for (prefix, replacement) in mirrors {
        if let Some(rest) = url.strip_prefix(prefix.as_str()) {
            return format!("{replacement}{rest}");
        }
    }
    url.to_string()
}

/// Downloads an ADD URL into `<cache>/downloads` (by checksum, verified); returns the file.
fn download(url: &str, checksum: Option<&str>, cx: &Env<'_>) -> Result<PathBuf, StageError> {
    let root = cx.opts.cache_dir.join("downloads");
    ensure_dir(&root)?;
    if let Some(sum) = checksum {
        let cached = root.join(sum.trim_start_matches("sha256:"));
        if cached.is_file() && file_sha256(&cached).is_ok_and(|d| d == sum) {
            return Ok(cached);
        }
    } else {
        (cx.progress)(&format!(
            "warning: ADD {url} has no --checksum=sha256:…; its content is not verified and it is downloaded on every build"
        ));
    }
    let fetch = mirrored(url, &cx.opts.url_mirrors);
    (cx.progress)(&format!("Downloading {fetch}"));
    let agent =
        liftoff_registry::http_agent(&cx.opts.registry).map_err(|e| format!("ADD {url}: {e}"))?;
    let response = agent
        .get(&fetch)
        .call()
        .map_err(|e| format!("ADD {url}: could not download {fetch}: {e}"))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(StageError::Message(format!(
            "ADD {url}: {fetch} answered HTTP {status}; check the URL (or the mirror in LIFTOFF_URL_MIRRORS)"
        )));
    }
    let tmp = tempfile::NamedTempFile::new_in(&root).map_err(io("create a file in", &root))?;
    let mut h = Sha256::new();
    {
        let mut reader = response.into_body().into_reader();
        let mut out = std::io::BufWriter::new(tmp.as_file());
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| format!("ADD {url}: the download from {fetch} broke off: {e}"))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            std::io::Write::write_all(&mut out, &buf[..n]).map_err(io("write", tmp.path()))?;
        }
        std::io::Write::flush(&mut out).map_err(io("write", tmp.path()))?;
    }
    let got = format!("sha256:{}", hex(&h.finalize()));
    if let Some(want) = checksum
        && got != want
    {
        return Err(StageError::Message(format!(
            "ADD {url}: checksum mismatch: expected {want}, got {got} (downloaded from {fetch}). The file changed or the checksum is wrong; nothing was added to the image"
        )));
    }
    let dest = root.join(got.trim_start_matches("sha256:"));
    tmp.persist(&dest).map_err(|e| BuildError::Io {
        action: "store",
        path: dest.clone(),
        source: e.error,
    })?;
    Ok(dest)
}

fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(format!("sha256:{}", hex(&h.finalize())))
}

/// `COPY --from=<image>`: the source paths of that image, copied out of its layers.
fn materialize_image(
    from: &str,
    t: &Transfer,
    state: &StageState,
    staged: &Path,
    cx: &Env<'_>,
) -> Result<PathBuf, StageError> {
    let blobs = liftoff_registry::BlobCache::new(&cx.opts.cache_dir);
    let image = crate::steps::pull_base(from, &cx.opts.registry, &blobs).map_err(|e| {
        StageError::Message(format!(
            "COPY --from={from}: {e}. --from takes an image reference (liftoff has no build stages)"
        ))
    })?;
    (cx.progress)(&format!("Copying from {from}"));
    let dirs = crate::steps::unpack_base(&image, &blobs, &cx.opts.cache_dir)?;
    let view = View::new(&dirs);
    let root = staged.parent().unwrap_or(staged).join(format!(
        "from-{}",
        &hex(&Sha256::digest(from.as_bytes()))[..12]
    ));
    std::fs::create_dir_all(&root).map_err(io("create", &root))?;
    let mut rels = Vec::new();
    for raw in &t.sources {
        let src = state.expand(raw)?;
        let rel = src.trim_start_matches('/').to_string();
        if rel.split('/').any(|c| c == "..") {
            return Err(StageError::Message(format!(
                "COPY --from: {src} may not contain .."
            )));
        }
        rels.push(rel);
    }
    let wanted: Vec<&str> = rels.iter().map(String::as_str).collect();
    view.materialize(&wanted, &root)?;
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths() {
        assert_eq!(absolute("/", "."), "/");
        assert_eq!(absolute("/", "a/b"), "/a/b");
        assert_eq!(absolute("/app", "../x/"), "/x/");
        assert_eq!(absolute("/app", "/opt/venv"), "/opt/venv");
        assert_eq!(absolute("/", "../../etc"), "/etc");
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("audiowaveform*.deb", "audiowaveform_1.deb"));
        assert!(wildcard("*.txt", "a.txt"));
        assert!(!wildcard("*.txt", "a.txt.bak"));
        assert!(wildcard("file?.[a-c]", "file1.b"));
        assert!(!wildcard("file?.[!a-c]", "file1.b"));
    }

    #[test]
    fn sources_stay_in_the_context() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        std::fs::create_dir_all(ctx.join("sub")).unwrap();
        std::fs::write(ctx.join("sub/a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink("../secret", ctx.join("link")).unwrap();
        assert_eq!(resolve_sources(&ctx, "sub/a.txt", false).unwrap().len(), 1);
        assert_eq!(resolve_sources(&ctx, "/sub/*.txt", false).unwrap().len(), 1);
        let e = resolve_sources(&ctx, "../../etc/passwd", false).unwrap_err();
        assert!(e.contains("outside the build context"), "{e}");
        let e = resolve_sources(&ctx, "link", false).unwrap_err();
        assert!(e.contains("outside the build context"), "{e}");
        let e = resolve_sources(&ctx, "missing", false).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn url_names_and_mirrors() {
        assert_eq!(url_file_name("https://h/a/b.deb?x=1").unwrap(), "b.deb");
        assert!(url_file_name("https://h").is_err());
        let m = vec![(
            "https://github.com/".to_string(),
            "http://127.0.0.1:1/gh/".to_string(),
        )];
        assert_eq!(
            mirrored("https://github.com/a/b", &m),
            "http://127.0.0.1:1/gh/a/b"
        );
        assert_eq!(mirrored("https://other/a", &m), "https://other/a");
    }

    #[test]
    fn state_env_and_args() {
        let mut s = StageState::from_base_config(
            br#"{"config":{"Env":["PATH=/usr/bin:/bin","NODE_VERSION=21"],"WorkingDir":""}}"#,
        );
        assert_eq!(s.workdir, "/");
        s.args.push(("NODE_VERSION".into(), "shadowed".into()));
        s.args.push(("TOKEN".into(), "t".into()));
        assert_eq!(s.expand("$NODE_VERSION-$TOKEN").unwrap(), "21-t");
        s.set_env("PATH", s.expand("/opt/venv/bin:$PATH").unwrap());
        assert_eq!(
            s.env[0],
            ("PATH".into(), "/opt/venv/bin:/usr/bin:/bin".into())
        );
        let run = s.run_env();
        assert!(run.contains(&("TOKEN".into(), "t".into())));
        assert_eq!(run.iter().filter(|(k, _)| k == "NODE_VERSION").count(), 1);
    }
}
