//! Deployment routes (§2.2 #7–#10, #12).

use serde_json::{Map, Value, json};

use super::guard;
use crate::db::{
    DeploymentView, EnvRow, InitializeInput, PromoteBy, PromoteError, WorkerError, WorkerInput,
};
use crate::http::Req;
use crate::http::reply::Reply;
use crate::http::validate::{Checker, at, parse_json};
use crate::shared::{Shared, lock};

/// The environment of an env-key request, after applying BUILDING timeouts.
fn env(shared: &Shared, req: &Req) -> Result<EnvRow, Reply> {
    let env = guard::environment(shared, req)?;
    shared.sweep_timeouts()?;
    Ok(env)
}

/// `POST /api/v1/deployments`
pub fn initialize(shared: &Shared, req: &Req) -> Result<Reply, Reply> {
    let env = env(shared, req)?;
    let body = parse_json(&req.body, 400)?;
    let mut check = Checker::default();
    let mut input = None;
    if let Some(obj) = check.object(Some(&body), &[]) {
        let content_hash = check.string(obj, "contentHash", &[]);
        let user_id = check.opt_string(obj, "userId", &[]);
        let registry_host = check.opt_string(obj, "registryHost", &[]);
        let self_hosted = check.opt_boolean(obj, "selfHosted", &[]);
        let namespace = check.opt_string(obj, "namespace", &[]);
        input = content_hash.map(|content_hash| InitializeInput {
            content_hash,
            user_id,
            registry_host,
            self_hosted,
            namespace,
        });
    }
    check.finish()?;
    let input = input.ok_or_else(|| Reply::error(400, "Invalid body"))?;
    let created = lock(&shared.store).initialize_deployment(
        &env,
        &input,
        shared.registry_host.as_deref(),
        &shared.namespace,
        shared.now(),
    )?;
    let mut out = json!({
        "id": created.id,
        "contentHash": created.content_hash,
        "shortCode": created.short_code,
        "version": created.version,
        "imageTag": created.image_tag,
        "externalBuildData": null,
    });
    if let (Some(host), Some(obj)) = (created.registry_host, out.as_object_mut()) {
        obj.insert("registryHost".into(), Value::String(host));
    }
    Ok(Reply::ok(out))
}

fn check_task(
    check: &mut Checker,
    task: &Value,
    path: &[Value],
) -> Option<(String, String, String, Value)> {
    let obj = check.object(Some(task), path)?;
    let id = check.string(obj, "id", path);
    let file_path = check.string(obj, "filePath", path);
    let export_name = check.string(obj, "exportName", path);
    check.opt_string(obj, "description", path);
    check.opt_string(obj, "triggerSource", path);
    check.opt_number(obj, "maxDuration", path);
    for key in ["queue", "retry", "machine"] {
        check.opt_object(obj, key, path);
    }
    if let Some(schedule) = check.opt_object(obj, "schedule", path) {
        let schedule_path = at(path, "schedule");
        if let Some(cron) = check.string(schedule, "cron", &schedule_path)
            && cron.split_whitespace().count() < 5
        {
            check.custom(&at(&schedule_path, "cron"), "Invalid cron expression");
        }
        check.opt_string(schedule, "timezone", &schedule_path);
    }
    Some((id?, file_path?, export_name?, task.clone()))
}

fn check_source_file(check: &mut Checker, file: &Value, path: &[Value]) {
    let Some(obj) = check.object(Some(file), path) else {
        return;
    };
    check.string(obj, "filePath", path);
    check.string(obj, "contents", path);
    check.string(obj, "contentHash", path);
    if let Some(ids) = check.array(obj, "taskIds", path) {
        for (i, id) in ids.iter().enumerate() {
            if !id.is_string() {
                check.custom(&at(&at(path, "taskIds"), i), "Expected string");
            }
        }
    }
}

fn worker_input(check: &mut Checker, body: &Value) -> Option<WorkerInput> {
    let obj: &Map<String, Value> = check.object(Some(body), &[])?;
    let local_only = check.boolean(obj, "localOnly", &[]);
    let supports_lazy_attempts = check.opt_boolean(obj, "supportsLazyAttempts", &[]);
    let path = [Value::from("metadata")];
    let metadata = check.object(obj.get("metadata"), &path)?;
    let package_version = check.string(metadata, "packageVersion", &path);
    let content_hash = check.string(metadata, "contentHash", &path);
    let cli_package_version = check.opt_string(metadata, "cliPackageVersion", &path);
    let mut tasks = Vec::new();
    if let Some(items) = check.array(metadata, "tasks", &path) {
        let tasks_path = at(&path, "tasks");
        for (i, task) in items.iter().enumerate() {
            if let Some(task) = check_task(check, task, &at(&tasks_path, i)) {
                tasks.push(task);
            }
        }
    }
    if let Some(files) = check.opt_array(metadata, "sourceFiles", &path) {
        let files_path = at(&path, "sourceFiles");
        for (i, file) in files.iter().enumerate() {
            check_source_file(check, file, &at(&files_path, i));
        }
    }
    Some(WorkerInput {
        local_only: local_only?,
        supports_lazy_attempts,
        package_version: package_version?,
        content_hash: content_hash?,
        cli_package_version,
        tasks,
        metadata: Value::Object(metadata.clone()),
    })
}

/// `POST /api/v1/deployments/{id}/background-workers`
pub fn create_worker(shared: &Shared, req: &Req, id: &str) -> Result<Reply, Reply> {
    let env = env(shared, req)?;
    let body = parse_json(&req.body, 400)?;
    let mut check = Checker::default();
    let input = worker_input(&mut check, &body);
    check.finish()?;
    let input = input.ok_or_else(|| Reply::error(400, "Invalid body"))?;
    match lock(&shared.store).create_worker(&env, id, &input, shared.now())? {
        Ok(worker) => Ok(Reply::ok(json!({
            "id": worker.id,
            "version": worker.version,
            "contentHash": worker.content_hash,
        }))),
        Err(WorkerError::NotBuildable) => {
            Err(Reply::error(500, "Failed to create background worker"))
        }
        Err(WorkerError::Tasks(message)) => Err(Reply::error(400, &message)),
    }
}

fn deployment_json(d: DeploymentView) -> Value {
    let mut out = json!({
        "id": d.id,
        "status": d.status,
        "contentHash": d.content_hash,
        "shortCode": d.short_code,
        "version": d.version,
        "imageReference": d.image_reference,
        "errorData": d.error_data,
    });
    if let (Some(worker), Some(obj)) = (d.worker, out.as_object_mut()) {
        let tasks: Vec<Value> = worker
            .tasks
            .into_iter()
            .map(|t| json!({ "id": t.id, "slug": t.slug, "filePath": t.file_path, "exportName": t.export_name }))
            .collect();
        obj.insert(
            "worker".into(),
            json!({ "id": worker.id, "version": worker.version, "tasks": tasks }),
        );
    }
    out
}

/// `GET /api/v1/deployments/{id}`
pub fn get(shared: &Shared, req: &Req, id: &str) -> Result<Reply, Reply> {
    let env = env(shared, req)?;
    let found = lock(&shared.store).deployment(&env, id)?;
    found
        .map(|d| Reply::ok(deployment_json(d)))
        .ok_or_else(|| Reply::error(404, "Deployment not found"))
}

/// `POST /api/v1/deployments/{id}/fail`
pub fn fail(shared: &Shared, req: &Req, id: &str) -> Result<Reply, Reply> {
    let env = env(shared, req)?;
    let body = parse_json(&req.body, 400)?;
    let mut check = Checker::default();
    let mut error = None;
    if let Some(obj) = check.object(Some(&body), &[]) {
        let path = [Value::from("error")];
        if let Some(err) = check.object(obj.get("error"), &path) {
            let name = check.string(err, "name", &path);
            let message = check.string(err, "message", &path);
            let stack = check.opt_string(err, "stack", &path);
            let stderr = check.opt_string(err, "stderr", &path);
            if let (Some(name), Some(message)) = (name, message) {
                let mut data = json!({ "name": name, "message": message });
                if let Some(obj) = data.as_object_mut() {
                    if let Some(stack) = stack {
                        obj.insert("stack".into(), Value::String(stack));
                    }
                    if let Some(stderr) = stderr {
                        obj.insert("stderr".into(), Value::String(stderr));
                    }
                }
                error = Some(data);
            }
        }
    }
    check.finish()?;
    let error = error.ok_or_else(|| Reply::error(400, "Invalid body"))?;
    lock(&shared.store).fail_deployment(&env, id, &error, shared.now())?;
    Ok(Reply::ok(json!({ "id": id })))
}

/// `POST /api/v1/deployments/{version}/promote`
pub fn promote(shared: &Shared, req: &Req, version: &str) -> Result<Reply, Reply> {
    let env = env(shared, req)?;
    let result = lock(&shared.store).promote(&env, PromoteBy::Version, version, shared.now());
    match result {
        Ok((id, version, short_code)) => Ok(Reply::ok(json!({
            "id": id,
            "version": version,
            "shortCode": short_code,
        }))),
        Err(PromoteError::NotFound) => Err(Reply::error(404, "Deployment not found")),
        Err(PromoteError::Rejected(message)) => Err(Reply::error(400, message)),
        Err(PromoteError::Sql(_)) => Err(Reply::error(500, "Failed to promote deployment")),
    }
}
