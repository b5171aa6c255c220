//! A token that never shows up in `Debug` or `Display` output.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An access token (`tr_pat_…`) or environment secret key (`tr_prod_…`).
///
/// `Debug` and `Display` print `<redacted>`; read the value with [`Secret::expose`] only where it
/// is sent (the `Authorization` header, the profile file, a build argument).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The token itself. Do not print it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether this is a personal access token (`tr_pat_…`).
    pub fn is_personal_access_token(&self) -> bool {
        self.0.starts_with("tr_pat_")
    }

    /// The token's kind prefix, safe to show (`tr_pat`, `tr_prod`, `tr_stg`, …), or `unknown`.
    pub fn kind(&self) -> &str {
        let mut parts = self.0.splitn(3, '_');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a @ ("tr" | "pk")), Some(b), Some(_)) if !b.is_empty() => {
                &self.0[..a.len() + 1 + b.len()]
            }
            _ => "unknown",
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_the_value() {
        let s = Secret::new("tr_pat_abcdefghijklmnopqrstuvwxyz0123456789abcd");
        assert!(!format!("{s:?}").contains("abcdef"));
        assert!(!format!("{s}").contains("abcdef"));
        assert_eq!(s.kind(), "tr_pat");
        assert!(s.is_personal_access_token());
        assert_eq!(Secret::new("tr_prod_x").kind(), "tr_prod");
        assert_eq!(Secret::new("garbage").kind(), "unknown");
        assert_eq!(
            serde_json::to_string(&Secret::new("a\"b")).unwrap(),
            "\"a\\\"b\""
        );
    }
}
