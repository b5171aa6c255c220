//! Environment variables (§2.2 #5, #6).

use std::collections::BTreeMap;

use serde_json::json;

use super::guard;
use crate::config::env_slug;
use crate::db::EnvRow;
use crate::http::Req;
use crate::http::reply::Reply;
use crate::http::validate::{Checker, parse_json};
use crate::shared::{Shared, lock};

/// Names the platform reserves for the build and runtime.
const RESERVED: [&str; 2] = ["TRIGGER_SECRET_KEY", "TRIGGER_API_URL"];

/// `GET /api/v1/projects/{ref}/envvars` (environment key).
pub fn list(shared: &Shared, req: &Req, project: &str) -> Result<Reply, Reply> {
    let env = guard::environment(shared, req)?;
    if env.project_ref != project {
        return Err(Reply::error(404, "Project not found"));
    }
    let variables = lock(&shared.store).env_vars(&env.id)?;
    Ok(Reply::ok(json!({ "variables": variables })))
}

/// The environment an import targets: through a PAT (owner of the project)
/// or an environment key (which must be that project and slug).
fn target(shared: &Shared, req: &Req, project: &str, slug: &str) -> Result<EnvRow, Reply> {
    let not_found = || Reply::error(404, "Environment not found");
    let slug = env_slug(slug).map(|(s, _)| s).ok_or_else(not_found)?;
    if req
        .bearer
        .as_deref()
        .is_some_and(|t| t.starts_with("tr_pat_"))
    {
        let user = guard::user(shared, req)?;
        let store = lock(&shared.store);
        if !store.project_owned_by(project, &user.id)? {
            return Err(Reply::error(404, "Project not found"));
        }
        return store.env_for_project(project, slug)?.ok_or_else(not_found);
    }
    let env = guard::environment(shared, req)?;
    if env.project_ref != project || env.slug != slug {
        return Err(not_found());
    }
    Ok(env)
}

/// `POST /api/v1/projects/{ref}/envvars/{slug}/import`
pub fn import(shared: &Shared, req: &Req, project: &str, slug: &str) -> Result<Reply, Reply> {
    let env = target(shared, req, project, slug)?;
    let body = parse_json(&req.body, 400)?;
    let mut check = Checker::default();
    let mut parsed = None;
    if let Some(obj) = check.object(Some(&body), &[]) {
        let variables = check.string_record(obj, "variables", &[]);
        let override_existing = check.opt_boolean(obj, "override", &[]);
        parsed = variables.map(|v| (v, override_existing.unwrap_or(false)));
    }
    check.finish()?;
    let Some((variables, override_existing)) = parsed else {
        return Err(Reply::error(400, "Invalid body"));
    };
    let errors: Vec<_> = variables
        .iter()
        .filter_map(|(key, _)| {
            let why = if key.trim().is_empty() {
                "Variable names cannot be empty"
            } else if key.contains('=') || key.chars().any(char::is_whitespace) {
                "Variable names cannot contain '=' or whitespace"
            } else if RESERVED.contains(&key.as_str()) {
                "This variable is set by the platform and cannot be imported"
            } else {
                return None;
            };
            Some(json!({ "key": key, "error": why }))
        })
        .collect();
    if !errors.is_empty() {
        return Err(Reply::Json(
            400,
            json!({ "error": "Variable errors", "variableErrors": errors }),
        ));
    }
    let variables: BTreeMap<String, String> = variables.into_iter().collect();
    lock(&shared.store).import_env_vars(&env.id, &variables, override_existing, shared.now())?;
    Ok(Reply::ok(json!({ "success": true })))
}
