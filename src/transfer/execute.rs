//! Executing a plan: every missing blob copied once under one global concurrency limit,
//! mounted into further target repositories, and each image's manifests written as soon as
//! its blobs are in place (children first, the tag last).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared, join_all};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;

use crate::reference::Digest;
use crate::report::{ImageReport, ImageStatus, Reporter, RunReport, volume_list};

use super::blob::{self, BlobSource, Ctx, Dest};
use super::bundle_source::BundleSource;
use super::plan::{Plan, PlannedBlob, PlannedImage};
use super::window::Window;
use super::{SharedError, Sink, Source, TransferError, TransferOptions};

type BlobFuture = Shared<BoxFuture<'static, Result<(), SharedError>>>;

/// Aborts every spawned task when the run is dropped (Ctrl-C) or cancelled (fail-fast).
#[derive(Default)]
struct Tasks(std::sync::Mutex<Vec<AbortHandle>>);

impl Tasks {
    fn spawn<F>(&self, fut: F) -> BoxFuture<'static, Result<(), SharedError>>
    where
        F: std::future::Future<Output = Result<(), SharedError>> + Send + 'static,
    {
        let handle = tokio::spawn(fut);
        self.0
            .lock()
            .expect("not poisoned")
            .push(handle.abort_handle());
        async move {
            handle
                .await
                .unwrap_or_else(|_| Err(Arc::new(TransferError::Cancelled)))
        }
        .boxed()
    }

    fn abort_all(&self) {
        for h in self.0.lock().expect("not poisoned").iter() {
            h.abort();
        }
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        self.abort_all();
    }
}

/// The locators (tags, or the digest) one manifest has been written under at one destination;
/// its lock makes writes of that manifest there take turns.
type WrittenAs = Arc<tokio::sync::Mutex<HashSet<String>>>;

/// Whose turn it is to update one referrers index.
type Turn = Arc<tokio::sync::Mutex<()>>;

/// Writes each manifest once per destination, however many images name it.
///
/// Images of one list often share manifests (two tags of one image, indexes sharing a child,
/// an index listed beside one of its children). Writing the same manifest into the same
/// repository from two tasks at once is not harmless: distribution's filesystem storage
/// rewrites its link files in place, and an index pushed meanwhile is refused as referring to
/// an unknown manifest. So writes of one digest to one destination take turns, and a digest
/// already written there is written again only under a tag it does not have yet.
#[derive(Default)]
pub(super) struct ManifestWrites {
    /// (registry, repository, digest) -> the locators (tags, or the digest) written so far.
    written: std::sync::Mutex<HashMap<(String, String, Digest), WrittenAs>>,
    /// (registry, repository, subject) -> the turn to update the subject's `sha256-<hex>`
    /// referrers index.
    fallback: std::sync::Mutex<HashMap<(String, String, Digest), Turn>>,
    /// Per registry: whether it has the referrers API (then it keeps the lists itself).
    referrers_api: tokio::sync::Mutex<HashMap<String, bool>>,
}

impl ManifestWrites {
    /// Runs `write` for manifest `digest` at `scope` under `locator`, unless it was already
    /// written there under that locator (or, for a locator that is the digest itself, under
    /// any locator: the content is there).
    pub(super) async fn once<F, Fut>(
        &self,
        scope: (&str, &str),
        digest: &Digest,
        locator: &str,
        write: F,
    ) -> Result<(), SharedError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(), SharedError>>,
    {
        let slot = self
            .written
            .lock()
            .expect("not poisoned")
            .entry((scope.0.to_owned(), scope.1.to_owned(), digest.clone()))
            .or_default()
            .clone();
        let mut done = slot.lock().await;
        let by_digest = locator == digest.as_str();
        if done.contains(locator) || (by_digest && !done.is_empty()) {
            return Ok(());
        }
        write().await?;
        done.insert(locator.to_owned());
        Ok(())
    }

    /// After `referrer` (whose subject is `subject`) was written to `repo` and the registry
    /// did not acknowledge the subject: unless the registry has the referrers API, list the
    /// referrer in the subject's `sha256-<hex>` index, one update at a time per subject.
    async fn list_referrer(
        &self,
        repo: &crate::registry::Repo,
        subject: &Digest,
        referrer: &crate::registry::Manifest,
    ) -> Result<(), crate::registry::RegistryError> {
        let api = {
            let mut known = self.referrers_api.lock().await;
            match known.get(repo.registry()) {
                Some(&api) => api,
                None => {
                    let api = repo.referrers(subject).await?.is_some();
                    known.insert(repo.registry().to_owned(), api);
                    api
                }
            }
        };
        if api {
            return Ok(());
        }
        let turn = self
            .fallback
            .lock()
            .expect("not poisoned")
            .entry((
                repo.registry().to_owned(),
                repo.repository().to_owned(),
                subject.clone(),
            ))
            .or_default()
            .clone();
        let _turn = turn.lock().await;
        super::referrers::list_in_fallback_index(repo, subject, referrer).await
    }
}

/// Runs `plan`, returning the report. `started` is when the run began (planning included).
pub async fn execute(
    source: &Source,
    sink: &Sink,
    plan: Plan,
    opts: &TransferOptions,
    reporter: Arc<dyn Reporter>,
    started: Instant,
) -> RunReport {
    let bundle = match source {
        Source::Bundle(b) => Some(b.clone()),
        Source::Registry(_) => None,
    };
    let ctx = Arc::new(Ctx::new(opts.clone(), reporter.clone()));
    let tasks = Arc::new(Tasks::default());
    let permits = Arc::new(Semaphore::new(opts.jobs.max(1)));
    // Into a bundle: the volumes, and blobs admitted in volume order instead of by permits.
    let volumes = match sink {
        Sink::Bundle(b) => b.volumes.get().cloned(),
        Sink::Registry(_) => None,
    };
    let window = Arc::new(Window::new(opts.jobs));
    let transferred = Arc::new(AtomicUsize::new(0));
    let writes = ManifestWrites::default();
    // Blobs the plan counted as present (mountable) whose bytes were copied after all.
    let unskipped: Arc<Mutex<HashMap<Digest, u64>>> = Arc::default();
    reporter.on_plan(&plan.summary);
    reporter.on_images(&image_plans(&plan, |t| sink.scope(t)));

    let mut needed: Vec<&PlannedBlob> = plan
        .blobs
        .iter()
        .filter(|b| !b.present_everywhere())
        .collect();
    if let Some(set) = &volumes {
        // Blobs of images left out of the bundle are not fetched.
        needed.retain(|b| set.rank(&b.digest).is_some());
        needed.sort_by_key(|b| set.rank(&b.digest));
    }
    // From a bundle: blobs in its read order (a format-1 volume read through once, a
    // random-access bundle largest blob first); parts of split blobs kept for later runs
    // first (a part that fails its check fails its blob).
    let mut unreadable: HashMap<Digest, SharedError> = HashMap::new();
    if let Some(bundle) = &bundle {
        needed.sort_by_cached_key(|b| bundle.read_order(&b.digest));
        let (bundle, digests) = (
            bundle.clone(),
            needed.iter().map(|b| b.digest.clone()).collect::<Vec<_>>(),
        );
        let kept = tokio::task::spawn_blocking(move || {
            digests
                .into_iter()
                .filter_map(|d| {
                    let e = bundle.keep_parts(&d).err()?;
                    Some((d, Arc::new(TransferError::from(e))))
                })
                .collect()
        })
        .await;
        unreadable = kept.unwrap_or_default();
    }

    // One future per (blob, target repository) that lacks it.
    let mut futures: HashMap<(Digest, String, String), BlobFuture> = HashMap::new();
    for b in needed {
        let src = match source {
            Source::Registry(client) => BlobSource::Registry(client.repo(&b.source.0, &b.source.1)),
            Source::Bundle(bundle) => BlobSource::Bundle(bundle.clone()),
        };
        let failed = unreadable.get(&b.digest).cloned();
        let mut primary: Option<(BlobFuture, String, String)> = None;
        for t in b.targets.iter().filter(|t| !t.present) {
            let dst = match sink {
                Sink::Registry(client) => {
                    Dest::Registry(client.repo(&t.registry, &t.repository).for_push())
                }
                Sink::Bundle(_) => Dest::Volumes(
                    volumes
                        .clone()
                        .expect("prepare_bundle opens the volumes before the run"),
                ),
            };
            // Mount from a target repository that already has the blob, else from the first
            // one once it has it, or straight from the source repository when source and
            // target share a registry.
            let present = b
                .targets
                .iter()
                .find(|p| p.present && p.registry == t.registry);
            let (after, mount_from) = match (&primary, present) {
                (_, Some(p)) => (None, Some(p.repository.clone())),
                (Some((f, reg, repo)), None) if *reg == t.registry => {
                    (Some(f.clone()), Some(repo.clone()))
                }
                (Some((f, _, _)), None) => (Some(f.clone()), None),
                (None, None) if b.source.0 == t.registry => (None, Some(b.source.1.clone())),
                (None, None) => (None, None),
            };
            let mount_from = mount_from.filter(|_| matches!(sink, Sink::Registry(_)));
            let (ctx, permits, src, digest, size) = (
                ctx.clone(),
                permits.clone(),
                src.clone(),
                b.digest.clone(),
                b.size,
            );
            let (window, rank) = (
                window.clone(),
                volumes.as_ref().and_then(|v| v.rank(&b.digest)),
            );
            let counted = primary.is_none().then(|| transferred.clone());
            // The plan counts a blob's bytes once, at its first target, unless every target
            // can mount it; the others are counted as mounts.
            let planned_copy = primary.is_none() && !b.mountable();
            let unskipped = b.mountable().then(|| unskipped.clone());
            // A copy that waits for no other queues for its permit now, so copies start in
            // plan order.
            let queued = (after.is_none() && failed.is_none() && rank.is_none())
                .then(|| queue_permit(&permits));
            let failed = failed.clone();
            let fut = tasks
                .spawn(async move {
                    if let Some(e) = failed {
                        return Err(e);
                    }
                    if let Some(after) = after {
                        after.await?;
                    }
                    let (_permit, _admitted) = match rank {
                        Some(rank) => (None, Some(window.enter(rank).await)),
                        None => {
                            let permit = match queued {
                                Some(queued) => queued.await,
                                None => permits.acquire_owned().await,
                            };
                            (Some(permit.expect("semaphore never closed")), None)
                        }
                    };
                    ctx.reporter.on_blob_start(&digest, size);
                    let mut planned = blob::Planned::new(planned_copy);
                    let moved = blob::copy(
                        &ctx,
                        &src,
                        &dst,
                        &digest,
                        size,
                        mount_from.as_deref(),
                        &mut planned,
                    )
                    .await
                    .map_err(Arc::new)?;
                    if let (blob::Moved::Copied, Some(unskipped)) = (moved, unskipped) {
                        unskipped
                            .lock()
                            .expect("not poisoned")
                            .insert(digest.clone(), size);
                    }
                    ctx.reporter.on_blob_done(&digest, size);
                    if let Some(c) = counted {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                })
                .shared();
            if primary.is_none() {
                primary = Some((fut.clone(), t.registry.clone(), t.repository.clone()));
            }
            futures.insert(
                (b.digest.clone(), t.registry.clone(), t.repository.clone()),
                fut,
            );
        }
    }

    // A referrer is written after the image it refers to: each image's run is shared, so a
    // referrer's run can wait for its parent's.
    let mut runs: Vec<Shared<BoxFuture<'_, ImageReport>>> = Vec::with_capacity(plan.images.len());
    for image in &plan.images {
        let deps: Vec<(Digest, BlobFuture)> = image
            .blobs
            .iter()
            .filter_map(|d| {
                let (registry, repository) = sink.scope(&image.job.target);
                let key = (d.clone(), registry, repository);
                futures.get(&key).map(|f| (d.clone(), f.clone()))
            })
            .collect();
        let (tasks, reporter, writes) = (tasks.clone(), reporter.clone(), &writes);
        let parent = image.referrer.as_ref().map(|r| runs[r.parent].clone());
        let bundle = bundle.as_deref();
        let run = async move {
            let result = match parent {
                Some(parent) => match parent.await {
                    p if p.status == ImageStatus::Failed => Err(parent_failed(&p)),
                    _ => finish_image(image, deps, bundle, sink, writes).await,
                },
                None => finish_image(image, deps, bundle, sink, writes).await,
            };
            // A full disk fails whatever comes next: stop as --fail-fast would.
            if let Err(e) = &result
                && (!opts.keep_going || e.is_disk_full())
            {
                tasks.abort_all();
            }
            let mut report = image_report(image, result);
            if let Some(bundle) = bundle {
                waiting_for_given_volume(bundle, &mut report);
            }
            reporter.on_image_done(&report);
            report
        };
        runs.push(run.boxed().shared());
    }
    let mut images = join_all(runs).await;
    // Every blob a failed image needed that failed, with its cause: an image stops at its
    // first failed blob, but the summary counts them all ("24 blobs: CAUSE").
    for (report, image) in images.iter_mut().zip(&plan.images) {
        if report.status != ImageStatus::Failed {
            continue;
        }
        let (registry, repository) = sink.scope(&image.job.target);
        for d in &image.blobs {
            let key = (d.clone(), registry.clone(), repository.clone());
            if let Some(Err(e)) = futures.get(&key).and_then(|f| f.peek())
                && !matches!(**e, TransferError::Cancelled)
            {
                report.failed_blobs.push((d.clone(), super::blob_cause(e)));
            }
        }
    }
    if let Some(bundle) = &bundle {
        // A split blob now at every target that lacked it needs its kept parts no more.
        let mut done: HashMap<&Digest, bool> = HashMap::new();
        for ((digest, _, _), fut) in &futures {
            let ok = matches!(fut.peek(), Some(Ok(())));
            *done.entry(digest).or_insert(true) &= ok;
        }
        for (digest, _) in done.into_iter().filter(|(_, ok)| *ok) {
            bundle.forget_parts(digest);
        }
    }

    let blobs_transferred = transferred.load(Ordering::Relaxed);
    let skipped: Vec<_> = plan
        .blobs
        .iter()
        .filter(|b| b.present_everywhere())
        .collect();
    // A mount the registry ignored (or refused) moved the bytes: they were not skipped.
    let unskipped = std::mem::take(&mut *unskipped.lock().expect("not poisoned"));
    RunReport {
        images,
        blobs_transferred,
        blobs_skipped: plan.summary.blobs_present.saturating_sub(unskipped.len()),
        bytes_transferred: ctx.bytes_read.load(Ordering::Relaxed),
        bytes_skipped: plan
            .summary
            .bytes_present
            .max(skipped.iter().map(|b| b.size).sum())
            .saturating_sub(unskipped.values().sum()),
        seconds: started.elapsed().as_secs_f64(),
        missing_from_bundle: bundle
            .map(|b| b.descriptor.missing_images.clone())
            .unwrap_or_default(),
        volumes: Vec::new(),
    }
}

/// A permit of `permits` asked for now: the request takes its place in the semaphore's queue
/// (served first come, first served) at this call, not when the task awaiting it first runs.
/// Spawned tasks first run in no set order across worker threads, so queueing from within
/// them would start copies in no set order either, whatever the plan's.
fn queue_permit(permits: &Arc<Semaphore>) -> BoxFuture<'static, PermitResult> {
    let mut acquire = Box::pin(permits.clone().acquire_owned());
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    match acquire.as_mut().poll(&mut cx) {
        Poll::Ready(permit) => futures_util::future::ready(permit).boxed(),
        // Queued: polled again from the task, with its waker.
        Poll::Pending => acquire,
    }
}

type PermitResult = Result<OwnedSemaphorePermit, tokio::sync::AcquireError>;

/// What each image of `plan` still needs moved: its blobs that its target lacks (`scope` gives
/// the registry and repository a target's blobs go to, as [`Sink::scope`]).
pub(super) fn image_plans(
    plan: &Plan,
    scope: impl Fn(&crate::reference::ImageRef) -> (String, String),
) -> Vec<crate::report::ImagePlan> {
    let blobs: HashMap<&Digest, &super::PlannedBlob> =
        plan.blobs.iter().map(|b| (&b.digest, b)).collect();
    plan.images
        .iter()
        .map(|image| {
            let (registry, repository) = scope(&image.job.target);
            let missing = image
                .blobs
                .iter()
                .filter_map(|d| blobs.get(d))
                .filter(|b| {
                    b.targets
                        .iter()
                        .any(|t| !t.present && t.registry == registry && t.repository == repository)
                })
                .map(|b| (b.digest.clone(), b.size))
                .collect();
            crate::report::ImagePlan {
                source: image.job.source.to_string(),
                target: image.job.target.to_string(),
                blobs: missing,
            }
        })
        .collect()
}

/// An image of a bundle still waiting for a volume that was given (and read) is a failure,
/// not a wait.
fn waiting_for_given_volume(bundle: &BundleSource, report: &mut ImageReport) {
    if report.status == ImageStatus::Pending
        && report.pending_volumes.iter().any(|v| bundle.has_volume(*v))
    {
        report.status = ImageStatus::Failed;
        report.error = Some(format!(
            "{}: blobs missing although volume(s) {} were given",
            report.source,
            volume_list(&report.pending_volumes)
        ));
        report.pending_volumes.clear();
    }
}

/// The error of a referrer whose image could not be copied.
pub(super) fn parent_failed(parent: &ImageReport) -> SharedError {
    Arc::new(TransferError::ParentFailed {
        reference: parent.source.clone(),
    })
}

/// Waits for an image's blobs, then writes its manifests.
async fn finish_image(
    image: &PlannedImage,
    deps: Vec<(Digest, BlobFuture)>,
    bundle: Option<&BundleSource>,
    sink: &Sink,
    writes: &ManifestWrites,
) -> Result<(), SharedError> {
    if let Some(e) = &image.error {
        return Err(e.clone());
    }
    if image.complete {
        return Ok(());
    }
    // Blobs a bundle's volumes given do not hold: the image waits for the others.
    let mut missing = Vec::new();
    for (digest, fut) in deps {
        if let Err(e) = fut.await {
            if matches!(*e, TransferError::Cancelled) {
                return Err(e);
            }
            if e.is_not_in_volumes() {
                missing.push(digest);
                continue;
            }
            return Err(Arc::new(TransferError::DependencyFailed {
                digest,
                message: super::error_chain(&*e),
                integrity: e.is_integrity(),
                disk_full: e.is_disk_full(),
            }));
        }
    }
    if let (Some(bundle), false) = (bundle, missing.is_empty()) {
        return Err(Arc::new(incomplete(bundle, image, sink, &missing)));
    }
    let dst_client = match sink {
        Sink::Registry(client) => client,
        // The volumes' writers write the manifests, from the plan.
        Sink::Bundle(_) => return Ok(()),
    };
    push_manifests(image, dst_client, writes).await
}

/// Why an image of a bundle cannot be written yet: `missing` blobs, and the volumes that hold
/// them (or the site, for those a differential bundle leaves out).
fn incomplete(
    bundle: &BundleSource,
    image: &PlannedImage,
    sink: &Sink,
    missing: &[Digest],
) -> TransferError {
    let mut volumes: Vec<u32> = missing
        .iter()
        .flat_map(|d| bundle.volumes_needed(d))
        .collect();
    volumes.sort_unstable();
    volumes.dedup();
    let at_site = missing
        .iter()
        .filter(|d| !bundle.descriptor.blobs.contains_key(*d))
        .cloned()
        .collect();
    let (registry, repository) = sink.scope(&image.job.target);
    TransferError::Incomplete {
        reference: image.job.source.to_string(),
        missing: missing.len(),
        volumes,
        at_site,
        repository: format!("{registry}/{repository}"),
    }
}

/// Writes an image's manifests to its target: index children by digest, then the top
/// manifest under its tag (or digest), so a tag never points at something incomplete.
/// Each manifest goes to a repository once however many images share it ([`ManifestWrites`]).
pub(super) async fn push_manifests(
    image: &PlannedImage,
    dst_client: &crate::registry::RegistryClient,
    writes: &ManifestWrites,
) -> Result<(), SharedError> {
    let target = &image.job.target;
    let scope = (target.registry(), target.repository());
    let repo = dst_client
        .repo(target.registry(), target.repository())
        .for_push();
    let (children, top) = image.manifests.split_at(image.manifests.len() - 1);
    for m in children {
        writes
            .once(scope, &m.digest, m.digest.as_str(), || async {
                repo.put_manifest(m.digest.as_str(), m)
                    .await
                    .map_err(|source| {
                        Arc::new(TransferError::PushManifest {
                            reference: format!("{}@{}", target.name(), m.digest),
                            source,
                        })
                    })
            })
            .await?;
    }
    let top = &top[0];
    let locator = target.tag().unwrap_or(top.digest.as_str());
    let push_error = |source| {
        Arc::new(TransferError::PushManifest {
            reference: target.to_string(),
            source,
        })
    };
    writes
        .once(scope, &top.digest, locator, || async {
            let acknowledged = repo
                .put_manifest_subject(locator, top)
                .await
                .map_err(push_error)?;
            // A manifest with a subject must be findable from it at a registry without the
            // referrers API too.
            if let Some(subject) = super::referrers::info(top).subject
                && acknowledged.is_none()
            {
                writes
                    .list_referrer(&repo, &subject, top)
                    .await
                    .map_err(push_error)?;
            }
            Ok(())
        })
        .await
}

pub(super) fn image_report(image: &PlannedImage, result: Result<(), SharedError>) -> ImageReport {
    let mut pending_volumes = Vec::new();
    let (status, error, integrity_error, disk_full) = match &result {
        Ok(()) if image.complete => (ImageStatus::AlreadyPresent, None, false, false),
        Ok(()) => (ImageStatus::Copied, None, false, false),
        // Waiting for volumes not loaded yet is not a failure: loading them completes it.
        Err(e)
            if let TransferError::Incomplete {
                volumes, at_site, ..
            } = &**e
                && at_site.is_empty()
                && !volumes.is_empty() =>
        {
            pending_volumes.clone_from(volumes);
            (ImageStatus::Pending, None, false, false)
        }
        Err(e) => (
            ImageStatus::Failed,
            Some(super::error_chain(&**e)),
            e.is_integrity(),
            e.is_disk_full(),
        ),
    };
    ImageReport {
        source: image.job.source.to_string(),
        target: image.job.target.to_string(),
        digest: image.target_digest.clone(),
        source_digest: image.source_digest.clone(),
        status,
        error,
        pending_volumes,
        origin: image.job.origin.to_string(),
        referrer_of: image.referrer.as_ref().map(|r| r.parent_source.clone()),
        artifact_type: image
            .referrer
            .as_ref()
            .and_then(|r| r.artifact_type.clone()),
        integrity_error,
        disk_full,
        cause: result.err().and_then(|e| super::registry_cause(&*e)),
        failed_blobs: Vec::new(),
    }
}

/// The report of a `--dry-run`: every image planned (or failed to resolve), nothing moved.
pub fn dry_run_report(plan: &Plan, started: Instant) -> RunReport {
    RunReport {
        images: plan
            .images
            .iter()
            .map(|i| {
                let mut r = image_report(i, i.error.clone().map_or(Ok(()), Err));
                if r.status == ImageStatus::Copied {
                    r.status = ImageStatus::Planned;
                }
                r
            })
            .collect(),
        blobs_transferred: 0,
        blobs_skipped: plan.summary.blobs_present,
        bytes_transferred: 0,
        bytes_skipped: plan.summary.bytes_present,
        seconds: started.elapsed().as_secs_f64(),
        missing_from_bundle: Vec::new(),
        volumes: Vec::new(),
    }
}
