//! Which imports stay external, and at which installed version.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// An external package referenced by the bundle, at its installed version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct External {
    pub name: String,
    pub version: String,
}

/// A package found in `node_modules`.
#[derive(Debug, Clone)]
pub(crate) struct InstalledPackage {
    pub dir: PathBuf,
    pub name: Option<String>,
    pub version: Option<String>,
    pub json: serde_json::Value,
}

/// `@scope/name/sub` → `@scope/name`; `name/sub` → `name`.
pub(crate) fn package_name(specifier: &str) -> &str {
    let mut parts = specifier.splitn(3, '/');
    let first = parts.next().unwrap_or_default();
    if first.starts_with('@') {
        match parts.next() {
            Some(second) => &specifier[..first.len() + 1 + second.len()],
            None => specifier,
        }
    } else {
        first
    }
}

/// A bare specifier names a package: not relative, not absolute, not a virtual
/// module, not a Node builtin.
pub(crate) fn is_bare(specifier: &str) -> bool {
    !(specifier.is_empty()
        || specifier.starts_with('.')
        || specifier.starts_with('/')
        || specifier.starts_with('\0')
        || specifier.starts_with('#')
        || specifier.contains(':')
        || is_builtin(package_name(specifier)))
}

pub(crate) fn is_builtin(name: &str) -> bool {
    const BUILTINS: &[&str] = &[
        "assert",
        "async_hooks",
        "buffer",
        "child_process",
        "cluster",
        "console",
        "constants",
        "crypto",
        "dgram",
        "diagnostics_channel",
        "dns",
        "domain",
        "events",
        "fs",
        "http",
        "http2",
        "https",
        "inspector",
        "module",
        "net",
        "os",
        "path",
        "perf_hooks",
        "process",
        "punycode",
        "querystring",
        "readline",
        "repl",
        "stream",
        "string_decoder",
        "sys",
        "timers",
        "tls",
        "trace_events",
        "tty",
        "url",
        "util",
        "v8",
        "vm",
        "wasi",
        "worker_threads",
        "zlib",
    ];
    BUILTINS.contains(&name)
}

/// Does `specifier` name one of the external packages, or a subpath of one?
pub(crate) fn matches(specifier: &str, names: &[String]) -> bool {
    let pkg = package_name(specifier);
    names.iter().any(|n| n == specifier || n == pkg)
}

/// Reads a package's `package.json`.
pub(crate) fn read_package(dir: &Path) -> Option<InstalledPackage> {
    let text = std::fs::read_to_string(dir.join("package.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(InstalledPackage {
        dir: dir.to_path_buf(),
        name: json.get("name").and_then(|v| v.as_str()).map(String::from),
        version: json
            .get("version")
            .and_then(|v| v.as_str())
            .map(String::from),
        json,
    })
}

const NATIVE_EXTENSIONS: &[&str] = &[
    "wasm", "node", "gyp", "c", "cc", "cpp", "cxx", "h", "hpp", "hxx",
];

fn has_native_extension(path: &str) -> bool {
    expand_braces(path).iter().any(|p| {
        p.rsplit_once('.')
            .is_some_and(|(_, ext)| NATIVE_EXTENSIONS.contains(&ext))
    })
}

/// `a.{c,h}` → `a.c`, `a.h` (one level, enough for `files` globs).
fn expand_braces(s: &str) -> Vec<String> {
    if let (Some(open), Some(close)) = (s.find('{'), s.find('}'))
        && open < close
    {
        return s[open + 1..close]
            .split(',')
            .map(|alt| format!("{}{alt}{}", &s[..open], &s[close + 1..]))
            .collect();
    }
    vec![s.to_string()]
}

/// Why a package must stay external because it ships native code, if it does
/// (upstream HEAD's auto-detection: a `.node`/`.wasm` entry, native files listed
/// in `files`/`main`/`module`/`browser`, or a `binding.gyp`).
pub(crate) fn native_reason(pkg: &InstalledPackage, specifier: &str) -> Option<String> {
    let ext = Path::new(specifier)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    if ext.eq_ignore_ascii_case("node") || ext.eq_ignore_ascii_case("wasm") {
        return Some(format!("it imports the native file {specifier}"));
    }
    if pkg.dir.join("binding.gyp").is_file() {
        return Some("it has a binding.gyp".into());
    }
    for field in ["main", "module", "browser", "files"] {
        let mut values = Vec::new();
        collect_strings(pkg.json.get(field), &mut values);
        if let Some(v) = values.iter().find(|v| has_native_extension(v)) {
            return Some(format!("its package.json `{field}` lists {v}"));
        }
    }
    None
}

fn collect_strings(v: Option<&serde_json::Value>, out: &mut Vec<String>) {
    match v {
        Some(serde_json::Value::String(s)) => out.push(s.clone()),
        Some(serde_json::Value::Array(a)) => a.iter().for_each(|x| collect_strings(Some(x), out)),
        Some(serde_json::Value::Object(o)) => {
            o.values().for_each(|x| collect_strings(Some(x), out));
        }
        _ => {}
    }
}

/// Every installation of each external seen while resolving: name → (depth, dir, version).
pub(crate) type SeenExternals = BTreeMap<String, BTreeSet<(usize, PathBuf, String)>>;

/// Every external the build resolved, each at the installation closest to the
/// project root (deterministic when a package is installed at several versions).
/// Like upstream, this includes externals reached only through `require()` in
/// bundled `CommonJS`: they stay as runtime requires, so the image must install them.
pub(crate) fn chosen(seen: &SeenExternals) -> Vec<External> {
    seen.iter()
        .filter_map(|(name, installs)| {
            installs.iter().next().map(|(_, _, version)| External {
                name: name.clone(),
                version: version.clone(),
            })
        })
        .collect()
}

/// Memoises package lookups across the parallel resolve calls of one build.
#[derive(Debug, Default)]
pub(crate) struct PackageCache {
    by_dir: HashMap<PathBuf, Option<InstalledPackage>>,
}

impl PackageCache {
    pub(crate) fn get(&mut self, dir: &Path) -> Option<InstalledPackage> {
        self.by_dir
            .entry(dir.to_path_buf())
            .or_insert_with(|| read_package(dir))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names() {
        assert_eq!(package_name("lodash/debounce.js"), "lodash");
        assert_eq!(package_name("@scope/pkg/sub/x"), "@scope/pkg");
        assert_eq!(package_name("@scope/pkg"), "@scope/pkg");
        assert_eq!(package_name("react"), "react");
    }

    #[test]
    fn bare_specifiers() {
        assert!(is_bare("lodash"));
        assert!(is_bare("@a/b/c"));
        assert!(!is_bare("./x"));
        assert!(!is_bare("node:fs"));
        assert!(!is_bare("fs/promises"));
        assert!(!is_bare("/abs"));
        assert!(!is_bare("bun:sqlite"));
    }

    #[test]
    fn matching_names() {
        let names = vec!["lodash".to_string(), "@prisma/client".to_string()];
        assert!(matches("lodash", &names));
        assert!(matches("lodash/debounce.js", &names));
        assert!(!matches("lodash-es", &names));
        assert!(matches("@prisma/client/runtime", &names));
        assert!(!matches("@prisma/engines", &names));
    }

    #[test]
    fn native_extension_detection() {
        assert!(has_native_extension("xxhash.linux-x64-gnu.node"));
        assert!(has_native_extension("src/*.{js,cc}"));
        assert!(!has_native_extension("index.js"));
        assert!(!has_native_extension("dist/"));
    }
}
