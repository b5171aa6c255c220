//! Start-up configuration and the seed data (user, PAT, projects).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How to start a [`crate::Platform`].
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    /// The `SQLite` file; created (with its schema) when missing, reused otherwise.
    pub db_path: PathBuf,
    /// Where to listen, e.g. `127.0.0.1:0` for a free port.
    pub bind: SocketAddr,
    /// `DEPLOY_REGISTRY_HOST`: the `registryHost` answered by initialize when
    /// the request names none.
    pub registry_host: Option<String>,
    /// `DEPLOY_REGISTRY_NAMESPACE`, normally `trigger`.
    pub namespace: String,
    /// Rows inserted at start when missing (existing rows are kept as they are).
    pub seed: Seed,
}

impl PlatformConfig {
    /// Loopback on a free port, no registry host, namespace `trigger`.
    pub fn new(db_path: impl Into<PathBuf>, seed: Seed) -> Self {
        Self {
            db_path: db_path.into(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            registry_host: None,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            seed,
        }
    }
}

/// The default `DEPLOY_REGISTRY_NAMESPACE`.
pub const DEFAULT_NAMESPACE: &str = "trigger";

/// The one user, their personal access token and their projects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Seed {
    /// `tr_pat_…`
    pub personal_access_token: String,
    pub user_id: String,
    pub projects: Vec<SeedProject>,
}

/// A project with its environments (one per API key) and env vars.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedProject {
    /// `proj_…`
    #[serde(rename = "ref")]
    pub ref_: String,
    pub name: String,
    /// `("prod" | "staging" | "dev", secret key "tr_prod_…")`; each entry
    /// creates that environment.
    pub env_api_keys: Vec<(String, String)>,
    /// `(env, name, value)`; `env` is `prod`, `staging`/`stg` or `dev`.
    pub env_vars: Vec<(String, String, String)>,
}

impl Seed {
    /// A fresh random seed: one user, one project with `prod` and `staging`.
    pub fn generate() -> Self {
        Self {
            personal_access_token: crate::ids::personal_access_token(),
            user_id: crate::ids::cuid(),
            projects: vec![SeedProject {
                ref_: crate::ids::project_ref(),
                name: "My project".to_owned(),
                env_api_keys: vec![
                    ("prod".to_owned(), crate::ids::secret_key("prod")),
                    ("staging".to_owned(), crate::ids::secret_key("stg")),
                ],
                env_vars: Vec::new(),
            }],
        }
    }
}

/// An environment name as used in paths and seeds, mapped to its slug and type.
pub(crate) fn env_slug(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "prod" | "production" => Some(("prod", "PRODUCTION")),
        "staging" | "stg" => Some(("stg", "STAGING")),
        "dev" | "development" => Some(("dev", "DEVELOPMENT")),
        _ => None,
    }
}
