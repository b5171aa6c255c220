//! Authentication (§2.1): PAT routes and environment-key routes.

use crate::db::{EnvRow, UserRow};
use crate::http::Req;
use crate::http::reply::Reply;
use crate::shared::{Shared, lock};

pub const BAD_PAT: &str = "Invalid or Missing Access Token";
pub const BAD_KEY: &str = "Invalid or Missing API key";

/// The user behind a `tr_pat_…` bearer token, or 401.
pub fn user(shared: &Shared, req: &Req) -> Result<UserRow, Reply> {
    let token = req
        .bearer
        .as_deref()
        .filter(|t| t.starts_with("tr_pat_"))
        .ok_or_else(|| Reply::error(401, BAD_PAT))?;
    lock(&shared.store)
        .user_for_pat(token)?
        .ok_or_else(|| Reply::error(401, BAD_PAT))
}

/// The environment behind a secret key (`tr_…`, not a PAT), or 401.
pub fn environment(shared: &Shared, req: &Req) -> Result<EnvRow, Reply> {
    let key = req
        .bearer
        .as_deref()
        .filter(|t| t.starts_with("tr_") && !t.starts_with("tr_pat_"))
        .ok_or_else(|| Reply::error(401, BAD_KEY))?;
    lock(&shared.store)
        .env_for_key(key)?
        .ok_or_else(|| Reply::error(401, BAD_KEY))
}
