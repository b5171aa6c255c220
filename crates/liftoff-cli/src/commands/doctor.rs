//! `liftoff doctor`: checks, one line each, that this machine and project can build and deploy —
//! the config, the `@trigger.dev/*` versions, node, the sandbox, the cache directory, and (when
//! asked) the registry and the platform. A failing check prints a one-line hint; the command
//! exits 1 if any check fails. Skipped checks (nothing to check) do not fail.

use std::io::IsTerminal as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Result, bail};
use liftoff_deploy::{ApiClient, ApiClientOptions, ApiError, AuthSource, Profiles, RetryPolicy};
use liftoff_registry::RegistryError;

use crate::DoctorArgs;
use crate::commands::{account, shared};
use crate::output::Output;

/// The oldest Node.js the extension sidecar accepts.
const MIN_NODE_MAJOR: u64 = 18;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Fail,
    Skipped,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Fail => "fail",
            Self::Skipped => "skipped",
        }
    }
}

/// The outcome of one check.
#[derive(Debug)]
struct Check {
    name: &'static str,
    status: Status,
    detail: String,
    hint: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Ok,
            detail: detail.into(),
            hint: None,
        }
    }

    fn skipped(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Skipped,
            detail: detail.into(),
            hint: None,
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Fail,
            detail: one_line(&detail.into()),
            hint: Some(one_line(&hint.into())),
        }
    }
}

/// Multi-line messages on one line.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn run(args: &DoctorArgs, out: &Output) -> Result<()> {
    let project_dir = std::fs::canonicalize(&args.path).ok();
    let checks = vec![
        config(args, project_dir.as_deref()),
        versions(project_dir.as_deref()),
        node(),
        sandbox(),
        cache(args.cache_dir.clone()),
        registry(args, out),
        platform(args),
    ];
    report(&checks, out);
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if failed > 0 {
        bail!(
            "{failed} of {} checks failed",
            checks
                .iter()
                .filter(|c| c.status != Status::Skipped)
                .count()
        );
    }
    Ok(())
}

fn report(checks: &[Check], out: &Output) {
    if out.json() {
        out.result(&serde_json::json!({
            "ok": checks.iter().all(|c| c.status != Status::Fail),
            "checks": checks.iter().map(|c| serde_json::json!({
                "name": c.name,
                "status": c.status.as_str(),
                "detail": c.detail,
                "hint": c.hint,
            })).collect::<Vec<_>>(),
        }));
        return;
    }
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    for check in checks {
        let mark = match (check.status, color) {
            (Status::Ok, true) => "\x1b[32m✔\x1b[0m",
            (Status::Fail, true) => "\x1b[31m✖\x1b[0m",
            (Status::Skipped, true) => "\x1b[2m-\x1b[0m",
            (Status::Ok, false) => "ok  ",
            (Status::Fail, false) => "FAIL",
            (Status::Skipped, false) => "skip",
        };
        out.line(format!("{mark} {:<9} {}", check.name, check.detail));
        if let Some(hint) = &check.hint {
            out.line(format!("  {:<9}  hint: {hint}", ""));
        }
    }
}

/// 1. The config loads (with the `.env` files `process.env` reads, as `deploy` does).
fn config(args: &DoctorArgs, project_dir: Option<&Path>) -> Check {
    const NAME: &str = "config";
    let Some(project_dir) = project_dir else {
        return Check::fail(
            NAME,
            format!("the project path {} does not exist", args.path.display()),
            "pass the project directory: `liftoff doctor path/to/project`",
        );
    };
    let loaded = shared::environment(project_dir, None).and_then(|env| {
        Ok(liftoff_config::load(&liftoff_config::LoadOptions {
            project_dir: project_dir.to_path_buf(),
            config_file: args.config.clone(),
            project_ref: None,
            env,
        })?)
    });
    match loaded {
        Ok(config) => {
            let warnings = match config.warnings.len() {
                0 => String::new(),
                1 => format!("; warning: {}", config.warnings[0]),
                n => format!("; {n} warnings, first: {}", config.warnings[0]),
            };
            Check::ok(
                NAME,
                format!(
                    "{} (project {}){warnings}",
                    config.config_file.display(),
                    config.project
                ),
            )
        }
        Err(e) => Check::fail(NAME, "the config could not be loaded", format!("{e:#}")),
    }
}

/// 2. `trigger.dev` and every `@trigger.dev/*` dependency are one version (the deploy guard).
fn versions(project_dir: Option<&Path>) -> Check {
    const NAME: &str = "versions";
    let Some(project_dir) = project_dir else {
        return Check::skipped(NAME, "no project directory");
    };
    let Some(check) = liftoff_deploy::version_guard::check_project(project_dir) else {
        return Check::skipped(
            NAME,
            "trigger.dev is not installed in the project (node_modules): nothing to compare",
        );
    };
    let cli = &check.cli_version;
    if check.is_ok() {
        return Check::ok(
            NAME,
            format!("trigger.dev {cli} and the @trigger.dev/* packages match"),
        );
    }
    let list = check
        .mismatches
        .iter()
        .map(|d| format!("{}@{}", d.name, d.version))
        .collect::<Vec<_>>()
        .join(", ");
    Check::fail(
        NAME,
        format!("trigger.dev {cli} does not match {list}"),
        format!(
            "pin trigger.dev and every @trigger.dev/* package to one version (e.g. {cli}) and reinstall; in CI `deploy` fails on this, else deploy with --skip-update-check"
        ),
    )
}

/// 3. `node --version` runs (the sidecar that runs custom build extensions uses `node` from PATH).
fn node() -> Check {
    const NAME: &str = "node";
    let hint = format!(
        "install Node.js {MIN_NODE_MAJOR} or newer and put `node` on PATH (custom build extensions run in it)"
    );
    let output = Command::new("node")
        .arg("--version")
        .stdin(Stdio::null())
        .output();
    let output = match output {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            return Check::fail(
                NAME,
                format!(
                    "`node --version` failed ({}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
                hint,
            );
        }
        Err(e) => return Check::fail(NAME, format!("cannot run `node`: {e}"), hint),
    };
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let major = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse::<u64>().ok())
        .unwrap_or(0);
    if major < MIN_NODE_MAJOR {
        return Check::fail(NAME, format!("node {version} is too old"), hint);
    }
    Check::ok(NAME, format!("node {version}"))
}

/// 4. Build steps can be sandboxed (the real probe: an overlay mounted in fresh namespaces).
fn sandbox() -> Check {
    const NAME: &str = "sandbox";
    match liftoff_sandbox::available() {
        Ok(mechanism) => Check::ok(NAME, mechanism.to_string()),
        Err(e) => {
            let message = e.to_string();
            let (detail, hint) = message.split_once("\nfixes: ").unwrap_or((
                message.as_str(),
                "run liftoff as root, or enable unprivileged user namespaces",
            ));
            Check::fail(NAME, detail, hint)
        }
    }
}

/// 5. The cache directory can be created and written to.
fn cache(cache_dir: Option<PathBuf>) -> Check {
    const NAME: &str = "cache";
    let hint = "choose a writable directory with --cache-dir or LIFTOFF_CACHE_DIR";
    let Some(dir) = cache_dir.or_else(liftoff_registry::BlobCache::default_root) else {
        return Check::fail(
            NAME,
            "no cache directory: neither --cache-dir, LIFTOFF_CACHE_DIR, XDG_CACHE_HOME nor HOME is set",
            hint,
        );
    };
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        let mut file = tempfile::Builder::new()
            .prefix(".liftoff-doctor-")
            .tempfile_in(&dir)?;
        file.write_all(b"liftoff doctor\n")?;
        file.as_file().sync_all()?;
        file.close()
    });
    match written {
        Ok(()) => Check::ok(NAME, format!("{} is writable", dir.display())),
        Err(e) => Check::fail(
            NAME,
            format!("cannot write to {}: {e}", dir.display()),
            hint,
        ),
    }
}

/// 6. `--registry` answers `/v2/` and accepts the credentials liftoff would push with.
fn registry(args: &DoctorArgs, out: &Output) -> Check {
    const NAME: &str = "registry";
    let Some(host) = args.registry.as_deref() else {
        return Check::skipped(NAME, "no --registry given");
    };
    let registry_args = crate::RegistryArgs {
        registry_username: args.registry_username.clone(),
        registry_password: args.registry_password.clone(),
        insecure_registry: args.insecure_registry.clone(),
        registry_ca: args.registry_ca.clone(),
        jobs: 1,
    };
    let config = match shared::registry_config(&registry_args, Some(host), out) {
        Ok(c) => c,
        Err(e) => {
            return Check::fail(NAME, "invalid registry settings", format!("{e:#}"));
        }
    };
    match liftoff_registry::check_registry(host, &config) {
        Ok(check) => {
            let auth = check.credentials.map_or_else(
                || "no credentials needed".to_string(),
                |origin| format!("the credentials from {origin} are accepted"),
            );
            Check::ok(
                NAME,
                format!("{} answers at {}/v2/; {auth}", check.registry, check.base),
            )
        }
        Err(RegistryError::Unauthorized {
            registry,
            status,
            message,
            hint,
            ..
        }) => {
            let message = if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            };
            Check::fail(
                NAME,
                format!("{registry} refused the credentials (HTTP {status}{message})"),
                hint,
            )
        }
        Err(e @ RegistryError::Transport { .. }) => Check::fail(
            NAME,
            e.to_string(),
            format!(
                "check that a registry runs at {host} and is reachable from here (proxies; --registry-ca for a private CA, --insecure-registry for plain HTTP)"
            ),
        ),
        Err(e @ RegistryError::InvalidReference { .. }) => Check::fail(
            NAME,
            e.to_string(),
            "give --registry as host[:port], e.g. ghcr.io or localhost:5000",
        ),
        Err(e) => Check::fail(
            NAME,
            e.to_string(),
            format!("check the registry at {host} and the registry settings"),
        ),
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// 7. The platform answers and accepts the token (`TRIGGER_ACCESS_TOKEN`, else the profile's).
///
/// Without any token the check is skipped, unless an API URL was given (then it fails).
fn platform(args: &DoctorArgs) -> Check {
    const NAME: &str = "platform";
    let common = &args.common;
    let login = format!(
        "run `liftoff login --profile {}`, or set TRIGGER_ACCESS_TOKEN (a tr_pat_ token)",
        common.profile
    );
    let profiles = match Profiles::load_default() {
        Ok(p) => p,
        Err(e) => return Check::fail(NAME, "cannot read the login profiles", format!("{e:#}")),
    };
    let default_api = common
        .api_url
        .as_deref()
        .unwrap_or(account::DEFAULT_API_URL);
    let auth = match liftoff_deploy::resolve_auth(&profiles, &common.profile, default_api, &env_var)
    {
        Ok(Some(auth)) => auth,
        Ok(None) => {
            let detail = format!(
                "no TRIGGER_ACCESS_TOKEN and no token in the \"{}\" profile ({})",
                common.profile,
                profiles.path().display()
            );
            return if let Some(url) = &common.api_url {
                Check::fail(
                    NAME,
                    format!("{detail}, but an API URL ({url}) is given"),
                    login,
                )
            } else {
                Check::skipped(NAME, detail)
            };
        }
        Err(e) => return Check::fail(NAME, e.to_string(), login),
    };
    let source = match &auth.source {
        AuthSource::Environment => "TRIGGER_ACCESS_TOKEN".to_string(),
        AuthSource::Profile(name) => format!("the \"{name}\" profile"),
    };
    let options = ApiClientOptions {
        retry: RetryPolicy {
            max_attempts: 2,
            ..RetryPolicy::default()
        },
        request_timeout: std::time::Duration::from_secs(20),
        ..ApiClientOptions::default()
    };
    let client = match ApiClient::new(&auth.api_url, Some(auth.access_token), options) {
        Ok(c) => c,
        Err(e) => {
            return Check::fail(
                NAME,
                e.to_string(),
                "check the API URL (--api-url, TRIGGER_API_URL or the profile's apiUrl)",
            );
        }
    };
    match client.whoami() {
        Ok(me) => Check::ok(
            NAME,
            format!(
                "{} accepts the token from {source} ({})",
                auth.api_url, me.email
            ),
        ),
        Err(
            e @ ApiError::Status {
                status: 401 | 403, ..
            },
        ) => Check::fail(
            NAME,
            format!("{} rejected the token from {source}: {e}", auth.api_url),
            format!("the token is invalid, expired or revoked: {login}"),
        ),
        Err(e @ ApiError::Connection { .. }) => Check::fail(
            NAME,
            format!("cannot reach {}", auth.api_url),
            e.to_string(),
        ),
        Err(e) => Check::fail(
            NAME,
            format!(
                "{} did not confirm the token from {source}: {e}",
                auth.api_url
            ),
            "check that the API URL (--api-url, TRIGGER_API_URL or the profile's apiUrl) is a Trigger.dev v3 server",
        ),
    }
}
