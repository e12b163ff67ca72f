//! `bundle inspect`: what a set of volumes holds, from their descriptors alone.
//!
//! Only the first entry of each volume is read, so inspecting a 4 GiB volume is instant.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;

use crate::reference::Digest;

use super::{BundleError, VolumeReader};

/// Summary of a bundle, as given by some or all of its volumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleSummary {
    /// Bundle id shared by the volumes.
    pub bundle_id: String,
    /// Format version.
    pub format_version: u32,
    /// airlift version that wrote it.
    pub tool_version: String,
    /// Creation time.
    pub created: String,
    /// List files it was made from.
    pub lists: Vec<String>,
    /// Number of volumes of the bundle.
    pub volume_count: u32,
    /// Volume numbers of the bundle that were not given.
    pub missing_volumes: Vec<u32>,
    /// Bytes of all distinct blobs and manifests the bundle carries.
    pub total_size: u64,
    /// Blobs a differential bundle expects at the site (0 for a full bundle).
    pub site_blobs: usize,
    /// Their bytes.
    pub site_size: u64,
    /// The volumes given, by volume number.
    pub volumes: Vec<VolumeSummary>,
    /// The images, in list order.
    pub images: Vec<ImageSummary>,
    /// List entries a partial bundle does not carry (empty for a complete bundle).
    pub missing_images: Vec<crate::report::MissingImage>,
}

/// One volume given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeSummary {
    /// The file.
    pub path: PathBuf,
    /// Its number.
    pub volume: u32,
    /// Size of the file.
    pub file_size: u64,
    /// Blobs (whole or parts) it holds.
    pub blobs: usize,
    /// Bytes of those blobs and parts.
    pub blob_bytes: u64,
    /// Images it completes on its own (listed in its `index.json`).
    pub complete_images: Vec<String>,
}

/// One image of the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageSummary {
    /// Source reference.
    pub source: String,
    /// Tag, if any.
    pub tag: Option<String>,
    /// Top manifest digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Platforms.
    pub platforms: Vec<String>,
    /// Bytes (distinct blobs plus manifests), whether carried or expected at the site.
    pub size: u64,
    /// Blobs the bundle carries for it.
    pub bundle_blobs: usize,
    /// Bytes the bundle carries for it: those blobs plus its manifests.
    pub bundle_bytes: u64,
    /// Blobs it needs that a differential bundle expects at the site.
    pub site_blobs: usize,
    /// Their bytes.
    pub site_bytes: u64,
    /// Volumes holding its blobs.
    pub volumes: Vec<u32>,
    /// Every volume it needs was given.
    pub available: bool,
    /// For a signature, attestation or SBOM: the source of the image it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer_of: Option<String>,
    /// For a referrer: its artifact type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

/// Summarises the volumes at `paths` from their descriptors. Fails when a volume cannot be
/// opened or the volumes belong to different bundles.
pub fn inspect(paths: &[PathBuf]) -> Result<BundleSummary, BundleError> {
    let mut descriptors = Vec::new();
    for path in paths {
        let reader = VolumeReader::open(path)?;
        let file_size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        descriptors.push((path.clone(), file_size, reader.descriptor().clone()));
    }
    let Some((_, _, first)) = descriptors.first() else {
        return Err(BundleError::NoVolumes);
    };
    let first = first.clone();
    for (path, _, d) in &descriptors {
        if d.bundle_id != first.bundle_id {
            return Err(BundleError::MixedBundles {
                volume: path.clone(),
                found: d.bundle_id.clone(),
                expected: first.bundle_id.clone(),
            });
        }
    }
    descriptors.sort_by_key(|(_, _, d)| d.volume);
    let given: BTreeSet<u32> = descriptors.iter().map(|(_, _, d)| d.volume).collect();
    let volumes = descriptors
        .iter()
        .map(|(path, file_size, d)| {
            let held = d
                .blobs
                .values()
                .flat_map(|b| &b.volumes)
                .filter(|l| l.volume == d.volume);
            VolumeSummary {
                path: path.clone(),
                volume: d.volume,
                file_size: *file_size,
                blobs: held.clone().count(),
                blob_bytes: held.map(|l| l.length).sum(),
                complete_images: d
                    .images_complete_in(d.volume)
                    .into_iter()
                    .map(|i| i.source.clone())
                    .collect(),
            }
        })
        .collect();
    let images = first
        .images
        .iter()
        .map(|i| {
            let vols: BTreeSet<u32> = i
                .blobs
                .iter()
                .filter_map(|b| first.blobs.get(b))
                .flat_map(|e| e.volume_numbers())
                .collect();
            let site: Vec<u64> = i
                .blobs
                .iter()
                .filter_map(|b| first.excluded_blobs.get(b).copied())
                .collect();
            let site_bytes: u64 = site.iter().sum();
            ImageSummary {
                source: i.source.clone(),
                tag: i.tag.clone(),
                digest: i.digest.clone(),
                media_type: i.media_type.clone(),
                platforms: i.platforms.clone(),
                size: i.size,
                bundle_blobs: i.blobs.len() - site.len(),
                bundle_bytes: i.size.saturating_sub(site_bytes),
                site_blobs: site.len(),
                site_bytes,
                available: vols.iter().all(|v| given.contains(v)),
                volumes: vols.into_iter().collect(),
                referrer_of: i.referrer_of.clone(),
                artifact_type: i.artifact_type.clone(),
            }
        })
        .collect();
    Ok(BundleSummary {
        bundle_id: first.bundle_id.clone(),
        format_version: first.format_version,
        tool_version: first.tool_version.clone(),
        created: first.created.clone(),
        lists: first.lists.clone(),
        volume_count: first.volume_count,
        missing_volumes: (1..=first.volume_count)
            .filter(|v| !given.contains(v))
            .collect(),
        total_size: first.blobs.values().map(|b| b.size).sum::<u64>()
            + first.manifests.values().map(|m| m.size).sum::<u64>(),
        site_blobs: first.excluded_blobs.len(),
        site_size: first.excluded_blobs.values().sum(),
        volumes,
        images,
        missing_images: first.missing_images.clone(),
    })
}
