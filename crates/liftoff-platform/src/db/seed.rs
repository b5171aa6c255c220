//! Inserting the seed: missing rows are added, existing rows are kept.

use rusqlite::{OptionalExtension, params};

use super::{Store, hash_token};
use crate::config::{Seed, env_slug};
use crate::error::PlatformError;
use crate::ids;

impl Store {
    pub fn apply_seed(&mut self, seed: &Seed, now: i64) -> Result<(), PlatformError> {
        validate(seed)?;
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO users (id, email) VALUES (?1, ?2)",
                params![seed.user_id, format!("{}@example.com", seed.user_id)],
            )?;
            tx.execute(
                "INSERT OR IGNORE INTO personal_access_tokens
                 (token_hash, user_id, name, obfuscated, created_at) VALUES (?1, ?2, 'seed', ?3, ?4)",
                params![
                    hash_token(&seed.personal_access_token),
                    seed.user_id,
                    ids::obfuscate_pat(&seed.personal_access_token),
                    now
                ],
            )?;
            for project in &seed.projects {
                tx.execute(
                    "INSERT OR IGNORE INTO projects (id, ref, name, owner_id) VALUES (?1, ?2, ?3, ?4)",
                    params![ids::cuid(), project.ref_, project.name, seed.user_id],
                )?;
                let project_id: String = tx.query_row(
                    "SELECT id FROM projects WHERE ref = ?1",
                    params![project.ref_],
                    |r| r.get(0),
                )?;
                for (env, key) in &project.env_api_keys {
                    let Some((slug, kind)) = env_slug(env) else {
                        continue;
                    };
                    tx.execute(
                        "INSERT OR IGNORE INTO environments (id, project_id, slug, type, api_key)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![ids::cuid(), project_id, slug, kind, key],
                    )?;
                }
                for (env, name, value) in &project.env_vars {
                    let Some((slug, _)) = env_slug(env) else {
                        continue;
                    };
                    let env_id: Option<String> = tx
                        .query_row(
                            "SELECT id FROM environments WHERE project_id = ?1 AND slug = ?2",
                            params![project_id, slug],
                            |r| r.get(0),
                        )
                        .optional()?;
                    if let Some(env_id) = env_id {
                        tx.execute(
                            "INSERT OR IGNORE INTO env_vars (environment_id, key, value, updated_at)
                             VALUES (?1, ?2, ?3, ?4)",
                            params![env_id, name, value, now],
                        )?;
                    }
                }
            }
            Ok(())
        })
    }
}

fn validate(seed: &Seed) -> Result<(), PlatformError> {
    let bad = |m: String| Err(PlatformError::InvalidSeed(m));
    if !seed.personal_access_token.starts_with("tr_pat_") {
        return bad("the personal access token must start with tr_pat_".into());
    }
    if seed.user_id.is_empty() {
        return bad("the user id is empty".into());
    }
    for project in &seed.projects {
        if project.ref_.is_empty() {
            return bad("a project ref is empty".into());
        }
        for (env, key) in &project.env_api_keys {
            if env_slug(env).is_none() {
                return bad(format!(
                    "project {}: unknown environment {env:?} (use prod, staging or dev)",
                    project.ref_
                ));
            }
            if !key.starts_with("tr_") || key.starts_with("tr_pat_") {
                return bad(format!(
                    "project {}: the {env} key must be a secret key (tr_<env>_…)",
                    project.ref_
                ));
            }
        }
        for (env, _, _) in &project.env_vars {
            if env_slug(env).is_none() {
                return bad(format!(
                    "project {}: env var for unknown environment {env:?}",
                    project.ref_
                ));
            }
        }
    }
    Ok(())
}
