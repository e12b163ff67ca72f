//! Checks of the small structured entries of a volume — manifests, `index.json`,
//! `oci-layout` — against the descriptor, run by [`super::VolumeReader`] when such an entry has
//! been read to its end. Both `bundle verify` and `bundle load` read through it, so what one
//! accepts the other accepts.
//!
//! A manifest must name only content the bundle holds: index children among its manifests,
//! config and layers among its blobs (or, for a differential bundle, among the blobs expected
//! at the site), with the sizes the descriptor gives. Foreign (non-distributable) layers are
//! never copied and so are not looked for.

use serde::Deserialize;

use crate::reference::Digest;

use super::descriptor::Descriptor;
use super::limits::MAX_MANIFEST_REFERENCES;

/// A content descriptor inside a manifest or index (only what is checked).
#[derive(Deserialize)]
struct Ref {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    size: u64,
}

/// The references of a manifest, of either kind.
#[derive(Deserialize)]
struct Refs {
    config: Option<Ref>,
    #[serde(default)]
    layers: Vec<Ref>,
    #[serde(default)]
    manifests: Vec<Ref>,
}

fn digest(r: &Ref) -> Result<Digest, String> {
    r.digest
        .parse()
        .map_err(|e: crate::reference::ReferenceError| e.to_string())
}

/// Checks manifest `manifest` (its bytes, digest already verified) against the descriptor.
pub(super) fn manifest(d: &Descriptor, manifest: &Digest, bytes: &[u8]) -> Result<(), String> {
    let refs: Refs = serde_json::from_slice(bytes)
        .map_err(|e| format!("manifest {manifest} is not a valid manifest: {e}"))?;
    let count = refs.layers.len() + refs.manifests.len();
    if count > MAX_MANIFEST_REFERENCES {
        return Err(format!(
            "manifest {manifest} has {count} references, more than the limit of {MAX_MANIFEST_REFERENCES}"
        ));
    }
    for child in &refs.manifests {
        let digest = digest(child)?;
        match d.manifests.get(&digest) {
            Some(m) if m.size == child.size => {}
            Some(m) => {
                return Err(format!(
                    "manifest {manifest} gives child {digest} size {}, the descriptor {}",
                    child.size, m.size
                ));
            }
            None => {
                return Err(format!(
                    "manifest {manifest} references manifest {digest}, which the bundle does not hold"
                ));
            }
        }
    }
    for blob in refs.config.iter().chain(&refs.layers) {
        let foreign =
            blob.media_type.contains("foreign") || blob.media_type.contains("nondistributable");
        if foreign {
            continue;
        }
        let digest = digest(blob)?;
        let size = match (d.blobs.get(&digest), d.excluded_blobs.get(&digest)) {
            (Some(b), _) => b.size,
            (None, Some(&size)) => size,
            (None, None) => {
                return Err(format!(
                    "manifest {manifest} references blob {digest}, which the bundle neither \
                     holds nor expects at the site"
                ));
            }
        };
        if size != blob.size {
            return Err(format!(
                "manifest {manifest} gives blob {digest} size {}, the descriptor {size}",
                blob.size
            ));
        }
    }
    Ok(())
}

/// The index of the OCI layout (only what is checked).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    manifests: Vec<Ref>,
}

/// Checks `index.json`: an OCI index whose every entry is a manifest of the bundle.
pub(super) fn index_json(d: &Descriptor, bytes: &[u8]) -> Result<(), String> {
    let index: Index =
        serde_json::from_slice(bytes).map_err(|e| format!("not a valid OCI index: {e}"))?;
    if index.schema_version != 2 {
        return Err(format!(
            "schemaVersion {} (expected 2)",
            index.schema_version
        ));
    }
    if index.manifests.len() > d.images.len() {
        return Err(format!(
            "lists {} manifests but the bundle has {} images",
            index.manifests.len(),
            d.images.len()
        ));
    }
    for m in &index.manifests {
        let digest = digest(m)?;
        match d.manifests.get(&digest) {
            Some(entry) if entry.size == m.size => {}
            _ => {
                return Err(format!(
                    "lists manifest {digest} ({} bytes), which the bundle does not hold",
                    m.size
                ));
            }
        }
    }
    Ok(())
}

/// Checks `oci-layout`: `{"imageLayoutVersion": "1.0.0"}`.
pub(super) fn oci_layout(bytes: &[u8]) -> Result<(), String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Layout {
        image_layout_version: String,
    }
    let layout: Layout =
        serde_json::from_slice(bytes).map_err(|e| format!("not a valid OCI layout marker: {e}"))?;
    if layout.image_layout_version != "1.0.0" {
        return Err(format!(
            "imageLayoutVersion `{}` (expected 1.0.0)",
            layout.image_layout_version
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::testutil::sample_descriptor;

    #[test]
    fn manifests_must_reference_held_content() {
        let d = sample_descriptor();
        let (blob, entry) = d.blobs.iter().next().unwrap();
        let good = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"{blob}","size":{}}},"layers":[]}}"#,
            entry.size
        );
        let m = Digest::of(good.as_bytes());
        manifest(&d, &m, good.as_bytes()).unwrap();
        let other = Digest::of(b"elsewhere");
        let bad = good.replace(blob.as_str(), other.as_str());
        let err = manifest(&d, &m, bad.as_bytes()).unwrap_err();
        assert!(err.contains("neither holds nor expects"), "{err}");
        let wrong_size = good.replace(&format!("\"size\":{}", entry.size), "\"size\":1");
        assert!(manifest(&d, &m, wrong_size.as_bytes()).is_err());
        assert!(manifest(&d, &m, b"garbage").is_err());
    }

    #[test]
    fn index_and_layout_are_validated() {
        let d = sample_descriptor();
        oci_layout(br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        assert!(oci_layout(b"{}").is_err());
        assert!(oci_layout(br#"{"imageLayoutVersion":"2"}"#).is_err());
        index_json(&d, br#"{"schemaVersion":2,"manifests":[]}"#).unwrap();
        assert!(index_json(&d, b"[]").is_err());
        let stray = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"digest":"{}","size":1}}]}}"#,
            Digest::of(b"stray")
        );
        assert!(index_json(&d, stray.as_bytes()).is_err());
    }
}
