use std::fmt::Write as _;
use std::path::PathBuf;

/// Everything that can go wrong while resolving or fetching an image.
///
/// Every variant names what it was working on (registry, repository, digest, file), and the
/// authentication variants say how to fix the problem. Credentials and tokens never appear in
/// these messages.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    #[error("invalid image reference `{input}`: {reason}")]
    InvalidReference { input: String, reason: String },

    #[error("invalid {setting}: {message}")]
    InvalidConfig { setting: String, message: String },

    #[error("could not {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("could not reach {registry} ({method} {url}): {message}")]
    Transport {
        registry: String,
        method: &'static str,
        url: String,
        message: String,
        /// Whether trying again may help (connection refused or reset, timeouts), as opposed to
        /// failures that will repeat (TLS verification, unknown host).
        retryable: bool,
    },

    #[error(
        "{registry} refused access to {repository} (HTTP {status}{}). {hint}",
        server_message(message)
    )]
    Unauthorized {
        registry: String,
        repository: String,
        status: u16,
        message: String,
        hint: String,
    },

    #[error(
        "{registry}: manifest `{reference}` not found in {repository}{}. Check the tag or digest (and the repository name)",
        server_message(message)
    )]
    ManifestNotFound {
        registry: String,
        repository: String,
        reference: String,
        message: String,
    },

    #[error(
        "{registry}: {method} {url} answered HTTP {status}{}",
        server_message(message)
    )]
    Status {
        registry: String,
        method: &'static str,
        url: String,
        status: u16,
        message: String,
    },

    #[error(
        "{source_name}: {what} should have digest {expected} but the content has digest {actual}; refusing to use it (the content was changed, or the tag/mirror serves something else)"
    )]
    DigestMismatch {
        source_name: String,
        what: String,
        expected: String,
        actual: String,
    },

    #[error("{source_name}: blob {digest} should be {expected} bytes but {actual} bytes arrived")]
    SizeMismatch {
        source_name: String,
        digest: String,
        expected: u64,
        /// A number, or `more than N` when the transfer was cut short for being too long.
        actual: String,
    },

    #[error("unsupported digest `{digest}` (liftoff verifies sha256 and sha512 digests)")]
    UnsupportedDigest { digest: String },

    #[error(
        "{source_name}: {what} has media type `{media_type}`, which liftoff cannot use{}",
        hint_suffix(hint)
    )]
    UnsupportedMediaType {
        source_name: String,
        what: String,
        media_type: String,
        hint: String,
    },

    #[error("{source_name}: manifest {digest} is invalid: {message}")]
    InvalidManifest {
        source_name: String,
        digest: String,
        message: String,
    },

    #[error(
        "{source_name} has no image for platform {wanted}; available platforms: {}",
        if available.is_empty() { "none".to_string() } else { available.join(", ") }
    )]
    PlatformNotFound {
        source_name: String,
        wanted: String,
        available: Vec<String>,
    },

    /// The registry answered in a way the protocol does not allow (or liftoff refuses to
    /// follow, like an upload redirected into a private network).
    #[error("{registry}: {message}")]
    Protocol { registry: String, message: String },

    #[error("OCI layout {}: {message}", path.display())]
    Layout { path: PathBuf, message: String },

    #[error("could not pull {reference}:{}", attempts_list(attempts))]
    AllEndpointsFailed {
        reference: String,
        /// `(endpoint, error)`, mirrors first, the registry itself last.
        attempts: Vec<(String, RegistryError)>,
    },
}

fn server_message(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

fn hint_suffix(hint: &str) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!(". {hint}")
    }
}

fn attempts_list(attempts: &[(String, RegistryError)]) -> String {
    let mut out = String::new();
    for (endpoint, error) in attempts {
        let error = error.to_string();
        // Most errors start by naming their endpoint already.
        if error.starts_with(endpoint.as_str()) || error.contains(&format!(" {endpoint} ")) {
            let _ = write!(out, "\n  - {error}");
        } else {
            let _ = write!(out, "\n  - {endpoint}: {error}");
        }
    }
    out
}

impl RegistryError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
