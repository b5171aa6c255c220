//! Deploy links and GitHub Actions outputs (`$GITHUB_OUTPUT`) and environment (`$GITHUB_ENV`).
//!
//! Upstream writes `key=value` lines with no final newline (a value with a newline breaks the
//! file). This writes the multiline-safe form `@actions/core` uses,
//! `name<<ghadelimiter_<uuid>\nvalue\nghadelimiter_<uuid>\n`, one block per entry.

use crate::error::OutputError;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::Path;

/// `${dashboardUrl}/projects/v3/${projectRef}/deployments/${shortCode}`.
pub fn deployment_url(dashboard_url: &str, project_ref: &str, short_code: &str) -> String {
    format!(
        "{}/projects/v3/{project_ref}/deployments/{short_code}",
        dashboard_url.trim_end_matches('/')
    )
}

/// `${dashboardUrl}/projects/v3/${projectRef}/test?environment=<prod|stg>`.
pub fn test_url(dashboard_url: &str, project_ref: &str, env: &str) -> String {
    let slug = if env == "prod" { "prod" } else { "stg" };
    format!(
        "{}/projects/v3/{project_ref}/test?environment={slug}",
        dashboard_url.trim_end_matches('/')
    )
}

/// The values a successful deploy publishes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeployOutputs {
    pub version: String,
    pub short_code: String,
    pub deployment_url: String,
    pub test_url: String,
    /// `--skip-promotion` was given.
    pub needs_promotion: bool,
    /// The image reference sent to finalize.
    pub image_reference: String,
    /// `sha256:…`, when known.
    pub image_digest: Option<String>,
}

impl DeployOutputs {
    /// Step outputs, upstream's six in upstream's order, then `imageReference` and
    /// `imageDigest` (empty when unknown).
    pub fn output_pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("deploymentVersion", self.version.clone()),
            ("workerVersion", self.version.clone()),
            ("deploymentShortCode", self.short_code.clone()),
            ("deploymentUrl", self.deployment_url.clone()),
            ("testUrl", self.test_url.clone()),
            ("needsPromotion", self.needs_promotion.to_string()),
            ("imageReference", self.image_reference.clone()),
            ("imageDigest", self.image_digest.clone().unwrap_or_default()),
        ]
    }

    /// Environment variables, upstream's five in upstream's order, then
    /// `TRIGGER_IMAGE_REFERENCE` and `TRIGGER_IMAGE_DIGEST`.
    pub fn env_pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TRIGGER_DEPLOYMENT_VERSION", self.version.clone()),
            ("TRIGGER_VERSION", self.version.clone()),
            ("TRIGGER_DEPLOYMENT_SHORT_CODE", self.short_code.clone()),
            ("TRIGGER_DEPLOYMENT_URL", self.deployment_url.clone()),
            ("TRIGGER_TEST_URL", self.test_url.clone()),
            ("TRIGGER_IMAGE_REFERENCE", self.image_reference.clone()),
            (
                "TRIGGER_IMAGE_DIGEST",
                self.image_digest.clone().unwrap_or_default(),
            ),
        ]
    }
}

/// Appends the outputs to `github_output` and the environment variables to `github_env`
/// (each when given; pass `std::env::var_os("GITHUB_OUTPUT")` / `GITHUB_ENV`).
pub fn write_github_outputs(
    outputs: &DeployOutputs,
    github_output: Option<&Path>,
    github_env: Option<&Path>,
) -> Result<(), OutputError> {
    if let Some(path) = github_output {
        append_file_commands(path, "GITHUB_OUTPUT", &outputs.output_pairs())?;
    }
    if let Some(path) = github_env {
        append_file_commands(path, "GITHUB_ENV", &outputs.env_pairs())?;
    }
    Ok(())
}

/// Appends `pairs` to a GitHub file-command file in the delimiter form.
pub fn append_file_commands<K: AsRef<str>, V: AsRef<str>>(
    path: &Path,
    variable: &'static str,
    pairs: &[(K, V)],
) -> Result<(), OutputError> {
    let text = format_file_commands(pairs, &random_delimiter)?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| OutputError::Io {
            variable,
            path: path.to_path_buf(),
            source,
        })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|source| OutputError::Io {
            variable,
            path: path.to_path_buf(),
            source,
        })
}

/// The file-command text for `pairs`, with delimiters from `delimiter`.
pub fn format_file_commands<K: AsRef<str>, V: AsRef<str>>(
    pairs: &[(K, V)],
    delimiter: &dyn Fn() -> String,
) -> Result<String, OutputError> {
    let mut out = String::new();
    for (name, value) in pairs {
        let (name, value) = (name.as_ref(), value.as_ref());
        if name.is_empty() || name.contains(['\n', '\r', '=']) {
            return Err(OutputError::InvalidName {
                name: name.to_string(),
            });
        }
        let delim = delimiter();
        if name.contains(&delim) || value.contains(&delim) {
            return Err(OutputError::DelimiterCollision {
                name: name.to_string(),
            });
        }
        let _ = write!(out, "{name}<<{delim}\n{value}\n{delim}\n");
    }
    Ok(out)
}

/// `ghadelimiter_` + a random UUID-shaped string (what `@actions/core` uses).
pub fn random_delimiter() -> String {
    let a = random_u64();
    let b = random_u64();
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "ghadelimiter_{}-{}-4{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn random_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DeployOutputs {
        DeployOutputs {
            version: "20250228.1".into(),
            short_code: "ab12cd34".into(),
            deployment_url: deployment_url("http://localhost:3030/", "proj_x", "ab12cd34"),
            test_url: test_url("http://localhost:3030", "proj_x", "staging"),
            needs_promotion: true,
            image_reference: "docker.io/me/proj_x:20250228.1.stg@sha256:abc".into(),
            image_digest: Some("sha256:abc".into()),
        }
    }

    #[test]
    fn links() {
        let o = sample();
        assert_eq!(
            o.deployment_url,
            "http://localhost:3030/projects/v3/proj_x/deployments/ab12cd34"
        );
        assert_eq!(
            o.test_url,
            "http://localhost:3030/projects/v3/proj_x/test?environment=stg"
        );
        assert_eq!(
            test_url("https://cloud.trigger.dev", "p", "prod"),
            "https://cloud.trigger.dev/projects/v3/p/test?environment=prod"
        );
    }

    #[test]
    fn exact_format() {
        let n = std::cell::Cell::new(0);
        let delim = || {
            n.set(n.get() + 1);
            format!("ghadelimiter_{}", n.get())
        };
        let text = format_file_commands(&sample().output_pairs(), &delim).unwrap();
        assert_eq!(
            text,
            "deploymentVersion<<ghadelimiter_1\n20250228.1\nghadelimiter_1\n\
             workerVersion<<ghadelimiter_2\n20250228.1\nghadelimiter_2\n\
             deploymentShortCode<<ghadelimiter_3\nab12cd34\nghadelimiter_3\n\
             deploymentUrl<<ghadelimiter_4\nhttp://localhost:3030/projects/v3/proj_x/deployments/ab12cd34\nghadelimiter_4\n\
             testUrl<<ghadelimiter_5\nhttp://localhost:3030/projects/v3/proj_x/test?environment=stg\nghadelimiter_5\n\
             needsPromotion<<ghadelimiter_6\ntrue\nghadelimiter_6\n\
             imageReference<<ghadelimiter_7\ndocker.io/me/proj_x:20250228.1.stg@sha256:abc\nghadelimiter_7\n\
             imageDigest<<ghadelimiter_8\nsha256:abc\nghadelimiter_8\n"
        );
        let env: Vec<&str> = sample().env_pairs().iter().map(|(k, _)| *k).collect();
        assert_eq!(
            env,
            [
                "TRIGGER_DEPLOYMENT_VERSION",
                "TRIGGER_VERSION",
                "TRIGGER_DEPLOYMENT_SHORT_CODE",
                "TRIGGER_DEPLOYMENT_URL",
                "TRIGGER_TEST_URL",
                "TRIGGER_IMAGE_REFERENCE",
                "TRIGGER_IMAGE_DIGEST"
            ]
        );
    }

    #[test]
    fn multiline_values_and_bad_names() {
        let d = || "D".to_string();
        assert_eq!(
            format_file_commands(&[("a", "x\ny")], &d).unwrap(),
            "a<<D\nx\ny\nD\n"
        );
        assert!(matches!(
            format_file_commands(&[("a", "xDy")], &d),
            Err(OutputError::DelimiterCollision { .. })
        ));
        assert!(format_file_commands(&[("a\nb", "x")], &d).is_err());
        assert!(format_file_commands(&[("", "x")], &d).is_err());
    }

    #[test]
    fn appends_to_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("output");
        let env = dir.path().join("env");
        std::fs::write(&out, "previous=1\n").unwrap();
        write_github_outputs(&sample(), Some(&out), Some(&env)).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.starts_with("previous=1\ndeploymentVersion<<ghadelimiter_"));
        assert!(text.ends_with('\n'));
        assert_eq!(text.matches("<<ghadelimiter_").count(), 8);
        let env_text = std::fs::read_to_string(&env).unwrap();
        assert!(env_text.starts_with("TRIGGER_DEPLOYMENT_VERSION<<ghadelimiter_"));
        assert!(env_text.contains("\nTRIGGER_TEST_URL<<"));
        // Each block's delimiter is unique.
        let d1 = random_delimiter();
        assert_ne!(d1, random_delimiter());
        assert_eq!(d1.len(), "ghadelimiter_".len() + 36);
        // Missing directory: an actionable error naming the variable.
        let e = write_github_outputs(&sample(), Some(&dir.path().join("no/such")), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("GITHUB_OUTPUT"), "{e}");
    }
}
