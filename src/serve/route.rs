//! Which registry endpoint a request path names, parsed from the right: repository names
//! contain slashes (`/v2/team/app/manifests/1.0`), references and digests do not.
//!
//! Names, tags and digests are checked with the rules list parsing uses
//! ([`crate::imagelist::check_repository`], [`crate::imagelist::check_tag`], [`Digest`]), so a
//! request can only ever name what a list could.

use crate::imagelist::{check_repository, check_tag};
use crate::reference::Digest;

/// Longest repository name accepted (the distribution spec's limit).
const MAX_NAME: usize = 255;

/// A manifest reference from a request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A tag.
    Tag(String),
    /// A digest.
    Digest(Digest),
}

/// A parsed `/v2/...` path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`: the API version check.
    Base,
    /// `/v2/_catalog`.
    Catalog,
    /// `/v2/<name>/tags/list`.
    Tags(String),
    /// `/v2/<name>/manifests/<reference>`.
    Manifest(String, Reference),
    /// `/v2/<name>/blobs/<digest>`.
    Blob(String, Digest),
    /// `/v2/<name>/referrers/<digest>`.
    Referrers(String, Digest),
}

/// Why a path is not one the server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadRoute {
    /// Not an endpoint of the API (404 without an OCI code).
    NotFound,
    /// The repository name is invalid (`NAME_INVALID`).
    Name(String),
    /// The digest is invalid (`DIGEST_INVALID`).
    Digest(String),
    /// The tag is invalid: no manifest can have it (`MANIFEST_UNKNOWN`).
    Tag(String),
}

/// Parses the path of a request (without the query).
pub fn parse(path: &str) -> Result<Route, BadRoute> {
    let rest = match path {
        "/v2" | "/v2/" => return Ok(Route::Base),
        "/v2/_catalog" => return Ok(Route::Catalog),
        _ => path.strip_prefix("/v2/").ok_or(BadRoute::NotFound)?,
    };
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Ok(Route::Tags(name_of(name)?));
    }
    let (head, last) = rest.rsplit_once('/').ok_or(BadRoute::NotFound)?;
    let (name, kind) = head.rsplit_once('/').ok_or(BadRoute::NotFound)?;
    // Some clients escape the `:` of a digest.
    let last = last.replace("%3A", ":").replace("%3a", ":");
    match kind {
        "manifests" => {
            let name = name_of(name)?;
            let reference = if last.contains(':') {
                Reference::Digest(digest_of(&last)?)
            } else {
                check_tag(&last).map_err(BadRoute::Tag)?;
                Reference::Tag(last)
            };
            Ok(Route::Manifest(name, reference))
        }
        "blobs" => Ok(Route::Blob(name_of(name)?, digest_of(&last)?)),
        "referrers" => Ok(Route::Referrers(name_of(name)?, digest_of(&last)?)),
        _ => Err(BadRoute::NotFound),
    }
}

fn name_of(name: &str) -> Result<String, BadRoute> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(BadRoute::Name(format!(
            "a repository name has 1 to {MAX_NAME} characters"
        )));
    }
    check_repository(name).map_err(BadRoute::Name)?;
    Ok(name.to_owned())
}

fn digest_of(text: &str) -> Result<Digest, BadRoute> {
    text.parse::<Digest>()
        .map_err(|e| BadRoute::Digest(e.to_string()))
}

/// A `Range` header's single byte range, resolved against a blob of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No usable `Range` header (absent, malformed, several ranges): the whole blob.
    Whole,
    /// Bytes `start..end` (end exclusive, not empty).
    Part(u64, u64),
    /// The range starts past the end (416).
    Unsatisfiable,
}

/// Resolves a `Range` header value (`bytes=A-B`, `bytes=A-`, `bytes=-N`) against `size`, as
/// RFC 9110 says: a header that does not parse is ignored, several ranges are served as the
/// whole blob (allowed, and no client of a registry asks for them).
pub fn byte_range(header: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return ByteRange::Whole;
    };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return ByteRange::Whole;
    };
    let num = |s: &str| {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (a.trim(), b.trim()) {
        ("", suffix) => match num(suffix) {
            None => ByteRange::Whole,
            Some(n) if n == 0 || size == 0 => ByteRange::Unsatisfiable,
            Some(n) => ByteRange::Part(size.saturating_sub(n), size),
        },
        (first, last) => {
            let Some(start) = num(first) else {
                return ByteRange::Whole;
            };
            let end = match last {
                "" => size,
                l => match num(l) {
                    Some(l) if l >= start => l.saturating_add(1).min(size),
                    _ => return ByteRange::Whole,
                },
            };
            if start >= size {
                ByteRange::Unsatisfiable
            } else {
                ByteRange::Part(start, end)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn digest() -> Digest {
        D.parse().unwrap()
    }

    #[test]
    fn paths_parse_from_the_right() {
        assert_eq!(parse("/v2/"), Ok(Route::Base));
        assert_eq!(parse("/v2"), Ok(Route::Base));
        assert_eq!(parse("/v2/_catalog"), Ok(Route::Catalog));
        assert_eq!(
            parse("/v2/a/b/c/tags/list"),
            Ok(Route::Tags("a/b/c".into()))
        );
        assert_eq!(
            parse("/v2/team/app/manifests/1.0"),
            Ok(Route::Manifest(
                "team/app".into(),
                Reference::Tag("1.0".into())
            ))
        );
        // A repository may be called `manifests` or `blobs`.
        assert_eq!(
            parse(&format!("/v2/x/blobs/manifests/{D}")),
            Ok(Route::Manifest(
                "x/blobs".into(),
                Reference::Digest(digest())
            ))
        );
        assert_eq!(
            parse(&format!("/v2/x/manifests/blobs/{}", D.replace(':', "%3A"))),
            Ok(Route::Blob("x/manifests".into(), digest()))
        );
        assert_eq!(
            parse(&format!("/v2/app/referrers/{D}")),
            Ok(Route::Referrers("app".into(), digest()))
        );
    }

    #[test]
    fn bad_paths_are_refused_with_the_right_code() {
        assert_eq!(parse("/"), Err(BadRoute::NotFound));
        assert_eq!(parse("/v1/x/manifests/1"), Err(BadRoute::NotFound));
        assert_eq!(parse("/v2/app"), Err(BadRoute::NotFound));
        assert_eq!(parse("/v2/app/other/1"), Err(BadRoute::NotFound));
        assert_eq!(parse("/v2/manifests/1"), Err(BadRoute::NotFound));
        assert!(matches!(
            parse("/v2/App/manifests/1"),
            Err(BadRoute::Name(_))
        ));
        assert!(matches!(
            parse("/v2/a//b/manifests/1"),
            Err(BadRoute::Name(_))
        ));
        assert!(matches!(
            parse("/v2/../etc/blobs/x"),
            Err(BadRoute::Name(_))
        ));
        assert!(matches!(
            parse("/v2/app/blobs/sha256:xyz"),
            Err(BadRoute::Digest(_))
        ));
        assert!(matches!(
            parse("/v2/app/blobs/uploads"),
            Err(BadRoute::Digest(_))
        ));
        assert!(matches!(
            parse("/v2/app/manifests/-bad"),
            Err(BadRoute::Tag(_))
        ));
        let long = "a".repeat(256);
        assert!(matches!(
            parse(&format!("/v2/{long}/tags/list")),
            Err(BadRoute::Name(_))
        ));
    }

    #[test]
    fn ranges_resolve_as_rfc_9110_says() {
        use ByteRange::*;
        let r = |h: &str| byte_range(Some(h), 100);
        assert_eq!(byte_range(None, 100), Whole);
        assert_eq!(r("bytes=0-9"), Part(0, 10));
        assert_eq!(r("bytes=90-"), Part(90, 100));
        assert_eq!(r("bytes=90-1000"), Part(90, 100));
        assert_eq!(r("bytes=-10"), Part(90, 100));
        assert_eq!(r("bytes=-1000"), Part(0, 100));
        assert_eq!(r("bytes=99-99"), Part(99, 100));
        assert_eq!(r("bytes=100-"), Unsatisfiable);
        assert_eq!(r("bytes=200-300"), Unsatisfiable);
        assert_eq!(r("bytes=-0"), Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=0-"), 0), Unsatisfiable);
        // Ignored: malformed, reversed, other units, several ranges.
        assert_eq!(r("bytes=9-0"), Whole);
        assert_eq!(r("bytes=a-b"), Whole);
        assert_eq!(r("items=0-1"), Whole);
        assert_eq!(r("bytes=0-1,5-6"), Whole);
        assert_eq!(r("bytes=+1-2"), Whole);
    }
}
