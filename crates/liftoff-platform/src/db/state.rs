//! The read API for tests: a snapshot of everything except secrets.

use std::collections::BTreeMap;

use rusqlite::{Connection, Row, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Store;
use super::deployments::CURRENT_LABEL;
use crate::clock;

/// Everything the platform holds, minus tokens and API keys.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub users: Vec<UserState>,
    pub projects: Vec<ProjectState>,
    /// Oldest first.
    pub deployments: Vec<DeploymentState>,
    pub workers: Vec<WorkerState>,
    pub tasks: Vec<TaskState>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UserState {
    pub id: String,
    pub email: String,
    /// Obfuscated forms only.
    pub personal_access_tokens: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ProjectState {
    pub id: String,
    #[serde(rename = "ref")]
    pub ref_: String,
    pub name: String,
    pub environments: Vec<EnvironmentState>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentState {
    pub id: String,
    /// `prod`, `stg` or `dev`.
    pub slug: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub current_deployment_id: Option<String>,
    pub current_version: Option<String>,
    pub env_vars: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentState {
    pub id: String,
    pub project_ref: String,
    pub environment_slug: String,
    pub short_code: String,
    pub version: String,
    pub content_hash: String,
    pub namespace: String,
    pub image_tag: String,
    pub registry_host: Option<String>,
    pub self_hosted: bool,
    pub image_reference: Option<String>,
    pub status: String,
    pub worker_id: Option<String>,
    pub triggered_by_id: Option<String>,
    pub error_data: Option<Value>,
    pub created_at: String,
    pub deployed_at: Option<String>,
    pub failed_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkerState {
    pub id: String,
    pub deployment_id: String,
    pub version: String,
    pub content_hash: String,
    pub package_version: String,
    pub cli_package_version: Option<String>,
    pub local_only: bool,
    pub supports_lazy_attempts: Option<bool>,
    /// The `metadata` object exactly as posted.
    pub metadata: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskState {
    pub id: String,
    pub worker_id: String,
    pub slug: String,
    pub file_path: String,
    pub export_name: String,
    /// The `TaskResource` exactly as posted.
    pub resource: Value,
}

impl State {
    pub fn deployment(&self, id: &str) -> Option<&DeploymentState> {
        self.deployments.iter().find(|d| d.id == id)
    }

    pub fn environment(&self, project_ref: &str, slug: &str) -> Option<&EnvironmentState> {
        self.projects
            .iter()
            .find(|p| p.ref_ == project_ref)?
            .environments
            .iter()
            .find(|e| e.slug == slug)
    }

    /// The version `current` points at in a project's environment (`prod`, `stg`).
    pub fn current_version(&self, project_ref: &str, slug: &str) -> Option<&str> {
        self.environment(project_ref, slug)?
            .current_version
            .as_deref()
    }

    pub fn worker(&self, id: &str) -> Option<&WorkerState> {
        self.workers.iter().find(|w| w.id == id)
    }

    pub fn tasks_of(&self, worker_id: &str) -> Vec<&TaskState> {
        self.tasks
            .iter()
            .filter(|t| t.worker_id == worker_id)
            .collect()
    }
}

fn collect<T>(
    conn: &Connection,
    sql: &str,
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut stmt = conn.prepare(sql)?;
    stmt.query_map([], map)?.collect()
}

fn json_column(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

impl Store {
    pub fn state(&self) -> rusqlite::Result<State> {
        Ok(State {
            users: self.users()?,
            projects: self.projects()?,
            deployments: self.deployments()?,
            workers: self.workers()?,
            tasks: self.tasks()?,
        })
    }

    fn users(&self) -> rusqlite::Result<Vec<UserState>> {
        let mut users = collect(
            &self.conn,
            "SELECT id, email FROM users ORDER BY rowid",
            |r| {
                Ok(UserState {
                    id: r.get(0)?,
                    email: r.get(1)?,
                    personal_access_tokens: Vec::new(),
                })
            },
        )?;
        let mut stmt = self.conn.prepare(
            "SELECT obfuscated FROM personal_access_tokens WHERE user_id = ?1 ORDER BY created_at, rowid",
        )?;
        for user in &mut users {
            user.personal_access_tokens = stmt
                .query_map(params![user.id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
        }
        Ok(users)
    }

    fn projects(&self) -> rusqlite::Result<Vec<ProjectState>> {
        let mut projects = collect(
            &self.conn,
            "SELECT id, ref, name FROM projects ORDER BY rowid",
            |r| {
                Ok(ProjectState {
                    id: r.get(0)?,
                    ref_: r.get(1)?,
                    name: r.get(2)?,
                    environments: Vec::new(),
                })
            },
        )?;
        let mut stmt = self.conn.prepare(
            "SELECT e.id, e.slug, e.type, p.deployment_id, d.version FROM environments e
             LEFT JOIN promotions p ON p.environment_id = e.id AND p.label = ?2
             LEFT JOIN deployments d ON d.id = p.deployment_id
             WHERE e.project_id = ?1 ORDER BY e.rowid",
        )?;
        for project in &mut projects {
            project.environments = stmt
                .query_map(params![project.id, CURRENT_LABEL], |r| {
                    Ok(EnvironmentState {
                        id: r.get(0)?,
                        slug: r.get(1)?,
                        type_: r.get(2)?,
                        current_deployment_id: r.get(3)?,
                        current_version: r.get(4)?,
                        env_vars: BTreeMap::new(),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            for env in &mut project.environments {
                env.env_vars = self.env_vars(&env.id)?;
            }
        }
        Ok(projects)
    }

    fn deployments(&self) -> rusqlite::Result<Vec<DeploymentState>> {
        collect(
            &self.conn,
            "SELECT d.id, p.ref, e.slug, d.short_code, d.version, d.content_hash, d.namespace,
             d.image_tag, d.registry_host, d.self_hosted, d.image_reference, d.status, d.worker_id,
             d.triggered_by_id, d.error_data, d.created_at, d.deployed_at, d.failed_at
             FROM deployments d JOIN projects p ON p.id = d.project_id
             JOIN environments e ON e.id = d.environment_id ORDER BY d.seq",
            |r| {
                Ok(DeploymentState {
                    id: r.get(0)?,
                    project_ref: r.get(1)?,
                    environment_slug: r.get(2)?,
                    short_code: r.get(3)?,
                    version: r.get(4)?,
                    content_hash: r.get(5)?,
                    namespace: r.get(6)?,
                    image_tag: r.get(7)?,
                    registry_host: r.get(8)?,
                    self_hosted: r.get(9)?,
                    image_reference: r.get(10)?,
                    status: r.get(11)?,
                    worker_id: r.get(12)?,
                    triggered_by_id: r.get(13)?,
                    error_data: json_column(r.get(14)?),
                    created_at: clock::rfc3339(r.get(15)?),
                    deployed_at: r.get::<_, Option<i64>>(16)?.map(clock::rfc3339),
                    failed_at: r.get::<_, Option<i64>>(17)?.map(clock::rfc3339),
                })
            },
        )
    }

    fn workers(&self) -> rusqlite::Result<Vec<WorkerState>> {
        collect(
            &self.conn,
            "SELECT id, deployment_id, version, content_hash, package_version, cli_package_version,
             local_only, supports_lazy_attempts, metadata FROM background_workers ORDER BY rowid",
            |r| {
                Ok(WorkerState {
                    id: r.get(0)?,
                    deployment_id: r.get(1)?,
                    version: r.get(2)?,
                    content_hash: r.get(3)?,
                    package_version: r.get(4)?,
                    cli_package_version: r.get(5)?,
                    local_only: r.get(6)?,
                    supports_lazy_attempts: r.get(7)?,
                    metadata: json_column(r.get(8)?).unwrap_or(Value::Null),
                })
            },
        )
    }

    fn tasks(&self) -> rusqlite::Result<Vec<TaskState>> {
        collect(
            &self.conn,
            "SELECT t.id, t.worker_id, t.slug, t.file_path, t.export_name, t.resource FROM tasks t
             JOIN background_workers w ON w.id = t.worker_id ORDER BY w.rowid, t.position",
            |r| {
                Ok(TaskState {
                    id: r.get(0)?,
                    worker_id: r.get(1)?,
                    slug: r.get(2)?,
                    file_path: r.get(3)?,
                    export_name: r.get(4)?,
                    resource: json_column(r.get(5)?).unwrap_or(Value::Null),
                })
            },
        )
    }
}
