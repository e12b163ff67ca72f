//! The one place requests are retried: exponential backoff with full jitter, `Retry-After`
//! honoured but capped, and an environment override so test suites never sleep.

use std::future::Future;
use std::time::{Duration, SystemTime};

use rand::Rng;
use reqwest::header::RETRY_AFTER;

use super::{RegistryError, RetryPolicy, dates};

/// Overrides both `base_delay` and `max_delay` (milliseconds); test suites set it to 0.
pub(super) const DELAY_ENV: &str = "AIRLIFT_RETRY_DELAY_MS";

/// `policy` with [`DELAY_ENV`] applied when `env` holds a number of milliseconds.
pub(super) fn with_env_override(mut policy: RetryPolicy, env: Option<&str>) -> RetryPolicy {
    if let Some(ms) = env.and_then(|v| v.trim().parse::<u64>().ok()) {
        policy.base_delay = Duration::from_millis(ms);
        policy.max_delay = Duration::from_millis(ms);
    }
    policy
}

/// Statuses worth retrying: the server is overloaded, failing or asked us to slow down.
pub(super) fn status_is_retryable(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

/// The upper bound of the delay before retry number `attempt` (0-based).
pub(super) fn ceiling(policy: &RetryPolicy, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.min(31));
    policy
        .base_delay
        .saturating_mul(factor)
        .min(policy.max_delay)
}

/// Full jitter (uniform in `0..=ceiling`) keeps many tasks that failed together from
/// retrying together.
pub(super) fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let cap = ceiling(policy, attempt).as_millis() as u64;
    if cap == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::rng().random_range(0..=cap))
}

/// `Retry-After` as delay-seconds or an HTTP date (relative to `now`; past dates mean now).
pub(super) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = dates::parse_http_date(value)?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Runs `op` until it yields a non-retryable outcome or the policy is exhausted. A response
/// with a retryable status is returned as-is once retries run out so the caller can report
/// the registry's own error body.
pub(super) async fn run<F, Fut>(
    policy: &RetryPolicy,
    what: &str,
    mut op: F,
) -> Result<reqwest::Response, RegistryError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<reqwest::Response, RegistryError>>,
{
    let mut attempt = 0;
    loop {
        let result = op().await;
        let delay = match &result {
            Ok(resp) if status_is_retryable(resp.status().as_u16()) => resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()))
                .map(|d| d.min(policy.max_delay))
                .unwrap_or_else(|| backoff(policy, attempt)),
            Err(e) if e.is_retryable() => backoff(policy, attempt),
            _ => return result,
        };
        if attempt >= policy.max_retries {
            return result;
        }
        let outcome = match &result {
            Ok(resp) => resp.status().as_u16().to_string(),
            Err(_) => "transport error".to_owned(),
        };
        // Release the connection before sleeping.
        drop(result);
        attempt += 1;
        tracing::debug!(%what, %outcome, attempt, delay_ms = delay.as_millis() as u64, "retrying");
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn policy(base_ms: u64, max_ms: u64) -> RetryPolicy {
        RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(base_ms),
            max_delay: Duration::from_millis(max_ms),
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = policy(100, 1000);
        assert_eq!(ceiling(&p, 0), Duration::from_millis(100));
        assert_eq!(ceiling(&p, 1), Duration::from_millis(200));
        assert_eq!(ceiling(&p, 3), Duration::from_millis(800));
        assert_eq!(ceiling(&p, 4), Duration::from_millis(1000));
        assert_eq!(ceiling(&p, 200), Duration::from_millis(1000));
        for attempt in 0..10 {
            for _ in 0..50 {
                assert!(backoff(&p, attempt) <= ceiling(&p, attempt));
            }
        }
        // Full jitter really spreads: 200 draws from 0..=1000 are not all equal.
        let draws: std::collections::HashSet<_> = (0..200).map(|_| backoff(&p, 10)).collect();
        assert!(draws.len() > 10, "{draws:?}");
        assert_eq!(backoff(&policy(0, 0), 3), Duration::ZERO);
    }

    #[test]
    fn env_override_replaces_both_delays() {
        let p = with_env_override(policy(100, 1000), Some("0"));
        assert_eq!(
            (p.base_delay, p.max_delay),
            (Duration::ZERO, Duration::ZERO)
        );
        assert_eq!(p.max_retries, 5);
        let p = with_env_override(policy(100, 1000), Some("7"));
        assert_eq!(p.max_delay, Duration::from_millis(7));
        let p = with_env_override(policy(100, 1000), Some("soon"));
        assert_eq!(p.base_delay, Duration::from_millis(100));
        let p = with_env_override(policy(100, 1000), None);
        assert_eq!(p.max_delay, Duration::from_millis(1000));
    }

    #[test]
    fn retry_after_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        let later = now + Duration::from_secs(60);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", later),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("tomorrow", now), None);
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(status_is_retryable(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 409, 416] {
            assert!(!status_is_retryable(s), "{s}");
        }
    }
}
