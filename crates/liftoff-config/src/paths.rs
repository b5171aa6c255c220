//! File-system lookups: the config file, project files found upward
//! (pkg-types), `trigger` dir auto-detection and dir normalisation.

use std::path::{Component, Path, PathBuf};

use crate::ConfigError;

/// c12/jiti's extension order.
pub(crate) const CONFIG_EXTENSIONS: &[&str] = &["js", "ts", "mjs", "cjs", "mts", "cts"];

/// `trigger.config.<ext>` in `dir`, first match in c12's order.
pub(crate) fn find_config_file(dir: &Path) -> Option<PathBuf> {
    CONFIG_EXTENSIONS
        .iter()
        .map(|ext| dir.join(format!("trigger.config.{ext}")))
        .find(|p| p.is_file())
}

/// `--config <path>`: relative to the project dir; like c12, the extension may be omitted.
pub(crate) fn explicit_config_file(
    project_dir: &Path,
    config: &Path,
) -> Result<PathBuf, ConfigError> {
    let path = normalize(&project_dir.join(config));
    if path.is_file() {
        return Ok(path);
    }
    if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
        for ext in CONFIG_EXTENSIONS {
            let candidate = path.with_file_name(format!("{name}.{ext}"));
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(ConfigError::ConfigFileMissing {
        path,
        project_dir: project_dir.to_path_buf(),
    })
}

/// Lexically normalises `.` and `..` (no symlink resolution, like node's `path.resolve`).
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else if !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// node's `path.relative(from, to)` for absolute, normalised paths, with `/` separators.
pub(crate) fn relative(from: &Path, to: &Path) -> String {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = Vec::new();
    parts.extend(std::iter::repeat_n("..".to_string(), from.len() - common));
    parts.extend(
        to[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

/// The directories pkg-types' `findFile` looks in, nearest first: `start`
/// and its ancestors, but never above the outermost `node_modules` (its `rootPattern`).
fn search_dirs(start: &Path) -> Vec<&Path> {
    let all: Vec<&Path> = start.ancestors().collect();
    match all
        .iter()
        .rposition(|p| p.file_name().is_some_and(|n| n == "node_modules"))
    {
        Some(outermost) => all[..=outermost].to_vec(),
        None => all,
    }
}

/// Nearest file named one of `names` (checked in order per directory).
pub(crate) fn find_nearest(start: &Path, names: &[&str]) -> Option<PathBuf> {
    search_dirs(start)
        .into_iter()
        .find_map(|dir| names.iter().map(|n| dir.join(n)).find(|p| p.is_file()))
}

/// Farthest file named one of `names`.
fn find_farthest(start: &Path, names: &[&str]) -> Option<PathBuf> {
    search_dirs(start)
        .into_iter()
        .rev()
        .find_map(|dir| names.iter().map(|n| dir.join(n)).find(|p| p.is_file()))
}

/// pkg-types' lockfile names, in its order.
pub(crate) const LOCKFILES: &[&str] = &[
    "yarn.lock",
    "package-lock.json",
    "pnpm-lock.yaml",
    "npm-shrinkwrap.json",
    "bun.lockb",
    "bun.lock",
];

/// pkg-types `findWorkspaceDir`: farthest workspace marker, else nearest
/// `.git/config`, else farthest lockfile, else farthest package.json.
pub(crate) fn find_workspace_dir(start: &Path) -> Option<PathBuf> {
    const MARKERS: &[&str] = &[
        "pnpm-workspace.yaml",
        "lerna.json",
        "turbo.json",
        "rush.json",
    ];
    let parent = |p: PathBuf| p.parent().map(Path::to_path_buf);
    if let Some(p) = find_farthest(start, MARKERS) {
        return parent(p);
    }
    if let Some(p) = find_nearest(start, &[".git/config"]) {
        return p.parent().and_then(Path::parent).map(Path::to_path_buf);
    }
    if let Some(p) = find_farthest(start, LOCKFILES) {
        return parent(p);
    }
    find_farthest(start, &["package.json"]).and_then(parent)
}

const IGNORED_DIRS: &[&str] = &["node_modules", ".git", "dist", "out", "build"];

/// Upstream's `autoDetectDirs`: every directory named `trigger` under
/// `working_dir` (depth-first, entries sorted by name), skipping
/// `node_modules/.git/dist/out/build`, dot-dirs and `…app/api/trigger`.
/// Symlinks are not followed (a symlink is not a directory `Dirent`).
/// Returned relative to `working_dir`.
pub(crate) fn auto_detect_dirs(working_dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![working_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut children: Vec<(String, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .filter(|(name, _)| !IGNORED_DIRS.contains(&name.as_str()) && !name.starts_with('.'))
            .filter(|(_, path)| {
                !path
                    .to_string_lossy()
                    .replace('\\', "/")
                    .ends_with("app/api/trigger")
            })
            .collect();
        children.sort();
        // Depth-first pre-order: push in reverse so the smallest name is visited first.
        // A `trigger` dir is recorded when it is visited, before its own children.
        if dir != working_dir && dir.file_name().is_some_and(|n| n == "trigger") {
            found.push(relative(working_dir, &dir));
        }
        stack.extend(children.into_iter().rev().map(|(_, path)| path));
    }
    found
}

/// Upstream's `resolveTriggerDir`: `/trigger` and `/src/trigger` become
/// `./trigger` and `./src/trigger`; other absolute dirs become relative to the
/// working dir; relative dirs are kept as-is.
pub(crate) fn resolve_trigger_dir(dir: &str, working_dir: &Path) -> String {
    if dir == "/trigger" || dir == "/src/trigger" {
        return format!(".{dir}");
    }
    let p = Path::new(dir);
    if p.is_absolute() {
        relative(working_dir, &normalize(p))
    } else {
        dir.to_string()
    }
}
