//! The `SQLite` store. Every state change runs in one `IMMEDIATE` transaction.

mod auth;
mod deployments;
mod envvars;
mod schema;
mod seed;
mod state;

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use sha2::{Digest, Sha256};

pub use auth::{ApproveError, PollError};
pub use deployments::{
    DeploymentView, FinalizeOutcome, InitializeInput, PromoteBy, PromoteError, WorkerError,
    WorkerInput,
};
pub use state::{
    DeploymentState, EnvironmentState, ProjectState, State, TaskState, UserState, WorkerState,
};

use crate::error::PlatformError;

/// An environment, as found through its API key or its project.
#[derive(Debug, Clone)]
pub struct EnvRow {
    pub id: String,
    pub project_id: String,
    pub project_ref: String,
    pub project_name: String,
    pub slug: String,
    pub api_key: String,
}

/// A user, as found through a personal access token.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub email: String,
}

pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating when missing) the database file and its schema.
    pub fn open(path: &Path) -> Result<Self, PlatformError> {
        let open_err = |source| PlatformError::OpenDatabase {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        conn.execute_batch(schema::SCHEMA).map_err(open_err)?;
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?1)",
            params![schema::SCHEMA_VERSION.to_string()],
        )
        .map_err(open_err)?;
        Ok(Self { conn })
    }

    /// Runs `f` in an `IMMEDIATE` transaction, committing when it returns `Ok`.
    pub fn write<T, E>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<rusqlite::Error>,
    {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// The user owning a personal access token.
    pub fn user_for_pat(&self, token: &str) -> rusqlite::Result<Option<UserRow>> {
        self.conn
            .query_row(
                "SELECT u.id, u.email FROM personal_access_tokens t
                 JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?1",
                params![hash_token(token)],
                |r| {
                    Ok(UserRow {
                        id: r.get(0)?,
                        email: r.get(1)?,
                    })
                },
            )
            .optional()
    }

    /// The environment a secret key belongs to.
    pub fn env_for_key(&self, key: &str) -> rusqlite::Result<Option<EnvRow>> {
        query_env(&self.conn, "e.api_key = ?1", params![key])
    }

    /// A project's environment, by project ref and slug (`prod`, `stg`, `dev`).
    pub fn env_for_project(
        &self,
        project_ref: &str,
        slug: &str,
    ) -> rusqlite::Result<Option<EnvRow>> {
        query_env(
            &self.conn,
            "p.ref = ?1 AND e.slug = ?2",
            params![project_ref, slug],
        )
    }

    /// Whether a project exists and `user_id` may use it.
    pub fn project_owned_by(&self, project_ref: &str, user_id: &str) -> rusqlite::Result<bool> {
        self.conn
            .query_row(
                "SELECT 1 FROM projects WHERE ref = ?1 AND owner_id = ?2",
                params![project_ref, user_id],
                |_| Ok(()),
            )
            .optional()
            .map(|o| o.is_some())
    }
}

fn query_env(
    conn: &Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> rusqlite::Result<Option<EnvRow>> {
    let sql = format!(
        "SELECT e.id, p.id, p.ref, p.name, e.slug, e.api_key
         FROM environments e JOIN projects p ON p.id = e.project_id WHERE {filter}"
    );
    conn.query_row(&sql, args, |r| {
        Ok(EnvRow {
            id: r.get(0)?,
            project_id: r.get(1)?,
            project_ref: r.get(2)?,
            project_name: r.get(3)?,
            slug: r.get(4)?,
            api_key: r.get(5)?,
        })
    })
    .optional()
}

/// SHA-256 hex of a token: what the store keeps instead of the token.
pub fn hash_token(token: &str) -> String {
    use std::fmt::Write as _;
    Sha256::digest(token.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
