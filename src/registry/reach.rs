//! Reachability, settled once per registry before a run fans out: a registry that is down
//! (connection refused), a host name that does not resolve or a TLS problem fails at once
//! with one clear error, instead of every image of the run retrying it in turn. Other
//! network failures (timeouts, resets, 5xx) are retried under the run's policy, each retry
//! announced to the caller so a person sees why nothing moves yet.

use std::time::Duration;

use futures_util::future::join_all;

use super::{ClientOptions, RegistryClient, RegistryError, RetryPolicy, retry};

/// A retry of a registry's first request, for the person watching.
#[derive(Debug, Clone)]
pub struct ReachRetry {
    /// The registry (`host[:port]`).
    pub registry: String,
    /// The wait before the next attempt.
    pub delay: Duration,
    /// The next attempt's number (2 for the first retry).
    pub attempt: u32,
    /// Attempts allowed in all.
    pub attempts: u32,
    /// Why the last attempt failed, with its causes.
    pub error: String,
}

impl std::fmt::Display for ReachRetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "retrying {} in {:.0} s (attempt {}/{}): {}",
            self.registry,
            self.delay.as_secs_f64().ceil(),
            self.attempt,
            self.attempts,
            self.error
        )
    }
}

/// A registry that could not be reached, and why.
#[derive(Debug)]
pub struct Unreachable {
    /// The registry (`host[:port]`).
    pub registry: String,
    /// The last error.
    pub error: RegistryError,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.error.unreachable_reason() {
            Some(reason) => write!(f, "cannot reach registry {}: {reason}", self.registry),
            None => write!(
                f,
                "cannot reach registry {}: {}",
                self.registry,
                crate::transfer::error_chain(&self.error)
            ),
        }
    }
}

impl RegistryError {
    /// For a failure to connect at all, a short reason a person acts on; `None` for
    /// anything else.
    pub fn unreachable_reason(&self) -> Option<&'static str> {
        let RegistryError::Transport { source, .. } = self else {
            return None;
        };
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(source);
        while let Some(e) = cur {
            if let Some(io) = e.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::ConnectionRefused
            {
                return Some("connection refused (is it running, and is the port right?)");
            }
            if e.to_string().starts_with("dns error") {
                return Some("its host name does not resolve (DNS lookup failed)");
            }
            cur = e.source();
        }
        None
    }

    /// Whether retrying cannot help: nothing listens, the name does not resolve, or the
    /// failure is not a network one at all.
    fn is_final(&self) -> bool {
        self.unreachable_reason().is_some() || !self.is_retryable()
    }
}

/// Probes every registry of `registries` once (concurrently), retrying only failures that
/// may pass, under `options.retry` (with `AIRLIFT_RETRY_DELAY_MS` applied). Returns the
/// registries that stayed unreachable, in the order given. `on_retry` hears every retry.
pub async fn check_reachable(
    options: &ClientOptions,
    registries: &[String],
    on_retry: &(dyn Fn(&ReachRetry) + Send + Sync),
) -> Result<Vec<Unreachable>, RegistryError> {
    let policy = retry::with_env_override(
        options.retry.clone(),
        std::env::var(retry::DELAY_ENV).ok().as_deref(),
    );
    // The probing client makes one attempt per call: the loop below owns the retries.
    let client = RegistryClient::new(ClientOptions {
        retry: RetryPolicy {
            max_retries: 0,
            ..policy.clone()
        },
        ..options.clone()
    })?;
    let probes = registries
        .iter()
        .map(|registry| probe(&client, registry, &policy, on_retry));
    Ok(join_all(probes).await.into_iter().flatten().collect())
}

async fn probe(
    client: &RegistryClient,
    registry: &str,
    policy: &RetryPolicy,
    on_retry: &(dyn Fn(&ReachRetry) + Send + Sync),
) -> Option<Unreachable> {
    let mut attempt = 0;
    loop {
        let error = match client.inner.url(registry, "v2/").await {
            Ok(_) => return None,
            Err(e) => e,
        };
        if error.is_final() || attempt >= policy.max_retries {
            return Some(Unreachable {
                registry: registry.to_owned(),
                error,
            });
        }
        let delay = retry::ceiling(policy, attempt);
        attempt += 1;
        on_retry(&ReachRetry {
            registry: registry.to_owned(),
            delay,
            attempt: attempt + 1,
            attempts: policy.max_retries + 1,
            error: crate::transfer::error_chain(&error),
        });
        tokio::time::sleep(delay).await;
    }
}
