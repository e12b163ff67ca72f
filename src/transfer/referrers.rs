//! Signatures, attestations and SBOMs travel with their images.
//!
//! Discovery, for every manifest of a planned image, at the source: the OCI 1.1 referrers API
//! (`GET /v2/NAME/referrers/DIGEST`) where the registry has it, else the referrers tag schema
//! (an index tagged `sha256-<hex>` listing the referrers), and cosign's tag schema
//! (`sha256-<hex>.sig`, `.att`, `.sbom`). Referrers of referrers are found the same way, down to
//! [`MAX_DEPTH`]. What is found becomes ordinary planned images (by digest, or by their cosign
//! tag), so blobs, manifests and bundles need nothing new; an image's referrers are written
//! after it.
//!
//! At a destination without the referrers API (distribution 2.8, older Harbor), a manifest
//! with a `subject` is found by nobody unless it is listed in the `sha256-<hex>` index of its
//! subject: airlift keeps that index itself, merging into what the destination already lists,
//! so the site's own signatures are never dropped.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::Deserialize;

use crate::reference::Digest;
use crate::registry::{Manifest, RegistryError, Repo};

use super::{SharedError, TransferError};

/// How deep referrers of referrers are followed (a signature on an SBOM on an image is 2).
pub const MAX_DEPTH: usize = 3;

/// Referrers found for one subject at most; a hostile or broken listing stops there.
const MAX_PER_SUBJECT: usize = 1000;

pub use crate::policy::{ReferrerMode, ReferrerPolicy};

/// A referrer found at the source: by digest, or by its cosign tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Found {
    /// Listed by the referrers API or a `sha256-<hex>` index.
    Digest(Digest),
    /// A cosign tag-schema tag (`sha256-<hex>.sig`, `.att`, `.sbom`), kept as a tag.
    Tag(String),
}

/// The tag the referrers tag schema gives the index of `subject`'s referrers.
pub fn fallback_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// What makes a manifest a referrer: the digest of its subject and its artifact type (its
/// `artifactType`, else its config's media type, as the OCI image spec says).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferrerInfo {
    /// The manifest it refers to.
    pub subject: Option<Digest>,
    /// Its artifact type.
    pub artifact_type: Option<String>,
    /// Its annotations (copied into the `sha256-<hex>` index entry).
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct Probe {
    subject: Option<ProbeDescriptor>,
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
    config: Option<ProbeConfig>,
    annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct ProbeDescriptor {
    digest: String,
}

#[derive(Deserialize)]
struct ProbeConfig {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
}

/// Reads [`ReferrerInfo`] from a manifest's bytes (all empty for what is not JSON).
pub fn info(manifest: &Manifest) -> ReferrerInfo {
    let Ok(p) = serde_json::from_slice::<Probe>(&manifest.bytes) else {
        return ReferrerInfo::default();
    };
    ReferrerInfo {
        subject: p.subject.and_then(|s| s.digest.parse().ok()),
        artifact_type: p
            .artifact_type
            .filter(|t| !t.is_empty())
            .or_else(|| p.config.and_then(|c| c.media_type)),
        annotations: p.annotations,
    }
}

/// A repository's tags, listed once per run (both tag schemas are found among them).
type TagCell = Arc<tokio::sync::OnceCell<Arc<BTreeSet<String>>>>;

/// Discovers referrers at the source, caching per repository what it lists.
#[derive(Default)]
pub(super) struct Discovery {
    tags: std::sync::Mutex<HashMap<(String, String), TagCell>>,
    /// Per registry: whether it has the referrers API (learned from the first answer).
    api: std::sync::Mutex<HashMap<String, bool>>,
}

impl Discovery {
    async fn tags(&self, repo: &Repo) -> Result<Arc<BTreeSet<String>>, SharedError> {
        let cell = self
            .tags
            .lock()
            .expect("not poisoned")
            .entry((repo.registry().to_owned(), repo.repository().to_owned()))
            .or_default()
            .clone();
        cell.get_or_try_init(|| async {
            let tags = repo.tags().await.map_err(|e| query(repo, "tags", e))?;
            Ok::<_, SharedError>(Arc::new(tags.into_iter().collect()))
        })
        .await
        .cloned()
    }

    /// The referrers of `subject` in `repo`: digests from the referrers API (or the
    /// `sha256-<hex>` index where there is no API), and cosign's tags.
    pub(super) async fn find(
        &self,
        repo: &Repo,
        subject: &Digest,
    ) -> Result<Vec<Found>, SharedError> {
        let tags = self.tags(repo).await?;
        let mut found = BTreeSet::new();
        let known = self
            .api
            .lock()
            .expect("not poisoned")
            .get(repo.registry())
            .copied();
        let from_api = if known == Some(false) {
            None
        } else {
            let answer = repo
                .referrers(subject)
                .await
                .map_err(|e| query(repo, "referrers", e))?;
            self.api
                .lock()
                .expect("not poisoned")
                .insert(repo.registry().to_owned(), answer.is_some());
            answer
        };
        match from_api {
            Some(list) => found.extend(list.into_iter().map(|r| Found::Digest(r.digest))),
            None => {
                let tag = fallback_tag(subject);
                if tags.contains(&tag) {
                    let index = repo
                        .get_manifest(&tag)
                        .await
                        .map_err(|e| query(repo, &tag, e))?;
                    found.extend(index_entries(&index).into_iter().map(Found::Digest));
                }
            }
        }
        for suffix in [".sig", ".att", ".sbom"] {
            let tag = format!("{}{suffix}", fallback_tag(subject));
            if tags.contains(&tag) {
                found.insert(Found::Tag(tag));
            }
        }
        Ok(found.into_iter().take(MAX_PER_SUBJECT).collect())
    }
}

fn query(repo: &Repo, what: &str, source: RegistryError) -> SharedError {
    Arc::new(TransferError::Query {
        reference: format!("{} ({what})", repo.name()),
        source,
    })
}

/// The digests an index lists (empty for anything else).
fn index_entries(index: &Manifest) -> Vec<Digest> {
    #[derive(Deserialize)]
    struct Index {
        #[serde(default)]
        manifests: Vec<ProbeDescriptor>,
    }
    serde_json::from_slice::<Index>(&index.bytes)
        .map(|i| {
            i.manifests
                .into_iter()
                .filter_map(|d| d.digest.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// At a destination without the referrers API, lists `referrer` (a manifest whose subject is
/// `subject`) in the `sha256-<hex>` index of `subject`, keeping every entry already there.
/// The caller makes updates of one index take turns.
pub(super) async fn list_in_fallback_index(
    repo: &Repo,
    subject: &Digest,
    referrer: &Manifest,
) -> Result<(), RegistryError> {
    let tag = fallback_tag(subject);
    let mut index: serde_json::Value = match repo.get_manifest(&tag).await {
        Ok(existing) => serde_json::from_slice(&existing.bytes).unwrap_or_default(),
        Err(RegistryError::NotFound { .. }) => serde_json::Value::Null,
        Err(e) => return Err(e),
    };
    if !index.is_object() || index.get("manifests").is_none_or(|m| !m.is_array()) {
        index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [],
        });
    }
    let list = index["manifests"].as_array_mut().expect("checked above");
    if list
        .iter()
        .any(|d| d.get("digest").and_then(|v| v.as_str()) == Some(referrer.digest.as_str()))
    {
        return Ok(());
    }
    let found = info(referrer);
    let mut entry = serde_json::json!({
        "mediaType": referrer.media_type,
        "digest": referrer.digest.as_str(),
        "size": referrer.bytes.len(),
    });
    if let Some(t) = found.artifact_type {
        entry["artifactType"] = t.into();
    }
    if let Some(a) = found.annotations {
        entry["annotations"] = a.into();
    }
    list.push(entry);
    let bytes = serde_json::to_vec(&index).expect("a JSON value serialises");
    let manifest = Manifest {
        digest: Digest::of(&bytes),
        bytes: bytes.into(),
        media_type: "application/vnd.oci.image.index.v1+json".into(),
    };
    repo.put_manifest(&tag, &manifest).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(json: &str) -> Manifest {
        Manifest {
            digest: Digest::of(json.as_bytes()),
            bytes: json.as_bytes().to_vec().into(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        }
    }

    #[test]
    fn artifact_type_and_subject() {
        let s = Digest::of(b"subject");
        let m = manifest(&format!(
            r#"{{"schemaVersion":2,"artifactType":"application/vnd.cncf.notary.signature","config":{{"mediaType":"application/vnd.oci.empty.v1+json"}},"subject":{{"digest":"{s}"}}}}"#
        ));
        let i = info(&m);
        assert_eq!(i.subject, Some(s));
        assert_eq!(
            i.artifact_type.as_deref(),
            Some("application/vnd.cncf.notary.signature")
        );
        // No artifactType: the config's media type stands for it.
        let m = manifest(r#"{"schemaVersion":2,"config":{"mediaType":"application/spdx+json"}}"#);
        assert_eq!(
            info(&m).artifact_type.as_deref(),
            Some("application/spdx+json")
        );
        assert_eq!(info(&m).subject, None);
    }
}
