//! Listing: the registry's repositories (`GET /v2/_catalog`), a repository's tags
//! (`GET /v2/NAME/tags/list`), both paginated with `?n=` and `Link: <...>; rel="next"`, and
//! the manifests that refer to a subject (OCI 1.1 `GET /v2/NAME/referrers/DIGEST`, paginated
//! with `Link` too).
//!
//! Requests go through the shared pipeline ([`super::http`]), so auth, scheme probing and
//! retries are the same as for manifests and blobs.

use std::collections::HashSet;

use bytes::BytesMut;
use futures_util::StreamExt;
use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderValue, LINK};
use serde::Deserialize;

use super::http::{Call, Target, status_error, transport};
use super::{RegistryClient, RegistryError, Repo, auth, headers};
use crate::reference::Digest;

/// Page size asked for by default; distribution caps `n` at 1000 unless configured otherwise.
pub(super) const PAGE_SIZE: usize = 1000;
/// A listing page larger than this is refused, as a guard against a hostile registry.
const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;
/// Pages followed before giving up: a registry whose `Link` never ends must not loop forever.
const MAX_PAGES: usize = 100_000;

/// The scope the catalog needs.
const CATALOG_SCOPE: &str = "registry:catalog:*";

#[derive(Deserialize)]
struct CatalogPage {
    #[serde(default)]
    repositories: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct TagsPage {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// The target of the `rel="next"` link among `Link` header values, if any. Values may hold
/// several comma-separated links; `rel` may be quoted or not and hold several relation types.
pub(super) fn next_link<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<String> {
    for value in values {
        let mut rest = value;
        while let Some(start) = rest.find('<') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('>') else {
                break;
            };
            let target = &after[..end];
            let params_and_more = &after[end + 1..];
            // Parameters run up to the next link (`, <`) or the end of the value.
            let params_end = params_and_more.find('<').unwrap_or(params_and_more.len());
            let params = &params_and_more[..params_end];
            let is_next = params.split(';').any(|p| {
                let Some((name, val)) = p.split_once('=') else {
                    return false;
                };
                name.trim().eq_ignore_ascii_case("rel")
                    && val
                        .trim()
                        .trim_end_matches(',')
                        .trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            });
            if is_next {
                return Some(target.trim().to_owned());
            }
            rest = &params_and_more[params_end..];
        }
    }
    None
}

/// One page: the response body, and the absolute URL of the next page.
struct Page {
    body: bytes::Bytes,
    next: Option<url::Url>,
}

/// GETs `target` on `registry`; `None` on 404 when `absent_ok`.
async fn get_page(
    http: &super::http::Inner,
    registry: &str,
    target: Target,
    scopes: Vec<String>,
    absent_ok: bool,
    accept: &'static str,
) -> Result<(url::Url, Option<Page>), RegistryError> {
    let mut call = Call::new(Method::GET, target, scopes);
    call.headers
        .insert(ACCEPT, HeaderValue::from_static(accept));
    let (url, resp) = http.execute(registry, &call).await?;
    match resp.status().as_u16() {
        200 => {}
        404 if absent_ok => return Ok((url, None)),
        _ => return Err(status_error(&call.method, &url, resp).await),
    }
    let too_big = || RegistryError::Protocol {
        url: url.to_string(),
        reason: format!("listing page exceeds {MAX_PAGE_BYTES} bytes"),
    };
    if headers::content_length(resp.headers()).is_some_and(|n| n > MAX_PAGE_BYTES as u64) {
        return Err(too_big());
    }
    let links = resp.headers().get_all(LINK);
    let next = match next_link(links.iter().filter_map(|v| v.to_str().ok())) {
        Some(link) => Some(headers::resolve_location(&url, &link).map_err(|reason| {
            RegistryError::Protocol {
                url: url.to_string(),
                reason,
            }
        })?),
        None => None,
    };
    let mut body = BytesMut::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| transport(&url, e))?;
        if body.len() + chunk.len() > MAX_PAGE_BYTES {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    let page = Page {
        body: body.freeze(),
        next,
    };
    Ok((url, Some(page)))
}

/// Follows the pages from `first`, giving each body to `collect`. Stops when there is no next
/// link or a page adds nothing; refuses a next link seen before.
async fn paginate(
    http: &super::http::Inner,
    registry: &str,
    first: String,
    scopes: Vec<String>,
    absent_ok: bool,
    accept: &'static str,
    mut collect: impl FnMut(&url::Url, &[u8]) -> Result<usize, RegistryError>,
) -> Result<(), RegistryError> {
    let mut target = Target::Path(first);
    let mut seen: HashSet<url::Url> = HashSet::new();
    let mut last = None;
    for _ in 0..MAX_PAGES {
        let (shown, page) =
            get_page(http, registry, target, scopes.clone(), absent_ok, accept).await?;
        let Some(page) = page else {
            return Ok(());
        };
        let added = collect(&shown, &page.body)?;
        let Some(next) = page.next else {
            return Ok(());
        };
        // distribution announces a next page even when the last one came out exactly full;
        // the empty page that follows ends the listing.
        if added == 0 {
            return Ok(());
        }
        if !seen.insert(next.clone()) || next == shown {
            return Err(RegistryError::Protocol {
                url: shown.to_string(),
                reason: format!("pagination loops: `Link` points back to {next}"),
            });
        }
        target = Target::Url(next);
        last = Some(shown);
    }
    Err(RegistryError::Protocol {
        url: last.map(|u| u.to_string()).unwrap_or_default(),
        reason: format!("listing has more than {MAX_PAGES} pages"),
    })
}

fn parse_json<'a, T: Deserialize<'a>>(url: &url::Url, body: &'a [u8]) -> Result<T, RegistryError> {
    serde_json::from_slice(body).map_err(|e| RegistryError::Protocol {
        url: url.to_string(),
        reason: format!("cannot parse listing: {e}"),
    })
}

/// Every repository of `registry`, `page_size` per page. distribution answers `400` when
/// `n` exceeds its `catalog.maxentries`: the first page is then asked again with half the
/// size, down to what the registry allows.
pub(super) async fn catalog(
    client: &RegistryClient,
    registry: &str,
    page_size: usize,
) -> Result<Vec<String>, RegistryError> {
    let mut n = page_size.max(1);
    loop {
        let mut repositories = Vec::new();
        let mut pages = 0usize;
        let listed = paginate(
            &client.inner,
            registry,
            format!("v2/_catalog?n={n}"),
            vec![CATALOG_SCOPE.to_owned()],
            false,
            "application/json",
            |url, body| {
                pages += 1;
                let page: CatalogPage = parse_json(url, body)?;
                let names = page.repositories.unwrap_or_default();
                let n = names.len();
                repositories.extend(names);
                Ok(n)
            },
        )
        .await;
        match listed {
            Err(RegistryError::Status { status: 400, .. }) if pages == 0 && n > 1 => {
                tracing::debug!(registry, n, "catalog page size refused; halving it");
                n /= 2;
            }
            Err(e) => return Err(e),
            Ok(()) => {
                repositories.sort();
                repositories.dedup();
                return Ok(repositories);
            }
        }
    }
}

pub(super) async fn tags(repo: &Repo, page_size: usize) -> Result<Vec<String>, RegistryError> {
    let mut tags = Vec::new();
    paginate(
        repo.http(),
        repo.registry(),
        format!("v2/{}/tags/list?n={}", repo.repository(), page_size.max(1)),
        vec![auth::pull(repo.repository())],
        true,
        "application/json",
        |url, body| {
            let page: TagsPage = parse_json(url, body)?;
            let names = page.tags.unwrap_or_default();
            let n = names.len();
            tags.extend(names);
            Ok(n)
        },
    )
    .await?;
    tags.sort();
    tags.dedup();
    Ok(tags)
}

/// One page of the referrers API: an OCI index whose descriptors are the referrers.
#[derive(Deserialize)]
struct ReferrersPage {
    #[serde(default)]
    manifests: Vec<ReferrerDescriptor>,
}

#[derive(Deserialize)]
struct ReferrerDescriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: u64,
    #[serde(rename = "artifactType", default)]
    artifact_type: Option<String>,
}

/// The manifests that name `subject` as their subject, through the referrers API; `None` when
/// the registry does not offer the API (it answers 404, as distribution 2.8 does, or refuses
/// the route). Descriptors whose digest is not sha256 are skipped.
pub(super) async fn referrers(
    repo: &Repo,
    subject: &Digest,
) -> Result<Option<Vec<super::Referrer>>, RegistryError> {
    let mut found = Vec::new();
    let mut answered = false;
    let result = paginate(
        repo.http(),
        repo.registry(),
        format!("v2/{}/referrers/{subject}", repo.repository()),
        vec![auth::pull(repo.repository())],
        true,
        "application/vnd.oci.image.index.v1+json",
        |url, body| {
            answered = true;
            let page: ReferrersPage = parse_json(url, body)?;
            let n = page.manifests.len();
            found.extend(page.manifests.into_iter().filter_map(|d| {
                Some(super::Referrer {
                    digest: d.digest.parse().ok()?,
                    media_type: d.media_type,
                    size: d.size,
                    artifact_type: d.artifact_type.filter(|t| !t.is_empty()),
                })
            }));
            Ok(n)
        },
    )
    .await;
    match result {
        Ok(()) if answered => Ok(Some(found)),
        Ok(()) => Ok(None),
        // Registries without the API answer an unknown route in various ways.
        Err(RegistryError::Status {
            status: 400 | 405 | 406 | 501,
            ..
        }) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_forms() {
        assert_eq!(
            next_link([r#"</v2/_catalog?last=b&n=2>; rel="next""#]).as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        // Unquoted rel, extra parameters, odd spacing and case.
        assert_eq!(
            next_link(["<https://r.example/v2/x/tags/list?last=9&n=5> ;type=\"a\"; REL=Next"])
                .as_deref(),
            Some("https://r.example/v2/x/tags/list?last=9&n=5")
        );
        // Several links in one value; only `next` is taken.
        assert_eq!(
            next_link([r#"</first>; rel="first", </p?last=a>; rel="next", </last>; rel="last""#])
                .as_deref(),
            Some("/p?last=a")
        );
        // Several relation types in one rel.
        assert_eq!(
            next_link([r#"</n>; rel="prev next""#]).as_deref(),
            Some("/n")
        );
        // Spread over several header values.
        assert_eq!(
            next_link([r#"</p>; rel="prev""#, r#"</n2>; rel="next""#]).as_deref(),
            Some("/n2")
        );
        // A comma inside the URL does not split links.
        assert_eq!(
            next_link([r#"</v2/_catalog?last=a,b&n=2>; rel="next""#]).as_deref(),
            Some("/v2/_catalog?last=a,b&n=2")
        );
    }

    #[test]
    fn no_next_link() {
        assert_eq!(next_link([]), None);
        assert_eq!(next_link([r#"</p>; rel="prev""#]), None);
        assert_eq!(next_link([r#"</p>; rel="nextish""#]), None);
        assert_eq!(next_link(["garbage"]), None);
        assert_eq!(next_link(["<unterminated; rel=next"]), None);
        assert_eq!(next_link(["</x>"]), None);
    }
}
