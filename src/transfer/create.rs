//! After `bundle create` has staged everything: the bundle's image list, built from the plan
//! (which manifests and blobs each image has) and the staged content (platforms).

use crate::bundle::{BundleImage, Staging};
use crate::reference::Digest;
use crate::report::RunReport;

use super::plan::Plan;
use super::walk::{self, Parsed};

/// The images of `plan` that `report` says were staged, as the bundle writer wants them.
pub fn bundle_images(plan: &Plan, report: &RunReport, staging: &Staging) -> Vec<BundleImage> {
    plan.images
        .iter()
        .zip(&report.images)
        .filter(|(_, r)| r.status.is_complete())
        .filter_map(|(image, _)| {
            let top = image.manifests.last()?;
            // The job's target is the name as listed (its source may be a mirror).
            Some(BundleImage {
                source: image.job.target.to_string(),
                tag: image.job.target.tag().map(str::to_owned),
                digest: top.digest.clone(),
                platforms: platforms(image, staging),
                manifests: image.manifests.iter().map(|m| m.digest.clone()).collect(),
                blobs: image.blobs.clone(),
                referrer_of: image
                    .referrer
                    .as_ref()
                    .map(|r| plan.images[r.parent].job.target.to_string()),
                subject: image.referrer.as_ref().map(|r| r.subject.clone()),
                artifact_type: image
                    .referrer
                    .as_ref()
                    .and_then(|r| r.artifact_type.clone()),
            })
        })
        .collect()
}

/// `os/arch[/variant]` of each platform in the image: from the index, or from the config of
/// a single-platform image.
fn platforms(image: &super::PlannedImage, staging: &Staging) -> Vec<String> {
    let Some(top) = image.manifests.last() else {
        return Vec::new();
    };
    let fmt = |os: &str, arch: &str, variant: Option<&str>| match variant {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    };
    match walk::parse(top, &image.job.source.to_string()) {
        Ok(Parsed::Index(children)) => children
            .iter()
            .filter_map(|c| c.platform.as_ref())
            .map(|(os, arch, var)| fmt(os, arch, var.as_deref()))
            .collect(),
        Ok(Parsed::Image(blobs)) => blobs
            .first()
            .and_then(|config| config_platform(staging, &config.digest))
            .map(|(os, arch, var)| vec![fmt(&os, &arch, var.as_deref())])
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

fn config_platform(staging: &Staging, digest: &Digest) -> Option<(String, String, Option<String>)> {
    let bytes = std::fs::read(staging.blob_path(digest)).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    Some((s("os")?, s("architecture")?, s("variant")))
}
