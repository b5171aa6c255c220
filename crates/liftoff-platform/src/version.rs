//! Deployment version numbers `YYYYMMDD.N` (§2.6) and their ordering (§2.7).

use std::cmp::Ordering;

/// The version after `latest` (the environment's newest deployment, any
/// status) on the UTC day `today` (`YYYYMMDD`).
pub fn next_version(latest: Option<&str>, today: &str) -> String {
    if let Some((date, n)) = latest.and_then(split)
        && date == today
    {
        return format!("{today}.{}", n.saturating_add(1));
    }
    format!("{today}.1")
}

fn split(version: &str) -> Option<(&str, u64)> {
    let (date, n) = version.split_once('.')?;
    Some((date, n.parse().ok()?))
}

/// Orders two versions: the date part, then N **numerically** (the HEAD
/// behaviour; 3.3.17 compared N as strings, which judged `.10` older than `.9`).
/// Versions that do not parse compare as strings.
pub fn compare(a: &str, b: &str) -> Ordering {
    match (split(a), split(b)) {
        (Some((da, na)), Some((db, nb))) => da.cmp(db).then(na.cmp(&nb)),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering() {
        assert_eq!(next_version(None, "20250228"), "20250228.1");
        assert_eq!(next_version(Some("20250228.1"), "20250228"), "20250228.2");
        assert_eq!(next_version(Some("20250228.9"), "20250228"), "20250228.10");
        assert_eq!(next_version(Some("20250227.4"), "20250228"), "20250228.1");
        assert_eq!(next_version(Some("garbage"), "20250228"), "20250228.1");
    }

    #[test]
    fn ordering() {
        assert_eq!(compare("20250101.10", "20250101.9"), Ordering::Greater);
        assert_eq!(compare("20250102.1", "20250101.9"), Ordering::Greater);
        assert_eq!(compare("20250101.1", "20250101.1"), Ordering::Equal);
    }
}
