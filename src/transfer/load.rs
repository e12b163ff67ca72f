//! Loading bundles into a registry: the bundle is a *sequential* source, so instead of
//! fetching blobs on demand the volumes are read front to back and every needed blob is
//! pushed as it passes.
//!
//! Planning is the shared planner ([`super::plan`]) with [`BundleSource`] answering manifest
//! look-ups; the upload step, the verifier and the manifest push order are the registry
//! engine's. The tar is read on a blocking thread; small blobs are read whole and uploaded
//! concurrently (bounded by `--jobs` and a bounded channel), large ones stream through a
//! bounded chunk channel, so memory stays flat whatever the blob size. Parts of split blobs
//! wait in a state directory until every part has been seen.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{Semaphore, mpsc};

use crate::bundle::{
    BundleError, Descriptor, EntryKind, PartAssembler, VolumeReader, into_bundle_error,
};
use crate::reference::{Digest, ImageRef};
use crate::registry::{Manifest, MountOutcome, RegistryClient};
use crate::report::{ImageStatus, Reporter, RunReport, volume_list};

use super::blob::{ByteStream, RetryBudget};
use super::execute::{ManifestWrites, image_report, push_manifests};
use super::plan::{Plan, PlannedImage};
use super::upload::Uploader;
use super::{TransferError, TransferOptions};

mod mounts;

/// Blobs up to this size are read whole and uploaded concurrently with the reading.
const SMALL_BLOB: u64 = 4 << 20;
/// Chunk size of streamed blobs.
const CHUNK: usize = 1 << 20;

/// A bundle opened for loading: its descriptor and manifests (every volume carries all of
/// them), and the volumes given.
pub struct BundleSource {
    /// Volume files, in the order given.
    pub volumes: Vec<PathBuf>,
    /// The descriptor (identical image list in every volume).
    pub descriptor: Descriptor,
    /// Volume number of each given file.
    numbers: Vec<u32>,
    manifests: HashMap<Digest, Manifest>,
    /// Index in `descriptor.images` of each image's source reference.
    by_source: HashMap<String, usize>,
    state_dir: PathBuf,
    /// Blobs `bundle verify` found corrupt, with its message: never uploaded.
    corrupt: HashMap<Digest, String>,
}

/// What a referrer carried by a bundle belongs to.
pub(crate) struct ReferrerLink {
    /// The parent image's source reference in the bundle.
    pub parent: String,
    /// The manifest it refers to.
    pub subject: Digest,
    /// Its artifact type.
    pub artifact_type: Option<String>,
}

impl BundleSource {
    /// Opens the volumes (blocking). They are first checked whole by [`crate::bundle::verify`],
    /// the check `bundle verify` runs, so `load` accepts only what `verify` accepts: a problem
    /// with a volume as a whole (truncated, unsafe, inconsistent, a manifest or `index.json`
    /// that does not hold together) refuses the load before anything is pushed. Two kinds of
    /// problem are left to the load itself: a volume not given (its images wait for it) and
    /// a blob whose content is corrupt (its images fail, with exit code 3, the others load).
    /// Then the descriptors and manifests are read, no blobs. All volumes must belong to one
    /// bundle.
    pub fn open(volumes: &[PathBuf], state_dir: PathBuf) -> Result<BundleSource, BundleError> {
        use crate::bundle::ProblemKind;
        let first = volumes.first().ok_or(BundleError::NoVolumes)?;
        let report = crate::bundle::verify(volumes)?;
        let corrupt: HashMap<Digest, String> = report
            .problems
            .iter()
            .filter(|p| p.kind == ProblemKind::Corrupt)
            .filter_map(|p| Some((p.digest.clone()?, p.message.clone())))
            .collect();
        let problems: Vec<String> = report
            .problems
            .into_iter()
            .filter(|p| match p.kind {
                ProblemKind::Incomplete => false,
                ProblemKind::Corrupt => p.digest.is_none() && p.images.is_empty(),
                _ => true,
            })
            .map(|p| p.message)
            .collect();
        if !problems.is_empty() {
            return Err(BundleError::Refused { problems });
        }
        let mut reader = VolumeReader::open(first)?;
        let descriptor = reader.descriptor().clone();
        let mut numbers = vec![descriptor.volume];
        for v in &volumes[1..] {
            let other = VolumeReader::open(v)?;
            let d = other.descriptor();
            if d.bundle_id != descriptor.bundle_id {
                return Err(BundleError::MixedBundles {
                    volume: v.clone(),
                    found: d.bundle_id.clone(),
                    expected: descriptor.bundle_id.clone(),
                });
            }
            numbers.push(d.volume);
        }
        let mut manifests = HashMap::new();
        while let Some(mut entry) = reader.next_entry()? {
            match entry.kind().clone() {
                EntryKind::Manifest { digest } => {
                    // Bounded by the manifest size limit the reader enforces.
                    let mut bytes = Vec::with_capacity(entry.size() as usize);
                    entry.copy_to(&mut bytes)?;
                    let media_type = descriptor
                        .manifests
                        .get(&digest)
                        .map(|m| m.media_type.clone())
                        .unwrap_or_default();
                    manifests.insert(
                        digest.clone(),
                        Manifest {
                            bytes: bytes.into(),
                            media_type,
                            digest,
                        },
                    );
                }
                // Manifests precede blobs: nothing more to learn from this volume here.
                EntryKind::Blob { .. } | EntryKind::BlobPart { .. } => break,
                _ => {}
            }
        }
        let by_source = descriptor
            .images
            .iter()
            .enumerate()
            .map(|(n, i)| (i.source.clone(), n))
            .collect();
        Ok(BundleSource {
            volumes: volumes.to_vec(),
            descriptor,
            numbers,
            manifests,
            by_source,
            state_dir,
            corrupt,
        })
    }

    /// A manifest of the bundle by digest, or by the image's source reference.
    pub(crate) fn manifest(&self, image: &ImageRef, locator: &str) -> Option<Manifest> {
        let digest = match locator.parse::<Digest>() {
            Ok(d) => d,
            Err(_) => {
                let n = *self.by_source.get(&image.to_string())?;
                self.descriptor.images[n].digest.clone()
            }
        };
        self.manifests.get(&digest).cloned()
    }

    /// For a signature, attestation or SBOM the bundle carries: the image it belongs to.
    pub(crate) fn referrer_of(&self, image: &ImageRef) -> Option<ReferrerLink> {
        let entry = &self.descriptor.images[*self.by_source.get(&image.to_string())?];
        Some(ReferrerLink {
            parent: entry.referrer_of.clone()?,
            subject: entry.subject.clone()?,
            artifact_type: entry.artifact_type.clone(),
        })
    }

    /// Volumes of the bundle not among those given.
    pub fn missing_volumes(&self) -> Vec<u32> {
        (1..=self.descriptor.volume_count)
            .filter(|n| !self.numbers.contains(n))
            .collect()
    }
}

/// One blob still needed at the destination.
#[derive(Debug, Clone)]
struct Need {
    size: u64,
    /// Target (registry, repository) pairs lacking it.
    targets: Vec<(String, String)>,
}

/// What the reader thread hands to the uploader.
enum Msg {
    /// A small blob, read whole (and verified by the reader).
    Whole(Digest, Bytes),
    /// A large blob, arriving in chunks.
    Stream(Digest, mpsc::Receiver<Result<Bytes, TransferError>>),
    /// A blob whose content in the volume is corrupt (digest mismatch): it fails, the rest of
    /// the volume is still read.
    Failed(Digest, BundleError),
}

/// Loads the planned images from `bundle` into the registry.
pub async fn execute_load(
    bundle: Arc<BundleSource>,
    client: &RegistryClient,
    plan: Plan,
    opts: &TransferOptions,
    reporter: Arc<dyn Reporter>,
    started: Instant,
) -> RunReport {
    reporter.on_plan(&plan.summary);
    reporter.on_images(&super::execute::image_plans(&plan, |t| {
        (t.registry().to_owned(), t.repository().to_owned())
    }));
    let mut needs: HashMap<Digest, Need> = plan
        .blobs
        .iter()
        .filter(|b| !b.present_everywhere())
        .map(|b| {
            let targets = b
                .targets
                .iter()
                .filter(|t| !t.present)
                .map(|t| (t.registry.clone(), t.repository.clone()))
                .collect();
            (
                b.digest.clone(),
                Need {
                    size: b.size,
                    targets,
                },
            )
        })
        .collect();
    let state = Arc::new(LoadState {
        client: client.clone(),
        reporter: reporter.clone(),
        permits: Arc::new(Semaphore::new(opts.jobs.max(1))),
        bytes: AtomicU64::new(0),
        blobs: AtomicUsize::new(0),
        done: Mutex::new(HashSet::new()),
        failed: Mutex::new(HashMap::new()),
        refused: Mutex::new(None),
        uploader: Uploader::new(
            opts,
            Arc::new(RetryBudget::new(opts.retry_budget)),
            reporter.clone(),
        ),
        writes: ManifestWrites::default(),
    });
    // What verification found corrupt is failed here, before a byte of it is sent: a stream
    // cut short by a digest mismatch would leave a half-written upload session behind.
    for (digest, message) in &bundle.corrupt {
        if needs.remove(digest).is_some() {
            state.fail(
                digest,
                TransferError::Bundle(BundleError::CorruptBlob {
                    digest: digest.clone(),
                    message: message.clone(),
                }),
            );
        }
    }
    let unmounted = mounts::mount_present(client, &plan, &state, opts.jobs).await;
    // A blob the plan counted as present through a mount the registry ignored or refused is
    // read from the volumes after all: the totals follow, and the report does not count it
    // as skipped.
    let unmounted: HashMap<Digest, u64> = unmounted
        .into_iter()
        .filter(|(d, _)| bundle.descriptor.blobs.contains_key(d))
        .collect();
    for (digest, size) in &unmounted {
        reporter.on_blob_replanned(digest, *size, true);
    }
    {
        let done = state.done.lock().expect("not poisoned").clone();
        for (digest, need) in needs.iter_mut() {
            need.targets
                .retain(|(r, p)| !done.contains(&(digest.clone(), r.clone(), p.clone())));
        }
        needs.retain(|_, n| !n.targets.is_empty());
    }
    let held: HashSet<&Digest> = bundle.descriptor.blobs.keys().collect();
    // A mount refused by the registry needs the bytes again: one more pass reads them.
    for _pass in 0..2 {
        for (path, number) in bundle.volumes.iter().zip(&bundle.numbers) {
            let wanted: HashMap<Digest, Need> = needs
                .iter()
                .filter(|(d, _)| {
                    bundle
                        .descriptor
                        .blobs
                        .get(*d)
                        .is_some_and(|e| e.volume_numbers().contains(number))
                })
                .map(|(d, n)| (d.clone(), n.clone()))
                .collect();
            if wanted.is_empty() {
                continue;
            }
            load_volume(&bundle, path.clone(), wanted, state.clone()).await;
        }
        let done = state.done.lock().expect("not poisoned").clone();
        let failed = state.failed.lock().expect("not poisoned");
        for (digest, need) in needs.iter_mut() {
            need.targets
                .retain(|(r, p)| !done.contains(&(digest.clone(), r.clone(), p.clone())));
        }
        needs.retain(|d, n| !n.targets.is_empty() && !failed.contains_key(d) && held.contains(d));
        if needs.is_empty() {
            break;
        }
    }

    let blobs_by_digest: HashMap<&Digest, &super::PlannedBlob> =
        plan.blobs.iter().map(|b| (&b.digest, b)).collect();
    let mut images = Vec::with_capacity(plan.images.len());
    for image in &plan.images {
        let result = finish(&bundle, &blobs_by_digest, image, &state).await;
        let mut report = image_report(image, result);
        if report.status == ImageStatus::Pending
            && report
                .pending_volumes
                .iter()
                .any(|v| bundle.numbers.contains(v))
        {
            // A volume given and read that still owes blobs is a failure, not a wait.
            report.status = ImageStatus::Failed;
            report.error = Some(format!(
                "{}: blobs missing although volume(s) {} were given",
                report.source,
                volume_list(&report.pending_volumes)
            ));
            report.pending_volumes.clear();
        }
        reporter.on_image_done(&report);
        images.push(report);
    }
    RunReport {
        images,
        blobs_transferred: state.blobs.load(Ordering::Relaxed),
        blobs_skipped: plan.summary.blobs_present.saturating_sub(unmounted.len()),
        bytes_transferred: state.bytes.load(Ordering::Relaxed),
        bytes_skipped: plan
            .summary
            .bytes_present
            .saturating_sub(unmounted.values().sum()),
        seconds: started.elapsed().as_secs_f64(),
        missing_from_bundle: bundle.descriptor.missing_images.clone(),
        volumes: Vec::new(),
    }
}

struct LoadState {
    client: RegistryClient,
    reporter: Arc<dyn Reporter>,
    permits: Arc<Semaphore>,
    bytes: AtomicU64,
    blobs: AtomicUsize,
    /// (digest, registry, repository) now present at the destination.
    done: Mutex<HashSet<(Digest, String, String)>>,
    /// Blobs that failed for good (corrupt in the bundle, refused by the registry).
    failed: Mutex<HashMap<Digest, Arc<TransferError>>>,
    /// A volume refused for an entry a bundle never holds: no manifest is pushed then.
    refused: Mutex<Option<Arc<TransferError>>>,
    uploader: Uploader,
    /// Manifests shared by several images are pushed once per repository.
    writes: ManifestWrites,
}

impl LoadState {
    fn fail(&self, digest: &Digest, error: TransferError) {
        self.failed
            .lock()
            .expect("not poisoned")
            .entry(digest.clone())
            .or_insert_with(|| Arc::new(error));
    }
}

/// Reads one volume and pushes the wanted blobs it holds.
async fn load_volume(
    bundle: &Arc<BundleSource>,
    path: PathBuf,
    wanted: HashMap<Digest, Need>,
    state: Arc<LoadState>,
) {
    let (tx, mut rx) = mpsc::channel::<Msg>(8);
    let wanted = Arc::new(wanted);
    let reader = {
        let (bundle, wanted, path) = (bundle.clone(), wanted.clone(), path.clone());
        tokio::task::spawn_blocking(move || read_volume(&bundle, &path, &wanted, tx))
    };
    let mut uploads = tokio::task::JoinSet::new();
    while let Some(msg) = rx.recv().await {
        let permit = state
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        let (state, wanted, bundle) = (state.clone(), wanted.clone(), bundle.clone());
        uploads.spawn(async move {
            let _permit = permit;
            let (digest, body) = match msg {
                Msg::Whole(d, bytes) => (d, Body::Whole(bytes)),
                Msg::Stream(d, rx) => (d, Body::Stream(Some(rx))),
                Msg::Failed(d, e) => {
                    state.fail(&d, TransferError::Bundle(e));
                    return;
                }
            };
            let need = &wanted[&digest];
            match push_blob(&state, &digest, need, body).await {
                Ok(()) => forget_parts(&bundle, &digest, need, &state),
                Err(e) => state.fail(&digest, e),
            }
        });
    }
    while uploads.join_next().await.is_some() {}
    match reader.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            // An entry a bundle never holds (unsafe name, link, duplicate, one the descriptor
            // does not announce) means the volume is not what its descriptor says: refuse
            // it whole, so no image is published from it, whatever went by before.
            let refused = matches!(
                e,
                BundleError::UnsafeEntry { .. }
                    | BundleError::DuplicateEntry { .. }
                    | BundleError::UnexpectedEntry { .. }
                    | BundleError::DescriptorNotFirst { .. }
                    | BundleError::TrailingData { .. }
            );
            // Otherwise the volume is unreadable past some point: whatever it still owed
            // is lost.
            let e = Arc::new(TransferError::from(e));
            if refused {
                state
                    .refused
                    .lock()
                    .expect("not poisoned")
                    .get_or_insert_with(|| e.clone());
            }
            let done = state.done.lock().expect("not poisoned").clone();
            let mut failed = state.failed.lock().expect("not poisoned");
            for (digest, need) in wanted.iter() {
                let all_done = need
                    .targets
                    .iter()
                    .all(|(r, p)| done.contains(&(digest.clone(), r.clone(), p.clone())));
                if !all_done {
                    failed.entry(digest.clone()).or_insert_with(|| e.clone());
                }
            }
        }
        Err(join) => state.fail(
            &Digest::of(path.to_string_lossy().as_bytes()),
            TransferError::Bundle(BundleError::InvalidInput(format!(
                "reader of {} panicked: {join}",
                path.display()
            ))),
        ),
    }
}

enum Body {
    Whole(Bytes),
    Stream(Option<mpsc::Receiver<Result<Bytes, TransferError>>>),
}

/// Pushes one blob to every target lacking it: uploads to the first, mounts into the rest.
async fn push_blob(
    state: &LoadState,
    digest: &Digest,
    need: &Need,
    mut body: Body,
) -> Result<(), TransferError> {
    let mut primary: Option<&(String, String)> = None;
    for target in &need.targets {
        let repo = state.client.repo(&target.0, &target.1).for_push();
        let mut attempt = 0;
        let landed = loop {
            let session = match primary {
                Some(p) if p.0 == target.0 => match repo.mount_blob(digest, &p.1).await? {
                    MountOutcome::Mounted => break true,
                    MountOutcome::Upload(s) => {
                        // The plan counted a mount here: these bytes move on top.
                        state.reporter.on_blob_replanned(digest, need.size, true);
                        s
                    }
                },
                _ => repo.start_upload().await?,
            };
            let stream: ByteStream = match &mut body {
                Body::Whole(bytes) => {
                    let b = bytes.clone();
                    futures_util::stream::once(async move { Ok(b) }).boxed()
                }
                Body::Stream(rx) => match rx.take() {
                    Some(rx) => tokio_stream_from(rx),
                    // Streamed bytes are gone; the next pass over the volume brings them
                    // again.
                    None => break false,
                },
            };
            let (reporter, n) = (state.reporter.clone(), Arc::new(AtomicU64::new(0)));
            let n2 = n.clone();
            let counted = stream.inspect(move |r| {
                if let Ok(b) = r {
                    n2.fetch_add(b.len() as u64, Ordering::Relaxed);
                    reporter.on_bytes(b.len() as u64);
                }
            });
            let result = state
                .uploader
                .upload(
                    &repo,
                    session,
                    digest,
                    need.size,
                    counted.boxed(),
                    format!("bundle blob {digest}"),
                )
                .await;
            state
                .bytes
                .fetch_add(n.load(Ordering::Relaxed), Ordering::Relaxed);
            match result {
                Ok(()) => {
                    if primary.is_none() {
                        state.blobs.fetch_add(1, Ordering::Relaxed);
                        state.reporter.on_blob_done(digest, need.size);
                    }
                    primary.get_or_insert(target);
                    break true;
                }
                // A blob in memory is simply sent again; a streamed one waits for the next
                // pass (chunk-level resume inside the upload has already been tried).
                Err(e) if matches!(body, Body::Whole(_)) => {
                    attempt += 1;
                    if !state.uploader.backoff(digest, &e, attempt).await {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        };
        if landed {
            mark_done(state, digest, target);
        }
    }
    Ok(())
}

/// Once a split blob is at every target that lacked it, its parts in the state directory
/// are no longer needed: they would otherwise stay there (up to a whole layer) for good.
fn forget_parts(bundle: &BundleSource, digest: &Digest, need: &Need, state: &LoadState) {
    let Some(entry) = bundle.descriptor.blobs.get(digest).filter(|e| e.is_split()) else {
        return;
    };
    let done = state.done.lock().expect("not poisoned");
    let everywhere = need
        .targets
        .iter()
        .all(|(r, p)| done.contains(&(digest.clone(), r.clone(), p.clone())));
    if everywhere && let Ok(parts) = PartAssembler::open(&bundle.state_dir) {
        // Best effort: a part left behind costs disk space, not correctness.
        let _ = parts.remove(digest, entry);
    }
}

fn mark_done(state: &LoadState, digest: &Digest, target: &(String, String)) {
    state.done.lock().expect("not poisoned").insert((
        digest.clone(),
        target.0.clone(),
        target.1.clone(),
    ));
}

fn tokio_stream_from(mut rx: mpsc::Receiver<Result<Bytes, TransferError>>) -> ByteStream {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

/// The blocking side: walks the volume, sending wanted blobs (whole or streamed) and keeping
/// parts of split blobs until they can be reassembled.
fn read_volume(
    bundle: &BundleSource,
    path: &std::path::Path,
    wanted: &HashMap<Digest, Need>,
    tx: mpsc::Sender<Msg>,
) -> Result<(), BundleError> {
    let mut reader = VolumeReader::open(path)?;
    let parts = PartAssembler::open(&bundle.state_dir)?;
    while let Some(mut entry) = reader.next_entry()? {
        match entry.kind().clone() {
            EntryKind::Blob { digest } if wanted.contains_key(&digest) => {
                let size = entry.size();
                send_blob(&tx, digest, size, &mut entry, path)?;
            }
            EntryKind::BlobPart { digest, part } if wanted.contains_key(&digest) => {
                let Some(blob) = bundle.descriptor.blobs.get(&digest) else {
                    continue;
                };
                // A corrupt part fails its blob only; the entry was read to its end, so the
                // rest of the volume is still good to read.
                let stored = parts
                    .store_part(&digest, blob, part, &mut entry)
                    .and_then(|()| {
                        if parts.missing(&digest, blob).is_empty() {
                            parts.assemble(&digest, blob).map(Some)
                        } else {
                            Ok(None)
                        }
                    });
                match stored {
                    Ok(Some(mut whole)) => {
                        send_blob(
                            &tx,
                            digest.clone(),
                            blob.size,
                            &mut whole,
                            &bundle.state_dir,
                        )?;
                        // Parts stay until the upload is confirmed; a re-run finds them.
                    }
                    Ok(None) => {}
                    Err(e @ BundleError::DigestMismatch(_)) => {
                        let _ = tx.blocking_send(Msg::Failed(digest, e));
                    }
                    Err(e) => return Err(e),
                }
            }
            _ => {}
        }
    }
    reader.finish()
}

fn send_blob(
    tx: &mpsc::Sender<Msg>,
    digest: Digest,
    size: u64,
    content: &mut dyn Read,
    origin: &std::path::Path,
) -> Result<(), BundleError> {
    // The entry's reader reports a digest mismatch instead of its end of file, with the
    // entry read to its end: that blob fails, the volume is still readable. Any other error
    // leaves the stream in an unknown place and ends the volume.
    let classify = |e: std::io::Error| into_bundle_error(e, origin);
    if size <= SMALL_BLOB {
        let mut buf = Vec::with_capacity(size as usize);
        // The receiver is gone only when loading stopped; nothing more to do then.
        match content.read_to_end(&mut buf).map_err(classify) {
            Ok(_) => {
                let _ = tx.blocking_send(Msg::Whole(digest, buf.into()));
            }
            Err(e @ BundleError::DigestMismatch(_)) => {
                let _ = tx.blocking_send(Msg::Failed(digest, e));
            }
            Err(e) => return Err(e),
        }
        return Ok(());
    }
    let (ctx, crx) = mpsc::channel(4);
    if tx.blocking_send(Msg::Stream(digest, crx)).is_err() {
        return Ok(());
    }
    let mut buf = vec![0u8; CHUNK];
    loop {
        match content.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                if ctx
                    .blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
                    .is_err()
                {
                    // The uploader gave up on this blob; skip the rest of the entry.
                    return Ok(());
                }
            }
            Err(e) => {
                return match classify(e) {
                    // The uploader's error carries the mismatch; the bytes never commit.
                    e @ BundleError::DigestMismatch(_) => {
                        let _ = ctx.blocking_send(Err(TransferError::Bundle(e)));
                        Ok(())
                    }
                    e => {
                        let _ = ctx.blocking_send(Err(TransferError::Bundle(
                            BundleError::InvalidInput(e.to_string()),
                        )));
                        Err(e)
                    }
                };
            }
        }
    }
}

/// Pushes an image's manifests once every blob is at its target; otherwise says what is
/// missing and where it is.
async fn finish(
    bundle: &BundleSource,
    blobs: &HashMap<&Digest, &super::PlannedBlob>,
    image: &PlannedImage,
    state: &LoadState,
) -> Result<(), Arc<TransferError>> {
    if let Some(e) = &image.error {
        return Err(e.clone());
    }
    if image.complete {
        return Ok(());
    }
    if let Some(e) = state.refused.lock().expect("not poisoned").clone() {
        return Err(e);
    }
    let target = (
        image.job.target.registry().to_owned(),
        image.job.target.repository().to_owned(),
    );
    let mut missing = Vec::new();
    {
        // Guards are dropped before the manifest push below awaits.
        let done = state.done.lock().expect("not poisoned");
        let failed = state.failed.lock().expect("not poisoned");
        for d in &image.blobs {
            let present = blobs.get(d).is_none_or(|b| {
                b.targets
                    .iter()
                    .any(|t| t.present && t.registry == target.0 && t.repository == target.1)
            });
            if present || done.contains(&(d.clone(), target.0.clone(), target.1.clone())) {
                continue;
            }
            if let Some(e) = failed.get(d) {
                return Err(Arc::new(TransferError::DependencyFailed {
                    digest: d.clone(),
                    message: super::error_chain(&**e),
                    integrity: e.is_integrity(),
                    disk_full: e.is_disk_full(),
                }));
            }
            missing.push(d.clone());
        }
    }
    if !missing.is_empty() {
        // Only the volumes still to load: parts of split blobs already kept in the state
        // directory need not be loaded again.
        let parts = PartAssembler::open(&bundle.state_dir).ok();
        let mut volumes: Vec<u32> = missing
            .iter()
            .filter_map(|d| bundle.descriptor.blobs.get(d).map(|e| (d, e)))
            .flat_map(|(d, e)| {
                let still: Vec<u32> = match &parts {
                    Some(p) if e.is_split() => p.missing(d, e).iter().map(|l| l.volume).collect(),
                    _ => Vec::new(),
                };
                if still.is_empty() {
                    e.volume_numbers()
                } else {
                    still
                }
            })
            .collect();
        volumes.sort_unstable();
        volumes.dedup();
        let at_site = missing
            .iter()
            .filter(|d| !bundle.descriptor.blobs.contains_key(*d))
            .cloned()
            .collect();
        return Err(Arc::new(TransferError::Incomplete {
            reference: image.job.source.to_string(),
            missing: missing.len(),
            volumes,
            at_site,
            repository: format!("{}/{}", target.0, target.1),
        }));
    }
    push_manifests(image, &state.client, &state.writes).await
}
