//! `airlift-bundle.json`: what a bundle holds and where, repeated at the head of every volume.
//!
//! The descriptor is the first entry of each volume so a streaming reader knows every image,
//! every blob's size and digest, and which volume holds what, before it sees any blob. Only
//! the `volume` field differs between the volumes of one bundle.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::reference::Digest;

use super::BundleError;

/// The bundle format version this build writes (it reads this one and format 1).
pub const FORMAT_VERSION: u32 = 2;

/// The oldest bundle format version this build reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// The content of `airlift-bundle.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// Format version: 2 ([`FORMAT_VERSION`], frames and a seek index) or 1 (one zstd
    /// frame, read sequentially only); readers refuse any other.
    pub format_version: u32,
    /// Version of the airlift that wrote the bundle.
    pub tool_version: String,
    /// When the bundle was created (RFC 3339, UTC), as given by the caller.
    pub created: String,
    /// Names of the image list files the bundle was made from.
    pub lists: Vec<String>,
    /// Identifier shared by all volumes of one bundle (derived from the content).
    pub bundle_id: String,
    /// This volume's number, from 1.
    pub volume: u32,
    /// Number of volumes in the bundle.
    pub volume_count: u32,
    /// The images, in list order.
    pub images: Vec<ImageEntry>,
    /// Every manifest (top manifests and index children); stored in every volume.
    pub manifests: BTreeMap<Digest, ManifestEntry>,
    /// Every blob (configs and layers) and the volume(s) holding it.
    pub blobs: BTreeMap<Digest, BlobEntry>,
    /// Blobs the images need that the bundle does not carry, with their sizes: a
    /// *differential* bundle expects them at the site already (see `docs/bundle-format.md`).
    /// Absent (empty) in a full bundle, so bundles written before the field existed parse.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub excluded_blobs: BTreeMap<Digest, u64>,
    /// List entries this bundle does not carry because `bundle create --keep-going` could not
    /// fetch them: a *partial* bundle. Absent (empty) in a complete one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_images: Vec<crate::report::MissingImage>,
    /// The places whose inventories (`bundle create --exclude-from`) made this bundle
    /// differential, as `REGISTRY/PREFIX` (or `REGISTRY`): a load elsewhere may lack the
    /// blobs left out, and `bundle load` says so. Absent (empty) otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inventoried: Vec<String>,
}

/// One image of the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageEntry {
    /// The full source reference, e.g. `docker.io/harness/chaos-ddcr:1.47.0`. Also the
    /// `org.opencontainers.image.ref.name` of the image in `index.json`.
    pub source: String,
    /// The tag, if the reference has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Digest of the top manifest (an index for multi-platform images).
    pub digest: Digest,
    /// Media type of the top manifest.
    pub media_type: String,
    /// Platforms included, `os/arch[/variant]`.
    pub platforms: Vec<String>,
    /// Bytes of the image: its distinct blobs plus its manifests.
    pub size: u64,
    /// Manifest digests: index children first, the top manifest last.
    pub manifests: Vec<Digest>,
    /// Distinct blob digests (configs and layers) of all its manifests, including those a
    /// differential bundle expects at the site ([`Descriptor::excluded_blobs`]).
    pub blobs: Vec<Digest>,
    /// For a signature, attestation or SBOM: the `source` of the image it belongs to (an
    /// earlier entry). Absent for images from the lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer_of: Option<String>,
    /// For a referrer: the digest of the manifest it refers to (its `subject`, or the digest
    /// in its cosign tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Digest>,
    /// For a referrer: its artifact type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

/// A manifest stored in the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Size in bytes.
    pub size: u64,
    /// Media type (what the registry must be told on push).
    pub media_type: String,
}

/// A blob stored in the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobEntry {
    /// Size in bytes.
    pub size: u64,
    /// Where it is: one whole entry, or parts in order.
    pub volumes: Vec<BlobLocation>,
}

/// Where (part of) a blob is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobLocation {
    /// Volume number, from 1.
    pub volume: u32,
    /// Part number, from 1, for a split blob (entry `blobs/sha256/<hex>.part<N>`); absent for a
    /// whole blob (entry `blobs/sha256/<hex>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<u32>,
    /// Offset of these bytes in the blob.
    pub offset: u64,
    /// Number of bytes.
    pub length: u64,
    /// sha256 of this part's bytes, so a part can be checked in a volume on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// Format 2: offset of the entry's tar header in the volume's uncompressed tar stream (its
    /// content starts 512 bytes later); the seek index maps it to the frames holding it.
    /// Absent in format 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tar_offset: Option<u64>,
}

/// The descriptor as it arrives: every field optional, so the format version can be checked
/// before a missing field is reported (a later format may drop fields). Unknown fields are
/// skipped by serde without being materialised.
#[derive(Deserialize)]
struct Wire {
    format_version: Option<u64>,
    tool_version: Option<String>,
    created: Option<String>,
    lists: Option<Vec<String>>,
    bundle_id: Option<String>,
    volume: Option<u32>,
    volume_count: Option<u32>,
    images: Option<Vec<ImageEntry>>,
    manifests: Option<BTreeMap<Digest, ManifestEntry>>,
    blobs: Option<BTreeMap<Digest, BlobEntry>>,
    #[serde(default)]
    excluded_blobs: BTreeMap<Digest, u64>,
    #[serde(default)]
    missing_images: Vec<crate::report::MissingImage>,
    #[serde(default)]
    inventoried: Vec<String>,
}

impl Wire {
    fn into_descriptor(self, format_version: u32) -> Result<Descriptor, String> {
        fn need<T>(v: Option<T>, name: &str) -> Result<T, String> {
            v.ok_or_else(|| format!("missing field `{name}`"))
        }
        Ok(Descriptor {
            format_version,
            tool_version: need(self.tool_version, "tool_version")?,
            created: need(self.created, "created")?,
            lists: need(self.lists, "lists")?,
            bundle_id: need(self.bundle_id, "bundle_id")?,
            volume: need(self.volume, "volume")?,
            volume_count: need(self.volume_count, "volume_count")?,
            images: need(self.images, "images")?,
            manifests: need(self.manifests, "manifests")?,
            blobs: need(self.blobs, "blobs")?,
            excluded_blobs: self.excluded_blobs,
            missing_images: self.missing_images,
            inventoried: self.inventoried,
        })
    }
}

impl BlobEntry {
    /// Whether the blob is split into parts.
    pub fn is_split(&self) -> bool {
        self.volumes.iter().any(|l| l.part.is_some())
    }

    /// The location of part `n` (or of the whole blob for `None`) in `volume`.
    pub fn location(&self, volume: u32, part: Option<u32>) -> Option<&BlobLocation> {
        self.volumes
            .iter()
            .find(|l| l.volume == volume && l.part == part)
    }

    /// Volumes holding (part of) the blob, ascending.
    pub fn volume_numbers(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.volumes.iter().map(|l| l.volume).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

impl Descriptor {
    /// Parses and checks a descriptor read from `volume`. The format version is checked
    /// before anything else so a future format gives a version error, not a field error.
    pub fn parse(bytes: &[u8], volume: &Path) -> Result<Descriptor, BundleError> {
        Descriptor::from_reader(bytes, volume)
    }

    /// Parses and checks a descriptor as it streams from `input` (give it a buffered reader,
    /// limited to the entry). Nothing but the typed fields is kept: an unknown field, however
    /// large, is skipped as it passes, never held in memory.
    pub fn from_reader(
        input: impl std::io::Read,
        volume: &Path,
    ) -> Result<Descriptor, BundleError> {
        let invalid = |reason: String| BundleError::InvalidDescriptor {
            volume: volume.to_owned(),
            reason,
        };
        let wire: Wire = serde_json::from_reader(input).map_err(|e| {
            if e.is_io() {
                let source = std::io::Error::from(e);
                return crate::bundle::into_bundle_error(source, volume);
            }
            invalid(e.to_string())
        })?;
        let found = wire
            .format_version
            .ok_or_else(|| invalid("missing or non-numeric `format_version`".into()))?;
        if !(u64::from(OLDEST_FORMAT_VERSION)..=u64::from(FORMAT_VERSION)).contains(&found) {
            return Err(BundleError::UnsupportedFormat {
                volume: volume.to_owned(),
                found,
                supported: FORMAT_VERSION,
            });
        }
        let d = wire.into_descriptor(found as u32).map_err(invalid)?;
        d.check().map_err(invalid)?;
        Ok(d)
    }

    /// Serialises the descriptor as written in a volume.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("descriptor serialises");
        v.push(b'\n');
        v
    }

    /// Images using `digest` (as a blob or a manifest), for error messages.
    pub fn images_using(&self, digest: &Digest) -> Vec<String> {
        self.images
            .iter()
            .filter(|i| i.blobs.contains(digest) || i.manifests.contains(digest))
            .map(|i| i.source.clone())
            .collect()
    }

    /// Sources of the images whose every blob is stored whole in `volume`: those listed in
    /// that volume's `index.json`, usable with plain OCI tools. An image with a blob expected
    /// at the site ([`Descriptor::excluded_blobs`]) is never among them: the layout alone
    /// cannot give it.
    pub fn images_complete_in(&self, volume: u32) -> Vec<&ImageEntry> {
        self.images
            .iter()
            .filter(|i| {
                i.blobs.iter().all(|b| {
                    !self.excluded_blobs.contains_key(b)
                        && self
                            .blobs
                            .get(b)
                            .is_some_and(|e| e.location(volume, None).is_some())
                })
            })
            .collect()
    }

    /// Whether the bundle leaves out blobs the site is expected to hold.
    pub fn is_differential(&self) -> bool {
        !self.excluded_blobs.is_empty()
    }

    /// The blobs of `image` the bundle expects at the site, in the image's order.
    pub fn site_blobs_of<'a>(&'a self, image: &'a ImageEntry) -> Vec<&'a Digest> {
        image
            .blobs
            .iter()
            .filter(|b| self.excluded_blobs.contains_key(*b))
            .collect()
    }

    /// The limits of [`crate::bundle::limits`]: counts, manifest sizes, and sizes that add up
    /// without overflow (so no total computed from them wraps).
    fn check_limits(&self) -> Result<(), String> {
        use crate::bundle::limits::*;
        let too_many = |what: &str, n: usize, max: usize| {
            Err(format!("{n} {what} exceeds the limit of {max}"))
        };
        if self.volume_count > MAX_VOLUMES {
            return Err(format!(
                "volume_count {} exceeds the limit of {MAX_VOLUMES} volumes",
                self.volume_count
            ));
        }
        if self.images.len() > MAX_IMAGES {
            return too_many("images", self.images.len(), MAX_IMAGES);
        }
        if self.manifests.len() > MAX_MANIFESTS {
            return too_many("manifests", self.manifests.len(), MAX_MANIFESTS);
        }
        let blobs = self.blobs.len() + self.excluded_blobs.len();
        if blobs > MAX_BLOBS {
            return too_many("blobs", blobs, MAX_BLOBS);
        }
        let mut total: u64 = 0;
        let overflow = || "sizes add up to more than 2^64 bytes".to_owned();
        for (digest, m) in &self.manifests {
            if m.size > MAX_MANIFEST_BYTES {
                return Err(format!(
                    "manifest {digest}: size {} exceeds the limit of {MAX_MANIFEST_BYTES} bytes",
                    m.size
                ));
            }
            total = total.checked_add(m.size).ok_or_else(overflow)?;
        }
        for size in self
            .blobs
            .values()
            .map(|b| b.size)
            .chain(self.excluded_blobs.values().copied())
        {
            total = total.checked_add(size).ok_or_else(overflow)?;
        }
        for image in &self.images {
            if image.manifests.len() > MAX_MANIFEST_REFERENCES + 1
                || image.blobs.len() > MAX_MANIFEST_REFERENCES * (image.manifests.len().max(1))
            {
                return Err(format!(
                    "image {}: too many manifests or blobs",
                    image.source
                ));
            }
        }
        Ok(())
    }

    /// Internal consistency: the volume is in range, every image's blobs and manifests are
    /// described, and each blob's locations cover it exactly. A reader relies on this to
    /// trust sizes and part numbers without re-checking them everywhere.
    fn check(&self) -> Result<(), String> {
        self.check_limits()?;
        if self.volume == 0 || self.volume > self.volume_count {
            return Err(format!(
                "volume {} out of range 1..={}",
                self.volume, self.volume_count
            ));
        }
        for image in &self.images {
            // `load` pushes to a name derived from it: refuse here what it could not use, so
            // `verify` and `load` agree.
            if let Err(e) = image.source.parse::<crate::reference::ImageRef>() {
                return Err(format!("image source: {e}"));
            }
            for m in &image.manifests {
                if !self.manifests.contains_key(m) {
                    return Err(format!("{}: manifest {m} not described", image.source));
                }
            }
            if image.manifests.last() != Some(&image.digest) {
                return Err(format!(
                    "{}: the top manifest must be listed last",
                    image.source
                ));
            }
            for b in &image.blobs {
                if !self.blobs.contains_key(b) && !self.excluded_blobs.contains_key(b) {
                    return Err(format!("{}: blob {b} not described", image.source));
                }
            }
        }
        for digest in self.excluded_blobs.keys() {
            if self.blobs.contains_key(digest) {
                return Err(format!(
                    "blob {digest}: both carried and expected at the site"
                ));
            }
            if self.manifests.contains_key(digest) {
                return Err(format!(
                    "blob {digest}: a manifest cannot be expected at the site"
                ));
            }
        }
        for (digest, entry) in &self.blobs {
            let bad = |why: &str| Err(format!("blob {digest}: {why}"));
            if entry.volumes.is_empty() {
                return bad("no location");
            }
            let indexed = self.format_version >= 2;
            if entry
                .volumes
                .iter()
                .any(|l| l.tar_offset.is_some() != indexed)
            {
                return bad(if indexed {
                    "a location without `tar_offset` (required in format 2)"
                } else {
                    "a location with `tar_offset` (format 2 only)"
                });
            }
            if entry
                .volumes
                .iter()
                .filter_map(|l| l.tar_offset)
                .any(|o| o % super::plan::BLOCK != 0)
            {
                return bad("`tar_offset` not on a 512-byte tar block");
            }
            if self.manifests.contains_key(digest) {
                return bad("described both as a manifest and a blob");
            }
            if entry
                .volumes
                .iter()
                .any(|l| l.volume == 0 || l.volume > self.volume_count)
            {
                return bad("volume out of range");
            }
            if entry.is_split() {
                let mut offset = 0;
                for (i, l) in entry.volumes.iter().enumerate() {
                    if l.part != Some(i as u32 + 1) || l.offset != offset || l.digest.is_none() {
                        return bad("parts not numbered 1.. in order, contiguous, with digests");
                    }
                    offset = offset.checked_add(l.length).ok_or("size overflow")?;
                }
                if offset != entry.size {
                    return bad("parts do not add up to the blob size");
                }
            } else {
                // A whole blob may be stored in several volumes; each copy is all of it.
                if entry
                    .volumes
                    .iter()
                    .any(|l| l.offset != 0 || l.length != entry.size)
                {
                    return bad("whole-blob location with wrong offset or length");
                }
                let mut vols = entry.volume_numbers();
                vols.dedup();
                if vols.len() != entry.volumes.len() {
                    return bad("stored twice in one volume");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::testutil::sample_descriptor;

    #[test]
    fn round_trips_through_json() {
        let d = sample_descriptor();
        let parsed = Descriptor::parse(&d.to_bytes(), Path::new("v")).unwrap();
        assert_eq!(parsed, d);
    }

    #[test]
    fn unknown_format_version_is_refused() {
        let mut v: serde_json::Value =
            serde_json::from_slice(&sample_descriptor().to_bytes()).unwrap();
        v["format_version"] = 3.into();
        // Fields a future version might drop must not matter: the version is checked first.
        v.as_object_mut().unwrap().remove("images");
        let err = Descriptor::parse(&serde_json::to_vec(&v).unwrap(), Path::new("x.tar.zst"))
            .unwrap_err();
        assert!(
            matches!(err, BundleError::UnsupportedFormat { found: 3, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("format version 3"), "{err}");
        assert!(err.to_string().contains("x.tar.zst"), "{err}");
    }

    #[test]
    fn inconsistent_descriptors_are_refused() {
        let mut d = sample_descriptor();
        d.volume = 3;
        assert!(Descriptor::parse(&d.to_bytes(), Path::new("v")).is_err());

        let mut d = sample_descriptor();
        let entry = d.blobs.get_mut(&Digest::of(b"a")).unwrap();
        entry.volumes[0].length += 1;
        let err = Descriptor::parse(&d.to_bytes(), Path::new("v")).unwrap_err();
        assert!(err.to_string().contains("wrong offset or length"), "{err}");

        let mut d = sample_descriptor();
        d.images[0].blobs.push(Digest::of(b"nowhere"));
        assert!(Descriptor::parse(&d.to_bytes(), Path::new("v")).is_err());
    }

    #[test]
    fn bundles_without_excluded_blobs_still_parse() {
        // A descriptor as written before `excluded_blobs` existed: the field is absent.
        let d = sample_descriptor();
        let v: serde_json::Value = serde_json::from_slice(&d.to_bytes()).unwrap();
        assert!(
            v.get("excluded_blobs").is_none(),
            "empty field must not be written"
        );
        let parsed = Descriptor::parse(&serde_json::to_vec(&v).unwrap(), Path::new("v")).unwrap();
        assert!(parsed.excluded_blobs.is_empty());
        assert!(!parsed.is_differential());
        assert_eq!(parsed, d);
    }

    #[test]
    fn excluded_blobs_round_trip_and_are_checked() {
        let mut d = sample_descriptor();
        let site = Digest::of(b"at the site");
        d.images[0].blobs.push(site.clone());
        d.excluded_blobs.insert(site.clone(), 42);
        let bytes = d.to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["excluded_blobs"][site.as_str()], 42);
        let parsed = Descriptor::parse(&bytes, Path::new("v")).unwrap();
        assert_eq!(parsed, d);
        assert_eq!(parsed.site_blobs_of(&parsed.images[0]), vec![&site]);
        // An image with a blob at the site is complete in no volume's layout.
        assert!(parsed.images_complete_in(1).is_empty());

        let mut bad = d.clone();
        bad.excluded_blobs.insert(Digest::of(b"a"), 1);
        let err = Descriptor::parse(&bad.to_bytes(), Path::new("v")).unwrap_err();
        assert!(
            err.to_string().contains("both carried and expected"),
            "{err}"
        );

        let mut bad = d.clone();
        bad.excluded_blobs.insert(Digest::of(b"manifest"), 8);
        let err = Descriptor::parse(&bad.to_bytes(), Path::new("v")).unwrap_err();
        assert!(err.to_string().contains("manifest"), "{err}");
    }
}
