//! Deployments: initialize, worker registration, fail, finalize, promote,
//! the BUILDING timeout (§2.6, §2.7).

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use super::{EnvRow, Store};
use crate::{clock, ids, version};

pub const CURRENT_LABEL: &str = "current";
const FINAL_STATUSES: [&str; 4] = ["CANCELED", "DEPLOYED", "FAILED", "TIMED_OUT"];

/// The body of `POST /api/v1/deployments`, validated.
#[derive(Debug, Clone)]
pub struct InitializeInput {
    pub content_hash: String,
    pub user_id: Option<String>,
    pub registry_host: Option<String>,
    pub self_hosted: Option<bool>,
    pub namespace: Option<String>,
}

/// What initialize created.
#[derive(Debug, Clone)]
pub struct Initialized {
    pub id: String,
    pub content_hash: String,
    pub short_code: String,
    pub version: String,
    pub image_tag: String,
    pub registry_host: Option<String>,
}

/// The body of `POST /api/v1/deployments/{id}/background-workers`, validated.
#[derive(Debug, Clone)]
pub struct WorkerInput {
    pub local_only: bool,
    pub supports_lazy_attempts: Option<bool>,
    pub package_version: String,
    pub content_hash: String,
    pub cli_package_version: Option<String>,
    /// `(id, filePath, exportName, the whole TaskResource)`
    pub tasks: Vec<(String, String, String, Value)>,
    pub metadata: Value,
}

/// Why a worker could not be registered.
#[derive(Debug)]
pub enum WorkerError {
    /// Unknown deployment or not BUILDING: upstream's 500.
    NotBuildable,
    /// Tasks could not be created; the deployment is now FAILED.
    Tasks(String),
}

#[derive(Debug, Clone)]
pub struct TaskView {
    pub id: String,
    pub slug: String,
    pub file_path: String,
    pub export_name: String,
}

#[derive(Debug, Clone)]
pub struct WorkerView {
    pub id: String,
    pub version: String,
    pub content_hash: String,
    pub tasks: Vec<TaskView>,
}

/// `GET /api/v1/deployments/{id}` (§2.5).
#[derive(Debug, Clone)]
pub struct DeploymentView {
    pub id: String,
    pub status: String,
    pub content_hash: String,
    pub short_code: String,
    pub version: String,
    pub image_reference: Option<String>,
    pub error_data: Option<Value>,
    pub worker: Option<WorkerView>,
}

/// What finalize did (errors are messages for the SSE `error` event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalizeOutcome {
    /// Unknown deployment: upstream returns silently (the stream completes).
    Missing,
    AlreadyDeployed,
    Deployed,
}

/// Why a promotion failed.
#[derive(Debug)]
pub enum PromoteError {
    NotFound,
    Rejected(&'static str),
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for PromoteError {
    fn from(e: rusqlite::Error) -> Self {
        PromoteError::Sql(e)
    }
}

struct Row {
    id: String,
    status: String,
    version: String,
    short_code: String,
    worker_id: Option<String>,
}

fn find(
    conn: &Connection,
    env_id: &str,
    column: &str,
    value: &str,
) -> rusqlite::Result<Option<Row>> {
    let sql = format!(
        "SELECT id, status, version, short_code, worker_id FROM deployments
         WHERE environment_id = ?1 AND {column} = ?2"
    );
    conn.query_row(&sql, params![env_id, value], |r| {
        Ok(Row {
            id: r.get(0)?,
            status: r.get(1)?,
            version: r.get(2)?,
            short_code: r.get(3)?,
            worker_id: r.get(4)?,
        })
    })
    .optional()
}

impl Store {
    /// Marks `BUILDING` deployments older than `timeout_ms` as `TIMED_OUT`.
    pub fn sweep_timeouts(&mut self, now: i64, timeout_ms: i64) -> rusqlite::Result<usize> {
        self.write(|tx| {
            tx.execute(
                "UPDATE deployments SET status = 'TIMED_OUT', failed_at = ?1, updated_at = ?1,
                 error_data = ?2 WHERE status = 'BUILDING' AND created_at + ?3 <= ?1",
                params![
                    now,
                    json!({"name": "TimeoutError", "message": "Building timed out"}).to_string(),
                    timeout_ms
                ],
            )
        })
    }

    pub fn initialize_deployment(
        &mut self,
        env: &EnvRow,
        input: &InitializeInput,
        default_registry_host: Option<&str>,
        default_namespace: &str,
        now: i64,
    ) -> rusqlite::Result<Initialized> {
        self.write(|tx| {
            let latest: Option<String> = tx
                .query_row(
                    "SELECT version FROM deployments WHERE environment_id = ?1
                     ORDER BY created_at DESC, seq DESC LIMIT 1",
                    params![env.id],
                    |r| r.get(0),
                )
                .optional()?;
            let version = version::next_version(latest.as_deref(), &clock::version_date(now));
            let short_code = loop {
                let candidate = ids::short_code();
                let taken = tx
                    .query_row(
                        "SELECT 1 FROM deployments WHERE project_id = ?1 AND short_code = ?2",
                        params![env.project_id, candidate],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some();
                if !taken {
                    break candidate;
                }
            };
            let triggered_by: Option<String> = match &input.user_id {
                Some(user) => tx
                    .query_row(
                        "SELECT owner_id FROM projects WHERE id = ?1 AND owner_id = ?2",
                        params![env.project_id, user],
                        |r| r.get(0),
                    )
                    .optional()?,
                None => None,
            };
            let namespace = input.namespace.as_deref().unwrap_or(default_namespace);
            let image_tag = format!("{namespace}/{}:{version}.{}", env.project_ref, env.slug);
            let registry_host = input
                .registry_host
                .clone()
                .or_else(|| default_registry_host.map(str::to_owned));
            let id = ids::deployment_id();
            tx.execute(
                "INSERT INTO deployments (id, project_id, environment_id, short_code, version,
                 content_hash, namespace, image_tag, registry_host, self_hosted, status,
                 triggered_by_id, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'BUILDING', ?11, ?12, ?12)",
                params![
                    id,
                    env.project_id,
                    env.id,
                    short_code,
                    version,
                    input.content_hash,
                    namespace,
                    image_tag,
                    registry_host,
                    input.self_hosted.unwrap_or(false),
                    triggered_by,
                    now
                ],
            )?;
            Ok(Initialized {
                id,
                content_hash: input.content_hash.clone(),
                short_code,
                version,
                image_tag,
                registry_host,
            })
        })
    }

    /// Registers the index controller's worker; BUILDING → DEPLOYING.
    pub fn create_worker(
        &mut self,
        env: &EnvRow,
        deployment_id: &str,
        input: &WorkerInput,
        now: i64,
    ) -> rusqlite::Result<Result<WorkerView, WorkerError>> {
        self.write(|tx| {
            let Some(row) = find(tx, &env.id, "id", deployment_id)? else {
                return Ok(Err(WorkerError::NotBuildable));
            };
            if row.status != "BUILDING" {
                return Ok(Err(WorkerError::NotBuildable));
            }
            let mut seen = std::collections::HashSet::new();
            if let Some((dup, ..)) = input.tasks.iter().find(|(id, ..)| !seen.insert(id.as_str())) {
                let message = format!("Duplicate task id \"{dup}\"");
                tx.execute(
                    "UPDATE deployments SET status = 'FAILED', failed_at = ?1, updated_at = ?1,
                     error_data = ?2 WHERE id = ?3",
                    params![
                        now,
                        json!({"name": "CreateBackgroundTasksError", "message": message}).to_string(),
                        row.id
                    ],
                )?;
                return Ok(Err(WorkerError::Tasks(message)));
            }
            let worker_id = ids::worker_id();
            tx.execute(
                "INSERT INTO background_workers (id, deployment_id, environment_id, version,
                 content_hash, package_version, cli_package_version, local_only,
                 supports_lazy_attempts, metadata, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    worker_id,
                    row.id,
                    env.id,
                    row.version,
                    input.content_hash,
                    input.package_version,
                    input.cli_package_version,
                    input.local_only,
                    input.supports_lazy_attempts,
                    input.metadata.to_string(),
                    now
                ],
            )?;
            let mut tasks = Vec::with_capacity(input.tasks.len());
            for (position, (slug, file_path, export_name, resource)) in input.tasks.iter().enumerate() {
                let task_id = ids::task_id();
                tx.execute(
                    "INSERT INTO tasks (id, worker_id, slug, file_path, export_name, position, resource)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        task_id,
                        worker_id,
                        slug,
                        file_path,
                        export_name,
                        i64::try_from(position).unwrap_or(i64::MAX),
                        resource.to_string()
                    ],
                )?;
                tasks.push(TaskView {
                    id: task_id,
                    slug: slug.clone(),
                    file_path: file_path.clone(),
                    export_name: export_name.clone(),
                });
            }
            tx.execute(
                "UPDATE deployments SET status = 'DEPLOYING', worker_id = ?1, deployed_at = ?2,
                 updated_at = ?2 WHERE id = ?3",
                params![worker_id, now, row.id],
            )?;
            Ok(Ok(WorkerView {
                id: worker_id,
                version: row.version,
                content_hash: input.content_hash.clone(),
                tasks,
            }))
        })
    }

    pub fn deployment(&self, env: &EnvRow, id: &str) -> rusqlite::Result<Option<DeploymentView>> {
        let row = self
            .conn
            .query_row(
                "SELECT id, status, content_hash, short_code, version, image_reference, error_data,
                 worker_id FROM deployments WHERE environment_id = ?1 AND id = ?2",
                params![env.id, id],
                |r| {
                    let error: Option<String> = r.get(6)?;
                    Ok((
                        DeploymentView {
                            id: r.get(0)?,
                            status: r.get(1)?,
                            content_hash: r.get(2)?,
                            short_code: r.get(3)?,
                            version: r.get(4)?,
                            image_reference: r.get(5)?,
                            error_data: error.and_then(|e| serde_json::from_str(&e).ok()),
                            worker: None,
                        },
                        r.get::<_, Option<String>>(7)?,
                    ))
                },
            )
            .optional()?;
        let Some((mut view, worker_id)) = row else {
            return Ok(None);
        };
        if let Some(worker_id) = worker_id {
            view.worker = self.worker(&worker_id)?;
        }
        Ok(Some(view))
    }

    fn worker(&self, worker_id: &str) -> rusqlite::Result<Option<WorkerView>> {
        let head = self
            .conn
            .query_row(
                "SELECT id, version, content_hash FROM background_workers WHERE id = ?1",
                params![worker_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((id, version, content_hash)) = head else {
            return Ok(None);
        };
        let mut stmt = self.conn.prepare(
            "SELECT id, slug, file_path, export_name FROM tasks WHERE worker_id = ?1 ORDER BY position",
        )?;
        let tasks = stmt
            .query_map(params![worker_id], |r| {
                Ok(TaskView {
                    id: r.get(0)?,
                    slug: r.get(1)?,
                    file_path: r.get(2)?,
                    export_name: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Some(WorkerView {
            id,
            version,
            content_hash,
            tasks,
        }))
    }

    /// Fails a non-final deployment; unknown and final ones are ignored.
    pub fn fail_deployment(
        &mut self,
        env: &EnvRow,
        id: &str,
        error: &Value,
        now: i64,
    ) -> rusqlite::Result<bool> {
        self.write(|tx| {
            let Some(row) = find(tx, &env.id, "id", id)? else {
                return Ok(false);
            };
            if FINAL_STATUSES.contains(&row.status.as_str()) {
                return Ok(false);
            }
            tx.execute(
                "UPDATE deployments SET status = 'FAILED', failed_at = ?1, updated_at = ?1,
                 error_data = ?2 WHERE id = ?3",
                params![now, error.to_string(), row.id],
            )?;
            Ok(true)
        })
    }

    /// v1 finalize: DEPLOYING → DEPLOYED with the image reference. `Err` is
    /// the message of the SSE `error` event. With `require_external_build`
    /// (a non-self-hosted finalize) it fails as upstream does without Depot.
    pub fn finalize_deployment(
        &mut self,
        env: &EnvRow,
        id: &str,
        image_reference: &str,
        require_external_build: bool,
        now: i64,
    ) -> rusqlite::Result<Result<FinalizeOutcome, &'static str>> {
        self.write(|tx| {
            let Some(row) = find(tx, &env.id, "id", id)? else {
                return Ok(Ok(FinalizeOutcome::Missing));
            };
            if row.worker_id.is_none() {
                return Ok(Err("Worker deployment does not have a worker"));
            }
            if row.status == "DEPLOYED" {
                return Ok(Ok(FinalizeOutcome::AlreadyDeployed));
            }
            if row.status != "DEPLOYING" {
                return Ok(Err("Worker deployment is not in DEPLOYING status"));
            }
            if require_external_build {
                return Ok(Err("External build data is missing"));
            }
            tx.execute(
                "UPDATE deployments SET status = 'DEPLOYED', deployed_at = ?1, updated_at = ?1,
                 image_reference = ?2 WHERE id = ?3",
                params![now, image_reference, row.id],
            )?;
            Ok(Ok(FinalizeOutcome::Deployed))
        })
    }

    /// Moves the environment's `current` label to the deployment with
    /// `column` = `value` (`id` or `version`), in one transaction.
    /// Returns `(id, version, shortCode)`.
    pub fn promote(
        &mut self,
        env: &EnvRow,
        column: PromoteBy,
        value: &str,
        now: i64,
    ) -> Result<(String, String, String), PromoteError> {
        self.write(|tx| {
            let column = match column {
                PromoteBy::Id => "id",
                PromoteBy::Version => "version",
            };
            let Some(row) = find(tx, &env.id, column, value)? else {
                return Err(PromoteError::NotFound);
            };
            if row.worker_id.is_none() {
                return Err(PromoteError::Rejected(
                    "Deployment is not associated with a worker and cannot be promoted.",
                ));
            }
            if row.status != "DEPLOYED" {
                return Err(PromoteError::Rejected(
                    "Deployment must be in the DEPLOYED state to be promoted.",
                ));
            }
            let current: Option<(String, String)> = tx
                .query_row(
                    "SELECT d.id, d.version FROM promotions p JOIN deployments d ON d.id = p.deployment_id
                     WHERE p.environment_id = ?1 AND p.label = ?2",
                    params![env.id, CURRENT_LABEL],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((current_id, current_version)) = current {
                if current_id == row.id {
                    return Err(PromoteError::Rejected(
                        "Deployment is already the current deployment.",
                    ));
                }
                if version::compare(&current_version, &row.version) != std::cmp::Ordering::Less {
                    return Err(PromoteError::Rejected(
                        "Cannot promote a deployment that is older than the current deployment.",
                    ));
                }
            }
            tx.execute(
                "INSERT INTO promotions (environment_id, label, deployment_id, updated_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (environment_id, label) DO UPDATE
                 SET deployment_id = excluded.deployment_id, updated_at = excluded.updated_at",
                params![env.id, CURRENT_LABEL, row.id, now],
            )?;
            Ok((row.id, row.version, row.short_code))
        })
    }
}

/// How `promote` finds its deployment.
#[derive(Debug, Clone, Copy)]
pub enum PromoteBy {
    Id,
    Version,
}
