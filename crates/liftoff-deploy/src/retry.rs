//! Upstream's `zodfetch` retry policy: 5 attempts, delays 500 ms · 2ⁿ capped at 5 s, no jitter;
//! retries 408, 409, 429 and 5xx (or whatever `x-should-retry` says) and connection errors.
//! Waits as long as the server asks with `Retry-After` (seconds or HTTP date),
//! `retry-after-ms` or `x-ratelimit-reset` (unix ms), up to [`RetryPolicy::max_server_wait`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, including the first.
    pub max_attempts: u32,
    pub min_delay: Duration,
    pub max_delay: Duration,
    pub factor: u32,
    /// The longest wait a `Retry-After`-style header can ask for.
    pub max_server_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(5),
            factor: 2,
            max_server_wait: Duration::from_mins(1),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The backoff after failed attempt `attempt` (1-based): 500, 1000, 2000, 4000 ms by default.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let mult = self.factor.max(1).saturating_pow(exp);
        self.min_delay
            .saturating_mul(mult)
            .min(self.max_delay.max(self.min_delay))
    }

    /// The wait before the next attempt: the server's wish when it states one, else
    /// [`RetryPolicy::backoff`].
    pub fn delay(&self, attempt: u32, headers: &RetryHeaders, now: SystemTime) -> Duration {
        headers
            .server_wait(now)
            .map_or_else(|| self.backoff(attempt), |d| d.min(self.max_server_wait))
    }
}

/// Whether a status is worth retrying (`x-should-retry` overrides when present).
pub fn is_retryable_status(status: u16, should_retry_header: Option<&str>) -> bool {
    match should_retry_header.map(str::trim) {
        Some("true") => return true,
        Some("false") => return false,
        _ => {}
    }
    matches!(status, 408 | 409 | 429) || status >= 500
}

/// The retry-related response headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryHeaders {
    pub retry_after: Option<String>,
    pub retry_after_ms: Option<String>,
    pub ratelimit_reset: Option<String>,
}

impl RetryHeaders {
    fn server_wait(&self, now: SystemTime) -> Option<Duration> {
        if let Some(ms) = self
            .retry_after_ms
            .as_deref()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
        {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
        if let Some(v) = self.retry_after.as_deref().map(str::trim) {
            if let Ok(secs) = v.parse::<u64>() {
                return Some(Duration::from_secs(secs));
            }
            if let Some(at) = parse_http_date(v) {
                return Some(at.duration_since(now).unwrap_or(Duration::ZERO));
            }
        }
        if let Some(reset_ms) = self
            .ratelimit_reset
            .as_deref()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            let at = UNIX_EPOCH + Duration::from_millis(reset_ms);
            return Some(at.duration_since(now).unwrap_or(Duration::ZERO));
        }
        None
    }
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only form servers send today.
fn parse_http_date(s: &str) -> Option<SystemTime> {
    let mut it = s.split_whitespace();
    let _weekday = it.next()?;
    let day: u64 = it.next()?.parse().ok()?;
    let month = match it.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':');
    let h: u64 = hms.next()?.parse().ok()?;
    let m: u64 = hms.next()?.parse().ok()?;
    let sec: u64 = hms.next()?.parse().ok()?;
    if it.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, i64::try_from(day).ok()?);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + sec;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_backoff_schedule() {
        let p = RetryPolicy::default();
        let delays: Vec<u128> = (1..=6).map(|a| p.backoff(a).as_millis()).collect();
        assert_eq!(delays, vec![500, 1000, 2000, 4000, 5000, 5000]);
        assert_eq!(p.max_attempts, 5);
        assert_eq!(RetryPolicy::none().max_attempts, 1);
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(5));
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 409, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(s, None), "{s}");
        }
        for s in [400, 401, 403, 404, 405, 422] {
            assert!(!is_retryable_status(s, None), "{s}");
        }
        assert!(is_retryable_status(400, Some("true")));
        assert!(!is_retryable_status(503, Some("false")));
        assert!(is_retryable_status(503, Some("maybe")));
    }

    #[test]
    fn honours_server_waits() {
        let p = RetryPolicy::default();
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770);
        let h = |ra: Option<&str>, ms: Option<&str>, reset: Option<&str>| RetryHeaders {
            retry_after: ra.map(Into::into),
            retry_after_ms: ms.map(Into::into),
            ratelimit_reset: reset.map(Into::into),
        };
        assert_eq!(
            p.delay(1, &h(Some("3"), None, None), now),
            Duration::from_secs(3)
        );
        assert_eq!(
            p.delay(1, &h(Some("3"), Some("250"), None), now),
            Duration::from_millis(250)
        );
        // Sun, 06 Nov 1994 08:49:37 GMT = 784111777.
        assert_eq!(
            p.delay(
                1,
                &h(Some("Sun, 06 Nov 1994 08:49:37 GMT"), None, None),
                now
            ),
            Duration::from_secs(7)
        );
        assert_eq!(
            p.delay(1, &h(None, None, Some("784111772000")), now),
            Duration::from_secs(2)
        );
        // In the past: retry at once. Too far: capped.
        assert_eq!(
            p.delay(1, &h(None, None, Some("1000")), now),
            Duration::ZERO
        );
        assert_eq!(
            p.delay(1, &h(Some("86400"), None, None), now),
            Duration::from_mins(1)
        );
        // Garbage falls back to the backoff.
        assert_eq!(
            p.delay(2, &h(Some("soon"), Some("-1"), Some("x")), now),
            Duration::from_secs(1)
        );
    }
}
