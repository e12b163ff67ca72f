//! Moving one blob: stream from the source to the destination, hashing as it flows.
//!
//! The body is verified in flight and the last chunk is held back until the digest and size
//! check out, so the destination never receives a complete body that is wrong: a mismatch
//! aborts the upload and nothing is committed. Large blobs are fetched as parallel `Range`
//! segments and reassembled in order; a server that ignores `Range` gets one plain stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use futures_util::stream::{self, BoxStream, StreamExt};

use crate::bundle::{BlobWriter, VolumeSet, WriteError};
use crate::reference::Digest;
use crate::registry::{MountOutcome, Repo};
use crate::report::Reporter;

use super::bundle_source::BundleSource;
use super::feed::Refetch;
use super::segments::MemoryBudget;
use super::upload::Uploader;
use super::{TransferError, TransferOptions};

/// Shared state of one run that blob copies report into.
pub(crate) struct Ctx {
    pub opts: TransferOptions,
    pub reporter: Arc<dyn Reporter>,
    /// Bytes read from sources this run, retries included.
    pub bytes_read: Arc<AtomicU64>,
    /// Retries left for the whole run (`--retry-budget`), shared by blobs and segments.
    pub retry_budget: Arc<RetryBudget>,
    /// Uploads into destination registries.
    pub uploader: Uploader,
    /// Memory for segment data received ahead of the reader, shared by all blobs.
    pub budget: MemoryBudget,
    /// Segments running ahead of their blob's head, shared by all blobs.
    pub segment_slots: Arc<tokio::sync::Semaphore>,
}

impl Ctx {
    /// The context of a run with `opts`, reporting to `reporter`.
    pub fn new(opts: TransferOptions, reporter: Arc<dyn Reporter>) -> Self {
        let retry_budget = Arc::new(RetryBudget::new(opts.retry_budget));
        Ctx {
            uploader: Uploader::new(&opts, retry_budget.clone(), reporter.clone()),
            budget: MemoryBudget::new(opts.memory_budget),
            segment_slots: Arc::new(tokio::sync::Semaphore::new(
                opts.segment_parallelism.saturating_sub(1),
            )),
            opts,
            reporter,
            bytes_read: Arc::new(AtomicU64::new(0)),
            retry_budget,
        }
    }
}

/// A run-wide cap on retries, so a registry that keeps failing ends the run in bounded time
/// instead of every blob spending its own retries one after another.
#[derive(Debug)]
pub(crate) struct RetryBudget(std::sync::atomic::AtomicU64);

impl RetryBudget {
    /// A budget of `n` retries.
    pub fn new(n: u64) -> Self {
        RetryBudget(std::sync::atomic::AtomicU64::new(n))
    }

    /// Takes one retry; false when none is left.
    pub fn take(&self) -> bool {
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// A blob body on its way.
pub(crate) type ByteStream = BoxStream<'static, Result<Bytes, TransferError>>;

/// Where a blob is read from.
#[derive(Clone)]
pub(crate) enum BlobSource {
    /// A repository of a registry.
    Registry(Repo),
    /// The volumes of a bundle.
    Bundle(Arc<BundleSource>),
}

impl BlobSource {
    fn name(&self) -> String {
        match self {
            BlobSource::Registry(r) => r.name(),
            BlobSource::Bundle(b) => b.name(),
        }
    }
}

/// Where a blob is written.
#[derive(Clone)]
pub(crate) enum Dest {
    /// A repository of a registry.
    Registry(Repo),
    /// The volumes of a bundle being created.
    Volumes(Arc<VolumeSet>),
}

impl Dest {
    fn name(&self) -> String {
        match self {
            Dest::Registry(r) => r.name(),
            Dest::Volumes(v) => v
                .paths()
                .first()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        }
    }
}

/// How a blob reached its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moved {
    /// Mounted from another repository of the destination registry: no bytes moved.
    Mounted,
    /// Its bytes were read from the source and written.
    Copied,
}

/// How the plan counted one copy of a blob, so that the totals shown follow what happens.
pub(crate) struct Planned {
    /// The plan counted its bytes (else a mount, moving none).
    pub copy: bool,
    /// Set once the reporter was told the blob moves otherwise.
    told: bool,
}

impl Planned {
    /// A copy the plan counted as `copy`.
    pub fn new(copy: bool) -> Self {
        Planned { copy, told: false }
    }

    /// Tells the reporter, once and before any byte moves, when the blob moves otherwise
    /// than planned.
    fn settle(&mut self, ctx: &Ctx, digest: &Digest, size: u64, moved: Moved) {
        let copied = moved == Moved::Copied;
        if copied != self.copy && !self.told {
            self.told = true;
            ctx.reporter.on_blob_replanned(digest, size, copied);
        }
    }
}

/// Copies `digest` (of `size` bytes) from `src` to `dst`, retrying the whole blob on failures
/// worth retrying. When `mount_from` names a repository of the destination registry that
/// holds the blob, a cross-repository mount is tried first; a registry that ignores or
/// refuses it gets the bytes ([`Moved::Copied`]), and the reporter hears of it when `planned`
/// counted a mount.
pub(crate) async fn copy(
    ctx: &Ctx,
    src: &BlobSource,
    dst: &Dest,
    digest: &Digest,
    size: u64,
    mount_from: Option<&str>,
    planned: &mut Planned,
) -> Result<Moved, TransferError> {
    let mut attempt = 0;
    // Taken once: a retry sends the blob into the same pieces again.
    let mut writer: Option<BlobWriter> = None;
    loop {
        let result = match dst {
            Dest::Registry(repo) => {
                copy_once(ctx, src, repo, digest, size, mount_from, planned).await
            }
            Dest::Volumes(set) => {
                let w = match &mut writer {
                    Some(w) => w,
                    None => writer.insert(set.writer(digest, size)?),
                };
                match open(ctx, src, digest, size).await {
                    Ok(body) => into_volumes(set, w, src, digest, size, body)
                        .await
                        .map(|()| Moved::Copied),
                    Err(e) => Err(e),
                }
            }
        };
        // What a bundle holds does not change: a blob that does not match its digest there is
        // corrupt, reported where it is in the bundle and not read again.
        let result = match (result, src) {
            (
                Err(TransferError::Integrity {
                    actual, received, ..
                }),
                BlobSource::Bundle(b),
            ) => Err(TransferError::Bundle(super::bundle_source::corrupt(
                b, digest, actual, received,
            ))),
            (result, _) => result,
        };
        match result {
            Ok(moved) => return Ok(moved),
            Err(e)
                if e.is_retryable()
                    && attempt < ctx.opts.blob_retries
                    && ctx.retry_budget.take() =>
            {
                attempt += 1;
                ctx.reporter
                    .on_blob_retry(digest, 0, &super::error_chain(&e));
                tokio::time::sleep(jitter(ctx.opts.retry_delay, attempt)).await;
            }
            Err(e) => {
                return Err(TransferError::Blob {
                    digest: digest.clone(),
                    from: src.name(),
                    to: dst.name(),
                    source: Box::new(e),
                });
            }
        }
    }
}

async fn copy_once(
    ctx: &Ctx,
    src: &BlobSource,
    dst: &Repo,
    digest: &Digest,
    size: u64,
    mount_from: Option<&str>,
    planned: &mut Planned,
) -> Result<Moved, TransferError> {
    // A bundle may lack the blob (a volume not given, a differential bundle): no upload then.
    let mut available = match src {
        BlobSource::Bundle(b) => b.check_available(digest),
        BlobSource::Registry(_) => Ok(()),
    };
    // A bundle's blob that fits one upload chunk is checked before a session opens: a corrupt
    // one then leaves nothing at the registry, where a cancelled docker-distribution upload
    // leaves files behind. A small one is read and kept for the upload; a larger one in a
    // random-access bundle is only hashed, then read again to upload (held whole, it would
    // cost a chunk of memory per job). A format-1 volume cannot be read again cheaply: such a
    // blob is held whole, within the run's memory budget (until its upload is done).
    let mut _held_room = None;
    let checked = match (src, mount_from) {
        (BlobSource::Bundle(b), None) if size <= ctx.opts.upload_chunk_size.max(5 << 20) => {
            std::mem::replace(&mut available, Ok(()))?;
            if size <= HOLD_WHOLE || !b.random_access() {
                if size > HOLD_WHOLE {
                    _held_room = Some(ctx.budget.reserve(size as usize).await);
                }
                let body = open(ctx, src, digest, size).await?;
                Checked::Held(read_checked(src, digest, size, body).await?)
            } else {
                // Not counted: the report's bytes transferred count each blob once, with the
                // read that uploads it.
                let body = super::bundle_source::blob_stream(b, digest, 0);
                hash_checked(src, digest, size, body).await?;
                Checked::Proven
            }
        }
        _ => Checked::No,
    };
    let session = match mount_from {
        Some(from) => match dst.mount_blob(digest, from).await? {
            MountOutcome::Mounted => {
                planned.settle(ctx, digest, size, Moved::Mounted);
                return Ok(Moved::Mounted);
            }
            MountOutcome::Upload(s) => s,
        },
        None => {
            std::mem::replace(&mut available, Ok(()))?;
            dst.start_upload().await?
        }
    };
    if let Err(e) = available {
        // The refused mount opened a session: give it up.
        let _ = dst.cancel_upload(&session).await;
        return Err(e.into());
    }
    planned.settle(ctx, digest, size, Moved::Copied);
    let origin = format!("{}@{}", src.name(), digest);
    let up = &ctx.uploader;
    match (src, checked) {
        (_, Checked::Held(bytes)) => {
            let body = stream::once(async move { Ok(bytes) }).boxed();
            up.upload(dst, session, digest, size, body, origin).await
        }
        // Proven right a moment ago: one streaming PUT (still verified as it passes).
        (_, Checked::Proven) => {
            let body = open(ctx, src, digest, size).await?;
            up.upload(dst, session, digest, size, body, origin).await
        }
        (BlobSource::Registry(repo), Checked::No) => {
            let body = open(ctx, src, digest, size).await?;
            up.upload_refetching(
                dst,
                session,
                digest,
                size,
                body,
                origin,
                refetch(ctx, repo, digest),
            )
            .await
        }
        // Nothing checked a bundle's blob before: a corrupt one must not cut a request off.
        (BlobSource::Bundle(b), Checked::No) => {
            let body = open(ctx, src, digest, size).await?;
            let refetch = refetch_bundle(ctx, b, digest);
            up.upload_in_chunks(dst, session, digest, size, body, origin, refetch)
                .await
        }
    }
    .map(|()| Moved::Copied)
}

/// Reads byte ranges of `digest` from `src` again, for an upload resuming after a drop.
/// The bytes count as read from the source, not as progress.
fn refetch(ctx: &Ctx, src: &Repo, digest: &Digest) -> Refetch {
    let (src, digest) = (src.clone(), digest.clone());
    let (retries, delay) = (ctx.opts.blob_retries, ctx.opts.retry_delay);
    let (budget, reporter, total) = (
        ctx.retry_budget.clone(),
        ctx.reporter.clone(),
        ctx.bytes_read.clone(),
    );
    Arc::new(move |from, to| {
        let state = Resume {
            src: src.clone(),
            digest: digest.clone(),
            size: to,
            range_end: Some(to),
            offset: from,
            skip: 0,
            current: None,
            attempts: 0,
            max_attempts: retries,
            budget: budget.clone(),
            delay,
            reporter: reporter.clone(),
            done: false,
        };
        let total = total.clone();
        let s = stream::unfold(state, |mut st| async move {
            let item = st.next_chunk().await?;
            Some((item, st))
        })
        .inspect(move |r| {
            if let Ok(b) = r {
                total.fetch_add(b.len() as u64, Ordering::Relaxed);
            }
        });
        futures_util::future::ready(Ok(s.boxed())).boxed()
    })
}

/// Bundle blobs up to this size are read into memory once, checked, and uploaded from there;
/// larger ones are never held whole (see `copy_once`).
const HOLD_WHOLE: u64 = 1 << 20;

/// What was checked of a bundle's blob before its upload session opened.
enum Checked {
    /// Nothing.
    No,
    /// Its digest and size, reading it through; it is read again for the upload.
    Proven,
    /// Its digest and size, and these are its bytes.
    Held(Bytes),
}

/// Reads byte ranges of `digest` again from a bundle, for an upload resuming after a drop
/// (through the seek index; a format-1 volume from its start), so no chunk is held in memory
/// for it. The bytes count as read, not as progress.
fn refetch_bundle(ctx: &Ctx, bundle: &Arc<BundleSource>, digest: &Digest) -> Refetch {
    let (bundle, digest, total) = (bundle.clone(), digest.clone(), ctx.bytes_read.clone());
    Arc::new(move |from, to| {
        let total = total.clone();
        let body = super::bundle_source::blob_range(&bundle, &digest, from..to);
        futures_util::future::ready(Ok(counted_total(total, body))).boxed()
    })
}

/// `s`, its bytes added to `total` (the run's bytes read), not to the blob's progress.
fn counted_total(total: Arc<AtomicU64>, s: ByteStream) -> ByteStream {
    s.inspect(move |r| {
        if let Ok(b) = r {
            total.fetch_add(b.len() as u64, Ordering::Relaxed);
        }
    })
    .boxed()
}

/// Reads a whole blob through, checking its size and digest without keeping its bytes.
async fn hash_checked(
    src: &BlobSource,
    digest: &Digest,
    size: u64,
    body: ByteStream,
) -> Result<(), TransferError> {
    checked(src, digest, size, body, false).await.map(drop)
}

/// Reads a whole (small) blob into memory and checks its size and digest.
pub(super) async fn read_checked(
    src: &BlobSource,
    digest: &Digest,
    size: u64,
    body: ByteStream,
) -> Result<Bytes, TransferError> {
    checked(src, digest, size, body, true).await
}

/// Reads `body` through (keeping its bytes when `keep`, at most `size` of them) and checks
/// that it is `size` bytes hashing to `digest`.
async fn checked(
    src: &BlobSource,
    digest: &Digest,
    size: u64,
    mut body: ByteStream,
    keep: bool,
) -> Result<Bytes, TransferError> {
    use sha2::Digest as _;
    let mut buf = BytesMut::with_capacity(if keep { size as usize } else { 0 });
    let mut hasher = sha2::Sha256::new();
    let mut received = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        hasher.update(&chunk);
        received += chunk.len() as u64;
        if received > size {
            break;
        }
        if keep {
            buf.extend_from_slice(&chunk);
        }
    }
    let actual = Digest::from_sha256(&hasher.finalize());
    if received != size || actual != *digest {
        return Err(TransferError::Integrity {
            digest: digest.clone(),
            url: src.name(),
            actual,
            received,
            expected_size: size,
        });
    }
    Ok(buf.freeze())
}

/// Opens the source side of a blob: parallel segments for large blobs, else one resumable
/// stream.
async fn open(
    ctx: &Ctx,
    src: &BlobSource,
    digest: &Digest,
    size: u64,
) -> Result<ByteStream, TransferError> {
    let src = match src {
        BlobSource::Registry(repo) => repo,
        // One stream per blob: a format-1 volume is read in order, and a random-access one
        // already decompresses blobs concurrently, one per job.
        BlobSource::Bundle(b) => {
            return Ok(counted(
                ctx,
                digest,
                super::bundle_source::blob_stream(b, digest, 0),
            ));
        }
    };
    if size >= ctx.opts.segment_threshold {
        super::segments::segmented(ctx, src, digest, size).await
    } else {
        whole(ctx, src, digest, size).await
    }
}

/// Streams `body` into the blob's pieces in the volumes, which take them once size and
/// digest are checked. After an error what was sent is forgotten, for a retry from the start.
async fn into_volumes(
    set: &VolumeSet,
    w: &mut BlobWriter,
    src: &BlobSource,
    digest: &Digest,
    size: u64,
    mut body: ByteStream,
) -> Result<(), TransferError> {
    let failed = |e: WriteError| match e {
        WriteError::Stopped(volume) => {
            TransferError::Bundle(crate::bundle::BundleError::VolumeStopped { volume })
        }
        WriteError::Mismatch { actual, received } => TransferError::Integrity {
            digest: digest.clone(),
            url: src.name(),
            actual,
            received,
            expected_size: size,
        },
    };
    while let Some(chunk) = body.next().await {
        let sent = match chunk {
            Ok(chunk) => w.write(chunk).await.map_err(failed),
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            w.restart().await;
            return Err(e);
        }
    }
    let parts = w.finish().await.map_err(failed)?;
    set.record_parts(parts);
    Ok(())
}

/// The whole blob as one response that survives connection drops: after an error mid-body it
/// asks again with `Range` from the last byte received, so the hash state in [`Verify`]
/// carries on. A server that ignores `Range` resends from zero and the bytes already seen are
/// skipped.
async fn whole(
    ctx: &Ctx,
    src: &Repo,
    digest: &Digest,
    size: u64,
) -> Result<ByteStream, TransferError> {
    let first = src.get_blob(digest, 0, None).await?;
    let state = Resume {
        src: src.clone(),
        digest: digest.clone(),
        size,
        range_end: None,
        offset: 0,
        skip: 0,
        current: Some(first.stream),
        attempts: 0,
        max_attempts: ctx.opts.blob_retries,
        budget: ctx.retry_budget.clone(),
        delay: ctx.opts.retry_delay,
        reporter: ctx.reporter.clone(),
        done: false,
    };
    let s = stream::unfold(state, |mut st| async move {
        let item = st.next_chunk().await?;
        Some((item, st))
    });
    Ok(counted(ctx, digest, s.boxed()))
}

struct Resume {
    src: Repo,
    digest: Digest,
    size: u64,
    /// Where the requested range ends (exclusive); `None` for the rest of the blob.
    range_end: Option<u64>,
    offset: u64,
    /// Bytes still to drop from a response that restarted at zero.
    skip: u64,
    current: Option<BoxStream<'static, Result<Bytes, crate::registry::RegistryError>>>,
    attempts: u32,
    max_attempts: u32,
    budget: Arc<RetryBudget>,
    delay: Duration,
    reporter: Arc<dyn Reporter>,
    done: bool,
}

impl Resume {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, TransferError>> {
        if self.done {
            return None;
        }
        loop {
            let Some(current) = self.current.as_mut() else {
                match self
                    .src
                    .get_blob(&self.digest, self.offset, self.range_end)
                    .await
                {
                    Ok(body) => {
                        self.skip = if body.partial { 0 } else { self.offset };
                        self.current = Some(body.stream);
                    }
                    Err(e) => {
                        let e = TransferError::from(e);
                        if !self.retry(&e).await {
                            self.done = true;
                            return Some(Err(e));
                        }
                    }
                }
                continue;
            };
            match current.next().await {
                Some(Ok(mut chunk)) => {
                    if self.skip > 0 {
                        let drop = self.skip.min(chunk.len() as u64);
                        self.skip -= drop;
                        let _ = chunk.split_to(drop as usize);
                        if chunk.is_empty() {
                            continue;
                        }
                    }
                    self.offset += chunk.len() as u64;
                    return Some(Ok(chunk));
                }
                Some(Err(e)) => {
                    self.current = None;
                    let e = TransferError::from(e);
                    if !self.retry(&e).await {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                None if self.offset >= self.size => {
                    self.done = true;
                    return None;
                }
                None => {
                    // The body ended early without an error: resume like after a reset.
                    self.current = None;
                    let e = TransferError::Registry(crate::registry::RegistryError::Protocol {
                        url: format!("{}@{}", self.src.name(), self.digest),
                        reason: format!("body ended at byte {} of {}", self.offset, self.size),
                    });
                    if !self.retry(&e).await {
                        self.done = true;
                        // Let the verifier report the short body with its digest.
                        return None;
                    }
                }
            }
        }
    }

    /// Waits before resuming; false when the error is final or attempts are used up.
    async fn retry(&mut self, e: &TransferError) -> bool {
        if !e.is_retryable() || self.attempts >= self.max_attempts || !self.budget.take() {
            return false;
        }
        self.attempts += 1;
        self.reporter.on_blob_retry(
            &self.digest,
            0,
            &format!(
                "resuming at byte {}: {}",
                self.offset,
                super::error_chain(e)
            ),
        );
        tokio::time::sleep(jitter(self.delay, self.attempts)).await;
        true
    }
}

/// Counts bytes into the run total and the reporter as they arrive.
pub(super) fn counted(ctx: &Ctx, digest: &Digest, s: ByteStream) -> ByteStream {
    let (reporter, total) = (ctx.reporter.clone(), ctx.bytes_read.clone());
    let digest = digest.clone();
    s.inspect(move |r| {
        if let Ok(b) = r {
            total.fetch_add(b.len() as u64, Ordering::Relaxed);
            reporter.on_blob_bytes(&digest, b.len() as u64);
        }
    })
    .boxed()
}

/// Delay before attempt `attempt` (1-based): exponential with full jitter.
/// `AIRLIFT_RETRY_DELAY_MS` overrides the base (tests set 0).
pub(super) fn jitter(base: Duration, attempt: u32) -> Duration {
    let base = std::env::var("AIRLIFT_RETRY_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(base);
    base.saturating_mul(1 << attempt.min(6))
        .mul_f64(rand::random::<f64>().max(0.1))
}
