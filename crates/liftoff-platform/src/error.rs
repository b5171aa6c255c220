//! Errors of the library API (starting, seeding, test controls).

use std::path::PathBuf;

/// What can go wrong when starting or driving a [`crate::Platform`].
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("cannot open the database {path}: {source}")]
    OpenDatabase {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("cannot bind the HTTP server to {addr}: {message}")]
    Bind { addr: String, message: String },
    #[error("invalid seed: {0}")]
    InvalidSeed(String),
    #[error("unknown authorization code")]
    UnknownAuthorizationCode,
    #[error("the authorization code has expired")]
    AuthorizationCodeExpired,
    #[error("the authorization code was already approved")]
    AuthorizationCodeAlreadyApproved,
    #[error("cannot serialise the state: {0}")]
    Json(#[from] serde_json::Error),
}
