//! Time: the platform clock (real time plus a test offset), UTC calendar
//! dates for version numbers and RFC 3339 timestamps for the state API.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Real time shifted by an adjustable offset, in milliseconds since the epoch.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn now_ms(&self) -> i64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        real.saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    pub fn advance_ms(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYYMMDD` of a UTC instant.
pub fn version_date(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(86_400_000));
    format!("{y:04}{m:02}{d:02}")
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of a UTC instant.
pub fn rfc3339(ms: i64) -> String {
    let (year, month, day) = civil_from_days(ms.div_euclid(86_400_000));
    let in_day = ms.rem_euclid(86_400_000);
    let (hour, rest) = (in_day / 3_600_000, in_day % 3_600_000);
    let (minute, rest) = (rest / 60_000, rest % 60_000);
    let (second, milli) = (rest / 1000, rest % 1000);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(version_date(0), "19700101");
        // 2025-02-28T23:59:59.999Z
        assert_eq!(version_date(1_740_787_199_999), "20250228");
        assert_eq!(version_date(1_740_787_200_000), "20250301");
        assert_eq!(rfc3339(1_740_787_199_999), "2025-02-28T23:59:59.999Z");
        // leap day
        assert_eq!(version_date(1_709_164_800_000), "20240229");
    }

    #[test]
    fn offset() {
        let clock = Clock::default();
        let before = clock.now_ms();
        clock.advance_ms(86_400_000);
        assert!(clock.now_ms() - before >= 86_400_000);
    }
}
