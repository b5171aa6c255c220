//! PAT routes and the device-login flow (§2.2 #1–#4, §3).

use serde_json::json;

use super::guard;
use crate::db::PollError;
use crate::http::Req;
use crate::http::reply::Reply;
use crate::http::validate::{Checker, parse_json};
use crate::shared::{Shared, lock};

/// `GET /api/v2/whoami`
pub fn whoami(shared: &Shared, req: &Req) -> Result<Reply, Reply> {
    let user = guard::user(shared, req)?;
    Ok(Reply::ok(json!({
        "userId": user.id,
        "email": user.email,
        "dashboardUrl": shared.origin(),
    })))
}

/// `GET /api/v1/projects/{ref}/{env}`
pub fn project_env(shared: &Shared, req: &Req, project: &str, env: &str) -> Result<Reply, Reply> {
    let user = guard::user(shared, req)?;
    let slug = match env {
        "prod" => "prod",
        "staging" => "stg",
        "dev" => "dev",
        _ => return Err(Reply::error(400, "Invalid Params")),
    };
    let store = lock(&shared.store);
    if !store.project_owned_by(project, &user.id)? {
        return Err(Reply::error(404, "Project not found"));
    }
    let found = store.env_for_project(project, slug)?.ok_or_else(|| {
        Reply::error(
            404,
            &format!("Environment \"{env}\" not found or is unsupported for this project."),
        )
    })?;
    Ok(Reply::ok(json!({
        "apiKey": found.api_key,
        "name": found.project_name,
        "apiUrl": shared.origin(),
        "projectId": found.project_id,
    })))
}

/// `POST /api/v1/authorization-code`
pub fn authorization_code(shared: &Shared) -> Result<Reply, Reply> {
    let code = lock(&shared.store).create_authorization_code(shared.now())?;
    Ok(Reply::ok(json!({
        "url": format!("{}/account/authorization-code/{code}", shared.origin()),
        "authorizationCode": code,
    })))
}

/// `POST /api/v1/token`
pub fn token(shared: &Shared, req: &Req) -> Result<Reply, Reply> {
    let body = parse_json(&req.body, 422)?;
    let mut check = Checker::default();
    let code = check
        .object(Some(&body), &[])
        .and_then(|obj| check.string(obj, "authorizationCode", &[]));
    check.finish_with(422)?;
    let code = code.unwrap_or_default();
    match lock(&shared.store).poll_authorization_code(&code, shared.now())? {
        Ok(None) => Ok(Reply::ok(json!({ "token": null }))),
        Ok(Some((token, obfuscated))) => Ok(Reply::ok(json!({
            "token": { "token": token, "obfuscatedToken": obfuscated }
        }))),
        Err(e @ (PollError::Invalid | PollError::Expired | PollError::Used)) => {
            Err(Reply::error(400, e.message()))
        }
    }
}
