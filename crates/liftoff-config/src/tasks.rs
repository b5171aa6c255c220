//! Task file discovery (upstream `build/entryPoints.ts`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use walkdir::WalkDir;

use crate::paths::normalize;
use crate::{ConfigError, ResolvedConfig};

/// Extensions of task files (`*.{ts,tsx,mts,cts,js,jsx,mjs,cjs}`).
pub const TASK_FILE_EXTENSIONS: [&str; 8] = ["ts", "tsx", "mts", "cts", "js", "jsx", "mjs", "cjs"];

/// Upstream's default ignores, replaced by `ignorePatterns` when that is set.
pub const DEFAULT_IGNORE_PATTERNS: [&str; 12] = [
    "**/*.test.ts",
    "**/*.test.mts",
    "**/*.test.cts",
    "**/*.test.js",
    "**/*.test.mjs",
    "**/*.test.cjs",
    "**/*.spec.ts",
    "**/*.spec.mts",
    "**/*.spec.cts",
    "**/*.spec.js",
    "**/*.spec.mjs",
    "**/*.spec.cjs",
];

/// Always appended to the ignore patterns.
pub const ALWAYS_IGNORED_PATTERNS: [&str; 4] = [
    "**/node_modules/**",
    "**/.git/**",
    "**/.trigger/**",
    "**/.next/**",
];

/// Directory names never descended into (they can only hold always-ignored files).
const PRUNED_DIRS: [&str; 4] = ["node_modules", ".git", ".trigger", ".next"];

const EXT_GLOB: &str = "{ts,tsx,mts,cts,js,jsx,mjs,cjs}";

/// The search pattern upstream builds for one dir (shown in error messages).
pub(crate) fn search_pattern(dir: &str) -> String {
    if is_dynamic_pattern(dir) {
        format!("{dir}/*.{EXT_GLOB}")
    } else {
        format!("{}/**/*.{EXT_GLOB}", escape_path(dir))
    }
}

pub(crate) fn discover(config: &ResolvedConfig) -> Result<Vec<PathBuf>, ConfigError> {
    let working_dir = &config.working_dir;
    let ignore = build_set(
        config
            .ignore_patterns
            .iter()
            .map(String::as_str)
            .chain(ALWAYS_IGNORED_PATTERNS),
        "ignorePatterns",
        &config.config_file,
    )?;

    let mut found = BTreeSet::new();
    for dir in &config.dirs {
        if is_dynamic_pattern(dir) {
            discover_glob_dir(config, dir, &ignore, &mut found)?;
        } else {
            let root_rel = to_slash(&normalize(Path::new(dir)));
            let root = working_dir.join(&root_rel);
            if !root.is_dir() {
                return Err(ConfigError::DirNotFound {
                    dir: dir.clone(),
                    property: config.dirs_source.property().to_string(),
                    resolved: normalize(&root),
                    config_file: config.config_file.clone(),
                    working_dir: working_dir.clone(),
                });
            }
            walk(&root, &root_rel, None, &mut |rel| {
                if has_task_extension(rel) && !ignore.is_match(rel) {
                    found.insert(rel.to_string());
                }
            });
        }
    }

    if found.is_empty() {
        return Err(ConfigError::NoTriggerFiles {
            working_dir: working_dir.clone(),
            config_file: config.config_file.clone(),
            dirs: config.dirs.clone(),
            patterns: config.dirs.iter().map(|d| search_pattern(d)).collect(),
        });
    }
    Ok(found.into_iter().map(PathBuf::from).collect())
}

/// A dir that is itself a glob: `${dir}/*.{ext}`, not recursive (unless the dir has `**`).
fn discover_glob_dir(
    config: &ResolvedConfig,
    dir: &str,
    ignore: &GlobSet,
    found: &mut BTreeSet<String>,
) -> Result<(), ConfigError> {
    let dir_norm = normalize_glob(dir);
    let pattern = format!("{dir_norm}/*.{EXT_GLOB}");
    let set = build_set(
        std::iter::once(pattern.as_str()),
        config.dirs_source.property(),
        &config.config_file,
    )?;

    let segments: Vec<&str> = dir_norm.split('/').collect();
    let static_len = segments
        .iter()
        .take_while(|s| !is_dynamic_pattern(s))
        .count();
    let root_rel = segments[..static_len].join("/");
    let root = config.working_dir.join(&root_rel);
    if !root.is_dir() {
        return Ok(());
    }
    let max_depth = (!dir_norm.contains("**")).then(|| segments.len() - static_len + 1);
    walk(&root, &root_rel, max_depth, &mut |rel| {
        if set.is_match(rel) && !ignore.is_match(rel) {
            found.insert(rel.to_string());
        }
    });
    Ok(())
}

/// Walks files under `root` (following symlinks, skipping dot entries like
/// tinyglobby's `dot: false`, and never entering `node_modules/.git/.trigger/.next`),
/// calling `visit` with each file's path relative to the working dir.
fn walk(root: &Path, root_rel: &str, max_depth: Option<usize>, visit: &mut dyn FnMut(&str)) {
    let mut walker = WalkDir::new(root).follow_links(true).sort_by_file_name();
    if let Some(d) = max_depth {
        walker = walker.max_depth(d);
    }
    let entries = walker.into_iter().filter_entry(|e| {
        let name = e.file_name().to_string_lossy();
        let hidden = name.starts_with('.');
        let pruned = e.file_type().is_dir() && PRUNED_DIRS.contains(&name.as_ref());
        e.depth() == 0 || !(hidden || pruned)
    });
    // Unreadable entries and symlink loops are skipped, as fdir/tinyglobby do.
    for entry in entries.filter_map(Result::ok) {
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(sub) = entry.path().strip_prefix(root) else {
            continue;
        };
        let sub = to_slash(sub);
        let rel = if root_rel.is_empty() {
            sub
        } else {
            format!("{root_rel}/{sub}")
        };
        visit(&rel);
    }
}

fn has_task_extension(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name.rsplit_once('.')
        .is_some_and(|(stem, ext)| !stem.is_empty() && TASK_FILE_EXTENSIONS.contains(&ext))
}

fn build_set<'p>(
    patterns: impl IntoIterator<Item = &'p str>,
    property: &str,
    config_file: &Path,
) -> Result<GlobSet, ConfigError> {
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        let glob = GlobBuilder::new(&normalize_glob(p))
            .literal_separator(true)
            .build()
            .map_err(|e| ConfigError::InvalidGlob {
                pattern: p.to_string(),
                property: property.to_string(),
                config_file: config_file.to_path_buf(),
                message: e.kind().to_string(),
            })?;
        builder.add(glob);
    }
    builder.build().map_err(|e| ConfigError::InvalidGlob {
        pattern: String::new(),
        property: property.to_string(),
        config_file: config_file.to_path_buf(),
        message: e.to_string(),
    })
}

/// Drops leading `./` and empty/`.` segments so patterns line up with the
/// relative paths we produce (tinyglobby does the same).
fn normalize_glob(p: &str) -> String {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    let mut out = parts.join("/");
    if p.starts_with('/') {
        out.insert(0, '/');
    }
    out
}

fn to_slash(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// tinyglobby's `isDynamicPattern` (picomatch `scan().isGlob || negated`), approximated:
/// unescaped `*`, `?`, `[..]`, `{..}`, an extglob `@( !( +( *( ?(`, or a leading `!`.
pub(crate) fn is_dynamic_pattern(s: &str) -> bool {
    if s.starts_with('!') {
        return true;
    }
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                i += 2;
                continue;
            }
            '*' | '?' => return true,
            '[' if chars[i + 1..].contains(&']') => return true,
            '{' if chars[i + 1..].contains(&'}') => return true,
            '(' if i > 0 && matches!(chars[i - 1], '@' | '!' | '+') => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// tinyglobby's `escapePath`, for display.
fn escape_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '(' | ')' | '[' | ']' | '{' | '}' | '*' | '?' | '|') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_patterns() {
        assert!(is_dynamic_pattern("src/*/trigger"));
        assert!(is_dynamic_pattern("src/**"));
        assert!(is_dynamic_pattern("src/{a,b}"));
        assert!(is_dynamic_pattern("!src"));
        assert!(!is_dynamic_pattern("./src/trigger"));
        assert!(!is_dynamic_pattern("src/(group)/trigger"));
        assert!(!is_dynamic_pattern("src/\\*literal"));
    }

    #[test]
    fn extensions() {
        assert!(has_task_extension("a/b.ts"));
        assert!(has_task_extension("a/b.d.ts"));
        assert!(!has_task_extension("a/b.json"));
        assert!(!has_task_extension("a/.ts"));
    }

    #[test]
    fn patterns_like_upstream() {
        assert_eq!(
            search_pattern("./src/trigger"),
            "./src/trigger/**/*.{ts,tsx,mts,cts,js,jsx,mjs,cjs}"
        );
        assert_eq!(
            search_pattern("src/*/jobs"),
            "src/*/jobs/*.{ts,tsx,mts,cts,js,jsx,mjs,cjs}"
        );
    }
}
