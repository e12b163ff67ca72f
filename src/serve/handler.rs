//! One request, one response: the pull side of the OCI distribution API answered from the
//! bundle's volumes, and an OCI error body for everything else.
//!
//! Manifests are served as stored (never converted, whatever `Accept` says), so their digests
//! are the bundle's. Blob bodies stream from [`BundleStore::read_blob`] on a blocking thread
//! through a channel of [`CHUNKS_IN_FLIGHT`] chunks of [`CHUNK`] bytes: a response holds at most
//! that much whatever the blob's size, and a client that stops reading stops the reader.

use std::collections::HashSet;
use std::io::{self, Read};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};

use crate::bundle::BundleStore;
use crate::reference::Digest;

use super::index::Repositories;
use super::route::{self, BadRoute, ByteRange, Reference, Route};

/// Bytes read from the volumes per chunk of a blob body.
pub const CHUNK: usize = 256 * 1024;
/// Chunks of a blob body queued between the reader and the connection.
pub const CHUNKS_IN_FLIGHT: usize = 2;
/// How long a blob body waits for its client to take the next chunk before it is cut.
const STALL: std::time::Duration = std::time::Duration::from_secs(120);
/// Most page entries (`n`) of a tags or catalog list.
const MAX_PAGE: usize = 10_000;

const API_VERSION: &str = "Docker-Distribution-API-Version";
const OCTET_STREAM: &str = "application/octet-stream";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// What the handler answers from.
pub struct State {
    /// The bundle.
    pub store: Arc<BundleStore>,
    /// Its images by repository.
    pub repos: Repositories,
    /// Blob bodies being read at once (each holds a blocking thread and a decoder).
    pub streams: Arc<Semaphore>,
}

/// A response body: nothing, bytes in memory, or a blob streaming from the volumes. Calls its
/// `on_done` hook with the bytes sent when the connection drops it (finished or not).
pub struct ServedBody {
    kind: Kind,
    sent: u64,
    on_done: Option<Box<dyn FnOnce(u64) + Send>>,
}

enum Kind {
    Empty,
    Full(Option<Bytes>),
    Stream {
        chunks: mpsc::Receiver<io::Result<Bytes>>,
        left: u64,
    },
}

impl ServedBody {
    fn empty() -> ServedBody {
        ServedBody::of(Kind::Empty)
    }

    fn full(bytes: Bytes) -> ServedBody {
        ServedBody::of(Kind::Full(Some(bytes)))
    }

    fn of(kind: Kind) -> ServedBody {
        ServedBody {
            kind,
            sent: 0,
            on_done: None,
        }
    }

    /// Sets the hook called with the number of body bytes sent once the body is dropped.
    pub fn on_done(&mut self, hook: Box<dyn FnOnce(u64) + Send>) {
        self.on_done = Some(hook);
    }
}

impl Body for ServedBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        let chunk = match &mut this.kind {
            Kind::Empty => None,
            Kind::Full(bytes) => bytes.take().map(Ok),
            Kind::Stream { chunks, left } => match chunks.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(b))) => {
                    *left = left.saturating_sub(b.len() as u64);
                    Some(Ok(b))
                }
                Poll::Ready(Some(Err(e))) => Some(Err(e)),
                Poll::Ready(None) if *left > 0 => Some(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the blob reader stopped early",
                ))),
                Poll::Ready(None) => None,
            },
        };
        Poll::Ready(chunk.map(|c| {
            c.map(|b| {
                this.sent += b.len() as u64;
                Frame::data(b)
            })
        }))
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty | Kind::Full(None) => true,
            Kind::Full(Some(_)) => false,
            Kind::Stream { left, .. } => *left == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty | Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Kind::Stream { left, .. } => SizeHint::with_exact(*left),
        }
    }
}

impl Drop for ServedBody {
    fn drop(&mut self) {
        if let Some(hook) = self.on_done.take() {
            hook(self.sent);
        }
    }
}

/// The response to one request.
pub async fn respond(
    state: &State,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response<ServedBody> {
    let mut response = answer(state, method, uri, headers).await;
    response
        .headers_mut()
        .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    response
}

async fn answer(
    state: &State,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response<ServedBody> {
    let head = *method == Method::HEAD;
    if *method != Method::GET && !head {
        let mut r = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            &format!(
                "{method} is not supported: this registry serves a bundle read-only (pull only)"
            ),
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let route = match route::parse(uri.path()) {
        Ok(route) => route,
        Err(bad) => return bad_route(bad),
    };
    let query = Query::parse(uri.query());
    let mut response = match route {
        Route::Base => json_response(&json!({})),
        Route::Catalog => list(
            "/v2/_catalog",
            state.repos.names(),
            &query,
            |page| json!({ "repositories": page }),
        ),
        Route::Tags(name) => match state.repos.get(&name) {
            None => name_unknown(&name),
            Some(repo) => list(
                &format!("/v2/{name}/tags/list"),
                repo.tags.keys().map(String::as_str),
                &query,
                |page| json!({ "name": name, "tags": page }),
            ),
        },
        Route::Manifest(name, reference) => manifest(state, &name, &reference),
        Route::Blob(name, digest) => blob(state, &name, &digest, headers, head).await,
        Route::Referrers(name, digest) => referrers(state, &name, &digest, &query),
    };
    if head {
        // The headers of a GET (Content-Length included), without the body.
        *response.body_mut() = ServedBody::empty();
    }
    response
}

fn manifest(state: &State, name: &str, reference: &Reference) -> Response<ServedBody> {
    let Some(repo) = state.repos.get(name) else {
        return name_unknown(name);
    };
    let digest = match reference {
        Reference::Tag(tag) => repo.tags.get(tag),
        Reference::Digest(d) => repo.manifests.get(d),
    };
    let Some(stored) = digest.and_then(|d| state.store.manifest(d).map(|m| (d, m))) else {
        let what = match reference {
            Reference::Tag(t) => format!("{name}:{t}"),
            Reference::Digest(d) => format!("{name}@{d}"),
        };
        return error(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            &format!("manifest unknown: {what} is not in this bundle"),
        );
    };
    let (digest, m) = stored;
    let media_type = if m.media_type.is_empty() {
        media_type_of(&m.bytes)
            .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".into())
    } else {
        m.media_type.clone()
    };
    let mut r = Response::new(ServedBody::full(m.bytes.clone()));
    let h = r.headers_mut();
    set(h, header::CONTENT_TYPE, &media_type);
    set(h, header::CONTENT_LENGTH, &m.bytes.len().to_string());
    set(h, "Docker-Content-Digest", digest.as_str());
    set(h, header::ETAG, &format!("\"{digest}\""));
    r
}

async fn blob(
    state: &State,
    name: &str,
    digest: &Digest,
    headers: &HeaderMap,
    head: bool,
) -> Response<ServedBody> {
    let Some(repo) = state.repos.get(name) else {
        return name_unknown(name);
    };
    let size = repo
        .blobs
        .contains(digest)
        .then(|| state.store.blob_size(digest))
        .flatten();
    let Some(size) = size else {
        return error(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            &format!("blob unknown: {digest} is not in repository {name}"),
        );
    };
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, end) = match route::byte_range(range, size) {
        ByteRange::Whole => (StatusCode::OK, 0, size),
        ByteRange::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b),
        ByteRange::Unsatisfiable => {
            let mut r = error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "RANGE_INVALID",
                &format!(
                    "range {} is outside blob {digest} of {size} bytes",
                    range.unwrap_or("")
                ),
            );
            set(
                r.headers_mut(),
                header::CONTENT_RANGE,
                &format!("bytes */{size}"),
            );
            return r;
        }
    };
    let body = if head || start == end {
        ServedBody::empty()
    } else {
        stream(state, digest.clone(), start, end).await
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    set(h, header::CONTENT_TYPE, OCTET_STREAM);
    set(h, header::CONTENT_LENGTH, &(end - start).to_string());
    set(h, header::ACCEPT_RANGES, "bytes");
    set(h, "Docker-Content-Digest", digest.as_str());
    set(h, header::ETAG, &format!("\"{digest}\""));
    if status == StatusCode::PARTIAL_CONTENT {
        set(
            h,
            header::CONTENT_RANGE,
            &format!("bytes {start}-{}/{size}", end - 1),
        );
    }
    r
}

/// Bytes `start..end` of a blob as a body, read on a blocking thread.
async fn stream(state: &State, digest: Digest, start: u64, end: u64) -> ServedBody {
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    // Waits while as many bodies are being read as allowed; closed only if the server is.
    let permit = state.streams.clone().acquire_owned().await.ok();
    let store = state.store.clone();
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut reader = match store.read_blob(&digest, start..end) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("cannot read blob {digest}: {e}");
                let _ = tx.try_send(Err(io::Error::other(e)));
                return;
            }
        };
        loop {
            let mut chunk = Vec::with_capacity(CHUNK);
            match (&mut reader).take(CHUNK as u64).read_to_end(&mut chunk) {
                Ok(0) => return,
                Ok(_) => {
                    let sent =
                        runtime.block_on(tokio::time::timeout(STALL, tx.send(Ok(chunk.into()))));
                    match sent {
                        Ok(Ok(())) => {}
                        // The client went away: stop reading.
                        Ok(Err(_)) => return,
                        // The client stopped reading: give its stream slot back (dropping the
                        // sender ends the body early, which aborts the connection).
                        Err(_) => {
                            tracing::info!(
                                "a client stopped reading blob {digest} for {} s; response cut",
                                STALL.as_secs()
                            );
                            return;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!("reading blob {digest} from the volumes failed: {e}");
                    let _ = tx.try_send(Err(e));
                    return;
                }
            }
        }
    });
    ServedBody::of(Kind::Stream {
        chunks: rx,
        left: end - start,
    })
}

/// The OCI referrers API: an index of the repository's manifests whose `subject` is `digest`,
/// filtered by `artifactType` when asked.
fn referrers(state: &State, name: &str, digest: &Digest, query: &Query) -> Response<ServedBody> {
    let Some(repo) = state.repos.get(name) else {
        return name_unknown(name);
    };
    let mut seen = HashSet::new();
    let mut manifests = Vec::new();
    for r in repo.referrers.iter().filter(|r| r.subject == *digest) {
        if !seen.insert(&r.digest) {
            continue;
        }
        let Some(m) = state.store.manifest(&r.digest) else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&m.bytes) else {
            continue;
        };
        if v["subject"]["digest"].as_str() != Some(digest.as_str()) {
            continue;
        }
        let artifact_type = v["artifactType"]
            .as_str()
            .or_else(|| v["config"]["mediaType"].as_str())
            .map(str::to_owned);
        if let Some(wanted) = &query.artifact_type
            && artifact_type.as_ref() != Some(wanted)
        {
            continue;
        }
        let media_type = if m.media_type.is_empty() {
            media_type_of(&m.bytes).unwrap_or_default()
        } else {
            m.media_type.clone()
        };
        let mut d = json!({
            "mediaType": media_type,
            "digest": r.digest,
            "size": m.bytes.len(),
        });
        if let Some(t) = artifact_type {
            d["artifactType"] = json!(t);
        }
        if v["annotations"].is_object() {
            d["annotations"] = v["annotations"].clone();
        }
        manifests.push(d);
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    let mut r = json_response(&index);
    set(r.headers_mut(), header::CONTENT_TYPE, OCI_INDEX);
    if query.artifact_type.is_some() {
        set(r.headers_mut(), "OCI-Filters-Applied", "artifactType");
    }
    r
}

/// `n`, `last` and `artifactType` from the query string.
#[derive(Default)]
struct Query {
    n: Option<Result<usize, String>>,
    last: Option<String>,
    artifact_type: Option<String>,
}

impl Query {
    fn parse(query: Option<&str>) -> Query {
        let mut q = Query::default();
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*k {
                "n" => q.n = Some(v.parse::<usize>().map_err(|_| v.into_owned())),
                "last" => q.last = Some(v.into_owned()),
                "artifactType" => q.artifact_type = Some(v.into_owned()),
                _ => {}
            }
        }
        q
    }
}

/// A sorted list, paged by `n` and `last` as the distribution spec says: entries after `last`,
/// at most `n` of them, and a `Link` header to the next page when there is one.
fn list<'a>(
    path: &str,
    sorted: impl Iterator<Item = &'a str>,
    query: &Query,
    body: impl FnOnce(Vec<&'a str>) -> serde_json::Value,
) -> Response<ServedBody> {
    let n = match &query.n {
        None => None,
        Some(Ok(n)) if *n <= MAX_PAGE => Some(*n),
        Some(Ok(_)) | Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
                &format!("n must be a number from 0 to {MAX_PAGE}"),
            );
        }
    };
    let mut rest = sorted
        .filter(|s| query.last.as_deref().is_none_or(|last| *s > last))
        .peekable();
    let page: Vec<&str> = match n {
        Some(n) => rest.by_ref().take(n).collect(),
        None => rest.by_ref().collect(),
    };
    let more = rest.peek().is_some();
    let next = match (more, n, page.last()) {
        (true, Some(n), Some(last)) => Some(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("n", &n.to_string())
                .append_pair("last", last)
                .finish(),
        ),
        _ => None,
    };
    let mut r = json_response(&body(page));
    if let Some(q) = next {
        set(
            r.headers_mut(),
            header::LINK,
            &format!("<{path}?{q}>; rel=\"next\""),
        );
    }
    r
}

fn bad_route(bad: BadRoute) -> Response<ServedBody> {
    match bad {
        BadRoute::NotFound => error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint"),
        BadRoute::Name(why) => error(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            &format!("invalid repository name: {why}"),
        ),
        BadRoute::Digest(why) => error(StatusCode::BAD_REQUEST, "DIGEST_INVALID", &why),
        BadRoute::Tag(why) => error(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            &format!("manifest unknown: {why}"),
        ),
    }
}

fn name_unknown(name: &str) -> Response<ServedBody> {
    error(
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
        &format!("repository {name} is not in this bundle"),
    )
}

/// An OCI error response: `{"errors":[{"code":...,"message":...}]}`.
fn error(status: StatusCode, code: &str, message: &str) -> Response<ServedBody> {
    let mut r = json_response(&json!({ "errors": [{ "code": code, "message": message }] }));
    *r.status_mut() = status;
    r
}

fn json_response(value: &serde_json::Value) -> Response<ServedBody> {
    let bytes = Bytes::from(value.to_string());
    let mut r = Response::new(ServedBody::full(bytes.clone()));
    set(r.headers_mut(), header::CONTENT_TYPE, "application/json");
    set(
        r.headers_mut(),
        header::CONTENT_LENGTH,
        &bytes.len().to_string(),
    );
    r
}

/// The `mediaType` field of a manifest, for one the descriptor has no type for.
fn media_type_of(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Head>(bytes).ok()?.media_type
}

fn set(headers: &mut HeaderMap, name: impl header::IntoHeaderName, value: &str) {
    // Values here are digests, numbers and media types from the bundle; one that is not a valid
    // header value (a hostile media type) is left out rather than sent.
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}
