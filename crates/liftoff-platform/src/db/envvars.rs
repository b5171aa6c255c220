//! Environment variables of an environment.

use std::collections::BTreeMap;

use rusqlite::params;

use super::Store;

impl Store {
    pub fn env_vars(&self, env_id: &str) -> rusqlite::Result<BTreeMap<String, String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, value FROM env_vars WHERE environment_id = ?1 ORDER BY key")?;
        stmt.query_map(params![env_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    }

    /// Upserts `variables`; with `override_existing` false, existing keys keep
    /// their values.
    pub fn import_env_vars(
        &mut self,
        env_id: &str,
        variables: &BTreeMap<String, String>,
        override_existing: bool,
        now: i64,
    ) -> rusqlite::Result<()> {
        let sql = if override_existing {
            "INSERT INTO env_vars (environment_id, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (environment_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
        } else {
            "INSERT OR IGNORE INTO env_vars (environment_id, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)"
        };
        self.write(|tx| {
            let mut stmt = tx.prepare(sql)?;
            for (key, value) in variables {
                stmt.execute(params![env_id, key, value, now])?;
            }
            Ok(())
        })
    }
}
