//! Reading manifests: which child manifests and blobs one references, and filtering a
//! multi-arch index down to selected platforms.
//!
//! Manifests are parsed with oci-spec types only to *read* them; what is copied is always the
//! raw bytes, so digests are preserved. The one exception is a platform-filtered index, which
//! is rewritten from a `serde_json::Value` so unknown fields survive.

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use crate::reference::{Digest, Platform};
use crate::registry::Manifest;

use super::TransferError;

/// Media types of indexes (OCI index, Docker manifest list).
const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Media types of single-image manifests (OCI, Docker schema 2).
const IMAGE_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// A blob referenced by a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    /// Its digest.
    pub digest: Digest,
    /// Its size as the manifest declares it.
    pub size: u64,
}

/// A child manifest referenced by an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildRef {
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// `os/arch[/variant]` when the index says.
    pub platform: Option<(String, String, Option<String>)>,
}

/// What a manifest references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// An index: child manifests.
    Index(Vec<ChildRef>),
    /// An image: config and layers (foreign, non-distributable layers left out).
    Image(Vec<BlobRef>),
}

/// Parses `manifest` (fetched for `reference`) into what it references.
pub fn parse(manifest: &Manifest, reference: &str) -> Result<Parsed, TransferError> {
    let invalid = |reason: String| TransferError::InvalidManifest {
        reference: reference.to_owned(),
        digest: manifest.digest.clone(),
        reason,
    };
    let kind = kind_of(manifest);
    if INDEX_TYPES.contains(&kind.as_str()) {
        let index: ImageIndex =
            serde_json::from_slice(&manifest.bytes).map_err(|e| invalid(e.to_string()))?;
        check_count(index.manifests().len()).map_err(&invalid)?;
        let children = index
            .manifests()
            .iter()
            .map(|d| {
                Ok(ChildRef {
                    digest: digest_of(d).map_err(&invalid)?,
                    size: d.size(),
                    platform: d.platform().as_ref().map(|p| {
                        (
                            p.os().to_string(),
                            p.architecture().to_string(),
                            p.variant().clone(),
                        )
                    }),
                })
            })
            .collect::<Result<Vec<_>, TransferError>>()?;
        Ok(Parsed::Index(children))
    } else if IMAGE_TYPES.contains(&kind.as_str()) {
        let image: ImageManifest =
            serde_json::from_slice(&manifest.bytes).map_err(|e| invalid(e.to_string()))?;
        check_count(image.layers().len()).map_err(&invalid)?;
        let mut blobs = vec![BlobRef {
            digest: digest_of(image.config()).map_err(&invalid)?,
            size: image.config().size(),
        }];
        for layer in image.layers() {
            // Foreign layers (Windows base images) live outside the registry; like skopeo and
            // docker, copy the manifest that points at them but not the layers themselves.
            let media = layer.media_type().to_string();
            if media.contains("foreign") || media.contains("nondistributable") {
                continue;
            }
            blobs.push(BlobRef {
                digest: digest_of(layer).map_err(&invalid)?,
                size: layer.size(),
            });
        }
        Ok(Parsed::Image(blobs))
    } else {
        Err(TransferError::UnsupportedManifest {
            reference: reference.to_owned(),
            media_type: kind,
        })
    }
}

/// Refuses a manifest with more references than a bundle may hold in one, so the same image
/// can always be bundled and loaded.
fn check_count(n: usize) -> Result<(), String> {
    use crate::bundle::limits::MAX_MANIFEST_REFERENCES;
    if n > MAX_MANIFEST_REFERENCES {
        return Err(format!(
            "{n} references, more than the limit of {MAX_MANIFEST_REFERENCES}"
        ));
    }
    Ok(())
}

/// The manifest's media type, falling back to its shape when the registry sent none (an OCI
/// index may omit `mediaType`).
fn kind_of(manifest: &Manifest) -> String {
    let declared = manifest.media_type.trim();
    if !declared.is_empty() && declared != "application/json" {
        return declared.to_owned();
    }
    let value: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap_or_default();
    if value.get("manifests").is_some() {
        INDEX_TYPES[0].to_owned()
    } else if value.get("layers").is_some() {
        IMAGE_TYPES[0].to_owned()
    } else {
        declared.to_owned()
    }
}

fn digest_of(d: &Descriptor) -> Result<Digest, String> {
    d.digest()
        .to_string()
        .parse()
        .map_err(|e: crate::reference::ReferenceError| e.to_string())
}

/// Keeps only the index entries matching one of `platforms`, returning the rewritten index
/// (a new digest) and the kept children. Fails when nothing matches.
pub fn filter_index(
    manifest: &Manifest,
    reference: &str,
    platforms: &[Platform],
) -> Result<(Manifest, Vec<ChildRef>), TransferError> {
    let Parsed::Index(children) = parse(manifest, reference)? else {
        return Err(TransferError::InvalidManifest {
            reference: reference.to_owned(),
            digest: manifest.digest.clone(),
            reason: "platform filtering needs an index".into(),
        });
    };
    let keep = |c: &ChildRef| {
        c.platform.as_ref().is_some_and(|(os, arch, var)| {
            platforms
                .iter()
                .any(|p| p.matches(os, arch, var.as_deref()))
        })
    };
    let mut kept: Vec<ChildRef> = children.iter().filter(|c| keep(c)).cloned().collect();
    if kept.is_empty() {
        let available: Vec<String> = children
            .iter()
            .filter_map(|c| c.platform.as_ref())
            .map(|(os, arch, var)| match var {
                Some(v) => format!("{os}/{arch}/{v}"),
                None => format!("{os}/{arch}"),
            })
            .collect();
        return Err(TransferError::NoMatchingPlatform {
            reference: reference.to_owned(),
            wanted: platforms
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            available: available.join(", "),
        });
    }
    let mut value: serde_json::Value =
        serde_json::from_slice(&manifest.bytes).map_err(|e| TransferError::InvalidManifest {
            reference: reference.to_owned(),
            digest: manifest.digest.clone(),
            reason: e.to_string(),
        })?;
    // buildx's attestation manifests (platform unknown/unknown, naming the child they attest
    // in `vnd.docker.reference.digest`) go with the platforms they attest.
    let attests = |entry: &serde_json::Value| -> Option<String> {
        let platform = entry.get("platform")?;
        if platform.get("os")?.as_str()? != "unknown" {
            return None;
        }
        let of = entry
            .get("annotations")?
            .get("vnd.docker.reference.digest")?
            .as_str()?;
        Some(of.to_owned())
    };
    let attestations: Vec<ChildRef> = value
        .get("manifests")
        .and_then(|m| m.as_array())
        .into_iter()
        .flatten()
        .filter(|entry| {
            attests(entry).is_some_and(|of| kept.iter().any(|c| c.digest.as_str() == of))
        })
        .filter_map(|entry| {
            let digest = entry.get("digest")?.as_str()?;
            children
                .iter()
                .find(|c| c.digest.as_str() == digest)
                .cloned()
        })
        .collect();
    kept.extend(attestations);
    let kept_digests: Vec<&str> = kept.iter().map(|c| c.digest.as_str()).collect();
    if let Some(list) = value.get_mut("manifests").and_then(|m| m.as_array_mut()) {
        list.retain(|entry| {
            entry
                .get("digest")
                .and_then(|d| d.as_str())
                .is_some_and(|d| kept_digests.contains(&d))
        });
    }
    let bytes = serde_json::to_vec_pretty(&value).expect("a JSON value serialises");
    let filtered = Manifest {
        digest: Digest::of(&bytes),
        bytes: bytes.into(),
        media_type: manifest.media_type.clone(),
    };
    Ok((filtered, kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(json: &str, media_type: &str) -> Manifest {
        Manifest {
            bytes: json.as_bytes().to_vec().into(),
            media_type: media_type.into(),
            digest: Digest::of(json.as_bytes()),
        }
    }

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn index() -> Manifest {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[
            {{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{}","size":10,"platform":{{"architecture":"amd64","os":"linux"}}}},
            {{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{}","size":11,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}},"x-extra":1}}]}}"#,
            d('a'),
            d('b')
        );
        manifest(
            &json,
            "application/vnd.docker.distribution.manifest.list.v2+json",
        )
    }

    #[test]
    fn platform_filter_keeps_the_attestations_of_kept_platforms() {
        let m = "application/vnd.oci.image.manifest.v1+json";
        let att = |digest: String, of: String| {
            format!(
                r#"{{"mediaType":"{m}","digest":"{digest}","size":5,"platform":{{"architecture":"unknown","os":"unknown"}},"annotations":{{"vnd.docker.reference.digest":"{of}","vnd.docker.reference.type":"attestation-manifest"}}}}"#
            )
        };
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {{"mediaType":"{m}","digest":"{}","size":10,"platform":{{"architecture":"amd64","os":"linux"}}}},
            {{"mediaType":"{m}","digest":"{}","size":11,"platform":{{"architecture":"arm64","os":"linux"}}}},
            {},{}]}}"#,
            d('a'),
            d('b'),
            att(d('c'), d('a')),
            att(d('e'), d('b')),
        );
        let index = manifest(&json, "application/vnd.oci.image.index.v1+json");
        let amd64: Platform = "linux/amd64".parse().unwrap();
        let (filtered, kept) = filter_index(&index, "x", &[amd64]).unwrap();
        let kept: Vec<&str> = kept.iter().map(|c| c.digest.as_str()).collect();
        assert_eq!(kept, [d('a'), d('c')]);
        let text = String::from_utf8(filtered.bytes.to_vec()).unwrap();
        assert!(text.contains(&d('c')) && !text.contains(&d('e')) && !text.contains(&d('b')));
    }

    #[test]
    fn parses_image_and_skips_foreign_layers() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
            "config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{}","size":5}},
            "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{}","size":7}},
                      {{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{}","size":9,"urls":["https://x"]}}]}}"#,
            d('c'),
            d('d'),
            d('e')
        );
        let parsed = parse(&manifest(&json, ""), "x").unwrap();
        let Parsed::Image(blobs) = parsed else {
            panic!("not an image")
        };
        let digests: Vec<_> = blobs
            .iter()
            .map(|b| (b.digest.to_string(), b.size))
            .collect();
        assert_eq!(digests, vec![(d('c'), 5), (d('d'), 7)]);
    }

    #[test]
    fn parses_index_children_with_platforms() {
        let Parsed::Index(children) = parse(&index(), "x").unwrap() else {
            panic!()
        };
        assert_eq!(children.len(), 2);
        assert_eq!(
            children[1].platform,
            Some(("linux".into(), "arm64".into(), Some("v8".into())))
        );
    }

    #[test]
    fn filter_keeps_matching_children_and_unknown_fields() {
        let arm: Platform = "linux/arm64".parse().unwrap();
        let (filtered, kept) = filter_index(&index(), "x", &[arm]).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].digest.to_string(), d('b'));
        assert_ne!(filtered.digest, index().digest);
        let v: serde_json::Value = serde_json::from_slice(&filtered.bytes).unwrap();
        assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
        assert_eq!(v["manifests"][0]["x-extra"], 1);
        assert_eq!(filtered.digest, Digest::of(&filtered.bytes));
    }

    #[test]
    fn filter_without_match_names_available_platforms() {
        let s390: Platform = "linux/s390x".parse().unwrap();
        let err = filter_index(&index(), "img", &[s390])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("linux/amd64") && err.contains("linux/arm64/v8"),
            "{err}"
        );
    }

    #[test]
    fn unknown_media_type_is_refused() {
        let m = manifest(
            r#"{"schemaVersion":1}"#,
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
        );
        assert!(matches!(
            parse(&m, "x"),
            Err(TransferError::UnsupportedManifest { .. })
        ));
    }
}
