//! Errors of the platform client. Messages name what failed and how to fix it; they never
//! contain a token.

use std::path::PathBuf;

/// A failed platform API call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The server answered with a non-success status. `message` is formatted as upstream's CLI
    /// does: the JSON `error` string in quotes (`404 "Deployment not found"`), the raw body when
    /// it is not JSON, or `status code (no body)`.
    #[error("{status} {message} ({method} {path}){}", hint_suffix(hint.as_deref()))]
    Status {
        status: u16,
        message: String,
        method: &'static str,
        path: String,
        hint: Option<String>,
    },

    /// No answer from the server after all attempts.
    #[error(
        "Connection error. Could not reach {url} after {attempts} attempt(s): {cause}. Check the API URL (--api-url, TRIGGER_API_URL or the profile's apiUrl) and that the server is running"
    )]
    Connection {
        url: String,
        cause: String,
        attempts: u32,
    },

    /// A success status with a body that does not have the expected shape.
    #[error(
        "{method} {path}: unexpected response from the server ({detail}). Is the API URL a Trigger.dev v3 server?"
    )]
    InvalidResponse {
        method: &'static str,
        path: String,
        detail: String,
    },

    #[error("invalid API URL `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },

    #[error("could not use CA certificate file {}: {reason}", path.display())]
    CaCertificate { path: PathBuf, reason: String },

    #[error(
        "{method} {path} needs an access token; run `liftoff login` or set TRIGGER_ACCESS_TOKEN"
    )]
    MissingToken { method: &'static str, path: String },

    /// The finalize stream sent `event: error`.
    #[error("finalize failed: {message}")]
    FinalizeFailed { message: String },

    /// The finalize stream closed without `complete` or `error`.
    #[error(
        "the finalize stream for deployment {deployment_id} ended before the server reported the outcome{}; check the deployment's status in the dashboard and retry the deploy",
        cause.as_deref().map(|c| format!(" ({c})")).unwrap_or_default()
    )]
    FinalizeStreamEnded {
        deployment_id: String,
        /// The read error, when the connection broke rather than closed.
        cause: Option<String>,
    },

    /// The finalize stream was silent for too long (the server pings every 10 s).
    #[error(
        "no data from the finalize stream for deployment {deployment_id} within {seconds} s (the server pings every 10 s); a proxy may be buffering the event stream: {cause}"
    )]
    FinalizeStreamTimeout {
        deployment_id: String,
        seconds: u64,
        cause: String,
    },

    /// The device login was not completed in the browser in time.
    #[error(
        "login was not completed within {seconds} s; run `liftoff login` again and open the URL it prints, or set TRIGGER_ACCESS_TOKEN to a personal access token"
    )]
    LoginTimedOut { seconds: u64 },
}

fn hint_suffix(hint: Option<&str>) -> String {
    hint.map(|h| format!("; {h}")).unwrap_or_default()
}

impl ApiError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The message as upstream's CLI shows it: `404 "Deployment not found"`, `Connection error.`
    /// or the plain text of other errors.
    pub fn upstream_message(&self) -> String {
        match self {
            Self::Status {
                status, message, ..
            } => format!("{status} {message}"),
            Self::Connection { .. } => "Connection error.".to_string(),
            Self::FinalizeFailed { message } => message.clone(),
            other => other.to_string(),
        }
    }

    /// Whether the server reported a `404`.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

/// Reading or writing the profile file, or resolving credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    #[error(
        "cannot find the config directory: neither XDG_CONFIG_HOME nor {home_var} is set; set XDG_CONFIG_HOME"
    )]
    NoConfigDir { home_var: &'static str },

    #[error("could not {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "the profile file {} is not valid JSON ({reason}); fix it or delete it and run `liftoff login` again",
        path.display()
    )]
    Corrupt { path: PathBuf, reason: String },

    /// Upstream's `NotPersonalAccessTokenError`, word for word.
    #[error(
        "Your TRIGGER_ACCESS_TOKEN is not a Personal Access Token, they start with 'tr_pat_'. You can generate one here: https://cloud.trigger.dev/account/tokens"
    )]
    NotPersonalAccessToken,
}

/// Writing GitHub Actions outputs or environment files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    #[error("could not append to {} ({variable}): {source}", path.display())]
    Io {
        variable: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "invalid GitHub Actions output name `{name}`: names must be non-empty and contain no newline or `=`"
    )]
    InvalidName { name: String },

    #[error("the value of `{name}` contains the generated delimiter; retry")]
    DelimiterCollision { name: String },
}
