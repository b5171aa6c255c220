//! The `@trigger.dev/*` version guard upstream runs before a deploy (`updateTriggerPackages`,
//! CLI 3.3.17): every `@trigger.dev/*` dependency must be the CLI's version; in CI (no TTY) a
//! mismatch aborts with [`VersionCheck::ci_error_message`].

use serde_json::Value;
use std::cmp::Ordering;
use std::path::Path;

/// Which `package.json` section a dependency came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DependencyKind {
    Dependencies,
    DevDependencies,
}

/// A `@trigger.dev/*` dependency: `version` is the installed version when it could be
/// resolved, else the declared range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerDependency {
    pub kind: DependencyKind,
    pub name: String,
    pub version: String,
}

/// The outcome of [`check_versions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionCheck {
    pub cli_version: String,
    pub mismatches: Vec<TriggerDependency>,
    /// Some installed package is newer than the CLI (upstream then demands a CLI update).
    pub is_downgrade: bool,
}

impl VersionCheck {
    pub fn is_ok(&self) -> bool {
        self.mismatches.is_empty()
    }

    /// Upstream's CI message, byte for byte (print it followed by a newline, as
    /// `console.log` does, after the outro `Deploy failed`).
    pub fn ci_error_message(&self) -> String {
        let list = self
            .mismatches
            .iter()
            .map(|d| format!("- {}@{}", d.name, d.version))
            .collect::<Vec<_>>()
            .join("\n");
        format!(
            "ERROR: Version mismatch detected while running in CI. This won't end well. Aborting.\n  \n  \
             Please run the dev command locally and check that your CLI version matches the one printed below. Additionally, all `@trigger.dev/*` packages also need to match this version.\n  \n  \
             If your local CLI version doesn't match the one below, you may want to pin the CLI version in this CI step. To do that, just replace `trigger.dev@beta` with `trigger.dev@<FULL_VERSION>`, for example: `npx trigger.dev@3.0.0-beta.17 deploy`\n  \n  \
             CLI version: {}\n  \n  \
             Current package versions that don't match the CLI:\n  \
             {list}\n",
            self.cli_version
        )
    }
}

/// Whether the check runs at all: upstream skips it for `0.0.0*` CLI builds unless
/// `ENABLE_PRERELEASE_UPDATE_CHECKS=1`.
pub fn update_check_enabled(cli_version: &str, enable_prerelease_checks: Option<&str>) -> bool {
    !cli_version.starts_with("0.0.0") || enable_prerelease_checks == Some("1")
}

/// The `@trigger.dev/*` entries of `dependencies` then `devDependencies`, skipping `workspace*`
/// versions and `@trigger.dev/companyicons`; `installed(name)` supplies the installed version
/// (see [`installed_version`]).
pub fn trigger_dependencies(
    package_json: &Value,
    installed: &dyn Fn(&str) -> Option<String>,
) -> Vec<TriggerDependency> {
    let mut deps = Vec::new();
    for (key, kind) in [
        ("dependencies", DependencyKind::Dependencies),
        ("devDependencies", DependencyKind::DevDependencies),
    ] {
        let Some(section) = package_json.get(key).and_then(Value::as_object) else {
            continue;
        };
        for (name, version) in section {
            let Some(version) = version.as_str().filter(|v| !v.is_empty()) else {
                continue;
            };
            if version.starts_with("workspace")
                || !name.starts_with("@trigger.dev")
                || name == "@trigger.dev/companyicons"
            {
                continue;
            }
            deps.push(TriggerDependency {
                kind,
                name: name.clone(),
                version: installed(name).unwrap_or_else(|| version.to_string()),
            });
        }
    }
    deps
}

/// Compares every `@trigger.dev/*` dependency with `cli_version`. Versions equal to it, or
/// starting with `https://pkg.pr.new` or `0.0.0`, pass.
pub fn check_versions(
    package_json: &Value,
    cli_version: &str,
    installed: &dyn Fn(&str) -> Option<String>,
) -> VersionCheck {
    let mismatches: Vec<TriggerDependency> = trigger_dependencies(package_json, installed)
        .into_iter()
        .filter(|d| {
            !(d.version == cli_version
                || d.version.starts_with("https://pkg.pr.new")
                || d.version.starts_with("0.0.0"))
        })
        .collect();
    let cli = Version::parse(cli_version);
    let is_downgrade = cli.as_ref().is_some_and(|cli| {
        mismatches
            .iter()
            .filter_map(|d| min_version(&d.version))
            .any(|v| v.cmp_precedence(cli) == Ordering::Greater)
    });
    VersionCheck {
        cli_version: cli_version.to_string(),
        mismatches,
        is_downgrade,
    }
}

/// The project's check: its `package.json` dependencies against the installed `trigger.dev`;
/// `None` when `trigger.dev` is not installed (nothing to compare with).
pub fn check_project(project_dir: &Path) -> Option<VersionCheck> {
    let cli = installed_version(project_dir, "trigger.dev")?;
    let package_json: Value = std::fs::read(project_dir.join("package.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    Some(check_versions(&package_json, &cli, &|name| {
        installed_version(project_dir, name)
    }))
}

/// The version in `node_modules/<name>/package.json`, looking in `project_dir` and its
/// ancestors (node's resolution, enough for hoisted and workspace layouts).
pub fn installed_version(project_dir: &Path, name: &str) -> Option<String> {
    if name.split('/').any(|part| part == ".." || part.is_empty()) {
        return None;
    }
    for dir in project_dir.ancestors() {
        let pj = dir.join("node_modules").join(name).join("package.json");
        if let Ok(text) = std::fs::read_to_string(&pj) {
            return serde_json::from_str::<Value>(&text)
                .ok()?
                .get("version")?
                .as_str()
                .map(str::to_string);
        }
    }
    None
}

/// A semantic version (build metadata ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Vec<String>,
}

impl Version {
    fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let s = s.strip_prefix('v').unwrap_or(s);
        let s = s.split('+').next()?;
        let (core, pre) = match s.split_once('-') {
            Some((c, p)) => (c, p.split('.').map(str::to_string).collect()),
            None => (s, Vec::new()),
        };
        let mut it = core.split('.');
        let v = Self {
            major: it.next()?.parse().ok()?,
            minor: it.next()?.parse().ok()?,
            patch: it.next()?.parse().ok()?,
            pre,
        };
        (it.next().is_none()).then_some(v)
    }

    fn cmp_precedence(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => cmp_pre(&self.pre, &other.pre),
            })
    }
}

fn cmp_pre(a: &[String], b: &[String]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(m), Ok(n)) => m.cmp(&n),
            (Ok(_), Err(_)) => Ordering::Less,
            (Err(_), Ok(_)) => Ordering::Greater,
            (Err(_), Err(_)) => x.cmp(y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.len().cmp(&b.len())
}

/// node-semver's `minVersion` for the common range forms (`1.2.3`, `^`, `~`, `>=`, `>`,
/// `=`, `<`, `<=`, `x`-ranges, hyphen ranges, `||`); `None` when it cannot tell.
fn min_version(range: &str) -> Option<Version> {
    range
        .split("||")
        .map(|set| min_of_set(set.trim()))
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .min_by(Version::cmp_precedence)
}

fn min_of_set(set: &str) -> Option<Version> {
    let zero = Version {
        major: 0,
        minor: 0,
        patch: 0,
        pre: Vec::new(),
    };
    if let Some((lo, _hi)) = set.split_once(" - ") {
        return partial(lo.trim());
    }
    let mut min = zero;
    for comp in set.split_whitespace() {
        let (op, rest) = ["<=", ">=", "<", ">", "=", "^", "~"]
            .iter()
            .find_map(|op| comp.strip_prefix(op).map(|r| (*op, r.trim())))
            .unwrap_or(("", comp));
        let candidate = match op {
            "<" | "<=" => {
                partial(rest)?;
                continue;
            }
            ">" => {
                let v = partial(rest)?;
                if v.pre.is_empty() {
                    Version {
                        patch: v.patch + 1,
                        ..v
                    }
                } else {
                    let mut pre = v.pre.clone();
                    pre.push("0".into());
                    Version { pre, ..v }
                }
            }
            _ => partial(rest)?,
        };
        if candidate.cmp_precedence(&min) == Ordering::Greater {
            min = candidate;
        }
    }
    Some(min)
}

/// `1`, `1.2`, `1.2.x`, `*`, `1.2.3-beta.1` → the lowest version they allow.
fn partial(s: &str) -> Option<Version> {
    let s = s.strip_prefix('v').unwrap_or(s);
    if s.is_empty() || s == "*" || s.eq_ignore_ascii_case("x") {
        return Version::parse("0.0.0");
    }
    if let Some(v) = Version::parse(s) {
        return Some(v);
    }
    let mut nums = [0u64; 3];
    for (i, part) in s.split('.').enumerate() {
        if i >= 3 {
            return None;
        }
        if part == "*" || part.eq_ignore_ascii_case("x") {
            break;
        }
        nums[i] = part.parse().ok()?;
    }
    Some(Version {
        major: nums[0],
        minor: nums[1],
        patch: nums[2],
        pre: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn collects_and_filters_dependencies() {
        let pj = json!({
            "dependencies": {"@trigger.dev/sdk": "3.3.17", "zod": "3", "@trigger.dev/companyicons": "1.0.0", "@trigger.dev/react": "workspace:*"},
            "devDependencies": {"@trigger.dev/build": "^3.3.0", "@trigger.dev/empty": ""}
        });
        let deps = trigger_dependencies(&pj, &none);
        assert_eq!(
            deps.iter()
                .map(|d| (d.name.as_str(), d.version.as_str(), d.kind))
                .collect::<Vec<_>>(),
            [
                ("@trigger.dev/sdk", "3.3.17", DependencyKind::Dependencies),
                (
                    "@trigger.dev/build",
                    "^3.3.0",
                    DependencyKind::DevDependencies
                )
            ]
        );
        let installed = |n: &str| (n == "@trigger.dev/build").then(|| "3.3.17".to_string());
        assert!(check_versions(&pj, "3.3.17", &installed).is_ok());
    }

    #[test]
    fn mismatch_and_downgrade() {
        let pj = json!({"dependencies": {"@trigger.dev/sdk": "3.3.16", "@trigger.dev/build": "https://pkg.pr.new/x", "@trigger.dev/core": "0.0.0-prerelease"}});
        let c = check_versions(&pj, "3.3.17", &none);
        assert_eq!(c.mismatches.len(), 1);
        assert!(!c.is_downgrade);
        let pj = json!({"dependencies": {"@trigger.dev/sdk": "^4.0.0"}});
        assert!(check_versions(&pj, "3.3.17", &none).is_downgrade);
        let pj = json!({"dependencies": {"@trigger.dev/sdk": "latest"}});
        let c = check_versions(&pj, "3.3.17", &none);
        assert!(!c.is_ok());
        assert!(!c.is_downgrade);
        assert!(!update_check_enabled("0.0.0-dev", None));
        assert!(update_check_enabled("0.0.0-dev", Some("1")));
        assert!(update_check_enabled("3.3.17", None));
    }

    #[test]
    fn ci_message_is_upstreams() {
        let pj = json!({"dependencies": {"@trigger.dev/sdk": "3.3.16"}, "devDependencies": {"@trigger.dev/build": "3.3.15"}});
        let c = check_versions(&pj, "3.3.17", &none);
        assert_eq!(
            c.ci_error_message(),
            "ERROR: Version mismatch detected while running in CI. This won't end well. Aborting.\n  \n  Please run the dev command locally and check that your CLI version matches the one printed below. Additionally, all `@trigger.dev/*` packages also need to match this version.\n  \n  If your local CLI version doesn't match the one below, you may want to pin the CLI version in this CI step. To do that, just replace `trigger.dev@beta` with `trigger.dev@<FULL_VERSION>`, for example: `npx trigger.dev@3.0.0-beta.17 deploy`\n  \n  CLI version: 3.3.17\n  \n  Current package versions that don't match the CLI:\n  - @trigger.dev/sdk@3.3.16\n- @trigger.dev/build@3.3.15\n"
        );
    }

    #[test]
    fn min_versions_like_node_semver() {
        let mv = |r: &str| {
            min_version(r).map(|v| {
                let base = format!("{}.{}.{}", v.major, v.minor, v.patch);
                if v.pre.is_empty() {
                    base
                } else {
                    format!("{base}-{}", v.pre.join("."))
                }
            })
        };
        assert_eq!(mv("3.3.17").as_deref(), Some("3.3.17"));
        assert_eq!(mv("^3.3.0").as_deref(), Some("3.3.0"));
        assert_eq!(mv("~3.3").as_deref(), Some("3.3.0"));
        assert_eq!(mv(">=3.1.0 <4").as_deref(), Some("3.1.0"));
        assert_eq!(mv(">3.1.0").as_deref(), Some("3.1.1"));
        assert_eq!(mv("3.x").as_deref(), Some("3.0.0"));
        assert_eq!(mv("*").as_deref(), Some("0.0.0"));
        assert_eq!(mv("<4.0.0").as_deref(), Some("0.0.0"));
        assert_eq!(mv("^4.0.0 || ^3.2.0").as_deref(), Some("3.2.0"));
        assert_eq!(mv("3.0.0 - 3.5.0").as_deref(), Some("3.0.0"));
        assert_eq!(mv("4.0.0-beta.2").as_deref(), Some("4.0.0-beta.2"));
        assert_eq!(mv("latest"), None);
        let v = |s: &str| Version::parse(s).unwrap();
        assert_eq!(v("1.0.0-alpha").cmp_precedence(&v("1.0.0")), Ordering::Less);
        assert_eq!(
            v("1.0.0-alpha.2").cmp_precedence(&v("1.0.0-alpha.10")),
            Ordering::Less
        );
        assert_eq!(
            v("1.0.0-alpha.beta").cmp_precedence(&v("1.0.0-alpha.1")),
            Ordering::Greater
        );
        assert_eq!(
            v("1.0.0+build").cmp_precedence(&v("1.0.0")),
            Ordering::Equal
        );
    }

    #[test]
    fn installed_version_walks_up() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("node_modules/@trigger.dev/sdk");
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(
            pkg.join("package.json"),
            r#"{"name":"@trigger.dev/sdk","version":"3.3.17"}"#,
        )
        .unwrap();
        let project = dir.path().join("apps/jobs");
        std::fs::create_dir_all(&project).unwrap();
        assert_eq!(
            installed_version(&project, "@trigger.dev/sdk").as_deref(),
            Some("3.3.17")
        );
        assert_eq!(installed_version(&project, "@trigger.dev/build"), None);
        assert_eq!(installed_version(&project, "../etc"), None);
    }
}
