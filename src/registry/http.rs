//! The request pipeline shared by every registry call: scheme probing per host, attaching
//! credentials or tokens, answering 401 challenges, retries, and turning failures into
//! [`RegistryError`]s that name the URL and never a secret.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};

use super::auth::{self, Token, TokenRequest, Tokens};
use super::endpoint::Host;
use super::{
    AuthFailure, ClientOptions, Credential, RegistryError, RetryPolicy, TlsOptions, challenge,
    endpoint, headers, origin, retry, tls,
};

/// How long an HTTPS probe may take when plain HTTP is the fallback (insecure hosts).
const HTTPS_PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default for [`ClientOptions::request_timeout`].
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on establishing a TCP/TLS connection, for every request including blob transfers.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of an error body is read to find the registry's error message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// Redirects followed for one request (blob downloads go to a CDN or object store once).
const MAX_REDIRECTS: usize = 5;

/// Where a call goes.
pub(super) enum Target {
    /// A path under the registry's base URL, e.g. `v2/foo/manifests/latest`.
    Path(String),
    /// An absolute URL (an upload `Location`).
    Url(url::Url),
}

/// A request body.
pub(super) enum CallBody {
    /// No body.
    Empty,
    /// A body that can be sent again on retry.
    Bytes(Bytes),
    /// A streamed body: sent once, so the call is never retried.
    Stream(Mutex<Option<reqwest::Body>>),
}

/// One registry call.
pub(super) struct Call {
    pub method: Method,
    pub target: Target,
    pub headers: HeaderMap,
    pub body: CallBody,
    /// Token scopes the call needs.
    pub scopes: Vec<String>,
    /// Whether [`ClientOptions::request_timeout`] bounds the whole exchange (false for blob
    /// bodies, which may take hours).
    pub bounded: bool,
    /// Whether a failed call may be sent again as it is. Upload `PATCH`/`PUT` calls must
    /// not be: after a drop only the registry knows how much it took (see
    /// `transfer::upload`), so their caller asks it and decides.
    pub retry: bool,
}

impl Call {
    /// A small, bounded call with no body.
    pub fn new(method: Method, target: Target, scopes: Vec<String>) -> Self {
        Call {
            method,
            target,
            headers: HeaderMap::new(),
            body: CallBody::Empty,
            scopes,
            bounded: true,
            retry: true,
        }
    }
}

/// What to send in `Authorization`.
enum Auth {
    None,
    Basic(Credential),
    Bearer(Token),
}

/// The state behind a [`super::RegistryClient`].
pub(super) struct Inner {
    /// Verifies certificates (system roots plus `--ca-file`); serves every host without TLS
    /// settings of its own, so they share one connection pool.
    secure: reqwest::Client,
    /// Skips certificate checks; serves `--insecure-registry` hosts without TLS settings of
    /// their own.
    insecure: reqwest::Client,
    /// The `--ca-file` certificates, added to every per-host client too.
    shared_cas: Vec<reqwest::Certificate>,
    tls: TlsOptions,
    /// Per-host clients (host CAs or a client certificate), built on first use; keyed by
    /// `host[:port]` and whether certificates are checked.
    host_clients: Mutex<HashMap<(String, bool), reqwest::Client>>,
    pub timeout: Duration,
    /// Slowest blob download accepted (`--min-rate`).
    pub min_rate: Option<super::MinRate>,
    pub retry: RetryPolicy,
    credentials: Option<Arc<dyn super::CredentialSource>>,
    insecure_list: Vec<String>,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    tokens: Tokens,
    /// Registries that refused a cross-repository mount this run.
    no_mount: Mutex<HashSet<String>>,
    /// The pull limit each registry last stated.
    pub rate_limits: headers::RateLimits,
}

/// `host[:port]` of `url`, as registries are named.
pub(super) fn host_port(url: &url::Url) -> String {
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        Some(h) => h.to_string(),
        None => String::new(),
    };
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

/// A transport error for `url`, with the URL kept out of the source so it is printed once.
/// A certificate problem becomes [`RegistryError::Tls`], which says what to do.
pub(super) fn transport(url: &url::Url, e: reqwest::Error) -> RegistryError {
    let e = e.without_url();
    match tls::classify(&e) {
        Some(problem) => RegistryError::Tls {
            registry: host_port(url),
            url: url.to_string(),
            problem,
            source: e,
        },
        None => RegistryError::Transport {
            url: url.to_string(),
            source: e,
        },
    }
}

/// Whether `result` is the registry (or its token service) rejecting the credentials.
fn is_rejected<T>(result: &Result<T, RegistryError>) -> bool {
    matches!(result, Err(RegistryError::Auth { kind, .. }) if **kind == AuthFailure::Rejected)
}

/// The error for an unexpected status, with the registry's message from the body.
pub(super) async fn status_error(method: &Method, url: &url::Url, resp: Response) -> RegistryError {
    let status = resp.status().as_u16();
    let rate_limit = (status == 429).then(|| headers::rate_limit_note(resp.headers()));
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk);
        if body.len() >= ERROR_BODY_LIMIT {
            break;
        }
    }
    RegistryError::Status {
        method: method.to_string(),
        url: url.to_string(),
        status,
        detail: match (headers::error_detail(&body), rate_limit) {
            (Some(d), Some(note)) => Some(format!("{d}; {note}")),
            (d, note) => d.or(note),
        },
    }
}

impl Inner {
    /// Builds the connection pools.
    pub fn new(opts: ClientOptions) -> Result<Self, RegistryError> {
        let shared_cas = tls::load_cas("every registry (--ca-file)", &opts.tls.ca_files)?;
        let none = tls::HostFiles::default();
        let build = |accept_invalid: bool| {
            tls::build_client("every registry", &shared_cas, &none, accept_invalid, false)
        };
        let env = std::env::var(retry::DELAY_ENV).ok();
        Ok(Inner {
            secure: build(false)?,
            insecure: build(true)?,
            shared_cas,
            tls: opts.tls,
            host_clients: Mutex::new(HashMap::new()),
            timeout: opts.request_timeout.unwrap_or(DEFAULT_TIMEOUT),
            min_rate: opts.min_rate,
            retry: retry::with_env_override(opts.retry, env.as_deref()),
            credentials: opts.credentials,
            insecure_list: opts.insecure_registries,
            hosts: Mutex::new(HashMap::new()),
            tokens: Tokens::default(),
            no_mount: Mutex::new(HashSet::new()),
            rate_limits: headers::RateLimits::default(),
        })
    }

    fn host(&self, registry: &str) -> Result<Arc<Host>, RegistryError> {
        if let Some(h) = self
            .hosts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(registry)
        {
            return Ok(h.clone());
        }
        let skip_verify = endpoint::is_listed_insecure(registry, &self.insecure_list);
        let client = self.client_for(endpoint::api_host(registry), registry, skip_verify)?;
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        Ok(hosts
            .entry(registry.to_owned())
            .or_insert_with(|| Arc::new(Host::new(registry, &self.insecure_list, client)))
            .clone())
    }

    /// The client for `host_port`: the shared one unless the host has TLS files of its own
    /// (config entry under `config_name` or `host_port`, or a `certs.d` directory), in which
    /// case one is built once and kept.
    fn client_for(
        &self,
        host_port: &str,
        config_name: &str,
        skip_verify: bool,
    ) -> Result<reqwest::Client, RegistryError> {
        let key = (host_port.to_owned(), skip_verify);
        if let Some(c) = self
            .host_clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(c.clone());
        }
        let mut files = tls::host_files(&self.tls, config_name)?;
        if files.is_empty() && config_name != host_port {
            files = tls::host_files(&self.tls, host_port)?;
        }
        let client = if files.is_empty() {
            if skip_verify {
                self.insecure.clone()
            } else {
                self.secure.clone()
            }
        } else {
            tracing::debug!(registry = %config_name, cas = files.cas.len(), client_cert = files.identity.is_some(), "registry-specific TLS settings");
            tls::build_client(config_name, &self.shared_cas, &files, skip_verify, false)?
        };
        let mut clients = self.host_clients.lock().unwrap_or_else(|p| p.into_inner());
        Ok(clients.entry(key).or_insert(client).clone())
    }

    fn client<'h>(&self, host: &'h Host) -> &'h reqwest::Client {
        &host.client
    }

    /// Whether `registry` refused a mount this run.
    pub fn mounts_refused(&self, registry: &str) -> bool {
        self.no_mount
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(registry)
    }

    /// Remembers that `registry` refuses mounts.
    pub fn refuse_mounts(&self, registry: &str) {
        self.no_mount
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(registry.to_owned());
    }

    /// Runs the credential source's preparation for `registries`.
    pub async fn prepare_credentials(&self, registries: &[String]) -> Vec<String> {
        match &self.credentials {
            Some(c) => c.prepare(registries).await,
            None => Vec::new(),
        }
    }

    /// The scheme (`https` or `http`) `registry` answers on, probing `GET /v2/` if not
    /// done yet.
    pub async fn scheme(&self, registry: &str) -> Result<String, RegistryError> {
        let host = self.host(registry)?;
        Ok(self.base(&host).await?.scheme().to_owned())
    }

    /// `GET /v2/` with this client's credentials for `registry`.
    pub async fn check_login(&self, registry: &str) -> Result<(), RegistryError> {
        let call = Call::new(Method::GET, Target::Path("v2/".to_owned()), Vec::new());
        let (url, resp) = self.execute(registry, &call).await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(status_error(&call.method, &url, resp).await)
        }
    }

    fn credential(&self, host: &Host) -> Option<Credential> {
        self.credentials
            .as_ref()
            .and_then(|c| c.credential(&host.registry))
    }

    /// The working `scheme://host/` of `host`, probing `GET /v2/` once. Concurrent callers
    /// share one probe; a failed probe is not remembered, so a later call probes again.
    async fn base(&self, host: &Host) -> Result<url::Url, RegistryError> {
        let base = host
            .base
            .get_or_try_init(|| async {
                let candidates = host.candidate_bases();
                let what = format!("{}/v2/", candidates[0]);
                let resp = retry::run(&self.retry, &what, || async {
                    let mut last = None;
                    // HTTPS first; for insecure hosts a TLS failure falls back to plain HTTP.
                    for (i, base) in candidates.iter().enumerate() {
                        let url = base.join("v2/").expect("static path");
                        // With plain HTTP to fall back to, a server that never answers the TLS
                        // handshake must not cost the whole request timeout.
                        let limit = if i + 1 < candidates.len() {
                            self.timeout.min(HTTPS_PROBE_TIMEOUT)
                        } else {
                            self.timeout
                        };
                        match self.client(host).get(url.clone()).timeout(limit).send().await {
                            Ok(resp) => {
                                tracing::debug!(method = "GET", %url, status = resp.status().as_u16(), "probe");
                                return Ok(resp);
                            }
                            Err(e) => {
                                let mut err = transport(&url, e);
                                if url.scheme() == "https"
                                    && matches!(err, RegistryError::Transport { .. })
                                    && let Some(tls_err) = self.diagnose(host, &url).await
                                {
                                    err = tls_err;
                                }
                                // A server that speaks TLS with a certificate we cannot
                                // accept is not a plain-HTTP server: say so, do not fall back.
                                // (A plain-HTTP answer is what the fallback is for.)
                                let plain = matches!(
                                    err,
                                    RegistryError::Tls { problem: tls::TlsProblem::PlainHttp, .. }
                                );
                                if matches!(err, RegistryError::Tls { .. })
                                    && !(plain && i + 1 < candidates.len())
                                {
                                    return Err(self.refine_client_cert(host, err));
                                }
                                tracing::debug!(%url, error = %crate::transfer::error_chain(&err), "probe failed, trying the next scheme");
                                last = Some(err);
                            }
                        }
                    }
                    Err(last.expect("at least one candidate"))
                })
                .await?;
                if resp.status() == StatusCode::UNAUTHORIZED {
                    let values = resp.headers().get_all(WWW_AUTHENTICATE);
                    if let Some(c) = challenge::pick(values.iter().filter_map(|v| v.to_str().ok())) {
                        host.set_challenge(c);
                    }
                }
                let scheme = resp.url().scheme();
                let chosen = candidates.iter().find(|b| b.scheme() == scheme).unwrap_or(&candidates[0]);
                Ok::<_, RegistryError>(chosen.clone())
            })
            .await?;
        Ok(base.clone())
    }

    /// A server refusing the handshake with `bad_certificate` after we sent no client
    /// certificate wants one (Go servers send that alert for a missing certificate too).
    fn refine_client_cert(&self, host: &Host, err: RegistryError) -> RegistryError {
        match err {
            RegistryError::Tls {
                registry,
                url,
                problem: tls::TlsProblem::ClientCertRejected,
                source,
            } => {
                let presented =
                    [host.registry.as_str(), host.api_host.as_str()]
                        .iter()
                        .any(|name| {
                            tls::host_files(&self.tls, name).is_ok_and(|f| f.identity.is_some())
                        });
                let problem = if presented {
                    tls::TlsProblem::ClientCertRejected
                } else {
                    tls::TlsProblem::ClientCertRequired
                };
                RegistryError::Tls {
                    registry,
                    url,
                    problem,
                    source,
                }
            }
            other => other,
        }
    }

    /// After an HTTPS probe failed for no visible reason, tries once more over HTTP/1.1 to
    /// find a certificate problem the HTTP/2 connection pool hid; `None` when there is none.
    async fn diagnose(&self, host: &Host, url: &url::Url) -> Option<RegistryError> {
        let skip_verify = endpoint::is_listed_insecure(&host.registry, &self.insecure_list);
        let mut files = tls::host_files(&self.tls, &host.registry).ok()?;
        if files.is_empty() {
            files = tls::host_files(&self.tls, &host.api_host).ok()?;
        }
        let client =
            tls::build_client(&host.registry, &self.shared_cas, &files, skip_verify, true).ok()?;
        match client.get(url.clone()).timeout(self.timeout).send().await {
            Err(e) => Some(transport(url, e)).filter(|e| matches!(e, RegistryError::Tls { .. })),
            Ok(_) => None,
        }
    }

    /// Resolves a path target to an absolute URL on `registry`.
    pub async fn url(&self, registry: &str, path: &str) -> Result<url::Url, RegistryError> {
        let host = self.host(registry)?;
        let base = self.base(&host).await?;
        base.join(path).map_err(|e| RegistryError::Protocol {
            url: format!("{base}{path}"),
            reason: e.to_string(),
        })
    }

    /// What a token fetch for `host` needs. The realm must be reachable the way a redirect
    /// from the registry would be ([`origin::check_hop`]): an `http://` realm for an HTTPS
    /// registry would carry the credentials in clear text, so it is refused.
    fn token_request<'a>(
        &'a self,
        host: &'a Host,
        c: &'a challenge::Challenge,
        cred: Option<&'a Credential>,
    ) -> Result<TokenRequest<'a>, RegistryError> {
        let realm = c.param("realm").and_then(|r| url::Url::parse(r).ok());
        if let (Some(realm), Some(base)) = (&realm, host.base.get()) {
            origin::check_hop(base, realm, &self.insecure_list).map_err(|reason| {
                RegistryError::Auth {
                    registry: host.registry.clone(),
                    scope: "token realm".to_owned(),
                    reason,
                    kind: Box::new(AuthFailure::Other),
                }
            })?;
        }
        // The realm may be another host (a token service). As docker does, it is reached with
        // the registry's TLS settings (its CA in `certs.d`), else its own.
        let http = realm
            .map(|u| host_port(&u))
            .filter(|hp| !hp.is_empty() && hp != &host.api_host)
            .and_then(|hp| {
                let skip = endpoint::is_listed_insecure(&hp, &self.insecure_list);
                self.client_for(&hp, &host.registry, skip).ok()
            })
            .unwrap_or_else(|| host.client.clone());
        Ok(TokenRequest {
            http,
            retry: &self.retry,
            timeout: self.timeout,
            registry: &host.registry,
            challenge: c,
            credential: cred,
        })
    }

    /// Sends `call` to `registry` with auth and retries. Every status except 401/403 (which
    /// become [`RegistryError::Auth`]) is returned for the caller to judge; a retryable status
    /// comes back only once retries are exhausted.
    pub async fn execute(
        &self,
        registry: &str,
        call: &Call,
    ) -> Result<(url::Url, Response), RegistryError> {
        let host = self.host(registry)?;
        let url = match &call.target {
            Target::Url(u) => {
                // An upload `Location` or next-page link: the registry chose it, but it may
                // not lead anywhere a redirect could not.
                let base = self.base(&host).await?;
                origin::check_hop(&base, u, &self.insecure_list).map_err(|reason| {
                    RegistryError::Protocol {
                        url: base.to_string(),
                        reason,
                    }
                })?;
                u.clone()
            }
            Target::Path(p) => self.url(registry, p).await?,
        };
        // What the request goes with: when it is rejected, a credential other than this one
        // (refreshed by a concurrent request meanwhile) is new, and the helper is not asked.
        let sent_with = (self.credentials.as_ref()).and_then(|c| c.credential(&host.registry));
        let mut result = self.send_retried(&host, call, &url).await;
        // Credentials a helper gave may have expired since (1-hour tokens): ask it again and
        // resend once, when the body can be sent again.
        if is_rejected(&result)
            && let Some(source) = &self.credentials
        {
            let fresh = source.refresh(&host.registry, sent_with).await;
            if fresh.is_some() && !matches!(call.body, CallBody::Stream(_)) {
                result = self.send_retried(&host, call, &url).await;
            }
        }
        let resp = match result {
            Err(RegistryError::Auth {
                registry,
                scope,
                reason,
                kind,
            }) if *kind == AuthFailure::Rejected => {
                let helper = self
                    .credentials
                    .as_ref()
                    .and_then(|c| c.helper(registry.as_str()));
                let kind = match helper {
                    Some(helper) => Box::new(AuthFailure::HelperRejected { helper }),
                    None => kind,
                };
                return Err(RegistryError::Auth {
                    registry,
                    scope,
                    reason,
                    kind,
                });
            }
            other => other?,
        };
        Ok((url, resp))
    }

    /// [`Self::send_authed`] with retries, unless the call must not be resent.
    async fn send_retried(
        &self,
        host: &Host,
        call: &Call,
        url: &url::Url,
    ) -> Result<Response, RegistryError> {
        if matches!(call.body, CallBody::Stream(_)) || !call.retry {
            self.send_authed(host, call, url).await
        } else {
            retry::run(&self.retry, url.as_str(), || {
                self.send_authed(host, call, url)
            })
            .await
        }
    }

    async fn initial_auth(
        &self,
        host: &Host,
        scopes: &[String],
        cred: &Option<Credential>,
    ) -> Result<Auth, RegistryError> {
        Ok(match host.challenge() {
            Some(c) if c.is_bearer() => Auth::Bearer(
                self.tokens
                    .get(&self.token_request(host, &c, cred.as_ref())?, scopes, None)
                    .await?,
            ),
            Some(c) if c.is_basic() => match cred {
                Some(cred) => Auth::Basic(cred.clone()),
                None => Auth::None,
            },
            _ => Auth::None,
        })
    }

    /// One attempt: send with the best auth known, and on a 401 learn the challenge, get
    /// credentials or a fresh token and send once more.
    async fn send_authed(
        &self,
        host: &Host,
        call: &Call,
        url: &url::Url,
    ) -> Result<Response, RegistryError> {
        let cred = self.credential(host);
        let mut auth = self.initial_auth(host, &call.scopes, &cred).await?;
        let mut answered_challenge = false;
        loop {
            let resp = self.send_once(host, call, url, &auth).await?;
            let status = resp.status();
            let same_host =
                resp.url().host_str() == url.host_str() && resp.url().port() == url.port();
            if status == StatusCode::FORBIDDEN && same_host {
                let reason = match status_error(&call.method, url, resp).await {
                    RegistryError::Status {
                        detail: Some(d), ..
                    } => format!("denied: {d}"),
                    _ => "denied".to_owned(),
                };
                let (action, repository) = auth::scope_subject(&call.method, &call.scopes);
                let kind = AuthFailure::Denied { action, repository };
                return Err(self.auth_error(host, call, reason, kind));
            }
            if status != StatusCode::UNAUTHORIZED || !same_host {
                return Ok(resp);
            }
            let values = resp.headers().get_all(WWW_AUTHENTICATE);
            let picked = challenge::pick(values.iter().filter_map(|v| v.to_str().ok()));
            let streamed = matches!(call.body, CallBody::Stream(_));
            let error_param = picked
                .as_ref()
                .and_then(|c| c.param("error"))
                .unwrap_or_default()
                .to_owned();
            let had_token = matches!(auth, Auth::Bearer(_));
            let give_up = |this: &Self| {
                let (reason, kind) = match &cred {
                    None => (
                        format!("no credentials for {}", host.registry),
                        AuthFailure::Missing,
                    ),
                    Some(_) if had_token && error_param == "insufficient_scope" => {
                        let (action, repository) = auth::scope_subject(&call.method, &call.scopes);
                        (
                            "insufficient scope".to_owned(),
                            AuthFailure::InsufficientScope { action, repository },
                        )
                    }
                    Some(_) if had_token => {
                        ("token rejected".to_owned(), AuthFailure::TokenRejected)
                    }
                    Some(_) => ("credentials rejected".to_owned(), AuthFailure::Rejected),
                };
                Err(this.auth_error(host, call, reason, kind))
            };
            if streamed
                && let Auth::Bearer(t) = &auth
                && cred.is_some()
                && error_param != "insufficient_scope"
            {
                // The token died between its check and this request (or the clocks
                // disagree). The body is gone, so this call fails, but retryably: the
                // caller's retry gets a fresh token.
                self.tokens
                    .invalidate(&host.registry, &call.scopes, t.secret())
                    .await;
                let kind = AuthFailure::TokenExpired;
                return Err(self.auth_error(host, call, "token expired".to_owned(), kind));
            }
            if answered_challenge || streamed {
                return give_up(self);
            }
            answered_challenge = true;
            let Some(c) = picked else {
                return give_up(self);
            };
            host.set_challenge(c.clone());
            auth = if c.is_bearer() {
                let rejected = match &auth {
                    Auth::Bearer(t) => Some(t.secret().to_owned()),
                    _ => None,
                };
                let req = self.token_request(host, &c, cred.as_ref())?;
                Auth::Bearer(
                    self.tokens
                        .get(&req, &call.scopes, rejected.as_deref())
                        .await?,
                )
            } else if c.is_basic() && !matches!(auth, Auth::Basic(_)) {
                match &cred {
                    Some(cred) => Auth::Basic(cred.clone()),
                    None => return give_up(self),
                }
            } else {
                return give_up(self);
            };
        }
    }

    fn auth_error(
        &self,
        host: &Host,
        call: &Call,
        reason: String,
        kind: AuthFailure,
    ) -> RegistryError {
        let scope = if call.scopes.is_empty() {
            "registry".to_owned()
        } else {
            call.scopes.join(" ")
        };
        RegistryError::Auth {
            registry: host.registry.clone(),
            scope,
            reason,
            kind: Box::new(kind),
        }
    }

    /// The connection pool for `url`: the registry's own, or, for another origin (a CDN, an
    /// upload `Location` elsewhere), the one for that host with its own TLS settings.
    fn client_at(&self, host: &Host, url: &url::Url) -> Result<reqwest::Client, RegistryError> {
        let hp = host_port(url);
        if hp == host.api_host {
            return Ok(host.client.clone());
        }
        let skip = endpoint::is_listed_insecure(&hp, &self.insecure_list);
        self.client_for(&hp, &hp, skip)
    }

    /// Sends `call` to `url`, following redirects of `GET`/`HEAD` itself (the clients follow
    /// none): every hop is checked ([`origin::check_hop`]) and `auth` goes only to the
    /// registry's own origin, never to a CDN, an object store or an upload `Location` on
    /// another host, scheme or port.
    async fn send_once(
        &self,
        host: &Host,
        call: &Call,
        url: &url::Url,
        auth: &Auth,
    ) -> Result<Response, RegistryError> {
        let follow = (call.method == Method::GET || call.method == Method::HEAD)
            && matches!(call.body, CallBody::Empty);
        let mut current = url.clone();
        for _hop in 0..=MAX_REDIRECTS {
            let resp = self.send_hop(host, call, &current, auth).await?;
            if !follow || !resp.status().is_redirection() {
                return Ok(resp);
            }
            let Some(location) = headers::text(resp.headers(), LOCATION.as_str()) else {
                return Ok(resp);
            };
            let protocol = |reason: String| RegistryError::Protocol {
                url: current.to_string(),
                reason,
            };
            let next = headers::resolve_location(&current, location).map_err(protocol)?;
            origin::check_hop(&current, &next, &self.insecure_list).map_err(protocol)?;
            tracing::debug!(from = %current, to = %next, "following redirect");
            current = next;
        }
        Err(RegistryError::Protocol {
            url: url.to_string(),
            reason: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    /// One request of [`Self::send_once`], to `url`.
    async fn send_hop(
        &self,
        host: &Host,
        call: &Call,
        url: &url::Url,
        auth: &Auth,
    ) -> Result<Response, RegistryError> {
        let mut rb = self
            .client_at(host, url)?
            .request(call.method.clone(), url.clone())
            .headers(call.headers.clone());
        if call.bounded {
            rb = rb.timeout(self.timeout);
        }
        // Credentials belong to the origin the registry was probed at.
        let own_origin = host.base.get().is_some_and(|b| origin::same_origin(b, url));
        rb = match auth {
            _ if !own_origin => rb,
            Auth::None => rb,
            Auth::Basic(c) => rb.basic_auth(&c.username, Some(&c.password)),
            Auth::Bearer(t) => rb.bearer_auth(t.secret()),
        };
        rb = match &call.body {
            CallBody::Empty if call.method == Method::GET || call.method == Method::HEAD => rb,
            CallBody::Empty => rb.body(Bytes::new()),
            CallBody::Bytes(b) => rb.body(b.clone()),
            CallBody::Stream(slot) => {
                let body = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
                match body {
                    Some(body) => rb.body(body),
                    None => {
                        return Err(RegistryError::Protocol {
                            url: url.to_string(),
                            reason: "streamed request body already consumed".to_owned(),
                        });
                    }
                }
            }
        };
        // Blob bodies may take as long as they need, but a response head that never comes
        // is a stall: wait for it no longer than a small request may take. (An upload's head
        // only comes once the whole body is sent, so it is not bounded here.)
        let head_bounded = !call.bounded && matches!(call.body, CallBody::Empty);
        let resp = if head_bounded {
            match tokio::time::timeout(self.timeout, rb.send()).await {
                Ok(r) => r.map_err(|e| transport(url, e))?,
                Err(_) => {
                    return Err(RegistryError::Protocol {
                        url: url.to_string(),
                        reason: super::blobs::STALLED.to_owned(),
                    });
                }
            }
        } else {
            rb.send().await.map_err(|e| transport(url, e))?
        };
        tracing::debug!(method = %call.method, %url, status = resp.status().as_u16(), "registry request");
        self.rate_limits.record(&host.registry, resp.headers());
        Ok(resp)
    }
}
