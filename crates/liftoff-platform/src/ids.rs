//! Random identifiers in the upstream formats (§2.1, §3.3).

use rand::Rng;

const FRIENDLY: &[u8] = b"123456789abcdefghijkmnopqrstuvwxyz";
const SHORT_CODE: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const NANOID: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";

fn pick(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
        .collect()
}

/// `deployment_` + 21 chars of `[1-9a-km-z]`.
pub fn deployment_id() -> String {
    format!("deployment_{}", pick(FRIENDLY, 21))
}

/// `worker_` + 21 chars of `[1-9a-km-z]`.
pub fn worker_id() -> String {
    format!("worker_{}", pick(FRIENDLY, 21))
}

/// `task_` + 21 chars of `[1-9a-km-z]`.
pub fn task_id() -> String {
    format!("task_{}", pick(FRIENDLY, 21))
}

/// 8 chars of `[0-9a-z]`.
pub fn short_code() -> String {
    pick(SHORT_CODE, 8)
}

/// An internal cuid-like id: `c` + 24 chars of `[0-9a-z]`.
pub fn cuid() -> String {
    format!("c{}", pick(SHORT_CODE, 24))
}

/// nanoid(64), the device-login authorization code.
pub fn authorization_code() -> String {
    pick(NANOID, 64)
}

/// `tr_pat_` + 40 chars of `123456789abcdefghijkmnopqrstuvwxyz`.
pub fn personal_access_token() -> String {
    format!("tr_pat_{}", pick(FRIENDLY, 40))
}

/// `tr_<slug>_` + 20 chars of `[0-9A-Za-z]`.
pub fn secret_key(slug: &str) -> String {
    format!("tr_{slug}_{}", pick(ALNUM, 20))
}

/// `proj_` + 20 chars of `[a-z]`.
pub fn project_ref() -> String {
    format!("proj_{}", pick(LOWER, 20))
}

/// The obfuscated form of a PAT: `tr_pat_` + first 4 + 18 bullets + last 4.
pub fn obfuscate_pat(token: &str) -> String {
    let body: Vec<char> = token
        .strip_prefix("tr_pat_")
        .unwrap_or(token)
        .chars()
        .collect();
    if body.len() < 8 {
        return format!("tr_pat_{}", "\u{2022}".repeat(18));
    }
    let head: String = body[..4].iter().collect();
    let tail: String = body[body.len() - 4..].iter().collect();
    format!("tr_pat_{head}{}{tail}", "\u{2022}".repeat(18))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(deployment_id().len(), "deployment_".len() + 21);
        assert_eq!(short_code().len(), 8);
        assert!(personal_access_token().starts_with("tr_pat_"));
        assert_eq!(personal_access_token().len(), 47);
        assert_eq!(authorization_code().len(), 64);
        let pat = "tr_pat_abcd0000000000000000000000000000wxyz";
        assert_eq!(
            obfuscate_pat(pat),
            format!("tr_pat_abcd{}wxyz", "\u{2022}".repeat(18))
        );
        assert_eq!(project_ref().len(), 25);
    }
}
