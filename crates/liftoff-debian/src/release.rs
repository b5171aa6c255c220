//! `InRelease`: `OpenPGP` cleartext signature against the source's keyring, `Date`/`Valid-Until`,
//! and the `SHA256:` list of index files.

use crate::control::paragraphs;
use crate::error::DebianError;
use crate::sources::Source;
use pgp::composed::CleartextSignedMessage;
use std::collections::HashMap;

/// A verified `InRelease`.
#[derive(Debug)]
#[allow(clippy::struct_excessive_bools)] // one per Release field
pub(crate) struct Release {
    /// URL of the `InRelease` file.
    pub url: String,
    /// URL of the directory holding it (index paths are relative to it).
    pub base: String,
    /// `path -> (sha256, size)`.
    pub sha256: HashMap<String, (String, u64)>,
    pub acquire_by_hash: bool,
    pub architectures: Vec<String>,
    /// `No-Support-for-Architecture-all: Packages`: arch-all packages are in the per-arch indexes.
    pub no_arch_all_packages: bool,
    pub not_automatic: bool,
    pub but_automatic_upgrades: bool,
}

pub(crate) fn verify_and_parse(
    text: &str,
    url: &str,
    base: &str,
    source: &Source,
) -> Result<Release, DebianError> {
    let signed = if source.trusted {
        strip_signature(text)
    } else {
        verify_signature(text, url, source)?
    };
    parse(&signed, url, base, now_unix())
}

/// The signed text of a cleartext-signed message, without checking the signature (for
/// `Trusted: yes` sources).
fn strip_signature(text: &str) -> String {
    match CleartextSignedMessage::from_string(text) {
        Ok((msg, _)) => msg.signed_text().replace("\r\n", "\n"),
        Err(_) => text.to_string(),
    }
}

/// Verify that at least one signature of the `InRelease` was made by a key of the source's
/// keyring (a primary key, or a subkey validly bound to it); return the signed text.
pub(crate) fn verify_signature(
    text: &str,
    url: &str,
    source: &Source,
) -> Result<String, DebianError> {
    let ring = &source.keyring;
    let fail = |message: String| DebianError::BadSignature {
        url: url.to_string(),
        keyrings: ring.paths.clone(),
        message,
    };
    if ring.keys.is_empty() {
        return Err(DebianError::Keyring {
            uri: source.uri.clone(),
            suite: source.suite.clone(),
            keyrings: ring.paths.clone(),
            message: if ring.problems.is_empty() {
                "the keyrings hold no keys".to_string()
            } else {
                ring.problems.join("; ")
            },
        });
    }
    let (msg, _) = CleartextSignedMessage::from_string(text)
        .map_err(|e| fail(format!("not an OpenPGP cleartext-signed file ({e})")))?;
    let signed = msg.signed_text();
    for sig in msg.signatures() {
        for key in &ring.keys {
            if sig.verify(key, signed.as_bytes()).is_ok() {
                return Ok(signed.replace("\r\n", "\n"));
            }
            // Archive keys sign with subkeys; only subkeys bound to a trusted primary count.
            for sub in &key.public_subkeys {
                if sig.verify(sub, signed.as_bytes()).is_ok()
                    && sub.verify_bindings(&key.primary_key).is_ok()
                {
                    return Ok(signed.replace("\r\n", "\n"));
                }
            }
        }
    }
    let issuers: Vec<String> = msg
        .signatures()
        .iter()
        .flat_map(|s| s.issuer_fingerprint().into_iter().map(|f| format!("{f:x}")))
        .collect();
    Err(fail(format!(
        "no signature (issuers: {}) verifies with any of {} trusted keys",
        if issuers.is_empty() {
            "unknown".to_string()
        } else {
            issuers.join(", ")
        },
        ring.keys.len()
    )))
}

pub(crate) fn parse(text: &str, url: &str, base: &str, now: i64) -> Result<Release, DebianError> {
    let p = paragraphs(text, false)
        .next()
        .ok_or_else(|| DebianError::Parse {
            path: url.into(),
            message: "empty Release file".into(),
        })?;
    check_dates(p.get("Date"), p.get("Valid-Until"), now, url)?;
    let mut sha256 = HashMap::new();
    for line in p.get("SHA256").unwrap_or("").lines() {
        let mut parts = line.split_whitespace();
        if let (Some(h), Some(s), Some(path)) = (parts.next(), parts.next(), parts.next())
            && let Ok(size) = s.parse::<u64>()
        {
            sha256.insert(path.to_string(), (h.to_ascii_lowercase(), size));
        }
    }
    if sha256.is_empty() {
        return Err(DebianError::Parse {
            path: url.into(),
            message: "no SHA256 entries (apt refuses Release files without strong hashes)".into(),
        });
    }
    let flag = |n: &str| {
        p.get(n)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("yes"))
    };
    Ok(Release {
        url: url.to_string(),
        base: base.to_string(),
        sha256,
        acquire_by_hash: flag("Acquire-By-Hash"),
        architectures: p
            .get("Architectures")
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        no_arch_all_packages: p
            .get("No-Support-for-Architecture-all")
            .is_some_and(|v| v.trim() == "Packages"),
        not_automatic: flag("NotAutomatic"),
        but_automatic_upgrades: flag("ButAutomaticUpgrades"),
    })
}

/// Reject a Release whose `Valid-Until` has passed or whose `Date` is in the future.
pub(crate) fn check_dates(
    date: Option<&str>,
    valid_until: Option<&str>,
    now: i64,
    url: &str,
) -> Result<(), DebianError> {
    if let Some(vu) = valid_until {
        let t = parse_date(vu).ok_or_else(|| DebianError::Parse {
            path: url.into(),
            message: format!("unreadable Valid-Until `{}`", vu.trim()),
        })?;
        if t < now {
            return Err(DebianError::ReleaseExpired {
                url: url.to_string(),
                valid_until: vu.trim().to_string(),
                now: format_date(now),
            });
        }
    }
    if let Some(d) = date
        && let Some(t) = parse_date(d)
        && t > now
    {
        return Err(DebianError::ReleaseNotYetValid {
            url: url.to_string(),
            date: d.trim().to_string(),
            now: format_date(now),
        });
    }
    Ok(())
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// Parse an RFC 2822 date as used in Release files (`Thu, 03 Dec 2026 21:03:35 UTC`).
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = s.split_once(',').map_or(s, |(_, r)| r.trim());
    let mut parts = s.split_whitespace();
    let day: i64 = parts.next()?.parse().ok()?;
    let month = parts.next()?;
    let month = i64::try_from(MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))?).ok()? + 1;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let h: i64 = hms.next()?.parse().ok()?;
    let m: i64 = hms.next()?.parse().ok()?;
    let sec: i64 = hms.next().map_or(Some(0), |x| x.parse().ok())?;
    let offset = match parts.next() {
        None | Some("UTC" | "GMT" | "Z" | "UT") => 0,
        Some(z) if (z.starts_with('+') || z.starts_with('-')) && z.len() == 5 => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let hh: i64 = z[1..3].parse().ok()?;
            let mm: i64 = z[3..5].parse().ok()?;
            sign * (hh * 3600 + mm * 60)
        }
        Some(_) => return None,
    };
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86400 + h * 3600 + m * 60 + sec - offset)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Format unix seconds like a Release date.
#[allow(clippy::many_single_char_names)] // the civil-from-days algorithm's customary names
pub(crate) fn format_date(t: i64) -> String {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let month = MONTHS[usize::try_from(m - 1).unwrap_or(0)];
    let wd = DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    format!(
        "{wd}, {d:02} {month} {y} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::{Keyring, load_keyring};
    use std::path::Path;
    use std::sync::Arc;

    fn source_with(keyring: Keyring) -> Source {
        Source {
            uri: "http://mirror.invalid/debian".into(),
            suite: "stable".into(),
            components: vec!["main".into()],
            architectures: None,
            trusted: false,
            keyring: Arc::new(keyring),
            declared_in: "/etc/apt/sources.list".into(),
        }
    }

    /// apt's own copies of the host's `InRelease` files verify with the host keyring; a changed
    /// byte or another keyring does not.
    #[test]
    fn verifies_signatures_with_the_keyring_only() {
        let Ok(rd) = std::fs::read_dir("/var/lib/apt/lists") else {
            return;
        };
        let mut files: Vec<_> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with("_InRelease"))
            .collect();
        files.sort();
        let debian = Path::new("/usr/share/keyrings/debian-archive-keyring.gpg");
        let Some(file) = files.first().filter(|_| debian.exists()) else {
            return;
        };
        let text = std::fs::read_to_string(file).unwrap();
        let good = source_with(load_keyring(
            Path::new("/"),
            Some(&debian.to_string_lossy()),
        ));
        let signed = verify_signature(&text, "u", &good).unwrap();
        assert!(signed.contains("SHA256:"));

        let i = text.find("SHA256:").unwrap() + 20;
        let mut tampered = text.clone().into_bytes();
        tampered[i] = if tampered[i] == b'0' { b'1' } else { b'0' };
        let err = verify_signature(&String::from_utf8(tampered).unwrap(), "u", &good).unwrap_err();
        assert!(matches!(err, DebianError::BadSignature { .. }), "{err}");

        let other = std::fs::read_dir("/usr/share/keyrings")
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                !p.to_string_lossy().contains("debian-archive")
                    && p.extension().is_some_and(|e| e == "gpg")
            });
        if let Some(other) = other {
            let wrong = source_with(load_keyring(Path::new("/"), Some(&other.to_string_lossy())));
            let err = verify_signature(&text, "u", &wrong).unwrap_err();
            assert!(matches!(err, DebianError::BadSignature { .. }), "{err}");
            assert!(
                err.to_string().contains(&other.display().to_string()),
                "{err}"
            );
        }
        let empty = source_with(load_keyring(Path::new("/"), Some("/nonexistent.gpg")));
        assert!(matches!(
            verify_signature(&text, "u", &empty),
            Err(DebianError::Keyring { .. })
        ));
    }

    #[test]
    fn dates_round_trip() {
        let t = parse_date("Thu, 03 Dec 2026 21:03:35 UTC").unwrap();
        assert_eq!(format_date(t), "Thu, 03 Dec 2026 21:03:35 UTC");
        assert_eq!(
            parse_date("Sat, 10 Jun 2023 08:53:33 UTC"),
            Some(1_686_387_213)
        );
        assert_eq!(parse_date("Thu, 01 Jan 1970 01:00:00 +0100"), Some(0));
        assert_eq!(format_date(0), "Thu, 01 Jan 1970 00:00:00 UTC");
        assert_eq!(parse_date("yesterday"), None);
    }

    #[test]
    fn valid_until_in_the_past_is_rejected() {
        let now = parse_date("Sat, 28 Nov 2026 12:00:00 UTC").unwrap();
        let url = "http://mirror.invalid/dists/x/InRelease";
        let err = check_dates(
            Some("Thu, 26 Nov 2026 21:03:35 UTC"),
            Some("Fri, 27 Nov 2026 21:03:35 UTC"),
            now,
            url,
        )
        .unwrap_err();
        assert!(matches!(err, DebianError::ReleaseExpired { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("expired")
                && msg.contains("Fri, 27 Nov 2026 21:03:35 UTC")
                && msg.contains(url),
            "{msg}"
        );
        check_dates(
            Some("Thu, 26 Nov 2026 21:03:35 UTC"),
            Some("Thu, 03 Dec 2026 21:03:35 UTC"),
            now,
            url,
        )
        .unwrap();
        check_dates(Some("Thu, 26 Nov 2026 21:03:35 UTC"), None, now, url).unwrap();
        let future =
            check_dates(Some("Mon, 30 Nov 2026 00:00:00 UTC"), None, now, url).unwrap_err();
        assert!(matches!(future, DebianError::ReleaseNotYetValid { .. }));
        assert!(check_dates(None, Some("someday"), now, url).is_err());
    }

    #[test]
    fn parses_release_fields() {
        let text = "Origin: Debian\nDate: Thu, 26 Nov 2026 21:03:35 UTC\nValid-Until: Thu, 03 Dec 2026 21:03:35 UTC\nAcquire-By-Hash: yes\nArchitectures: all amd64\nNo-Support-for-Architecture-all: Packages\nSHA256:\n 0123abcd 42 main/binary-amd64/Packages.xz\n ffff 7 main/binary-amd64/Release\n";
        let now = parse_date("Sat, 28 Nov 2026 12:00:00 UTC").unwrap();
        let r = parse(text, "u", "b", now).unwrap();
        assert!(r.acquire_by_hash && r.no_arch_all_packages);
        assert_eq!(
            r.sha256["main/binary-amd64/Packages.xz"],
            ("0123abcd".to_string(), 42)
        );
        let later = parse_date("Sat, 05 Dec 2026 12:00:00 UTC").unwrap();
        assert!(matches!(
            parse(text, "u", "b", later),
            Err(DebianError::ReleaseExpired { .. })
        ));
    }
}
