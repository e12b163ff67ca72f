//! A client for the OCI distribution API (Docker registry API v2), written on reqwest because
//! oci-client lacks resumable uploads, retries and multi-scope tokens.
//!
//! CONTRACT (filled in by the registry work): the public signatures below are what the
//! transfer engine calls. Bodies and private submodules are free.
//!
//! Manifests travel as raw bytes so their digests never change; blobs travel as byte streams
//! so nothing is held in memory whole. One [`RegistryClient`] (one connection pool, one token
//! cache) serves every registry of a run; [`Repo`] is a cheap handle on one repository.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;

use crate::reference::Digest;

mod auth;
mod blobs;
mod catalog;
mod challenge;
mod dates;
mod endpoint;
mod headers;
mod http;
mod manifests;
mod origin;
mod reach;
mod retry;
mod site;
mod tls;

pub use headers::RateLimit;
pub use reach::{ReachRetry, Unreachable, check_reachable};
pub use site::SiteConnection;
pub use tls::{CERTS_DIRS_ENV, DEFAULT_CERTS_DIRS, TlsProblem};

/// Media types of manifests airlift copies, in the order sent in `Accept`.
pub const MANIFEST_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Errors talking to a registry. Every variant names the URL or reference involved, never a
/// credential.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A TLS certificate problem: the server's certificate could not be verified, or the
    /// server refused ours. Retrying does not help.
    #[error("{}", tls::message(registry, problem))]
    Tls {
        /// `host[:port]` connected to.
        registry: String,
        /// The URL requested.
        url: String,
        /// What is wrong.
        problem: TlsProblem,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The TLS files configured for a registry (CA files, `certs.d`, client certificate)
    /// cannot be used.
    #[error("TLS setup for {registry}: {reason}")]
    TlsSetup {
        /// Registry host.
        registry: String,
        /// What is wrong, naming the file.
        reason: String,
    },
    /// Connection or protocol failure.
    #[error("cannot reach {url}")]
    Transport {
        /// The URL requested (no credentials in it).
        url: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The registry answered with an unexpected status.
    #[error("{method} {url} returned {status}{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Status {
        /// HTTP method.
        method: String,
        /// URL.
        url: String,
        /// Status code.
        status: u16,
        /// The registry's error code/message, if it sent one.
        detail: Option<String>,
    },
    /// A manifest or blob does not exist.
    #[error("{what} not found at {url}")]
    NotFound {
        /// "manifest `ref`" or "blob `digest`".
        what: String,
        /// URL.
        url: String,
    },
    /// The target repository (or the Harbor project, GitLab group … it belongs to) does not
    /// exist and the registry does not create it on push.
    #[error(
        "{registry} has no repository `{repository}` (or no project `{}` for it): create the \
         project/repository there first, or check the destination path ({url})",
        repository.split('/').next().unwrap_or(repository)
    )]
    NoRepository {
        /// Registry host.
        registry: String,
        /// The repository pushed to.
        repository: String,
        /// URL.
        url: String,
    },
    /// Authentication or authorisation failed. The message says what to do
    /// ([`RegistryError::hint`]).
    #[error("{}", auth_message(registry, scope, reason, kind))]
    Auth {
        /// Registry host.
        registry: String,
        /// The scope requested, e.g. `repository:foo:pull,push`.
        scope: String,
        /// Why, in a few words (`credentials rejected`, `no credentials for HOST`).
        reason: String,
        /// Which kind of failure, for the hint (boxed to keep the error small).
        kind: Box<AuthFailure>,
    },
    /// Content did not match its digest.
    #[error("digest mismatch for {url}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// URL.
        url: String,
        /// What was asked for.
        expected: Digest,
        /// What arrived.
        actual: Digest,
    },
    /// A response the protocol does not allow (bad header, unparseable body).
    #[error("invalid response from {url}: {reason}")]
    Protocol {
        /// URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// Kinds of [`RegistryError::Auth`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credentials were found for the registry, and it wants some.
    Missing,
    /// The registry or its token service rejected the credentials.
    Rejected,
    /// The registry refused a token its token service had just issued (expired, or signed by
    /// a key it does not trust).
    TokenRejected,
    /// The registry refused a token during an upload that cannot be resent (the token
    /// expired in flight). Retryable: the next attempt fetches a fresh token.
    TokenExpired,
    /// The token does not grant `action` on `repository`.
    InsufficientScope {
        /// `pull` or `push`.
        action: &'static str,
        /// The repository (or resource) concerned.
        repository: String,
    },
    /// The registry answered 403: the account may not do `action` on `repository`.
    Denied {
        /// `pull` or `push`.
        action: &'static str,
        /// The repository (or resource) concerned.
        repository: String,
    },
    /// The registry rejected the credentials a credential helper gave, even after asking
    /// it again.
    HelperRejected {
        /// The helper program (`docker-credential-NAME`).
        helper: String,
    },
    /// Anything else (a broken token service, an unusable challenge).
    Other,
}

fn auth_message(registry: &str, scope: &str, reason: &str, kind: &AuthFailure) -> String {
    let login = format!("`airlift login {registry}`");
    match kind {
        AuthFailure::Missing => {
            format!("{registry} requires authentication: run {login} or pass --authfile")
        }
        AuthFailure::Rejected => {
            format!("credentials for {registry} were rejected: check them, or run {login}")
        }
        AuthFailure::HelperRejected { helper } => format!(
            "credentials for {registry} from {helper} were rejected, also after asking it \
             again: check that `{helper} get` works (sign in to the tool behind it again)"
        ),
        AuthFailure::TokenRejected => format!(
            "{registry} rejected a token its token service had just issued ({scope}): the \
             token is expired or invalid; check this machine's clock and that the registry \
             trusts the token service's signing certificate, then retry"
        ),
        AuthFailure::TokenExpired => format!(
            "{registry} refused an expired token during an upload ({scope}): retry; if it \
             keeps happening, check this machine's clock"
        ),
        AuthFailure::InsufficientScope { action, repository } => format!(
            "the token for {registry} does not grant {action} on {repository}: ask for \
             {action} access to it, or check the destination path"
        ),
        AuthFailure::Denied { action, repository } => format!(
            "{registry} denied {action} on {repository} ({reason}): ask for {action} access \
             to it, or check the destination path"
        ),
        AuthFailure::Other => {
            format!("authentication with {registry} failed ({scope}): {reason}")
        }
    }
}

impl RegistryError {
    /// What to do about this error, when airlift knows: the part of the message after the
    /// cause (the message itself always includes it).
    pub fn hint(&self) -> Option<String> {
        let shown = match self {
            RegistryError::Auth { kind, .. } if **kind == AuthFailure::Other => return None,
            RegistryError::Auth { .. } => self.to_string(),
            RegistryError::Tls { .. } => self.to_string(),
            _ => return None,
        };
        shown.rsplit_once(": ").map(|(_, hint)| hint.to_owned())
    }

    /// Whether retrying the same request may succeed (connection errors, 5xx, 408, 429).
    pub fn is_retryable(&self) -> bool {
        match self {
            RegistryError::Transport { .. } => true,
            RegistryError::Tls { .. } | RegistryError::TlsSetup { .. } => false,
            RegistryError::Auth { kind, .. } if **kind == AuthFailure::TokenExpired => true,
            RegistryError::Status { status, .. } => retry::status_is_retryable(*status),
            // A stalled download is a network problem that surfaced without a reqwest error.
            RegistryError::Protocol { reason, .. } => {
                reason == blobs::STALLED || reason.starts_with(blobs::TOO_SLOW)
            }
            RegistryError::NotFound { .. }
            | RegistryError::NoRepository { .. }
            | RegistryError::Auth { .. }
            | RegistryError::DigestMismatch { .. } => false,
        }
    }
}

/// Retry policy: exponential backoff with jitter, `Retry-After` honoured.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts after the first one.
    pub max_retries: u32,
    /// First delay.
    pub base_delay: Duration,
    /// Delay cap.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(20),
        }
    }
}

/// Username/password for one registry.
#[derive(Clone)]
pub struct Credential {
    /// User name.
    pub username: String,
    /// Password or token. Never printed: `Debug` redacts it.
    pub password: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Supplies credentials per registry host. Full docker/podman credential support plugs in here.
pub trait CredentialSource: Send + Sync {
    /// Credentials for `registry` (`host[:port]`), if any.
    fn credential(&self, registry: &str) -> Option<Credential>;

    /// Gets ready to answer for `registries` without blocking (runs credential helpers
    /// ahead of time); returns problems to show as warnings. The default does nothing.
    fn prepare<'a>(
        &'a self,
        registries: &'a [String],
    ) -> futures_util::future::BoxFuture<'a, Vec<String>> {
        let _ = registries;
        Box::pin(async { Vec::new() })
    }

    /// The program that supplies `registry`'s credentials (`docker-credential-NAME`), if a
    /// credential helper does: hints then name it instead of `airlift login`.
    fn helper(&self, registry: &str) -> Option<String> {
        let _ = registry;
        None
    }

    /// After the registry rejected `registry`'s credentials (`rejected`, what
    /// [`Self::credential`] gave before the request): asks their source again (a credential
    /// helper whose short-lived token expired) and returns a different credential to try, if
    /// any. A credential that already differs from `rejected` (another request refreshed it
    /// meanwhile) is returned without asking. Bounded by the source. The default has nothing
    /// new.
    fn refresh<'a>(
        &'a self,
        registry: &'a str,
        rejected: Option<Credential>,
    ) -> futures_util::future::BoxFuture<'a, Option<Credential>> {
        let _ = (registry, rejected);
        Box::pin(async { None })
    }
}

/// TLS settings for one registry host (the config file's `registries:` entries). They add
/// to what docker-style `certs.d` directories give.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostTls {
    /// CA certificates (PEM) trusted for this host, on top of the system roots.
    pub ca_files: Vec<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub client_key: Option<PathBuf>,
}

/// TLS options of a client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// CA certificates (PEM files, bundles allowed) trusted for every registry, on top of
    /// the system roots (`--ca-file`).
    pub ca_files: Vec<PathBuf>,
    /// docker-style `certs.d` base directories holding `HOST[:PORT]/` subdirectories:
    /// `*.crt` files are CAs, `client.cert` + `client.key` (or any `NAME.cert` + `NAME.key`)
    /// a client certificate. `None` means [`CERTS_DIRS_ENV`] if set, else
    /// [`DEFAULT_CERTS_DIRS`].
    pub certs_dirs: Option<Vec<PathBuf>>,
    /// Per-host settings, keyed by `host[:port]`.
    pub hosts: HashMap<String, HostTls>,
}

/// Options for [`RegistryClient::new`].
#[derive(Clone, Default)]
pub struct ClientOptions {
    /// Hosts (`host[:port]`) reached over plain HTTP or HTTPS without certificate checks, as
    /// docker's `--insecure-registry`. Loopback hosts may always use plain HTTP, but when they
    /// speak HTTPS their certificate is verified unless they are listed here.
    pub insecure_registries: Vec<String>,
    /// CA files, `certs.d` directories and client certificates.
    pub tls: TlsOptions,
    /// Retry policy for every request.
    pub retry: RetryPolicy,
    /// Credentials; anonymous when `None`.
    pub credentials: Option<Arc<dyn CredentialSource>>,
    /// Per-request timeout for small requests (manifests, HEAD, upload start); blob bodies are
    /// bounded by stall detection instead. `None` picks a default.
    pub request_timeout: Option<Duration>,
    /// Slowest blob download accepted, besides the silence limit; `None` accepts any rate.
    pub min_rate: Option<MinRate>,
}

/// A minimum transfer rate: fewer than `bytes_per_sec * window` bytes in any `window` of a
/// blob download ends it as stalled (retryable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinRate {
    /// Bytes per second.
    pub bytes_per_sec: u64,
    /// The window the rate is measured over.
    pub window: Duration,
}

impl MinRate {
    /// Environment variable overriding the 30 s window (seconds), so tests need not wait.
    pub const WINDOW_ENV: &str = "AIRLIFT_MIN_RATE_WINDOW_SECS";

    /// `bytes_per_sec` over the default 30 s window (or the [`Self::WINDOW_ENV`] one).
    pub fn per_second(bytes_per_sec: u64) -> MinRate {
        let secs = std::env::var(Self::WINDOW_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|s| *s > 0)
            .unwrap_or(30);
        MinRate {
            bytes_per_sec,
            window: Duration::from_secs(secs),
        }
    }
}

/// A manifest exactly as the registry served it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The raw bytes; their sha256 is `digest`.
    pub bytes: Bytes,
    /// The media type (from the body's `mediaType`, else the `Content-Type`).
    pub media_type: String,
    /// sha256 of `bytes`.
    pub digest: Digest,
}

/// A manifest that refers to another (its `subject`), as the referrers API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    /// Its digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size.
    pub size: u64,
    /// Its artifact type, when the listing says.
    pub artifact_type: Option<String>,
}

/// What a HEAD on a manifest says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    /// `Docker-Content-Digest`.
    pub digest: Digest,
    /// `Content-Type`.
    pub media_type: String,
    /// `Content-Length`.
    pub size: u64,
}

/// A blob body being received.
pub struct BlobBody {
    /// True when the registry honoured the requested range (206); false when it sent the whole
    /// blob from offset 0 (200).
    pub partial: bool,
    /// `Content-Length` of this response.
    pub content_length: Option<u64>,
    /// The bytes.
    pub stream: BoxStream<'static, Result<Bytes, RegistryError>>,
}

/// An upload session opened with POST.
#[derive(Debug, Clone)]
pub struct UploadSession {
    /// Absolute `Location` URL to PATCH/PUT to.
    pub location: url::Url,
    /// Bytes the registry has accepted so far.
    pub offset: u64,
}

/// Outcome of a cross-repository mount attempt.
#[derive(Debug)]
pub enum MountOutcome {
    /// The blob now exists in the target repository.
    Mounted,
    /// The registry refused to mount and opened a normal upload instead.
    Upload(UploadSession),
}

/// The shared client. Cheap to clone.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<http::Inner>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Deliberately opaque: the state holds credentials and tokens.
        f.debug_struct("RegistryClient").finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// Creates a client with one connection pool and token cache.
    ///
    /// `AIRLIFT_RETRY_DELAY_MS`, when set to a number, replaces both delays of
    /// [`ClientOptions::retry`] (test suites set it to 0).
    pub fn new(opts: ClientOptions) -> Result<Self, RegistryError> {
        Ok(RegistryClient {
            inner: Arc::new(http::Inner::new(opts)?),
        })
    }

    /// A handle on `registry/repository`.
    pub fn repo(&self, registry: &str, repository: &str) -> Repo {
        Repo {
            inner: Arc::new(RepoInner {
                http: self.inner.clone(),
                registry: registry.to_owned(),
                repository: repository.to_owned(),
                push: false,
            }),
        }
    }

    /// Every repository of `registry` (`GET /v2/_catalog`, all pages), sorted. Needs the
    /// `registry:catalog:*` scope; registries that do not offer the catalog answer with an
    /// error status (often 401/403 or 404).
    pub async fn catalog(&self, registry: &str) -> Result<Vec<String>, RegistryError> {
        catalog::catalog(self, registry, catalog::PAGE_SIZE).await
    }

    /// Lets the credential source get ready for `registries` (runs credential helpers once,
    /// concurrently); returns the problems found, to show as warnings.
    pub async fn prepare_credentials(&self, registries: &[String]) -> Vec<String> {
        self.inner.prepare_credentials(registries).await
    }

    /// Checks that `registry` accepts this client's credentials: `GET /v2/` answering the
    /// registry's challenge (for token registries, a token request with no scope must
    /// succeed). What `airlift login` runs before storing anything.
    pub async fn check_login(&self, registry: &str) -> Result<(), RegistryError> {
        self.inner.check_login(registry).await
    }

    /// The pull limit `registry` stated in its last answer (`RateLimit-*` headers, which
    /// Docker Hub sends on manifest `HEAD`s too), if it states one.
    pub fn rate_limit(&self, registry: &str) -> Option<RateLimit> {
        self.inner.rate_limits.get(registry)
    }

    /// [`RegistryClient::catalog`] asking for `page_size` repositories per page (`?n=`).
    /// Registries may send fewer per page than asked; every page is followed either way.
    pub async fn catalog_paged(
        &self,
        registry: &str,
        page_size: usize,
    ) -> Result<Vec<String>, RegistryError> {
        catalog::catalog(self, registry, page_size).await
    }
}

struct RepoInner {
    http: Arc<http::Inner>,
    registry: String,
    repository: String,
    /// Reads ask for `pull,push` too (see [`Repo::for_push`]).
    push: bool,
}

/// A handle on one repository of one registry.
#[derive(Clone)]
pub struct Repo {
    inner: Arc<RepoInner>,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Repo").field(&self.name()).finish()
    }
}

impl Repo {
    /// `registry/repository`, for messages.
    pub fn name(&self) -> String {
        format!("{}/{}", self.inner.registry, self.inner.repository)
    }

    /// The registry (`host[:port]`) as given to [`RegistryClient::repo`].
    pub fn registry(&self) -> &str {
        &self.inner.registry
    }

    /// The repository path inside the registry.
    pub fn repository(&self) -> &str {
        &self.inner.repository
    }

    /// The same repository, but its reads (HEAD/GET) ask for `pull,push`: a push target's
    /// existence checks then share the token its uploads need instead of fetching a second,
    /// pull-only one.
    pub fn for_push(&self) -> Repo {
        Repo {
            inner: Arc::new(RepoInner {
                push: true,
                ..self.clone_inner()
            }),
        }
    }

    fn clone_inner(&self) -> RepoInner {
        RepoInner {
            http: self.inner.http.clone(),
            registry: self.inner.registry.clone(),
            repository: self.inner.repository.clone(),
            push: self.inner.push,
        }
    }

    fn http(&self) -> &http::Inner {
        &self.inner.http
    }

    fn read_scopes(&self) -> Vec<String> {
        if self.inner.push {
            vec![auth::pull_push(&self.inner.repository)]
        } else {
            vec![auth::pull(&self.inner.repository)]
        }
    }

    /// The repository's tags (`GET /v2/NAME/tags/list`, all pages), sorted; empty when the
    /// repository does not exist.
    pub async fn tags(&self) -> Result<Vec<String>, RegistryError> {
        catalog::tags(self, catalog::PAGE_SIZE).await
    }

    /// [`Repo::tags`] asking for `page_size` tags per page (`?n=`).
    pub async fn tags_paged(&self, page_size: usize) -> Result<Vec<String>, RegistryError> {
        catalog::tags(self, page_size).await
    }

    /// GET a manifest by tag or digest, accepting [`MANIFEST_MEDIA_TYPES`]. The digest is
    /// computed from the bytes; when `locator` is a digest a mismatch is an error.
    pub async fn get_manifest(&self, locator: &str) -> Result<Manifest, RegistryError> {
        manifests::get(self, locator).await
    }

    /// HEAD a manifest; `None` when absent.
    pub async fn head_manifest(
        &self,
        locator: &str,
    ) -> Result<Option<ManifestInfo>, RegistryError> {
        manifests::head(self, locator).await
    }

    /// PUT a manifest under a tag or its digest, with its media type as `Content-Type`.
    pub async fn put_manifest(
        &self,
        locator: &str,
        manifest: &Manifest,
    ) -> Result<(), RegistryError> {
        manifests::put(self, locator, manifest).await.map(drop)
    }

    /// [`Repo::put_manifest`], returning the `OCI-Subject` the registry answered with: a
    /// registry with the referrers API names the subject of a manifest that has one, and a
    /// client must keep the referrers tag schema itself when it does not.
    pub async fn put_manifest_subject(
        &self,
        locator: &str,
        manifest: &Manifest,
    ) -> Result<Option<String>, RegistryError> {
        manifests::put(self, locator, manifest).await
    }

    /// The manifests naming `subject` as theirs, through the OCI 1.1 referrers API (all
    /// pages); `None` when the registry has no such API.
    pub async fn referrers(
        &self,
        subject: &Digest,
    ) -> Result<Option<Vec<Referrer>>, RegistryError> {
        catalog::referrers(self, subject).await
    }

    /// HEAD a blob: its size when present, `None` when absent.
    pub async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, RegistryError> {
        blobs::size(self, digest).await
    }

    /// GET a blob from `offset` (to `end`, exclusive, when given) using `Range`.
    pub async fn get_blob(
        &self,
        digest: &Digest,
        offset: u64,
        end: Option<u64>,
    ) -> Result<BlobBody, RegistryError> {
        blobs::get(self, digest, offset, end).await
    }

    /// Tries a cross-repository mount of `digest` from `from_repository` (same registry).
    /// The token asks for `pull` on the source and `pull,push` on this repository at once.
    /// A refused mount (401/403/404/405) opens a normal upload instead, and the registry is
    /// not asked to mount again by this client.
    pub async fn mount_blob(
        &self,
        digest: &Digest,
        from_repository: &str,
    ) -> Result<MountOutcome, RegistryError> {
        blobs::mount(self, digest, from_repository).await
    }

    /// Opens an upload session (POST).
    pub async fn start_upload(&self) -> Result<UploadSession, RegistryError> {
        blobs::start_upload(self).await
    }

    /// Monolithic streaming upload: PUT `body` (exactly `size` bytes) to the session with
    /// `?digest=`. The body is sent with a `Content-Length`.
    pub async fn put_blob(
        &self,
        session: UploadSession,
        digest: &Digest,
        size: u64,
        body: BoxStream<'static, Result<Bytes, std::io::Error>>,
    ) -> Result<(), RegistryError> {
        blobs::put_blob(self, session, digest, size, body).await
    }

    /// Chunked upload: PATCH one chunk at `session.offset` with `Content-Range`; returns the
    /// session with the new location and offset. Sent once, never retried as it is: after a
    /// failure only [`Repo::upload_status`] tells how much of it the registry took.
    pub async fn patch_chunk(
        &self,
        session: UploadSession,
        chunk: Bytes,
    ) -> Result<UploadSession, RegistryError> {
        blobs::patch_chunk(self, session, blobs::Chunk::Bytes(chunk)).await
    }

    /// Completes a chunked upload: PUT with `?digest=` and an empty body.
    pub async fn finish_upload(
        &self,
        session: UploadSession,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        blobs::finish_upload(self, session, digest, blobs::Chunk::Bytes(Bytes::new())).await
    }

    /// Completes a chunked upload with its last chunk as the PUT body (at `session.offset`).
    /// Like [`Repo::patch_chunk`] it is sent once: after a failure, ask
    /// [`Repo::upload_status`] how much the registry holds.
    pub async fn finish_upload_with(
        &self,
        session: UploadSession,
        digest: &Digest,
        last: Bytes,
    ) -> Result<(), RegistryError> {
        blobs::finish_upload(self, session, digest, blobs::Chunk::Bytes(last)).await
    }

    /// [`Repo::patch_chunk`] with a streamed body of exactly `len` bytes, so the chunk is
    /// never held in memory.
    pub async fn patch_chunk_stream(
        &self,
        session: UploadSession,
        len: u64,
        body: BoxStream<'static, Result<Bytes, std::io::Error>>,
    ) -> Result<UploadSession, RegistryError> {
        blobs::patch_chunk(self, session, blobs::Chunk::Stream(len, body)).await
    }

    /// [`Repo::finish_upload_with`] with a streamed last chunk of exactly `len` bytes.
    pub async fn finish_upload_stream(
        &self,
        session: UploadSession,
        digest: &Digest,
        len: u64,
        body: BoxStream<'static, Result<Bytes, std::io::Error>>,
    ) -> Result<(), RegistryError> {
        blobs::finish_upload(self, session, digest, blobs::Chunk::Stream(len, body)).await
    }

    /// Abandons an upload session (DELETE on the upload URL), so the registry can free what
    /// it holds; a session the registry no longer knows counts as cancelled.
    pub async fn cancel_upload(&self, session: &UploadSession) -> Result<(), RegistryError> {
        blobs::cancel_upload(self, session).await
    }

    /// Asks the registry how much of an upload it holds (GET on the upload URL, `Range`).
    pub async fn upload_status(
        &self,
        session: &UploadSession,
    ) -> Result<UploadSession, RegistryError> {
        blobs::upload_status(self, session).await
    }
}
