//! Manifest GET/HEAD/PUT. Manifests stay raw bytes end to end: their digest is the sha256 of
//! exactly what the registry sent, so nothing here ever parses and re-serialises them.

use bytes::BytesMut;
use futures_util::StreamExt;
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;

use super::http::{Call, CallBody, Target, status_error, transport};
use super::{MANIFEST_MEDIA_TYPES, Manifest, ManifestInfo, RegistryError, Repo, auth, headers};
use crate::reference::Digest;

/// Manifests larger than this are refused: the spec's recommended limit, and a guard against a
/// hostile registry making us buffer an unbounded body.
pub(super) const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

fn accept() -> HeaderValue {
    HeaderValue::from_str(&MANIFEST_MEDIA_TYPES.join(", ")).expect("media types are ASCII")
}

fn path(repo: &Repo, locator: &str) -> String {
    format!("v2/{}/manifests/{locator}", repo.repository())
}

fn not_found(locator: &str, url: &url::Url) -> RegistryError {
    RegistryError::NotFound {
        what: format!("manifest `{locator}`"),
        url: url.to_string(),
    }
}

/// Checks `Docker-Content-Digest` against the digest we computed; other algorithms cannot be
/// checked and are ignored.
fn check_header_digest(
    url: &url::Url,
    map: &reqwest::header::HeaderMap,
    actual: &Digest,
) -> Result<(), RegistryError> {
    let Some(value) = headers::text(map, "docker-content-digest") else {
        return Ok(());
    };
    if !value.starts_with("sha256:") {
        return Ok(());
    }
    let claimed: Digest = value.parse().map_err(|_| RegistryError::Protocol {
        url: url.to_string(),
        reason: format!("malformed Docker-Content-Digest `{value}`"),
    })?;
    if &claimed != actual {
        return Err(RegistryError::DigestMismatch {
            url: url.to_string(),
            expected: claimed,
            actual: actual.clone(),
        });
    }
    Ok(())
}

#[derive(Deserialize)]
struct MediaTypeProbe {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
}

pub(super) async fn get(repo: &Repo, locator: &str) -> Result<Manifest, RegistryError> {
    let mut call = Call::new(
        Method::GET,
        Target::Path(path(repo, locator)),
        vec![auth::pull(repo.repository())],
    );
    call.headers.insert(ACCEPT, accept());
    let (url, resp) = repo.http().execute(repo.registry(), &call).await?;
    match resp.status().as_u16() {
        200 => {}
        404 => return Err(not_found(locator, &url)),
        _ => return Err(status_error(&call.method, &url, resp).await),
    }
    if headers::content_length(resp.headers()).is_some_and(|n| n > MAX_MANIFEST_BYTES as u64) {
        return Err(too_big(&url));
    }
    let header_map = resp.headers().clone();
    let mut body = BytesMut::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| transport(&url, e))?;
        if body.len() + chunk.len() > MAX_MANIFEST_BYTES {
            return Err(too_big(&url));
        }
        body.extend_from_slice(&chunk);
    }
    let bytes = body.freeze();
    let digest = Digest::of(&bytes);
    let content_type = headers::text(&header_map, "content-type").map(headers::bare_media_type);
    if content_type.as_deref().is_some_and(is_schema1) {
        // A signed schema 1 manifest's digest is that of its JWS payload, not of these
        // bytes, so the checks below would call it corrupt. It is handed on, digest as
        // computed, for the caller to refuse by its media type.
        return Ok(Manifest {
            bytes,
            media_type: content_type.unwrap_or_default(),
            digest,
        });
    }
    if let Ok(expected) = locator.parse::<Digest>()
        && expected != digest
    {
        return Err(RegistryError::DigestMismatch {
            url: url.to_string(),
            expected,
            actual: digest,
        });
    }
    check_header_digest(&url, &header_map, &digest)?;
    let media_type = serde_json::from_slice::<MediaTypeProbe>(&bytes)
        .ok()
        .and_then(|p| p.media_type)
        .or_else(|| headers::text(&header_map, "content-type").map(headers::bare_media_type))
        .unwrap_or_default();
    Ok(Manifest {
        bytes,
        media_type,
        digest,
    })
}

/// Whether `media_type` is Docker's deprecated schema 1 (signed or not).
pub(super) fn is_schema1(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/vnd.docker.distribution.manifest.v1+prettyjws"
            | "application/vnd.docker.distribution.manifest.v1+json"
    )
}

fn too_big(url: &url::Url) -> RegistryError {
    RegistryError::Protocol {
        url: url.to_string(),
        reason: format!("manifest exceeds {MAX_MANIFEST_BYTES} bytes"),
    }
}

pub(super) async fn head(
    repo: &Repo,
    locator: &str,
) -> Result<Option<ManifestInfo>, RegistryError> {
    let mut call = Call::new(
        Method::HEAD,
        Target::Path(path(repo, locator)),
        vec![auth::pull(repo.repository())],
    );
    call.headers.insert(ACCEPT, accept());
    let (url, resp) = repo.http().execute(repo.registry(), &call).await?;
    match resp.status().as_u16() {
        200 => {}
        404 => return Ok(None),
        _ => return Err(status_error(&call.method, &url, resp).await),
    }
    let h = resp.headers();
    let header_digest = headers::text(h, "docker-content-digest");
    let size = headers::content_length(h);
    let (Some(value), Some(size)) = (header_digest, size) else {
        // Both are optional for a HEAD (Nexus, registry.redhat.io and header-stripping
        // proxies leave `Docker-Content-Digest` out): the body tells.
        tracing::debug!(%url, "manifest HEAD without Docker-Content-Digest or Content-Length; fetching it");
        let m = get(repo, locator).await?;
        return Ok(Some(ManifestInfo {
            size: m.bytes.len() as u64,
            digest: m.digest,
            media_type: m.media_type,
        }));
    };
    let protocol = |reason: &str| RegistryError::Protocol {
        url: url.to_string(),
        reason: reason.to_owned(),
    };
    let digest = value
        .parse::<Digest>()
        .map_err(|_| protocol("Docker-Content-Digest is not a sha256 digest"))?;
    if let Ok(expected) = locator.parse::<Digest>()
        && expected != digest
    {
        return Err(RegistryError::DigestMismatch {
            url: url.to_string(),
            expected,
            actual: digest,
        });
    }
    let media_type = headers::text(h, "content-type")
        .map(headers::bare_media_type)
        .unwrap_or_default();
    Ok(Some(ManifestInfo {
        digest,
        media_type,
        size,
    }))
}

/// PUTs `manifest`; returns the `OCI-Subject` header of the answer, if any.
pub(super) async fn put(
    repo: &Repo,
    locator: &str,
    manifest: &Manifest,
) -> Result<Option<String>, RegistryError> {
    let mut call = Call::new(
        Method::PUT,
        Target::Path(path(repo, locator)),
        vec![auth::pull_push(repo.repository())],
    );
    let content_type =
        HeaderValue::from_str(&manifest.media_type).map_err(|_| RegistryError::Protocol {
            url: format!("{}/{}", repo.name(), locator),
            reason: format!(
                "media type `{}` is not a valid header value",
                manifest.media_type
            ),
        })?;
    call.headers.insert(CONTENT_TYPE, content_type);
    call.body = CallBody::Bytes(manifest.bytes.clone());
    // Catch a caller's stale digest before the registry stores the bytes under a tag.
    let computed = Digest::of(&manifest.bytes);
    if computed != manifest.digest {
        return Err(RegistryError::DigestMismatch {
            url: format!("{}@{}", repo.name(), manifest.digest),
            expected: manifest.digest.clone(),
            actual: computed,
        });
    }
    let (url, resp) = repo.http().execute(repo.registry(), &call).await?;
    match resp.status().as_u16() {
        200..=202 => {
            check_header_digest(&url, resp.headers(), &manifest.digest)?;
            Ok(headers::text(resp.headers(), "oci-subject").map(str::to_owned))
        }
        _ => Err(status_error(&call.method, &url, resp).await),
    }
}
