//! Registry authentication: scope sets, the Bearer token flow and the token cache.
//!
//! Tokens are cached per (registry, normalised scope set). Each cache slot is an async mutex,
//! so a hundred tasks that need the same token wait on one fetch instead of sending a hundred
//! token requests. Token values never reach `Debug`, errors or logs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;

use super::challenge::Challenge;
use super::{AuthFailure, Credential, RegistryError, RetryPolicy, dates, headers, retry};
use crate::credentials::IDENTITY_TOKEN_USERNAME;

/// `client_id` sent with the OAuth2 `refresh_token` grant.
const CLIENT_ID: &str = "airlift";
/// Largest token response read (bytes): a token service that streams forever is cut here.
pub(super) const MAX_TOKEN_RESPONSE: usize = 64 * 1024;
/// Longest token accepted (bytes): it is sent back as a header on every request.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// `repository:NAME:pull`.
pub(super) fn pull(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// `repository:NAME:pull,push`.
pub(super) fn pull_push(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// Normalises scopes into a cache key: actions merged per resource, sorted and deduplicated,
/// so `[a:push, a:pull]` and `[a:pull,push]` share one token.
pub(super) fn scope_key(scopes: &[String]) -> Vec<String> {
    let mut merged: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for scope in scopes {
        match scope.rsplit_once(':') {
            Some((resource, actions)) if resource.contains(':') => {
                let set = merged.entry(resource).or_default();
                set.extend(actions.split(',').map(str::trim).filter(|a| !a.is_empty()));
            }
            _ => {
                merged.entry(scope.as_str()).or_default();
            }
        }
    }
    merged
        .into_iter()
        .map(|(resource, actions)| {
            if actions.is_empty() {
                resource.to_owned()
            } else {
                format!(
                    "{resource}:{}",
                    actions.into_iter().collect::<Vec<_>>().join(",")
                )
            }
        })
        .collect()
}

/// The repository and action a failed call was about, for auth messages: `push` for
/// writes, `pull` for reads, and the repository of the scope asking for it.
pub(super) fn scope_subject(method: &reqwest::Method, scopes: &[String]) -> (&'static str, String) {
    let action = if method == reqwest::Method::GET || method == reqwest::Method::HEAD {
        "pull"
    } else {
        "push"
    };
    let parsed: Vec<(&str, &str)> = scopes
        .iter()
        .filter_map(|s| {
            let (resource, actions) = s.rsplit_once(':')?;
            let name = resource.split_once(':').map(|(_, n)| n).unwrap_or(resource);
            Some((name, actions))
        })
        .collect();
    let repository = parsed
        .iter()
        .find(|(_, actions)| actions.split(',').any(|a| a == action))
        .or(parsed.first())
        .map(|(name, _)| name.to_string())
        .unwrap_or_else(|| "the registry".to_owned());
    (action, repository)
}

/// A bearer token and when to stop using it.
#[derive(Clone)]
pub(super) struct Token {
    secret: Arc<str>,
    refresh_at: Instant,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Token {
    /// The value for `Authorization: Bearer`.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    fn usable(&self) -> bool {
        Instant::now() < self.refresh_at
    }
}

/// When to refresh a token of `lifetime` issued `age` ago: a margin before it expires, so a
/// request started just before expiry does not carry a dead token. The margin is a quarter
/// of the lifetime (at most 30 s), but at least a second (at most half the lifetime):
/// token services write `exp` in whole seconds, so a short token may die up to a second
/// before `expires_in` says.
pub(super) fn refresh_after(lifetime: Duration, age: Duration) -> Duration {
    let floor = Duration::from_secs(1).min(lifetime / 2);
    let margin = (lifetime / 4).max(floor).min(Duration::from_secs(30));
    lifetime.saturating_sub(age).saturating_sub(margin)
}

/// How long ago a token was issued, per its `issued_at`. A timestamp in the future or older
/// than the whole lifetime says more about clock skew than about the token, so it is ignored:
/// trusting it would make every token look expired and refetched on every request.
pub(super) fn token_age(issued_at: Option<&str>, now: SystemTime, lifetime: Duration) -> Duration {
    issued_at
        .and_then(dates::parse_rfc3339)
        .and_then(|issued| now.duration_since(issued).ok())
        .filter(|age| *age < lifetime)
        .unwrap_or(Duration::ZERO)
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
    issued_at: Option<String>,
}

type Slot = Arc<tokio::sync::Mutex<Option<Token>>>;

/// Everything a token fetch needs from the client.
pub(super) struct TokenRequest<'a> {
    /// The client for the realm's host.
    pub http: reqwest::Client,
    pub retry: &'a RetryPolicy,
    pub timeout: Duration,
    pub registry: &'a str,
    pub challenge: &'a Challenge,
    pub credential: Option<&'a Credential>,
}

/// The token cache.
#[derive(Default)]
pub(super) struct Tokens {
    slots: Mutex<HashMap<(String, Vec<String>), Slot>>,
}

impl Tokens {
    fn slot(&self, registry: &str, key: &[String]) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry((registry.to_owned(), key.to_vec()))
            .or_default()
            .clone()
    }

    /// Forgets the cached token for `scopes` if it is `secret` (the registry refused it
    /// during a request that cannot be resent), so the next request fetches a fresh one.
    pub async fn invalidate(&self, registry: &str, scopes: &[String], secret: &str) {
        let slot = self.slot(registry, &scope_key(scopes));
        let mut cached = slot.lock().await;
        if cached.as_ref().is_some_and(|t| t.secret() == secret) {
            *cached = None;
        }
    }

    /// A usable token for `scopes`, fetching one when none is cached, it is near expiry, or it
    /// is the one the registry just rejected (`rejected`).
    pub async fn get(
        &self,
        req: &TokenRequest<'_>,
        scopes: &[String],
        rejected: Option<&str>,
    ) -> Result<Token, RegistryError> {
        let key = scope_key(scopes);
        let slot = self.slot(req.registry, &key);
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref()
            && token.usable()
            && rejected != Some(token.secret())
        {
            return Ok(token.clone());
        }
        *cached = None;
        let token = fetch(req, &key).await?;
        *cached = Some(token.clone());
        Ok(token)
    }
}

fn auth_error(req: &TokenRequest<'_>, key: &[String], reason: String) -> RegistryError {
    auth_error_kind(req, key, reason, AuthFailure::Other)
}

fn auth_error_kind(
    req: &TokenRequest<'_>,
    key: &[String],
    reason: String,
    kind: AuthFailure,
) -> RegistryError {
    RegistryError::Auth {
        registry: req.registry.to_owned(),
        scope: key.join(" "),
        reason,
        kind: Box::new(kind),
    }
}

/// The form of an OAuth2 `refresh_token` grant, as docker sends it for identity tokens.
pub(super) fn refresh_form(refresh_token: &str, service: Option<&str>, key: &[String]) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "refresh_token")
        .append_pair("refresh_token", refresh_token)
        .append_pair("client_id", CLIENT_ID);
    if let Some(service) = service {
        form.append_pair("service", service);
    }
    if !key.is_empty() {
        form.append_pair("scope", &key.join(" "));
    }
    form.finish()
}

/// Asks the challenge's realm for a token: a GET with `service` and one `scope` per scope
/// (Basic credentials attached when known), or, for an identity token (user name
/// `<token>`), a POST with the OAuth2 `refresh_token` grant.
async fn fetch(req: &TokenRequest<'_>, key: &[String]) -> Result<Token, RegistryError> {
    let realm = req
        .challenge
        .param("realm")
        .ok_or_else(|| auth_error(req, key, "the Bearer challenge names no realm".to_owned()))?;
    let realm_url = url::Url::parse(realm).map_err(|e| {
        auth_error(
            req,
            key,
            format!("the Bearer realm `{realm}` is not a URL: {e}"),
        )
    })?;
    let identity_token = req
        .credential
        .filter(|c| c.username == IDENTITY_TOKEN_USERNAME)
        .map(|c| c.password.as_str());
    let mut url = realm_url;
    if identity_token.is_none() {
        let mut q = url.query_pairs_mut();
        if let Some(service) = req.challenge.param("service") {
            q.append_pair("service", service);
        }
        for scope in key {
            q.append_pair("scope", scope);
        }
    }
    let shown = url.to_string();
    let method = if identity_token.is_some() {
        "POST"
    } else {
        "GET"
    };
    let resp = retry::run(req.retry, &shown, || async {
        let rb = match identity_token {
            Some(refresh) => req
                .http
                .post(url.clone())
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(refresh_form(refresh, req.challenge.param("service"), key)),
            None => {
                let rb = req.http.get(url.clone());
                match req.credential {
                    Some(c) => rb.basic_auth(&c.username, Some(&c.password)),
                    None => rb,
                }
            }
        };
        let resp = rb
            .timeout(req.timeout)
            .send()
            .await
            .map_err(|e| super::http::transport(&url, e))?;
        tracing::debug!(method, url = %shown, status = resp.status().as_u16(), "token request");
        Ok(resp)
    })
    .await?;
    let status = resp.status().as_u16();
    // An OAuth2 server answers a bad refresh token with 400 `invalid_grant`.
    if status == 401 || status == 403 || (identity_token.is_some() && status == 400) {
        let (reason, kind) = match req.credential {
            Some(_) => (
                "credentials rejected by the token service".to_owned(),
                AuthFailure::Rejected,
            ),
            None => (
                format!("no credentials for {}", req.registry),
                AuthFailure::Missing,
            ),
        };
        return Err(auth_error_kind(req, key, reason, kind));
    }
    let too_large = || RegistryError::Protocol {
        url: shown.clone(),
        reason: format!("token response exceeds the limit of {MAX_TOKEN_RESPONSE} bytes"),
    };
    if headers::content_length(resp.headers()).is_some_and(|n| n > MAX_TOKEN_RESPONSE as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        let chunk = chunk.map_err(|e| RegistryError::Transport {
            url: shown.clone(),
            source: e.without_url(),
        })?;
        if body.len() + chunk.len() > MAX_TOKEN_RESPONSE {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    if status != 200 {
        return Err(RegistryError::Status {
            method: method.to_owned(),
            url: shown,
            status,
            detail: headers::error_detail(&body),
        });
    }
    let parsed: TokenResponse =
        serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
            url: shown.clone(),
            reason: format!("token response is not the expected JSON: {e}"),
        })?;
    let secret = parsed
        .token
        .filter(|t| !t.is_empty())
        .or(parsed.access_token.filter(|t| !t.is_empty()))
        .ok_or_else(|| RegistryError::Protocol {
            url: shown.clone(),
            reason: "token response has neither `token` nor `access_token`".to_owned(),
        })?;
    if secret.len() > MAX_TOKEN_LEN || !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(RegistryError::Protocol {
            url: shown.clone(),
            reason: format!(
                "the token is not usable as a header ({} bytes; at most {MAX_TOKEN_LEN} printable ASCII characters)",
                secret.len()
            ),
        });
    }
    // No (or a zero) lifetime means the spec's default of a minute. Short lifetimes are
    // honoured, unlike docker, which stretches them to a minute and then sends dead tokens.
    let lifetime = Duration::from_secs(parsed.expires_in.filter(|s| *s > 0).unwrap_or(60));
    let age = token_age(parsed.issued_at.as_deref(), SystemTime::now(), lifetime);
    Ok(Token {
        secret: secret.into(),
        refresh_at: Instant::now() + refresh_after(lifetime, age),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn scope_keys_are_normalised() {
        assert_eq!(
            scope_key(&s(&["repository:a:push,pull"])),
            s(&["repository:a:pull,push"])
        );
        assert_eq!(
            scope_key(&s(&["repository:a:push", "repository:a:pull"])),
            scope_key(&s(&["repository:a:pull,push"]))
        );
        assert_eq!(
            scope_key(&s(&["repository:b:pull,push", "repository:a:pull"])),
            s(&["repository:a:pull", "repository:b:pull,push"])
        );
        assert_eq!(
            scope_key(&s(&["repository:b:pull", "repository:a:pull"])),
            scope_key(&s(&[
                "repository:a:pull",
                "repository:b:pull",
                "repository:a:pull"
            ]))
        );
        assert_ne!(
            scope_key(&s(&["repository:a:pull"])),
            scope_key(&s(&["repository:a:pull,push"]))
        );
        assert_eq!(
            scope_key(&s(&["registry:catalog:*"])),
            s(&["registry:catalog:*"])
        );
        assert_eq!(pull("x/y"), "repository:x/y:pull");
        assert_eq!(pull_push("x/y"), "repository:x/y:pull,push");
    }

    #[test]
    fn refresh_margin() {
        assert_eq!(
            refresh_after(Duration::from_secs(60), Duration::ZERO),
            Duration::from_secs(45)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(300), Duration::ZERO),
            Duration::from_secs(270)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(300), Duration::from_secs(100)),
            Duration::from_secs(170)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(60), Duration::from_secs(60)),
            Duration::ZERO
        );
        // Short tokens keep a margin of a second, or half their life.
        assert_eq!(
            refresh_after(Duration::from_secs(2), Duration::ZERO),
            Duration::from_secs(1)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(1), Duration::ZERO),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn issued_at_only_trusted_when_plausible() {
        let now = dates::parse_rfc3339("2024-01-01T00:01:00Z").unwrap();
        let life = Duration::from_secs(300);
        assert_eq!(
            token_age(Some("2024-01-01T00:00:00Z"), now, life),
            Duration::from_secs(60)
        );
        assert_eq!(
            token_age(Some("2020-01-01T00:00:00Z"), now, life),
            Duration::ZERO
        );
        assert_eq!(
            token_age(Some("2024-01-01T00:05:00Z"), now, life),
            Duration::ZERO
        );
        assert_eq!(token_age(Some("not a date"), now, life), Duration::ZERO);
        assert_eq!(token_age(None, now, life), Duration::ZERO);
    }

    #[test]
    fn refresh_token_grant_form() {
        let form = refresh_form(
            "id&tok=1",
            Some("reg.io"),
            &s(&["repository:a:pull", "repository:b:pull,push"]),
        );
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(form.as_bytes())
            .into_owned()
            .collect();
        let want = [
            ("grant_type", "refresh_token"),
            ("refresh_token", "id&tok=1"),
            ("client_id", "airlift"),
            ("service", "reg.io"),
            ("scope", "repository:a:pull repository:b:pull,push"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(pairs, want);
    }

    #[test]
    fn token_debug_is_redacted() {
        let t = Token {
            secret: "sekrit".into(),
            refresh_at: Instant::now(),
        };
        assert!(!format!("{t:?}").contains("sekrit"));
    }
}
