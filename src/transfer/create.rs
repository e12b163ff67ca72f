//! `bundle create` as an endpoint of the engine: once the plan is known, the bundle's volumes
//! are planned from its sizes and opened ([`VolumeSet`]), blobs an earlier run left in them
//! count as present, and the engine streams every other blob into its place.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::{StreamExt, stream};

use crate::bundle::{BundleContent, BundleImage, BundleInput, VolumeSet};
use crate::reference::Digest;
use crate::report::MissingImage;

use super::blob::{BlobSource, read_checked};
use super::plan::{Plan, PlannedImage};
use super::walk::{self, Parsed};
use super::{BundleSink, Source, TransferError, TransferOptions};

/// Largest image config read to learn an image's platform.
const MAX_CONFIG: u64 = 1 << 20;

/// What became of the bundle's preparation.
#[derive(Debug)]
pub enum Prepared {
    /// The volumes are open: run the plan.
    Run,
    /// Some list entries cannot be fetched and a partial bundle was not asked for: nothing
    /// was written.
    Refused,
}

/// Opens the volumes of the bundle `plan` makes (see the module documentation). Images that
/// failed while planning are left out and recorded as missing when `sink.keep_going`, else
/// nothing is opened ([`Prepared::Refused`]).
pub async fn prepare_bundle(
    source: &Source,
    sink: &BundleSink,
    plan: &mut Plan,
    opts: &TransferOptions,
) -> Result<Prepared, TransferError> {
    // An image fails with its error, a referrer also with its image.
    let mut failed: Vec<bool> = Vec::with_capacity(plan.images.len());
    for image in &plan.images {
        let parent_failed = image.referrer.as_ref().is_some_and(|r| failed[r.parent]);
        failed.push(image.error.is_some() || parent_failed);
    }
    if failed.iter().any(|&f| f) && !sink.keep_going {
        return Ok(Prepared::Refused);
    }
    let missing: Vec<MissingImage> = plan
        .images
        .iter()
        .zip(&failed)
        .filter(|(_, f)| **f)
        .map(|(image, _)| MissingImage {
            source: image.job.target.to_string(),
            origin: image.job.origin.to_string(),
            error: image
                .error
                .as_ref()
                .map(|e| super::error_chain(&**e))
                .unwrap_or_else(|| "the image it belongs to could not be fetched".into()),
        })
        .collect();
    let configs = fetch_configs(source, plan, &failed, opts).await;
    let images: Vec<BundleImage> = plan
        .images
        .iter()
        .zip(&failed)
        .filter(|(_, f)| !**f)
        .filter_map(|(image, _)| bundle_image(plan, image, &configs))
        .collect();
    if images.is_empty() {
        return Err(TransferError::Bundle(
            crate::bundle::BundleError::InvalidInput(
                "no image could be fetched: no bundle written".into(),
            ),
        ));
    }
    let input = BundleInput {
        images,
        lists: sink.lists.clone(),
        created: created(),
        excluded: (*sink.excluded).clone(),
        missing,
        inventoried: sink.inventoried.clone(),
    };
    let content = PlanContent::new(plan);
    let (out, write) = (sink.output.clone(), sink.write.clone());
    let set = tokio::task::spawn_blocking(move || VolumeSet::open(&input, &content, &out, &write))
        .await
        .map_err(|_| TransferError::Cancelled)??;
    plan.mark_present(set.written());
    let _ = sink.volumes.set(Arc::new(set));
    Ok(Prepared::Run)
}

/// The creation time recorded in a new bundle: now, or `SOURCE_DATE_EPOCH` when set (as for
/// reproducible builds: the same images then give the same bytes whenever they are bundled).
fn created() -> String {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|secs| {
            crate::inventory::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        })
        .unwrap_or_else(crate::bundle::now_rfc3339)
}

/// The image as the bundle describes it.
fn bundle_image(
    plan: &Plan,
    image: &PlannedImage,
    configs: &HashMap<Digest, (String, String, Option<String>)>,
) -> Option<BundleImage> {
    let top = image.manifests.last()?;
    // The job's target is the name as listed (its source may be a mirror).
    Some(BundleImage {
        source: image.job.target.to_string(),
        tag: image.job.target.tag().map(str::to_owned),
        digest: top.digest.clone(),
        platforms: platforms(image, configs),
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
}

/// `os/arch[/variant]` of each platform in the image: from the index, or from the config of
/// a single-platform image.
fn platforms(
    image: &PlannedImage,
    configs: &HashMap<Digest, (String, String, Option<String>)>,
) -> Vec<String> {
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
            .and_then(|config| configs.get(&config.digest))
            .map(|(os, arch, var)| vec![fmt(os, arch, var.as_deref())])
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// The platform in the config of every single-platform image (read before any volume is
/// written: the descriptor at the start of each volume names the platforms).
async fn fetch_configs(
    source: &Source,
    plan: &Plan,
    failed: &[bool],
    opts: &TransferOptions,
) -> HashMap<Digest, (String, String, Option<String>)> {
    let Source::Registry(client) = source else {
        return HashMap::new();
    };
    let mut wanted: Vec<(Digest, u64, String, String)> = Vec::new();
    let mut seen = HashSet::new();
    for (image, _) in plan.images.iter().zip(failed).filter(|(_, f)| !**f) {
        let Some(top) = image.manifests.last() else {
            continue;
        };
        if let Ok(Parsed::Image(blobs)) = walk::parse(top, &image.job.source.to_string())
            && let Some(config) = blobs.first()
            && config.size <= MAX_CONFIG
            && seen.insert(config.digest.clone())
        {
            wanted.push((
                config.digest.clone(),
                config.size,
                image.job.source.registry().to_owned(),
                image.job.source.repository().to_owned(),
            ));
        }
    }
    stream::iter(wanted)
        .map(|(digest, size, registry, repository)| async move {
            let repo = client.repo(&registry, &repository);
            let body = repo.get_blob(&digest, 0, None).await.ok()?;
            let body = body.stream.map(|r| r.map_err(TransferError::from)).boxed();
            let src = BlobSource::Registry(repo);
            let bytes = read_checked(&src, &digest, size, body).await.ok()?;
            let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
            let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
            Some((digest, (s("os")?, s("architecture")?, s("variant"))))
        })
        .buffer_unordered(opts.jobs.max(1))
        .filter_map(|x| async move { x })
        .collect()
        .await
}

/// The plan's manifests and blob sizes, as the bundle writer asks for them.
struct PlanContent {
    manifests: HashMap<Digest, (Vec<u8>, String)>,
    sizes: HashMap<Digest, u64>,
}

impl PlanContent {
    fn new(plan: &Plan) -> PlanContent {
        let manifests = plan
            .images
            .iter()
            .flat_map(|i| &i.manifests)
            .map(|m| (m.digest.clone(), (m.bytes.to_vec(), m.media_type.clone())))
            .collect();
        let sizes = plan
            .blobs
            .iter()
            .map(|b| (b.digest.clone(), b.size))
            .collect();
        PlanContent { manifests, sizes }
    }
}

impl BundleContent for PlanContent {
    fn manifest(&self, digest: &Digest) -> Option<(Vec<u8>, String)> {
        self.manifests.get(digest).cloned()
    }
    fn blob_size(&self, digest: &Digest) -> Option<u64> {
        self.sizes.get(digest).copied()
    }
}
