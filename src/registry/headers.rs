//! Reading and writing the distribution API's own header dialects (`Range` on uploads,
//! `Content-Range` on PATCH, `Location`) and its JSON error bodies.

use reqwest::header::HeaderMap;
use serde::Deserialize;

/// The offset after an upload `Range: 0-N` header (N is the last byte held, inclusive).
///
/// distribution answers `0-0` both for an empty upload and for one holding a single byte;
/// `None` is returned for that case so the caller can decide with what it knows.
pub(super) fn upload_offset(value: &str) -> Result<Option<u64>, String> {
    let v = value.trim();
    let v = v.strip_prefix("bytes=").unwrap_or(v);
    let (start, end) = v
        .split_once('-')
        .ok_or_else(|| format!("malformed Range `{value}`"))?;
    let start: u64 = start
        .trim()
        .parse()
        .map_err(|_| format!("malformed Range `{value}`"))?;
    let end: u64 = end
        .trim()
        .parse()
        .map_err(|_| format!("malformed Range `{value}`"))?;
    if start != 0 || end < start {
        return Err(format!("unexpected upload Range `{value}`"));
    }
    Ok(if end == 0 { None } else { Some(end + 1) })
}

/// `Content-Range` for a PATCH of `len` bytes at `offset`, distribution's form (`START-END`,
/// inclusive end, no unit).
pub(super) fn content_range(offset: u64, len: u64) -> String {
    format!("{}-{}", offset, offset + len.max(1) - 1)
}

/// The `Range` request header for `offset..end`.
pub(super) fn byte_range(offset: u64, end: Option<u64>) -> Option<String> {
    match end {
        Some(end) => Some(format!("bytes={}-{}", offset, end.saturating_sub(1))),
        None if offset > 0 => Some(format!("bytes={offset}-")),
        None => None,
    }
}

/// Resolves a `Location` header (absolute or relative) against the URL that returned it.
pub(super) fn resolve_location(request_url: &url::Url, location: &str) -> Result<url::Url, String> {
    request_url
        .join(location.trim())
        .map_err(|e| format!("bad Location `{location}`: {e}"))
}

/// A header's value as text.
pub(super) fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `Content-Length` read from the headers: a HEAD response's body is empty, so reqwest's
/// `content_length()` (the body's size) reports 0 there.
pub(super) fn content_length(headers: &HeaderMap) -> Option<u64> {
    text(headers, "content-length").and_then(|v| v.trim().parse().ok())
}

/// A media type without parameters (`application/json; charset=utf-8` -> `application/json`).
pub(super) fn bare_media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Most characters of a registry's error message shown.
const MAX_DETAIL_CHARS: usize = 512;

/// `{"errors":[{"code":"...","message":"..."}]}` as `CODE: message; ...`, bounded and escaped
/// for display.
pub(super) fn error_detail(body: &[u8]) -> Option<String> {
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    let parts: Vec<String> = parsed
        .errors
        .iter()
        .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
            (false, false) => format!("{}: {}", e.code, e.message),
            (false, true) => e.code.clone(),
            _ => e.message.clone(),
        })
        .filter(|s| !s.is_empty())
        .collect();
    // The registry's words are shown to a person: bounded and escaped.
    (!parts.is_empty()).then(|| crate::escape::clip(&parts.join("; "), MAX_DETAIL_CHARS))
}

/// The number before any `;` parameters of a `RateLimit-*` value (`100;w=21600` -> 100),
/// and the `w=` window in seconds when given.
fn rate_value(value: &str) -> Option<(u64, Option<u64>)> {
    let mut parts = value.split(';');
    let n = parts.next()?.trim().parse().ok()?;
    let window = parts
        .filter_map(|p| p.trim().strip_prefix("w="))
        .find_map(|w| w.trim().parse().ok());
    Some((n, window))
}

/// What a `429` says about the registry's limit, for the error: `RateLimit-Limit` and
/// `RateLimit-Remaining` (Docker Hub's `100;w=21600`), and when to retry (`Retry-After`,
/// else `RateLimit-Reset`, else the window).
pub(super) fn rate_limit_note(headers: &HeaderMap) -> String {
    let limit = text(headers, "ratelimit-limit").and_then(rate_value);
    let remaining = text(headers, "ratelimit-remaining").and_then(rate_value);
    let mut note = match limit {
        Some((n, Some(w))) => format!("the registry's limit is {n} pulls per {}", span(w)),
        Some((n, None)) => format!("the registry's limit is {n} pulls"),
        None => "the registry's rate limit was reached".to_owned(),
    };
    if let Some((left, _)) = remaining {
        note.push_str(&format!(" ({left} left)"));
    }
    let retry = text(headers, "retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or_else(|| text(headers, "ratelimit-reset").and_then(|v| v.trim().parse().ok()))
        .or(limit.and_then(|(_, w)| w));
    match retry {
        Some(secs) => note.push_str(&format!(": retry in {}", span(secs))),
        None => note.push_str(": retry later"),
    }
    note
}

/// A registry's pull limit as its last answer stated it (`RateLimit-Limit` and
/// `RateLimit-Remaining`, Docker Hub's `100;w=21600`; `RateLimit-Reset` when sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub limit: u64,
    /// Requests left in the current window.
    pub remaining: u64,
    /// The window, in seconds, when stated (`w=`).
    pub window_secs: Option<u64>,
    /// Seconds until the window resets (`RateLimit-Reset`), when stated.
    pub reset_secs: Option<u64>,
}

impl RateLimit {
    /// The limit stated by `headers`, when both `RateLimit-Limit` and `RateLimit-Remaining`
    /// are there and readable.
    pub(super) fn from_headers(headers: &HeaderMap) -> Option<RateLimit> {
        let (limit, window) = text(headers, "ratelimit-limit").and_then(rate_value)?;
        let (remaining, _) = text(headers, "ratelimit-remaining").and_then(rate_value)?;
        Some(RateLimit {
            limit,
            remaining,
            window_secs: window,
            reset_secs: text(headers, "ratelimit-reset").and_then(|v| v.trim().parse().ok()),
        })
    }

    /// `100 pulls per 6 h` (or `100 pulls` without a stated window).
    pub fn describe(&self) -> String {
        match self.window_secs {
            Some(w) => format!("{} pulls per {}", self.limit, span(w)),
            None => format!("{} pulls", self.limit),
        }
    }

    /// When the window resets (`in 2 h 5 min`), when the registry said.
    pub fn resets_in(&self) -> Option<String> {
        self.reset_secs.map(|s| format!("in {}", span(s)))
    }
}

/// The last [`RateLimit`] each registry stated, by registry name.
#[derive(Default)]
pub(super) struct RateLimits(std::sync::Mutex<std::collections::HashMap<String, RateLimit>>);

impl RateLimits {
    /// Records what `headers` say about `registry`'s limit, if anything.
    pub fn record(&self, registry: &str, headers: &HeaderMap) {
        if let Some(limit) = RateLimit::from_headers(headers) {
            tracing::debug!(
                registry,
                remaining = limit.remaining,
                limit = limit.limit,
                "rate limit"
            );
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(registry.to_owned(), limit);
        }
    }

    /// The last limit `registry` stated.
    pub fn get(&self, registry: &str) -> Option<RateLimit> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(registry)
            .copied()
    }
}

/// Seconds as `2 h 5 min`, `3 min`, `40 s`.
fn span(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs.div_ceil(60)),
        _ if secs.is_multiple_of(3600) => format!("{} h", secs / 3600),
        _ => format!("{} h {} min", secs / 3600, (secs % 3600).div_ceil(60)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_are_explained() {
        let mut h = HeaderMap::new();
        assert_eq!(
            rate_limit_note(&h),
            "the registry's rate limit was reached: retry later"
        );
        h.insert("ratelimit-limit", "100;w=21600".parse().unwrap());
        h.insert("ratelimit-remaining", "0;w=21600".parse().unwrap());
        assert_eq!(
            rate_limit_note(&h),
            "the registry's limit is 100 pulls per 6 h (0 left): retry in 6 h"
        );
        h.insert("retry-after", "125".parse().unwrap());
        assert_eq!(
            rate_limit_note(&h),
            "the registry's limit is 100 pulls per 6 h (0 left): retry in 3 min"
        );
        assert_eq!(span(3700), "1 h 2 min");
        let limit = RateLimit::from_headers(&h).unwrap();
        assert_eq!((limit.limit, limit.remaining), (100, 0));
        assert_eq!(limit.describe(), "100 pulls per 6 h");
        assert_eq!(limit.resets_in(), None);
        h.insert("ratelimit-reset", "7500".parse().unwrap());
        let limit = RateLimit::from_headers(&h).unwrap();
        assert_eq!(limit.resets_in().as_deref(), Some("in 2 h 5 min"));
        h.remove("ratelimit-remaining");
        assert_eq!(RateLimit::from_headers(&h), None);
        assert_eq!(span(59), "59 s");
    }

    #[test]
    fn upload_range() {
        assert_eq!(upload_offset("0-99"), Ok(Some(100)));
        assert_eq!(upload_offset("bytes=0-4"), Ok(Some(5)));
        assert_eq!(upload_offset("0-0"), Ok(None));
        assert!(upload_offset("5-9").is_err());
        assert!(upload_offset("0-").is_err());
        assert!(upload_offset("garbage").is_err());
    }

    #[test]
    fn ranges_out() {
        assert_eq!(content_range(0, 10), "0-9");
        assert_eq!(content_range(10, 5), "10-14");
        assert_eq!(byte_range(0, None), None);
        assert_eq!(byte_range(5, None).as_deref(), Some("bytes=5-"));
        assert_eq!(byte_range(0, Some(10)).as_deref(), Some("bytes=0-9"));
        assert_eq!(byte_range(3, Some(4)).as_deref(), Some("bytes=3-3"));
    }

    #[test]
    fn location_resolution() {
        let req = url::Url::parse("http://127.0.0.1:5000/v2/a/b/blobs/uploads/").unwrap();
        let abs =
            resolve_location(&req, "https://other:1/v2/a/b/blobs/uploads/u?_state=x").unwrap();
        assert_eq!(
            abs.as_str(),
            "https://other:1/v2/a/b/blobs/uploads/u?_state=x"
        );
        let rel = resolve_location(&req, "/v2/a/b/blobs/uploads/u1?_state=s%3D").unwrap();
        assert_eq!(
            rel.as_str(),
            "http://127.0.0.1:5000/v2/a/b/blobs/uploads/u1?_state=s%3D"
        );
        let rel = resolve_location(&req, "u2").unwrap();
        assert_eq!(
            rel.as_str(),
            "http://127.0.0.1:5000/v2/a/b/blobs/uploads/u2"
        );
    }

    #[test]
    fn media_type_and_errors() {
        assert_eq!(
            bare_media_type("application/json; charset=utf-8"),
            "application/json"
        );
        assert_eq!(bare_media_type("text/plain"), "text/plain");
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}},{"code":"X","message":""}]}"#;
        assert_eq!(
            error_detail(body).as_deref(),
            Some("MANIFEST_UNKNOWN: manifest unknown; X")
        );
        assert_eq!(error_detail(b"<html>"), None);
        assert_eq!(error_detail(br#"{"errors":[]}"#), None);
    }
}
