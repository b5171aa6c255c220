//! The device-login flow: authorization codes and the PATs they yield.

use rusqlite::{OptionalExtension, params};

use super::{Store, hash_token};
use crate::ids;

/// Codes live ten minutes (§3.2).
pub const CODE_LIFETIME_MS: i64 = 10 * 60 * 1000;

/// Why `POST /api/v1/token` answers 400.
#[derive(Debug)]
pub enum PollError {
    Invalid,
    Expired,
    Used,
}

impl PollError {
    pub fn message(&self) -> &'static str {
        match self {
            PollError::Invalid => "Invalid authorization code",
            PollError::Expired => "Authorization code expired",
            PollError::Used => "Authorization code has already been used",
        }
    }
}

/// Why approving a code failed.
#[derive(Debug)]
pub enum ApproveError {
    Unknown,
    Expired,
    AlreadyApproved,
    NoUser,
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for ApproveError {
    fn from(e: rusqlite::Error) -> Self {
        ApproveError::Sql(e)
    }
}

impl Store {
    pub fn create_authorization_code(&mut self, now: i64) -> rusqlite::Result<String> {
        let code = ids::authorization_code();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO authorization_codes (code, created_at) VALUES (?1, ?2)",
                params![code, now],
            )
        })?;
        Ok(code)
    }

    /// Approves `code` for the (first) user: creates a PAT named `cli`.
    /// Returns the new token.
    pub fn approve_authorization_code(
        &mut self,
        code: &str,
        now: i64,
    ) -> Result<String, ApproveError> {
        self.write(|tx| {
            let row: Option<(i64, Option<String>)> = tx
                .query_row(
                    "SELECT created_at, user_id FROM authorization_codes WHERE code = ?1",
                    params![code],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((created_at, user)) = row else {
                return Err(ApproveError::Unknown);
            };
            if user.is_some() {
                return Err(ApproveError::AlreadyApproved);
            }
            if now - created_at > CODE_LIFETIME_MS {
                return Err(ApproveError::Expired);
            }
            let user_id: String = tx
                .query_row("SELECT id FROM users ORDER BY rowid LIMIT 1", [], |r| {
                    r.get(0)
                })
                .optional()?
                .ok_or(ApproveError::NoUser)?;
            let token = ids::personal_access_token();
            let obfuscated = ids::obfuscate_pat(&token);
            tx.execute(
                "INSERT INTO personal_access_tokens (token_hash, user_id, name, obfuscated, created_at)
                 VALUES (?1, ?2, 'cli', ?3, ?4)",
                params![hash_token(&token), user_id, obfuscated, now],
            )?;
            tx.execute(
                "UPDATE authorization_codes SET user_id = ?1, token = ?2, obfuscated = ?3 WHERE code = ?4",
                params![user_id, token, obfuscated, code],
            )?;
            Ok(token)
        })
    }

    /// The token for `code` once approved (`None` while pending). The token
    /// is handed out once; the plaintext is then dropped from the store.
    pub fn poll_authorization_code(
        &mut self,
        code: &str,
        now: i64,
    ) -> rusqlite::Result<Result<Option<(String, String)>, PollError>> {
        self.write(|tx| {
            let row: Option<(i64, Option<String>, Option<String>, bool)> = tx
                .query_row(
                    "SELECT created_at, token, obfuscated, consumed FROM authorization_codes WHERE code = ?1",
                    params![code],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let Some((created_at, token, obfuscated, consumed)) = row else {
                return Ok(Err(PollError::Invalid));
            };
            if consumed {
                return Ok(Err(PollError::Used));
            }
            match (token, obfuscated) {
                (Some(token), Some(obfuscated)) => {
                    tx.execute(
                        "UPDATE authorization_codes SET consumed = 1, token = NULL WHERE code = ?1",
                        params![code],
                    )?;
                    Ok(Ok(Some((token, obfuscated))))
                }
                _ if now - created_at > CODE_LIFETIME_MS => Ok(Err(PollError::Expired)),
                _ => Ok(Ok(None)),
            }
        })
    }
}
