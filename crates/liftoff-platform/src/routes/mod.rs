//! Routing: path segments and method to handler.

mod account;
mod deployments;
mod envvars;
mod finalize;
mod guard;
mod login_page;

use std::sync::Arc;

use serde_json::json;
use tiny_http::Method;

use crate::http::Req;
use crate::http::reply::{Reply, flatten};
use crate::shared::{Shared, lock};

pub fn handle(shared: &Arc<Shared>, req: &Req) -> Reply {
    let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let get = req.method == Method::Get;
    let post = req.method == Method::Post;
    let only = |allowed: bool, f: &dyn Fn() -> Result<Reply, Reply>| {
        if allowed {
            flatten(f())
        } else {
            Reply::method_not_allowed()
        }
    };
    match segments.as_slice() {
        ["api", "v2", "whoami"] => only(get, &|| account::whoami(shared, req)),
        ["api", "v1", "authorization-code"] => only(post, &|| account::authorization_code(shared)),
        ["api", "v1", "token"] => only(post, &|| account::token(shared, req)),
        ["api", "v1", "projects", project, "envvars"] => {
            only(get, &|| envvars::list(shared, req, project))
        }
        ["api", "v1", "projects", project, "envvars", slug, "import"] => {
            only(post, &|| envvars::import(shared, req, project, slug))
        }
        ["api", "v1", "projects", project, env] => {
            only(get, &|| account::project_env(shared, req, project, env))
        }
        ["api", "v1", "deployments"] => only(post, &|| deployments::initialize(shared, req)),
        ["api", "v1", "deployments", id] => only(get, &|| deployments::get(shared, req, id)),
        ["api", "v1", "deployments", id, "background-workers"] => {
            only(post, &|| deployments::create_worker(shared, req, id))
        }
        ["api", "v1", "deployments", id, "fail"] => {
            only(post, &|| deployments::fail(shared, req, id))
        }
        ["api", "v1", "deployments", version, "promote"] => {
            only(post, &|| deployments::promote(shared, req, version))
        }
        ["api", "v3", "deployments", id, "finalize"] => {
            only(post, &|| finalize::finalize(shared, req, id))
        }
        ["account", "authorization-code", code] => {
            only(get || post, &|| login_page::page(shared, req, code))
        }
        ["liftoff", "state"] => only(get, &|| {
            let state = lock(&shared.store).state()?;
            Ok(Reply::ok(serde_json::to_value(state).unwrap_or_default()))
        }),
        ["liftoff", "health"] => only(get, &|| Ok(Reply::ok(json!({ "ok": true })))),
        _ => Reply::not_found(),
    }
}
