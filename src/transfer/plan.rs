//! Planning: resolve every image to manifests and blobs, deduplicate, and ask the destination
//! what it already has. The plan is all `--dry-run` prints, and all a resumed run needs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};

use crate::mapping::ImageJob;
use crate::reference::{Digest, ImageRef};
use crate::registry::Manifest;
use crate::report::{PlanSummary, Reporter};

use super::budget::PullBudget;
use super::referrers::{self, Found};
use super::resolve::{Fetched, Planner, Resolved};
use super::{SharedError, Sink, Source, TransferError, TransferOptions};

/// One image, resolved.
#[derive(Debug, Clone)]
pub struct PlannedImage {
    /// What was asked.
    pub job: ImageJob,
    /// Digest of the source's top manifest.
    pub source_digest: Option<Digest>,
    /// Digest written at the target (differs from the source's only after platform filtering).
    pub target_digest: Option<Digest>,
    /// Manifests in push order: index children first, the top manifest last.
    pub manifests: Vec<Manifest>,
    /// Distinct blobs this image needs.
    pub blobs: Vec<Digest>,
    /// The target already holds this image at `target_digest`: nothing to do.
    pub complete: bool,
    /// Blobs missing at the target for this image, and their bytes.
    pub missing: (usize, u64),
    /// Why this image cannot be copied, if planning failed.
    pub error: Option<SharedError>,
    /// Set when this is a signature, attestation or SBOM of another planned image.
    pub referrer: Option<ReferrerOf>,
}

/// What a referrer refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferrerOf {
    /// Index in [`Plan::images`] of the image it belongs to (written before it).
    pub parent: usize,
    /// The parent's source reference, as listed.
    pub parent_source: String,
    /// The manifest it refers to.
    pub subject: Digest,
    /// Its artifact type.
    pub artifact_type: Option<String>,
}

/// Where a blob must end up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobTarget {
    /// Target registry.
    pub registry: String,
    /// Target repository.
    pub repository: String,
    /// Already there.
    pub present: bool,
}

/// One distinct blob of the run.
#[derive(Debug, Clone)]
pub struct PlannedBlob {
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Source registry and repository to read it from.
    pub source: (String, String),
    /// Every target repository that needs it.
    pub targets: Vec<BlobTarget>,
}

impl PlannedBlob {
    /// Whether every target already has it.
    pub fn present_everywhere(&self) -> bool {
        self.targets.iter().all(|t| t.present)
    }

    /// Whether every target lacking it shares a registry with one that has it (a
    /// cross-repository mount then moves no bytes).
    pub fn mountable(&self) -> bool {
        self.targets.iter().filter(|t| !t.present).all(|t| {
            self.targets
                .iter()
                .any(|p| p.present && p.registry == t.registry)
        })
    }
}

/// The whole run, resolved.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Images in list order.
    pub images: Vec<PlannedImage>,
    /// Distinct blobs of all images still to be copied, in first-use order.
    pub blobs: Vec<PlannedBlob>,
    /// Totals.
    pub summary: PlanSummary,
}

/// Builds the plan for `jobs`.
pub async fn plan(
    source: &Source,
    sink: &Sink,
    jobs: Vec<ImageJob>,
    opts: &TransferOptions,
    reporter: &dyn Reporter,
) -> Plan {
    let width = opts.jobs.max(4) * 2;
    let fetched = Fetched::default();
    let planner = Planner {
        source,
        sink,
        opts,
        reporter,
        fetched: &fetched,
        budget: PullBudget::new(source),
    };
    let mut jobs = jobs;
    let mut resolved = planner.resolve_all(&jobs).await;
    let mut referrer_of: Vec<Option<ReferrerOf>> = vec![None; jobs.len()];
    match source {
        Source::Registry(client)
            if opts.referrers.enabled() || jobs.iter().any(|j| j.referrers.is_some()) =>
        {
            let mut found = Discovered {
                jobs: &mut jobs,
                resolved: &mut resolved,
                referrer_of: &mut referrer_of,
            };
            discover(client, &planner, &mut found).await;
        }
        Source::Bundle(bundle) => {
            let by_source: HashMap<String, usize> = jobs
                .iter()
                .enumerate()
                .map(|(i, j)| (j.source.to_string(), i))
                .collect();
            for (i, job) in jobs.iter().enumerate() {
                referrer_of[i] = bundle.referrer_of(&job.source).and_then(|r| {
                    Some(ReferrerOf {
                        parent: *by_source.get(&r.parent)?,
                        parent_source: r.parent,
                        subject: r.subject,
                        artifact_type: r.artifact_type,
                    })
                });
            }
        }
        Source::Registry(_) => {}
    }

    // Ask the target whether each image is already complete; a tag that already points at the
    // same digest means every blob and child is there (registries check references on push).
    let complete: Vec<Result<bool, SharedError>> = stream::iter(jobs.iter().zip(&resolved))
        .map(|(job, res)| async move {
            match res {
                Ok(r) => target_has(sink, &job.target, &r.target_digest)
                    .await
                    .map_err(Arc::new),
                Err(_) => Ok(false),
            }
        })
        .buffered(width)
        .collect()
        .await;

    let mut images = Vec::with_capacity(jobs.len());
    let mut blobs: Vec<PlannedBlob> = Vec::new();
    let mut index: HashMap<Digest, usize> = HashMap::new();
    let mut summary = PlanSummary {
        images: referrer_of.iter().filter(|r| r.is_none()).count(),
        referrers: referrer_of.iter().filter(|r| r.is_some()).count(),
        ..PlanSummary::default()
    };
    let mut skipped_sizes: BTreeMap<Digest, u64> = BTreeMap::new();
    // Manifests to write, each once per destination scope (as the executor writes them).
    let mut manifests_to_write: HashSet<((String, String), Digest)> = HashSet::new();
    for (((job, res), done), referrer) in jobs
        .into_iter()
        .zip(resolved)
        .zip(complete)
        .zip(referrer_of)
    {
        let (res, done) = match (res, done) {
            (Ok(r), Ok(d)) => (r, d),
            (Err(e), _) | (Ok(_), Err(e)) => {
                let mut image = PlannedImage::failed(job, e);
                image.referrer = referrer;
                images.push(image);
                continue;
            }
        };
        let mut seen = Vec::new();
        // The set makes the repeat check linear (a manifest may list a million layers).
        let mut seen_set: HashSet<&Digest> = HashSet::new();
        for b in &res.blobs {
            if !seen_set.insert(&b.digest) {
                continue;
            }
            seen.push(b.digest.clone());
            if done {
                skipped_sizes.insert(b.digest.clone(), b.size);
            }
            let i = *index.entry(b.digest.clone()).or_insert_with(|| {
                blobs.push(PlannedBlob {
                    digest: b.digest.clone(),
                    size: b.size,
                    source: (job.source.registry().into(), job.source.repository().into()),
                    targets: Vec::new(),
                });
                blobs.len() - 1
            });
            // A complete image's blobs are known present: recorded so other images can mount
            // them instead of fetching them again.
            let (registry, repository) = sink.scope(&job.target);
            match blobs[i]
                .targets
                .iter_mut()
                .find(|t| t.registry == registry && t.repository == repository)
            {
                Some(t) => t.present |= done,
                None => blobs[i].targets.push(BlobTarget {
                    registry,
                    repository,
                    present: done,
                }),
            }
        }
        if !done {
            let scope = sink.scope(&job.target);
            manifests_to_write.extend(
                res.manifests
                    .iter()
                    .map(|m| (scope.clone(), m.digest.clone())),
            );
        }
        images.push(PlannedImage {
            job,
            source_digest: Some(res.source_digest),
            target_digest: Some(res.target_digest),
            manifests: res.manifests,
            blobs: seen,
            complete: done,
            missing: (0, 0),
            error: None,
            referrer,
        });
    }

    // HEAD every (blob, target repository) pair not already known present, once.
    let pairs: Vec<(usize, usize)> = blobs
        .iter()
        .enumerate()
        .flat_map(|(i, b)| {
            (0..b.targets.len())
                .filter(move |&j| !b.targets[j].present)
                .map(move |j| (i, j))
        })
        .collect();
    let answers: Vec<((usize, usize), Result<bool, TransferError>)> = stream::iter(pairs)
        .map(|(i, j)| {
            let (b, t) = (&blobs[i], &blobs[i].targets[j]);
            async move {
                (
                    (i, j),
                    sink.has_blob(&t.registry, &t.repository, &b.digest).await,
                )
            }
        })
        .buffer_unordered(opts.jobs.max(4) * 4)
        .collect()
        .await;
    let mut query_errors: HashMap<Digest, SharedError> = HashMap::new();
    for ((i, j), answer) in answers {
        match answer {
            Ok(present) => blobs[i].targets[j].present = present,
            Err(e) => {
                query_errors.insert(blobs[i].digest.clone(), Arc::new(e));
            }
        }
    }

    // Per-image and overall totals.
    let by_digest: HashMap<&Digest, &PlannedBlob> = blobs.iter().map(|b| (&b.digest, b)).collect();
    for image in images
        .iter_mut()
        .filter(|i| i.error.is_none() && !i.complete)
    {
        for d in &image.blobs {
            if let Some(e) = query_errors.get(d) {
                image.error = Some(e.clone());
                break;
            }
            let b = by_digest[d];
            let scope = sink.scope(&image.job.target);
            let here = b
                .targets
                .iter()
                .any(|t| !t.present && t.registry == scope.0 && t.repository == scope.1);
            if here {
                image.missing.0 += 1;
                image.missing.1 += b.size;
            }
        }
    }
    // A blob every missing repository can mount from a repository that has it moves no
    // bytes: it counts as present.
    for b in &blobs {
        if b.present_everywhere() || b.mountable() {
            skipped_sizes.insert(b.digest.clone(), b.size);
        } else {
            skipped_sizes.remove(&b.digest);
            summary.blobs_to_transfer += 1;
            summary.bytes_to_transfer += b.size;
        }
    }
    summary.manifests = manifests_to_write.len();
    summary.blobs_present = skipped_sizes.len();
    summary.bytes_present = skipped_sizes.values().sum();
    Plan {
        images,
        blobs,
        summary,
    }
}

impl Plan {
    /// Records the blobs of `present` as present at every target, with the totals that follow
    /// (a bundle's volumes, resumed, already hold them).
    pub(crate) fn mark_present(&mut self, present: &HashSet<Digest>) {
        if present.is_empty() {
            return;
        }
        let mut moved = (0usize, 0u64);
        for b in self
            .blobs
            .iter_mut()
            .filter(|b| present.contains(&b.digest))
        {
            if !(b.present_everywhere() || b.mountable()) {
                moved.0 += 1;
                moved.1 += b.size;
            }
            for t in &mut b.targets {
                t.present = true;
            }
        }
        let s = &mut self.summary;
        s.blobs_to_transfer -= moved.0;
        s.bytes_to_transfer -= moved.1;
        s.blobs_present += moved.0;
        s.bytes_present += moved.1;
        let sizes: HashMap<&Digest, u64> = self.blobs.iter().map(|b| (&b.digest, b.size)).collect();
        for image in &mut self.images {
            for d in image.blobs.iter().filter(|d| present.contains(*d)) {
                if image.missing.0 > 0 && !image.complete {
                    image.missing.0 -= 1;
                    image.missing.1 = image.missing.1.saturating_sub(sizes[d]);
                }
            }
        }
    }
}

impl PlannedImage {
    /// An image that cannot be copied, for `error`.
    pub fn failed(job: ImageJob, error: SharedError) -> PlannedImage {
        PlannedImage {
            job,
            source_digest: None,
            target_digest: None,
            manifests: Vec::new(),
            blobs: Vec::new(),
            complete: false,
            missing: (0, 0),
            error: Some(error),
            referrer: None,
        }
    }
}

/// The growing job list while referrers are discovered: every vector has one entry per job.
struct Discovered<'a> {
    jobs: &'a mut Vec<ImageJob>,
    resolved: &'a mut Vec<Result<Resolved, SharedError>>,
    referrer_of: &'a mut Vec<Option<ReferrerOf>>,
}

/// Finds the referrers of every resolved image's manifests at the source (and theirs, down
/// to [`referrers::MAX_DEPTH`]), and adds those the policy wants as jobs of their own, each
/// naming the image it belongs to. A listing that fails is a warning, not a failed image.
async fn discover(
    client: &crate::registry::RegistryClient,
    planner: &Planner<'_>,
    d: &mut Discovered<'_>,
) {
    let (opts, reporter) = (planner.opts, planner.reporter);
    let discovery = referrers::Discovery::default();
    let width = opts.jobs.max(4) * 2;
    // Referrers already listed as images of their own are not added again.
    let mut seen: HashSet<(String, Found)> = d
        .jobs
        .iter()
        .filter_map(|j| {
            let found = match (j.source.digest(), j.source.tag()) {
                (Some(dg), _) => Found::Digest(dg.clone()),
                (None, Some(t)) => Found::Tag(t.to_owned()),
                (None, None) => return None,
            };
            Some((j.source.name(), found))
        })
        .collect();
    // (image index, subject, whether it is a platform-filtered index's original digest)
    let mut frontier: Vec<(usize, Digest, bool)> = Vec::new();
    for (i, r) in d.resolved.iter().enumerate() {
        let policy = d.jobs[i].referrers.as_ref().unwrap_or(&opts.referrers);
        if let Ok(r) = r
            && policy.enabled()
        {
            let (children, top) = r.manifests.split_at(r.manifests.len() - 1);
            frontier.extend(children.iter().map(|m| (i, m.digest.clone(), false)));
            frontier.push((i, r.source_digest.clone(), top[0].digest != r.source_digest));
        }
    }
    for depth in 0..referrers::MAX_DEPTH {
        if frontier.is_empty() {
            break;
        }
        let jobs = &*d.jobs;
        let answers: Vec<_> = stream::iter(frontier.drain(..))
            .map(|(i, subject, filtered)| {
                let repo = client.repo(jobs[i].source.registry(), jobs[i].source.repository());
                let discovery = &discovery;
                async move {
                    let found = discovery.find(&repo, &subject).await;
                    (i, subject, filtered, found)
                }
            })
            .buffered(width)
            .collect()
            .await;
        let mut new_jobs = Vec::new();
        for (i, subject, filtered, found) in answers {
            let found = match found {
                Ok(f) => f,
                Err(e) => {
                    reporter.on_warning(&format!(
                        "{}: cannot list the signatures and other referrers of {subject}: {}",
                        d.jobs[i].source,
                        super::error_chain(&*e)
                    ));
                    continue;
                }
            };
            if filtered && !found.is_empty() {
                reporter.on_warning(&format!(
                    "{}: {} signature(s) or other referrer(s) of the index {subject} are not copied: --platform rewrites the index, so they would not verify",
                    d.jobs[i].source,
                    found.len()
                ));
                continue;
            }
            for f in found {
                if !seen.insert((d.jobs[i].source.name(), f.clone())) {
                    continue;
                }
                let (tag, digest) = match &f {
                    Found::Digest(dg) => (None, Some(dg.clone())),
                    Found::Tag(t) => (Some(t.clone()), None),
                };
                let parent = &d.jobs[i];
                let job = ImageJob {
                    source: parent.source.with(tag.clone(), digest.clone()),
                    target: parent.target.with(tag, digest),
                    platforms: Vec::new(),
                    origin: parent.origin.clone(),
                    referrers: parent.referrers.clone(),
                };
                new_jobs.push((i, subject.clone(), f, job));
            }
        }
        let batch: Vec<ImageJob> = new_jobs.iter().map(|(_, _, _, job)| job.clone()).collect();
        let resolved = planner.resolve_all(&batch).await;
        for ((parent, subject, found, job), r) in new_jobs.into_iter().zip(resolved) {
            let tag = match &found {
                Found::Tag(t) => Some(t.as_str()),
                Found::Digest(_) => None,
            };
            let artifact_type = match &r {
                Ok(r) => referrers::info(r.manifests.last().expect("a top manifest")).artifact_type,
                Err(e) if matches!(**e, TransferError::UnsupportedManifest { .. }) => {
                    reporter.on_warning(&format!("not copied: {}", super::error_chain(&**e)));
                    continue;
                }
                Err(_) => None,
            };
            let policy = job.referrers.as_ref().unwrap_or(&opts.referrers);
            if r.is_ok() && !policy.wants(artifact_type.as_deref(), tag) {
                continue;
            }
            let index = d.jobs.len();
            if depth + 1 < referrers::MAX_DEPTH
                && let Ok(r) = &r
            {
                frontier.extend(r.manifests.iter().map(|m| (index, m.digest.clone(), false)));
            }
            d.referrer_of.push(Some(ReferrerOf {
                parent,
                parent_source: d.jobs[parent].source.to_string(),
                subject,
                artifact_type,
            }));
            d.jobs.push(job);
            d.resolved.push(r);
        }
    }
}

/// Whether the target already has this image at `digest`.
pub(super) async fn target_has(
    sink: &Sink,
    target: &ImageRef,
    digest: &Digest,
) -> Result<bool, TransferError> {
    let locator = target.tag().unwrap_or(digest.as_str());
    Ok(sink.manifest_digest(target, locator).await?.as_ref() == Some(digest))
}

impl Source {
    /// Fetches a manifest of `image` by tag or digest.
    pub(crate) async fn manifest(
        &self,
        image: &ImageRef,
        locator: &str,
    ) -> Result<Manifest, TransferError> {
        match self {
            Source::Registry(client) => client
                .repo(image.registry(), image.repository())
                .get_manifest(locator)
                .await
                .map_err(|source| TransferError::FetchManifest {
                    reference: if locator.starts_with("sha256:") {
                        format!("{}@{locator}", image.name())
                    } else {
                        format!("{}:{locator}", image.name())
                    },
                    source,
                }),
            Source::Bundle(bundle) => {
                bundle
                    .manifest(image, locator)
                    .ok_or_else(|| TransferError::NotInBundle {
                        reference: format!("{image} ({locator})"),
                    })
            }
        }
    }
}

impl Sink {
    /// Which blob store an image's blobs land in: its repository for a registry, one shared
    /// store for a bundle.
    pub(crate) fn scope(&self, target: &ImageRef) -> (String, String) {
        match self {
            Sink::Registry(_) => (target.registry().into(), target.repository().into()),
            Sink::Bundle(_) => (String::new(), String::new()),
        }
    }

    /// The digest `image:locator` has at the destination, if it exists.
    pub(crate) async fn manifest_digest(
        &self,
        image: &ImageRef,
        locator: &str,
    ) -> Result<Option<Digest>, TransferError> {
        match self {
            Sink::Registry(client) => client
                .repo(image.registry(), image.repository())
                .for_push()
                .head_manifest(locator)
                .await
                .map(|i| i.map(|i| i.digest))
                .map_err(|source| TransferError::Query {
                    reference: format!("{}:{locator}", image.name()),
                    source,
                }),
            // Manifests are rewritten into staging every run: they are small, and the
            // bundle's image list is rebuilt from the plan anyway.
            Sink::Bundle(_) => Ok(None),
        }
    }

    /// Whether `registry/repository` holds blob `digest`.
    pub(crate) async fn has_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
    ) -> Result<bool, TransferError> {
        match self {
            Sink::Registry(client) => client
                .repo(registry, repository)
                .for_push()
                .blob_size(digest)
                .await
                .map(|s| s.is_some())
                .map_err(|source| TransferError::Query {
                    reference: format!("{registry}/{repository}@{digest}"),
                    source,
                }),
            // Blobs an earlier run left in the volumes are known only once the volumes are
            // planned: `Plan::mark_present`.
            Sink::Bundle(b) => Ok(b.excluded.contains_key(digest)),
        }
    }
}
